package s3crypto

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"

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
// the SDK makes), since a V2/V3 tag depends on everything before it.
type sealBody struct {
	sealer *format.Sealer
	src    io.ReadSeeker
	start  int64 // the caller's body position at the start of the upload
	plain  int64 // plaintext bytes to send
	size   int64 // ciphertext bytes

	r         io.Reader // current pass
	streamPos int64     // bytes the current pass has produced
	pos       int64     // logical position (size after Seek(0, io.SeekEnd))
	guard     *sumGuard
}

func newSealBody(s *format.Sealer, src io.ReadSeeker, start, plain, size int64) *sealBody {
	b := &sealBody{
		sealer: s, src: src, start: start, plain: plain, size: size,
		guard: &sumGuard{seed: maphash.MakeSeed()},
	}
	b.restartPass()
	return b
}

func (b *sealBody) restartPass() {
	b.guard.rewind(b.src, b.plain)
	b.r = b.sealer.Seal(b.guard)
	b.streamPos, b.pos = 0, 0
}

func (b *sealBody) Read(p []byte) (int, error) {
	if b.pos != b.streamPos {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	b.streamPos += int64(n)
	b.pos = b.streamPos
	return n, err
}

func (b *sealBody) Seek(offset int64, whence int) (int64, error) {
	switch {
	case whence == io.SeekCurrent && offset == 0:
		return b.pos, nil
	case whence == io.SeekEnd && offset == 0:
		b.pos = b.size
		return b.pos, nil
	case whence == io.SeekStart && offset == 0:
		if _, err := b.src.Seek(b.start, io.SeekStart); err != nil {
			return 0, err
		}
		b.restartPass()
		return 0, nil
	case whence == io.SeekStart && offset == b.streamPos:
		b.pos = b.streamPos
		return b.pos, nil
	}
	return 0, fmt.Errorf("s3crypto: an encrypted request body can only be rewound to its start (seek %d, %d)", offset, whence)
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
		k, err := io.ReadFull(g.src, g.buf)
		g.left -= int64(k)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = io.EOF
			if g.left > 0 {
				err = fmt.Errorf("s3crypto: request body ended %d bytes early: %w", g.left, io.ErrUnexpectedEOF)
			}
		}
		if k > 0 {
			sum := maphash.Bytes(g.seed, g.buf[:k])
			switch {
			case g.n < len(g.sums) && g.sums[g.n] != sum:
				g.err = errBodyChanged
				return 0, g.err
			case g.n == len(g.sums):
				g.sums = append(g.sums, sum)
			}
			g.n++
		}
		g.out, g.err = g.buf[:k], err
		if k == 0 {
			return 0, err
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}
