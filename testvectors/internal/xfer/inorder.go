package xfer

import (
	"fmt"
	"io"
	"sync"
)

// inOrder is the io.WriterAt that the SDK's manager.Downloader writes to:
// it passes the bytes on to w in offset order, holding pieces that arrive
// ahead of the next offset. The digest of an unencrypted download is then
// taken as it streams, as the Downloader's io.Writer takes it for ours
// (which reorders its ranged GETs internally), instead of after the whole
// object is in memory or on disk.
type inOrder struct {
	w     io.Writer
	limit int64 // the most bytes held; beyond it WriteAt fails

	mu      sync.Mutex
	next    int64            // bytes passed to w
	pending map[int64][]byte // pieces at offsets beyond next
	held    int64            // bytes in pending
	err     error            // w's first error
}

// newInOrder returns an inOrder that holds at most limit bytes ahead of the
// next offset. It fails rather than blocks beyond that: a writer that waited
// for a stalled part would never be woken if that part's GET failed, and the
// SDK's Downloader would wait for it forever.
func newInOrder(w io.Writer, limit int64) *inOrder {
	return &inOrder{w: w, limit: limit, pending: map[int64][]byte{}}
}

func (o *inOrder) WriteAt(p []byte, off int64) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return 0, o.err
	}
	switch {
	case off < o.next:
		// A retried part writing again what was passed on: the bytes
		// cannot be compared any more, so the download fails instead
		// of being measured.
		return 0, fmt.Errorf("xfer: a write at %d is before the %d bytes already passed on", off, o.next)
	case off > o.next:
		if old, ok := o.pending[off]; ok {
			o.held -= int64(len(old))
		}
		if o.held+int64(len(p)) > o.limit {
			return 0, fmt.Errorf("xfer: more than %d bytes held ahead of offset %d (a part stalled)", o.limit, o.next)
		}
		o.pending[off] = append([]byte(nil), p...)
		o.held += int64(len(p))
		return len(p), nil
	}
	if err := o.pass(p); err != nil {
		return 0, err
	}
	for {
		q, ok := o.pending[o.next]
		if !ok {
			return len(p), nil
		}
		delete(o.pending, o.next)
		o.held -= int64(len(q))
		if err := o.pass(q); err != nil {
			return 0, err
		}
	}
}

func (o *inOrder) pass(p []byte) error {
	if _, err := o.w.Write(p); err != nil {
		o.err = err
		return err
	}
	o.next += int64(len(p))
	return nil
}

// done returns the bytes passed on, or an error if any piece is still held
// (a gap before it was never written, or pieces overlapped).
func (o *inOrder) done() (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.next, o.err
	}
	if len(o.pending) > 0 {
		return o.next, fmt.Errorf("xfer: %d bytes in %d pieces never followed the first %d bytes", o.held, len(o.pending), o.next)
	}
	return o.next, nil
}
