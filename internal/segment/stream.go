package segment

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// batchBytes is about how much one worker seals or opens at a time.
const batchBytes = 1 << 20

// maxRound bounds the bytes of the batches processed at once.
const maxRound = 16 << 20

// maxEmptyReads bounds consecutive (0, nil) reads from a source.
const maxEmptyReads = 100

// Reader seals a plaintext stream into segments, or opens a stream of
// segments into plaintext, yielding each segment's output only once it is
// sealed or opened. Up to workers batches of segments are processed at once
// on their own goroutines; every goroutine a call starts has ended when
// the call returns, so an abandoned Reader leaks nothing.
//
// After an error, the bytes already yielded are each authenticated, but the
// stream is incomplete; the error is sticky. A Reader is not safe for
// concurrent use.
type Reader struct {
	c       *Cipher
	src     io.Reader
	seal    bool
	in      int   // bytes read per segment: the segment size, plus Overhead when opening
	stride  int   // bytes per segment slot in a batch buffer
	per     int   // segments per batch
	workers int   // batches processed at once
	next    int64 // index of the next segment to read
	end     int64 // index after the last segment to read, or -1: until the source ends
	final   int64 // index of the final segment when known (ranges), else -1
	lastIn  int   // bytes of the final segment when known (ranges)
	peek    []byte
	done    bool  // the last segment has been read, or reading failed
	skip    int64 // output bytes still to drop
	limit   int64 // output bytes still to yield, or -1
	err     error // returned once the queue is drained
	queue   [][]byte
	qbuf    [][]byte    // queue's backing array, reused once the queue drains
	sets    [2][]*batch // batch buffers: one set in use, one read ahead by WriteTo
}

type batch struct {
	buf   []byte
	first int64
	lens  []int
	flags []bool
	outs  [][]byte
	err   error // after the segments in outs
}

// SealReader returns a Reader of the segments sealing plaintext: the
// object's body. The segment read just before plaintext ends is final; an
// empty plaintext yields one empty final segment.
func (c *Cipher) SealReader(plaintext io.Reader, workers int) *Reader {
	return c.newReader(plaintext, true, 0, -1, -1, workers)
}

// OpenReader returns a Reader of the plaintext of the whole body read from
// ciphertext: the segment that ends the body must open as final.
func (c *Cipher) OpenReader(ciphertext io.Reader, workers int) *Reader {
	return c.newReader(ciphertext, false, 0, -1, -1, workers)
}

// OpenRangeReader returns a Reader of plaintext bytes [off, end) of an
// object of plaintext size p, read from ciphertext, which must hold exactly
// the body bytes that Span returns for them. Each segment opens with the
// final flag only if it is the object's last, so a wrong p makes a segment
// fail instead of changing the result.
func (c *Cipher) OpenRangeReader(ciphertext io.Reader, p, off, end int64, workers int) *Reader {
	first, last, _, _ := Span(c.size, p, off, end)
	r := c.newReader(ciphertext, false, first, last+1, Count(p, c.size)-1, workers)
	r.skip = off - first*int64(c.size)
	r.limit = end - off
	r.lastIn = int(p-(Count(p, c.size)-1)*int64(c.size)) + Overhead
	return r
}

func (c *Cipher) newReader(src io.Reader, seal bool, first, end, final int64, workers int) *Reader {
	r := &Reader{c: c, src: src, seal: seal, stride: c.size + Overhead, next: first, end: end, final: final, limit: -1}
	r.in = c.size
	if !seal {
		r.in += Overhead
	}
	r.per = max(1, batchBytes/r.stride)
	if end >= 0 {
		r.per = int(min(int64(r.per), end-first))
	}
	// However many cores, a round of batches stays within maxRound (two
	// rounds with WriteTo's read-ahead): memory does not grow with the
	// machine, nor past 2 × 16 MiB with the largest segments a stored
	// object may name.
	r.workers = max(1, min(workers, maxRound/(max(1, r.per)*r.stride)))
	r.peek = make([]byte, 0, 1)
	if end >= 0 && end <= first {
		r.done = true // an empty range: no segment to read
	}
	return r
}

