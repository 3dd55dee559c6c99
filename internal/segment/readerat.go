package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ReaderAt decrypts random accesses to a segmented body held by an
// io.ReaderAt. Every byte it returns comes from a segment that opened; the
// final segment is opened once, when the ReaderAt is made, so the size it
// reports is authenticated (as age's DecryptReaderAt does), and its
// plaintext is kept to answer reads near the end without fetching.
// Concurrent ReadAt calls are safe.
type ReaderAt struct {
	c       *Cipher
	src     io.ReaderAt
	size    int64 // ciphertext
	plain   int64
	n       int64 // segments
	workers int
	last    []byte // plaintext of the final segment
}

// NewReaderAt checks that size is a body length a sealer produces and that
// the final segment opens as final, and returns the ReaderAt. A source
// that returns fewer bytes than asked fails.
func (c *Cipher) NewReaderAt(src io.ReaderAt, size int64, workers int) (*ReaderAt, error) {
	p, n, ok := PlaintextSize(size, c.size)
	if !ok {
		return nil, fmt.Errorf("%w: no segmented body is %d bytes long", ErrAuthentication, size)
	}
	stride := int64(c.size) + Overhead
	start := (n - 1) * stride
	buf := make([]byte, size-start)
	if k, err := src.ReadAt(buf, start); k < len(buf) {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("%w: source ended %d bytes early", ErrAuthentication, len(buf)-k)
		}
		return nil, err
	}
	last, err := c.Open(buf[:0], buf, n-1, true)
	if err != nil {
		return nil, err
	}
	return &ReaderAt{c: c, src: src, size: size, plain: p, n: n, workers: max(1, workers), last: last}, nil
}

// Size is the plaintext size.
func (r *ReaderAt) Size() int64 { return r.plain }

// maxFetch bounds the ciphertext one ReadAt fetches (and holds) at once.
const maxFetch = 8 << 20

// ReadAt reads len(p) plaintext bytes from off. It fetches only the segments
// that hold them (and not the final one, which it holds), with one read of
// the source per 8 MiB, and returns io.EOF when p reaches past the end.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("segment: ReadAt at a negative offset")
	}
	if off >= r.plain {
		if len(p) == 0 && off == r.plain {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.plain)
	s := int64(r.c.size)
	stride := s + Overhead
	lastStart := (r.n - 1) * s
	n := 0
	for pos := off; pos < min(end, lastStart); {
		stop := min(end, lastStart, (pos/s+max(1, maxFetch/stride))*s)
		_, _, cstart, cstop := Span(r.c.size, r.plain, pos, stop)
		buf := make([]byte, cstop-cstart)
		k, err := r.src.ReadAt(buf, cstart)
		if k < len(buf) {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("%w: source ended %d bytes early", ErrAuthentication, len(buf)-k)
			}
			return n, err
		}
		rd := r.c.OpenRangeReader(bytes.NewReader(buf), r.plain, pos, stop, r.workers)
		m, err := io.ReadFull(rd, p[pos-off:stop-off])
		n += m
		if err != nil {
			return n, err
		}
		pos = stop
	}
	if end > lastStart {
		from := max(off, lastStart)
		n += copy(p[from-off:end-off], r.last[from-lastStart:end-lastStart])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
