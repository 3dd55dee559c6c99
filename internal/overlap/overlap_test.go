package overlap

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

func data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

var errWrite = errors.New("disk full")

func TestReaderReadsAll(t *testing.T) {
	for _, n := range []int{0, 1, 999, 1000, 1001, 54_321} {
		in := data(n)
		r := NewReader(iotest.OneByteReader(bytes.NewReader(in)), 1000, 3)
		var out []byte
		for {
			b, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
			r.Release(b)
		}
		r.Close()
		r.Close()
		if !bytes.Equal(out, in) {
			t.Fatalf("%d bytes: read back differs", n)
		}
	}
}

func TestReaderError(t *testing.T) {
	boom := errors.New("network down")
	r := NewReader(io.MultiReader(bytes.NewReader(data(2500)), iotest.ErrReader(boom)), 1000, 2)
	defer r.Close()
	var got int
	for {
		b, err := r.Next()
		if err != nil {
			if !errors.Is(err, boom) {
				t.Fatalf("Next: %v, want %v", err, boom)
			}
			break
		}
		got += len(b)
		r.Release(b)
	}
	// The piece read before the error is handed over first.
	if got != 2500 {
		t.Fatalf("%d bytes before the error, want 2500", got)
	}
}

// TestReaderCloseEarly: Close while the goroutine waits for a free buffer
// or to hand over a full one does not hang.
func TestReaderCloseEarly(t *testing.T) {
	r := NewReader(bytes.NewReader(data(100_000)), 100, 2)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// double is the work of the Transform tests: each byte doubled in place, the
// piece's offset kept for emit to check the order.
func double(p *Piece[int64]) error {
	for i := range p.N {
		p.Buf[i] *= 2
	}
	p.Out, p.Val = p.Buf[:p.N], p.Off
	return nil
}

func TestTransformKeepOrder(t *testing.T) {
	for _, size := range []int{1, 1000, 65536, 1_000_003} {
		lengths := []int{0, 1, 3 * size, 3*size + 1, 1_000_003}
		if size == 1 {
			lengths = []int{0, 1, 3, 5000}
		}
		for _, n := range lengths {
			for _, depth := range []int{1, 2, 5} {
				for _, known := range []bool{true, false} {
					for _, writeTo := range []bool{false, true} {
						in := data(n)
						total := int64(n)
						if !known {
							total = -1
						}
						var next int64
						var last bool
						emit := func(p *Piece[int64]) error {
							if p.Val != next || p.Off != next {
								t.Errorf("piece at %d emitted when %d was due", p.Val, next)
							}
							next += int64(p.N)
							last = p.Last
							if p.Last != (next == int64(n)) {
								t.Errorf("piece ending at %d of %d: Last %v", next, n, p.Last)
							}
							return nil
						}
						p := NewTransform(bytes.NewReader(in), total, size, 0, depth, double, emit)
						var out []byte
						var err error
						if writeTo {
							var b bytes.Buffer
							_, err = p.WriteTo(&b)
							out = b.Bytes()
						} else {
							r := io.Reader(p)
							if size > 1 {
								r = iotest.HalfReader(p)
							}
							out, err = io.ReadAll(r)
						}
						p.Close()
						if err != nil {
							t.Fatal(err)
						}
						want := bytes.Clone(in)
						for i := range want {
							want[i] *= 2
						}
						if !bytes.Equal(out, want) || !last {
							t.Fatalf("size %d, %d bytes, depth %d, known %v: output differs or no last piece", size, n, depth, known)
						}
					}
				}
			}
		}
	}
}

func TestTransformErrors(t *testing.T) {
	in := data(100_000)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		src  io.Reader
		n    int64
		work func(*Piece[int64]) error
		emit func(*Piece[int64]) error
		want error
	}{
		{"short source", bytes.NewReader(in[:50_000]), 100_000, double, nil, ErrShortSource},
		{"source error", io.MultiReader(bytes.NewReader(in[:50_000]), iotest.ErrReader(boom)), 100_000, double, nil, boom},
		{"work error", bytes.NewReader(in), 100_000, func(p *Piece[int64]) error {
			if p.Off >= 30_000 {
				return boom
			}
			return double(p)
		}, nil, boom},
		{"emit error", bytes.NewReader(in), 100_000, double, func(p *Piece[int64]) error {
			if p.Off >= 30_000 {
				return boom
			}
			return nil
		}, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewTransform(tc.src, tc.n, 10_000, 0, 3, tc.work, tc.emit)
			got, err := io.ReadAll(p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// Only whole, finished pieces before the failure came out.
			if len(got)%10_000 != 0 || len(got) > 50_000 {
				t.Fatalf("%d bytes out before the error", len(got))
			}
			if _, err := p.Read(make([]byte, 10)); !errors.Is(err, tc.want) {
				t.Fatalf("error not sticky: %v", err)
			}
			p.Close()
		})
	}
}

// TestTransformCloseStops: Close in the middle stops the reading goroutine
// and the work, reads the source no more, and wipes every buffer.
func TestTransformCloseStops(t *testing.T) {
	before := runtime.NumGoroutine()
	src := &countingReader{r: bytes.NewReader(data(10 << 20))}
	var bufs [][]byte
	var mu sync.Mutex
	work := func(p *Piece[int64]) error {
		mu.Lock()
		bufs = append(bufs, p.Buf)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		return double(p)
	}
	p := NewTransform(src, 10<<20, 64<<10, 0, 4, work, nil)
	if _, err := io.ReadFull(p, make([]byte, 100_000)); err != nil {
		t.Fatal(err)
	}
	p.Close()
	read := src.n.Load()
	time.Sleep(20 * time.Millisecond)
	if src.n.Load() != read {
		t.Fatal("source read after Close")
	}
	if _, err := p.Read(make([]byte, 10)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
	mu.Lock()
	for _, b := range bufs {
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Fatal("a buffer was not wiped")
		}
	}
	mu.Unlock()
	noLeaks(t, before)
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
