package format

import (
	"context"
	"crypto/subtle"
	"fmt"
	"github.com/s3envelope/s3envelope/internal/segment"
	"io"
)

// This file is the one place that picks a stored format's code: the rest
// of the package calls the storedFormat that formatOf, bodyFormatOf,
// storedIn or namedIn return. Each format's code is in a file of its own:
// v1.go (AWS's legacy AES/CBC), v2.go, v3.go and segmented.go; gcm.go
// holds the AES-GCM body that V2 and V3 share, and noFormat below what is
// left for envelopes of no format. Open, OpenRange and NewReaderAt are here
// too: the checks every format shares, then its code.

// storedFormat is the code of one stored format: the fields it keeps in an
// object's metadata, its key schedule, the sizes of its bodies, and how it
// seals and opens them. Envelopes reach it already checked against the
// Config, and, for open and openRange, with their data key unwrapped and
// their content algorithm the format's.
type storedFormat interface {
	bodyFormat
	// format is the Format this code is for.
	format() Format

	// layout names the format's metadata fields.
	layout() *layout
	// decode reads an envelope of the format from metadata (lower-case
	// keys, bounded values) that holds its wrapped key and no other
	// format's.
	decode(m map[string]string) (*Envelope, error)
	// encode renders e as object metadata.
	encode(e *Envelope) (map[string]string, error)

	// committing reports whether the format commits to its data key.
	committing() bool
	// checkDataKey checks dataKey against e's key commitment, if the format
	// has one, in constant time.
	checkDataKey(e *Envelope, dataKey []byte) error

	// ciphertextSize is the body size of plaintext (>= 0) bytes.
	ciphertextSize(e *Envelope, plaintext int64) (int64, error)
	// newSealer draws e's nonce material (IV, message ID, or object ID and
	// commitment) and returns the sealer of its body under dataKey.
	newSealer(e *Envelope, dataKey []byte, cfg Config) (bodySealer, error)
}

// bodyFormat is the part of a format's code that reads bodies (see
// bodyFormatOf).
type bodyFormat interface {
	// content is the content algorithm of the format's bodies, which every
	// key wrap binds.
	content() string
	// plaintextSize is the plaintext size of a body of ciphertext bytes,
	// as far as the format tells without reading it.
	plaintextSize(e *Envelope, ciphertext int64) (int64, error)
	// ciphertextRange is Envelope.CiphertextRange.
	ciphertextRange(e *Envelope, size, off, n int64) (start, end int64, err error)
	// open opens a whole body.
	open(e *Envelope, dataKey []byte, cfg Config, ciphertext io.Reader) (*Plaintext, error)
	// rangesAuthenticated reports whether openRange authenticates what it
	// releases; if not, it is called only under
	// Config.EnableLegacyUnauthenticatedModes.
	rangesAuthenticated() bool
	// openRange opens plaintext bytes [off, off+n) of a body of size bytes
	// from ciphertext, which yields the bytes ciphertextRange named.
	openRange(e *Envelope, dataKey []byte, cfg Config, ciphertext io.Reader, size, off, n int64) (*Plaintext, error)
}

// randomAccess is a format whose pieces authenticate alone, so that its
// plaintext can be read at random (NewReaderAt).
type randomAccess interface {
	bodyFormat
	newReaderAt(e *Envelope, dataKey []byte, cfg Config, ciphertext io.ReaderAt, size int64) (*ReaderAt, error)
}

// layout names a format's metadata fields.
type layout struct {
	// key and wrap are the fields of the wrapped data key and of its wrap
	// algorithm; a metadata map or instruction file that holds either
	// names the format.
	key, wrap string
	// all is every field of the format but the shared
	// x-amz-unencrypted-content-length.
	all []string
	// onObject are the fields that stay in the object's own metadata when
	// the rest are in an instruction file: what the key schedule binds.
	onObject []string
	// name names the format's fields in errors ("V1/V2" for the fields
	// those two share); keeper names the format as the keeper of onObject.
	name, keeper string
}

// formats is every stored format's code, the committing ones first: an
// instruction file that names several formats is held to the rules of the
// first (see Decode).
var formats = [...]storedFormat{v3Format{}, segFormat{}, v2Format{}, v1Format{}}

// formatOf returns the code of format f, or nil when there is none (the
// zero Format, for one).
func formatOf(f Format) storedFormat {
	for _, sf := range formats {
		if sf.format() == f {
			return sf
		}
	}
	return nil
}

