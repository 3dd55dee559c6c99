package format

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"io"
)

// V3 is AWS's key-committing format (algorithm suite 0x0073): V2's AES-GCM
// body (gcm.go) under a content key that HKDF derives from the data key and
// a fresh message ID, beside a commitment to the data key, so that a
// wrapped key cannot be swapped for another that also decrypts. Written by
// AWS's v4 clients; the default.
type v3Format struct{ gcmBody }

// Sizes of V3's stored fields.
const (
	MessageIDSize  = 28 // V3 message ID
	CommitmentSize = 28 // V3 key commitment
)

// Metadata keys, as S3 user metadata (x-amz-meta-<key> on the wire): V3's.
const (
	keyV3Content   = "x-amz-c"
	keyV3Key       = "x-amz-3"
	keyV3Wrap      = "x-amz-w"
	keyV3MatDesc   = "x-amz-m"
	keyV3Context   = "x-amz-t"
	keyV3Commit    = "x-amz-d"
	keyV3MessageID = "x-amz-i"
)

// v3Fields are V3's envelope fields.
var v3Fields = []string{keyV3Content, keyV3Key, keyV3Wrap, keyV3MatDesc, keyV3Context, keyV3Commit, keyV3MessageID}

var v3Layout = layout{
	key: keyV3Key, wrap: keyV3Wrap, all: v3Fields,
	// V3 keeps the commitment and message ID in the object's own metadata:
	// an instruction file must not be able to supply them.
	onObject: []string{keyV3Content, keyV3Commit, keyV3MessageID},
	name:     "V3", keeper: "V3",
}

// v3Wrap maps V3's two-digit wrap algorithm codes to the algorithms' names.
var v3Wrap = map[string]string{
	"02": WrapAESGCM,
	"12": WrapKMSContext,
	"22": WrapRSAOAEPSHA1,
}

// V3 (algorithm suite 0x0073) key schedule: HKDF-SHA-512 with the message ID
// as salt and the data key as input keying material; the info strings carry
// the suite ID. The content is sealed under the derived key with a fixed
// nonce, which is safe because every message ID, and so every derived key,
// is fresh.
var (
	v3SuiteID    = []byte{0x00, 0x73}
	v3CommitInfo = string(v3SuiteID) + "COMMITKEY"
	v3DeriveInfo = string(v3SuiteID) + "DERIVEKEY"
	v3Nonce      = []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
)

func (v3Format) format() Format   { return FormatV3 }
func (v3Format) content() string  { return ContentAESGCMCommit }
func (v3Format) layout() *layout  { return &v3Layout }
func (v3Format) committing() bool { return true }

func (v3Format) decode(m map[string]string) (*Envelope, error) { return decodeV3(m) }

func decodeV3(m map[string]string) (*Envelope, error) {
	e := &Envelope{Format: FormatV3, PlaintextLength: -1}
	for _, k := range []string{keyIV, keyCEKAlg, keyWrapAlg, keyTagLen, keyMatDesc, keySegVersion, keySegSize, keySegWrap, keySegID, keySegCommit} {
		if _, ok := m[k]; ok {
			return nil, fmt.Errorf("%w: V3 envelope also holds field %s of another format", ErrMalformed, k)
		}
	}
	c, ok := m[keyV3Content]
	if !ok {
		return nil, fmt.Errorf("%w: missing %s", ErrMalformed, keyV3Content)
	}
	if c != ContentAESGCMCommit {
		return nil, fmt.Errorf("%w: algorithm suite %q", ErrUnsupported, c)
	}
	e.ContentAlgorithm = c
	w, ok := m[keyV3Wrap]
	if !ok {
		return nil, fmt.Errorf("%w: missing %s", ErrMalformed, keyV3Wrap)
	}
	if e.Key.Algorithm, ok = v3Wrap[w]; !ok {
		return nil, fmt.Errorf("%w: V3 wrap algorithm code %q", ErrUnsupported, w)
	}
	var err error
	if e.Key.Ciphertext, err = b64(m, keyV3Key); err != nil {
		return nil, err
	}
	if e.MessageID, err = b64(m, keyV3MessageID); err != nil {
		return nil, err
	}
	if e.Commitment, err = b64(m, keyV3Commit); err != nil {
		return nil, err
	}
	if len(e.MessageID) != MessageIDSize || len(e.Commitment) != CommitmentSize {
		return nil, fmt.Errorf("%w: V3 message ID and commitment must be %d bytes", ErrMalformed, MessageIDSize)
	}
	descKey := keyV3MatDesc
	if e.Key.Algorithm == WrapKMSContext {
		descKey = keyV3Context
	}
	if e.Key.Description, err = parseDescription(m, descKey); err != nil {
		return nil, err
	}
	if e.PlaintextLength, err = plainLength(m); err != nil {
		return nil, err
	}
	return e, nil
}
func (v3Format) encode(e *Envelope) (map[string]string, error) {
	enc := base64.StdEncoding.EncodeToString
	var code string
	for c, a := range v3Wrap {
		if a == e.Key.Algorithm {
			code = c
		}
	}
	if code == "" {
		return nil, fmt.Errorf("%w: wrap algorithm %q in V3", ErrUnsupported, e.Key.Algorithm)
	}
	m := map[string]string{}
	m[keyV3Content] = ContentAESGCMCommit
	m[keyV3Key] = enc(e.Key.Ciphertext)
	m[keyV3Wrap] = code
	if e.Key.Algorithm == WrapKMSContext {
		m[keyV3Context] = EncodeDescription(e.Key.Description)
	} else if len(e.Key.Description) > 0 {
		m[keyV3MatDesc] = EncodeDescription(e.Key.Description)
	}
	m[keyV3Commit] = enc(e.Commitment)
	m[keyV3MessageID] = enc(e.MessageID)
	return m, nil
}

