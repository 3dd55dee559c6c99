package s3crypto_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// Tests of the segmented format against versitygw (see s3_test.go); they
// fail, never skip, without it.

// meteredS3 wraps an S3API and counts, for the GETs of objects (not of
// instruction files), the requests, the body bytes the server declared
// (ContentLength) and the body bytes the client read; and the HEADs.
type meteredS3 struct {
	s3Full
	read     atomic.Int64
	mu       sync.Mutex
	gets     int
	heads    int
	declared int64
	ranges   []string
}

func (m *meteredS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := m.s3Full.GetObject(ctx, in, optFns...)
	if strings.HasSuffix(aws.ToString(in.Key), format.InstructionSuffix) {
		return out, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	m.ranges = append(m.ranges, aws.ToString(in.Range))
	if err != nil {
		return out, err
	}
	m.declared += aws.ToInt64(out.ContentLength)
	out.Body = &countingBody{ReadCloser: out.Body, n: &m.read}
	return out, nil
}

func (m *meteredS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	m.mu.Lock()
	m.heads++
	m.mu.Unlock()
	return m.s3Full.HeadObject(ctx, in, optFns...)
}

// meterReading is what a meteredS3 counted since the last take.
type meterReading struct {
	gets, heads    int
	declared, read int64
	ranges         []string
}

func (m *meteredS3) take() meterReading {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := meterReading{gets: m.gets, heads: m.heads, declared: m.declared, read: m.read.Swap(0), ranges: m.ranges}
	m.gets, m.heads, m.declared, m.ranges = 0, 0, 0, nil
	return r
}

// rawBody reads what the server stores for key.
func rawBody(t testing.TB, api *s3.Client, bucket, key string) ([]byte, map[string]string) {
	t.Helper()
	out, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	require.NoError(t, err)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return b, out.Metadata
}

// TestSegmentedS3RoundTrips puts and gets segmented objects of 0, 1,
// 64 KiB-1, 64 KiB, 64 KiB+1 and 5 MiB+3 bytes on versitygw, for every
// wrap, with the envelope in metadata and in an instruction file, from a
// seekable body and from one of unknown length; checks the stored length
// and envelope and HeadObject's ContentLength. The 5 MiB+3 object is also
// written with 4 KiB segments (1281 of them).
func TestSegmentedS3RoundTrips(t *testing.T) {
	api, bucket := realS3(t)
	ctx := context.Background()
	for _, kr := range masterKeys(t) {
		for _, instr := range []bool{false, true} {
			for _, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 5<<20 + 3, -(5<<20 + 3)} {
				segSize := format.DefaultSegmentSize
				if size < 0 {
					size, segSize = -size, segS
				}
				name := fmt.Sprintf("%s/instruction=%v/%d/S=%d", wrapName(kr), instr, size, segSize)
				t.Run(name, func(t *testing.T) {
					c := newClient(t, api, kr, segmented(segSize), func(o *s3crypto.Options) { o.InstructionFile = instr })
					pt := random(size)
					for _, body := range []struct {
						name string
						r    io.Reader
					}{{"seekable", bytes.NewReader(pt)}, {"stream", io.MultiReader(bytes.NewReader(pt))}} {
						key := "seg-rt/" + name + "/" + body.name
						put(t, c, bucket, key, body.r)
						got, err := get(c, bucket, key)
						require.NoError(t, err, body.name)
						require.True(t, bytes.Equal(pt, got), "%s: plaintext differs", body.name)

						stored, meta := rawBody(t, api, bucket, key)
						require.Len(t, stored, int(segCiphertext(int64(size), segSize)), body.name)
						require.Equal(t, "1", meta["x-s3e-v"])
						require.Equal(t, fmt.Sprint(segSize), meta["x-s3e-s"])
						require.Len(t, meta["x-s3e-i"], 44)
						require.Len(t, meta["x-s3e-d"], 44)
						_, inMeta := meta["x-s3e-k"]
						require.Equal(t, !instr, inMeta, "wrapped key in object metadata")
						for k := range meta {
							require.False(t, strings.HasPrefix(k, "x-amz-"), "AWS envelope key %s on a segmented object", k)
						}
						if instr {
							ib, _ := rawBody(t, api, bucket, key+format.InstructionSuffix)
							require.Contains(t, string(ib), `"x-s3e-k"`)
						}
						h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
						require.NoError(t, err)
						require.Equal(t, int64(size), aws.ToInt64(h.ContentLength), "HeadObject ContentLength")
					}
				})
			}
		}
	}
}

