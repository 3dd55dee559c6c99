package s3crypto_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// Tests of the segmented format (SEG1) through Client, on memS3: ranged
// GETs (correctness, ContentRange, and exactly which ciphertext bytes are
// fetched), readers whose segment size differs from the writer's, tampering,
// legacy unauthenticated ranges of V2/V3 objects, and NewReaderAt. The
// tests against versitygw are in segmented_s3_test.go.

// segS is the segment size of most tests here: the smallest allowed, so
// that objects of several segments stay small.
const segS = format.MinSegmentSize

// segmented returns the options of a client that writes segmented objects
// of size-byte segments (0: the default, 64 KiB).
func segmented(size int) func(*s3crypto.Options) {
	return func(o *s3crypto.Options) {
		o.Format = envelope.FormatSegmented
		o.SegmentSize = size
	}
}

// segCount is the number of segments of a plaintext of p bytes.
func segCount(p int64, s int) int64 {
	if p == 0 {
		return 1
	}
	return (p + int64(s) - 1) / int64(s)
}

// segCiphertext is the stored body size of a plaintext of p bytes.
func segCiphertext(p int64, s int) int64 {
	return p + format.SegmentOverhead*segCount(p, s)
}

// segSpan is the ciphertext [start, end) of the segments that hold
// plaintext bytes [off, off+n) of a p-byte object: segment i is ciphertext
// [i*(s+16), min((i+1)*(s+16), C)).
func segSpan(s int, p, off, n int64) (start, end int64) {
	stride := int64(s) + format.SegmentOverhead
	start = off / int64(s) * stride
	end = min(((off+n-1)/int64(s)+1)*stride, segCiphertext(p, s))
	return start, end
}

// rangeCase is one Range header and what S3 semantics make of it.
type rangeCase struct {
	first, last int64 // last < 0: bytes=first-
	suffix      int64 // > 0: bytes=-suffix
}

func (r rangeCase) String() string {
	switch {
	case r.suffix > 0:
		return "bytes=-" + strconv.FormatInt(r.suffix, 10)
	case r.last < 0:
		return "bytes=" + strconv.FormatInt(r.first, 10) + "-"
	}
	return "bytes=" + strconv.FormatInt(r.first, 10) + "-" + strconv.FormatInt(r.last, 10)
}

// resolve is the plaintext [off, off+n) the range selects in p bytes, or
// false when it selects nothing.
func (r rangeCase) resolve(p int64) (off, n int64, ok bool) {
	if r.suffix > 0 {
		off = max(0, p-r.suffix)
	} else {
		off = r.first
	}
	end := p
	if r.suffix == 0 && r.last >= 0 && r.last < p {
		end = r.last + 1
	}
	if off >= p {
		return 0, 0, false
	}
	return off, end - off, true
}

// countingS3 counts the GETs and HEADs that reach an S3API and records the
// length of each GET response body.
type countingS3 struct {
	s3Full
	mu    sync.Mutex
	gets  int
	heads int
	sent  []int64 // ContentLength of each successful GET
}

func (c *countingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := c.s3Full.GetObject(ctx, in, optFns...)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	if err == nil {
		c.sent = append(c.sent, aws.ToInt64(out.ContentLength))
	}
	return out, err
}

func (c *countingS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	c.mu.Lock()
	c.heads++
	c.mu.Unlock()
	return c.s3Full.HeadObject(ctx, in, optFns...)
}

// take returns and resets the counts.
func (c *countingS3) take() (gets, heads int, sent []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gets, heads, sent = c.gets, c.heads, c.sent
	c.gets, c.heads, c.sent = 0, 0, nil
	return gets, heads, sent
}

// takeRanged returns and resets the body bytes memS3 served to ranged GETs.
func (m *memS3) takeRanged() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.rangedBytes
	m.rangedBytes = 0
	return n
}

// getRange GETs one range through c and reads the body. On an error it
// returns what the body released before it.
func getRange(ctx context.Context, c *s3crypto.Client, bucket, key, rng string) ([]byte, *s3.GetObjectOutput, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(rng)})
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out, err
}

