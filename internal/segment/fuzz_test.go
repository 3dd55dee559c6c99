package segment

import (
	"bytes"
	"io"
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzSeeds are bodies under testKey(30): valid encodings and a few
// malformed ones.
func fuzzSeeds(tb testing.TB) [][]byte {
	key := testKey(30)
	aead := refAEAD(tb, key)
	var out [][]byte
	for _, p := range []int{0, 1, 100, testS - 1, testS, testS + 1, 2*testS + 5, 3*testS + 7} {
		out = append(out, refSeal(tb, key, testS, pattern(p, uint64(p))))
	}
	body := refSeal(tb, key, testS, pattern(2*testS+5, 1))
	out = append(out,
		nil,
		body[:testStride],
		body[:2*testStride],
		body[:len(body)-1],
		append(bytes.Clone(body), 0),
		join(body[:2*testStride], refSealSeg(aead, nil, 2, true, nil)),
		join(body[testStride:2*testStride], body[:testStride], body[2*testStride:]),
		refSeal(tb, testKey(31), testS, pattern(testS+3, 2)),
	)
	return out
}

// FuzzOpenReader: an arbitrary body either opens to exactly what the
// reference reader gives, or fails with ErrAuthentication after releasing
// exactly the plaintext of the segments before the first that fails.
func FuzzOpenReader(f *testing.F) {
	for i, b := range fuzzSeeds(f) {
		f.Add(b, uint8(i), i%2 == 0)
	}
	key := testKey(30)
	c := newTestCipher(f, key, testS)
	aead := refAEAD(f, key)
	f.Fuzz(func(t *testing.T, body []byte, workers uint8, small bool) {
		w := 1 + int(workers%2) // each worker costs a ~1 MiB batch buffer per Reader
		want, ok := refOpen(aead, testS, body)
		r := c.OpenReader(bytes.NewReader(body), w)
		var got []byte
		var err error
		if small {
			got, err = readAll(r, 1+int(workers))
		} else {
			var buf bytes.Buffer
			var n int64
			n, err = r.WriteTo(&buf)
			require.Equal(t, int64(buf.Len()), n)
			got = buf.Bytes()
		}
		if ok {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, ErrAuthentication)
		}
		require.True(t, bytes.Equal(want, got), "released %d bytes, the reference %d (ok=%v)", len(got), len(want), ok)
	})
}

// FuzzReaderAt: reads of a valid object, possibly corrupted at one byte,
// follow the io.ReaderAt contract, return only true plaintext, and fail
// exactly when a segment they need (or the final one) is corrupt.
func FuzzReaderAt(f *testing.F) {
	f.Add(uint32(0), int64(0), uint32(0), uint32(0), byte(0), uint8(0))
	f.Add(uint32(1), int64(0), uint32(1), uint32(0), byte(0), uint8(1))
	f.Add(uint32(3*testS+7), int64(testS-1), uint32(testS+2), uint32(0), byte(0), uint8(2))
	f.Add(uint32(3*testS+7), int64(testS-1), uint32(testS+2), uint32(testStride+5), byte(1), uint8(2))
	f.Add(uint32(3*testS+7), int64(3*testS), uint32(100), uint32(3*testStride+5), byte(0x80), uint8(0))
	f.Add(uint32(5*testS), int64(-1), uint32(10), uint32(0), byte(0), uint8(0))
	f.Add(uint32(5*testS), int64(5*testS), uint32(0), uint32(0), byte(0), uint8(0))
	f.Add(uint32(5*testS), int64(math.MaxInt64), uint32(10), uint32(0), byte(0), uint8(0))
	key := testKey(32)
	c := newTestCipher(f, key, testS)
	full := pattern(12*testS+100, 32)
	f.Fuzz(func(t *testing.T, size uint32, off int64, n uint32, mutPos uint32, mutXor byte, workers uint8) {
		p := int64(size % uint32(len(full)+1))
		pt := full[:p]
		body := refSeal(t, key, testS, pt)
		segsN := Count(p, testS)
		lastStartC := (segsN - 1) * testStride
		lastStartP := (segsN - 1) * testS
		mut := int64(-1)
		if mutXor != 0 {
			mut = int64(mutPos) % int64(len(body))
			body[mut] ^= mutXor
		}
		ra, err := c.NewReaderAt(bytes.NewReader(body), int64(len(body)), 1+int(workers%3))
		if mut >= lastStartC {
			require.ErrorIs(t, err, ErrAuthentication)
			require.Nil(t, ra)
			return
		}
		require.NoError(t, err)
		require.Equal(t, p, ra.Size())

		ln := int64(n % (5 * testS))
		buf := make([]byte, ln)
		k, err := ra.ReadAt(buf, off)
		require.GreaterOrEqual(t, k, 0)
		require.LessOrEqual(t, int64(k), ln)
		switch {
		case off < 0:
			require.Error(t, err)
			require.Zero(t, k)
			return
		case off >= p:
			require.Zero(t, k)
			if ln == 0 && off == p {
				require.NoError(t, err)
			} else {
				require.Equal(t, io.EOF, err)
			}
			return
		}
		end := off + min(ln, p-off)
		// Which source segments this read opens: those of [off, end)
		// before the final one.
		bad := false
		if stop := min(end, lastStartP); mut >= 0 && off < stop {
			first, last := off/testS, (stop-1)/testS
			j := mut / testStride
			bad = j >= first && j <= last
			if bad {
				require.ErrorIs(t, err, ErrAuthentication)
				require.Equal(t, max(0, j*testS-off), int64(k))
			}
		}
		if !bad {
			require.Equal(t, end-off, int64(k))
			if end-off < ln {
				require.Equal(t, io.EOF, err)
			} else {
				require.NoError(t, err)
			}
		}
		require.True(t, bytes.Equal(pt[off:off+int64(k)], buf[:k]))
	})
}