// TestSegmentedS3Ranges reads a sample of ranges of a 5 MiB+3 object (64
// KiB and 4 KiB segments, the reader's SegmentSize matching) from versitygw,
// metering the GETs: each range takes one GET that declares and delivers
// exactly the ciphertext of the segments that hold it (a suffix range at
// most one segment more). Ranges past the end fail with ErrInvalidRange,
// and a reader with the other segment size still reads every range right.
func TestSegmentedS3Ranges(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(11, 12))
	kr := masterKeys(t)[0]
	m := &meteredS3{s3Full: raw}
	p := int64(5<<20 + 3)
	pt := random(int(p))
	for _, s := range []int{format.DefaultSegmentSize, segS} {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			key := fmt.Sprintf("seg-ranges/%d", s)
			put(t, newClient(t, raw, kr, segmented(s)), bucket, key, bytes.NewReader(pt))
			stride := int64(s) + format.SegmentOverhead
			var cases []rangeCase
			for _, a := range []int64{0, 1, 15, 16, 17, int64(s) - 1, int64(s), int64(s) + 1, p / 2, p - int64(s) - 1, p - 4, p - 3, p - 1} {
				cases = append(cases,
					rangeCase{first: a, last: a}, rangeCase{first: a, last: a + 1},
					rangeCase{first: a, last: a + int64(s)}, rangeCase{first: a, last: a + 3*int64(s) + 5},
					rangeCase{first: a, last: -1}, rangeCase{first: a, last: p + 100})
			}
			for range 30 {
				a := rnd.Int64N(p)
				cases = append(cases, rangeCase{first: a, last: a + rnd.Int64N(1<<20)}, rangeCase{first: a, last: -1})
			}
			for _, n := range []int64{1, 2, 3, 4, 5, 100, int64(s) - 1, int64(s), int64(s) + 1, int64(s) + 4, 2*int64(s) + 3, 1 << 20, p - 1, p, p + 1, 1 << 40} {
				cases = append(cases, rangeCase{suffix: n})
			}
			past := []rangeCase{{first: p, last: -1}, {first: p, last: p + 10}, {first: p + 1, last: p + 1}, {first: 1 << 40, last: -1}}

			c := newClient(t, m, kr, segmented(s))
			var fetched, needed, maxSuffixExtra int64
			for _, r := range cases {
				m.take()
				got, out, err := getRange(ctx, c, bucket, key, r.String())
				mr := m.take()
				require.NoError(t, err, "%s", r)
				off, n, _ := r.resolve(p)
				require.True(t, bytes.Equal(pt[off:off+n], got), "%s: body differs", r)
				require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, p), aws.ToString(out.ContentRange), "%s", r)
				require.Equal(t, n, aws.ToInt64(out.ContentLength), "%s", r)
				require.Equal(t, 1, mr.gets, "%s: GETs %v", r, mr.ranges)
				require.Zero(t, mr.heads, "%s", r)
				start, end := segSpan(s, p, off, n)
				fetched += mr.declared
				needed += end - start
				if r.suffix > 0 {
					require.GreaterOrEqual(t, mr.declared, end-start, "%s", r)
					require.Less(t, mr.declared, end-start+stride, "%s: more than one segment too many", r)
					maxSuffixExtra = max(maxSuffixExtra, mr.declared-(end-start))
				} else {
					require.Equal(t, end-start, mr.declared, "%s: server sent more than the segments (%v)", r, mr.ranges)
					require.Equal(t, end-start, mr.read, "%s: client read more than the segments", r)
				}
			}
			for _, r := range past {
				_, _, err := getRange(ctx, c, bucket, key, r.String())
				require.ErrorIs(t, err, envelope.ErrInvalidRange, "%s", r)
			}
			t.Logf("S=%d: %d ranges, one GET each; %d ciphertext bytes fetched for %d needed; suffix ranges at most %d bytes more than their segments",
				s, len(cases), fetched, needed, maxSuffixExtra)

			// A reader that guesses the other segment size.
			other := format.DefaultSegmentSize + segS - s
			co := newClient(t, m, kr, segmented(other))
			var reqs, heads int
			m.take()
			for _, r := range cases {
				got, _, err := getRange(ctx, co, bucket, key, r.String())
				require.NoError(t, err, "reader S=%d: %s", other, r)
				off, n, _ := r.resolve(p)
				require.True(t, bytes.Equal(pt[off:off+n], got), "reader S=%d: %s: body differs", other, r)
				mr := m.take()
				require.LessOrEqual(t, mr.gets, 2, "%s: %v", r, mr.ranges)
				reqs += mr.gets
				heads += mr.heads
			}
			t.Logf("reader guessing S=%d: %d GETs and %d HEADs for %d ranges", other, reqs, heads, len(cases))
		})
	}
	// An empty object has no range.
	put(t, newClient(t, raw, kr, segmented(0)), bucket, "seg-ranges/empty", bytes.NewReader(nil))
	for _, r := range []string{"bytes=0-0", "bytes=0-", "bytes=-1", "bytes=5-10"} {
		_, _, err := getRange(ctx, newClient(t, raw, kr, segmented(0)), bucket, "seg-ranges/empty", r)
		require.ErrorIs(t, err, envelope.ErrInvalidRange, r)
	}
}

