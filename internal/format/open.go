package format

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/s3envelope/s3envelope/internal/gcmstream"
	"github.com/s3envelope/s3envelope/internal/overlap"
	"github.com/s3envelope/s3envelope/internal/spool"
)

// chunk is the unit in which bodies are read, hashed and decrypted.
const chunk = 64 << 10

// pipeChunk is the piece of ciphertext hashed while the previous one is
// spooled.
const pipeChunk = 256 << 10

// Plaintext is an opened object's body. Every byte it yields has been
// authenticated (except for legacy AES/CBC content and legacy ranges,
// which nothing authenticates). Close releases its spool; it must be
// called, and may be called at any time from any goroutine — the usual way
// to abort a read in progress. What a read in progress uses is released
// when that read returns.
type Plaintext struct {
	r       io.Reader
	size    int64
	release func() error // releases what r reads from; nil if nothing

	mu      sync.Mutex
	reading int  // Read and WriteTo calls in progress
	closed  bool // Close was called
	stop    atomic.Bool
}

func newPlaintext(r io.Reader, size int64, release func() error) *Plaintext {
	return &Plaintext{r: r, size: size, release: release}
}

// Size is the plaintext's length in bytes, or -1 when it is known only
// once read (a whole segmented object, which is released as it verifies).
func (p *Plaintext) Size() int64 { return p.size }

// begin registers a read, unless the plaintext is closed.
func (p *Plaintext) begin() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return spool.ErrClosed
	}
	p.reading++
	return nil
}

// end ends a read; the last one to end after Close releases.
func (p *Plaintext) end() {
	p.mu.Lock()
	p.reading--
	last := p.closed && p.reading == 0
	p.mu.Unlock()
	if last && p.release != nil {
		p.release()
	}
}

// Read reads decrypted, verified plaintext.
func (p *Plaintext) Read(b []byte) (int, error) {
	if err := p.begin(); err != nil {
		return 0, err
	}
	defer p.end()
	return p.r.Read(b)
}

// WriteTo writes the rest of the plaintext to w in large pieces; io.Copy
// uses it, so decryption is not cut into the small reads of w's buffer. A
// Close from another goroutine stops it after the piece in progress.
func (p *Plaintext) WriteTo(w io.Writer) (int64, error) {
	if err := p.begin(); err != nil {
		return 0, err
	}
	defer p.end()
	if wt, ok := p.r.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.CopyBuffer(struct{ io.Writer }{w}, stoppable{p.r, &p.stop}, make([]byte, 4*chunk))
}

// Close releases the spooled ciphertext, if any, once no read is in
// progress. It is safe to call more than once, and concurrently with a
// read, which then fails or ends.
func (p *Plaintext) Close() error {
	p.stop.Store(true)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	busy := p.reading > 0
	p.mu.Unlock()
	if busy || p.release == nil {
		return nil
	}
	return p.release()
}

// stoppable is a reader that fails once stop is set.
type stoppable struct {
	r    io.Reader
	stop *atomic.Bool
}

func (s stoppable) Read(b []byte) (int, error) {
	if s.stop.Load() {
		return 0, spool.ErrClosed
	}
	return s.r.Read(b)
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
// scratch buffer (the spool's memory is not to hold plaintext), and writes
// them.
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
		total += int64(k)
		if err != nil {
			return total, err
		}
	}
}

// cbcReader decrypts whole AES/CBC blocks read from a spool.
type cbcReader struct {
	src io.Reader
	dec cipher.BlockMode
	buf []byte
	out []byte
}

func (c *cbcReader) Read(b []byte) (int, error) {
	if len(c.out) == 0 {
		n, err := io.ReadFull(c.src, c.buf)
		n -= n % aes.BlockSize
		if n == 0 {
			if err == nil || err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return 0, err
		}
		c.dec.CryptBlocks(c.buf[:n], c.buf[:n])
		c.out = c.buf[:n]
	}
	n := copy(b, c.out)
	c.out = c.out[n:]
	return n, nil
}

