package s3crypto_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/s3envelope/s3envelope/envelope"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// Part sizing (an in-memory double that stores nothing), the Uploader's
// and Downloader's memory (a disk-backed double), and gigabyte round trips
// through versitygw.

// discardS3 is a multipart S3 double that stores nothing: it records each
// part's size and discards the bodies unread. UploadPart fails once accept
// parts have been accepted (0: never).
type discardS3 struct {
	noRewrapS3
	accept int

	mu        sync.Mutex
	sizes     map[int32]int64
	completed []types.CompletedPart
	created   int
	aborted   int
	puts      int
}

var errEnough = errors.New("discardS3: enough parts seen")

func (d *discardS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if _, err := io.Copy(io.Discard, in.Body); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.puts++
	d.mu.Unlock()
	return &s3.PutObjectOutput{ETag: aws.String(`"put"`)}, nil
}

func (d *discardS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return nil, errors.New("discardS3 stores nothing")
}

func (d *discardS3) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return nil, errors.New("discardS3 stores nothing")
}

func (d *discardS3) DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return nil, errors.New("discardS3 stores nothing")
}

func (d *discardS3) CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.created++
	d.sizes = map[int32]int64{}
	return &s3.CreateMultipartUploadOutput{UploadId: aws.String("discard")}, nil
}

func (d *discardS3) UploadPart(_ context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.accept > 0 && len(d.sizes) >= d.accept {
		return nil, errEnough
	}
	n := aws.ToInt32(in.PartNumber)
	d.sizes[n] = aws.ToInt64(in.ContentLength)
	return &s3.UploadPartOutput{ETag: aws.String(fmt.Sprintf(`"%d"`, n))}, nil
}

func (d *discardS3) CompleteMultipartUpload(_ context.Context, in *s3.CompleteMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.completed = in.MultipartUpload.Parts
	return &s3.CompleteMultipartUploadOutput{ETag: aws.String(`"mpu"`)}, nil
}

func (d *discardS3) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted++
	return &s3.AbortMultipartUploadOutput{}, nil
}

// zeros is a fast plaintext of size zero bytes, seekable (known length)
// unless wrapped in io.MultiReader.
type zeros struct{ size, pos int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.pos >= z.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.size-z.pos)]
	clear(p)
	z.pos += int64(len(p))
	return len(p), nil
}

func (z *zeros) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += z.pos
	case io.SeekEnd:
		off += z.size
	}
	z.pos = off
	return off, nil
}

// partPlaintext is the plaintext length of a part of ct stored bytes
// (without the V2/V3 tag: the caller removes it from the last part).
func partPlaintext(t testing.TB, f envelope.Format, ct int64, last bool) int64 {
	if f != envelope.FormatSegmented {
		return ct
	}
	stride := int64(format.DefaultSegmentSize + 16)
	if !last {
		require.Zero(t, ct%stride, "a part that does not end the object is not whole segments")
	}
	return ct - 16*((ct+stride-1)/stride)
}

