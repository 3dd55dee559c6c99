package gcmstream

import "io"

// readerChunk is how much plaintext SealReader seals at a time through its
// own buffer, and the smallest Read buffer it seals into directly.
const readerChunk = 64 << 10

// maxEmptyReads bounds consecutive (0, nil) reads from the source before
// SealReader gives up with io.ErrNoProgress.
const maxEmptyReads = 100

// SealReader is an io.Reader yielding ciphertext||tag of the plaintext read
// from r, in constant memory (internal buffer ~64 KiB, reuse buffers; no
// per-Read allocation in steady state). It reports ErrTooLarge if the
// plaintext exceeds MaxPlaintext. It must handle r returning short reads and
// (n>0, io.EOF).
//
// For a Read buffer smaller than 64 KiB it reads the source until it holds
// 64 KiB (or the source ends), seals that in place and serves it. A larger
// Read buffer is filled from the source (up to a multiple of 16 bytes, or to
// the end of the source) and sealed in place, so nothing is copied. The tag
// follows the ciphertext of the last chunk, then Read returns io.EOF. An
// error from the source other than io.EOF is returned as is and is final, as
// is ErrTooLarge; the bytes already returned are then not a complete message.
// It is not safe for concurrent use.
type SealReader struct {
	w     Sealer
	r     io.Reader
	buf   []byte // readerChunk plaintext, then ciphertext (+ tag at the end)
	pos   int    // buf[pos:end] is ciphertext or tag not yet returned
	end   int
	eof   bool  // the source is exhausted
	done  bool  // the tag has been produced: nothing more to seal
	err   error // sticky
	empty int   // consecutive (0, nil) reads from the source
}

// NewSealReader returns a SealReader that seals the plaintext read from r as
// the message of s. Use one SealReader per Stream.
func NewSealReader(s *Stream, r io.Reader) *SealReader {
	return &SealReader{
		w:   Sealer{s: s, acc: s.acc0},
		r:   r,
		buf: make([]byte, 0, readerChunk+TagSize),
	}
}

// Read fills p with the next bytes of ciphertext||tag. It returns io.EOF
// after the tag, and otherwise the first error met (see SealReader).
func (r *SealReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for r.pos == r.end {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			r.err = io.EOF
			return 0, io.EOF
		}
		if len(p) >= readerChunk {
			if n := r.direct(p); n > 0 {
				return n, nil
			}
			continue
		}
		r.fill()
	}
	n := copy(p, r.buf[r.pos:r.end])
	r.pos += n
	return n, nil
}

// readFull reads from the source into b until b is full, the source ends
// (r.eof) or fails (r.err). It returns the number of bytes read.
func (r *SealReader) readFull(b []byte) int {
	n := 0
	for n < len(b) && !r.eof {
		k, err := r.r.Read(b[n:])
		if k < 0 || k > len(b)-n {
			r.err = io.ErrShortBuffer // misbehaving source; do not index with k
			return n
		}
		n += k
		switch {
		case err == io.EOF:
			r.eof = true
		case err != nil:
			r.err = err
			return n
		case k == 0:
			if r.empty++; r.empty >= maxEmptyReads {
				r.err = io.ErrNoProgress
				return n
			}
		default:
			r.empty = 0
		}
	}
	return n
}

// fill reads up to readerChunk plaintext bytes into the internal buffer and
// seals them in place (with the tag appended once the source ended), or
// records an error.
func (r *SealReader) fill() {
	buf := r.buf[:readerChunk]
	n := r.readFull(buf)
	if r.err == nil {
		// In place; n is a multiple of 16 unless the source ended, and the
		// TagSize bytes of capacity after it are ours.
		out, err := r.w.seal(buf[:0], buf[:n], true)
		if err == nil {
			if r.eof {
				out = r.w.Finish(out)
				r.done = true
			}
			r.pos, r.end = 0, len(out)
			return
		}
		r.err = err
	}
	clear(buf[:n]) // plaintext never leaves unsealed
}

// direct fills p (at least readerChunk bytes) from the source and seals it
// in place there, adding the tag if the source ended and room is left (else
// the tag waits in the internal buffer). It returns the bytes of p to hand
// out, or 0 with r.err set.
func (r *SealReader) direct(p []byte) int {
	q := p[:len(p)&^(BlockSize-1)]
	n := r.readFull(q)
	if r.err == nil {
		// q is full (a multiple of 16) unless the source ended.
		out, err := r.w.seal(q[:0], q[:n], len(p) >= n+TagSize)
		if err == nil {
			if r.eof {
				r.done = true
				if len(p)-len(out) >= TagSize {
					return len(r.w.Finish(out))
				}
				r.pos, r.end = 0, len(r.w.Finish(r.buf[:0]))
			}
			return len(out)
		}
		r.err = err
	}
	clear(q[:n]) // plaintext never leaves unsealed
	return 0
}

// writeToChunk is the piece of plaintext WriteTo reads and seals at a time.
const writeToChunk = 1 << 20

// readPiece is one piece of plaintext read ahead by WriteTo's reader
// goroutine, with the source's state after reading it.
type readPiece struct {
	b   []byte
	n   int
	eof bool
	err error
}

// WriteTo writes the rest of ciphertext||tag to w. The source is read a
// piece ahead on another goroutine while the previous piece is sealed in
// place and written, so io.Copy runs close to the speed of one Seal: the
// copy out of the source overlaps the encryption. The source is only read
// by that goroutine, and never after WriteTo returns.
func (r *SealReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	// Ciphertext that earlier Reads left buffered goes first.
	if r.pos < r.end {
		k, err := w.Write(r.buf[r.pos:r.end])
		total += int64(k)
		r.pos += k
		if err != nil {
			return total, err
		}
	}
	if r.done && r.err == nil {
		r.err = io.EOF
	}
	if r.err == io.EOF {
		return total, nil
	}
	if r.err != nil {
		return total, r.err
	}

	free := make(chan []byte, 2)
	for range 2 {
		free <- make([]byte, writeToChunk+TagSize)
	}
	full := make(chan readPiece, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(full)
		for {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			n := r.readFull(b[:writeToChunk])
			p := readPiece{b: b, n: n, eof: r.eof, err: r.err}
			select {
			case full <- p:
			case <-stop:
				clear(b[:n])
				return
			}
			if p.eof || p.err != nil {
				return
			}
		}
	}()
	// halt stops the reader and wipes any plaintext it read ahead.
	halt := func() {
		close(stop)
		<-done
		for p := range full {
			clear(p.b[:p.n])
		}
	}
	for p := range full {
		if p.err != nil {
			clear(p.b[:p.n]) // plaintext never leaves unsealed
			halt()
			return total, p.err
		}
		out, err := r.w.seal(p.b[:0], p.b[:p.n], true)
		if err != nil {
			clear(p.b[:p.n])
			halt()
			r.err = err
			return total, err
		}
		if p.eof {
			out = r.w.Finish(out)
			r.done = true
		}
		k, err := w.Write(out)
		total += int64(k)
		if err != nil {
			halt()
			r.err = err
			return total, err
		}
		if p.eof {
			<-done
			r.err = io.EOF
			return total, nil
		}
		free <- p.b[:cap(p.b)]
	}
	// The reader stopped without a last piece: it cannot, but do not hang.
	<-done
	return total, r.err
}
