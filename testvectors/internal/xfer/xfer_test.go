package xfer

import (
	"bytes"
	"errors"
	"io"
	mrand "math/rand/v2"
	"sync"
	"testing"
)

func TestGenSeekMatchesStream(t *testing.T) {
	const size = 3*genBlock + 123
	all, err := io.ReadAll(NewGen(7, size))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != size {
		t.Fatalf("read %d bytes; want %d", len(all), size)
	}
	other, _ := io.ReadAll(NewGen(8, size))
	if bytes.Equal(all, other) {
		t.Fatal("seeds 7 and 8 generate the same bytes")
	}
	g := NewGen(7, size)
	for _, off := range []int64{size - 1, 2*genBlock - 5, 0, genBlock, size} {
		if _, err := g.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.LimitReader(g, 10))
		if err != nil {
			t.Fatal(err)
		}
		if want := all[off:min(off+10, size)]; !bytes.Equal(got, want) {
			t.Errorf("at %d: read %x; want %x", off, got, want)
		}
	}
	if n, err := g.Seek(0, io.SeekEnd); err != nil || n != size {
		t.Errorf("Seek(0, SeekEnd) = %d, %v; want %d", n, err, size)
	}
}

// pieces cuts n bytes into pieces of 1 to 40000 bytes.
func pieces(r *mrand.Rand, n int) (offs []int64) {
	for off := 0; off < n; off += 1 + r.IntN(40000) {
		offs = append(offs, int64(off))
	}
	return offs
}

func TestInOrderReorders(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	const size = 1 << 20
	data, _ := io.ReadAll(NewGen(1, size))
	offs := pieces(r, size)
	order := r.Perm(len(offs))
	var out bytes.Buffer
	o := newInOrder(&out, size)
	for _, i := range order {
		end := int64(size)
		if i+1 < len(offs) {
			end = offs[i+1]
		}
		if n, err := o.WriteAt(data[offs[i]:end], offs[i]); err != nil || n != int(end-offs[i]) {
			t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", end-offs[i], offs[i], n, err)
		}
	}
	n, err := o.done()
	if err != nil || n != size {
		t.Fatalf("done() = %d, %v; want %d", n, err, size)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("the bytes passed on are not the bytes written")
	}
	if o.held != 0 {
		t.Errorf("%d bytes still counted as held", o.held)
	}
}

// TestInOrderConcurrent writes as the SDK's Downloader does: each of
// several goroutines streams its own parts in pieces, at once.
func TestInOrderConcurrent(t *testing.T) {
	const size, part, workers = 1 << 20, 64 << 10, 4
	data, _ := io.ReadAll(NewGen(2, size))
	h := NewCRC()
	o := newInOrder(h, size)
	parts := make(chan int64, size/part)
	for off := int64(0); off < size; off += part {
		parts <- off
	}
	close(parts)
	var wg sync.WaitGroup
	for w := range workers {
		r := mrand.New(mrand.NewPCG(uint64(w), 3))
		wg.Go(func() {
			for start := range parts {
				for off := start; off < start+part; {
					end := min(off+1+r.Int64N(5000), start+part)
					if _, err := o.WriteAt(data[off:end], off); err != nil {
						t.Error(err)
						return
					}
					off = end
				}
			}
		})
	}
	wg.Wait()
	if n, err := o.done(); err != nil || n != size {
		t.Fatalf("done() = %d, %v; want %d", n, err, size)
	}
	want := NewCRC()
	want.Write(data)
	if h.Sum32() != want.Sum32() {
		t.Error("the digest of the bytes passed on is not the digest of the bytes written")
	}
}

func TestInOrderRefuses(t *testing.T) {
	t.Run("rewrite", func(t *testing.T) {
		o := newInOrder(io.Discard, 100)
		o.WriteAt([]byte("abcd"), 0)
		if _, err := o.WriteAt([]byte("cd"), 2); err == nil {
			t.Error("a write over bytes already passed on was taken")
		}
	})
	t.Run("gap", func(t *testing.T) {
		o := newInOrder(io.Discard, 100)
		o.WriteAt([]byte("ab"), 0)
		o.WriteAt([]byte("ef"), 4)
		if n, err := o.done(); err == nil {
			t.Errorf("done() = %d, nil with bytes 2-3 never written", n)
		}
	})
	t.Run("overlap", func(t *testing.T) {
		o := newInOrder(io.Discard, 100)
		o.WriteAt([]byte("cdef"), 2)
		o.WriteAt([]byte("de"), 3)
		o.WriteAt([]byte("ab"), 0)
		if n, err := o.done(); err == nil {
			t.Errorf("done() = %d, nil with overlapping pieces", n)
		}
	})
	t.Run("limit", func(t *testing.T) {
		o := newInOrder(io.Discard, 4)
		if _, err := o.WriteAt([]byte("cdef"), 2); err != nil {
			t.Fatalf("4 bytes held under a limit of 4: %v", err)
		}
		if _, err := o.WriteAt([]byte("g"), 6); err == nil {
			t.Error("5 bytes held under a limit of 4")
		}
	})
	t.Run("writer error", func(t *testing.T) {
		boom := errors.New("boom")
		o := newInOrder(failWriter{boom}, 100)
		if _, err := o.WriteAt([]byte("ab"), 0); !errors.Is(err, boom) {
			t.Errorf("WriteAt = %v; want %v", err, boom)
		}
		if _, err := o.done(); !errors.Is(err, boom) {
			t.Errorf("done() = %v; want %v", err, boom)
		}
	})
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestSizes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"0", 0}, {"17", 17}, {"16MiB", 16 << 20}, {"1GiB", 1 << 30}, {"3KiB", 3 << 10}, {"1 GiB", 1 << 30}} {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
		if back, err := ParseSize(FormatSize(c.want)); err != nil || back != c.want {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", c.want, back, err)
		}
	}
	for _, bad := range []string{"", "-1", "1TiB", "x", "99999999999GiB"} {
		if n, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, nil; want an error", bad, n)
		}
	}
}
