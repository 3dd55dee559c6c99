package format

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"slices"
	"strconv"
	"strings"

	"github.com/s3envelope/s3envelope/internal/segment"
)

// Metadata keys, as S3 user metadata (x-amz-meta-<key> on the wire).
const (
	keyV1          = "x-amz-key"
	keyV2          = "x-amz-key-v2"
	keyIV          = "x-amz-iv"
	keyMatDesc     = "x-amz-matdesc"
	keyCEKAlg      = "x-amz-cek-alg"
	keyWrapAlg     = "x-amz-wrap-alg"
	keyTagLen      = "x-amz-tag-len"
	keyPlainLen    = "x-amz-unencrypted-content-length"
	keyV3Content   = "x-amz-c"
	keyV3Key       = "x-amz-3"
	keyV3Wrap      = "x-amz-w"
	keyV3MatDesc   = "x-amz-m"
	keyV3Context   = "x-amz-t"
	keyV3Commit    = "x-amz-d"
	keyV3MessageID = "x-amz-i"

	// The segmented format's own names, so that AWS's clients find no
	// envelope of theirs on a segmented object.
	keySegVersion = "x-s3e-v"
	keySegSize    = "x-s3e-s"
	keySegKey     = "x-s3e-k"
	keySegWrap    = "x-s3e-w"
	keySegMatDesc = "x-s3e-m"
	keySegID      = "x-s3e-i"
	keySegCommit  = "x-s3e-d"
)

// segVersion is the segmented format's version as stored in x-s3e-v.
const segVersion = "1"

// segObjectKeys are the segmented envelope's fields that stay in the
// object's metadata when the rest is in an instruction file: what the key
// schedule binds.
var segObjectKeys = []string{keySegVersion, keySegSize, keySegID, keySegCommit}

// InstructionSuffix is appended to an object's key to name its instruction
// file, the separate object that holds its envelope when it is not stored
// in the object's metadata.
const InstructionSuffix = ".instruction"

// InstructionMarker is the user-metadata key that AWS's Java client sets
// (to "") on instruction files; this library sets it too.
const InstructionMarker = "x-amz-crypto-instr-file"

// Sizes of stored fields.
const (
	IVSize         = 12 // V2 GCM IV
	CBCIVSize      = 16 // V1 CBC IV
	MessageIDSize  = 28 // V3 message ID
	CommitmentSize = 28 // V3 key commitment
	TagSize        = 16 // GCM tag appended to the body
)

// MaxInstructionSize bounds an instruction file; larger ones are refused
// with ErrTooLarge before they are parsed.
const MaxInstructionSize = 64 << 10

// maxField bounds any one stored value, so hostile metadata cannot make a
// decoder allocate without limit. S3 caps all user metadata at 2 KB, but an
// instruction file is a whole object.
const maxField = 16 << 10

var v3Wrap = map[string]string{
	"02": WrapAESGCM,
	"12": WrapKMSContext,
	"22": WrapRSAOAEPSHA1,
}

// Envelope is what is stored with an encrypted object so it can be
// decrypted: the format, the algorithms, the wrapped data key, the master
// key's description, and the nonce material.
type Envelope struct {
	Format Format
	// ContentAlgorithm is a Content* constant.
	ContentAlgorithm string
	// Key is the wrapped data key with its wrap algorithm and description.
	Key WrappedKey
	// IV is the content IV of V1 (16 bytes) and V2 (12 bytes) objects.
	IV []byte
	// MessageID and Commitment are the V3 key-schedule salt and commitment.
	// Commitment is also the segmented format's (32 bytes).
	MessageID, Commitment []byte
	// ObjectID is the segmented format's key-schedule salt (32 bytes).
	ObjectID []byte
	// SegmentSize is the segmented format's plaintext bytes per segment.
	SegmentSize int
	// PlaintextLength is x-amz-unencrypted-content-length, or -1 when absent.
	// It is not authenticated: Open refuses a body that holds more or less
	// (a longer one as soon as it is read past the length, so a hostile
	// body is never spooled whole). A reader that knows the stored body's
	// size (S3's Content-Length) sets it, when absent (V3 does not store
	// it), to PlaintextSize of that size, so that the bound holds for every
	// V2 and V3 object.
	PlaintextLength int64
}