// v3Commitment returns the HKDF pseudorandom key and the key commitment of
// a V3 object.
func v3Commitment(dataKey, messageID []byte) (prk, commitment []byte, err error) {
	if len(dataKey) != DataKeySize || len(messageID) != MessageIDSize {
		return nil, nil, fmt.Errorf("%w: V3 needs a %d-byte data key and a %d-byte message ID", ErrMalformed, DataKeySize, MessageIDSize)
	}
	if prk, err = hkdf.Extract(sha512.New, dataKey, messageID); err != nil {
		return nil, nil, err
	}
	commitment, err = hkdf.Expand(sha512.New, prk, v3CommitInfo, CommitmentSize)
	return prk, commitment, err
}

// deriveV3 returns the key commitment and the content key of a new V3 object.
func deriveV3(dataKey, messageID []byte) (commitment, contentKey []byte, err error) {
	prk, commitment, err := v3Commitment(dataKey, messageID)
	if err != nil {
		return nil, nil, err
	}
	contentKey, err = hkdf.Expand(sha512.New, prk, v3DeriveInfo, DataKeySize)
	return commitment, contentKey, err
}

// openV3Key checks the stored commitment in constant time and only then
// derives the content key, so a key that fails the commitment is never used.
func openV3Key(dataKey, messageID, stored []byte) ([]byte, error) {
	prk, commitment, err := v3Commitment(dataKey, messageID)
	if err != nil {
		return nil, err
	}
	if err := checkCommitment(commitment, stored); err != nil {
		return nil, err
	}
	return hkdf.Expand(sha512.New, prk, v3DeriveInfo, DataKeySize)
}

// checkDataKey compares the key commitment in constant time.
func (v3Format) checkDataKey(e *Envelope, dataKey []byte) error {
	_, commitment, err := v3Commitment(dataKey, e.MessageID)
	if err != nil {
		return err
	}
	return checkCommitment(commitment, e.Commitment)
}

// newSealer draws the message ID and derives the commitment and the
// content key.
func (v3Format) newSealer(e *Envelope, dataKey []byte, _ Config) (bodySealer, error) {
	e.MessageID = newMessageID()
	var contentKey []byte
	var err error
	e.Commitment, contentKey, err = deriveV3(dataKey, e.MessageID)
	if err != nil {
		return nil, err
	}
	defer clear(contentKey)
	return newGCMSealer(e, contentKey, v3Nonce, v3SuiteID)
}

// newMessageID draws a V3 message ID, which must not be all zeros.
func newMessageID() []byte {
	id := make([]byte, MessageIDSize)
	for {
		rand.Read(id)
		for _, b := range id {
			if b != 0 {
				return id
			}
		}
	}
}
func (v3Format) open(e *Envelope, dataKey []byte, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	contentKey, err := openV3Key(dataKey, e.MessageID, e.Commitment)
	if err != nil {
		return nil, err
	}
	defer clear(contentKey)
	return openGCM(contentKey, v3Nonce, v3SuiteID, e, cfg, ciphertext)
}

// openRange checks the key commitment before it decrypts, unauthenticated.
func (v3Format) openRange(e *Envelope, dataKey []byte, _ Config, ciphertext io.Reader, _, off, n int64) (*Plaintext, error) {
	contentKey, err := openV3Key(dataKey, e.MessageID, e.Commitment)
	if err != nil {
		return nil, err
	}
	defer clear(contentKey)
	return openCTR(contentKey, v3Nonce, v3SuiteID, ciphertext, off, n)
}