// TestSegmentedS3ReaderAt reads a 5 MiB+3 object through NewReaderAt (the
// envelope in metadata and in an instruction file), then replaces the
// object: the next ReadAt that needs a segment fails with
// ErrConcurrentModification (its GETs carry If-Match), and reads of the
// final segment, held since NewReaderAt, still return the old bytes.
func TestSegmentedS3ReaderAt(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(13, 14))
	kr := masterKeys(t)[0]
	m := &meteredS3{s3Full: raw}
	p := int64(5<<20 + 3)
	s := int64(format.DefaultSegmentSize)
	for _, instr := range []bool{false, true} {
		t.Run(fmt.Sprintf("instruction=%v", instr), func(t *testing.T) {
			c := newClient(t, m, kr, segmented(0), func(o *s3crypto.Options) { o.InstructionFile = instr })
			key := fmt.Sprintf("seg-readerat/%v", instr)
			pt := random(int(p))
			put(t, c, bucket, key, bytes.NewReader(pt))
			ra, err := c.NewReaderAt(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			require.NoError(t, err)
			require.Equal(t, p, ra.Size())
			buf := make([]byte, 3<<20)
			m.take()
			for range 40 {
				off := rnd.Int64N(p + 1)
				n := rnd.Int64N(min(int64(len(buf)), p-off+10) + 1)
				k, err := ra.ReadAt(buf[:n], off)
				want := min(n, p-off)
				require.Equal(t, want, int64(k), "ReadAt(%d, %d)", n, off)
				require.True(t, bytes.Equal(pt[off:off+want], buf[:k]), "ReadAt(%d, %d)", n, off)
				if off+n > p {
					require.Equal(t, io.EOF, err, "ReadAt(%d, %d)", n, off)
				} else {
					require.NoError(t, err, "ReadAt(%d, %d)", n, off)
				}
			}
			for _, off := range []int64{0, s - 1, s, p - s, p - 3, p - 1} {
				k, err := ra.ReadAt(buf[:3], off)
				want := min(3, p-off)
				require.Equal(t, want, int64(k))
				require.Equal(t, pt[off:off+want], buf[:k])
				if want < 3 {
					require.Equal(t, io.EOF, err)
				}
			}
			mr := m.take()
			t.Logf("46 ReadAt calls: %d GETs, %d ciphertext bytes", mr.gets, mr.declared)

			// Replace the object (same size, new data key).
			put(t, c, bucket, key, bytes.NewReader(random(int(p))))
			for _, off := range []int64{0, s + 5, p - s - 1} {
				k, err := ra.ReadAt(buf[:10], off)
				require.ErrorIs(t, err, s3crypto.ErrConcurrentModification, "ReadAt at %d after the object was replaced", off)
				require.NotErrorIs(t, err, envelope.ErrAuthentication)
				require.Zero(t, k)
			}
			last := (p - 1) / s * s
			k, err := ra.ReadAt(buf[:3], last)
			require.NoError(t, err, "the final segment is held")
			require.Equal(t, pt[last:last+3], buf[:k])
		})
	}
}