// offsetsNear returns the offsets in [0, limit] within spread of 0, of
// every multiple of s up to size, and of size, plus k random ones, sorted
// and without repeats.
func offsetsNear(rnd *rand.Rand, size, s, spread, k int, limit int64) []int64 {
	var out []int64
	add := func(x int64) {
		if x >= 0 && x <= limit {
			out = append(out, x)
		}
	}
	for b := 0; b <= size; b += s {
		for d := -spread; d <= spread; d++ {
			add(int64(b + d))
		}
	}
	for d := -spread; d <= spread; d++ {
		add(int64(size + d))
	}
	for range k {
		add(rnd.Int64N(limit + 1))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// rangeTally sums what a run of range checks saw.
type rangeTally struct {
	checked, valid, invalid int
	fetched, needed         int64 // ciphertext bytes, over the valid ranges
	maxSuffixExtra          int64 // most bytes a suffix range fetched beyond its segments
}

func (t rangeTally) String() string {
	return fmt.Sprintf("%d ranges (%d valid, %d past the end); %d ciphertext bytes fetched for %d needed; suffix ranges fetched at most %d bytes more than their segments",
		t.checked, t.valid, t.invalid, t.fetched, t.needed, t.maxSuffixExtra)
}

// rangeChecker GETs ranges of one object stored in mem and checks each
// against the plaintext and the ciphertext bytes fetched.
type rangeChecker struct {
	t     testing.TB
	mem   *memS3
	count *countingS3
	c     *s3crypto.Client
	key   string
	pt    []byte
	tally rangeTally
}

func (rc *rangeChecker) check(r rangeCase) {
	t := rc.t
	p := int64(len(rc.pt))
	rc.mem.takeRanged()
	rc.count.take()
	got, out, err := getRange(context.Background(), rc.c, "b", rc.key, r.String())
	fetched := rc.mem.takeRanged()
	gets, heads, _ := rc.count.take()
	rc.tally.checked++
	off, n, ok := r.resolve(p)
	if !ok {
		rc.tally.invalid++
		if !errors.Is(err, envelope.ErrInvalidRange) {
			t.Fatalf("%s of %d bytes: want ErrInvalidRange, got %v", r, p, err)
		}
		return
	}
	rc.tally.valid++
	if err != nil {
		t.Fatalf("%s of %d bytes: %v", r, p, err)
	}
	if !bytes.Equal(rc.pt[off:off+n], got) {
		t.Fatalf("%s of %d bytes: body differs (got %d bytes, want %d at %d)", r, p, len(got), n, off)
	}
	if cr := fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, p); aws.ToString(out.ContentRange) != cr {
		t.Fatalf("%s of %d bytes: ContentRange %q, want %q", r, p, aws.ToString(out.ContentRange), cr)
	}
	if aws.ToInt64(out.ContentLength) != n {
		t.Fatalf("%s of %d bytes: ContentLength %d, want %d", r, p, aws.ToInt64(out.ContentLength), n)
	}
	if gets != 1 || heads != 0 {
		t.Fatalf("%s of %d bytes: %d GETs and %d HEADs, want one GET", r, p, gets, heads)
	}
	start, end := segSpan(segS, p, off, n)
	need := end - start
	rc.tally.fetched += fetched
	rc.tally.needed += need
	if r.suffix > 0 {
		if fetched < need || fetched > need+segS+format.SegmentOverhead {
			t.Fatalf("%s of %d bytes: fetched %d ciphertext bytes, its segments are %d (at most one segment more allowed)", r, p, fetched, need)
		}
		rc.tally.maxSuffixExtra = max(rc.tally.maxSuffixExtra, fetched-need)
	} else if fetched != need {
		t.Fatalf("%s of %d bytes: fetched %d ciphertext bytes, its segments are %d ([%d, %d))", r, p, fetched, need, start, end)
	}
}

// TestSegmentedRangesMem reads ranges of segmented objects of 0, 1, S-1, S,
// S+1 and 3S+7 bytes (S = 4096) for every wrap: every bytes=a- and bytes=-n
// (n up to size+2), and bytes=a-b for all pairs of a set of offsets dense
// around every segment boundary and both ends (b also far past the end),
// plus, for every a in [0, size+2), b at a, a+1, a+15, a+16, a+S-1, a+S,
// a+S+1, size-1, size and size+1. (Every pair a <= b would be 75M GETs for
// the largest object.) With the RSA wrap, whose unwrap costs about a
// millisecond, the single-offset families are sampled near the boundaries.
// Each body must equal the plaintext slice, with its ContentRange and
// ContentLength; ranges that start at or past the end fail with
// ErrInvalidRange; and the ciphertext bytes fetched must be exactly the
// segments that hold the range (at most one segment more for a suffix).
func TestSegmentedRangesMem(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, segS - 1, segS, segS + 1, 3*segS + 7}
	var total rangeTally
	for _, kr := range masterKeys(t) {
		// The RSA unwrap is slow; so is everything under the race detector.
		dense := wrapName(kr) == "AES-GCM" && !raceEnabled
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/%d", wrapName(kr), size), func(t *testing.T) {
				mem := newMemS3()
				count := &countingS3{s3Full: mem}
				c := newClient(t, count, kr, segmented(segS))
				pt := random(size)
				put(t, c, "b", "k", bytes.NewReader(pt))
				require.Len(t, mem.object("k").body, int(segCiphertext(int64(size), segS)))
				rc := &rangeChecker{t: t, mem: mem, count: count, c: c, key: "k", pt: pt}
				p := int64(size)
				limit := p + 1 // a and b range over [0, size+2)
				spread, k := 3, 16
				if !dense {
					spread, k = 1, 4
				}
				pts := offsetsNear(rnd, size, segS, spread, k, limit)
				singles := pts
				if dense {
					singles = nil
					for a := range limit + 1 {
						singles = append(singles, a)
					}
				}
				// bytes=a- and bytes=-n.
				for _, a := range singles {
					rc.check(rangeCase{first: a, last: -1})
				}
				for _, n := range singles {
					if n > 0 {
						rc.check(rangeCase{suffix: n})
					}
				}
				rc.check(rangeCase{suffix: p + 2})
				rc.check(rangeCase{suffix: 1 << 40})
				rc.check(rangeCase{suffix: math.MaxInt64})
				// bytes=a-b: pairs of the dense points, and far ends.
				ends := append(slices.Clone(pts), p+100, p+segS, 1<<40, math.MaxInt64)
				for _, a := range pts {
					for _, b := range ends {
						if b >= a {
							rc.check(rangeCase{first: a, last: b})
						}
					}
				}
				// Every a with a few b.
				if dense {
					for a := range limit + 1 {
						for _, b := range []int64{a, a + 1, a + 15, a + 16, a + segS - 1, a + segS, a + segS + 1, p - 1, p, p + 1} {
							if b >= a {
								rc.check(rangeCase{first: a, last: b})
							}
						}
					}
				}
				t.Logf("%s", rc.tally)
				total.checked += rc.tally.checked
				total.valid += rc.tally.valid
				total.invalid += rc.tally.invalid
				total.fetched += rc.tally.fetched
				total.needed += rc.tally.needed
				total.maxSuffixExtra = max(total.maxSuffixExtra, rc.tally.maxSuffixExtra)
			})
		}
	}
	t.Logf("total: %s", total)
}

