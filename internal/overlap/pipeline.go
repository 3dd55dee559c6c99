package overlap

import (
	"sync"
	"sync/atomic"
)

// Pipeline passes the buffers its caller fills through work, on up to
// workers goroutines at once, then through sink, one buffer at a time in
// the order they were sent, on a goroutine of its own: the caller reads
// the next buffer while earlier ones are worked on (hashed, on several
// cores) and the ones before are sunk (written). depth buffers circulate,
// so memory stays bounded whatever the length of the stream. Goroutines
// start with the first Send; a Pipeline that is never sent to starts none.
//
// work and sink get the buffer as sent and its sequence number (0 for the
// first Send); work for a buffer has returned before sink gets it, and
// work for a sequence number returns before work for the sequence number
// depth later starts, so per-buffer results may be kept in a ring of depth
// entries indexed by seq%depth. A buffer is read-only for both.
type Pipeline struct {
	work    func(b []byte, seq int64)
	sink    func(b []byte, seq int64) error
	size    int
	workers int

	slots []*slot
	free  chan *slot
	todo  chan *slot // to the workers
	order chan *slot // to the sink, in the order sent

	seq     int64
	started bool
	closed  bool
	failed  atomic.Bool // the sink failed: what is sent is no longer sunk
	err     error       // the sink's first error, once done is closed
	done    chan struct{}
	wg      sync.WaitGroup
}

type slot struct {
	buf    []byte // the whole buffer, nil until first handed out
	b      []byte // as sent
	seq    int64
	worked chan struct{} // work for b has returned
}

// NewPipeline returns a Pipeline of depth buffers of size bytes, each
// taken (from a pool) when first needed. With workers below 2, work runs on the
// caller's goroutine, in Send, and only the sink has a goroutine of its
// own.
func NewPipeline(size, depth, workers int, work func(b []byte, seq int64), sink func(b []byte, seq int64) error) *Pipeline {
	p := &Pipeline{
		work: work, sink: sink, size: size, workers: workers,
		free: make(chan *slot, depth), todo: make(chan *slot, depth), order: make(chan *slot, depth),
		done: make(chan struct{}),
	}
	for range depth {
		s := &slot{worked: make(chan struct{}, 1)}
		p.slots = append(p.slots, s)
		p.free <- s
	}
	return p
}

// Buffer returns a free buffer (its whole capacity, size bytes), waiting
// for one if all are in the pipeline. The caller may hold several.
func (p *Pipeline) Buffer() []byte {
	s := <-p.free
	if s.buf == nil {
		s.buf = getBuffer(p.size)
	}
	return s.buf
}

// Send queues b, a prefix of a buffer from Buffer, to be worked on and
// sunk; the buffer is the Pipeline's again until Buffer hands it out anew.
// It returns the sink's first error if it has failed already, so that the
// caller can stop early (Close returns it too). Send must not be called
// after Close.
func (p *Pipeline) Send(b []byte) error {
	s := p.slotOf(b)
	s.b, s.seq = b, p.seq
	p.seq++
	if !p.started {
		p.start()
	}
	if p.workers < 2 {
		p.work(s.b, s.seq)
		s.worked <- struct{}{}
	} else {
		p.todo <- s
	}
	p.order <- s
	if p.failed.Load() {
		return p.err // written before failed was set
	}
	return nil
}

// slotOf finds the slot whose buffer b is a prefix of.
func (p *Pipeline) slotOf(b []byte) *slot {
	b = b[:1:cap(b)]
	for _, s := range p.slots {
		if s.buf != nil && &s.buf[0] == &b[0] {
			return s
		}
	}
	panic("overlap: Send of a buffer that is not the Pipeline's")
}

func (p *Pipeline) start() {
	p.started = true
	if p.workers >= 2 {
		for range p.workers {
			p.wg.Go(func() {
				for s := range p.todo {
					p.work(s.b, s.seq)
					s.worked <- struct{}{}
				}
			})
		}
	}
	go func() {
		defer close(p.done)
		var err error
		for s := range p.order {
			<-s.worked
			if err == nil {
				if err = p.sink(s.b, s.seq); err != nil {
					p.err = err
					p.failed.Store(true)
				}
			}
			s.b = nil
			p.free <- s
		}
	}()
}

// Close waits until everything sent has been worked on and sunk (or
// dropped after the sink failed), ends the goroutines, and returns the
// sink's first error. The buffers go back to a pool for the next stream:
// none from Buffer may be used after. It is safe to call more than once
// (not concurrently).
func (p *Pipeline) Close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	if p.started {
		close(p.todo)
		close(p.order)
		p.wg.Wait()
		<-p.done
	}
	for _, s := range p.slots {
		if s.buf != nil {
			putBuffer(s.buf)
			s.buf = nil
		}
	}
	return p.err
}
