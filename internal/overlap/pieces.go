package overlap

import (
	"io"
	"sync"
	"sync/atomic"
)

// Pieces fills the pieces of a stream on up to workers goroutines at once
// and hands them out in order, as Reader does with one goroutine: piece
// seq is whatever fill(b, seq) puts in b (reading and decrypting the
// stream's bytes from seq×size, say). depth buffers circulate, so memory
// stays bounded. Goroutines start with the first Next; Close stops them
// and wipes every buffer, so that what they held (plaintext) does not
// outlive the Pieces.
type Pieces struct {
	fill    func(b []byte, seq int64) (int, error)
	size    int
	depth   int
	workers int

	mu    sync.Mutex
	bufs  [][]byte // every buffer taken, to wipe and put back on Close
	free  chan []byte
	slots []chan piece // piece seq waits in slots[seq%depth]
	next  atomic.Int64 // the next sequence number a worker takes
	ended atomic.Bool  // a fill returned an error: take no more
	stop  chan struct{}
	wg    sync.WaitGroup

	started bool
	seq     int64 // the next piece Next returns
	err     error // returned by Next once the pieces before it are out
	closed  bool
}

type piece struct {
	b   []byte
	err error
}

// NewPieces returns the Pieces of a stream filled by fill, in depth
// buffers of size bytes, each taken (from a pool) when first needed (depth
// at least workers+1, so that one can be held by the consumer while every
// worker fills one). fill(b, seq) fills
// b (its whole capacity) with piece seq and returns how many bytes of it
// are the piece's; with io.EOF for the last piece (n may be 0 past the
// end) and with an error that ends the stream after the pieces before.
// fill runs on several goroutines at once, for different seq.
func NewPieces(size, depth, workers int, fill func(b []byte, seq int64) (int, error)) *Pieces {
	workers = max(workers, 1)
	depth = max(depth, workers+1)
	p := &Pieces{
		fill: fill, size: size, depth: depth, workers: workers,
		free: make(chan []byte, depth), slots: make([]chan piece, depth), stop: make(chan struct{}),
	}
	for i := range p.slots {
		p.slots[i] = make(chan piece, 1)
	}
	return p
}

func (p *Pieces) start() {
	p.started = true
	for range p.depth {
		p.free <- nil // taken when first needed: a short stream needs few
	}
	for range p.workers {
		p.wg.Go(p.worker)
	}
}

// worker takes a free buffer, then the next sequence number, so that the
// pieces taken and not yet handed out hold the buffers: at most depth of
// them, consecutive, each in a slot of its own.
func (p *Pieces) worker() {
	for {
		var b []byte
		select {
		case b = <-p.free:
		case <-p.stop:
			return
		}
		if p.ended.Load() {
			p.free <- b
			return
		}
		if b == nil {
			b = getBuffer(p.size)
			p.mu.Lock()
			p.bufs = append(p.bufs, b)
			p.mu.Unlock()
		}
		seq := p.next.Add(1) - 1
		n, err := p.fill(b, seq)
		if n < 0 || n > len(b) {
			n, err = 0, io.ErrShortBuffer // a misbehaving fill; do not slice with n
		}
		if err != nil {
			p.ended.Store(true)
		}
		select {
		case p.slots[seq%int64(p.depth)] <- piece{b[:n], err}:
		case <-p.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// Next returns the next piece, which the caller owns until it hands it
// back with Release; io.EOF after the last, or fill's error. It must not
// be called concurrently, nor after Close.
func (p *Pieces) Next() ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	if !p.started {
		p.start()
	}
	r := <-p.slots[p.seq%int64(p.depth)]
	p.seq++
	if r.err != nil {
		p.err = r.err
		if len(r.b) == 0 {
			p.Release(r.b)
			return nil, r.err
		}
	}
	return r.b, nil
}

// Release hands back a buffer from Next for reuse.
func (p *Pieces) Release(b []byte) { p.free <- b[:cap(b)] }

// Close stops the workers, waits for them, wipes every buffer and puts
// it back in a pool for the next stream: none from Next may be used
// after. It is safe to call more than once, but not while Next is in
// progress.
func (p *Pieces) Close() {
	if p.closed {
		return
	}
	p.closed = true
	close(p.stop)
	p.wg.Wait()
	for _, b := range p.bufs {
		clear(b)
		putBuffer(b)
	}
	p.bufs = nil
}
