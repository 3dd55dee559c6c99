package format

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/s3envelope/s3envelope/internal/gcmstream"
	"github.com/s3envelope/s3envelope/internal/overlap"
	"github.com/s3envelope/s3envelope/internal/spool"
)

// The AES-GCM body that V2 and V3 share: one GCM pass over the whole
// plaintext, then its 16-byte tag. V2 seals it under the data key and a
// stored IV; V3 under a key from its key schedule, with a fixed nonce and
// the suite ID as AAD. What does not depend on the key is here.

// MaxPlaintext is the largest object one AES-GCM pass may encrypt
// (2^36 - 32 bytes, about 64 GiB), and so the largest V2 or V3 object.
const MaxPlaintext = gcmstream.MaxPlaintext

// TagSize is the size of the GCM tag appended to a V2 or V3 body.
const TagSize = 16

// pipeChunk is the piece of the spool file read ahead while the previous
// one is decrypted, when one goroutine decrypts (ctrReader).
const pipeChunk = 256 << 10

// gcmBody is what V2's and V3's code share: the sizes of one GCM pass and
// its ranges.
type gcmBody struct{}

func (gcmBody) ciphertextSize(e *Envelope, plaintext int64) (int64, error) {
	if plaintext <= MaxPlaintext {
		return plaintext + TagSize, nil
	}
	return 0, tooLargeFor(e, plaintext)
}

func (gcmBody) plaintextSize(e *Envelope, ciphertext int64) (int64, error) {
	switch {
	case ciphertext < TagSize:
		return 0, fmt.Errorf("%w: body of %d bytes is shorter than its tag", ErrAuthentication, ciphertext)
	case ciphertext-TagSize > MaxPlaintext:
		return 0, fmt.Errorf("%w: a %v body of %d bytes holds more than one AES-GCM pass may", ErrTooLarge, e.Format, ciphertext)
	}
	return ciphertext - TagSize, nil
}

// ciphertextRange: the AES-CTR blocks that hold the range.
func (gcmBody) ciphertextRange(e *Envelope, size, off, n int64) (int64, int64, error) {
	if _, err := plaintextRange(e, size, off, n); err != nil {
		return 0, 0, err
	}
	return off &^ (TagSize - 1), off + n, nil
}

// rangesAuthenticated: a range of one GCM pass cannot be authenticated
// without the whole body.
func (gcmBody) rangesAuthenticated() bool { return false }

// gcmSealer seals a V2 or V3 body with its content key's stream.
type gcmSealer struct {
	env    *Envelope
	stream *gcmstream.Stream
	parts  partState // sealPart's record, for tag
}

func newGCMSealer(env *Envelope, key, nonce, aad []byte) (bodySealer, error) {
	stream, err := gcmstream.New(key, nonce, aad)
	if err != nil {
		return nil, err
	}
	return &gcmSealer{env: env, stream: stream}, nil
}

func (g *gcmSealer) seal(plaintext io.Reader) io.Reader {
	return &sealReader{r: gcmstream.NewSealReader(g.stream, plaintext)}
}

// partAlign: parts are sealed at any AES block.
func (g *gcmSealer) partAlign() int { return gcmstream.BlockSize }

// partSize: a part's ciphertext is as long as its plaintext; the tag
// follows the last part.
func (g *gcmSealer) partSize(n int) int { return n }

func (g *gcmSealer) sealPart(buf []byte, n int, off int64, last bool) ([]byte, error) {
	if _, err := g.env.CiphertextSize(off + int64(n)); err != nil {
		return nil, err
	}
	ct, p := g.stream.SealChunk(buf[:0], buf[:n], uint64(off))
	g.parts.mu.Lock()
	defer g.parts.mu.Unlock()
	if g.parts.parts == nil {
		g.parts.parts, g.parts.end = map[int64]sealedPart{}, -1
	}
	g.parts.parts[off] = sealedPart{p, int64(n)}
	if last {
		g.parts.end = off + int64(n)
	}
	return ct, nil
}

// tag is the GCM tag, once parts covering the plaintext from byte 0 to the
// end of the last part have been sealed.
func (g *gcmSealer) tag() ([]byte, error) {
	g.parts.mu.Lock()
	defer g.parts.mu.Unlock()
	if g.parts.parts == nil || g.parts.end < 0 {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, errPartsMissing)
	}
	offs := make([]int64, 0, len(g.parts.parts))
	for off := range g.parts.parts {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	ps := make([]gcmstream.Partial, len(offs))
	for i, off := range offs {
		ps[i] = g.parts.parts[off].p
	}
	last := offs[len(offs)-1]
	tag, err := g.stream.Tag(ps...)
	if err != nil || last+g.parts.parts[last].n != g.parts.end {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, errPartsMissing)
	}
	return tag, nil
}

func (g *gcmSealer) pieces() (pieceSealer, int) {
	return &gcmPieces{g: g, w: g.stream.NewSealer()}, runtime.GOMAXPROCS(0)
}

// gcmPieces seals one pass in pieces with SealChunk; the partials are
// added in order, and the tag follows the last piece.
type gcmPieces struct {
	g *gcmSealer
	w *gcmstream.Sealer
}