// TestSegmentedRangesMismatchedSize reads ranges with a client whose
// SegmentSize (the size it guesses for the first request) differs from the
// writer's: 4 KiB objects read by a 64 KiB client and the reverse. The
// client must find the object's real segment size and refetch exactly the
// segments that hold the range when its guess did not cover them (after a
// HEAD when the guess was past the end). Every range is checked against the
// plaintext; the requests are counted.
func TestSegmentedRangesMismatchedSize(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	kr := masterKeys(t)[0]
	for _, tc := range []struct {
		writer, reader int
		size           int
	}{
		{segS, 0, 40*segS + 5},
		{0, segS, 3*format.DefaultSegmentSize + 5},
		{segS, 2 * segS, 40*segS + 5},
	} {
		ws := orDefault(tc.writer, format.DefaultSegmentSize)
		rs := orDefault(tc.reader, format.DefaultSegmentSize)
		t.Run(fmt.Sprintf("writer%d/reader%d", ws, rs), func(t *testing.T) {
			mem := newMemS3()
			count := &countingS3{s3Full: mem}
			pt := random(tc.size)
			put(t, newClient(t, mem, kr, segmented(tc.writer)), "b", "k", bytes.NewReader(pt))
			c := newClient(t, count, kr, segmented(tc.reader))
			p := int64(tc.size)
			pts := offsetsNear(rnd, tc.size, max(ws, rs), 1, 30, p+1)
			var cases []rangeCase
			for _, a := range pts {
				cases = append(cases, rangeCase{first: a, last: -1})
				if a > 0 {
					cases = append(cases, rangeCase{suffix: a})
				}
				for _, b := range pts {
					if b >= a && (b-a < int64(3*ws) || rnd.IntN(8) == 0) {
						cases = append(cases, rangeCase{first: a, last: b})
					}
				}
			}
			var oneGet, twoGets, viaHead, invalid int
			var fetched, needed int64
			for _, r := range cases {
				count.take()
				got, out, err := getRange(context.Background(), c, "b", "k", r.String())
				gets, heads, sent := count.take()
				off, n, ok := r.resolve(p)
				if !ok {
					require.ErrorIs(t, err, envelope.ErrInvalidRange, "%s", r)
					invalid++
					continue
				}
				require.NoError(t, err, "%s", r)
				if !bytes.Equal(pt[off:off+n], got) {
					t.Fatalf("%s: body differs", r)
				}
				require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, p), aws.ToString(out.ContentRange), "%s", r)
				start, end := segSpan(ws, p, off, n)
				needed += end - start
				for _, b := range sent {
					fetched += b
				}
				switch {
				case gets == 1 && heads == 0:
					oneGet++
					require.GreaterOrEqual(t, sent[0], end-start, "%s", r)
				case gets == 2 && heads == 0:
					twoGets++
					require.Equal(t, []int64{sent[0], end - start}, sent, "%s: the refetch must be exactly the segments", r)
				case gets == 2 && heads == 1:
					viaHead++
					require.Equal(t, []int64{end - start}, sent, "%s: after a HEAD, exactly the segments", r)
				default:
					t.Fatalf("%s: %d GETs, %d HEADs", r, gets, heads)
				}
			}
			t.Logf("%d ranges: %d in one GET, %d refetched, %d after a GET past the end and a HEAD, %d past the end; %d ciphertext bytes fetched for %d needed",
				len(cases), oneGet, twoGets, viaHead, invalid, fetched, needed)
			require.Positive(t, oneGet)
			require.Positive(t, twoGets)
			if ws > rs {
				require.Positive(t, viaHead, "a guess past the end must be exercised")
			}
		})
	}
}