// TestUploadPartSizing: the part size is raised to MinPartSize, rounded up
// to the format's alignment (16 bytes, or the 64 KiB segment), and, for a
// body of known length, grown so that the object fits in MaxUploadParts
// parts — but no more than that needs.
//
// Growth only happens past 10000 × 5 MiB (52 GB). One such body (of
// zeros, V3) is uploaded whole to a double that discards it, and every
// part checked; the other huge bodies declare their size and the double
// fails them once it has seen 4 parts, whose size is checked. Smaller
// bodies are uploaded whole.
func TestUploadPartSizing(t *testing.T) {
	kr := masterKeys(t)[0]
	ctx := context.Background()
	align := func(f envelope.Format) int64 {
		if f == envelope.FormatSegmented {
			return format.DefaultSegmentSize
		}
		return 16
	}
	for _, tc := range []struct {
		format   envelope.Format
		size     int64
		partSize int64 // option
		want     int64 // plaintext bytes per part
		whole    bool  // uploaded whole, not failed after 4 parts
	}{
		// Huge: failed after 4 parts.
		{envelope.FormatV2, 60e9, minPartSize, 6_000_000, false},
		{envelope.FormatV3, 60e9, minPartSize, 6_000_000, false},
		{envelope.FormatV3, 60e9 + 1, minPartSize, 6_000_016, false},
		{envelope.FormatV3, 60e9, 0, defaultPartSize, false}, // 8 MiB × 10000 > 60 GB: no growth
		{envelope.FormatSegmented, 60e9, minPartSize, 92 << 16, false},
		{envelope.FormatSegmented, 100e9, 0, 153 << 16, false},
		// One byte more than 10000 parts of 5 MiB, uploaded whole (52 GB
		// of zeros through AES: about 8 s here).
		{envelope.FormatV3, maxUploadParts*minPartSize + 1, minPartSize, minPartSize + 16, true},
		// Small, uploaded whole.
		{envelope.FormatV3, 12<<20 + 5, 1, minPartSize, true},
		{envelope.FormatV2, 12<<20 + 5, minPartSize + 1, minPartSize + 16, true},
		{envelope.FormatSegmented, 12<<20 + 5, minPartSize + 1, minPartSize + 64<<10, true},
		{envelope.FormatSegmented, 20 << 20, 0, defaultPartSize, true},
	} {
		huge := !tc.whole
		t.Run(fmt.Sprintf("%v/%d/partsize=%d", tc.format, tc.size, tc.partSize), func(t *testing.T) {
			api := &discardS3{}
			if huge {
				api.accept = 4
			}
			c := newClient(t, api, kr, variant{tc.format, false}.apply)
			up := s3crypto.NewUploader(c, func(o *s3crypto.UploaderOptions) {
				o.PartSize = tc.partSize
				o.Concurrency = 2
			})
			out, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: &zeros{size: tc.size}})
			a := align(tc.format)
			parts := int((tc.size + tc.want - 1) / tc.want)
			// The expected size is the rule's: at least MinPartSize and the
			// option, a multiple of the alignment, as small as fits.
			require.Zero(t, tc.want%a)
			require.GreaterOrEqual(t, tc.want, int64(minPartSize))
			require.GreaterOrEqual(t, tc.want, tc.partSize)
			require.LessOrEqual(t, parts, maxUploadParts)
			requested := tc.partSize
			if requested <= 0 {
				requested = defaultPartSize
			}
			if base := (max(requested, minPartSize) + a - 1) / a * a; tc.want > base {
				// Grown: one alignment unit less would not fit.
				require.Less(t, (tc.want-a)*maxUploadParts, tc.size, "grew more than needed")
			} else {
				require.Equal(t, base, tc.want)
			}

			api.mu.Lock()
			defer api.mu.Unlock()
			if huge {
				require.ErrorIs(t, err, errEnough)
				require.Equal(t, 1, api.aborted)
				require.Len(t, api.sizes, 4)
				for n, ct := range api.sizes {
					require.Equal(t, tc.want, partPlaintext(t, tc.format, ct, false), "part %d", n)
				}
				t.Logf("%d bytes: parts of %d bytes (%d parts)", tc.size, tc.want, parts)
				return
			}
			require.NoError(t, err)
			t.Logf("%d bytes: %d parts of %d bytes", tc.size, out.Parts, tc.want)
			require.Equal(t, parts, out.Parts)
			require.Len(t, api.sizes, parts)
			require.Len(t, api.completed, parts)
			var total int64
			for i, cp := range api.completed {
				n := int32(i + 1)
				require.Equal(t, n, aws.ToInt32(cp.PartNumber), "Complete lists the parts in order")
				require.Equal(t, fmt.Sprintf(`"%d"`, n), aws.ToString(cp.ETag))
				last := int(n) == parts
				ct := api.sizes[n]
				if last && tc.format != envelope.FormatSegmented {
					ct -= format.TagSize
				}
				pt := partPlaintext(t, tc.format, ct, last)
				if last {
					require.LessOrEqual(t, pt, tc.want)
					require.Positive(t, pt)
				} else {
					require.Equal(t, tc.want, pt, "part %d", n)
				}
				total += pt
			}
			require.Equal(t, tc.size, total)
			require.Zero(t, api.aborted)
		})
	}

	// A body of unknown length cannot be sized in advance: one byte
	// longer than 10000 parts, it fails, clearly, and is aborted (52 GB of
	// zeros through AES again).
	t.Run("unknown-length/over-10000-parts", func(t *testing.T) {
		api := &discardS3{}
		c := newClient(t, api, kr)
		up := s3crypto.NewUploader(c, func(o *s3crypto.UploaderOptions) {
			o.PartSize = minPartSize
			o.Concurrency = 2
		})
		start := time.Now()
		out, err := up.Upload(ctx, &s3.PutObjectInput{
			Bucket: aws.String("b"), Key: aws.String("k"),
			Body: io.MultiReader(&zeros{size: maxUploadParts*minPartSize + 1}),
		})
		t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
		require.Nil(t, out)
		require.ErrorContains(t, err, "longer than 10000 parts")
		require.ErrorContains(t, err, "set a larger PartSize")
		require.ErrorContains(t, err, "upload aborted")
		api.mu.Lock()
		defer api.mu.Unlock()
		require.Equal(t, 1, api.aborted)
		require.Nil(t, api.completed)
		require.LessOrEqual(t, len(api.sizes), maxUploadParts)
	})
}

