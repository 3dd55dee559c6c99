package s3crypto_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/s3crypto"
)

// benchRangeS3 is benchS3 with what a Downloader asks besides: HEAD, and
// GETs of a byte range (206 and Content-Range, as S3 answers).
type benchRangeS3 struct{ *benchS3 }

func (s benchRangeS3) RoundTrip(req *http.Request) (*http.Response, error) {
	rng := req.Header.Get("Range")
	if req.Method != http.MethodHead && (req.Method != http.MethodGet || rng == "") {
		return s.benchS3.RoundTrip(req)
	}
	resp, err := s.benchS3.RoundTrip(&http.Request{Method: http.MethodGet, Header: req.Header, URL: req.URL})
	if err != nil {
		return nil, err
	}
	resp.Request = req
	size := int64(len(s.obj.body))
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
		return resp, nil
	}
	var first, last int64
	if _, err := fmt.Sscanf(strings.TrimPrefix(rng, "bytes="), "%d-%d", &first, &last); err != nil || first > last || last >= size {
		return nil, fmt.Errorf("benchRangeS3: range %q of %d bytes not served", rng, size)
	}
	resp.StatusCode = http.StatusPartialContent
	resp.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, size))
	resp.Header.Set("Content-Length", strconv.FormatInt(last-first+1, 10))
	resp.ContentLength = last - first + 1
	resp.Body = io.NopCloser(onlyRead{bytes.NewReader(s.obj.body[first : last+1])})
	return resp, nil
}

// BenchmarkDownload: s3crypto.Downloader.Download of the whole object
// (default part size and concurrency) into io.Discard, against one Open of
// the same bytes, through the same in-process transport as
// BenchmarkGetObject. Run with -cpu 1,2.
func BenchmarkDownload(b *testing.B) {
	plain := benchPlaintext(b)
	ctx := context.Background()
	kr := benchKey(b)
	for _, f := range benchFormats {
		b.Run(f.name, func(b *testing.B) {
			store := benchStored(b, plain, kr, f.cfg)
			api := s3.New(benchS3Client(store).Options(), func(o *s3.Options) {
				o.HTTPClient = &http.Client{Transport: benchRangeS3{store}}
			})
			c := newClient(b, api, kr, f.cfg, allowV2)
			d := s3crypto.NewDownloader(c)
			b.SetBytes(int64(len(plain)))
			ref := openRef(b, plain)
			for b.Loop() {
				got, err := d.Download(ctx, io.Discard, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
				if err != nil || got != int64(len(plain)) {
					b.Fatalf("downloaded %d of %d bytes: %v", got, len(plain), err)
				}
				ref.run()
			}
			ref.report("x-Open")
		})
	}
}

// BenchmarkGetObjectMemorySpool is BenchmarkGetObject/V3 with SpoolMemory
// above the object's size, so that no byte goes to a spool file: what the
// file costs (not a setting to copy: it holds the whole object in memory).
func BenchmarkGetObjectMemorySpool(b *testing.B) {
	plain := benchPlaintext(b)
	kr := benchKey(b)
	store := benchStored(b, plain, kr, func(*s3crypto.Options) {})
	c := newClient(b, benchS3Client(store), kr, func(o *s3crypto.Options) { o.SpoolMemory = int64(len(plain)) + 1<<20 })
	b.SetBytes(int64(len(plain)))
	ref := openRef(b, plain)
	for b.Loop() {
		benchGet(b, c, len(plain))
		ref.run()
	}
	ref.report("x-Open")
}