// orDefault returns a unless it is zero, else b.
func orDefault(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// TestSegmentedTamperMem edits a stored 4-segment object behind the
// client's back. A range over a segment with a flipped bit fails with
// ErrAuthentication (from GetObject or Body) and releases none of that
// segment's bytes, while ranges inside the untouched segments still read.
// An object truncated at a segment boundary (or inside a segment) or
// extended fails every range that reaches its (claimed) end, including
// suffix ranges, because the segment the length makes final was not sealed
// as final; ranges short of the end still read.
func TestSegmentedTamperMem(t *testing.T) {
	ctx := context.Background()
	mem := newMemS3()
	c := newClient(t, mem, masterKeys(t)[0], segmented(segS))
	const n = 4
	p := int64((n-1)*segS + 7)
	pt := random(int(p))
	put(t, c, "b", "k", bytes.NewReader(pt))
	orig := mem.object("k")
	stride := int64(segS + format.SegmentOverhead)
	require.Len(t, orig.body, int((n-1)*stride+7+16))
	store := func(b []byte) { mem.set("k", memObject{body: b, meta: orig.meta}) }
	// inside(j) is a range inside segment j only.
	inside := func(j int64) rangeCase {
		first := j*segS + 1
		return rangeCase{first: first, last: min(first+5, p-1)}
	}
	// failsReleasing GETs r and requires ErrAuthentication, with at most
	// the plaintext before byte limit released (as a prefix of the range).
	var checked, released int
	// The plaintext size the stored length claims.
	claimed := func() int64 {
		c := int64(len(mem.object("k").body))
		return c - (c+stride-1)/stride*format.SegmentOverhead
	}
	failsReleasing := func(r rangeCase, limit int64, what string) {
		t.Helper()
		checked++
		got, _, err := getRange(ctx, c, "b", "k", r.String())
		require.ErrorIs(t, err, envelope.ErrAuthentication, "%s: %s", what, r)
		if len(got) == 0 {
			return
		}
		released++
		off, _, ok := r.resolve(claimed())
		require.True(t, ok, "%s: %s", what, r)
		require.LessOrEqual(t, off+int64(len(got)), limit, "%s: %s released bytes of the bad segment", what, r)
		require.True(t, bytes.Equal(pt[off:off+int64(len(got))], got), "%s: %s", what, r)
	}
	reads := func(r rangeCase, what string) {
		t.Helper()
		checked++
		got, _, err := getRange(ctx, c, "b", "k", r.String())
		require.NoError(t, err, "%s: %s", what, r)
		off, m, _ := r.resolve(p)
		require.True(t, bytes.Equal(pt[off:off+m], got), "%s: %s", what, r)
	}

	// A flipped bit: at the start, the middle and in the tag of each segment.
	for i := range int64(n) {
		segEnd := min((i+1)*stride, int64(len(orig.body)))
		for _, pos := range []int64{i * stride, i*stride + (segEnd-i*stride)/2, segEnd - 1} {
			what := fmt.Sprintf("bit flipped in segment %d at %d", i, pos)
			b := bytes.Clone(orig.body)
			b[pos] ^= 0x10
			store(b)
			for j := range int64(n) {
				if j == i {
					failsReleasing(inside(j), i*segS, what)
				} else {
					reads(inside(j), what)
				}
			}
			failsReleasing(rangeCase{first: 0, last: -1}, i*segS, what)
			failsReleasing(rangeCase{first: 0, last: p + 10}, i*segS, what)
			failsReleasing(rangeCase{suffix: p - i*segS}, i*segS, what)
			if i > 0 {
				failsReleasing(rangeCase{first: i*segS - 3, last: i*segS + 3}, i*segS, what)
				reads(rangeCase{first: i*segS - 3, last: i*segS - 1}, what)
			}
			if i < n-1 {
				failsReleasing(rangeCase{suffix: p - i*segS - 1}, i*segS, what) // starts inside segment i
				reads(rangeCase{suffix: p - (i+1)*segS}, what)
			}
			got, err := get(c, "b", "k")
			require.ErrorIs(t, err, envelope.ErrAuthentication, what)
			require.LessOrEqual(t, int64(len(got)), i*segS, what)
			require.True(t, bytes.Equal(pt[:len(got)], got), what)
		}
	}

	// Truncated: at each segment boundary, and inside a segment. The
	// object now claims to end earlier; the segment that would be final
	// there was sealed as not final.
	for _, cut := range []int64{stride, 2 * stride, 3 * stride, stride + 100, 3*stride + 20} {
		what := fmt.Sprintf("truncated to %d bytes", cut)
		store(bytes.Clone(orig.body[:cut]))
		lastSeg := (claimed() - 1) / segS
		for j := range lastSeg {
			reads(inside(j), what)
		}
		failsReleasing(inside(lastSeg), lastSeg*segS, what)
		failsReleasing(rangeCase{first: lastSeg*segS + 2, last: -1}, lastSeg*segS, what)
		failsReleasing(rangeCase{first: 0, last: -1}, lastSeg*segS, what)
		failsReleasing(rangeCase{first: 1, last: p - 1}, lastSeg*segS, what)
		failsReleasing(rangeCase{suffix: 1}, lastSeg*segS, what)
		failsReleasing(rangeCase{suffix: 3 * segS}, lastSeg*segS, what)
		// A range that starts past the claimed end cannot be told from one
		// past a real end: the server decides the length.
		_, _, err := getRange(ctx, c, "b", "k", rangeCase{first: claimed(), last: p - 1}.String())
		require.ErrorIs(t, err, envelope.ErrInvalidRange, what)
		checked++
		got, err := get(c, "b", "k")
		require.ErrorIs(t, err, envelope.ErrAuthentication, what)
		require.LessOrEqual(t, int64(len(got)), lastSeg*segS, what)
	}

	// Extended: a segment's worth of garbage, one byte, an empty segment's
	// worth, and a copy of the final segment.
	lastStart := (n - 1) * stride
	for _, tail := range [][]byte{random(int(stride)), {0}, random(format.SegmentOverhead), orig.body[lastStart:]} {
		what := fmt.Sprintf("%d bytes appended", len(tail))
		store(append(bytes.Clone(orig.body), tail...))
		for j := range int64(n - 1) {
			reads(inside(j), what)
		}
		// Segment n-1 (sealed final) now either spans the garbage or is not
		// the last: it does not open either way.
		failsReleasing(inside(n-1), (n-1)*segS, what)
		failsReleasing(rangeCase{first: 0, last: -1}, (n-1)*segS, what)
		failsReleasing(rangeCase{first: (n-1)*segS - 1, last: p + 1000}, (n-1)*segS, what)
		failsReleasing(rangeCase{suffix: 1}, (n-1)*segS, what)
		failsReleasing(rangeCase{suffix: 2 * segS}, (n-1)*segS, what)
		got, err := get(c, "b", "k")
		require.ErrorIs(t, err, envelope.ErrAuthentication, what)
		require.LessOrEqual(t, int64(len(got)), int64((n-1)*segS), what)
	}

	// Segments 0 and 1 swapped: each opens only at its own index.
	b := bytes.Clone(orig.body)
	copy(b[:stride], orig.body[stride:2*stride])
	copy(b[stride:2*stride], orig.body[:stride])
	store(b)
	failsReleasing(inside(0), 0, "swapped")
	failsReleasing(inside(1), segS, "swapped")
	reads(inside(2), "swapped")
	reads(rangeCase{suffix: p - 2*segS}, "swapped")

	store(orig.body)
	reads(rangeCase{first: 0, last: -1}, "restored")
	t.Logf("%d ranges checked on tampered objects; %d of the failing ones released the authenticated segments before the bad one", checked, released)
	require.Positive(t, released)
}

// TestSegmentedLegacyRanges: a Range of a V2 or V3 object is refused
// (ErrRange) by default; with EnableLegacyUnauthenticatedModes (and a
// policy that reads V2) it is decrypted with AES-CTR, unauthenticated, to
// the right slice, for ranges that start anywhere in a 16-byte block.
func TestSegmentedLegacyRanges(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(5, 6))
	kr := masterKeys(t)[0]
	mem := newMemS3()
	for _, f := range []envelope.Format{envelope.FormatV2, envelope.FormatV3} {
		for _, size := range []int{1, 1000, 100005} {
			key := fmt.Sprintf("%v/%d", f, size)
			pt := random(size)
			put(t, newClient(t, mem, kr, variant{format: f}.apply), "b", key, bytes.NewReader(pt))
			for _, strict := range []func(*s3crypto.Options){
				nil,
				func(o *s3crypto.Options) { o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt },
				segmented(segS),
			} {
				opts := []func(*s3crypto.Options){}
				if strict != nil {
					opts = append(opts, strict)
				}
				if f == envelope.FormatV2 && strict == nil {
					continue // the default policy does not read V2 at all
				}
				_, _, err := getRange(ctx, newClient(t, mem, kr, opts...), "b", key, "bytes=0-0")
				require.ErrorIs(t, err, s3crypto.ErrRange, key)
				require.ErrorIs(t, err, envelope.ErrDisallowed, key)
			}
			// A policy that refuses V2 refuses its ranges too.
			if f == envelope.FormatV2 {
				_, _, err := getRange(ctx, newClient(t, mem, kr, func(o *s3crypto.Options) { o.EnableLegacyUnauthenticatedModes = true }), "b", key, "bytes=0-0")
				require.ErrorIs(t, err, envelope.ErrPolicy, key)
			}
			p := int64(size)
			var cases []rangeCase
			for range 40 {
				a := rnd.Int64N(p)
				cases = append(cases, rangeCase{first: a, last: a + rnd.Int64N(min(p, 70000))})
			}
			for _, a := range []int64{0, 1, 15, 16, 17, 31, p - 17, p - 16, p - 15, p - 1, p, p + 1} {
				if a >= 0 {
					cases = append(cases, rangeCase{first: a, last: a + 33}, rangeCase{first: a, last: -1}, rangeCase{first: a, last: a})
				}
				if a > 0 {
					cases = append(cases, rangeCase{suffix: a})
				}
			}
			for _, guess := range []int{0, segS} {
				c := newClient(t, mem, kr, func(o *s3crypto.Options) {
					o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
					o.EnableLegacyUnauthenticatedModes = true
					o.SegmentSize = guess
				})
				for _, r := range cases {
					got, out, err := getRange(ctx, c, "b", key, r.String())
					off, m, ok := r.resolve(p)
					if !ok {
						require.ErrorIs(t, err, envelope.ErrInvalidRange, "%s %s", key, r)
						continue
					}
					require.NoError(t, err, "%s %s", key, r)
					require.True(t, bytes.Equal(pt[off:off+m], got), "%s %s: body differs", key, r)
					require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", off, off+m-1, p), aws.ToString(out.ContentRange), "%s %s", key, r)
					require.Equal(t, m, aws.ToInt64(out.ContentLength), "%s %s", key, r)
				}
			}
		}
	}
}