func (p *gcmPieces) seal(pc *piece) error {
	if _, err := p.g.env.CiphertextSize(pc.Off + int64(pc.N)); err != nil {
		return err
	}
	pc.Out, pc.Val = p.g.stream.SealChunk(pc.Buf[:0], pc.Buf[:pc.N], uint64(pc.Off))
	return nil
}

// fingerprint: the piece's GHASH contribution, computed anyway for the tag.
func (p *gcmPieces) fingerprint(pc *piece) [16]byte { return pc.Val.Fingerprint() }

func (p *gcmPieces) emit(pc *piece) error {
	if err := p.w.Add(pc.Val); err != nil {
		return sealError(err)
	}
	if pc.Last {
		pc.Out = p.w.Finish(pc.Out)
	}
	return nil
}

// partState records the GCM partials of the parts sealed so far.
type partState struct {
	mu    sync.Mutex
	parts map[int64]sealedPart // by offset
	end   int64                // plaintext end of the last part, or -1
}
type sealedPart struct {
	p gcmstream.Partial
	n int64
}

// errPartsMissing means Tag was asked for before the parts covering the
// object were sealed.
var errPartsMissing = errors.New("the sealed parts do not cover the object from its start to its last part")

type sealReader struct{ r *gcmstream.SealReader }

func (s *sealReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	return n, sealError(err)
}

// WriteTo lets io.Copy seal in large pieces, without a copy per piece.
func (s *sealReader) WriteTo(w io.Writer) (int64, error) {
	n, err := s.r.WriteTo(w)
	return n, sealError(err)
}
func sealError(err error) error {
	if errors.Is(err, gcmstream.ErrTooLarge) {
		return fmt.Errorf("%w: more than %d bytes of plaintext", ErrTooLarge, int64(MaxPlaintext))
	}
	return err
}
func openGCM(key, nonce, aad []byte, e *Envelope, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	stream, err := gcmstream.New(key, nonce, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthentication, err)
	}
	tune := gcmTuning.get()
	sp := spool.NewStriped(cfg.SpoolDir, cfg.SpoolMemory, tune.workers)
	total, err := spoolVerified(stream, sp, e, cfg, ciphertext, tune)
	if err != nil {
		sp.Close()
		return nil, err
	}
	if tune.workers >= 2 && total > int64(tune.piece) {
		return newCTRPieces(stream, sp, total, tune), nil
	}
	r := &ctrReader{sp: sp, stream: stream}
	if mem := sp.MemorySize(); mem < total {
		// Reads of the spool file (syscalls) run ahead of decryption.
		r.ahead = overlap.NewReader(io.NewSectionReader(sp, mem, total-mem), pipeChunk, 3)
	}
	pt := newPlaintext(r, total, func() error {
		if r.ahead != nil {
			r.ahead.Close()
		}
		return sp.Close()
	})
	r.stop = &pt.stop
	return pt, nil
}

// ctrReader decrypts GCM content read ahead from a verified spool. It
// decrypts straight from the read-ahead buffers into the caller's, so the
// keystream XOR is also the copy.
type ctrReader struct {
	stop      *atomic.Bool // the Plaintext was closed: stop between pieces
	sp        *spool.Spool
	ahead     *overlap.Reader // the part of the spool in a file; nil if none
	stream    *gcmstream.Stream
	off       uint64
	buf, cur  []byte // the buffer in use, and its unread part
	fromAhead bool   // buf is a read-ahead buffer (else a spool chunk)
	scratch   []byte
}

// fill makes cur non-empty, handing back a finished read-ahead buffer
// first. The part of the spool in memory is decrypted from where it lies.
func (c *ctrReader) fill() error {
	if len(c.cur) > 0 {
		return nil
	}
	if c.stop.Load() {
		return spool.ErrClosed
	}
	if c.fromAhead {
		c.ahead.Release(c.buf)
	}
	c.buf, c.fromAhead = nil, false
	if m := c.sp.Memory(int64(c.off)); m != nil {
		c.buf, c.cur = m, m
		return nil
	}
	if c.ahead == nil {
		return io.EOF
	}
	b, err := c.ahead.Next()
	if err != nil {
		return err
	}
	c.buf, c.cur, c.fromAhead = b, b, true
	return nil
}
func (c *ctrReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.fill(); err != nil {
		return 0, err
	}
	n := min(len(p), len(c.cur))
	c.stream.XORKeyStreamAt(p[:n], c.cur[:n], c.off)
	c.off += uint64(n)
	c.cur = c.cur[n:]
	return n, nil
}

// WriteTo decrypts read-ahead buffers in place and spool chunks into a
// scratch buffer (the spool's memory is not to hold plaintext), writes
// them, and wipes them.
func (c *ctrReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := c.fill(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		out := c.cur
		if !c.fromAhead {
			if c.scratch == nil {
				c.scratch = make([]byte, pipeChunk)
			}
			out = c.scratch[:min(len(c.cur), len(c.scratch))]
		}
		c.stream.XORKeyStreamAt(out, c.cur[:len(out)], c.off)
		c.off += uint64(len(out))
		c.cur = c.cur[len(out):]
		k, err := w.Write(out)
		// The buffer goes back to hold ciphertext, or stays until Close:
		// the plaintext in it does not outlive its write. (It is hot in
		// the cache, so this costs little next to the decryption.)
		clear(out)
		total += int64(k)
		if err != nil {
			return total, err
		}
	}
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
