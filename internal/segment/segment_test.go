package segment

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

// testS is the segment size most tests use: the smallest allowed, so that
// objects of many segments stay small.
const testS = 4096

const testStride = testS + Overhead

// testKey returns a deterministic content key; different seeds give
// different keys.
func testKey(seed byte) []byte {
	k := sha256.Sum256([]byte{'k', seed})
	return k[:]
}

func newTestCipher(tb testing.TB, key []byte, size int) *Cipher {
	tb.Helper()
	c, err := New(key, size)
	require.NoError(tb, err)
	return c
}

// pattern returns n deterministic pseudo-random bytes.
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// ---- Reference codec, written from docs/segmented-format.md with
// crypto/cipher only (no code from the package under test). ----

func refAEAD(tb testing.TB, key []byte) cipher.AEAD {
	tb.Helper()
	block, err := aes.NewCipher(key)
	require.NoError(tb, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(tb, err)
	return aead
}

// refNonce is BE88(i) || flag.
func refNonce(i int, final bool) []byte {
	n := make([]byte, 12)
	for k := 10; k >= 0 && i > 0; k-- {
		n[k] = byte(i)
		i >>= 8
	}
	if final {
		n[11] = 1
	}
	return n
}

// refSealSeg appends segment i sealed with the given flag.
func refSealSeg(aead cipher.AEAD, dst []byte, i int, final bool, seg []byte) []byte {
	return aead.Seal(dst, refNonce(i, final), seg, nil)
}

// refSeal is the canonical body of pt: n = max(1, ceil(P/S)) segments.
func refSeal(tb testing.TB, key []byte, size int, pt []byte) []byte {
	tb.Helper()
	aead := refAEAD(tb, key)
	n := 1
	if len(pt) > 0 {
		n = (len(pt) + size - 1) / size
	}
	out := make([]byte, 0, len(pt)+16*n)
	for i := range n {
		seg := pt[i*size : min((i+1)*size, len(pt))]
		out = refSealSeg(aead, out, i, i == n-1, seg)
	}
	require.Equal(tb, len(pt)+16*n, len(out))
	return out
}

// refOpen is a streaming reader of the spec: it cuts the body into pieces
// of S+16 bytes, opens each with flag 1 iff it ends the body, enforces the
// length rule on the final piece, and returns the plaintext of the pieces
// before the first failure, and whether there was none.
func refOpen(aead cipher.AEAD, size int, body []byte) ([]byte, bool) {
	stride := size + 16
	var out []byte
	if len(body) == 0 {
		return out, false
	}
	for i, off := 0, 0; off < len(body); i, off = i+1, off+stride {
		piece := body[off:min(off+stride, len(body))]
		final := off+stride >= len(body)
		if final && (len(piece) < 16 || (len(piece) == 16 && i != 0)) {
			return out, false
		}
		pt, err := aead.Open(nil, refNonce(i, final), piece, nil)
		if err != nil {
			return out, false
		}
		out = append(out, pt...)
	}
	return out, true
}

// segs returns the sealed segments of a canonical body.
func segs(body []byte, size int) [][]byte {
	var out [][]byte
	for off := 0; off < len(body); off += size + Overhead {
		out = append(out, body[off:min(off+size+Overhead, len(body))])
	}
	return out
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// ---- Drains: ways to take all output of a Reader. ----

// onlyWriter hides every method but Write.
type onlyWriter struct{ io.Writer }

// readAll reads with Read into a buffer of bufSize bytes until an error;
// io.EOF becomes nil.
func readAll(r io.Reader, bufSize int) ([]byte, error) {
	buf := make([]byte, bufSize)
	var out []byte
	zero := 0
	for {
		k, err := r.Read(buf)
		if k < 0 || k > len(buf) {
			return out, fmt.Errorf("test: Read returned %d", k)
		}
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			if k != 0 {
				return out, fmt.Errorf("test: Read returned %d bytes with %w", k, err)
			}
			return out, err
		}
		if k == 0 {
			if zero++; zero > 100 {
				return out, errors.New("test: Read makes no progress")
			}
		} else {
			zero = 0
		}
	}
}

type drain struct {
	name string
	f    func(*Reader) ([]byte, error)
}

var errCountMismatch = errors.New("test: WriteTo count differs from bytes written")

var drains = []drain{
	{"Read7", func(r *Reader) ([]byte, error) { return readAll(r, 7) }},
	{"Read4099", func(r *Reader) ([]byte, error) { return readAll(r, 4099) }},
	{"WriteTo", func(r *Reader) ([]byte, error) {
		var buf bytes.Buffer
		n, err := r.WriteTo(onlyWriter{&buf})
		if n != int64(buf.Len()) {
			return buf.Bytes(), errCountMismatch
		}
		return buf.Bytes(), err
	}},
	{"ioCopy", func(r *Reader) ([]byte, error) {
		var buf bytes.Buffer
		n, err := io.Copy(&buf, r)
		if n != int64(buf.Len()) {
			return buf.Bytes(), errCountMismatch
		}
		return buf.Bytes(), err
	}},
}

// stutterReader returns (0, nil) on every other call.
type stutterReader struct {
	r io.Reader
	k int
}

func (s *stutterReader) Read(p []byte) (int, error) {
	if s.k++; s.k%2 == 1 {
		return 0, nil
	}
	return s.r.Read(p)
}

type source struct {
	name string
	f    func([]byte) io.Reader
}

var sources = []source{
	{"bytes", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"OneByte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"Half", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	{"DataErr", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	{"Stutter", func(b []byte) io.Reader { return &stutterReader{r: bytes.NewReader(b)} }},
}

// ---- Cipher ----

func TestNewRejectsBadParameters(t *testing.T) {
	for _, s := range []int{0, -4096, 1, 2048, 4095, 4097, 3 * 4096, 32 << 20, 1 << 30} {
		require.False(t, ValidSize(s), "size %d", s)
		_, err := New(testKey(0), s)
		require.Error(t, err, "size %d", s)
	}
	for s := MinSize; s <= MaxSize; s <<= 1 {
		require.True(t, ValidSize(s), "size %d", s)
		c, err := New(testKey(0), s)
		require.NoError(t, err)
		require.Equal(t, s, c.Size())
	}
	for _, k := range []int{0, 16, 24, 31, 33} {
		_, err := New(make([]byte, k), testS)
		require.Error(t, err, "key of %d bytes", k)
	}
}

func TestCipherSegmentsMatchReference(t *testing.T) {
	key := testKey(1)
	c := newTestCipher(t, key, testS)
	aead := refAEAD(t, key)
	for _, i := range []int64{0, 1, 255, 256, 1 << 20, 1<<40 + 3, math.MaxInt64} {
		for _, final := range []bool{false, true} {
			for _, n := range []int{0, 1, testS} {
				pt := pattern(n, uint64(i)+uint64(n))
				got := c.Seal(nil, pt, i, final)
				// The reference nonce for a huge index, built by hand.
				var want []byte
				nonce := make([]byte, 12)
				binary.BigEndian.PutUint64(nonce[3:11], uint64(i))
				if final {
					nonce[11] = 1
				}
				want = aead.Seal(nil, nonce, pt, nil)
				require.Equal(t, want, got, "i=%d final=%v n=%d", i, final, n)

				// In place.
				buf := append([]byte(nil), pt...)
				buf = append(buf, make([]byte, Overhead)...)[:n]
				sealed := c.Seal(buf[:0], buf, i, final)
				require.Equal(t, want, sealed)

				out, err := c.Open(nil, got, i, final)
				require.NoError(t, err)
				require.Equal(t, pt, append([]byte{}, out...))
				out, err = c.Open(sealed[:0], sealed, i, final)
				require.NoError(t, err)
				require.Equal(t, pt, append([]byte{}, out...))

				_, err = c.Open(nil, got, i, !final)
				require.ErrorIs(t, err, ErrAuthentication)
				_, err = c.Open(nil, got, i^1, final)
				require.ErrorIs(t, err, ErrAuthentication)
				bad := append([]byte(nil), got...)
				bad[len(bad)-1] ^= 0x80
				_, err = c.Open(nil, bad, i, final)
				require.ErrorIs(t, err, ErrAuthentication)
			}
		}
	}
	// Index 0 and the nonce layout: a segment sealed by the reference with
	// index 2^56 (top byte of the 88-bit field used by BE64) opens.
	n := make([]byte, 12)
	n[3] = 1
	sealed := aead.Seal(nil, n, []byte("x"), nil)
	out, err := c.Open(nil, sealed, 1<<56, false)
	require.NoError(t, err)
	require.Equal(t, []byte("x"), out)
}

// ---- 1. Round trips against the reference encoder ----

func TestRoundTripMatchesReference(t *testing.T) {
	key := testKey(2)
	c := newTestCipher(t, key, testS)
	sizes := []int{0, 1, testS - 1, testS, testS + 1, 2 * testS, 3*testS + 7,
		1<<20 + 5,
		255 * testS,     // exactly one batch of segments
		255*testS + 1,   // one byte into the second batch
		1100*testS + 13, // more rounds than 4 workers take at once
	}
	for _, p := range sizes {
		pt := pattern(p, uint64(p))
		want := refSeal(t, key, testS, pt)
		for _, workers := range []int{1, 2, 4} {
			for si, src := range sources {
				// One-byte sources on the largest objects cost much and
				// add nothing the smaller ones do not cover.
				if p > 1<<21 && src.name != "bytes" && src.name != "Half" {
					continue
				}
				for di, d := range drains {
					// Objects of many batches: every drain with the
					// plain source, one drain per other source.
					if p > 64<<10 && si != 0 && di != (si+workers)%len(drains) {
						continue
					}
					name := fmt.Sprintf("p=%d/w=%d/%s/%s", p, workers, src.name, d.name)
					got, err := d.f(c.SealReader(src.f(pt), workers))
					require.NoError(t, err, "seal %s", name)
					require.True(t, bytes.Equal(want, got), "seal %s: ciphertext differs from reference (%d vs %d bytes)", name, len(got), len(want))

					got, err = d.f(c.OpenReader(src.f(want), workers))
					require.NoError(t, err, "open %s", name)
					require.True(t, bytes.Equal(pt, got), "open %s: plaintext differs (%d vs %d bytes)", name, len(got), len(pt))
				}
			}
		}
	}
}

func TestRoundTripOtherSegmentSizes(t *testing.T) {
	key := testKey(3)
	for _, size := range []int{8 << 10, DefaultSize, 1 << 20, MaxSize} {
		c := newTestCipher(t, key, size)
		for _, p := range []int{0, 1, size - 1, size, size + 1, 2*size + 3} {
			if size == MaxSize && p != 0 && p != 1 && p != size+1 {
				continue
			}
			pt := pattern(p, uint64(p+size))
			want := refSeal(t, key, size, pt)
			for _, workers := range []int{1, 3} {
				got, err := io.ReadAll(c.SealReader(bytes.NewReader(pt), workers))
				require.NoError(t, err)
				require.True(t, bytes.Equal(want, got), "S=%d p=%d w=%d", size, p, workers)
				var buf bytes.Buffer
				_, err = io.Copy(&buf, c.OpenReader(bytes.NewReader(want), workers))
				require.NoError(t, err)
				require.True(t, bytes.Equal(pt, buf.Bytes()), "S=%d p=%d w=%d", size, p, workers)
			}
		}
	}
}

// Mixing Read and WriteTo on one Reader yields the whole stream once.
func TestReadThenWriteTo(t *testing.T) {
	key := testKey(4)
	c := newTestCipher(t, key, testS)
	pt := pattern(600*testS+9, 4)
	body := refSeal(t, key, testS, pt)
	for _, workers := range []int{1, 2} {
		for _, first := range []int{0, 1, testS, 300 * testS} {
			r := c.OpenReader(bytes.NewReader(body), workers)
			head := make([]byte, first)
			_, err := io.ReadFull(r, head)
			require.NoError(t, err)
			var buf bytes.Buffer
			n, err := r.WriteTo(&buf)
			require.NoError(t, err)
			require.Equal(t, int64(len(pt)-first), n)
			require.True(t, bytes.Equal(pt, append(head, buf.Bytes()...)))
			// Done: both paths report the end.
			k, err := r.Read(make([]byte, 10))
			require.Equal(t, 0, k)
			require.Equal(t, io.EOF, err)
			n, err = r.WriteTo(&buf)
			require.NoError(t, err)
			require.Zero(t, n)
		}
	}
}

func TestZeroProgressSource(t *testing.T) {
	c := newTestCipher(t, testKey(5), testS)
	src := iotest.ErrReader(nil) // (0, nil) forever
	for _, d := range drains {
		_, err := d.f(c.OpenReader(src, 2))
		require.ErrorIs(t, err, io.ErrNoProgress, d.name)
		_, err = d.f(c.SealReader(src, 2))
		require.ErrorIs(t, err, io.ErrNoProgress, d.name)
	}
}

// ---- 2. Layout ----

func TestLayoutInverse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for size := MinSize; size <= MaxSize; size <<= 1 {
		s := int64(size)
		var ps []int64
		for k := int64(0); k <= 5; k++ {
			for d := int64(-2); d <= 2; d++ {
				if p := k*s + d; p >= 0 {
					ps = append(ps, p)
				}
			}
		}
		for range 2000 {
			ps = append(ps, rng.Int64N(1<<50))
			ps = append(ps, rng.Int64N(64*s))
		}
		for _, p := range ps {
			n := Count(p, size)
			wantN := int64(1)
			if p > 0 {
				wantN = (p + s - 1) / s
			}
			require.Equal(t, wantN, n, "Count(%d, %d)", p, size)
			c, ok := CiphertextSize(p, size)
			require.True(t, ok)
			require.Equal(t, p+Overhead*n, c)
			gp, gn, ok := PlaintextSize(c, size)
			require.True(t, ok, "PlaintextSize(%d, %d)", c, size)
			require.Equal(t, p, gp)
			require.Equal(t, n, gn)
		}
		// The largest body, and no overflow past it.
		for _, p := range []int64{-1, -s, math.MinInt64} {
			_, ok := CiphertextSize(p, size)
			require.False(t, ok, "CiphertextSize(%d)", p)
		}
		_, ok := CiphertextSize(math.MaxInt64, size)
		require.False(t, ok)
		cmax := int64(math.MaxInt64)
		for {
			if _, _, ok := PlaintextSize(cmax, size); ok {
				break
			}
			cmax--
			require.Greater(t, cmax, int64(math.MaxInt64-40), "no valid body near MaxInt64")
		}
		pmax, _, _ := PlaintextSize(cmax, size)
		c, ok := CiphertextSize(pmax, size)
		require.True(t, ok)
		require.Equal(t, cmax, c)
		_, ok = CiphertextSize(pmax+1, size)
		require.False(t, ok, "CiphertextSize(%d) does not fit", pmax+1)
	}
}

// Every body length a sealer cannot produce is rejected: checked against
// the exhaustive set of lengths the reference produces.
func TestLayoutNonCanonical(t *testing.T) {
	for _, size := range []int{MinSize, 8 << 10, DefaultSize} {
		s := int64(size)
		stride := s + Overhead
		// valid[c] is the plaintext size of a body of c bytes, or -1.
		valid := make([]int64, 7*stride)
		for i := range valid {
			valid[i] = -1
		}
		for p := int64(0); p <= 6*s; p++ {
			c := p + Overhead*max(1, (p+s-1)/s)
			if valid[c] != -1 {
				t.Fatalf("p=%d and p=%d both give C=%d", valid[c], p, c)
			}
			valid[c] = p
		}
		for c := int64(-20); c <= 6*stride; c++ {
			p, n, ok := PlaintextSize(c, size)
			wantP, want := int64(-1), false
			if c >= 0 {
				wantP = valid[c]
				want = wantP >= 0
			}
			if want != ok {
				require.Equal(t, want, ok, "PlaintextSize(%d, %d)", c, size)
			}
			if ok && (p != wantP || n != max(1, (p+s-1)/s)) {
				t.Fatalf("PlaintextSize(%d, %d) = %d, %d; want %d", c, size, p, n, wantP)
			}
		}
		for k := int64(1); k < 1<<20; k = k*3 + 1 {
			for r := int64(1); r <= Overhead; r++ {
				_, _, ok := PlaintextSize(k*stride+r, size)
				require.False(t, ok, "C = %d*(S+16)+%d", k, r)
			}
			_, _, ok := PlaintextSize(k*stride, size)
			require.True(t, ok)
			_, _, ok = PlaintextSize(k*stride+Overhead+1, size)
			require.True(t, ok)
		}
		for _, c := range []int64{0, 1, 15, -1, math.MinInt64} {
			_, _, ok := PlaintextSize(c, size)
			require.False(t, ok, "C = %d", c)
		}
		p, n, ok := PlaintextSize(16, size)
		require.True(t, ok)
		require.Equal(t, int64(0), p)
		require.Equal(t, int64(1), n)
	}
}

// bruteSpan walks the segments of an object one by one.
func bruteSpan(size int, p, off, end int64) (first, last, start, stop int64) {
	s := int64(size)
	n := max(1, (p+s-1)/s)
	first, last = -1, -1
	var c int64
	for i := int64(0); i < n; i++ {
		lo, hi := i*s, min((i+1)*s, p)
		clen := hi - lo + Overhead
		if lo < end && off < hi {
			if first < 0 {
				first, start = i, c
			}
			last, stop = i, c+clen
		}
		c += clen
	}
	return
}

// spanPoints are offsets around every segment boundary of an object.
func spanPoints(size int, p int64, rng *rand.Rand, random int) []int64 {
	set := map[int64]bool{}
	s := int64(size)
	for k := int64(0); k*s <= p+s; k++ {
		for d := int64(-2); d <= 2; d++ {
			if x := k*s + d; x >= 0 && x <= p {
				set[x] = true
			}
		}
	}
	for d := int64(0); d <= 2; d++ {
		if p-d >= 0 {
			set[p-d] = true
		}
	}
	for range random {
		set[rng.Int64N(p+1)] = true
	}
	out := make([]int64, 0, len(set))
	for x := range set {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func TestSpanBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{MinSize, DefaultSize} {
		s := int64(size)
		for _, p := range []int64{1, 2, s - 1, s, s + 1, 2 * s, 3*s + 7, 7*s - 1, 20*s + 3} {
			pts := spanPoints(size, p, rng, 40)
			for _, off := range pts {
				for _, end := range pts {
					if end <= off {
						continue
					}
					f, l, a, b := Span(size, p, off, end)
					bf, bl, ba, bb := bruteSpan(size, p, off, end)
					require.Equal(t, [4]int64{bf, bl, ba, bb}, [4]int64{f, l, a, b}, "Span(%d, %d, %d, %d)", size, p, off, end)
				}
			}
		}
	}
}

// ---- 3. OpenReader on malformed bodies ----

type badBody struct {
	name string
	body []byte
	want []byte // plaintext released before the error
}

func badBodies(t *testing.T) []badBody {
	key, other := testKey(6), testKey(7)
	aead, oaead := refAEAD(t, key), refAEAD(t, other)
	seal := func(i int, final bool, seg []byte) []byte { return refSealSeg(aead, nil, i, final, seg) }

	// pt: segments 0, 1, 2 full; segment 3 holds 7 bytes.
	pt := pattern(3*testS+7, 6)
	body := refSeal(t, key, testS, pt)
	sg := segs(body, testS)
	require.Len(t, sg, 4)
	seg := func(i int) []byte { return pt[i*testS : min((i+1)*testS, len(pt))] }
	upto := func(k int) []byte { return pt[:min(k*testS, len(pt))] }

	// full: p = 3S, whose final segment is full.
	full := pt[:3*testS]
	fullBody := refSeal(t, key, testS, full)

	// big: 600 segments, the last of S-5 bytes: several batches.
	big := pattern(600*testS-5, 60)
	bigBody := refSeal(t, key, testS, big)
	bs := segs(bigBody, testS)
	bigUpto := func(k int) []byte { return big[:k*testS] }
	bigFlip := func(i int) []byte {
		b := bytes.Clone(bigBody)
		b[i*testStride+100] ^= 4
		return b
	}
	swapped := func(b [][]byte, i, j int) []byte {
		c := append([][]byte(nil), b...)
		c[i], c[j] = c[j], c[i]
		return join(c...)
	}

	return []badBody{
		{"empty body", nil, nil},
		{"one byte", []byte{0}, nil},
		{"15 bytes", body[:15], nil},
		{"16 bytes of segment 0", body[:16], nil},

		{"no final: cut after segment 0", body[:1*testStride], nil},
		{"no final: cut after segment 1", body[:2*testStride], upto(1)},
		{"no final: cut after segment 2", body[:3*testStride], upto(2)},
		{"no final: full object cut after segment 1", fullBody[:2*testStride], upto(1)},

		{"trailing byte", join(body, []byte{0}), upto(3)},
		{"trailing 16 bytes", join(body, make([]byte, 16)), upto(3)},
		{"trailing stride", join(body, make([]byte, testStride)), upto(3)},
		{"trailing byte after a full final", join(fullBody, []byte{1}), upto(2)},
		{"trailing segment sealed final at next index", join(fullBody, seal(3, true, []byte("x"))), upto(2)},

		{"two finals: 1 and 3", join(sg[0], seal(1, true, seg(1)), sg[2], sg[3]), upto(1)},
		{"two finals: 0 and 1", join(seal(0, true, seg(0)), seal(1, true, seg(1))), nil},
		{"final segment moved first", join(sg[3], sg[0], sg[1], sg[2]), nil},

		{"empty final after a full final", join(fullBody, seal(3, true, nil)), upto(2)},
		{"empty final after non-final data", join(sg[0], sg[1], sg[2], seal(3, true, nil)), upto(3)},
		{"empty final at index 1", join(sg[0], seal(1, true, nil)), upto(1)},
		{"empty final at index 0 then data", join(seal(0, true, nil), sg[1]), nil},

		{"swapped 0 and 1", swapped(sg, 0, 1), nil},
		{"swapped 1 and 2", swapped(sg, 1, 2), upto(1)},
		{"swapped 2 and 3", swapped(sg, 2, 3), upto(2)},
		{"duplicated segment 1", join(sg[0], sg[1], sg[1], sg[2], sg[3]), upto(2)},
		{"duplicated final segment", join(sg[0], sg[1], sg[2], sg[3], sg[3]), upto(3)},
		{"segment dropped", join(sg[0], sg[2], sg[3]), upto(1)},

		{"segment 1 from another key", join(sg[0], refSealSeg(oaead, nil, 1, false, seg(1)), sg[2], sg[3]), upto(1)},
		{"final segment from another key", join(sg[0], sg[1], sg[2], refSealSeg(oaead, nil, 3, true, seg(3))), upto(3)},
		{"whole body from another key", refSeal(t, other, testS, pt), nil},

		{"truncated by one byte", body[:len(body)-1], upto(3)},
		{"truncated inside the final tag", body[:3*testStride+16], upto(3)},
		{"truncated to the final segment's first byte", body[:3*testStride+1], upto(3)},
		{"truncated mid segment 2", body[:2*testStride+100], upto(2)},
		{"truncated mid segment 0", body[:100], nil},

		{"big: no final", bigBody[:599*testStride], bigUpto(598)},
		{"big: cut at a batch boundary", bigBody[:255*testStride], bigUpto(254)},
		{"big: trailing byte", join(bigBody, []byte{9}), bigUpto(599)},
		{"big: swapped 400 and 401", swapped(bs, 400, 401), bigUpto(400)},
		{"big: flip in 254, end of batch 0", bigFlip(254), bigUpto(254)},
		{"big: flip in 255, start of batch 1", bigFlip(255), bigUpto(255)},
		{"big: flip in 510", bigFlip(510), bigUpto(510)},
		{"big: flip in the final segment", bigFlip(599), bigUpto(599)},
	}
}

func TestOpenReaderMalformed(t *testing.T) {
	key := testKey(6)
	c := newTestCipher(t, key, testS)
	aead := refAEAD(t, key)
	for _, bb := range badBodies(t) {
		// The reference agrees on what is released.
		ref, ok := refOpen(aead, testS, bb.body)
		require.False(t, ok, bb.name)
		require.True(t, bytes.Equal(bb.want, ref), "%s: reference releases %d bytes, want %d", bb.name, len(ref), len(bb.want))
		for _, workers := range []int{1, 2, 4} {
			for di, d := range drains {
				if strings.HasPrefix(bb.name, "big") && di != workers%len(drains) && di != 2 {
					continue
				}
				name := fmt.Sprintf("%s/w=%d/%s", bb.name, workers, d.name)
				r := c.OpenReader(bytes.NewReader(bb.body), workers)
				got, err := d.f(r)
				require.ErrorIs(t, err, ErrAuthentication, name)
				require.True(t, bytes.Equal(bb.want, got), "%s: released %d bytes, want %d", name, len(got), len(bb.want))
				// The error is sticky on both paths.
				k, err2 := r.Read(make([]byte, 8))
				require.Zero(t, k, name)
				require.ErrorIs(t, err2, ErrAuthentication, name)
				n, err2 := r.WriteTo(io.Discard)
				require.Zero(t, n, name)
				require.ErrorIs(t, err2, ErrAuthentication, name)
			}
		}
	}
}

// A single bit flip anywhere in a body of three segments fails at the
// segment holding it, after the segments before it.
func TestOpenReaderBitFlips(t *testing.T) {
	key := testKey(8)
	c := newTestCipher(t, key, testS)
	pt := pattern(2*testS+100, 8)
	body := refSeal(t, key, testS, pt)
	require.Len(t, body, 2*testStride+116)
	check := func(pos, bit, workers int, d drain) {
		b := bytes.Clone(body)
		b[pos] ^= 1 << bit
		got, err := d.f(c.OpenReader(bytes.NewReader(b), workers))
		name := fmt.Sprintf("pos=%d bit=%d w=%d %s", pos, bit, workers, d.name)
		require.ErrorIs(t, err, ErrAuthentication, name)
		want := pt[:pos/testStride*testS]
		require.True(t, bytes.Equal(want, got), "%s: released %d bytes, want %d", name, len(got), len(want))
	}
	// Each Reader costs a batch buffer of ~1 MiB however small the body,
	// so this samples: every third byte, each with one bit; a random sample
	// of (byte, bit); every bit of the bytes around the segment edges.
	for pos := 0; pos < len(body); pos += 3 {
		check(pos, pos%8, 1, drains[pos%len(drains)])
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		pos := rng.IntN(len(body))
		check(pos, rng.IntN(8), 1+rng.IntN(3), drains[rng.IntN(len(drains))])
	}
	for _, base := range []int{0, testStride - 4, 2*testStride - 4, len(body) - 4} {
		for pos := base; pos < base+8 && pos < len(body); pos++ {
			for bit := range 8 {
				check(pos, bit, 1, drains[bit%len(drains)])
			}
		}
	}
}

// ---- 4. OpenRangeReader ----

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

func TestOpenRangeReader(t *testing.T) {
	key := testKey(9)
	c := newTestCipher(t, key, testS)
	rng := rand.New(rand.NewPCG(7, 8))
	rangeDrains := []drain{drains[0], drains[2]}
	for _, p := range []int64{0, 1, testS - 1, testS, testS + 1, 2 * testS, 3*testS + 7} {
		pt := pattern(int(p), uint64(p)+9)
		body := refSeal(t, key, testS, pt)
		pts := spanPoints(testS, p, rng, 12)
		if p <= 2 {
			pts = []int64{0, 1, 2}[:p+1]
		}
		for i, off := range pts {
			for j, end := range pts {
				if end < off {
					continue
				}
				// The empty range [off, off): Span's formula still gives
				// the ciphertext to read.
				_, _, start, stop := Span(testS, p, off, end)
				require.LessOrEqual(t, stop, int64(len(body)))
				workers := 1 + (i+j)%3
				d := rangeDrains[(i+j)%2]
				name := fmt.Sprintf("p=%d [%d,%d) w=%d %s", p, off, end, workers, d.name)
				src := &countReader{r: bytes.NewReader(body[start:stop])}
				got, err := runWithTimeout(t, name, func() ([]byte, error) {
					return d.f(c.OpenRangeReader(src, p, off, end, workers))
				})
				require.NoError(t, err, name)
				require.True(t, bytes.Equal(pt[off:end], got), "%s: got %d bytes", name, len(got))
				if end > off {
					require.Equal(t, stop-start, src.n, "%s: ciphertext bytes read", name)
				}

				if end == off {
					continue
				}
				// One byte more or less than the span fails.
				more := join(body[start:stop], []byte{0})
				got, err = d.f(c.OpenRangeReader(bytes.NewReader(more), p, off, end, workers))
				require.ErrorIs(t, err, ErrAuthentication, "%s + 1 byte", name)
				require.True(t, bytes.HasPrefix(pt[off:end], got), name)
				less := body[start : stop-1]
				got, err = d.f(c.OpenRangeReader(bytes.NewReader(less), p, off, end, workers))
				require.ErrorIs(t, err, ErrAuthentication, "%s - 1 byte", name)
				require.True(t, bytes.HasPrefix(pt[off:end], got), name)
				require.Less(t, len(got), int(end-off))
			}
		}
	}
}

// runWithTimeout fails the test instead of hanging.
func runWithTimeout(t *testing.T, name string, f func() ([]byte, error)) ([]byte, error) {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := f()
		ch <- res{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no result after 20s", name)
		return nil, nil
	}
}

func TestOpenRangeReaderManyBatches(t *testing.T) {
	key := testKey(10)
	c := newTestCipher(t, key, testS)
	p := int64(1100*testS + 13)
	pt := pattern(int(p), 10)
	body := refSeal(t, key, testS, pt)
	ranges := [][2]int64{{0, p}, {1, p - 1}, {254*testS + 5, 256*testS + 1}, {300*testS - 1, 1100*testS + 1}, {p - 1, p}, {17, 1020*testS + 9}}
	for _, rg := range ranges {
		off, end := rg[0], rg[1]
		_, _, start, stop := Span(testS, p, off, end)
		for _, workers := range []int{1, 2, 4} {
			for _, d := range []drain{drains[1], drains[2]} {
				src := &countReader{r: bytes.NewReader(body[start:stop])}
				got, err := d.f(c.OpenRangeReader(src, p, off, end, workers))
				require.NoError(t, err)
				require.True(t, bytes.Equal(pt[off:end], got), "[%d,%d) w=%d %s", off, end, workers, d.name)
				require.Equal(t, stop-start, src.n)
			}
		}
	}
	// A flipped segment in the middle of a range: released up to it.
	bad := bytes.Clone(body)
	bad[700*testStride+3] ^= 1
	off, end := int64(100*testS+50), int64(900*testS)
	_, _, start, stop := Span(testS, p, off, end)
	for _, workers := range []int{1, 4} {
		for _, d := range drains {
			got, err := d.f(c.OpenRangeReader(bytes.NewReader(bad[start:stop]), p, off, end, workers))
			require.ErrorIs(t, err, ErrAuthentication)
			require.True(t, bytes.Equal(pt[off:700*testS], got), "w=%d %s: %d bytes", workers, d.name, len(got))
		}
	}
}

// A server that lies about the object's length (so about p) makes the
// segment claimed final fail, whatever the lie.
func TestOpenRangeReaderLengthLies(t *testing.T) {
	key := testKey(11)
	c := newTestCipher(t, key, testS)
	p := int64(3*testS + 7) // 4 segments, the last of 7 bytes
	pt := pattern(int(p), 11)
	body := refSeal(t, key, testS, pt)
	// What a lying server serves: the true body cut or extended to the
	// claimed length.
	served := func(claim int64) []byte {
		c, ok := CiphertextSize(claim, testS)
		require.True(t, ok)
		if c <= int64(len(body)) {
			return body[:c]
		}
		return join(body, pattern(int(c)-len(body), uint64(claim)))
	}
	claims := []int64{1, testS - 1, testS, testS + 1, 2 * testS, 2*testS + 5, 3 * testS, 3*testS + 6, 3*testS + 8, 4 * testS, 4*testS + 7, 9 * testS}
	for _, claim := range claims {
		obj := served(claim)
		final := Count(claim, testS) - 1
		rng := rand.New(rand.NewPCG(uint64(claim), 12))
		pts := spanPoints(testS, claim, rng, 8)
		for _, off := range pts {
			for _, end := range pts {
				if end <= off {
					continue
				}
				_, last, start, stop := Span(testS, claim, off, end)
				if last < final {
					continue // the lie is not visible to this range
				}
				require.Equal(t, final, last)
				for _, d := range []drain{drains[0], drains[2]} {
					got, err := d.f(c.OpenRangeReader(bytes.NewReader(obj[start:stop]), claim, off, end, 2))
					name := fmt.Sprintf("claim %d [%d,%d) %s", claim, off, end, d.name)
					require.ErrorIs(t, err, ErrAuthentication, name)
					// Released: the true plaintext of the segments before
					// the first that fails: the one claimed final, or the
					// true final one (3), opened as not final.
					trueEnd := min(end, min(final, 3)*testS)
					var want []byte
					if off < trueEnd {
						want = pt[off:trueEnd]
					}
					require.True(t, bytes.Equal(want, got), "%s: released %d bytes, want %d", name, len(got), len(want))
				}
			}
		}
	}
}

// ---- 5. ReaderAt ----

// recReaderAt records the reads made of a source.
type recReaderAt struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads [][2]int64 // [off, off+n)
	calls int
}

func (r *recReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	r.mu.Lock()
	r.calls++
	if n > 0 {
		r.reads = append(r.reads, [2]int64{off, off + int64(n)})
	}
	r.mu.Unlock()
	return n, err
}

func (r *recReaderAt) take() ([][2]int64, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reads := r.reads
	r.reads = nil
	var total int64
	for _, x := range reads {
		total += x[1] - x[0]
	}
	return reads, total
}

// checkReadAt checks one ReadAt against the io.ReaderAt contract.
func checkReadAt(t *testing.T, ra *ReaderAt, pt []byte, off int64, n int) {
	t.Helper()
	p := int64(len(pt))
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = 0xee
	}
	k, err := ra.ReadAt(buf, off)
	name := fmt.Sprintf("p=%d ReadAt(len %d, off %d)", p, n, off)
	if off < 0 {
		require.Error(t, err, name)
		require.Zero(t, k, name)
		return
	}
	want := max(0, min(int64(n), p-off))
	require.Equal(t, int(want), k, name)
	if want > 0 {
		require.True(t, bytes.Equal(pt[off:off+want], buf[:k]), name)
	}
	switch {
	case k < n:
		require.Equal(t, io.EOF, err, name)
	case off > p:
		require.Equal(t, io.EOF, err, name)
	default:
		require.NoError(t, err, name)
	}
}

