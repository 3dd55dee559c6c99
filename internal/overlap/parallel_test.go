package overlap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// noLeaks fails t if goroutines started since before are still running a
// moment later.
func noLeaks(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// jitter sleeps a random few microseconds, so that workers finish out of
// order.
func jitter(seq int64) {
	if seq%3 != 0 {
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
	}
}

// TestPipelineOrder: whatever order the workers finish in, the sink sees
// every buffer in the order sent, after its work, with work's result.
func TestPipelineOrder(t *testing.T) {
	for _, workers := range []int{0, 1, 2, 4} {
		for _, n := range []int{0, 1, 99, 100, 101, 5_432} {
			t.Run(fmt.Sprintf("workers%d/%d", workers, n), func(t *testing.T) {
				before := runtime.NumGoroutine()
				in := data(n)
				const depth = 5
				var sums [depth]int
				var out bytes.Buffer
				var next int64
				p := NewPipeline(100, depth, workers, func(b []byte, seq int64) {
					jitter(seq)
					s := 0
					for _, c := range b {
						s += int(c)
					}
					sums[seq%depth] = s
				}, func(b []byte, seq int64) error {
					if seq != next {
						return fmt.Errorf("sink got %d, want %d", seq, next)
					}
					next++
					s := 0
					for _, c := range b {
						s += int(c)
					}
					if s != sums[seq%depth] {
						return fmt.Errorf("buffer %d: work's result is another buffer's", seq)
					}
					out.Write(b)
					return nil
				})
				for rest := in; len(rest) > 0; {
					b := p.Buffer()
					k := copy(b, rest)
					rest = rest[k:]
					if err := p.Send(b[:k]); err != nil {
						t.Fatal(err)
					}
				}
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				if err := p.Close(); err != nil {
					t.Fatal("second Close:", err)
				}
				if !bytes.Equal(out.Bytes(), in) {
					t.Fatal("sunk bytes differ")
				}
				noLeaks(t, before)
			})
		}
	}
}

// TestPipelineSinkError: after the sink fails, Send reports it (so the
// caller stops), nothing more is sunk, and Close returns it.
func TestPipelineSinkError(t *testing.T) {
	before := runtime.NumGoroutine()
	var sunk atomic.Int64
	p := NewPipeline(10, 3, 2, func([]byte, int64) {}, func(_ []byte, seq int64) error {
		if seq == 4 {
			return errWrite
		}
		sunk.Add(1)
		return nil
	})
	var err error
	for range 1000 {
		if err = p.Send(p.Buffer()); err != nil {
			break
		}
	}
	if !errors.Is(err, errWrite) {
		t.Fatalf("Send after the sink failed: %v", err)
	}
	if err := p.Close(); !errors.Is(err, errWrite) {
		t.Fatalf("Close: %v", err)
	}
	if sunk.Load() != 4 {
		t.Fatalf("%d buffers sunk, want the 4 before the failure", sunk.Load())
	}
	noLeaks(t, before)
}

// TestPipelineUnused: a Pipeline never sent to starts no goroutine and
// allocates only the buffers handed out.
func TestPipelineUnused(t *testing.T) {
	before := runtime.NumGoroutine()
	p := NewPipeline(1<<20, 4, 4, func([]byte, int64) {}, func([]byte, int64) error { return nil })
	_ = p.Buffer()
	if n := runtime.NumGoroutine(); n != before {
		t.Fatalf("%d goroutines before any Send, want %d", n, before)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// fillFrom returns a fill function for Pieces that copies in, piece by
// piece, at random speeds.
func fillFrom(in []byte, size int) func([]byte, int64) (int, error) {
	return func(b []byte, seq int64) (int, error) {
		jitter(seq)
		off := int(seq) * size
		if off >= len(in) {
			return 0, io.EOF
		}
		n := copy(b, in[off:])
		if off+n == len(in) {
			return n, io.EOF
		}
		return n, nil
	}
}

// TestPiecesOrder: pieces filled out of order come out in order, for
// every worker count and lengths around the piece size.
func TestPiecesOrder(t *testing.T) {
	for _, workers := range []int{1, 2, 3, 8} {
		for _, n := range []int{0, 1, 99, 100, 101, 1000, 5_432} {
			t.Run(fmt.Sprintf("workers%d/%d", workers, n), func(t *testing.T) {
				before := runtime.NumGoroutine()
				in := data(n)
				p := NewPieces(100, workers+2, workers, fillFrom(in, 100))
				var out []byte
				for {
					b, err := p.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, b...)
					p.Release(b)
				}
				if _, err := p.Next(); err != io.EOF {
					t.Fatalf("Next after the end: %v", err)
				}
				p.Close()
				p.Close()
				if !bytes.Equal(out, in) {
					t.Fatal("pieces differ")
				}
				noLeaks(t, before)
			})
		}
	}
}

// TestPiecesError: an error from fill comes after every piece before it,
// and ends the stream.
func TestPiecesError(t *testing.T) {
	before := runtime.NumGoroutine()
	boom := errors.New("disk gone")
	in := data(10_000)
	ok := fillFrom(in, 100)
	p := NewPieces(100, 5, 3, func(b []byte, seq int64) (int, error) {
		if seq == 37 {
			return 0, boom
		}
		return ok(b, seq)
	})
	var got int
	for {
		b, err := p.Next()
		if err != nil {
			if !errors.Is(err, boom) {
				t.Fatalf("Next: %v, want %v", err, boom)
			}
			break
		}
		if !bytes.Equal(b, in[got:got+len(b)]) {
			t.Fatalf("piece at %d differs", got)
		}
		got += len(b)
		p.Release(b)
	}
	if got != 3700 {
		t.Fatalf("%d bytes before the error, want 3700", got)
	}
	if _, err := p.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next after the error: %v", err)
	}
	p.Close()
	noLeaks(t, before)
}

// TestPiecesCloseMidway: Close while workers are filling or waiting for a
// buffer stops them all and wipes every buffer, the one the consumer holds
// included.
func TestPiecesCloseMidway(t *testing.T) {
	for _, workers := range []int{1, 2, 4} {
		before := runtime.NumGoroutine()
		in := bytes.Repeat([]byte{0xa5}, 1<<20)
		var mu sync.Mutex
		var filled [][]byte
		fill := fillFrom(in, 1000)
		p := NewPieces(1000, workers+2, workers, func(b []byte, seq int64) (int, error) {
			mu.Lock()
			filled = append(filled, b[:cap(b)])
			mu.Unlock()
			return fill(b, seq)
		})
		if _, err := p.Next(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // let the workers fill every other buffer
		p.Close()
		noLeaks(t, before)
		// Every buffer a piece was filled in, the one the consumer holds
		// included.
		for i, buf := range filled {
			if !bytes.Equal(buf, make([]byte, len(buf))) {
				t.Fatalf("workers %d: buffer %d not wiped", workers, i)
			}
		}
	}
}

// TestPiecesUnused: Pieces never read start nothing.
func TestPiecesUnused(t *testing.T) {
	before := runtime.NumGoroutine()
	p := NewPieces(1<<20, 4, 4, func([]byte, int64) (int, error) { return 0, io.EOF })
	if n := runtime.NumGoroutine(); n != before {
		t.Fatalf("%d goroutines before Next, want %d", n, before)
	}
	p.Close()
}