// HasEnvelope reports whether metadata carries an envelope by itself, so
// that no instruction file need be read. Keys are matched case-insensitively.
func HasEnvelope(metadata map[string]string) bool {
	m := lower(metadata)
	_, v1 := m[keyV1]
	_, v2 := m[keyV2]
	_, v3 := m[keyV3Key]
	_, seg := m[keySegKey]
	return v1 || v2 || v3 || seg
}

// Decode reads an object's envelope from its metadata, or, when the
// metadata holds no wrapped key, from its instruction file (nil when there
// is none), merging the fields the format keeps on the object (V3's
// x-amz-c/d/i, the segmented format's x-s3e-v/s/i/d). A wrapped key in the
// metadata always wins over the instruction file. Errors wrap ErrMalformed
// (including envelope fields with no wrapped key anywhere, and an
// instruction file without one), ErrUnsupported, ErrTooLarge, or
// ErrNoEnvelope when the metadata holds no envelope field at all and there
// is no instruction file: the object was not client-side encrypted.
func Decode(metadata map[string]string, instruction []byte) (*Envelope, error) {
	m, err := lowerFields(metadata, "metadata")
	if err != nil {
		return nil, err
	}
	if !HasEnvelope(m) {
		if instruction == nil {
			// Envelope fields without a wrapped key: an encrypted object
			// whose envelope is damaged or whose instruction file is gone,
			// not an unencrypted one (which a caller might serve as is).
			for k := range m {
				if IsEnvelopeKey(k) {
					return nil, fmt.Errorf("%w: metadata holds envelope field %s but no wrapped key, and there is no instruction file", ErrMalformed, k)
				}
			}
			return nil, ErrNoEnvelope
		}
		ins, err := ParseInstruction(instruction)
		if err != nil {
			return nil, err
		}
		if !HasEnvelope(ins) {
			return nil, fmt.Errorf("%w: the instruction file holds no wrapped key", ErrMalformed)
		}
		if err := checkObjectFields(m, ins); err != nil {
			return nil, err
		}
		_, insV3Key := ins[keyV3Key]
		_, insV3Wrap := ins[keyV3Wrap]
		if insV3Key || insV3Wrap {
			// V3 keeps the commitment and message ID in the object's own
			// metadata: an instruction file must not be able to supply them.
			for _, k := range []string{keyV3Content, keyV3Commit, keyV3MessageID} {
				if _, ok := ins[k]; ok {
					return nil, fmt.Errorf("%w: instruction file holds %s, which V3 keeps in object metadata", ErrMalformed, k)
				}
				if v, ok := m[k]; ok {
					ins[k] = v
				}
			}
		}
		_, insSegKey := ins[keySegKey]
		_, insSegWrap := ins[keySegWrap]
		if insSegKey || insSegWrap {
			for _, k := range segObjectKeys {
				if _, ok := ins[k]; ok {
					return nil, fmt.Errorf("%w: instruction file holds %s, which the segmented format keeps in object metadata", ErrMalformed, k)
				}
				if v, ok := m[k]; ok {
					ins[k] = v
				}
			}
		}
		m = ins
	}
	return decodeMap(m)
}

// Envelope fields by format: those of V1 and V2, of V3, and of the
// segmented format. x-amz-unencrypted-content-length is shared.
var (
	v12Fields = []string{keyV1, keyV2, keyIV, keyMatDesc, keyCEKAlg, keyWrapAlg, keyTagLen}
	v3Fields  = []string{keyV3Content, keyV3Key, keyV3Wrap, keyV3MatDesc, keyV3Context, keyV3Commit, keyV3MessageID}
	segFields = []string{keySegVersion, keySegSize, keySegKey, keySegWrap, keySegMatDesc, keySegID, keySegCommit}
)

