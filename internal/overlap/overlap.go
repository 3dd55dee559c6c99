// Package overlap moves a reader's reads or a writer's writes onto a
// goroutine of their own, so that they overlap with the caller's work on
// the buffers before or after (hashing, decrypting); Pipeline and Pieces
// also spread that work over several goroutines and keep the stream's
// order. Buffers circulate between the sides, a fixed number of them, so
// memory stays bounded whatever the length of the stream.
package overlap

import "io"

// Writer writes buffers to w from its own goroutine, in the order they are
// sent, so that the caller can fill the next buffer meanwhile. Close waits
// for every write and returns the first error; after an error the rest are
// dropped.
type Writer struct {
	free   chan []byte
	work   chan []byte
	done   chan error
	closed bool
	err    error
}

// NewWriter starts a Writer over depth buffers of size bytes.
func NewWriter(w io.Writer, size, depth int) *Writer {
	p := &Writer{free: make(chan []byte, depth), work: make(chan []byte, depth), done: make(chan error, 1)}
	for range depth {
		p.free <- make([]byte, size)
	}
	go func() {
		var err error
		for b := range p.work {
			if err == nil {
				_, err = w.Write(b)
			}
			p.free <- b[:cap(b)]
		}
		p.done <- err
	}()
	return p
}

// Buffer returns a free buffer (its whole capacity), waiting for one if
// all are queued.
func (p *Writer) Buffer() []byte { return <-p.free }

// Send queues b, a slice of a buffer from Buffer, to be written. The buffer
// is the Writer's again until Buffer hands it out anew.
func (p *Writer) Send(b []byte) { p.work <- b }

// Close waits for the queued writes and returns the first error; it is
// safe to call more than once (not concurrently).
func (p *Writer) Close() error {
	if !p.closed {
		p.closed = true
		close(p.work)
		p.err = <-p.done
	}
	return p.err
}

// Reader reads src from its own goroutine, up to depth buffers ahead of
// the consumer. Close stops it and waits for it, so src may be released
// after.
type Reader struct {
	full chan []byte
	free chan []byte
	stop chan struct{}
	done chan struct{}
	err  error // the goroutine's final error, set before full is closed
}

// NewReader starts a Reader of src in buffers of size bytes (the last one
// may be shorter), depth of them.
func NewReader(src io.Reader, size, depth int) *Reader {
	r := &Reader{
		full: make(chan []byte, depth), free: make(chan []byte, depth),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	for range depth {
		r.free <- make([]byte, size)
	}
	go func() {
		defer close(r.done)
		defer close(r.full)
		for {
			var b []byte
			select {
			case b = <-r.free:
			case <-r.stop:
				return
			}
			n, err := io.ReadFull(src, b)
			if n > 0 {
				select {
				case r.full <- b[:n]:
				case <-r.stop:
					return
				}
			}
			if err != nil {
				if err == io.ErrUnexpectedEOF {
					err = io.EOF
				}
				r.err = err
				return
			}
		}
	}()
	return r
}

// Next returns the next full buffer, which the caller owns until it hands
// it back with Release; io.EOF after the last, or src's error.
func (r *Reader) Next() ([]byte, error) {
	b, ok := <-r.full
	if !ok {
		return nil, r.err
	}
	return b, nil
}

// Release returns a buffer from Next for reuse.
func (r *Reader) Release(b []byte) { r.free <- b[:cap(b)] }

// Close stops the reading and waits for the goroutine to end; it is safe
// to call more than once.
func (r *Reader) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}
