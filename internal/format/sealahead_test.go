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
					r := s.SealAhead(bytes.NewReader(plain), length)
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
			r := s.SealAhead(bytes.NewReader(benchPlain[:n-1]), int64(n))
			got, err := io.ReadAll(r)
			r.Close()
			if !errors.Is(err, overlap.ErrShortSource) {
				t.Fatalf("%v, %d bytes: got %v", cfg.Format, n, err)
			}
			if whole, _ := s.CiphertextSize(int64(n - 1)); int64(len(got)) >= whole {
				t.Fatalf("%d bytes out of a short %d-byte plaintext: a whole body", len(got), n-1)
			}
		}
	}
}
