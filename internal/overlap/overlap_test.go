package overlap

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestWriterKeepsOrder(t *testing.T) {
	in := data(100_003)
	var out bytes.Buffer
	w := NewWriter(&out, 1000, 3)
	for rest := in; len(rest) > 0; {
		b := w.Buffer()
		n := copy(b, rest)
		rest = rest[n:]
		w.Send(b[:n])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatal("written bytes differ")
	}
}

type failAfter struct{ n int }

var errWrite = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errWrite
	}
	f.n--
	return len(p), nil
}

func TestWriterFirstError(t *testing.T) {
	w := NewWriter(&failAfter{n: 2}, 10, 2)
	for range 10 {
		w.Send(w.Buffer())
	}
	if err := w.Close(); !errors.Is(err, errWrite) {
		t.Fatalf("Close: %v, want %v", err, errWrite)
	}
}

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