// checkObjectFields refuses an object whose metadata holds envelope fields
// of another format than its instruction file's: the file must not be able
// to stand in for the object's own envelope (a V2 instruction file on a V3
// object would drop its key commitment, and the object would open as V2).
// Fields of the file's own format on the object are what V3 and the
// segmented format keep there (merged by Decode), or are overridden by the
// file.
func checkObjectFields(m, ins map[string]string) error {
	_, v3Key := ins[keyV3Key]
	_, v3Wrap := ins[keyV3Wrap]
	_, segKey := ins[keySegKey]
	_, segWrap := ins[keySegWrap]
	own, name := v12Fields, "V1/V2"
	switch {
	case v3Key || v3Wrap:
		own, name = v3Fields, "V3"
	case segKey || segWrap:
		own, name = segFields, "segmented"
	}
	for k := range m {
		if IsEnvelopeKey(k) && k != keyPlainLen && !slices.Contains(own, k) {
			return fmt.Errorf("%w: object metadata holds %s, a field of another format than its %s instruction file", ErrMalformed, k, name)
		}
	}
	return nil
}

// ParseInstruction parses an instruction file: one flat JSON object of
// strings (numbers are accepted for the two numeric V2 fields, as some
// writers emit them).
func ParseInstruction(b []byte) (map[string]string, error) {
	if len(b) > MaxInstructionSize {
		return nil, fmt.Errorf("%w: instruction file of %d bytes (limit %d)", ErrTooLarge, len(b), MaxInstructionSize)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("%w: instruction file is not a JSON object", ErrMalformed)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			lk := strings.ToLower(k)
			if lk != keyTagLen && lk != keyPlainLen {
				return nil, fmt.Errorf("%w: instruction file field %q is not a string", ErrMalformed, k)
			}
			var n json.Number
			d := json.NewDecoder(bytes.NewReader(v))
			d.UseNumber()
			if err := d.Decode(&n); err != nil {
				return nil, fmt.Errorf("%w: instruction file field %q is not a string or number", ErrMalformed, k)
			}
			s = n.String()
		}
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup && IsEnvelopeKey(lk) {
			return nil, fmt.Errorf("%w: instruction file holds envelope field %s twice, in different cases", ErrMalformed, lk)
		}
		out[lk] = s
	}
	return out, nil
}

func decodeMap(m map[string]string) (*Envelope, error) {
	for k, v := range m {
		if len(v) > maxField {
			return nil, fmt.Errorf("%w: field %s of %d bytes", ErrTooLarge, k, len(v))
		}
	}
	_, hasV1 := m[keyV1]
	_, hasV2 := m[keyV2]
	_, hasV3 := m[keyV3Key]
	_, hasSeg := m[keySegKey]
	switch {
	case hasV3 && (hasV1 || hasV2), hasV1 && hasV2, hasSeg && (hasV1 || hasV2 || hasV3):
		return nil, fmt.Errorf("%w: metadata holds wrapped keys of more than one format", ErrMalformed)
	case hasSeg:
		return decodeSegmented(m)
	case hasV3:
		return decodeV3(m)
	case hasV2:
		return decodeV12(m, FormatV2)
	case hasV1:
		return decodeV12(m, FormatV1)
	}
	return nil, ErrNoEnvelope
}

