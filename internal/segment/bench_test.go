package segment

import (
	"bytes"
	"crypto/cipher"
	"io"
	"sync"
	"testing"
)

// Every benchmark processes the same 64 MiB of plaintext in segments of
// 64 KiB, so their MB/s compare directly.
const (
	benchSize    = 64 << 20
	benchSegment = DefaultSize
)

type benchFixture struct {
	key, pt, body []byte
	c             *Cipher
	aead          cipher.AEAD
	nonce         []byte
}

var (
	benchOnce sync.Once
	benchFix  *benchFixture
)

func fixture(b *testing.B) *benchFixture {
	b.Helper()
	benchOnce.Do(func() {
		f := &benchFixture{key: testKey(40), pt: pattern(benchSize, 40), nonce: make([]byte, 12)}
		f.c = newTestCipher(b, f.key, benchSegment)
		f.aead = refAEAD(b, f.key)
		f.body = refSeal(b, f.key, benchSegment, f.pt)
		benchFix = f
	})
	return benchFix
}

func BenchmarkStdlibSeal(b *testing.B) {
	f := fixture(b)
	dst := make([]byte, 0, benchSize+Overhead)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		f.aead.Seal(dst, f.nonce, f.pt, nil)
	}
}

// BenchmarkStdlibOpen is one AES-256-GCM Open over the whole 64 MiB.
func BenchmarkStdlibOpen(b *testing.B) {
	f := fixture(b)
	sealed := f.aead.Seal(nil, f.nonce, f.pt, nil)
	dst := make([]byte, 0, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		if _, err := f.aead.Open(dst, f.nonce, sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// openSegments opens segments [from, to) of body in place.
func openSegments(b *testing.B, c *Cipher, body []byte, from, to int64) {
	n := Count(benchSize, benchSegment)
	stride := int64(benchSegment + Overhead)
	for i := from; i < to; i++ {
		seg := body[i*stride : min((i+1)*stride, int64(len(body)))]
		if _, err := c.Open(seg[:0], seg, i, i == n-1); err != nil {
			b.Error(err)
			return
		}
	}
}

// BenchmarkOpenSegmentsPerCore opens every segment in place on one
// goroutine: the per-core cost of the format. The body is restored outside
// the timer.
func BenchmarkOpenSegmentsPerCore(b *testing.B) {
	f := fixture(b)
	work := make([]byte, len(f.body))
	n := Count(benchSize, benchSegment)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		copy(work, f.body)
		b.StartTimer()
		openSegments(b, f.c, work, 0, n)
	}
}

// BenchmarkOpenSegments2Cores is the same work split across two
// goroutines, half the segments each.
func BenchmarkOpenSegments2Cores(b *testing.B) {
	f := fixture(b)
	work := make([]byte, len(f.body))
	n := Count(benchSize, benchSegment)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		copy(work, f.body)
		b.StartTimer()
		var wg sync.WaitGroup
		wg.Go(func() { openSegments(b, f.c, work, 0, n/2) })
		wg.Go(func() { openSegments(b, f.c, work, n/2, n) })
		wg.Wait()
	}
}

func BenchmarkOpenReader(b *testing.B) {
	f := fixture(b)
	for _, workers := range []int{1, 2} {
		b.Run("workers="+string(rune('0'+workers)), func(b *testing.B) {
			b.SetBytes(benchSize)
			for range b.N {
				n, err := io.Copy(io.Discard, f.c.OpenReader(bytes.NewReader(f.body), workers))
				if err != nil || n != benchSize {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func BenchmarkSealReader(b *testing.B) {
	f := fixture(b)
	for _, workers := range []int{1, 2} {
		b.Run("workers="+string(rune('0'+workers)), func(b *testing.B) {
			b.SetBytes(benchSize)
			for range b.N {
				n, err := io.Copy(io.Discard, f.c.SealReader(bytes.NewReader(f.pt), workers))
				if err != nil || n != int64(len(f.body)) {
					b.Fatal(n, err)
				}
			}
		})
	}
}
