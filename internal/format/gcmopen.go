package format

import (
	"fmt"
	"io"
	"runtime"
	"sync/atomic"

	"github.com/s3envelope/s3envelope/internal/gcmstream"
	"github.com/s3envelope/s3envelope/internal/overlap"
	"github.com/s3envelope/s3envelope/internal/spool"
)

// A V2 or V3 body is opened in two passes, since no plaintext may be
// released before the tag at its end is verified. The first reads the
// ciphertext in pieces; each piece is hashed (the assembly GHASH) and
// written to the spool by one of several goroutines while the next piece
// is read, and the pieces' GHASH partials are combined in order
// (gcmstream.Opener.Add). The second, once the tag matched, decrypts the
// spool piece by piece on several goroutines (each reads its piece of the
// spool and runs AES-CTR at its offset) and hands the pieces out in order.

// gcmTune is how a V2/V3 body is verified and decrypted.
type gcmTune struct {
	// piece is the ciphertext hashed or decrypted at a time: large enough
	// that what each piece costs besides its bytes (a hand-over between
	// goroutines, a GF(2^128) multiply, a system call) vanishes, small
	// enough that the pieces in flight stay a few MiB.
	piece int
	// workers is how many goroutines hash or decrypt one body; 0 means
	// GOMAXPROCS or the number of CPUs, whichever is fewer, up to
	// maxGCMWorkers. Below 2, the caller's goroutine hashes and decrypts,
	// as before several cores were used.
	workers int
}

// maxGCMWorkers bounds the goroutines per body: past a few, the reading
// of the response and the spool file, not the crypto, is the limit.
const maxGCMWorkers = 4

// gcmTuning is changed only by tests, to reach the parallel code with
// small bodies; openGCM reads it once per body. Pieces of 512 KiB and
// 1 MiB measured the same here; 2 MiB writes to the spool file stalled at
// times (see BENCHMARKS.md).
var gcmTuning = gcmTune{piece: 512 << 10}

// get returns the tuning with the worker count resolved.
func (t gcmTune) get() gcmTune {
	if t.workers == 0 {
		t.workers = min(runtime.GOMAXPROCS(0), runtime.NumCPU(), maxGCMWorkers)
	}
	return t
}

// spoolVerified reads the body (ciphertext, then the tag) into sp,
// verifies the tag, and returns the ciphertext's length. Pieces are hashed
// on tune.workers goroutines while the next is read. With several workers
// each also writes its piece to the spool, whose files they share out
// (spool.NewStriped), and only the partials are combined in order; with
// one, the caller's goroutine hashes and another writes in order.
func spoolVerified(stream *gcmstream.Stream, sp *spool.Spool, e *Envelope, cfg Config, ciphertext io.Reader, tune gcmTune) (int64, error) {
	piece := tune.piece
	parallel := tune.workers >= 2
	o := stream.NewOpener()
	// The caller holds up to two buffers (the tag's candidate bytes move
	// from one to the next), each worker one, the sink one; one more keeps
	// the reading from waiting on either.
	depth := tune.workers + 4
	type hashed struct {
		p   gcmstream.Partial
		err error // from spooling the piece
	}
	parts := make([]hashed, depth)
	pipe := overlap.NewPipeline(piece+TagSize, depth, tune.workers,
		func(b []byte, seq int64) {
			off := seq * int64(piece)
			h := hashed{p: stream.HashChunk(b, uint64(off))}
			if parallel {
				_, h.err = sp.WriteAt(b, off)
			}
			parts[seq%int64(depth)] = h
		},
		func(b []byte, seq int64) error {
			h := parts[seq%int64(depth)]
			if h.err != nil {
				return h.err
			}
			if err := o.Add(h.p); err != nil {
				return fmt.Errorf("%w: %v", ErrTooLarge, err)
			}
			if !parallel {
				_, err := sp.Write(b)
				return err
			}
			return nil
		})
	defer pipe.Close()
	// buf holds one piece plus the 16 bytes that may turn out to be the tag.
	buf := pipe.Buffer()
	have := 0
	var total int64
	sent := false
	limit := cfg.bodyLimit(e)
	for {
		end := len(buf)
		if e.PlaintextLength < 0 && limit-total < int64(piece) {
			// Read no more than one byte past the limit: a body of
			// unknown length is refused as soon as it passes it.
			end = int(limit-total) + TagSize + 1
		}
		n, err := io.ReadFull(ciphertext, buf[have:end])
		have += n
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return 0, err
		}
		// buf is full: everything but the last TagSize bytes is body.
		body := buf[:end-TagSize]
		total += int64(len(body))
		if err := tooLong(e, cfg, total); err != nil {
			return 0, err // always, if end was cut short
		}
		next := pipe.Buffer()
		have = copy(next, buf[len(body):end])
		if err := pipe.Send(body); err != nil {
			return 0, err
		}
		sent = true
		buf = next
	}
	if have < TagSize {
		return 0, fmt.Errorf("%w: body shorter than its tag", ErrAuthentication)
	}
	var tag [TagSize]byte
	body := buf[:have-TagSize]
	copy(tag[:], buf[have-TagSize:have])
	total += int64(len(body))
	// A last piece past a stored length is told by the tag first (it is
	// most likely another body), then by the length check below; past
	// MaxPlaintext, Add refuses it.
	if e.PlaintextLength < 0 {
		if err := tooLong(e, cfg, total); err != nil {
			return 0, err
		}
	}
	if sent {
		if err := pipe.Send(body); err != nil {
			return 0, err
		}
		if err := pipe.Close(); err != nil {
			return 0, err
		}
	} else {
		// A body of one piece: no goroutine is worth starting.
		if err := o.Hash(body); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		if _, err := sp.Write(body); err != nil {
			return 0, err
		}
	}
	if err := o.Verify(tag[:]); err != nil {
		return 0, fmt.Errorf("%w: tag does not match", ErrAuthentication)
	}
	if e.PlaintextLength >= 0 && e.PlaintextLength != total {
		return 0, fmt.Errorf("%w: stored plaintext length %d, body holds %d", ErrMalformed, e.PlaintextLength, total)
	}
	return total, nil
}