func TestReaderAtEveryRead(t *testing.T) {
	key := testKey(12)
	c := newTestCipher(t, key, testS)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, p := range []int{0, 1, 2, testS - 1, testS, testS + 1, 2 * testS, 3*testS + 7} {
		pt := pattern(p, uint64(p)+12)
		body := refSeal(t, key, testS, pt)
		for _, workers := range []int{1, 3} {
			ra, err := c.NewReaderAt(bytes.NewReader(body), int64(len(body)), workers)
			require.NoError(t, err)
			require.Equal(t, int64(p), ra.Size())
			if p <= 2 {
				for off := int64(-1); off <= int64(p)+2; off++ {
					for n := 0; n <= p+3; n++ {
						checkReadAt(t, ra, pt, off, n)
					}
				}
				continue
			}
			offs := spanPoints(testS, int64(p), rng, 10)
			offs = append(offs, -1, int64(p)+1, int64(p)+testS)
			lens := []int{0, 1, 2, 15, 16, 17, testS - 1, testS, testS + 1, 2*testS - 1, 2 * testS, 3 * testS, p, p + 1, p + 100}
			for range 6 {
				lens = append(lens, rng.IntN(p+2))
			}
			for _, off := range offs {
				for _, n := range lens {
					checkReadAt(t, ra, pt, off, n)
				}
			}
		}
	}
}

