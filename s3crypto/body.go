package s3crypto

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/overlap"
	"github.com/s3envelope/s3envelope/internal/spool"
)

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

// newSealBody is the sealed body of a seekable plaintext: each pass seals
// it again (Sealer.SealAhead). The first pass records each piece's
// fingerprint; a later pass releases a piece only if its fingerprint is the
// same — the same plaintext — since different plaintext sealed under the
// same nonces would leak both.
func newSealBody(s *format.Sealer, src io.ReadSeeker, start, plain, size int64) *passBody {
	var sums [][16]byte
	check := func(piece int64, fp [16]byte) error {
		switch {
		case piece < int64(len(sums)) && subtle.ConstantTimeCompare(sums[piece][:], fp[:]) != 1:
			return errBodyChanged
		case piece == int64(len(sums)):
			sums = append(sums, fp)
		}
		return nil
	}
	return &passBody{
		size: size,
		pass: func() io.ReadCloser { return s.SealAhead(src, plain, check) },
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
