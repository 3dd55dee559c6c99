package s3crypto

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sync"

	"github.com/s3envelope/s3envelope/internal/format"
)

// sumChunk is the stretch of plaintext whose fingerprint is kept so that a
// rewound body can be checked before it is encrypted again.
const sumChunk = 64 << 10

// errBodyChanged means a seekable body read differently after a rewind.
// Encrypting the new bytes would reuse the object's nonce with different
// plaintext, so the upload is stopped instead.
var errBodyChanged = errors.New("s3crypto: request body changed between reads; refusing to encrypt different bytes under the same nonce")

// sealBody is the request body of an encrypted PutObject over a seekable
// plaintext: the sealed body, streamed, rewindable for the SDK's signing and
// retries. Only its start can be sought (plus the no-op and length queries
// the SDK makes), since a V2/V3 tag depends on everything before it. Each
// pass seals a piece ahead on other cores (Sealer.SealAhead); close ends
// the pass, so the caller's body is not read after PutObject returns.
// A transport may still read a body it gave up on while the SDK rewinds it
// for a retry, so the methods hold a lock.
type sealBody struct {
	mu     sync.Mutex
	sealer *format.Sealer
	src    io.ReadSeeker
	start  int64 // the caller's body position at the start of the upload
	plain  int64 // plaintext bytes to send
	size   int64 // ciphertext bytes

	r         io.ReadCloser // current pass
	streamPos int64         // bytes the current pass has produced
	pos       int64         // logical position (size after Seek(0, io.SeekEnd))
	guard     *sumGuard
	closed    bool
}

func newSealBody(s *format.Sealer, src io.ReadSeeker, start, plain, size int64) *sealBody {
	b := &sealBody{
		sealer: s, src: src, start: start, plain: plain, size: size,
		guard: &sumGuard{seed: maphash.MakeSeed()},
	}
	b.restartPass()
	return b
}

// restartPass ends the current pass; the next starts at the first Read, so
// that nothing is read ahead while the SDK measures and rewinds the body.
func (b *sealBody) restartPass() {
	if b.r != nil {
		b.r.Close()
		b.r = nil
	}
	b.streamPos, b.pos = 0, 0
}

func (b *sealBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if b.pos != b.streamPos {
		return 0, io.EOF
	}
	if b.r == nil {
		b.guard.rewind(b.src, b.plain)
		b.r = b.sealer.SealAhead(b.guard, b.plain)
	}
	n, err := b.r.Read(p)
	b.streamPos += int64(n)
	b.pos = b.streamPos
	return n, err
}

func (b *sealBody) Seek(offset int64, whence int) (int64, error) {
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
		// The pass's reading goroutine stops before the source moves.
		b.restartPass()
		if _, err := b.src.Seek(b.start, io.SeekStart); err != nil {
			return 0, err
		}
		return 0, nil
	case whence == io.SeekStart && offset == b.streamPos:
		b.pos = b.streamPos
		return b.pos, nil
	}
	return 0, fmt.Errorf("s3crypto: an encrypted request body can only be rewound to its start (seek %d, %d)", offset, whence)
}

// close ends the current pass: its goroutines have stopped reading the
// caller's body when it returns. It is not an io.Closer, so that the
// transport does not close the body between the SDK's retries.
func (b *sealBody) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.restartPass()
	}
}

// errBodyClosed: the upload that owned the body has returned.
var errBodyClosed = errors.New("s3crypto: request body read after its upload returned")

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