func TestReaderAtFetchesOnlyNeededSegments(t *testing.T) {
	key := testKey(13)
	c := newTestCipher(t, key, testS)
	p := int64(600*testS + 77)
	pt := pattern(int(p), 13)
	body := refSeal(t, key, testS, pt)
	C := int64(len(body))
	src := &recReaderAt{r: bytes.NewReader(body)}
	ra, err := c.NewReaderAt(src, C, 2)
	require.NoError(t, err)
	lastStartC := int64(600 * testStride)
	reads, total := src.take()
	require.Equal(t, C-lastStartC, total, "NewReaderAt reads the final segment")
	for _, r := range reads {
		require.GreaterOrEqual(t, r[0], lastStartC)
	}

	rng := rand.New(rand.NewPCG(11, 12))
	check := func(off, n int64) {
		buf := make([]byte, n)
		k, err := ra.ReadAt(buf, off)
		end := min(off+n, p)
		require.Equal(t, end-off, int64(k))
		if off+n > p {
			require.Equal(t, io.EOF, err)
		} else {
			require.NoError(t, err)
		}
		require.True(t, bytes.Equal(pt[off:end], buf[:k]))
		reads, total := src.take()
		var want int64
		stopP := min(end, 600*testS)
		if off < stopP {
			_, _, start, stop := Span(testS, p, off, stopP)
			require.Less(t, stop, lastStartC+1)
			want = stop - start
			for _, r := range reads {
				require.GreaterOrEqual(t, r[0], start, "[%d,+%d)", off, n)
				require.LessOrEqual(t, r[1], stop, "[%d,+%d)", off, n)
			}
		}
		require.Equal(t, want, total, "ReadAt(off %d, len %d) read %d ciphertext bytes", off, n, total)
		for _, r := range reads {
			require.LessOrEqual(t, r[1], lastStartC, "the final segment is never fetched again")
		}
	}
	check(0, 1)
	check(testS-1, 2)
	check(testS, testS)
	check(599*testS, testS)
	check(599*testS, testS+1)
	check(600*testS, 77)
	check(600*testS+5, 100)
	check(p-1, 1)
	check(0, p)
	check(250*testS+3, 300*testS)
	for range 200 {
		off := rng.Int64N(p)
		check(off, rng.Int64N(3*testS))
	}
}

