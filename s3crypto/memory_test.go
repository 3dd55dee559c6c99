package s3crypto_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3envelope/s3envelope/envelope"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/s3crypto"
)

// diskS3 keeps object bodies in files, so that the heap measured in
// TestPeakMemory is the client's own.
type diskS3 struct {
	noRewrapS3
	dir  string
	mu   sync.Mutex
	meta map[string]map[string]string
}

func (d *diskS3) path(k string) string { return filepath.Join(d.dir, filepath.Base(k)) }

func (d *diskS3) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	f, err := os.Create(d.path(*in.Key))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := io.Copy(f, in.Body)
	if err != nil {
		return nil, err
	}
	if n != aws.ToInt64(in.ContentLength) {
		return nil, errors.New("short body")
	}
	d.mu.Lock()
	d.meta[*in.Key] = maps.Clone(in.Metadata)
	d.mu.Unlock()
	return &s3.PutObjectOutput{}, nil
}

func (d *diskS3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	d.mu.Lock()
	m, ok := d.meta[*in.Key]
	d.mu.Unlock()
	if !ok {
		return nil, &types.NoSuchKey{}
	}
	f, err := os.Open(d.path(*in.Key))
	if err != nil {
		return nil, err
	}
	st, _ := f.Stat()
	return &s3.GetObjectOutput{Body: f, Metadata: maps.Clone(m), ContentLength: aws.Int64(st.Size())}, nil
}

func (d *diskS3) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return nil, errors.New("not used")
}

func (d *diskS3) DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return nil, errors.New("not used")
}

// heapPeak samples the live heap until stop is called, and returns its peak.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// TestPeakMemory puts and gets a 1 GiB object (256 MiB under the race
// detector) through the client, with both a seekable body and one of
// unknown length, and bounds the heap: memory must not grow with the object.
func TestPeakMemory(t *testing.T) {
	size := int64(1 << 30)
	if raceEnabled {
		size = 256 << 20
	}
	const bound = 64 << 20
	api := &diskS3{dir: t.TempDir(), meta: map[string]map[string]string{}}
	v3 := newClient(t, api, masterKeys(t)[0], func(o *s3crypto.Options) { o.SpoolDir = t.TempDir() })
	seg := newClient(t, api, masterKeys(t)[0], func(o *s3crypto.Options) { o.Format = envelope.FormatSegmented })
	ctx := context.Background()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	for _, tc := range []struct {
		name string
		c    *s3crypto.Client
		body func() io.Reader
	}{
		{"V3-seekable", v3, func() io.Reader { return &generator{size: size, seed: 3} }},
		{"V3-unknown-length", v3, func() io.Reader { return io.MultiReader(&generator{size: size, seed: 3}) }},
		{"segmented-seekable", seg, func() io.Reader { return &generator{size: size, seed: 3} }},
	} {
		c := tc.c
		stop := heapPeak()
		start := time.Now()
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String(tc.name), Body: tc.body()})
		require.NoError(t, err)
		putPeak, putTime := stop(), time.Since(start)

		stop = heapPeak()
		start = time.Now()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String(tc.name)})
		require.NoError(t, err)
		got, n, err := digest(out.Body)
		out.Body.Close()
		getPeak, getTime := stop(), time.Since(start)
		require.NoError(t, err)
		require.Equal(t, size, n)
		want, _, _ := digest(&generator{size: size, seed: 3})
		require.Equal(t, want, got)

		t.Logf("%s %d MiB: PUT peak heap %.1f MiB in %v; GET peak heap %.1f MiB in %v (heap before: %.1f MiB)",
			tc.name, size>>20, float64(putPeak)/(1<<20), putTime.Round(time.Millisecond),
			float64(getPeak)/(1<<20), getTime.Round(time.Millisecond), float64(base.HeapAlloc)/(1<<20))
		require.Less(t, putPeak, uint64(bound), "PUT heap")
		require.Less(t, getPeak, uint64(bound), "GET heap")
		require.NoError(t, os.Remove(api.path(tc.name)))
	}
}
