package format

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/s3envelope/s3envelope/internal/segment"
)

// The segmented format (FormatSegmented, SEG1). Its specification is
// docs/segmented-format.md.
const (
	// ContentSegmented is the segmented format's content algorithm, bound
	// by every key wrap as V2 binds ContentAESGCM.
	ContentSegmented = "S3ESEG1"
	// DefaultSegmentSize, MinSegmentSize and MaxSegmentSize bound the
	// plaintext bytes per segment (a power of two).
	DefaultSegmentSize = segment.DefaultSize
	MinSegmentSize     = segment.MinSize
	MaxSegmentSize     = segment.MaxSize
	// SegmentOverhead is what each segment adds to the plaintext: its tag.
	SegmentOverhead = segment.Overhead
	// ObjectIDSize and SegmentCommitmentSize are the sizes of the segmented
	// format's key-schedule salt and key commitment.
	ObjectIDSize          = 32
	SegmentCommitmentSize = 32
)

// segFormat is the segmented format's code: key-committing, sealed in
// fixed-size segments (internal/segment) under a content key that HKDF
// derives from the data key and a fresh object ID.
type segFormat struct{}

// Metadata keys: the segmented format's own names, so that AWS's clients
// find no envelope of theirs on a segmented object.
const (
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

// segFields are the segmented format's envelope fields.
var segFields = []string{keySegVersion, keySegSize, keySegKey, keySegWrap, keySegMatDesc, keySegID, keySegCommit}

// segObjectKeys are the segmented envelope's fields that stay in the
// object's metadata when the rest is in an instruction file: what the key
// schedule binds.
var segObjectKeys = []string{keySegVersion, keySegSize, keySegID, keySegCommit}
var segLayout = layout{
	key: keySegKey, wrap: keySegWrap, all: segFields, onObject: segObjectKeys,
	name: "segmented", keeper: "the segmented format",
}

func (segFormat) format() Format   { return FormatSegmented }
func (segFormat) content() string  { return ContentSegmented }
func (segFormat) layout() *layout  { return &segLayout }
func (segFormat) committing() bool { return true }

func (segFormat) decode(m map[string]string) (*Envelope, error) { return decodeSegmented(m) }

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
func (segFormat) encode(e *Envelope) (map[string]string, error) {
	enc := base64.StdEncoding.EncodeToString
	m := map[string]string{}
	m[keySegVersion] = segVersion
	m[keySegSize] = strconv.Itoa(e.SegmentSize)
	m[keySegKey] = enc(e.Key.Ciphertext)
	m[keySegWrap] = e.Key.Algorithm
	if len(e.Key.Description) > 0 {
		m[keySegMatDesc] = EncodeDescription(e.Key.Description)
	}
	m[keySegID] = enc(e.ObjectID)
	m[keySegCommit] = enc(e.Commitment)
	return m, nil
}

// segKeys derives a segmented object's key commitment and, when content is
// true, its content key: HKDF-SHA-512 with the object ID as salt and the
// data key as input keying material; the info strings bind the segment
// size.
func segKeys(dataKey, objectID []byte, size int, content bool) (commitment, contentKey []byte, err error) {
	if len(dataKey) != DataKeySize || len(objectID) != ObjectIDSize || !segment.ValidSize(size) {
		return nil, nil, fmt.Errorf("%w: the segmented format needs a %d-byte data key, a %d-byte object ID and a valid segment size", ErrMalformed, DataKeySize, ObjectIDSize)
	}
	prk, err := hkdf.Extract(sha512.New, dataKey, objectID)
	if err != nil {
		return nil, nil, err
	}
	defer clear(prk)
	if commitment, err = hkdf.Expand(sha512.New, prk, segInfo("commit", size), SegmentCommitmentSize); err != nil || !content {
		return commitment, nil, err
	}
	contentKey, err = hkdf.Expand(sha512.New, prk, segInfo("key", size), segment.KeySize)
	return commitment, contentKey, err
}
func segInfo(label string, size int) string {
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], uint32(size))
	return "s3envelope SEG1 " + label + string(s[:])
}