func TestReaderAtConcurrent(t *testing.T) {
	key := testKey(14)
	c := newTestCipher(t, key, testS)
	p := int64(300*testS + 5)
	pt := pattern(int(p), 14)
	body := refSeal(t, key, testS, pt)
	ra, err := c.NewReaderAt(bytes.NewReader(body), int64(len(body)), 2)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 15))
			for range 60 {
				off := rng.Int64N(p + 2)
				n := rng.Int64N(4 * testS)
				if rng.IntN(10) == 0 {
					n = rng.Int64N(100 * testS)
				}
				buf := make([]byte, n)
				k, err := ra.ReadAt(buf, off)
				want := max(0, min(n, p-off))
				ok := int64(k) == want && (err == nil) == (off+n <= p) && (off <= p || err == io.EOF)
				if want > 0 {
					ok = ok && bytes.Equal(pt[off:off+want], buf[:k])
				}
				if !ok {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, failures.Load())
}

func TestNewReaderAtRejects(t *testing.T) {
	key := testKey(15)
	c := newTestCipher(t, key, testS)
	aead := refAEAD(t, key)
	for _, p := range []int{0, 1, testS, testS + 1, 3*testS + 7} {
		pt := pattern(p, uint64(p)+15)
		body := refSeal(t, key, testS, pt)
		C := int64(len(body))
		cases := map[string]struct {
			src  []byte
			size int64
		}{
			"size 0":                      {body, 0},
			"size 15":                     {body, 15},
			"size -1":                     {body, -1},
			"truncated by 1":              {body[:C-1], C - 1},
			"truncated by 1, source full": {body, C - 1},
			"extended by 1":               {join(body, []byte{0}), C + 1},
			"extended by 1, source short": {body, C + 1},
			"extended by 16":              {join(body, make([]byte, 16)), C + 16},
			"extended by 17":              {join(body, make([]byte, 17)), C + 17},
			"extended by a stride":        {join(body, make([]byte, testStride)), C + testStride},
			"flipped last byte":           {join(body[:C-1], []byte{body[C-1] ^ 1}), C},
		}
		if C > testStride {
			cases["truncated at a boundary"] = struct {
				src  []byte
				size int64
			}{body, (C - 1) / testStride * testStride}
		}
		for name, tc := range cases {
			ra, err := c.NewReaderAt(bytes.NewReader(tc.src), tc.size, 1)
			require.ErrorIs(t, err, ErrAuthentication, "p=%d %s", p, name)
			require.Nil(t, ra)
		}
		ra, err := c.NewReaderAt(bytes.NewReader(body), C, 1)
		require.NoError(t, err)
		require.Equal(t, int64(p), ra.Size())
	}

	// An extra segment sealed final by the key holder: NewReaderAt sees a
	// final segment that opens, but reading the segment before it, which
	// was sealed final too, fails.
	pt := pattern(2*testS, 16)
	body := join(refSeal(t, key, testS, pt), refSealSeg(aead, nil, 2, true, []byte("tail")))
	ra, err := c.NewReaderAt(bytes.NewReader(body), int64(len(body)), 1)
	require.NoError(t, err)
	buf := make([]byte, 10)
	k, err := ra.ReadAt(buf, testS+5)
	require.ErrorIs(t, err, ErrAuthentication)
	require.Zero(t, k)
	k, err = ra.ReadAt(buf, 3)
	require.NoError(t, err)
	require.Equal(t, pt[3:13], buf[:k])
}

