package format_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
)

// TestSealParts: parts sealed in place, in any order and concurrently, then
// joined (with the tag for V2/V3), are byte for byte the body Seal streams,
// and open to the plaintext.
func TestSealParts(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	for _, f := range allFormats {
		for _, size := range []int{0, 1, testSegment, 3*testSegment + 7, 10 * testSegment} {
			for _, partSegs := range []int{1, 3} {
				t.Run(fmt.Sprintf("%v/%d/%d", f, size, partSegs), func(t *testing.T) {
					cfg := configFor(f)
					cfg.SegmentSize = testSegment
					s, err := envelope.NewSealer(context.Background(), kr, cfg)
					require.NoError(t, err)
					pt := random(size)
					want, err := io.ReadAll(s.Seal(bytes.NewReader(pt)))
					require.NoError(t, err)

					partLen := partSegs * testSegment
					require.Zero(t, partLen%s.PartAlign())
					var offs []int
					for off := 0; off < size || (off == 0 && size == 0); off += partLen {
						offs = append(offs, off)
					}
					sealed := make([][]byte, len(offs))
					var wg sync.WaitGroup
					for _, i := range rand.Perm(len(offs)) {
						wg.Go(func() {
							off := offs[i]
							n := min(partLen, size-off)
							buf := make([]byte, s.PartSize(n))
							copy(buf, pt[off:off+n])
							ct, err := s.SealPart(buf, n, int64(off), i == len(offs)-1)
							require.NoError(t, err)
							sealed[i] = ct
						})
					}
					wg.Wait()
					tag, err := s.Tag()
					require.NoError(t, err)
					got := append(bytes.Join(sealed, nil), tag...)
					require.Equal(t, want, got)
				})
			}
		}
	}
}

func TestSealPartMisuse(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	for _, f := range allFormats {
		cfg := configFor(f)
		cfg.SegmentSize = testSegment
		s, err := envelope.NewSealer(context.Background(), kr, cfg)
		require.NoError(t, err)
		buf := make([]byte, 3*testSegment)
		_, err = s.SealPart(buf, testSegment, 8, false)
		require.ErrorIs(t, err, envelope.ErrMalformed, "%v misaligned offset", f)
		_, err = s.SealPart(buf, 100, 0, false)
		require.ErrorIs(t, err, envelope.ErrMalformed, "%v short middle part", f)
		_, err = s.SealPart(buf, 0, int64(testSegment), true)
		require.ErrorIs(t, err, envelope.ErrMalformed, "%v empty last part after data", f)
		_, err = s.SealPart(buf[:testSegment], testSegment, 0, true)
		if f == envelope.FormatSegmented {
			require.ErrorIs(t, err, envelope.ErrMalformed, "no room for the tag")
		}
		if f != envelope.FormatSegmented {
			// A missing part: the tag is refused.
			_, err = s.SealPart(make([]byte, 32), 32, 64, true)
			require.NoError(t, err)
			_, err = s.Tag()
			require.ErrorIs(t, err, envelope.ErrMalformed)
		}
	}
}