// bodyFormatOf returns the code that reads e's body. AES/CBC content is
// V1's, whichever format's fields hold it (AWS's clients also stored it
// under V2's); other content is read by the code of e's format, unless that
// is V1, whose bodies are all AES/CBC. What is left (only a hand-made
// Envelope can be any of it) is noFormat's.
func bodyFormatOf(e *Envelope) bodyFormat {
	if e.ContentAlgorithm == ContentAESCBC {
		return v1Format{}
	}
	if f := formatOf(e.Format); f != nil && f.content() != ContentAESCBC {
		return f
	}
	return noFormat{}
}

// noFormat reads the bodies of envelopes of no format, or of V1 with
// content other than AES/CBC: it opens none of them, and sizes them as
// AES-GCM bodies, as this package always has.
type noFormat struct{ gcmBody }

// content matches no envelope's content algorithm but "", which open
// refuses too.
func (noFormat) content() string { return "" }

func (noFormat) open(e *Envelope, _ []byte, _ Config, _ io.Reader) (*Plaintext, error) {
	return nil, unsupportedContent(e)
}

func (noFormat) openRange(e *Envelope, _ []byte, _ Config, _ io.Reader, _, _, _ int64) (*Plaintext, error) {
	return nil, unsupportedContent(e)
}

// storedIn returns the format whose wrapped key metadata m holds: an error
// wrapping ErrMalformed when it holds more than one, ErrNoEnvelope when
// none.
func storedIn(m map[string]string) (storedFormat, error) {
	var found storedFormat
	for _, f := range formats {
		if _, ok := m[f.layout().key]; !ok {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w: metadata holds wrapped keys of more than one format", ErrMalformed)
		}
		found = f
	}
	if found == nil {
		return nil, ErrNoEnvelope
	}
	return found, nil
}

// namedIn returns the formats whose wrapped key or wrap algorithm field m
// holds, in the order of formats.
func namedIn(m map[string]string) []storedFormat {
	var out []storedFormat
	for _, f := range formats {
		_, key := m[f.layout().key]
		_, wrap := m[f.layout().wrap]
		if key || wrap {
			out = append(out, f)
		}
	}
	return out
}

// cannotWrite is the error for an envelope of a format this package does
// not write.
func cannotWrite(f Format) error {
	return fmt.Errorf("%w: cannot write format %v", ErrUnsupported, f)
}

// unsupportedContent is the error for an envelope whose content algorithm
// is not its format's.
func unsupportedContent(e *Envelope) error {
	return fmt.Errorf("%w: content algorithm %q in a %v envelope", ErrUnsupported, e.ContentAlgorithm, e.Format)
}

// checkCommitment compares a key commitment computed from a data key with
// the stored one, in constant time.
func checkCommitment(computed, stored []byte) error {
	if subtle.ConstantTimeCompare(computed, stored) != 1 {
		return fmt.Errorf("%w: key commitment does not match", ErrAuthentication)
	}
	return nil
}

// tooLargeFor is the error for a plaintext past what e's format holds.
func tooLargeFor(e *Envelope, plaintext int64) error {
	return fmt.Errorf("%w: %d bytes are more than a %v object holds", ErrTooLarge, plaintext, e.Format)
}

// CiphertextSize is the size of the stored body of an object of plaintext
// bytes in e's format. It fails with ErrTooLarge past the format's limit
// (MaxPlaintext for V2 and V3).
func (e *Envelope) CiphertextSize(plaintext int64) (int64, error) {
	if plaintext < 0 {
		return 0, fmt.Errorf("%w: negative plaintext length", ErrMalformed)
	}
	f := formatOf(e.Format)
	if f == nil {
		return 0, cannotWrite(e.Format)
	}
	return f.ciphertextSize(e, plaintext)
}

// PlaintextSize is the plaintext size of an object whose stored body is
// ciphertext bytes long, as far as the format tells without reading it:
// nothing authenticates it until the body is read. A length no writer of
// the format produces fails with ErrAuthentication, a V2 or V3 length past
// MaxPlaintext with ErrTooLarge. A V1 object's size is its stored
// x-amz-unencrypted-content-length, if any.
func (e *Envelope) PlaintextSize(ciphertext int64) (int64, error) {
	return bodyFormatOf(e).plaintextSize(e, ciphertext)
}

// CiphertextRange returns which bytes [start, end) of a stored body of
// size bytes hold plaintext bytes [off, off+n): for a segmented object the
// segments that hold them; for V2 and V3 (read only with
// Config.EnableLegacyUnauthenticatedModes, see OpenRange) the AES-CTR blocks
// that do. The range must lie inside the plaintext and n must be positive;
// V1 objects have no ranges (ErrUnsupported).
func (e *Envelope) CiphertextRange(size, off, n int64) (start, end int64, err error) {
	return bodyFormatOf(e).ciphertextRange(e, size, off, n)
}