// A body corrupted after NewReaderAt: reads fail at the bad segment, after
// only the bytes before it.
func TestReaderAtCorruptSegment(t *testing.T) {
	key := testKey(17)
	c := newTestCipher(t, key, testS)
	p := int64(10*testS + 3)
	pt := pattern(int(p), 17)
	body := refSeal(t, key, testS, pt)
	ra, err := c.NewReaderAt(bytes.NewReader(body), int64(len(body)), 2)
	require.NoError(t, err)
	body[4*testStride+9] ^= 0x10 // segment 4, under the ReaderAt's feet
	buf := make([]byte, 5*testS)
	k, err := ra.ReadAt(buf, 2*testS+1)
	require.ErrorIs(t, err, ErrAuthentication)
	require.Equal(t, 2*testS-1, k)
	require.Equal(t, pt[2*testS+1:4*testS], buf[:k])
	k, err = ra.ReadAt(buf[:100], 5*testS)
	require.NoError(t, err)
	require.Equal(t, pt[5*testS:5*testS+100], buf[:k])
}

// ---- 6. Source errors ----

var errBoom = errors.New("test: source failed")

// failAfter yields b[:n] and then errBoom.
type failAfter struct {
	b   []byte
	n   int
	off int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.off >= f.n {
		return 0, errBoom
	}
	k := copy(p, f.b[f.off:f.n])
	f.off += k
	return k, nil
}