// ctrPieces decrypts a verified spool of size bytes on several
// goroutines, a piece each, and hands the plaintext out in order. The
// part of the spool in memory is decrypted from where it lies into the
// piece's buffer: the spool never holds plaintext. Plaintext lives only in
// the pieces' buffers, which are wiped when the Plaintext is closed.
type ctrPieces struct {
	stop     *atomic.Bool // the Plaintext was closed: stop between pieces
	sp       *spool.Spool
	stream   *gcmstream.Stream
	size     int64
	piece    int64
	pieces   *overlap.Pieces
	buf, cur []byte // the piece in hand, and its part not yet handed out
}

func newCTRPieces(stream *gcmstream.Stream, sp *spool.Spool, size int64, tune gcmTune) *Plaintext {
	c := &ctrPieces{sp: sp, stream: stream, size: size, piece: int64(tune.piece)}
	// One piece ready beyond those being decrypted and the one in hand.
	// The buffers are the size of spoolVerified's, which they reuse.
	c.pieces = overlap.NewPieces(tune.piece+TagSize, tune.workers+2, tune.workers, c.fill)
	pt := newPlaintext(c, size, func() error {
		c.pieces.Close()
		return sp.Close()
	})
	c.stop = &pt.stop
	return pt
}

// fill decrypts piece seq into b; it runs on the workers' goroutines.
func (c *ctrPieces) fill(b []byte, seq int64) (int, error) {
	off := seq * c.piece
	if off >= c.size {
		return 0, io.EOF
	}
	b = b[:min(c.piece, c.size-off)]
	k := 0
	for k < len(b) {
		m := c.sp.Memory(off + int64(k))
		if m == nil {
			break
		}
		m = m[:min(len(m), len(b)-k)]
		c.stream.XORKeyStreamAt(b[k:], m, uint64(off)+uint64(k))
		k += len(m)
	}
	if k < len(b) {
		rest := b[k:]
		if n, err := c.sp.ReadAt(rest, off+int64(k)); n < len(rest) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("reading the spool: %w", err)
		}
		c.stream.XORKeyStreamAt(rest, rest, uint64(off)+uint64(k))
	}
	if off+int64(len(b)) == c.size {
		return len(b), io.EOF
	}
	return len(b), nil
}

// next makes cur non-empty, handing back the piece in hand first.
func (c *ctrPieces) next() error {
	if len(c.cur) > 0 {
		return nil
	}
	if c.stop.Load() {
		return spool.ErrClosed
	}
	if c.buf != nil {
		c.pieces.Release(c.buf)
		c.buf = nil
	}
	b, err := c.pieces.Next()
	if err != nil {
		return err
	}
	c.buf, c.cur = b, b
	return nil
}

func (c *ctrPieces) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.next(); err != nil {
		return 0, err
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// WriteTo writes the pieces from their buffers, without a copy.
func (c *ctrPieces) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := c.next(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		k, err := w.Write(c.cur)
		total += int64(k)
		c.cur = c.cur[k:]
		if err != nil {
			return total, err
		}
	}
}