// Open authenticates and decrypts an object's body read from ciphertext,
// using u to unwrap its data key. For V2 and V3 it returns only once the
// whole body has been verified (the tag, and for V3 first the key
// commitment): the ciphertext waits in a spool (memory up to
// cfg.SpoolMemory, then a temporary file), and plaintext is decrypted from
// it as it is read. A segmented object's commitment is checked before Open
// returns; its plaintext is then released segment by segment as each opens
// (on up to cfg.SegmentWorkers goroutines), and a body that is cut short,
// extended or altered fails with ErrAuthentication once the segments before
// the fault are read: a caller must treat a read error as the whole object
// failing.
//
// cfg decides what may be opened; the envelope's own fields never widen it.
// Errors wrap ErrAuthentication, ErrPolicy, ErrDisallowed, ErrMalformed,
// ErrTooLarge, or an error from u or from reading ciphertext.
func Open(ctx context.Context, e *Envelope, u Unwrapper, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	if err := checkMasterKey(u); err != nil {
		return nil, err
	}
	if err := cfg.checkRead(e); err != nil {
		return nil, err
	}
	dataKey, err := u.Unwrap(ctx, &e.Key, e.ContentAlgorithm)
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	switch e.ContentAlgorithm {
	case ContentAESGCM:
		if e.Format != FormatV2 {
			break
		}
		return openGCM(dataKey, e.IV, nil, e, cfg, ciphertext)
	case ContentAESGCMCommit:
		if e.Format != FormatV3 {
			break
		}
		contentKey, err := openV3Key(dataKey, e.MessageID, e.Commitment)
		if err != nil {
			return nil, err
		}
		defer clear(contentKey)
		return openGCM(contentKey, v3Nonce, v3SuiteID, e, cfg, ciphertext)
	case ContentAESCBC:
		return openCBC(dataKey, e, cfg, ciphertext)
	case ContentSegmented:
		if e.Format != FormatSegmented {
			break
		}
		c, err := openSegmented(e, dataKey)
		if err != nil {
			return nil, err
		}
		return newPlaintext(segReader{c.OpenReader(ciphertext, cfg.workers())}, -1, nil), nil
	}
	return nil, fmt.Errorf("%w: content algorithm %q in a %v envelope", ErrUnsupported, e.ContentAlgorithm, e.Format)
}

// tooLong refuses a body once it holds more than total bytes of plaintext
// than it may: its stored length, MaxPlaintext, or, when its length is
// unknown, SpoolLimit. It fails as soon as the body passes the bound,
// before the excess is spooled, so a hostile body costs no more memory or
// disk than the length it claims.
func tooLong(e *Envelope, cfg Config, total int64) error {
	limit := cfg.bodyLimit(e)
	switch {
	case total <= limit:
		return nil
	case e.PlaintextLength >= 0:
		return fmt.Errorf("%w: stored plaintext length %d, body holds more", ErrMalformed, e.PlaintextLength)
	case limit < MaxPlaintext:
		return fmt.Errorf("%w: a body of unknown length passed the spool limit of %d bytes (Config.SpoolLimit)", ErrTooLarge, limit)
	}
	return fmt.Errorf("%w: body exceeds %d bytes", ErrTooLarge, int64(MaxPlaintext))
}