func TestSourceErrorMidway(t *testing.T) {
	key := testKey(18)
	c := newTestCipher(t, key, testS)
	pt := pattern(600*testS+9, 18)
	body := refSeal(t, key, testS, pt)
	cuts := []int{0, 1, testStride - 1, testStride, testStride + 1, 3*testStride + 50, 255 * testStride, 255*testStride + 1, 599 * testStride, len(body) - 1}
	for _, cut := range cuts {
		for _, workers := range []int{1, 2, 4} {
			for _, d := range []drain{drains[1], drains[2]} {
				name := fmt.Sprintf("open cut=%d w=%d %s", cut, workers, d.name)
				got, err := d.f(c.OpenReader(&failAfter{b: body, n: cut}, workers))
				require.ErrorIs(t, err, errBoom, name)
				require.NotErrorIs(t, err, ErrAuthentication, name)
				// Only whole, authenticated segments; at most those wholly
				// read, at least all but the last of them.
				whole := cut / testStride
				require.Zero(t, len(got)%testS, name)
				require.LessOrEqual(t, len(got), whole*testS, name)
				require.GreaterOrEqual(t, len(got), (whole-1)*testS, name)
				require.True(t, bytes.Equal(pt[:len(got)], got), name)
			}
		}
	}
	// Sealing: the output is a prefix of the body, in whole non-final
	// segments.
	for _, cut := range []int{0, 1, testS - 1, testS, testS + 1, 255*testS + 3, 600 * testS} {
		for _, workers := range []int{1, 3} {
			for _, d := range drains {
				name := fmt.Sprintf("seal cut=%d w=%d %s", cut, workers, d.name)
				got, err := d.f(c.SealReader(&failAfter{b: pt, n: cut}, workers))
				require.ErrorIs(t, err, errBoom, name)
				require.Zero(t, len(got)%testStride, name)
				require.LessOrEqual(t, len(got)/testStride, cut/testS, name)
				require.True(t, bytes.Equal(body[:len(got)], got), name)
			}
		}
	}
	// iotest.TimeoutReader: the second read fails.
	got, err := readAll(c.OpenReader(iotest.TimeoutReader(bytes.NewReader(body)), 1), 100)
	require.ErrorIs(t, err, iotest.ErrTimeout)
	require.Empty(t, got)
}