// fill reads into b, after the byte peeked, if any, until b is full or the
// source ends (io.EOF).
func (r *Reader) fill(b []byte) (int, error) {
	n := 0
	if len(r.peek) == 1 && len(b) > 0 {
		b[0] = r.peek[0]
		r.peek = r.peek[:0]
		n = 1
	}
	empty := 0
	for n < len(b) {
		m, err := r.src.Read(b[n:])
		n += m
		switch {
		case err == io.EOF:
			return n, io.EOF
		case err != nil:
			return n, err
		case m == 0:
			if empty++; empty >= maxEmptyReads {
				return n, io.ErrNoProgress
			}
		default:
			empty = 0
		}
	}
	return n, nil
}

// more reports whether the source holds another byte, keeping it.
func (r *Reader) more() (bool, error) {
	if len(r.peek) == 1 {
		return true, nil
	}
	var b [1]byte
	n, err := r.fill(b[:])
	if n == 1 {
		r.peek = append(r.peek, b[0])
		return true, nil
	}
	if err == io.EOF {
		return false, nil
	}
	return false, err
}

// readBatch reads the next batch of segments into b, deciding for each its
// final flag; the segments that break the format end the batch with an
// error.
func (r *Reader) readBatch(b *batch) {
	b.first, b.lens, b.flags, b.outs, b.err = r.next, b.lens[:0], b.flags[:0], b.outs[:0], nil
	if b.buf == nil && r.end >= 0 {
		b.buf = make([]byte, r.per*r.stride) // a range: exactly what it needs
	}
	for k := 0; k < r.per && !r.done; k++ {
		if need := (k + 1) * r.stride; len(b.buf) < need {
			// A stream of unknown length: grow the buffer as segments come,
			// so that a small object does not cost a whole batch.
			nb := make([]byte, min(r.per*r.stride, max(need, 2*len(b.buf))))
			copy(nb, b.buf[:k*r.stride])
			b.buf = nb
		}
		i := r.next
		n, err := r.fill(b.buf[k*r.stride : k*r.stride+r.in])
		if err != nil && err != io.EOF {
			b.err, r.done = err, true
			return
		}
		full := n == r.in
		last, final := false, false
		if r.end >= 0 {
			last = i == r.end-1
			final = i == r.final
			switch {
			case !full && !last:
				b.err = fmt.Errorf("%w: body ends inside segment %d", ErrAuthentication, i)
			case !full && !final:
				b.err = fmt.Errorf("%w: segment %d is short but not the last", ErrAuthentication, i)
			case final && n != r.lastIn:
				// The claimed size gives the final segment its length: a
				// source that ends elsewhere is not that object.
				b.err = fmt.Errorf("%w: final segment %d of %d bytes, the object's size says %d", ErrAuthentication, i, n, r.lastIn)
			case last && full:
				more, err := r.more()
				if err != nil {
					b.err = err
				} else if more {
					b.err = fmt.Errorf("%w: data after segment %d, the last one requested", ErrAuthentication, i)
				}
			}
		} else {
			last = !full
			if full {
				more, err := r.more()
				if err != nil {
					b.err, r.done = err, true
					return
				}
				last = !more
			}
			final = last
		}
		if b.err == nil && final && !r.seal && (n < Overhead || (n == Overhead && i != 0)) {
			// Only an empty object ends in an empty segment, and only at index 0.
			b.err = fmt.Errorf("%w: final segment %d of %d bytes", ErrAuthentication, i, n)
		}
		if b.err == nil && r.seal && n == 0 && i != 0 {
			b.err = errors.New("segment: internal error: empty segment after data")
		}
		if b.err != nil {
			r.done = true
			return
		}
		b.lens = append(b.lens, n)
		b.flags = append(b.flags, final)
		r.next++
		if last {
			r.done = true
		}
	}
}

