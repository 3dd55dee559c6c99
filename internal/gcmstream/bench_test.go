package gcmstream

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"io"
	"testing"
)

const benchSize = 64 << 20

// benchFixture is a 64 MiB message under AES-256 with the V3 AAD.
type benchFixture struct {
	key, nonce, aad []byte
	pt, sealed      []byte
	aead            cipher.AEAD
	s               *Stream
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	f := &benchFixture{
		key:   bytes.Repeat([]byte{0x42}, 32),
		nonce: bytes.Repeat([]byte{0x24}, NonceSize),
		aad:   []byte{0x00, 0x73},
		pt:    make([]byte, benchSize),
	}
	for i := range f.pt {
		f.pt[i] = byte(i * 7)
	}
	block, err := aes.NewCipher(f.key)
	if err != nil {
		b.Fatal(err)
	}
	if f.aead, err = cipher.NewGCM(block); err != nil {
		b.Fatal(err)
	}
	f.sealed = f.aead.Seal(nil, f.nonce, f.pt, f.aad)
	if f.s, err = New(f.key, f.nonce, f.aad); err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkStdlibSeal(b *testing.B) {
	f := newBenchFixture(b)
	dst := make([]byte, 0, benchSize+TagSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		f.aead.Seal(dst, f.nonce, f.pt, f.aad)
	}
}

func BenchmarkStdlibOpen(b *testing.B) {
	f := newBenchFixture(b)
	dst := make([]byte, 0, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		if _, err := f.aead.Open(dst, f.nonce, f.sealed, f.aad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealer seals in 64 KiB calls into one output buffer.
func BenchmarkSealer(b *testing.B) {
	f := newBenchFixture(b)
	dst := make([]byte, 0, benchSize+TagSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		w := f.s.NewSealer()
		out := dst
		for off := 0; off < benchSize; off += 64 << 10 {
			var err error
			if out, err = w.Seal(out, f.pt[off:off+64<<10]); err != nil {
				b.Fatal(err)
			}
		}
		out = w.Finish(out)
		if len(out) != benchSize+TagSize {
			b.Fatal("short output")
		}
	}
}

// BenchmarkSealReader copies the SealReader into io.Discard (which reads
// it 8 KiB at a time).
func BenchmarkSealReader(b *testing.B) {
	f := newBenchFixture(b)
	src := bytes.NewReader(f.pt)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		src.Reset(f.pt)
		n, err := io.Copy(io.Discard, NewSealReader(f.s, src))
		if err != nil || n != benchSize+TagSize {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkSealReaderPart8M reads the SealReader into 8 MiB part buffers
// with io.ReadFull, as a multipart upload does (sealed in place, no copy).
func BenchmarkSealReaderPart8M(b *testing.B) {
	f := newBenchFixture(b)
	src := bytes.NewReader(f.pt)
	part := make([]byte, 8<<20)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		src.Reset(f.pt)
		r := NewSealReader(f.s, src)
		total := 0
		for {
			n, err := io.ReadFull(r, part)
			total += n
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if total != benchSize+TagSize {
			b.Fatal(total)
		}
	}
}

// BenchmarkOpenerHash runs the tag check alone (one Hash call).
func BenchmarkOpenerHash(b *testing.B) {
	f := newBenchFixture(b)
	ct, tag := f.sealed[:benchSize], f.sealed[benchSize:]
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		o := f.s.NewOpener()
		if err := o.Hash(ct); err != nil {
			b.Fatal(err)
		}
		if err := o.Verify(tag); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenerHash64K runs the tag check in 64 KiB Hash calls.
func BenchmarkOpenerHash64K(b *testing.B) {
	f := newBenchFixture(b)
	ct, tag := f.sealed[:benchSize], f.sealed[benchSize:]
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		o := f.s.NewOpener()
		for off := 0; off < benchSize; off += 64 << 10 {
			if err := o.Hash(ct[off : off+64<<10]); err != nil {
				b.Fatal(err)
			}
		}
		if err := o.Verify(tag); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkXORKeyStream decrypts the body without authentication.
func BenchmarkXORKeyStream(b *testing.B) {
	f := newBenchFixture(b)
	dst := make([]byte, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		f.s.XORKeyStreamAt(dst, f.sealed[:benchSize], 0)
	}
}

// BenchmarkVerifiedOpen is the verify-then-release decryption: Hash the
// whole body, Verify, then XORKeyStreamAt.
func BenchmarkVerifiedOpen(b *testing.B) {
	f := newBenchFixture(b)
	ct, tag := f.sealed[:benchSize], f.sealed[benchSize:]
	dst := make([]byte, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		o := f.s.NewOpener()
		if err := o.Hash(ct); err != nil {
			b.Fatal(err)
		}
		if err := o.Verify(tag); err != nil {
			b.Fatal(err)
		}
		f.s.XORKeyStreamAt(dst, ct, 0)
	}
}

// BenchmarkParallelSealChunk seals 8 MiB parts with SealChunk on every core
// (multipart upload) and combines them with Tag.
func BenchmarkParallelSealChunk(b *testing.B) {
	f := newBenchFixture(b)
	const part = 8 << 20
	out := make([]byte, benchSize)
	parts := make([]Partial, benchSize/part)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		done := make(chan struct{})
		for i := range parts {
			go func() {
				_, parts[i] = f.s.SealChunk(out[i*part:i*part], f.pt[i*part:(i+1)*part], uint64(i*part))
				done <- struct{}{}
			}()
		}
		for range parts {
			<-done
		}
		if _, err := f.s.Tag(parts...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNew measures the per-message setup (key schedule, H^-2, tables).
func BenchmarkNew(b *testing.B) {
	key, nonce, aad := make([]byte, 32), make([]byte, NonceSize), []byte{0x00, 0x73}
	for range b.N {
		if _, err := New(key, nonce, aad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGFMul measures the pure-Go constant-time field multiply.
func BenchmarkGFMul(b *testing.B) {
	x, y := elem{0x0123456789abcdef, 0xfedcba9876543210}, elem{0x1111, 0x2222}
	for range b.N {
		x = gfMul(x, y)
	}
	sinkElem = x
}

// BenchmarkGFMulTable measures the constant-time product by a fixed factor
// through its table (the per-chunk Horner step).
func BenchmarkGFMulTable(b *testing.B) {
	x, tab := elem{0x0123456789abcdef, 0xfedcba9876543210}, newMulTable(elem{0x1111, 0x2222})
	for range b.N {
		x = tab.mulCT(x)
	}
	sinkElem = x
}

var sinkElem elem

// The 64 KiB benchmarks work in cache, isolating the per-call overhead of
// the streaming path from memory bandwidth.

func BenchmarkStdlibSeal64K(b *testing.B) {
	f := newBenchFixture(b)
	pt := f.pt[:64<<10]
	dst := make([]byte, 0, len(pt)+TagSize)
	b.SetBytes(int64(len(pt)))
	b.ResetTimer()
	for range b.N {
		f.aead.Seal(dst, f.nonce, pt, f.aad)
	}
}

func BenchmarkSealer64K(b *testing.B) {
	f := newBenchFixture(b)
	pt := f.pt[:64<<10]
	dst := make([]byte, 0, len(pt)+TagSize)
	w := f.s.NewSealer()
	b.SetBytes(int64(len(pt)))
	b.ResetTimer()
	for i := range b.N {
		if i%1000000 == 0 {
			w = f.s.NewSealer()
		}
		if _, err := w.Seal(dst, pt); err != nil {
			b.Fatal(err)
		}
	}
}
