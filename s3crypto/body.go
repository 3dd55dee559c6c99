package s3crypto

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sync"

	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/overlap"
	"github.com/s3envelope/s3envelope/internal/spool"
)

// sumChunk is the stretch of plaintext whose fingerprint is kept so that a
// rewound body can be checked before it is encrypted again.
const sumChunk = 64 << 10

// errBodyChanged means a seekable body read differently after a rewind.
// Encrypting the new bytes would reuse the object's nonce with different
// plaintext, so the upload is stopped instead.
var errBodyChanged = errors.New("s3crypto: request body changed between reads; refusing to encrypt different bytes under the same nonce")

// passBody is the request body of an encrypted PutObject: streamed,
// rewindable for the SDK's signing and retries. Only its start can be
// sought (plus the no-op and length queries the SDK makes): each pass
// produces the body from its start, a piece ahead on another goroutine.
// A pass starts at the first Read (the SDK measures and rewinds first) and
// ends at a rewind or close, after which its goroutines read nothing more.
// A transport may still read a body it gave up on while the SDK rewinds it
// for a retry, so the methods hold a lock.
type passBody struct {
	mu        sync.Mutex
	size      int64                // bytes per pass
	pass      func() io.ReadCloser // starts a pass
	rewind    func() error         // readies the next pass
	r         io.ReadCloser        // current pass, or nil
	streamPos int64                // bytes the current pass has produced
	pos       int64                // logical position (size after Seek(0, io.SeekEnd))
	closed    bool
}

// newSealBody is the sealed body of a seekable plaintext: each pass seals it
// again (Sealer.SealAhead), its rewind guard checking that the plaintext
// has not changed.
func newSealBody(s *format.Sealer, src io.ReadSeeker, start, plain, size int64) *passBody {
	guard := &sumGuard{seed: maphash.MakeSeed()}
	return &passBody{
		size: size,
		pass: func() io.ReadCloser {
			guard.rewind(src, plain)
			return s.SealAhead(guard, plain)
		},
		rewind: func() error {
			_, err := src.Seek(start, io.SeekStart)
			return err
		},
	}
}

// spoolPiece is how much of a spooled body is read ahead at a time.
const spoolPiece = 1 << 20

// newSpoolBody is a body sealed into sp: each pass reads it a piece ahead
// in large reads, whatever the transport's buffer.
func newSpoolBody(sp *spool.Spool) *passBody {
	return &passBody{
		size:   sp.Size(),
		pass:   func() io.ReadCloser { return &aheadReader{r: overlap.NewReader(sp.Reader(), spoolPiece, 2)} },
		rewind: func() error { return nil },
	}
}

// endPass ends the current pass; the next starts at the first Read.
func (b *passBody) endPass() {
	if b.r != nil {
		b.r.Close()
		b.r = nil
	}
	b.streamPos, b.pos = 0, 0
}

func (b *passBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if b.pos != b.streamPos {
		return 0, io.EOF
	}
	if b.r == nil {
		b.r = b.pass()
	}
	n, err := b.r.Read(p)
	b.streamPos += int64(n)
	b.pos = b.streamPos
	return n, err
}

func (b *passBody) Seek(offset int64, whence int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	switch {
	case whence == io.SeekCurrent && offset == 0:
		return b.pos, nil
	case whence == io.SeekEnd && offset == 0:
		b.pos = b.size
		return b.pos, nil
	case whence == io.SeekStart && offset == 0:
		// The pass's goroutines stop before the source moves.
		b.endPass()
		if err := b.rewind(); err != nil {
			return 0, err
		}
		return 0, nil
	case whence == io.SeekStart && offset == b.streamPos:
		b.pos = b.streamPos
		return b.pos, nil
	}
	return 0, fmt.Errorf("s3crypto: an encrypted request body can only be rewound to its start (seek %d, %d)", offset, whence)
}

// close ends the current pass: its goroutines have stopped reading when it
// returns. It is not an io.Closer, so that the transport does not close
// the body between the SDK's retries.
func (b *passBody) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.endPass()
	}
}

// errBodyClosed: the upload that owned the body has returned.
var errBodyClosed = errors.New("s3crypto: request body read after its upload returned")

// aheadReader is an io.Reader over an overlap.Reader's buffers.
type aheadReader struct {
	r        *overlap.Reader
	buf, cur []byte
	err      error
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		if a.buf != nil {
			a.r.Release(a.buf)
			a.buf = nil
		}
		a.buf, a.err = a.r.Next()
		a.cur = a.buf
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

func (a *aheadReader) Close() error {
	a.r.Close()
	return nil
}

// sumGuard reads the plaintext a chunk at a time. On the first pass it
// records each chunk's fingerprint; on later passes it checks each chunk
// against it before handing out any of its bytes.
type sumGuard struct {
	seed maphash.Seed
	sums []uint64
	src  io.Reader
	left int64 // plaintext bytes still expected in this pass
	n    int   // chunk index in this pass
	buf  []byte
	out  []byte
	err  error
}

func (g *sumGuard) rewind(src io.Reader, limit int64) {
	g.src = io.LimitReader(src, limit)
	g.left = limit
	g.n = 0
	g.out = nil
	g.err = nil
	if g.buf == nil {
		g.buf = make([]byte, sumChunk)
	}
}

func (g *sumGuard) Read(p []byte) (int, error) {
	if len(g.out) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		if len(p) >= sumChunk {
			// A whole chunk fits in p: read and check it there, without a
			// copy.
			k, err := g.chunk(p[:sumChunk])
			g.err = err
			if k == 0 {
				return 0, err
			}
			return k, nil
		}
		k, err := g.chunk(g.buf)
		g.out, g.err = g.buf[:k], err
		if k == 0 {
			return 0, err
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

// chunk reads the next chunk of the pass into b (sumChunk bytes) and
// records or checks its fingerprint. The error comes after the bytes
// returned: io.EOF after the last chunk.
func (g *sumGuard) chunk(b []byte) (int, error) {
	k, err := io.ReadFull(g.src, b)
	g.left -= int64(k)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = io.EOF
		if g.left > 0 {
			err = fmt.Errorf("s3crypto: request body ended %d bytes early: %w", g.left, io.ErrUnexpectedEOF)
		}
	}
	if k > 0 {
		sum := maphash.Bytes(g.seed, b[:k])
		switch {
		case g.n < len(g.sums) && g.sums[g.n] != sum:
			clear(b[:k])
			return 0, errBodyChanged
		case g.n == len(g.sums):
			g.sums = append(g.sums, sum)
		}
		g.n++
	}
	return k, err
}