func openGCM(key, nonce, aad []byte, e *Envelope, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	stream, err := gcmstream.New(key, nonce, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthentication, err)
	}
	sp := spool.New(cfg.SpoolDir, cfg.SpoolMemory)
	ok := false
	defer func() {
		if !ok {
			sp.Close()
		}
	}()
	o := stream.NewOpener()
	// Hashing and spooling overlap: the spool is written from its own
	// goroutine while the next piece is read and hashed.
	pipe := overlap.NewWriter(sp, pipeChunk+TagSize, 3)
	defer pipe.Close()
	// buf holds one piece plus the 16 bytes that may turn out to be the tag.
	buf := pipe.Buffer()
	have := 0
	var total int64
	for {
		n, err := io.ReadFull(ciphertext, buf[have:])
		have += n
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
		// buf is full: everything but the last TagSize bytes is body.
		body := buf[:pipeChunk]
		total += int64(len(body))
		if err := tooLong(e, cfg, total); err != nil {
			return nil, err
		}
		if err := o.Hash(body); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		next := pipe.Buffer()
		have = copy(next, buf[pipeChunk:])
		pipe.Send(body)
		buf = next
	}
	if have < TagSize {
		return nil, fmt.Errorf("%w: body shorter than its tag", ErrAuthentication)
	}
	body, tag := buf[:have-TagSize], buf[have-TagSize:have]
	total += int64(len(body))
	// A last piece past a stored length is told by the tag first (it is
	// most likely another body), then by the length check below; past
	// MaxPlaintext, Hash refuses it.
	if e.PlaintextLength < 0 {
		if err := tooLong(e, cfg, total); err != nil {
			return nil, err
		}
	}
	if err := o.Hash(body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTooLarge, err)
	}
	if err := o.Verify(tag); err != nil {
		return nil, fmt.Errorf("%w: tag does not match", ErrAuthentication)
	}
	pipe.Send(body)
	if err := pipe.Close(); err != nil {
		return nil, err
	}
	if e.PlaintextLength >= 0 && e.PlaintextLength != total {
		return nil, fmt.Errorf("%w: stored plaintext length %d, body holds %d", ErrMalformed, e.PlaintextLength, total)
	}
	ok = true
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

// openCBC reads legacy AES/CBC/PKCS5Padding content. Nothing authenticates
// it; Config.checkRead has already required the caller's explicit consent.
// The padding is checked before anything is released so that a malformed
// body yields an error rather than a short read.
func openCBC(dataKey []byte, e *Envelope, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	block, err := aes.NewCipher(dataKey)
	if err != nil || len(e.IV) != aes.BlockSize {
		return nil, fmt.Errorf("%w: bad AES/CBC key or IV", ErrAuthentication)
	}
	sp := spool.New(cfg.SpoolDir, cfg.SpoolMemory)
	ok := false
	defer func() {
		if !ok {
			sp.Close()
		}
	}()
	// The final two ciphertext blocks; before any, the IV is the block that
	// precedes the first.
	var last [2 * aes.BlockSize]byte
	copy(last[aes.BlockSize:], e.IV)
	var total int64
	buf := make([]byte, chunk)
	for {
		n, err := io.ReadFull(ciphertext, buf)
		if n > 0 {
			// The body holds up to one block of padding past the plaintext.
			total += int64(n)
			if err := tooLong(e, cfg, total-aes.BlockSize); err != nil {
				return nil, err
			}
			if _, werr := sp.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			tail := append(last[:], buf[:n]...)
			copy(last[:], tail[len(tail)-len(last):])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if total == 0 || total%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: AES/CBC body is not whole blocks", ErrAuthentication)
	}
	var final [aes.BlockSize]byte
	block.Decrypt(final[:], last[aes.BlockSize:])
	subtle.XORBytes(final[:], final[:], last[:aes.BlockSize])
	pad := int(final[aes.BlockSize-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	for i := 0; i < aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(aes.BlockSize-pad, i)
		good &= subtle.ConstantTimeByteEq(final[i], byte(pad)) | (inPad ^ 1)
	}
	if good != 1 {
		return nil, fmt.Errorf("%w: AES/CBC padding", ErrAuthentication)
	}
	size := total - int64(pad)
	if e.PlaintextLength >= 0 && e.PlaintextLength != size {
		return nil, fmt.Errorf("%w: stored plaintext length %d, body holds %d", ErrMalformed, e.PlaintextLength, size)
	}
	ok = true
	dec := cipher.NewCBCDecrypter(block, e.IV)
	r := &cbcReader{src: sp.Reader(), dec: dec, buf: make([]byte, chunk)}
	return newPlaintext(io.LimitReader(r, size), size, sp.Close), nil
}