// plaintextRange returns the plaintext size of a body of size bytes, once
// it has checked that [off, off+n) lies inside it.
func plaintextRange(e *Envelope, size, off, n int64) (int64, error) {
	p, err := e.PlaintextSize(size)
	if err != nil {
		return 0, err
	}
	if off < 0 || n <= 0 || off >= p || n > p-off {
		return 0, fmt.Errorf("%w: range of %d bytes at %d outside a plaintext of %d bytes", ErrInvalidRange, n, off, p)
	}
	return p, nil
}

// committing reports whether the envelope's format commits to its data key.
func (e *Envelope) committing() bool {
	f := formatOf(e.Format)
	return f != nil && f.committing()
}

// CheckDataKey reports whether dataKey is the data key the envelope was
// sealed under, as far as the format can tell without the body: for V3 the
// key commitment must match (compared in constant time), and so must the
// segmented format's; V1 and V2 commit to
// nothing, so any key passes. A rewrap checks this before storing a new
// wrapped key, so it can never replace a working envelope with a wrong one.
func (e *Envelope) CheckDataKey(dataKey []byte) error {
	f := formatOf(e.Format)
	if f == nil {
		return nil
	}
	return f.checkDataKey(e, dataKey)
}

// chunk is the unit in which bodies are read, hashed and decrypted.
const chunk = 64 << 10

// Open authenticates and decrypts an object's body read from ciphertext,
// using u to unwrap its data key. For V2 and V3 it returns only once the
// whole body has been verified (the tag, and for V3 first the key
// commitment): the ciphertext waits in a spool (memory up to
// cfg.SpoolMemory, then a temporary file), and plaintext is decrypted from
// it as it is read; both passes, the GHASH while spooling and the
// decryption, run on up to min(GOMAXPROCS, CPUs, 4) goroutines. A segmented
// object's commitment is checked before Open returns; its plaintext is
// then released segment by segment as each opens (on up to
// cfg.SegmentWorkers goroutines), and a body that is cut short, extended
// or altered fails with ErrAuthentication once the segments before the
// fault are read: a caller must treat a read error as the whole object
// failing.
//
// cfg decides what may be opened; the envelope's own fields never widen it.
// Errors wrap ErrAuthentication, ErrPolicy, ErrDisallowed, ErrMalformed,
// ErrTooLarge, or an error from u or from reading ciphertext.
func Open(ctx context.Context, e *Envelope, u Unwrapper, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	if err := checkMasterKey(u); err != nil {
		return nil, err
	}
	if err := cfg.checkRead(e); err != nil {
		return nil, err
	}
	dataKey, err := u.Unwrap(ctx, &e.Key, e.ContentAlgorithm)
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	f := bodyFormatOf(e)
	if e.ContentAlgorithm != f.content() {
		return nil, unsupportedContent(e)
	}
	return f.open(e, dataKey, cfg, ciphertext)
}

// OpenRange decrypts plaintext bytes [off, off+n) of an object whose
// stored body is size bytes long, from ciphertext, which must yield exactly
// body bytes [start, end) as e.CiphertextRange(size, off, n) returns them.
//
// A segmented object's range is authenticated segment by segment before
// any of it is released; each segment opens with the final flag only if it
// is the object's last by size, so a size that lies (to hide a truncation
// or an extension) makes the range fail when it reaches the end, and a range
// inside the object does not depend on it.
//
// A V2 or V3 object's range cannot be authenticated without the whole body:
// it is decrypted with AES-CTR, as AWS's Java client does in its legacy
// mode, only when cfg.EnableLegacyUnauthenticatedModes is set (V3's key
// commitment is still checked); otherwise it fails with ErrDisallowed.
func OpenRange(ctx context.Context, e *Envelope, u Unwrapper, cfg Config, ciphertext io.Reader, size, off, n int64) (*Plaintext, error) {
	if err := checkMasterKey(u); err != nil {
		return nil, err
	}
	if err := cfg.checkRead(e); err != nil {
		return nil, err
	}
	if _, _, err := e.CiphertextRange(size, off, n); err != nil {
		return nil, err
	}
	f := bodyFormatOf(e)
	if !f.rangesAuthenticated() && !cfg.EnableLegacyUnauthenticatedModes {
		return nil, fmt.Errorf("%w: a range of a %v object cannot be authenticated; enable legacy unauthenticated modes to read it unauthenticated", ErrDisallowed, e.Format)
	}
	dataKey, err := u.Unwrap(ctx, &e.Key, e.ContentAlgorithm)
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	if e.ContentAlgorithm != f.content() {
		return nil, unsupportedContent(e)
	}
	return f.openRange(e, dataKey, cfg, ciphertext, size, off, n)
}

