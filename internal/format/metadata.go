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
)

// keyPlainLen is the plaintext length, a metadata key V1, V2 and V3 share
// (x-amz-meta-<key> on the wire, as every metadata key). Each format's own
// keys are in its file.
const keyPlainLen = "x-amz-unencrypted-content-length"

// InstructionSuffix is appended to an object's key to name its instruction
// file, the separate object that holds its envelope when it is not stored
// in the object's metadata.
const InstructionSuffix = ".instruction"

// InstructionMarker is the user-metadata key that AWS's Java client sets
// (to "") on instruction files; this library sets it too.
const InstructionMarker = "x-amz-crypto-instr-file"

// MaxInstructionSize bounds an instruction file; larger ones are refused
// with ErrTooLarge before they are parsed.
const MaxInstructionSize = 64 << 10

// maxField bounds any one stored value, so hostile metadata cannot make a
// decoder allocate without limit. S3 caps all user metadata at 2 KB, but an
// instruction file is a whole object.
const maxField = 16 << 10

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
	for _, f := range formats {
		if _, ok := m[f.layout().key]; ok {
			return true
		}
	}
	return false
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
		named := namedIn(ins)
		if err := checkObjectFields(m, named); err != nil {
			return nil, err
		}
		// A format's fields that stay on the object (V3's commitment and
		// message ID, what the segmented key schedule binds) come from the
		// object's own metadata: an instruction file must not be able to
		// supply them.
		for _, f := range named {
			l := f.layout()
			for _, k := range l.onObject {
				if _, ok := ins[k]; ok {
					return nil, fmt.Errorf("%w: instruction file holds %s, which %s keeps in object metadata", ErrMalformed, k, l.keeper)
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

// checkObjectFields refuses an object whose metadata holds envelope fields
// of another format than its instruction file's: the file must not be able
// to stand in for the object's own envelope (a V2 instruction file on a V3
// object would drop its key commitment, and the object would open as V2).
// Fields of the file's own format on the object are what V3 and the
// segmented format keep there (merged by Decode), or are overridden by the
// file. The file's format is the first it names (see formats): named is
// not empty, as the file holds a wrapped key.
func checkObjectFields(m map[string]string, named []storedFormat) error {
	if len(named) == 0 {
		return fmt.Errorf("%w: the instruction file holds no wrapped key", ErrMalformed)
	}
	own := named[0].layout()
	for k := range m {
		if IsEnvelopeKey(k) && k != keyPlainLen && !slices.Contains(own.all, k) {
			return fmt.Errorf("%w: object metadata holds %s, a field of another format than its %s instruction file", ErrMalformed, k, own.name)
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
	f, err := storedIn(m)
	if err != nil {
		return nil, err
	}
	return f.decode(m)
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
	f := formatOf(e.Format)
	if f == nil {
		return nil, cannotWrite(e.Format)
	}
	return f.encode(e)
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
	// Metadata succeeded: e's format has code.
	for _, k := range formatOf(e.Format).layout().onObject {
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
	k = strings.ToLower(k)
	if k == keyPlainLen {
		return true
	}
	for _, f := range formats {
		if slices.Contains(f.layout().all, k) {
			return true
		}
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
