package format

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/s3envelope/s3envelope/internal/gcmstream"
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
	if err := e.CheckDataKey(dataKey); err != nil {
		return nil, err
	}
	_, contentKey, err := segKeys(dataKey, e.ObjectID, e.SegmentSize, true)
	if err != nil {
		return nil, err
	}
	defer clear(contentKey)
	return segment.New(contentKey, e.SegmentSize)
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

// CiphertextSize is the size of the stored body of an object of plaintext
// bytes in e's format. It fails with ErrTooLarge past the format's limit
// (MaxPlaintext for V2 and V3).
func (e *Envelope) CiphertextSize(plaintext int64) (int64, error) {
	if plaintext < 0 {
		return 0, fmt.Errorf("%w: negative plaintext length", ErrMalformed)
	}
	switch e.Format {
	case FormatSegmented:
		if c, ok := segment.CiphertextSize(plaintext, e.SegmentSize); ok {
			return c, nil
		}
	case FormatV2, FormatV3:
		if plaintext <= MaxPlaintext {
			return plaintext + TagSize, nil
		}
	default:
		return 0, fmt.Errorf("%w: cannot write format %v", ErrUnsupported, e.Format)
	}
	return 0, fmt.Errorf("%w: %d bytes are more than a %v object holds", ErrTooLarge, plaintext, e.Format)
}

// PlaintextSize is the plaintext size of an object whose stored body is
// ciphertext bytes long, as far as the format tells without reading it:
// nothing authenticates it until the body is read. A length no writer of
// the format produces fails with ErrAuthentication, a V2 or V3 length past
// MaxPlaintext with ErrTooLarge. A V1 object's size is its stored
// x-amz-unencrypted-content-length, if any.
func (e *Envelope) PlaintextSize(ciphertext int64) (int64, error) {
	switch {
	case e.Format == FormatSegmented:
		if p, _, ok := segment.PlaintextSize(ciphertext, e.SegmentSize); ok {
			return p, nil
		}
		return 0, fmt.Errorf("%w: no segmented object with %d-byte segments is %d bytes long", ErrAuthentication, e.SegmentSize, ciphertext)
	case e.ContentAlgorithm == ContentAESCBC:
		if e.PlaintextLength >= 0 {
			return e.PlaintextLength, nil
		}
		return 0, fmt.Errorf("%w: an AES/CBC object's length is known only once it is decrypted", ErrUnsupported)
	case ciphertext < TagSize:
		return 0, fmt.Errorf("%w: body of %d bytes is shorter than its tag", ErrAuthentication, ciphertext)
	case ciphertext-TagSize > MaxPlaintext:
		return 0, fmt.Errorf("%w: a %v body of %d bytes holds more than one AES-GCM pass may", ErrTooLarge, e.Format, ciphertext)
	}
	return ciphertext - TagSize, nil
}

// CiphertextRange returns which bytes [start, end) of a stored body of
// size bytes hold plaintext bytes [off, off+n): for a segmented object the
// segments that hold them; for V2 and V3 (read only with
// Config.EnableLegacyUnauthenticatedModes, see OpenRange) the AES-CTR blocks
// that do. The range must lie inside the plaintext and n must be positive;
// V1 objects have no ranges (ErrUnsupported).
func (e *Envelope) CiphertextRange(size, off, n int64) (start, end int64, err error) {
	if e.ContentAlgorithm == ContentAESCBC {
		return 0, 0, fmt.Errorf("%w: AES/CBC objects cannot be read by range", ErrUnsupported)
	}
	p, err := e.PlaintextSize(size)
	if err != nil {
		return 0, 0, err
	}
	if off < 0 || n <= 0 || off >= p || n > p-off {
		return 0, 0, fmt.Errorf("%w: range of %d bytes at %d outside a plaintext of %d bytes", ErrInvalidRange, n, off, p)
	}
	if e.Format == FormatSegmented {
		_, _, start, end = segment.Span(e.SegmentSize, p, off, off+n)
		return start, end, nil
	}
	return off &^ (TagSize - 1), off + n, nil
}