// TestSegmentedReaderAtMem reads a 3-segment object (S = 4096, 2S+5 bytes)
// through Client.NewReaderAt: Size, then ReadAt at every offset in
// [0, size+2] with lengths around every boundary and to and past the end,
// and every length at offsets near the segment boundaries; each read must
// return the plaintext slice (io.EOF when it reaches past the end), in at
// most one GET of exactly the segments it needs (the final segment,
// opened when the reader is made, is held).
func TestSegmentedReaderAtMem(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(7, 8))
	mem := newMemS3()
	count := &countingS3{s3Full: mem}
	c := newClient(t, count, masterKeys(t)[0], segmented(segS))
	p := int64(2*segS + 5)
	pt := random(int(p))
	put(t, c, "b", "k", bytes.NewReader(pt))
	stride := int64(segS + format.SegmentOverhead)
	cSize := segCiphertext(p, segS)
	count.take()
	mem.takeRanged()

	ra, err := c.NewReaderAt(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	require.NoError(t, err)
	require.Equal(t, p, ra.Size())
	gets, heads, _ := count.take()
	require.Equal(t, 1, gets, "NewReaderAt: one GET (the final segment)")
	require.Equal(t, 1, heads)
	require.Equal(t, cSize-2*stride, mem.takeRanged(), "NewReaderAt fetches only the final segment")

	lastStart := 2 * int64(segS)
	var reads int
	var fetched int64
	buf := make([]byte, p+10)
	readAt := func(off, n int64) {
		reads++
		got, err := ra.ReadAt(buf[:n], off)
		gets, _, _ := count.take()
		f := mem.takeRanged()
		fetched += f
		want := max(0, min(n, p-off))
		if int64(got) != want {
			t.Fatalf("ReadAt(%d, %d): %d bytes, want %d (err %v)", n, off, got, want, err)
		}
		if !bytes.Equal(pt[min(off, p):min(off, p)+want], buf[:got]) {
			t.Fatalf("ReadAt(%d, %d): bytes differ", n, off)
		}
		switch {
		case off+n > p || off >= p: // as bytes.Reader and io.SectionReader, EOF at the end even for no bytes
			if err != io.EOF {
				t.Fatalf("ReadAt(%d, %d): %v, want io.EOF", n, off, err)
			}
		case err != nil:
			t.Fatalf("ReadAt(%d, %d): %v", n, off, err)
		}
		// Only the segments before the final one are fetched.
		var need, segs int64
		if stop := min(off+n, lastStart); off < stop {
			need = ((stop-1)/segS+1)*stride - off/segS*stride
			segs = (stop-1)/segS + 1 - off/segS
		}
		if f != need {
			t.Fatalf("ReadAt(%d, %d): %d GETs of %d bytes, want %d bytes", n, off, gets, f, need)
		}
		// One GET per ReadAt (per 8 MiB), none when the final segment,
		// held since NewReaderAt, is all it needs.
		wantGets := 0
		if need > 0 {
			wantGets = 1
		}
		if gets != wantGets {
			t.Fatalf("ReadAt(%d, %d): %d GETs for %d segments, want %d", n, off, gets, segs, wantGets)
		}
	}
	step := int64(1)
	if raceEnabled {
		step = 7
	}
	for off := int64(0); off <= p+2; off += step {
		for _, n := range []int64{0, 1, 2, 15, 16, 17, segS - 1, segS, segS + 1, 2 * segS, p - off - 1, p - off, p - off + 1, p + 3} {
			if n >= 0 {
				readAt(off, n)
			}
		}
	}
	spread := 2
	if raceEnabled {
		spread = 0
	}
	for _, off := range offsetsNear(rnd, int(p), segS, spread, 2, p+2) {
		for n := int64(0); n <= p+2-off; n += step {
			readAt(off, n)
		}
	}
	_, err = ra.ReadAt(buf[:1], -1)
	require.Error(t, err)
	t.Logf("%d ReadAt calls checked, %d ciphertext bytes fetched (all exactly the segments needed, one GET each)", reads, fetched)

	// Range and PartNumber are refused.
	_, err = c.NewReaderAt(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Range: aws.String("bytes=0-1")})
	require.Error(t, err)

	// An empty object: Size 0, every read io.EOF (as bytes.Reader's).
	put(t, c, "b", "empty", bytes.NewReader(nil))
	ra0, err := c.NewReaderAt(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("empty")})
	require.NoError(t, err)
	require.Zero(t, ra0.Size())
	k, err := ra0.ReadAt(buf[:0], 0)
	require.Equal(t, io.EOF, err)
	require.Zero(t, k)
	k, err = ra0.ReadAt(buf[:1], 0)
	require.Equal(t, io.EOF, err)
	require.Zero(t, k)

	// Other formats cannot be read at random with authentication.
	for _, f := range []envelope.Format{envelope.FormatV2, envelope.FormatV3} {
		key := "legacy-" + f.String()
		kr := masterKeys(t)[0]
		put(t, newClient(t, mem, kr, variant{format: f}.apply), "b", key, bytes.NewReader(random(100)))
		rd := newClient(t, mem, kr, func(o *s3crypto.Options) {
			o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
			o.EnableLegacyUnauthenticatedModes = true
		})
		_, err := rd.NewReaderAt(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String(key)})
		require.ErrorIs(t, err, envelope.ErrUnsupported, key)
	}
}

