package format_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/overlap"
)

// TestSealAheadIsSeal: the body SealAhead makes, read in small pieces or
// through WriteTo, is byte for byte the body Seal makes, and opens to the
// plaintext — for every format, at lengths around its pieces.
func TestSealAheadIsSeal(t *testing.T) {
	ctx := context.Background()
	kr := benchKeyring(t)
	for _, tc := range []struct {
		name string
		cfg  envelope.Config
	}{
		{"V3", envelope.Config{}},
		{"V2", envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}},
		{"segmented", envelope.Config{Format: envelope.FormatSegmented}},
		{"segmented-4KiB-1worker", envelope.Config{Format: envelope.FormatSegmented, SegmentSize: 4096, SegmentWorkers: 1}},
		{"segmented-1MiB", envelope.Config{Format: envelope.FormatSegmented, SegmentSize: 1 << 20}},
	} {
		for _, n := range []int{0, 1, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 17, 4 << 20} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, n), func(t *testing.T) {
				plain := benchPlain[:n]
				s, err := envelope.NewSealer(ctx, kr, tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				want, err := io.ReadAll(s.Seal(bytes.NewReader(plain)))
				if err != nil {
					t.Fatal(err)
				}
				for _, mode := range []struct{ writeTo, unknown bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
					writeTo, length := mode.writeTo, int64(n)
					if mode.unknown {
						length = -1
					}
					r := s.SealAhead(bytes.NewReader(plain), length, nil)
					var got []byte
					if writeTo {
						var b bytes.Buffer
						_, err = io.Copy(&b, r)
						got = b.Bytes()
					} else {
						got, err = io.ReadAll(iotest.HalfReader(r))
					}
					r.Close()
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("SealAhead(%d) (WriteTo %v) differs from Seal: %d bytes, want %d", length, writeTo, len(got), len(want))
					}
				}
				e := s.Envelope()
				pt, err := envelope.Open(ctx, e, kr, tc.cfg, bytes.NewReader(want))
				if err != nil {
					t.Fatal(err)
				}
				out, err := io.ReadAll(pt)
				pt.Close()
				if err != nil || !bytes.Equal(out, plain) {
					t.Fatalf("opened %d bytes, %v", len(out), err)
				}
			})
		}
	}
}

// TestSealAheadShortPlaintext: a plaintext that ends before the length
// SealAhead was given fails; no tag or final segment comes out.
func TestSealAheadShortPlaintext(t *testing.T) {
	ctx := context.Background()
	kr := benchKeyring(t)
	for _, cfg := range []envelope.Config{{}, {Format: envelope.FormatSegmented}} {
		for _, n := range []int{100, 5<<20 + 3} {
			s, err := envelope.NewSealer(ctx, kr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := s.SealAhead(bytes.NewReader(benchPlain[:n-1]), int64(n), nil)
			got, err := io.ReadAll(r)
			r.Close()
			if !errors.Is(err, overlap.ErrShortSource) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%v, %d bytes: got %v", cfg.Format, n, err)
			}
			if whole, _ := s.CiphertextSize(int64(n - 1)); int64(len(got)) >= whole {
				t.Fatalf("%d bytes out of a short %d-byte plaintext: a whole body", len(got), n-1)
			}
		}
	}
}

// TestSealAheadFingerprints: a piece sealed again from the same plaintext
// has the same fingerprint, from other plaintext another one — for a
// change of one bit anywhere in the piece — and check sees them before the
// piece is released.
func TestSealAheadFingerprints(t *testing.T) {
	ctx := context.Background()
	kr := benchKeyring(t)
	for _, cfg := range []envelope.Config{{}, {CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, {Format: envelope.FormatSegmented}} {
		s, err := envelope.NewSealer(ctx, kr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		const n = 3<<20 + 100
		plain := bytes.Clone(benchPlain[:n])
		pass := func(check func(int64, [16]byte) error) ([]byte, error) {
			r := s.SealAhead(bytes.NewReader(plain), n, check)
			defer r.Close()
			return io.ReadAll(iotest.HalfReader(r))
		}
		var first [][16]byte
		want, err := pass(func(i int64, fp [16]byte) error {
			if i != int64(len(first)) {
				t.Fatalf("piece %d checked after %d pieces", i, len(first))
			}
			first = append(first, fp)
			return nil
		})
		if err != nil || len(first) != 4 {
			t.Fatalf("%v: %d pieces, %v", cfg.Format, len(first), err)
		}
		again, err := pass(func(i int64, fp [16]byte) error {
			if fp != first[i] {
				t.Fatalf("%v: piece %d sealed again from the same plaintext has another fingerprint", cfg.Format, i)
			}
			return nil
		})
		if err != nil || !bytes.Equal(again, want) {
			t.Fatalf("second pass: %v", err)
		}
		changed := errors.New("changed")
		for _, at := range []int{0, 1<<20 - 1, 1 << 20, 2<<20 + 12345, n - 1} {
			plain[at] ^= 0x80
			var released int64
			got, err := pass(func(i int64, fp [16]byte) error {
				if fp != first[i] {
					return changed
				}
				released = (i + 1) << 20
				return nil
			})
			plain[at] ^= 0x80
			if !errors.Is(err, changed) {
				t.Fatalf("%v: a bit flipped at %d went unnoticed: %v", cfg.Format, at, err)
			}
			if piece := int64(at) >> 20; released != piece<<20 {
				t.Fatalf("%v: flip at %d: pieces up to %d passed the check", cfg.Format, at, released)
			}
			// Only the pieces before the changed one came out.
			if !bytes.Equal(got, want[:len(got)]) {
				t.Fatalf("%v: released bytes differ from the first pass", cfg.Format)
			}
			if whole, _ := s.CiphertextSize(int64(at) &^ (1<<20 - 1)); int64(len(got)) > whole {
				t.Fatalf("%v: %d bytes released past the unchanged pieces (%d)", cfg.Format, len(got), whole)
			}
		}
	}
}