// diskMPU is an S3 double with multipart uploads whose bodies live in
// files, so that the heap measured is the client's own.
type diskMPU struct {
	noRewrapS3
	dir string

	mu      sync.Mutex
	seq     int
	objects map[string]diskObject
	uploads map[string]*diskUpload
}

type diskObject struct {
	path string
	meta map[string]string
	etag string
}

type diskUpload struct {
	key   string
	meta  map[string]string
	parts map[int32]string // files
}

func newDiskMPU(t testing.TB) *diskMPU {
	return &diskMPU{dir: t.TempDir(), objects: map[string]diskObject{}, uploads: map[string]*diskUpload{}}
}

func (d *diskMPU) file() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	return filepath.Join(d.dir, fmt.Sprint(d.seq))
}

func writeFile(path string, r io.Reader, size *int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && size != nil && n != *size {
		err = fmt.Errorf("diskMPU: body of %d bytes, ContentLength %d", n, *size)
	}
	return err
}

func (d *diskMPU) store(key, path string, meta map[string]string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.objects[key]; ok {
		os.Remove(old.path)
	}
	d.seq++
	etag := fmt.Sprintf(`"%d"`, d.seq)
	d.objects[key] = diskObject{path: path, meta: maps.Clone(meta), etag: etag}
	return etag
}

func (d *diskMPU) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	path := d.file()
	if err := writeFile(path, in.Body, in.ContentLength); err != nil {
		return nil, err
	}
	return &s3.PutObjectOutput{ETag: aws.String(d.store(*in.Key, path, in.Metadata))}, nil
}

func (d *diskMPU) lookup(key string, ifMatch *string) (diskObject, int64, error) {
	d.mu.Lock()
	o, ok := d.objects[key]
	d.mu.Unlock()
	if !ok {
		return o, 0, &types.NoSuchKey{}
	}
	if ifMatch != nil && *ifMatch != o.etag {
		return o, 0, &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "ETag does not match"}
	}
	st, err := os.Stat(o.path)
	if err != nil {
		return o, 0, err
	}
	return o, st.Size(), nil
}

func (d *diskMPU) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	o, size, err := d.lookup(*in.Key, in.IfMatch)
	if err != nil {
		return nil, err
	}
	first, last := int64(0), size-1
	if in.Range != nil {
		var ok bool
		if first, last, ok = memRange(*in.Range, size); !ok {
			return nil, &smithy.GenericAPIError{Code: "InvalidRange", Message: "range not satisfiable"}
		}
	}
	f, err := os.Open(o.path)
	if err != nil {
		return nil, err
	}
	return &s3.GetObjectOutput{
		Body: struct {
			io.Reader
			io.Closer
		}{io.NewSectionReader(f, first, last-first+1), f},
		ContentLength: aws.Int64(last - first + 1), Metadata: maps.Clone(o.meta), ETag: aws.String(o.etag),
	}, nil
}

func (d *diskMPU) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	o, size, err := d.lookup(*in.Key, in.IfMatch)
	if err != nil {
		return nil, err
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(size), Metadata: maps.Clone(o.meta), ETag: aws.String(o.etag)}, nil
}

func (d *diskMPU) DeleteObject(_ context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.objects[*in.Key]; ok {
		os.Remove(o.path)
		delete(d.objects, *in.Key)
	}
	return &s3.DeleteObjectOutput{}, nil
}

func (d *diskMPU) CreateMultipartUpload(_ context.Context, in *s3.CreateMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	id := fmt.Sprint("upload-", d.seq)
	d.uploads[id] = &diskUpload{key: *in.Key, meta: maps.Clone(in.Metadata), parts: map[int32]string{}}
	return &s3.CreateMultipartUploadOutput{UploadId: &id}, nil
}