// process seals or opens every segment of b in place. A segment that fails
// replaces b.err, which then follows the segments before it.
func (r *Reader) process(b *batch) {
	for k, n := range b.lens {
		slot := b.buf[k*r.stride : k*r.stride+n]
		i := b.first + int64(k)
		if r.seal {
			b.outs = append(b.outs, r.c.Seal(slot[:0], slot, i, b.flags[k]))
			continue
		}
		out, err := r.c.Open(slot[:0], slot, i, b.flags[k])
		if err != nil {
			b.err = err
			return
		}
		b.outs = append(b.outs, out)
	}
}

// readRound reads up to workers batches into set.
func (r *Reader) readRound(set *[]*batch) []*batch {
	if *set == nil {
		for range r.workers {
			*set = append(*set, &batch{})
		}
	}
	var round []*batch
	for _, b := range *set {
		if r.done {
			break
		}
		r.readBatch(b)
		round = append(round, b)
		if b.err != nil {
			break
		}
	}
	return round
}

// processRound processes the batches of a round, in parallel when there is
// more than one.
func (r *Reader) processRound(round []*batch) {
	if len(round) == 1 {
		r.process(round[0])
		return
	}
	var wg sync.WaitGroup
	for _, b := range round {
		wg.Go(func() { r.process(b) })
	}
	wg.Wait()
}

// take moves a processed round's outputs, trimmed to the requested
// window, to the queue and records the first error (io.EOF after the last
// segment). done is whether reading had ended when the round was read: not
// r.done, which WriteTo's read-ahead may be changing.
func (r *Reader) take(round []*batch, done bool) {
	if len(r.queue) == 0 {
		r.queue = r.qbuf[:0]
	}
	defer func() {
		if cap(r.queue) > cap(r.qbuf) {
			r.qbuf = r.queue[:0]
		}
	}()
	for _, b := range round {
		for _, out := range b.outs {
			if r.skip > 0 {
				d := min(r.skip, int64(len(out)))
				out, r.skip = out[d:], r.skip-d
			}
			if r.limit >= 0 {
				out = out[:min(int64(len(out)), r.limit)]
				r.limit -= int64(len(out))
			}
			if len(out) > 0 {
				r.queue = append(r.queue, out)
			}
		}
		if b.err != nil {
			r.err = b.err
			return
		}
	}
	if done {
		r.err = io.EOF
	}
}

// Read yields the next bytes of output.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.queue) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		round := r.readRound(&r.sets[0])
		r.processRound(round)
		r.take(round, r.done)
	}
	n := 0
	for n < len(p) && len(r.queue) > 0 {
		k := copy(p[n:], r.queue[0])
		n += k
		if r.queue[0] = r.queue[0][k:]; len(r.queue[0]) == 0 {
			r.queue = r.queue[1:]
		}
	}
	return n, nil
}

// WriteTo writes the rest of the output to w, reading the next round of
// batches from the source while the current one is processed and written.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	emit := func() error {
		for len(r.queue) > 0 {
			k, err := w.Write(r.queue[0])
			total += int64(k)
			if err != nil {
				r.queue[0] = r.queue[0][k:]
				return err
			}
			r.queue = r.queue[1:]
		}
		return nil
	}
	if err := emit(); err != nil {
		return total, err
	}
	if r.err != nil {
		return total, ignoreEOF(r.err)
	}
	cur := 0
	round := r.readRound(&r.sets[cur])
	for len(round) > 0 {
		var next []*batch
		ahead := make(chan struct{})
		done := r.done
		if !done {
			go func() {
				defer close(ahead)
				next = r.readRound(&r.sets[1-cur])
			}()
		} else {
			close(ahead)
		}
		r.processRound(round)
		r.take(round, done)
		werr := emit()
		<-ahead
		if werr != nil {
			// The round read ahead is dropped: this Reader has failed.
			r.err = werr
			return total, werr
		}
		if r.err != nil {
			return total, ignoreEOF(r.err)
		}
		round, cur = next, 1-cur
	}
	return total, ignoreEOF(r.err)
}

func ignoreEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}
