package format_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"testing"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// The benchmarks compare this library's streaming seal and verified open with
// ONE crypto/cipher AES-256-GCM Seal or Open over the same 64 MiB, in the
// same run. They measure; they assert nothing about speed. See BENCHMARKS.md.

const benchSize = 64 << 20

var benchPlain = func() []byte {
	b := make([]byte, benchSize)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

func benchAEAD(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

func BenchmarkStdlibSeal(b *testing.B) {
	g := benchAEAD(b)
	dst := make([]byte, 0, benchSize+16)
	nonce := make([]byte, 12)
	b.SetBytes(benchSize)
	for b.Loop() {
		dst = g.Seal(dst[:0], nonce, benchPlain, nil)
	}
}

func BenchmarkStdlibOpen(b *testing.B) {
	g := benchAEAD(b)
	nonce := make([]byte, 12)
	ct := g.Seal(nil, nonce, benchPlain, nil)
	dst := make([]byte, 0, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		var err error
		if dst, err = g.Open(dst[:0], nonce, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func benchKeyring(b testing.TB) keyring.Keyring {
	kr, err := keyring.NewAES(make([]byte, 32), map[string]string{"kid": "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return kr
}

// BenchmarkSeal: a new object's envelope, then its body streamed through
// Sealer.Seal into io.Discard.
func BenchmarkSeal(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  envelope.Config
	}{{"V3", envelope.Config{}}, {"V2", envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}}} {
		b.Run(tc.name, func(b *testing.B) {
			kr := benchKeyring(b)
			b.SetBytes(benchSize)
			for b.Loop() {
				s, err := envelope.NewSealer(context.Background(), kr, tc.cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, s.Seal(bytes.NewReader(benchPlain))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen: verified decryption, the ciphertext spooled in memory
// ("memory") or, beyond the default 8 MiB bound, in a temporary file
// ("file"), then read out.
func BenchmarkOpen(b *testing.B) {
	kr := benchKeyring(b)
	s, err := envelope.NewSealer(context.Background(), kr, envelope.Config{})
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(s.Seal(bytes.NewReader(benchPlain)))
	if err != nil {
		b.Fatal(err)
	}
	env := s.Envelope()
	for _, tc := range []struct {
		name   string
		memory int64
	}{{"memory", benchSize + 1<<20}, {"file", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := envelope.Config{SpoolMemory: tc.memory, SpoolDir: b.TempDir()}
			b.SetBytes(benchSize)
			for b.Loop() {
				pt, err := envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, pt); err != nil {
					b.Fatal(err)
				}
				pt.Close()
			}
		})
	}
}

// BenchmarkSegmentedSeal and BenchmarkSegmentedOpen: the segmented format
// (64 KiB segments) streamed with one and two workers, over the same 64 MiB
// as the stdlib benchmarks above.
func BenchmarkSegmentedSeal(b *testing.B) {
	kr := benchKeyring(b)
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			cfg := envelope.Config{Format: envelope.FormatSegmented, SegmentWorkers: w}
			b.SetBytes(benchSize)
			for b.Loop() {
				s, err := envelope.NewSealer(context.Background(), kr, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, s.Seal(bytes.NewReader(benchPlain))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSegmentedOpen(b *testing.B) {
	kr := benchKeyring(b)
	env, body := sealSegmented(b, kr, benchPlain)
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			cfg := envelope.Config{SegmentWorkers: w}
			b.SetBytes(benchSize)
			for b.Loop() {
				pt, err := envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSegmentedRange: a 1 GiB segmented object read whole, and a
// 1 MiB range from its middle, from memory.
func BenchmarkSegmentedRange(b *testing.B) {
	kr := benchKeyring(b)
	plain := bytes.Repeat(benchPlain, (1<<30)/benchSize)
	env, body := sealSegmented(b, kr, plain)
	plain = nil
	size := int64(len(body))
	b.Run("whole-1GiB", func(b *testing.B) {
		b.SetBytes(1 << 30)
		for b.Loop() {
			pt, err := envelope.Open(context.Background(), env, kr, envelope.Config{}, bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, pt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("range-1MiB", func(b *testing.B) {
		off, n := int64(512<<20)+12345, int64(1<<20)
		start, end, err := env.CiphertextRange(size, off, n)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(n)
		for b.Loop() {
			pt, err := envelope.OpenRange(context.Background(), env, kr, envelope.Config{}, bytes.NewReader(body[start:end]), size, off, n)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, pt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func sealSegmented(b *testing.B, kr keyring.Keyring, plain []byte) (*envelope.Envelope, []byte) {
	s, err := envelope.NewSealer(context.Background(), kr, envelope.Config{Format: envelope.FormatSegmented})
	if err != nil {
		b.Fatal(err)
	}
	var body bytes.Buffer
	if _, err := io.Copy(&body, s.Seal(bytes.NewReader(plain))); err != nil {
		b.Fatal(err)
	}
	return s.Envelope(), body.Bytes()
}