// TestSegmentedS3Rewrap rotates the master key of segmented objects (the
// envelope in metadata and in an instruction file, AES to AES and AES to
// RSA): the stored body is byte for byte the same, only x-s3e-k, -w and -m
// change, the new key reads it (whole and by range) and the old one cannot.
func TestSegmentedS3Rewrap(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	old := newAES(t, "seg-old")
	for _, instr := range []bool{false, true} {
		for _, nk := range []keyring.Keyring{newAES(t, "seg-new"), newRSA(t, 1, "seg-new-rsa")} {
			name := fmt.Sprintf("instruction=%v/to-%s", instr, wrapName(nk))
			t.Run(name, func(t *testing.T) {
				key := "seg-rewrap/" + name
				pt := random(3*segS*17 + 9)
				put(t, newClient(t, raw, old, segmented(segS), func(o *s3crypto.Options) { o.InstructionFile = instr }), bucket, key, bytes.NewReader(pt))
				bodyBefore, metaBefore := rawBody(t, raw, bucket, key)
				envBefore := metaBefore
				if instr {
					ib, _ := rawBody(t, raw, bucket, key+format.InstructionSuffix)
					parsed, err := format.ParseInstruction(ib)
					require.NoError(t, err)
					envBefore = parsed
				}

				c := clientFor(t, raw, nk, []keyring.Keyring{old})
				out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key, EnforceRotation: true})
				require.NoError(t, err)
				require.Equal(t, s3crypto.Rewrapped, out.Status)
				require.True(t, out.Written)
				require.Equal(t, envelope.FormatSegmented, out.Format)
				if instr {
					require.True(t, out.InstructionFile)
				} else {
					require.False(t, out.InstructionFile)
				}

				bodyAfter, metaAfter := rawBody(t, raw, bucket, key)
				require.True(t, bytes.Equal(bodyBefore, bodyAfter), "the stored body changed")
				envAfter := metaAfter
				if instr {
					require.Equal(t, metaBefore, metaAfter, "object metadata changed by an instruction-file rewrap")
					ib, _ := rawBody(t, raw, bucket, key+format.InstructionSuffix)
					parsed, err := format.ParseInstruction(ib)
					require.NoError(t, err)
					envAfter = parsed
				}
				require.NotEqual(t, envBefore["x-s3e-k"], envAfter["x-s3e-k"], "the wrapped key must change")
				b, a := maps.Clone(envBefore), maps.Clone(envAfter)
				for _, k := range []string{"x-s3e-k", "x-s3e-w", "x-s3e-m"} {
					delete(b, k)
					delete(a, k)
				}
				require.Equal(t, b, a, "fields other than the wrap changed")
				if !instr {
					for _, k := range []string{"x-s3e-v", "x-s3e-s", "x-s3e-i", "x-s3e-d"} {
						require.NotEmpty(t, metaAfter[k], k)
					}
				}

				readsAs(t, reader(t, raw, nk), bucket, key, pt)
				got, _, err := getRange(ctx, reader(t, raw, nk), bucket, key, "bytes=5000-70000")
				require.NoError(t, err)
				require.Equal(t, pt[5000:70001], got)
				_, err = get(reader(t, raw, old), bucket, key)
				require.ErrorIs(t, err, envelope.ErrNoMasterKey)
				_, _, err = getRange(ctx, reader(t, raw, old), bucket, key, "bytes=0-0")
				require.ErrorIs(t, err, envelope.ErrNoMasterKey)

				out, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				require.Equal(t, s3crypto.AlreadyCurrent, out.Status)
			})
		}
	}
}

// TestSegmentedS3RangeTiming uploads one generated segmented object of 1
// GiB (128 MiB under the race detector; never held in memory) and times a
// full GET read to io.Discard against a 1 MiB range in the middle, the
// median of 5 each. Only correctness is asserted: the full read's length,
// and the range's bytes against the generator's at that offset.
func TestSegmentedS3RangeTiming(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	size := int64(1 << 30)
	if raceEnabled {
		size = 128 << 20
	}
	const seed = 21
	m := &meteredS3{s3Full: raw}
	c := newClient(t, m, masterKeys(t)[0], segmented(0))
	key := "seg-timing/big"
	start := time.Now()
	put(t, c, bucket, key, &generator{size: size, seed: seed})
	upload := time.Since(start)
	t.Cleanup(func() {
		_, err := raw.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
		require.NoError(t, err)
	})

	off := size/2 + 12345
	const n = 1 << 20
	want := make([]byte, n)
	g := &generator{size: size, seed: seed}
	_, err := g.Seek(off, io.SeekStart)
	require.NoError(t, err)
	_, err = io.ReadFull(g, want)
	require.NoError(t, err)

	median := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	var full, ranged []time.Duration
	var rangeFetched int64
	for range 5 {
		start := time.Now()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		require.NoError(t, err)
		got, err := io.Copy(io.Discard, out.Body)
		out.Body.Close()
		full = append(full, time.Since(start))
		require.NoError(t, err)
		require.Equal(t, size, got)

		m.take()
		start = time.Now()
		body, out2, err := getRange(ctx, c, bucket, key, fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		ranged = append(ranged, time.Since(start))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, body), "range bytes differ from the generator's")
		require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size), aws.ToString(out2.ContentRange))
		rangeFetched = m.take().declared
	}
	s0, s1 := segSpan(format.DefaultSegmentSize, size, off, n)
	require.Equal(t, s1-s0, rangeFetched)
	mf, mr := median(full), median(ranged)
	t.Logf("%d MiB segmented object (64 KiB segments; race detector: %v): upload %v; full GET to io.Discard median %v (%.0f MiB/s) of %v; 1 MiB range at %d median %v of %v, %d ciphertext bytes fetched; full/range = %.0fx",
		size>>20, raceEnabled, upload.Round(time.Millisecond), mf.Round(time.Millisecond), float64(size)/(1<<20)/mf.Seconds(), full,
		off, mr.Round(time.Microsecond), ranged, rangeFetched, float64(mf)/float64(mr))
}