func decodeV12(m map[string]string, f Format) (*Envelope, error) {
	e := &Envelope{Format: f, PlaintextLength: -1}
	for _, k := range []string{keyV3Content, keyV3Wrap, keyV3Commit, keyV3MessageID, keySegVersion, keySegSize, keySegWrap, keySegID, keySegCommit} {
		if _, ok := m[k]; ok {
			return nil, fmt.Errorf("%w: %v envelope also holds field %s of another format", ErrMalformed, f, k)
		}
	}
	var err error
	keyName := keyV2
	if f == FormatV1 {
		keyName = keyV1
	}
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
	switch {
	case f == FormatV1 && e.ContentAlgorithm == "":
		e.ContentAlgorithm = ContentAESCBC
	case f == FormatV1 && e.ContentAlgorithm != ContentAESCBC:
		return nil, fmt.Errorf("%w: V1 envelope with content algorithm %q", ErrUnsupported, e.ContentAlgorithm)
	case e.ContentAlgorithm == "":
		return nil, fmt.Errorf("%w: missing %s", ErrMalformed, keyCEKAlg)
	}
	if e.Key.Algorithm == "" {
		if f != FormatV1 {
			return nil, fmt.Errorf("%w: missing %s", ErrMalformed, keyWrapAlg)
		}
		// V1 objects may predate x-amz-wrap-alg. As AWS's Java client does,
		// a key longer than an AES/ECB-wrapped 256-bit key (48 bytes) must
		// be RSA-wrapped.
		e.Key.Algorithm = WrapLegacyAES
		if len(e.Key.Ciphertext) > 48 {
			e.Key.Algorithm = WrapLegacyRSA
		}
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

func decodeSegmented(m map[string]string) (*Envelope, error) {
	e := &Envelope{Format: FormatSegmented, ContentAlgorithm: ContentSegmented, PlaintextLength: -1}
	for k := range m {
		if strings.HasPrefix(k, "x-amz-") && IsEnvelopeKey(k) {
			return nil, fmt.Errorf("%w: segmented envelope also holds field %s of another format", ErrMalformed, k)
		}
	}
	v, ok := m[keySegVersion]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: missing %s", ErrMalformed, keySegVersion)
	case v != segVersion:
		return nil, fmt.Errorf("%w: segmented format version %q", ErrUnsupported, v)
	}
	s, ok := m[keySegSize]
	if !ok {
		return nil, fmt.Errorf("%w: missing %s", ErrMalformed, keySegSize)
	}
	size, err := strconv.Atoi(s)
	if err != nil || strconv.Itoa(size) != s || !segment.ValidSize(size) {
		return nil, fmt.Errorf("%w: %s is not a power of two from %d to %d", ErrMalformed, keySegSize, MinSegmentSize, MaxSegmentSize)
	}
	e.SegmentSize = size
	w, ok := m[keySegWrap]
	if !ok {
		return nil, fmt.Errorf("%w: missing %s", ErrMalformed, keySegWrap)
	}
	switch w {
	case WrapAESGCM, WrapRSAOAEPSHA1, WrapKMSContext:
		e.Key.Algorithm = w
	default:
		// Legacy wraps bind no content algorithm: never with this format.
		return nil, fmt.Errorf("%w: wrap algorithm %q in a segmented envelope", ErrUnsupported, w)
	}
	if e.Key.Ciphertext, err = b64(m, keySegKey); err != nil {
		return nil, err
	}
	if e.ObjectID, err = b64(m, keySegID); err != nil {
		return nil, err
	}
	if e.Commitment, err = b64(m, keySegCommit); err != nil {
		return nil, err
	}
	if len(e.ObjectID) != ObjectIDSize || len(e.Commitment) != SegmentCommitmentSize {
		return nil, fmt.Errorf("%w: segmented object ID and commitment must be %d bytes", ErrMalformed, ObjectIDSize)
	}
	if e.Key.Description, err = parseDescription(m, keySegMatDesc); err != nil {
		return nil, err
	}
	return e, nil
}

// plainLength reads x-amz-unencrypted-content-length: -1 when absent (or
// "", which AWS's Go v4 client stores on V3 objects); a length past what
// one AES-GCM pass holds is ErrTooLarge, before any of the body is read.
func plainLength(m map[string]string) (int64, error) {
	s := m[keyPlainLen]
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s is not a length", ErrMalformed, keyPlainLen)
	}
	if n > MaxPlaintext {
		return 0, fmt.Errorf("%w: %s of %d bytes, more than an AES-GCM object holds", ErrTooLarge, keyPlainLen, n)
	}
	return n, nil
}

func b64(m map[string]string, k string) ([]byte, error) {
	s, ok := m[k]
	if !ok {
		return nil, fmt.Errorf("%w: missing %s", ErrMalformed, k)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%w: %s is not base64", ErrMalformed, k)
	}
	return b, nil
}

