package format

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/s3envelope/s3envelope/internal/spool"
)

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