// checkDataKey compares the key commitment in constant time.
func (segFormat) checkDataKey(e *Envelope, dataKey []byte) error {
	commitment, _, err := segKeys(dataKey, e.ObjectID, e.SegmentSize, false)
	if err != nil {
		return err
	}
	return checkCommitment(commitment, e.Commitment)
}

// newSegmented makes the key schedule of a new segmented object: it sets
// e's object ID, segment size and commitment and returns its cipher.
func newSegmented(e *Envelope, dataKey []byte, size int) (*segment.Cipher, error) {
	e.ObjectID = make([]byte, ObjectIDSize)
	rand.Read(e.ObjectID)
	e.SegmentSize = size
	commitment, contentKey, err := segKeys(dataKey, e.ObjectID, size, true)
	if err != nil {
		return nil, err
	}
	defer clear(contentKey)
	e.Commitment = commitment
	return segment.New(contentKey, size)
}

// openSegmented checks the stored commitment in constant time and only
// then derives the content key, so a data key that fails the commitment is
// never used to decrypt.
func openSegmented(e *Envelope, dataKey []byte) (*segment.Cipher, error) {
	if err := (segFormat{}).checkDataKey(e, dataKey); err != nil {
		return nil, err
	}
	_, contentKey, err := segKeys(dataKey, e.ObjectID, e.SegmentSize, true)
	if err != nil {
		return nil, err
	}
	defer clear(contentKey)
	return segment.New(contentKey, e.SegmentSize)
}

func (segFormat) ciphertextSize(e *Envelope, plaintext int64) (int64, error) {
	if c, ok := segment.CiphertextSize(plaintext, e.SegmentSize); ok {
		return c, nil
	}
	return 0, tooLargeFor(e, plaintext)
}

func (segFormat) plaintextSize(e *Envelope, ciphertext int64) (int64, error) {
	if p, _, ok := segment.PlaintextSize(ciphertext, e.SegmentSize); ok {
		return p, nil
	}
	return 0, fmt.Errorf("%w: no segmented object with %d-byte segments is %d bytes long", ErrAuthentication, e.SegmentSize, ciphertext)
}

// ciphertextRange: the segments that hold the range.
func (segFormat) ciphertextRange(e *Envelope, size, off, n int64) (int64, int64, error) {
	p, err := plaintextRange(e, size, off, n)
	if err != nil {
		return 0, 0, err
	}
	_, _, start, end := segment.Span(e.SegmentSize, p, off, off+n)
	return start, end, nil
}

// segSealer seals a segmented body on up to workers goroutines.
type segSealer struct {
	seg     *segment.Cipher
	workers int
}

// newSealer draws the object ID and derives the commitment and the cipher.
func (segFormat) newSealer(e *Envelope, dataKey []byte, cfg Config) (bodySealer, error) {
	seg, err := newSegmented(e, dataKey, cfg.segmentSize())
	if err != nil {
		return nil, err
	}
	return &segSealer{seg: seg, workers: cfg.workers()}, nil
}

func (s *segSealer) seal(plaintext io.Reader) io.Reader {
	return segReader{s.seg.SealReader(plaintext, s.workers)}
}

// partAlign: parts hold whole segments.
func (s *segSealer) partAlign() int { return s.seg.Size() }

func (s *segSealer) partSize(n int) int {
	return n + segment.Overhead*int(segment.Count(int64(n), s.seg.Size()))
}

func (s *segSealer) sealPart(buf []byte, n int, off int64, last bool) ([]byte, error) {
	return sealSegments(s.seg, buf, n, off, last), nil
}

func (s *segSealer) pieces() (pieceSealer, int) { return segPieces{s.seg}, s.workers }

// segPieces seals each piece's segments in place; nothing follows them.
type segPieces struct{ seg *segment.Cipher }