// NewReaderAt returns a ReaderAt over a segmented object's stored body of
// size bytes, read from ciphertext. It checks the key commitment and opens
// the final segment first, so Size is authenticated before any read; each
// ReadAt then reads from ciphertext only the segments it needs (the final
// one is kept), in one call. Other formats fail with ErrUnsupported: their
// pieces cannot be authenticated alone.
func NewReaderAt(ctx context.Context, e *Envelope, u Unwrapper, cfg Config, ciphertext io.ReaderAt, size int64) (*ReaderAt, error) {
	if err := checkMasterKey(u); err != nil {
		return nil, err
	}
	if err := cfg.checkRead(e); err != nil {
		return nil, err
	}
	f, ok := bodyFormatOf(e).(randomAccess)
	if !ok || e.ContentAlgorithm != f.content() {
		return nil, fmt.Errorf("%w: only segmented objects can be read at random with authentication, not %v", ErrUnsupported, e.Format)
	}
	if _, err := e.PlaintextSize(size); err != nil {
		return nil, err
	}
	dataKey, err := u.Unwrap(ctx, &e.Key, e.ContentAlgorithm)
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	return f.newReaderAt(e, dataKey, cfg, ciphertext, size)
}

// tooLong refuses a body once it holds more than total bytes of plaintext
// than it may: its stored length, MaxPlaintext, or, when its length is
// unknown, SpoolLimit. It fails as soon as the body passes the bound,
// before the excess is spooled, so a hostile body costs no more memory or
// disk than the length it claims.
func tooLong(e *Envelope, cfg Config, total int64) error {
	limit := cfg.bodyLimit(e)
	switch {
	case total <= limit:
		return nil
	case e.PlaintextLength >= 0:
		return fmt.Errorf("%w: stored plaintext length %d, body holds more", ErrMalformed, e.PlaintextLength)
	case limit < MaxPlaintext:
		return fmt.Errorf("%w: a body of unknown length passed the spool limit of %d bytes (Config.SpoolLimit)", ErrTooLarge, limit)
	}
	return fmt.Errorf("%w: body exceeds %d bytes", ErrTooLarge, int64(MaxPlaintext))
}

// Valid checks what Decode checks of an envelope's fixed-size fields, for an
// Envelope that did not come from Decode (the public envelope package's
// Envelope is a struct a program may fill in by hand): the IV, message ID,
// commitment and object ID lengths and the segment size its format and
// content algorithm need. Nothing else here may then index past a field or
// divide by a zero segment size.
func (e *Envelope) Valid() error {
	bad := func(what string, got, want int) error {
		return fmt.Errorf("%w: %s of %d bytes, want %d", ErrMalformed, what, got, want)
	}
	switch {
	case e.ContentAlgorithm == ContentAESCBC:
		if len(e.IV) != CBCIVSize {
			return bad("IV", len(e.IV), CBCIVSize)
		}
	case e.Format == FormatV2:
		if len(e.IV) != IVSize {
			return bad("IV", len(e.IV), IVSize)
		}
	case e.Format == FormatV3:
		if len(e.MessageID) != MessageIDSize {
			return bad("message ID", len(e.MessageID), MessageIDSize)
		}
		if len(e.Commitment) != CommitmentSize {
			return bad("commitment", len(e.Commitment), CommitmentSize)
		}
	case e.Format == FormatSegmented:
		if !segment.ValidSize(e.SegmentSize) {
			return fmt.Errorf("%w: segment size %d is not a power of two from %d to %d", ErrMalformed, e.SegmentSize, MinSegmentSize, MaxSegmentSize)
		}
		if len(e.ObjectID) != ObjectIDSize {
			return bad("object ID", len(e.ObjectID), ObjectIDSize)
		}
		if len(e.Commitment) != SegmentCommitmentSize {
			return bad("commitment", len(e.Commitment), SegmentCommitmentSize)
		}
	}
	if e.PlaintextLength < -1 {
		return fmt.Errorf("%w: plaintext length %d", ErrMalformed, e.PlaintextLength)
	}
	return nil
}