func (d *diskMPU) upload(id *string) (*diskUpload, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.uploads[aws.ToString(id)]
	if !ok {
		return nil, &types.NoSuchUpload{}
	}
	return u, nil
}

func (d *diskMPU) UploadPart(_ context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	u, err := d.upload(in.UploadId)
	if err != nil {
		return nil, err
	}
	path := d.file()
	if err := writeFile(path, in.Body, in.ContentLength); err != nil {
		return nil, err
	}
	n := aws.ToInt32(in.PartNumber)
	d.mu.Lock()
	if old, ok := u.parts[n]; ok {
		os.Remove(old)
	}
	u.parts[n] = path
	d.mu.Unlock()
	return &s3.UploadPartOutput{ETag: aws.String(fmt.Sprintf(`"part-%d"`, n))}, nil
}

func (d *diskMPU) CompleteMultipartUpload(_ context.Context, in *s3.CompleteMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	u, err := d.upload(in.UploadId)
	if err != nil {
		return nil, err
	}
	path := d.file()
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for i, p := range in.MultipartUpload.Parts {
		n := aws.ToInt32(p.PartNumber)
		if i > 0 && n <= aws.ToInt32(in.MultipartUpload.Parts[i-1].PartNumber) {
			return nil, &smithy.GenericAPIError{Code: "InvalidPartOrder"}
		}
		d.mu.Lock()
		pp, ok := u.parts[n]
		d.mu.Unlock()
		if !ok || aws.ToString(p.ETag) != fmt.Sprintf(`"part-%d"`, n) {
			return nil, &smithy.GenericAPIError{Code: "InvalidPart"}
		}
		src, err := os.Open(pp)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(f, src)
		src.Close()
		if err != nil {
			return nil, err
		}
		os.Remove(pp)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	delete(d.uploads, *in.UploadId)
	d.mu.Unlock()
	return &s3.CompleteMultipartUploadOutput{ETag: aws.String(d.store(u.key, path, u.meta))}, nil
}

func (d *diskMPU) AbortMultipartUpload(_ context.Context, in *s3.AbortMultipartUploadInput, _ ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	u, err := d.upload(in.UploadId)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range u.parts {
		os.Remove(p)
	}
	delete(d.uploads, *in.UploadId)
	return &s3.AbortMultipartUploadOutput{}, nil
}

// measure runs fn with the heap sampled, after a GC, and returns its peak,
// the heap before, and the time taken.
func measure(fn func()) (peak, before uint64, took time.Duration) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	stop := heapPeak()
	start := time.Now()
	fn()
	took = time.Since(start)
	return stop(), ms.HeapAlloc, took
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// TestUploaderPeakMemory uploads a generated 1 GiB body (256 MiB under the
// race detector) in every format with 1 and 8 parts of 8 MiB in flight to
// a disk-backed double, and downloads each object with 8 GETs of 8 MiB in
// flight. The heap must stay within what the options promise: about
// (Concurrency+1) × PartSize for an upload; Concurrency × PartSize, plus the
// V2/V3 spool's memory, for a download (+16 MiB for everything else).
func TestUploaderPeakMemory(t *testing.T) {
	size := int64(1 << 30)
	if raceEnabled {
		size = 256 << 20
	}
	const partSize = 8 << 20
	const slack = 16 << 20
	const spoolMemory = 8 << 20 // envelope.Config's default
	want, _, err := digest(&generator{size: size, seed: 11})
	require.NoError(t, err)
	api := newDiskMPU(t)
	kr := masterKeys(t)[0]
	ctx := context.Background()
	for _, v := range faultVariants {
		c := newClient(t, api, kr, v.apply, func(o *s3crypto.Options) { o.SpoolDir = t.TempDir() })
		for _, conc := range []int{1, 8} {
			t.Run(fmt.Sprintf("%v/c%d", v, conc), func(t *testing.T) {
				key := fmt.Sprintf("%v/c%d", v, conc)
				up := s3crypto.NewUploader(c, func(o *s3crypto.UploaderOptions) {
					o.PartSize = partSize
					o.Concurrency = conc
				})
				var out *s3crypto.UploadOutput
				var err error
				upPeak, upBase, upTime := measure(func() {
					out, err = up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: &key, Body: &generator{size: size, seed: 11}})
				})
				require.NoError(t, err)
				require.Equal(t, int(size/partSize), out.Parts)

				dl := s3crypto.NewDownloader(c, func(o *s3crypto.DownloaderOptions) {
					o.PartSize = partSize
					o.Concurrency = 8
				})
				h := sha256.New()
				var n int64
				dlPeak, dlBase, dlTime := measure(func() {
					n, err = dl.Download(ctx, h, &s3.GetObjectInput{Bucket: aws.String("b"), Key: &key})
				})
				require.NoError(t, err)
				require.Equal(t, size, n)
				require.Equal(t, want, hex.EncodeToString(h.Sum(nil)))

				upBound := uint64((conc+1)*partSize + slack)
				dlBound := uint64(8*partSize + slack + spoolMemory)
				t.Logf("%d MiB, %d parts: upload peak heap %.1f MiB (bound %.0f, heap before %.1f) in %v (%.0f MiB/s); download (8 × 8 MiB) peak heap %.1f MiB (bound %.0f, heap before %.1f) in %v (%.0f MiB/s)",
					size>>20, out.Parts, mib(upPeak), mib(upBound), mib(upBase), upTime.Round(time.Millisecond), float64(size>>20)/upTime.Seconds(),
					mib(dlPeak), mib(dlBound), mib(dlBase), dlTime.Round(time.Millisecond), float64(size>>20)/dlTime.Seconds())
				require.LessOrEqual(t, upPeak, upBound, "upload heap")
				require.LessOrEqual(t, dlPeak, dlBound, "download heap")
				_, err = api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("b"), Key: &key})
				require.NoError(t, err)
			})
		}
	}
	entries, err := os.ReadDir(api.dir)
	require.NoError(t, err)
	require.Empty(t, entries, "part or object files left behind")
}