func (p segPieces) seal(pc *piece) error {
	pc.Out = sealSegments(p.seg, pc.Buf, pc.N, pc.Off, pc.Last)
	return nil
}
func (segPieces) emit(*piece) error { return nil }

// fingerprint: the segments' tags, XORed. A segment sealed again under its
// nonce with other plaintext has another tag (but for a 2^-128 chance).
func (p segPieces) fingerprint(pc *piece) [16]byte {
	var fp [16]byte
	stride := p.seg.Size() + segment.Overhead
	for end := 0; end < len(pc.Out); {
		end = min(end+stride, len(pc.Out))
		subtle.XORBytes(fp[:], fp[:], pc.Out[end-segment.Overhead:end])
	}
	return fp
}

// tag: nothing follows a segmented object's last part.
func (s *segSealer) tag() ([]byte, error) { return nil, nil }

// sealSegments seals the segments of a part in place: from the last one
// back, each segment's plaintext moves to its slot (16 bytes further per
// segment before it) and is sealed there.
func sealSegments(c *segment.Cipher, buf []byte, n int, off int64, last bool) []byte {
	size := c.Size()
	stride := size + segment.Overhead
	count := int(segment.Count(int64(n), size))
	first := off / int64(size)
	for k := count - 1; k >= 0; k-- {
		from, to := k*size, min((k+1)*size, n)
		slot := buf[k*stride : k*stride+(to-from)]
		copy(slot, buf[from:to]) // memmove: slot starts at or after from
		c.Seal(slot[:0], slot, first+int64(k), last && k == count-1)
	}
	return buf[:(count-1)*stride+(n-(count-1)*size)+segment.Overhead]
}
func (segFormat) open(e *Envelope, dataKey []byte, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	c, err := openSegmented(e, dataKey)
	if err != nil {
		return nil, err
	}
	return newPlaintext(segReader{c.OpenReader(ciphertext, cfg.workers())}, -1, nil), nil
}

// rangesAuthenticated: every segment is.
func (segFormat) rangesAuthenticated() bool { return true }

func (segFormat) openRange(e *Envelope, dataKey []byte, cfg Config, ciphertext io.Reader, size, off, n int64) (*Plaintext, error) {
	p, _ := e.PlaintextSize(size)
	c, err := openSegmented(e, dataKey)
	if err != nil {
		return nil, err
	}
	return newPlaintext(segReader{c.OpenRangeReader(ciphertext, p, off, off+n, cfg.workers())}, n, nil), nil
}

func (segFormat) newReaderAt(e *Envelope, dataKey []byte, cfg Config, ciphertext io.ReaderAt, size int64) (*ReaderAt, error) {
	c, err := openSegmented(e, dataKey)
	if err != nil {
		return nil, err
	}
	r, err := c.NewReaderAt(ciphertext, size, cfg.workers())
	if err != nil {
		return nil, segError(err)
	}
	return &ReaderAt{r: r}, nil
}

// segError turns the segment package's errors into this package's.
func segError(err error) error {
	if errors.Is(err, segment.ErrAuthentication) {
		return fmt.Errorf("%w: %s", ErrAuthentication, strings.TrimPrefix(err.Error(), segment.ErrAuthentication.Error()+": "))
	}
	return err
}

// segReader maps a segment.Reader's errors.
type segReader struct{ r *segment.Reader }

func (s segReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	return n, segError(err)
}
func (s segReader) WriteTo(w io.Writer) (int64, error) {
	n, err := s.r.WriteTo(w)
	return n, segError(err)
}

// ReaderAt reads a segmented object's plaintext at random, each piece
// authenticated before it is returned. Its methods are safe for concurrent
// use.
type ReaderAt struct{ r *segment.ReaderAt }

// Size is the object's plaintext size, authenticated.
func (r *ReaderAt) Size() int64 { return r.r.Size() }

// ReadAt reads len(p) bytes of plaintext at off, as io.ReaderAt does: it
// returns io.EOF when p reaches past the end, and an error wrapping
// ErrAuthentication when a segment it needs does not open.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	return n, segError(err)
}
