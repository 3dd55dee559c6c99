// Package overlap moves a stream's reads onto a goroutine of their own
// (Reader), so that they overlap with the caller's work on the buffers
// (hashing, decrypting); Pipeline, Pieces and Transform also spread that
// work over several goroutines and keep the stream's order. Buffers circulate between the sides, a fixed number of them, so
// memory stays bounded whatever the length of the stream.
package overlap

import "io"

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