// TestUploadLargeS3 uploads a generated object of 1 GiB (8 parts in
// flight) and of 256 MiB (one part in flight) in every format through
// versitygw, and reads each back with the Downloader (128 MiB each under
// the race detector).
func TestUploadLargeS3(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	kr := masterKeys(t)[0]
	type run struct {
		size int64
		conc int
	}
	runs := []run{{1 << 30, 8}, {256 << 20, 1}}
	if raceEnabled {
		runs = []run{{128 << 20, 8}, {128 << 20, 1}}
	}
	digests := map[int64]string{}
	for _, r := range runs {
		if _, ok := digests[r.size]; !ok {
			d, _, err := digest(&generator{size: r.size, seed: uint64(r.size)})
			require.NoError(t, err)
			digests[r.size] = d
		}
	}
	for _, v := range faultVariants {
		c := newClient(t, raw, kr, v.apply)
		for _, r := range runs {
			t.Run(fmt.Sprintf("%v/%dMiB/c%d", v, r.size>>20, r.conc), func(t *testing.T) {
				key := fmt.Sprintf("large/%v/%d/%d", v, r.size, r.conc)
				up := s3crypto.NewUploader(c, func(o *s3crypto.UploaderOptions) { o.Concurrency = r.conc })
				start := time.Now()
				out, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: &generator{size: r.size, seed: uint64(r.size)}})
				upTime := time.Since(start)
				require.NoError(t, err)
				require.Equal(t, r.size, out.Size)
				require.Equal(t, int(r.size/defaultPartSize), out.Parts)

				h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				require.Equal(t, r.size, aws.ToInt64(h.ContentLength))

				dl := s3crypto.NewDownloader(c, func(o *s3crypto.DownloaderOptions) { o.Concurrency = r.conc })
				hash := sha256.New()
				start = time.Now()
				n, err := dl.Download(ctx, hash, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
				dlTime := time.Since(start)
				require.NoError(t, err)
				require.Equal(t, r.size, n)
				require.Equal(t, digests[r.size], hex.EncodeToString(hash.Sum(nil)))
				t.Logf("%d MiB, %d parts, %d in flight: upload %v (%.0f MiB/s), download %v (%.0f MiB/s)",
					r.size>>20, out.Parts, r.conc, upTime.Round(time.Millisecond), float64(r.size>>20)/upTime.Seconds(),
					dlTime.Round(time.Millisecond), float64(r.size>>20)/dlTime.Seconds())
				_, err = raw.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
			})
		}
	}
	requireNoUploads(t, raw, bucket)
}