// TestSegmentedReaderAtConcurrent reads a 100-segment object from several
// goroutines at once through one ReaderAt (run it with -race).
func TestSegmentedReaderAtConcurrent(t *testing.T) {
	ctx := context.Background()
	mem := newMemS3()
	c := newClient(t, mem, masterKeys(t)[0], segmented(segS))
	p := int64(100*segS + 3)
	pt := random(int(p))
	put(t, c, "b", "k", bytes.NewReader(pt))
	ra, err := c.NewReaderAt(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 9))
			buf := make([]byte, 5*segS)
			for range 200 {
				off := rnd.Int64N(p + 1)
				n := rnd.Int64N(int64(len(buf)) + 1)
				k, err := ra.ReadAt(buf[:n], off)
				reads.Add(1)
				want := min(n, p-off)
				if int64(k) != want || !bytes.Equal(pt[off:off+want], buf[:k]) {
					errs <- fmt.Errorf("ReadAt(%d, %d): %d bytes (err %v), want %d", n, off, k, err, want)
					return
				}
				if (off+n > p) != (err == io.EOF) || (err != nil && err != io.EOF) {
					errs <- fmt.Errorf("ReadAt(%d, %d): err %v", n, off, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d concurrent ReadAt calls", reads.Load())
}

// TestSegmentedReaderAtReplacedMem replaces the object under a ReaderAt on
// memS3, which ignores If-Match (and gives every object the same ETag): the
// reads that fetch segments then get the new object's bytes, which do not
// open under the old key (ErrAuthentication, nothing released); reads
// inside the final segment, held since NewReaderAt, still return the old
// object's bytes. Against a real server (segmented_s3_test.go) the If-Match
// precondition turns the replacement into ErrConcurrentModification.
func TestSegmentedReaderAtReplacedMem(t *testing.T) {
	ctx := context.Background()
	mem := newMemS3()
	c := newClient(t, mem, masterKeys(t)[0], segmented(segS))
	p := int64(3*segS + 7)
	pt := random(int(p))
	for _, newSize := range []int64{p, p + segS, 5} {
		put(t, c, "b", "k", bytes.NewReader(pt))
		ra, err := c.NewReaderAt(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
		require.NoError(t, err)
		buf := make([]byte, 100)
		_, err = ra.ReadAt(buf, 10)
		require.NoError(t, err)
		require.Equal(t, pt[10:110], buf)

		put(t, c, "b", "k", bytes.NewReader(random(int(newSize))))
		k, err := ra.ReadAt(buf, 10)
		require.ErrorIs(t, err, envelope.ErrAuthentication, "replaced by %d bytes", newSize)
		require.NotErrorIs(t, err, s3crypto.ErrConcurrentModification)
		require.Zero(t, k)
		k, err = ra.ReadAt(buf[:7], 3*segS)
		require.NoError(t, err, "the final segment is held")
		require.Equal(t, pt[3*segS:], buf[:k])
	}
}
