package overlap

import (
	"fmt"
	"io"
	"sync"
)

// Piece is one stretch of a stream in a Transform: read from the source into
// Buf[:N], turned in place into Out by the work function, then handed out.
type Piece[T any] struct {
	Buf  []byte // the whole buffer: the piece's size plus the room asked for
	N    int    // bytes read from the source
	Off  int64  // the piece's offset in the source
	Last bool   // the piece ends the stream
	Out  []byte // what the work function made of it
	Val  T      // a result of the work function for the emit function

	done chan struct{}
	err  error
}

// Transform reads a stream in pieces on its own goroutine, runs a work
// function on each piece on a goroutine of its own, and hands the results
// out in order through Read and WriteTo — so that reading the source, the
// work on several pieces, and the consumer's copy all overlap. At most
// depth buffers of size+room bytes exist, so memory stays bounded.
//
// A Transform is for work on data that must not outlive the stream
// (plaintext): Close stops the goroutines, waits for them and wipes every
// buffer. A Transform is safe for one consumer goroutine; Close may come
// from another, but not while Read or WriteTo runs.
type Transform[T any] struct {
	work func(*Piece[T]) error
	emit func(*Piece[T]) error

	order chan *Piece[T]
	free  chan []byte
	stop  chan struct{}
	done  chan struct{} // the reading goroutine ended
	mu    sync.Mutex
	bufs  [][]byte // every buffer made, to wipe on Close

	cur       *Piece[T]
	rest      []byte
	err       error // sticky: the first error, or io.EOF after the last piece
	closeOnce sync.Once
}

// ErrShortSource means the source ended before the length a Transform was
// promised.
var ErrShortSource = fmt.Errorf("overlap: source ended early: %w", io.ErrUnexpectedEOF)

// NewTransform starts reading total bytes from src in pieces of size bytes
// (the last may be shorter), or, if total is negative, src to its end
// (the last piece is then found by reading one byte ahead; a src with
// nothing in it makes one empty piece). work runs on each
// piece concurrently with the others (up to depth-1 at once) and sets its
// Out; emit runs in the consumer's goroutine on each piece in order before
// its Out is handed out, and may extend Out within Buf's capacity. An error
// from src, work or emit ends the stream with that error.
func NewTransform[T any](src io.Reader, total int64, size, room, depth int, work, emit func(*Piece[T]) error) *Transform[T] {
	p := &Transform[T]{
		work: work, emit: emit,
		order: make(chan *Piece[T], depth), free: make(chan []byte, depth),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	// Buffers are made as the reading needs them: a short stream takes one.
	for range depth {
		p.free <- nil
	}
	go p.read(src, total, size, room)
	return p
}

func (p *Transform[T]) read(src io.Reader, total int64, size, room int) {
	defer close(p.done)
	defer close(p.order)
	var peek [1]byte
	peeked := false
	for off := int64(0); ; {
		var buf []byte
		select {
		case buf = <-p.free:
		case <-p.stop:
			return
		}
		if buf == nil {
			n := size
			if total >= 0 {
				n = int(min(int64(size), total))
			}
			buf = make([]byte, n+room)
			p.mu.Lock()
			p.bufs = append(p.bufs, buf)
			p.mu.Unlock()
		}
		n, k, last := size, 0, false
		if total >= 0 {
			n = int(min(int64(size), total-off))
			last = off+int64(n) == total
		}
		if peeked {
			buf[0], k = peek[0], 1
		}
		m, err := io.ReadFull(src, buf[k:n])
		k += m
		switch {
		case total < 0 && (err == io.EOF || err == io.ErrUnexpectedEOF):
			// The stream ends in this piece.
			last, err = true, nil
		case total < 0 && err == nil:
			// A full piece ends the stream if nothing follows it.
			var j int
			j, err = io.ReadFull(src, peek[:])
			peeked = j == 1
			if err == io.EOF {
				last, err = true, nil
			}
		case err == io.ErrUnexpectedEOF || err == io.EOF:
			err = ErrShortSource
		}
		pc := &Piece[T]{Buf: buf, N: k, Off: off, Last: last, done: make(chan struct{})}
		if err != nil {
			pc.err = err
			clear(buf[:k])
			clear(peek[:])
			close(pc.done)
		} else {
			go func() {
				defer close(pc.done)
				pc.err = p.work(pc)
			}()
		}
		select {
		case p.order <- pc:
		case <-p.stop:
			<-pc.done
			clear(buf)
			clear(peek[:])
			return
		}
		if err != nil || last {
			return
		}
		off += int64(k)
	}
}

// next makes rest the unread output of the current piece, moving to the
// next piece when it is used up; it returns the stream's error once there
// is nothing more.
func (p *Transform[T]) next() error {
	for len(p.rest) == 0 {
		if p.err != nil {
			return p.err
		}
		if p.cur != nil {
			p.free <- p.cur.Buf
			p.cur = nil
		}
		pc, ok := <-p.order
		if !ok {
			p.err = io.EOF
			continue
		}
		<-pc.done
		err := pc.err
		if err == nil && p.emit != nil {
			err = p.emit(pc)
		}
		if err != nil {
			clear(pc.Buf)
			p.free <- pc.Buf
			p.err = err
			continue
		}
		p.cur, p.rest = pc, pc.Out
		if pc.Last && len(pc.Out) == 0 {
			p.err = io.EOF
		}
	}
	return nil
}

// Read copies the next output bytes into b.
func (p *Transform[T]) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if err := p.next(); err != nil {
		return 0, err
	}
	n := copy(b, p.rest)
	p.rest = p.rest[n:]
	return n, nil
}

// WriteTo writes the rest of the output to w, each piece in one Write.
func (p *Transform[T]) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := p.next(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		k, err := w.Write(p.rest)
		total += int64(k)
		p.rest = p.rest[k:]
		if err != nil {
			p.err = err
			return total, err
		}
	}
}

// Close stops reading, waits for the goroutines and wipes the buffers; the
// source is not read after it returns. It is safe to call more than once.
func (p *Transform[T]) Close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		<-p.done
		for pc := range p.order {
			<-pc.done
		}
		for _, b := range p.bufs {
			clear(b)
		}
		p.cur, p.rest = nil, nil
		if p.err == nil {
			p.err = io.ErrClosedPipe
		}
	})
	return nil
}