// errReaderAt fails every read that reaches past limit.
type errReaderAt struct {
	r     io.ReaderAt
	limit int64
	fail  atomic.Bool
}

func (e *errReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if e.fail.Load() && off+int64(len(p)) > e.limit {
		n, _ := e.r.ReadAt(p[:max(0, min(int64(len(p)), e.limit-off))], off)
		return n, errBoom
	}
	return e.r.ReadAt(p, off)
}

func TestReaderAtSourceError(t *testing.T) {
	key := testKey(19)
	c := newTestCipher(t, key, testS)
	p := int64(10*testS + 3)
	pt := pattern(int(p), 19)
	body := refSeal(t, key, testS, pt)
	src := &errReaderAt{r: bytes.NewReader(body), limit: 4*testStride + 10}
	src.fail.Store(true)
	_, err := c.NewReaderAt(src, int64(len(body)), 1)
	require.ErrorIs(t, err, errBoom)
	require.NotErrorIs(t, err, ErrAuthentication)

	src.fail.Store(false)
	ra, err := c.NewReaderAt(src, int64(len(body)), 1)
	require.NoError(t, err)
	src.fail.Store(true)
	buf := make([]byte, 6*testS)
	k, err := ra.ReadAt(buf, testS+2)
	require.ErrorIs(t, err, errBoom)
	require.NotErrorIs(t, err, ErrAuthentication)
	// One read of the source covers the whole request: when it fails,
	// nothing of it is released.
	require.Zero(t, k)
	// The final segment is held: reading it needs no source.
	k, err = ra.ReadAt(buf[:3], 10*testS)
	require.NoError(t, err)
	require.Equal(t, pt[10*testS:], buf[:k])
}