// FuzzLayout: the size arithmetic is exact, inverse, never overflows or
// panics, and Span covers [off, end) with exactly the right segments.
func FuzzLayout(f *testing.F) {
	for _, v := range []int64{0, 1, 15, 16, 17, testS, testStride, testStride + 16, testStride + 17, 1 << 40, math.MaxInt64, math.MaxInt64 - 1, math.MinInt64, -1} {
		f.Add(v, v, v/3, v/2, uint8(0))
		f.Add(v, v, int64(0), int64(-1), uint8(12))
	}
	maxInt := big.NewInt(math.MaxInt64)
	f.Fuzz(func(t *testing.T, p, c, off, end int64, shift uint8) {
		size := MinSize << (shift % 13)
		s, stride := int64(size), int64(size)+Overhead
		require.True(t, ValidSize(size))

		// Count and CiphertextSize, checked in big integers.
		n := Count(p, size)
		if p <= 0 {
			require.Equal(t, int64(1), n)
		} else {
			want := p / s // ceil(p/s) without overflow
			if p%s != 0 {
				want++
			}
			require.Equal(t, want, n)
		}
		cs, ok := CiphertextSize(p, size)
		if p < 0 {
			require.False(t, ok)
		} else {
			exact := new(big.Int).Add(big.NewInt(p), new(big.Int).Mul(big.NewInt(Overhead), big.NewInt(Count(p, size))))
			require.Equal(t, exact.Cmp(maxInt) <= 0, ok, "CiphertextSize(%d, %d)", p, size)
			if ok {
				require.Equal(t, exact.Int64(), cs)
				pp, nn, ok2 := PlaintextSize(cs, size)
				require.True(t, ok2)
				require.Equal(t, p, pp)
				require.Equal(t, Count(p, size), nn)
			}
		}

		// PlaintextSize: ok exactly when some p seals to c.
		pp, nn, ok := PlaintextSize(c, size)
		if ok {
			require.GreaterOrEqual(t, pp, int64(0))
			cc, ok2 := CiphertextSize(pp, size)
			require.True(t, ok2)
			require.Equal(t, c, cc)
			require.Equal(t, Count(pp, size), nn)
		} else if c >= Overhead {
			n0 := (c-1)/stride + 1
			for k := max(1, n0-1); k <= n0+1; k++ {
				if q := c - Overhead*k; q >= 0 && Count(q, size) == k {
					t.Fatalf("PlaintextSize(%d, %d) rejects the body of p=%d", c, size, q)
				}
			}
		}

		// Span over a valid object.
		if p <= 0 {
			return
		}
		C, ok := CiphertextSize(p, size)
		if !ok {
			return
		}
		o := int64(uint64(off) % uint64(p))
		e := o + 1 + int64(uint64(end)%uint64(p-o))
		require.LessOrEqual(t, e, p)
		first, last, start, stop := Span(size, p, o, e)
		require.Equal(t, o/s, first)
		require.Equal(t, (e-1)/s, last)
		require.LessOrEqual(t, first, last)
		require.Less(t, last, Count(p, size))
		require.Equal(t, first*stride, start)
		require.True(t, 0 <= start && start < stop && stop <= C, "Span(%d, %d, %d, %d) = [%d, %d) in %d", size, p, o, e, start, stop, C)
		if last == Count(p, size)-1 {
			require.Equal(t, C, stop)
		} else {
			require.Equal(t, (last+1)*stride, stop)
		}
		// The plaintext the segments hold, from the ciphertext length.
		held := stop - start - Overhead*(last-first+1)
		require.LessOrEqual(t, first*s, o)
		require.GreaterOrEqual(t, first*s+held, e)
		require.Less(t, first*s+held-e, s) // no segment past the one holding e-1
		if p <= 64*s {
			bf, bl, ba, bb := bruteSpan(size, p, o, e)
			require.Equal(t, [4]int64{bf, bl, ba, bb}, [4]int64{first, last, start, stop})
		}
	})
}