// committing reports whether the envelope's format commits to its data key.
func (e *Envelope) committing() bool {
	return e.Format == FormatV3 || e.Format == FormatSegmented
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
	if e.Format != FormatSegmented && !cfg.EnableLegacyUnauthenticatedModes {
		return nil, fmt.Errorf("%w: a range of a %v object cannot be authenticated; enable legacy unauthenticated modes to read it unauthenticated", ErrDisallowed, e.Format)
	}
	dataKey, err := u.Unwrap(ctx, &e.Key, e.ContentAlgorithm)
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	p, _ := e.PlaintextSize(size)
	switch {
	case e.Format == FormatSegmented && e.ContentAlgorithm == ContentSegmented:
		c, err := openSegmented(e, dataKey)
		if err != nil {
			return nil, err
		}
		return newPlaintext(segReader{c.OpenRangeReader(ciphertext, p, off, off+n, cfg.workers())}, n, nil), nil
	case e.Format == FormatV2 && e.ContentAlgorithm == ContentAESGCM:
		return openCTR(dataKey, e.IV, nil, ciphertext, off, n)
	case e.Format == FormatV3 && e.ContentAlgorithm == ContentAESGCMCommit:
		contentKey, err := openV3Key(dataKey, e.MessageID, e.Commitment)
		if err != nil {
			return nil, err
		}
		defer clear(contentKey)
		return openCTR(contentKey, v3Nonce, v3SuiteID, ciphertext, off, n)
	}
	return nil, fmt.Errorf("%w: content algorithm %q in a %v envelope", ErrUnsupported, e.ContentAlgorithm, e.Format)
}

// openCTR decrypts GCM content from off (ciphertext starts at the block
// that holds it) without authenticating it.
func openCTR(key, nonce, aad []byte, ciphertext io.Reader, off, n int64) (*Plaintext, error) {
	stream, err := gcmstream.New(key, nonce, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthentication, err)
	}
	if off < 0 || n <= 0 || n > MaxPlaintext-off {
		return nil, fmt.Errorf("%w: range of %d bytes at %d past what an AES-GCM object holds", ErrTooLarge, n, off)
	}
	start := off &^ (TagSize - 1)
	r := &ctrRange{src: io.LimitReader(ciphertext, off+n-start), stream: stream, off: uint64(start), skip: off - start, left: off + n - start}
	return newPlaintext(r, n, nil), nil
}

// ctrRange decrypts AES-CTR content read from src, starting at byte off of
// the content, dropping the first skip bytes; left counts the bytes src
// still owes, so that a body cut short is an error, not a shorter range.
type ctrRange struct {
	src    io.Reader
	stream *gcmstream.Stream
	off    uint64
	skip   int64
	left   int64
}

func (c *ctrRange) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := c.src.Read(p)
		c.stream.XORKeyStreamAt(p[:n], p[:n], c.off)
		c.off += uint64(n)
		c.left -= int64(n)
		if c.skip > 0 {
			d := min(c.skip, int64(n))
			c.skip -= d
			n = copy(p, p[d:n])
			if n == 0 && err == nil {
				continue
			}
		}
		if err == io.EOF && c.left > 0 {
			err = fmt.Errorf("%w: the range's body ended %d bytes early: %w", ErrAuthentication, c.left, io.ErrUnexpectedEOF)
		}
		return n, err
	}
}

// ReaderAt reads a segmented object's plaintext at random, each piece
// authenticated before it is returned. Its methods are safe for concurrent
// use.
type ReaderAt struct{ r *segment.ReaderAt }

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
	if e.Format != FormatSegmented || e.ContentAlgorithm != ContentSegmented {
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

// Size is the object's plaintext size, authenticated.
func (r *ReaderAt) Size() int64 { return r.r.Size() }

// ReadAt reads len(p) bytes of plaintext at off, as io.ReaderAt does: it
// returns io.EOF when p reaches past the end, and an error wrapping
// ErrAuthentication when a segment it needs does not open.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	return n, segError(err)
}