// ---- 7. Goroutines ----

// failWriter accepts n bytes, then fails.
type failWriter struct{ n int }

var errWrite = errors.New("test: writer failed")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		w.n -= len(p)
		return len(p), nil
	}
	k := w.n
	w.n = 0
	return k, errWrite
}

func TestNoGoroutineLeak(t *testing.T) {
	key := testKey(20)
	c := newTestCipher(t, key, testS)
	pt := pattern(2000*testS+1, 20)
	body := refSeal(t, key, testS, pt)
	runtime.GC()
	base := runtime.NumGoroutine()

	for _, workers := range []int{1, 2, 4, 8} {
		// Abandoned after a bit of Read.
		r := c.OpenReader(bytes.NewReader(body), workers)
		head := make([]byte, 100)
		_, err := io.ReadFull(r, head)
		require.NoError(t, err)
		require.Equal(t, pt[:100], head)
		s := c.SealReader(bytes.NewReader(pt), workers)
		_, err = io.ReadFull(s, head)
		require.NoError(t, err)

		// WriteTo into a writer that fails, while reading ahead.
		for _, accept := range []int{0, 10, 3<<20 + 7} {
			r = c.OpenReader(bytes.NewReader(body), workers)
			w := &failWriter{n: accept}
			n, err := r.WriteTo(w)
			require.ErrorIs(t, err, errWrite)
			require.Equal(t, int64(accept), n)
			// The bytes not written can still be read, then the error.
			rest, err := readAll(r, 4096)
			require.ErrorIs(t, err, errWrite)
			require.True(t, bytes.Equal(pt[accept:accept+len(rest)], rest))

			s = c.SealReader(bytes.NewReader(pt), workers)
			n, err = s.WriteTo(&failWriter{n: accept})
			require.ErrorIs(t, err, errWrite)
			require.Equal(t, int64(accept), n)
		}
		// WriteTo that fails on the source half way.
		r = c.OpenReader(&failAfter{b: body, n: 1500 * testStride}, workers)
		_, err = r.WriteTo(io.Discard)
		require.ErrorIs(t, err, errBoom)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), base, "goroutines left running")
}
