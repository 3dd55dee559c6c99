package format

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
)

// V2 is AWS's AES-GCM format: one GCM pass (gcm.go) under the data key
// and a 12-byte IV stored in the envelope, the key wrap binding the content
// algorithm. Written by AWS's v2/v3 clients, and under
// ForbidEncryptAllowDecrypt. V1 shares its fields (this file reads both).
type v2Format struct{ gcmBody }

// IVSize is the size of a V2 object's GCM IV.
const IVSize = 12

// Metadata keys, as S3 user metadata (x-amz-meta-<key> on the wire): those
// of V1 and V2.
const (
	keyV1      = "x-amz-key"
	keyV2      = "x-amz-key-v2"
	keyIV      = "x-amz-iv"
	keyMatDesc = "x-amz-matdesc"
	keyCEKAlg  = "x-amz-cek-alg"
	keyWrapAlg = "x-amz-wrap-alg"
	keyTagLen  = "x-amz-tag-len"
)

// v12Fields are the envelope fields of V1 and V2.
var v12Fields = []string{keyV1, keyV2, keyIV, keyMatDesc, keyCEKAlg, keyWrapAlg, keyTagLen}

var v2Layout = layout{key: keyV2, wrap: keyWrapAlg, all: v12Fields, name: "V1/V2"}

func (v2Format) format() Format   { return FormatV2 }
func (v2Format) content() string  { return ContentAESGCM }
func (v2Format) layout() *layout  { return &v2Layout }
func (v2Format) committing() bool { return false }

func (v2Format) decode(m map[string]string) (*Envelope, error) {
	return decodeV12(m, FormatV2, keyV2, v2Defaults)
}

// v2Defaults refuses a V2 envelope without a content or wrap algorithm.
func v2Defaults(e *Envelope) error {
	if e.ContentAlgorithm == "" {
		return fmt.Errorf("%w: missing %s", ErrMalformed, keyCEKAlg)
	}
	if e.Key.Algorithm == "" {
		return fmt.Errorf("%w: missing %s", ErrMalformed, keyWrapAlg)
	}
	return nil
}

// decodeV12 reads a V1 or V2 envelope (format f), whose wrapped key is in
// field keyName; defaults fills in, or refuses, a missing content or wrap
// algorithm as the format allows. Both formats' fields may hold AES-GCM or
// AES/CBC content.
func decodeV12(m map[string]string, f Format, keyName string, defaults func(*Envelope) error) (*Envelope, error) {
	e := &Envelope{Format: f, PlaintextLength: -1}
	for _, k := range []string{keyV3Content, keyV3Wrap, keyV3Commit, keyV3MessageID, keySegVersion, keySegSize, keySegWrap, keySegID, keySegCommit} {
		if _, ok := m[k]; ok {
			return nil, fmt.Errorf("%w: %v envelope also holds field %s of another format", ErrMalformed, f, k)
		}
	}
	var err error
	if e.Key.Ciphertext, err = b64(m, keyName); err != nil {
		return nil, err
	}
	if e.IV, err = b64(m, keyIV); err != nil {
		return nil, err
	}
	if e.Key.Description, err = parseDescription(m, keyMatDesc); err != nil {
		return nil, err
	}
	e.ContentAlgorithm = m[keyCEKAlg]
	e.Key.Algorithm = m[keyWrapAlg]
	if err := defaults(e); err != nil {
		return nil, err
	}
	switch e.Key.Algorithm {
	case WrapAESGCM, WrapRSAOAEPSHA1, WrapKMSContext, WrapLegacyAESWrap, WrapLegacyRSAOAEPSHA256, WrapLegacyAES, WrapLegacyRSA, WrapLegacyKMS:
	default:
		return nil, fmt.Errorf("%w: wrap algorithm %q", ErrUnsupported, e.Key.Algorithm)
	}
	switch e.ContentAlgorithm {
	case ContentAESGCM:
		if tl, ok := m[keyTagLen]; !ok || tl != "128" {
			return nil, fmt.Errorf("%w: %s must be 128 for %s, got %q", ErrMalformed, keyTagLen, ContentAESGCM, tl)
		}
		if len(e.IV) != IVSize {
			return nil, fmt.Errorf("%w: %s of %d bytes, want %d", ErrMalformed, keyIV, len(e.IV), IVSize)
		}
	case ContentAESCBC:
		if len(e.IV) != CBCIVSize {
			return nil, fmt.Errorf("%w: %s of %d bytes, want %d", ErrMalformed, keyIV, len(e.IV), CBCIVSize)
		}
	default:
		// AES/CTR among others: never accepted from storage (CVE-2020-8912).
		return nil, fmt.Errorf("%w: content algorithm %q", ErrUnsupported, e.ContentAlgorithm)
	}
	if e.PlaintextLength, err = plainLength(m); err != nil {
		return nil, err
	}
	return e, nil
}

func (v2Format) encode(e *Envelope) (map[string]string, error) {
	enc := base64.StdEncoding.EncodeToString
	m := map[string]string{}
	m[keyV2] = enc(e.Key.Ciphertext)
	m[keyIV] = enc(e.IV)
	m[keyCEKAlg] = e.ContentAlgorithm
	m[keyWrapAlg] = e.Key.Algorithm
	m[keyTagLen] = "128"
	m[keyMatDesc] = EncodeDescription(e.Key.Description)
	if e.PlaintextLength >= 0 {
		m[keyPlainLen] = strconv.FormatInt(e.PlaintextLength, 10)
	}
	return m, nil
}

// checkDataKey: V2 commits to nothing, so any key passes.
func (v2Format) checkDataKey(*Envelope, []byte) error { return nil }

// newSealer draws the IV.
func (v2Format) newSealer(e *Envelope, dataKey []byte, _ Config) (bodySealer, error) {
	e.IV = make([]byte, IVSize)
	rand.Read(e.IV)
	return newGCMSealer(e, dataKey, e.IV, nil)
}

func (v2Format) open(e *Envelope, dataKey []byte, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	return openGCM(dataKey, e.IV, nil, e, cfg, ciphertext)
}

func (v2Format) openRange(e *Envelope, dataKey []byte, _ Config, ciphertext io.Reader, _, off, n int64) (*Plaintext, error) {
	return openCTR(dataKey, e.IV, nil, ciphertext, off, n)
}