// parseDescription parses a material description (or KMS encryption
// context): a JSON object of strings. Absent means empty.
func parseDescription(m map[string]string, k string) (map[string]string, error) {
	s, ok := m[k]
	if !ok || s == "" {
		return map[string]string{}, nil
	}
	// S3 returns non-ASCII metadata values RFC 2047-encoded ("=?UTF-8?B?…?=");
	// a description is JSON, which never starts that way.
	if strings.HasPrefix(s, "=?") {
		d, err := new(mime.WordDecoder).DecodeHeader(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is neither JSON nor RFC 2047", ErrMalformed, k)
		}
		s = d
	}
	d, err := ParseDescription(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	return d, nil
}

// ParseDescription parses a stored material description, a JSON object whose
// values are strings. Errors wrap ErrMalformed.
func ParseDescription(s string) (map[string]string, error) {
	var d map[string]string
	if err := json.Unmarshal([]byte(s), &d); err != nil || d == nil {
		return nil, fmt.Errorf("%w: material description is not a JSON object of strings", ErrMalformed)
	}
	return d, nil
}

// EncodeDescription renders a description as stored: JSON with sorted keys.
func EncodeDescription(d map[string]string) string {
	if d == nil {
		d = map[string]string{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(d) // a map of strings always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// Metadata returns the envelope as object metadata, for an object that
// stores its envelope in metadata.
func (e *Envelope) Metadata() (map[string]string, error) {
	m := map[string]string{}
	enc := base64.StdEncoding.EncodeToString
	switch e.Format {
	case FormatV2:
		m[keyV2] = enc(e.Key.Ciphertext)
		m[keyIV] = enc(e.IV)
		m[keyCEKAlg] = e.ContentAlgorithm
		m[keyWrapAlg] = e.Key.Algorithm
		m[keyTagLen] = "128"
		m[keyMatDesc] = EncodeDescription(e.Key.Description)
		if e.PlaintextLength >= 0 {
			m[keyPlainLen] = strconv.FormatInt(e.PlaintextLength, 10)
		}
	case FormatV3:
		var code string
		for c, a := range v3Wrap {
			if a == e.Key.Algorithm {
				code = c
			}
		}
		if code == "" {
			return nil, fmt.Errorf("%w: wrap algorithm %q in V3", ErrUnsupported, e.Key.Algorithm)
		}
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
	case FormatSegmented:
		m[keySegVersion] = segVersion
		m[keySegSize] = strconv.Itoa(e.SegmentSize)
		m[keySegKey] = enc(e.Key.Ciphertext)
		m[keySegWrap] = e.Key.Algorithm
		if len(e.Key.Description) > 0 {
			m[keySegMatDesc] = EncodeDescription(e.Key.Description)
		}
		m[keySegID] = enc(e.ObjectID)
		m[keySegCommit] = enc(e.Commitment)
	default:
		return nil, fmt.Errorf("%w: cannot write format %v", ErrUnsupported, e.Format)
	}
	return m, nil
}

// Instruction splits the envelope for an object that stores it in an
// instruction file: what goes in the object's own metadata (V3's x-amz-c,
// x-amz-d and x-amz-i; nothing for V2) and the instruction file's JSON.
func (e *Envelope) Instruction() (metadata map[string]string, instruction []byte, err error) {
	all, err := e.Metadata()
	if err != nil {
		return nil, nil, err
	}
	metadata = map[string]string{}
	var onObject []string
	switch e.Format {
	case FormatV3:
		onObject = []string{keyV3Content, keyV3Commit, keyV3MessageID}
	case FormatSegmented:
		onObject = segObjectKeys
	}
	for _, k := range onObject {
		metadata[k] = all[k]
		delete(all, k)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(all); err != nil {
		return nil, nil, err
	}
	return metadata, bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// IsEnvelopeKey reports whether a metadata key belongs to an envelope (of
// any format), so that rewriting an envelope can keep every other key.
func IsEnvelopeKey(k string) bool {
	switch strings.ToLower(k) {
	case keyV1, keyV2, keyIV, keyMatDesc, keyCEKAlg, keyWrapAlg, keyTagLen, keyPlainLen,
		keyV3Content, keyV3Key, keyV3Wrap, keyV3MatDesc, keyV3Context, keyV3Commit, keyV3MessageID,
		keySegVersion, keySegSize, keySegKey, keySegWrap, keySegMatDesc, keySegID, keySegCommit:
		return true
	}
	return false
}

// lowerFields is lower, refusing an envelope field given twice in
// different cases: which one a map's order would pick must not decide
// whether an object opens.
func lowerFields(m map[string]string, what string) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, v := range m {
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup && IsEnvelopeKey(lk) {
			return nil, fmt.Errorf("%w: %s holds envelope field %s twice, in different cases", ErrMalformed, what, lk)
		}
		out[lk] = v
	}
	return out, nil
}

func lower(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}
