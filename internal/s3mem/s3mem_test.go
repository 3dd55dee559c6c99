package s3mem_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/internal/s3mem"
)

var ctx = context.Background()

// setup returns a client of a new server with bucket "b".
func setup(t *testing.T, optFns ...func(*s3.Options)) (*s3mem.Server, *s3.Client) {
	t.Helper()
	s := s3mem.New()
	s.CreateBucket("b")
	return s, s.Client(optFns...)
}

// requireCode requires err to be an S3 error with this code and HTTP status.
func requireCode(t *testing.T, err error, code string, status int) {
	t.Helper()
	require.Error(t, err)
	var ae smithy.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, code, ae.ErrorCode(), "%v", err)
	var re *smithyhttp.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, status, re.HTTPStatusCode(), "%v", err)
}

func put(t *testing.T, c *s3.Client, key, body string, optFns ...func(*s3.PutObjectInput)) *s3.PutObjectOutput {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String(key), Body: strings.NewReader(body)}
	for _, f := range optFns {
		f(in)
	}
	out, err := c.PutObject(ctx, in)
	require.NoError(t, err)
	return out
}

func get(t *testing.T, c *s3.Client, in *s3.GetObjectInput) (*s3.GetObjectOutput, string, error) {
	t.Helper()
	in.Bucket = aws.String("b")
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return nil, "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return out, string(b), nil
}

func quotedMD5(b []byte) string {
	m := md5.Sum(b)
	return `"` + hex.EncodeToString(m[:]) + `"`
}

// headers records the requests' headers, by operation name (x-id), and the
// responses' status codes.
type headers struct {
	mu     sync.Mutex
	next   s3.HTTPClient
	req    map[string]http.Header
	status []int
}

func (h *headers) Do(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.req[r.URL.Query().Get("x-id")] = r.Header.Clone()
	h.mu.Unlock()
	resp, err := h.next.Do(r)
	if err == nil {
		h.mu.Lock()
		h.status = append(h.status, resp.StatusCode)
		h.mu.Unlock()
	}
	return resp, err
}

func recording(h *headers) func(*s3.Options) {
	return func(o *s3.Options) {
		h.next, h.req = o.HTTPClient, map[string]http.Header{}
		o.HTTPClient = h
	}
}

func TestPutGetHead(t *testing.T) {
	rec := &headers{}
	_, c := setup(t, recording(rec))
	body := "hello, world"
	out := put(t, c, "dir/k", body, func(in *s3.PutObjectInput) {
		in.ContentType = aws.String("text/plain")
		in.Metadata = map[string]string{"Color": "blue", "x-amz-key-v2": "c2VjcmV0"}
		in.CacheControl = aws.String("no-cache")
	})
	assert.Equal(t, quotedMD5([]byte(body)), aws.ToString(out.ETag))
	assert.NotEmpty(t, aws.ToString(out.ChecksumCRC32), "the client's CRC32 is echoed")

	// The default client sent the body aws-chunked with a CRC32 trailer.
	ph := rec.req["PutObject"]
	assert.Equal(t, "aws-chunked", ph.Get("Content-Encoding"))
	assert.Equal(t, "x-amz-checksum-crc32", ph.Get("X-Amz-Trailer"))
	assert.Equal(t, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", ph.Get("X-Amz-Content-Sha256"))

	got, data, err := get(t, c, &s3.GetObjectInput{Key: aws.String("dir/k")})
	require.NoError(t, err)
	assert.Equal(t, body, data)
	assert.Equal(t, out.ETag, got.ETag)
	assert.Equal(t, int64(len(body)), aws.ToInt64(got.ContentLength))
	assert.Equal(t, "text/plain", aws.ToString(got.ContentType))
	assert.Equal(t, "no-cache", aws.ToString(got.CacheControl))
	assert.Empty(t, aws.ToString(got.ContentEncoding), "aws-chunked is not stored")
	assert.Equal(t, map[string]string{"color": "blue", "x-amz-key-v2": "c2VjcmV0"}, got.Metadata)
	assert.Equal(t, out.ChecksumCRC32, got.ChecksumCRC32, "the stored checksum is returned, and the SDK validated it")
	assert.Equal(t, "ENABLED", rec.req["GetObject"].Get("X-Amz-Checksum-Mode"))
	assert.WithinDuration(t, time.Now(), aws.ToTime(got.LastModified), 5*time.Second)

	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("dir/k")})
	require.NoError(t, err)
	assert.Equal(t, got.ETag, head.ETag)
	assert.Equal(t, int64(len(body)), aws.ToInt64(head.ContentLength))
	assert.Equal(t, got.Metadata, head.Metadata)

	// An empty object, and one with no Content-Type.
	put(t, c, "empty", "")
	got, data, err = get(t, c, &s3.GetObjectInput{Key: aws.String("empty")})
	require.NoError(t, err)
	assert.Empty(t, data)
	assert.Equal(t, quotedMD5(nil), aws.ToString(got.ETag))
}

func TestBodies(t *testing.T) {
	_, c := setup(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // several aws-chunked chunks
	for name, in := range map[string]*s3.PutObjectInput{
		"seekable":           {Body: bytes.NewReader(big)},
		"unseekable, length": {Body: io.MultiReader(bytes.NewReader(big)), ContentLength: aws.Int64(int64(len(big)))},
		"sha256":             {Body: bytes.NewReader(big), ChecksumAlgorithm: types.ChecksumAlgorithmSha256},
		"crc64nvme":          {Body: bytes.NewReader(big), ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme},
		"crc32c":             {Body: bytes.NewReader(big), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c},
		"sha1":               {Body: bytes.NewReader(big), ChecksumAlgorithm: types.ChecksumAlgorithmSha1},
	} {
		t.Run(name, func(t *testing.T) {
			in.Bucket, in.Key = aws.String("b"), aws.String(name)
			_, err := c.PutObject(ctx, in)
			require.NoError(t, err)
			_, data, err := get(t, c, &s3.GetObjectInput{Key: aws.String(name)})
			require.NoError(t, err)
			require.True(t, bytes.Equal(big, []byte(data)))
		})
	}

	// Over plain HTTP the SDK sends the checksum in a header, not a trailer.
	s := s3mem.New()
	s.CreateBucket("b")
	srv := httptest.NewServer(s)
	defer srv.Close()
	plain := s.Client(func(o *s3.Options) { o.BaseEndpoint, o.HTTPClient = aws.String(srv.URL), srv.Client() })
	put(t, plain, "k", "over http")
	_, data, err := get(t, plain, &s3.GetObjectInput{Key: aws.String("k")})
	require.NoError(t, err)
	assert.Equal(t, "over http", data)

	// With checksums only when required, the body goes plain.
	_, c = setup(t, func(o *s3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired })
	put(t, c, "k", "plain")
	_, data, err = get(t, c, &s3.GetObjectInput{Key: aws.String("k")})
	require.NoError(t, err)
	assert.Equal(t, "plain", data)
}

func TestBadChecksums(t *testing.T) {
	s, c := setup(t)
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"),
		Body: strings.NewReader("data"), ChecksumCRC32: aws.String("AAAAAA==")})
	requireCode(t, err, "BadDigest", 400)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"),
		Body: strings.NewReader("data"), ContentMD5: aws.String("1B2M2Y8AsgTpgAmY7PhCfg==")})
	requireCode(t, err, "BadDigest", 400)

	// An aws-chunked body whose trailer does not match, or is cut short.
	for name, body := range map[string]string{
		"bad trailer":     "4\r\ndata\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
		"missing trailer": "4\r\ndata\r\n0\r\n\r\n",
		"short":           "4\r\ndata\r\n",
		"long":            "5\r\ndata!\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
	} {
		r := httptest.NewRequest(http.MethodPut, "/b/k", strings.NewReader(body))
		r.Header.Set("Content-Encoding", "aws-chunked")
		r.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		r.Header.Set("X-Amz-Decoded-Content-Length", "4")
		r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		assert.Equal(t, 400, w.Code, name)
		assert.Contains(t, w.Body.String(), "<Code>", name)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	var nf *types.NotFound
	require.ErrorAs(t, err, &nf, "nothing was stored")

	// A signed chunk's extension is skipped; a good trailer passes.
	r := httptest.NewRequest(http.MethodPut, "/b/k", strings.NewReader(
		"4;chunk-signature=00\r\ndata\r\n0;chunk-signature=00\r\nx-amz-checksum-crc32:rfPzYw==\r\n\r\n"))
	r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
	r.Header.Set("X-Amz-Decoded-Content-Length", "4")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	require.Equal(t, 200, w.Code, w.Body.String())
	_, data, err := get(t, c, &s3.GetObjectInput{Key: aws.String("k")})
	require.NoError(t, err)
	assert.Equal(t, "data", data)
}

func TestConditionalWrites(t *testing.T) {
	_, c := setup(t)
	first := put(t, c, "k", "one", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })

	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"),
		Body: strings.NewReader("two"), IfNoneMatch: aws.String("*")})
	requireCode(t, err, "PreconditionFailed", 412)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"),
		Body: strings.NewReader("two"), IfMatch: aws.String(`"0123"`)})
	requireCode(t, err, "PreconditionFailed", 412)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("absent"),
		Body: strings.NewReader("two"), IfMatch: first.ETag})
	requireCode(t, err, "NoSuchKey", 404)

	put(t, c, "k", "two", func(in *s3.PutObjectInput) { in.IfMatch = first.ETag })
	_, data, err := get(t, c, &s3.GetObjectInput{Key: aws.String("k")})
	require.NoError(t, err)
	assert.Equal(t, "two", data)

	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), IfMatch: first.ETag})
	requireCode(t, err, "PreconditionFailed", 412)
}

func TestRanges(t *testing.T) {
	_, c := setup(t)
	body := "0123456789"
	put(t, c, "k", body)
	for _, tc := range []struct{ rng, want, contentRange string }{
		{"bytes=0-4", "01234", "bytes 0-4/10"},
		{"bytes=5-", "56789", "bytes 5-9/10"},
		{"bytes=-3", "789", "bytes 7-9/10"},
		{"bytes=-30", body, "bytes 0-9/10"},
		{"bytes=8-100", "89", "bytes 8-9/10"},
		{"bytes=9-9", "9", "bytes 9-9/10"},
		{"bytes=5-2", body, ""},     // invalid: ignored, as S3 does
		{"items=0-1", body, ""},     // not bytes: ignored
		{"bytes=0-1,3-4", body, ""}, // several ranges: ignored
	} {
		out, data, err := get(t, c, &s3.GetObjectInput{Key: aws.String("k"), Range: aws.String(tc.rng)})
		require.NoError(t, err, tc.rng)
		assert.Equal(t, tc.want, data, tc.rng)
		assert.Equal(t, int64(len(tc.want)), aws.ToInt64(out.ContentLength), tc.rng)
		assert.Equal(t, tc.contentRange, aws.ToString(out.ContentRange), tc.rng)
		if tc.contentRange != "" {
			assert.Nil(t, out.ChecksumCRC32, "no whole-object checksum on a part of it")
		}
	}
	for _, rng := range []string{"bytes=10-", "bytes=10-20", "bytes=-0"} {
		_, _, err := get(t, c, &s3.GetObjectInput{Key: aws.String("k"), Range: aws.String(rng)})
		requireCode(t, err, "InvalidRange", 416)
	}
	put(t, c, "empty", "")
	_, _, err := get(t, c, &s3.GetObjectInput{Key: aws.String("empty"), Range: aws.String("bytes=0-")})
	requireCode(t, err, "InvalidRange", 416)

	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Range: aws.String("bytes=2-3")})
	require.NoError(t, err)
	assert.Equal(t, int64(2), aws.ToInt64(head.ContentLength))

	_, _, err = get(t, c, &s3.GetObjectInput{Key: aws.String("k"), PartNumber: aws.Int32(1)})
	requireCode(t, err, "NotImplemented", 400)
}

func TestConditionalReads(t *testing.T) {
	_, c := setup(t)
	out := put(t, c, "k", "v")
	_, _, err := get(t, c, &s3.GetObjectInput{Key: aws.String("k"), IfMatch: aws.String(`"nope"`)})
	requireCode(t, err, "PreconditionFailed", 412)
	_, _, err = get(t, c, &s3.GetObjectInput{Key: aws.String("k"), IfNoneMatch: out.ETag})
	var re *smithyhttp.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 304, re.HTTPStatusCode())
	_, _, err = get(t, c, &s3.GetObjectInput{Key: aws.String("k"), IfMatch: out.ETag, IfNoneMatch: aws.String(`"other"`)})
	require.NoError(t, err)
	_, _, err = get(t, c, &s3.GetObjectInput{Key: aws.String("k"), IfModifiedSince: aws.Time(time.Now().Add(time.Hour))})
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 304, re.HTTPStatusCode())
	_, _, err = get(t, c, &s3.GetObjectInput{Key: aws.String("k"), IfUnmodifiedSince: aws.Time(time.Now().Add(-time.Hour))})
	requireCode(t, err, "PreconditionFailed", 412)

	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), IfMatch: aws.String(`"nope"`)})
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 412, re.HTTPStatusCode())
}

func TestTypedErrors(t *testing.T) {
	_, c := setup(t)
	_, _, err := get(t, c, &s3.GetObjectInput{Key: aws.String("absent")})
	var nsk *types.NoSuchKey
	require.ErrorAs(t, err, &nsk)
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("absent")})
	var nf *types.NotFound
	require.ErrorAs(t, err, &nf)
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nobucket")})
	var nsb *types.NoSuchBucket
	require.ErrorAs(t, err, &nsb)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k"), Body: strings.NewReader("x")})
	requireCode(t, err, "NoSuchBucket", 404)
	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("b"), Key: aws.String("k"), UploadId: aws.String("nope")})
	var nsu *types.NoSuchUpload
	require.ErrorAs(t, err, &nsu)

	_, _, err = get(t, c, &s3.GetObjectInput{Key: aws.String("k"), VersionId: aws.String("v1")})
	requireCode(t, err, "NotImplemented", 400)
}

func TestBuckets(t *testing.T) {
	s := s3mem.New()
	c := s.Client()
	_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("new")})
	require.Error(t, err)
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("new")})
	require.NoError(t, err)
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("new")})
	var owned *types.BucketAlreadyOwnedByYou
	require.ErrorAs(t, err, &owned)
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("new")})
	require.NoError(t, err)
	s.CreateBucket("new") // no-op
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("new"), Key: aws.String("k"), Body: strings.NewReader("x")})
	require.NoError(t, err)

	// A bucket is deleted only when empty.
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("new")})
	require.ErrorContains(t, err, "BucketNotEmpty")
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("new"), Key: aws.String("k")})
	require.NoError(t, err)
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("new")})
	require.NoError(t, err)
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("new")})
	require.Error(t, err)
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("new")})
	require.ErrorContains(t, err, "NoSuchBucket") // DeleteBucket's errors are not typed
}

func TestSSECRefused(t *testing.T) {
	_, c := setup(t)
	key := bytes.Repeat([]byte{7}, 32)
	m := md5.Sum(key)
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("secret"),
		SSECustomerAlgorithm: aws.String("AES256"),
		SSECustomerKey:       aws.String(string(key)),
		SSECustomerKeyMD5:    aws.String(string(m[:])),
	})
	requireCode(t, err, "NotImplemented", 400)
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	var nf *types.NotFound
	require.ErrorAs(t, err, &nf, "no plaintext was stored")

	put(t, c, "plain", "x")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), CopySource: aws.String("b/plain"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(string(key))})
	requireCode(t, err, "NotImplemented", 400)
}

func TestDelete(t *testing.T) {
	_, c := setup(t)
	for _, k := range []string{"a", "b", "c", "d"} {
		put(t, c, k, k)
	}
	_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("b"), Key: aws.String("a")})
	require.NoError(t, err)
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("b"), Key: aws.String("a")})
	require.NoError(t, err, "deleting what is absent succeeds")

	out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("b"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("b")}, {Key: aws.String("absent")}},
	}})
	require.NoError(t, err)
	var keys []string
	for _, d := range out.Deleted {
		keys = append(keys, aws.ToString(d.Key))
	}
	assert.ElementsMatch(t, []string{"b", "absent"}, keys)
	assert.Empty(t, out.Errors)

	out, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("b"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("c")}, {Key: aws.String("d"), VersionId: aws.String("v")}},
		Quiet:   aws.Bool(true),
	}})
	require.NoError(t, err)
	assert.Empty(t, out.Deleted, "quiet")
	require.Len(t, out.Errors, 1)
	assert.Equal(t, "d", aws.ToString(out.Errors[0].Key))

	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b")})
	require.NoError(t, err)
	require.Len(t, list.Contents, 1)
	assert.Equal(t, "d", aws.ToString(list.Contents[0].Key))
}

func TestCopy(t *testing.T) {
	_, c := setup(t)
	src := put(t, c, "src", "payload", func(in *s3.PutObjectInput) {
		in.Metadata = map[string]string{"a": "1"}
		in.ContentType = aws.String("text/plain")
		in.Tagging = aws.String("t=1")
	})

	_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("same"), CopySource: aws.String("b/src")})
	require.NoError(t, err)
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("same")})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "1"}, head.Metadata)
	assert.Equal(t, "text/plain", aws.ToString(head.ContentType))
	assert.Equal(t, src.ETag, head.ETag)

	out, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("src"), CopySource: aws.String("/b/src"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"b": "2"},
		ContentType: aws.String("application/x-new"), CopySourceIfMatch: src.ETag})
	require.NoError(t, err)
	assert.Equal(t, src.ETag, out.CopyObjectResult.ETag)
	head, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("src")})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"b": "2"}, head.Metadata)
	assert.Equal(t, "application/x-new", aws.ToString(head.ContentType))
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("b"), Key: aws.String("src")})
	require.NoError(t, err)
	assert.Equal(t, []types.Tag{{Key: aws.String("t"), Value: aws.String("1")}}, tags.TagSet, "tags are copied by default")

	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("x"), CopySource: aws.String("b/src"),
		CopySourceIfMatch: aws.String(`"stale"`)})
	requireCode(t, err, "PreconditionFailed", 412)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("x"), CopySource: aws.String("b/src"),
		CopySourceIfNoneMatch: src.ETag})
	requireCode(t, err, "PreconditionFailed", 412)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("src"), CopySource: aws.String("b/src")})
	requireCode(t, err, "InvalidRequest", 400)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("x"), CopySource: aws.String("b/absent")})
	requireCode(t, err, "NoSuchKey", 404)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("same"), CopySource: aws.String("b/src"),
		IfNoneMatch: aws.String("*")})
	requireCode(t, err, "PreconditionFailed", 412)

	// A key that needs escaping.
	put(t, c, "a b/ü?.txt", "odd")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("odd"), CopySource: aws.String("b/a%20b/%C3%BC%3F.txt"),
		TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("x=y&z=")})
	require.NoError(t, err)
	_, data, err := get(t, c, &s3.GetObjectInput{Key: aws.String("odd")})
	require.NoError(t, err)
	assert.Equal(t, "odd", data)
	tags, err = c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("b"), Key: aws.String("odd")})
	require.NoError(t, err)
	assert.Equal(t, []types.Tag{{Key: aws.String("x"), Value: aws.String("y")}, {Key: aws.String("z"), Value: aws.String("")}}, tags.TagSet)
	tags, err = c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("b"), Key: aws.String("a b/ü?.txt")})
	require.NoError(t, err)
	assert.Empty(t, tags.TagSet)
}

func TestList(t *testing.T) {
	_, c := setup(t)
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("p/%02d", i)
		want = append(want, k)
		put(t, c, k, k)
	}
	put(t, c, "other", "x")

	var got []string
	pages := 0
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("b"), Prefix: aws.String("p/"), MaxKeys: aws.Int32(7)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		pages++
		assert.LessOrEqual(t, aws.ToInt32(page.KeyCount), int32(7))
		for _, o := range page.Contents {
			got = append(got, aws.ToString(o.Key))
			assert.Equal(t, int64(4), aws.ToInt64(o.Size))
			assert.Equal(t, quotedMD5([]byte(aws.ToString(o.Key))), aws.ToString(o.ETag))
		}
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 4, pages)

	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b"), StartAfter: aws.String("p/22")})
	require.NoError(t, err)
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	assert.Equal(t, []string{"p/23", "p/24"}, keys)
	assert.False(t, aws.ToBool(out.IsTruncated))
}

func TestListDelimiter(t *testing.T) {
	_, c := setup(t)
	for _, k := range []string{"a", "d1/x", "d1/y", "d2/x", "d3/sub/x", "e", "f"} {
		put(t, c, k, k)
	}
	var items []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("b"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, o := range page.Contents {
			items = append(items, aws.ToString(o.Key))
		}
		for _, cp := range page.CommonPrefixes {
			items = append(items, aws.ToString(cp.Prefix))
		}
	}
	slices.Sort(items)
	assert.Equal(t, []string{"a", "d1/", "d2/", "d3/", "e", "f"}, items)

	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b"), Prefix: aws.String("d3/"), Delimiter: aws.String("/")})
	require.NoError(t, err)
	require.Len(t, out.CommonPrefixes, 1)
	assert.Equal(t, "d3/sub/", aws.ToString(out.CommonPrefixes[0].Prefix))
	assert.Empty(t, out.Contents)
}

func TestMultipart(t *testing.T) {
	_, c := setup(t)
	b, k := aws.String("b"), aws.String("mp")
	p1 := bytes.Repeat([]byte{1}, 5<<20)
	p2 := []byte("tail")
	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k,
		Metadata: map[string]string{"m": "v"}, ContentType: aws.String("application/x-mp")})
	require.NoError(t, err)
	id := create.UploadId
	up1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(1), Body: bytes.NewReader(p1)})
	require.NoError(t, err)
	assert.Equal(t, quotedMD5(p1), aws.ToString(up1.ETag))
	up2, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(2), Body: bytes.NewReader(p2)})
	require.NoError(t, err)

	complete := func(parts ...types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
		return c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	}
	part := func(n int32, etag *string) types.CompletedPart {
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: etag}
	}
	_, err = complete(part(2, up2.ETag), part(1, up1.ETag))
	requireCode(t, err, "InvalidPartOrder", 400)
	_, err = complete(part(1, up2.ETag), part(2, up2.ETag))
	requireCode(t, err, "InvalidPart", 400)
	_, err = complete(part(1, up1.ETag), part(3, up2.ETag))
	requireCode(t, err, "InvalidPart", 400)
	_, err = complete(part(2, up2.ETag), part(3, up2.ETag))
	requireCode(t, err, "InvalidPart", 400)

	out, err := complete(part(1, up1.ETag), part(2, up2.ETag))
	require.NoError(t, err)
	m1, m2 := md5.Sum(p1), md5.Sum(p2)
	whole := md5.Sum(append(m1[:], m2[:]...))
	assert.Equal(t, `"`+hex.EncodeToString(whole[:])+`-2"`, aws.ToString(out.ETag))

	got, data, err := get(t, c, &s3.GetObjectInput{Key: k})
	require.NoError(t, err)
	assert.True(t, bytes.Equal(append(p1, p2...), []byte(data)))
	assert.Equal(t, out.ETag, got.ETag)
	assert.Equal(t, map[string]string{"m": "v"}, got.Metadata)
	assert.Equal(t, "application/x-mp", aws.ToString(got.ContentType))

	_, err = complete(part(1, up1.ETag))
	var nsu *types.NoSuchUpload
	requireCode(t, err, "NoSuchUpload", 404)
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(3), Body: bytes.NewReader(p2)})
	requireCode(t, err, "NoSuchUpload", 404)
	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: k, UploadId: id})
	require.ErrorAs(t, err, &nsu)
}

func TestMultipartRules(t *testing.T) {
	_, c := setup(t)
	b, k := aws.String("b"), aws.String("mp")
	put(t, c, "mp", "existing")
	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k})
	require.NoError(t, err)
	id := create.UploadId
	var parts []types.CompletedPart
	for n := int32(1); n <= 2; n++ {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(n), Body: strings.NewReader("small")})
		require.NoError(t, err)
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: up.ETag})
	}
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(10001), Body: strings.NewReader("x")})
	requireCode(t, err, "InvalidArgument", 400)
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	requireCode(t, err, "EntityTooSmall", 400)

	// Only the last part may be small; a conditional complete is refused.
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts[:1]}, IfNoneMatch: aws.String("*")})
	requireCode(t, err, "PreconditionFailed", 412)
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("other"), UploadId: id, PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
	requireCode(t, err, "NoSuchUpload", 404)

	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: k, UploadId: id})
	require.NoError(t, err)
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts[:1]}})
	requireCode(t, err, "NoSuchUpload", 404)
	_, data, err := get(t, c, &s3.GetObjectInput{Key: k})
	require.NoError(t, err)
	assert.Equal(t, "existing", data)
}

func TestUploadPartCopy(t *testing.T) {
	_, c := setup(t)
	b, k := aws.String("b"), aws.String("dst")
	src := bytes.Repeat([]byte("abcdefgh"), 1<<20) // 8 MiB
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("src"), Body: bytes.NewReader(src)})
	require.NoError(t, err)
	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k})
	require.NoError(t, err)
	id := create.UploadId
	var parts []types.CompletedPart
	for i, rng := range []string{"bytes=0-5242879", "bytes=5242880-8388607"} {
		out, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(int32(i + 1)),
			CopySource: aws.String("b/src"), CopySourceRange: aws.String(rng)})
		require.NoError(t, err)
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag})
	}
	assert.Equal(t, quotedMD5(src[:5<<20]), aws.ToString(parts[0].ETag))
	_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(3),
		CopySource: aws.String("b/src"), CopySourceRange: aws.String("bytes=0-8388608")})
	requireCode(t, err, "InvalidArgument", 400)
	_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(3),
		CopySource: aws.String("b/src"), CopySourceIfMatch: aws.String(`"stale"`)})
	requireCode(t, err, "PreconditionFailed", 412)

	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	require.NoError(t, err)
	_, data, err := get(t, c, &s3.GetObjectInput{Key: k})
	require.NoError(t, err)
	assert.True(t, bytes.Equal(src, []byte(data)))
}

func TestConcurrent(t *testing.T) {
	_, c := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				key := fmt.Sprintf("k%d", i%5) // shared keys
				body := fmt.Sprintf("g%d-i%d", g, i)
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
					errs <- err
					return
				}
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String(key)})
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(out.Body)
				out.Body.Close()
				if err != nil || !strings.HasPrefix(string(b), "g") {
					errs <- fmt.Errorf("read %q: %v", b, err)
					return
				}
				if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b")}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// Exactly one of many If-None-Match: * writes of a new key wins.
	var wins sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for g := range 16 {
		wins.Go(func() {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("once"),
				Body: strings.NewReader(fmt.Sprint(g)), IfNoneMatch: aws.String("*")})
			var ae smithy.APIError
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.As(err, &ae) || ae.ErrorCode() != "PreconditionFailed" {
				t.Error(err)
			}
		})
	}
	wins.Wait()
	assert.Equal(t, 1, won)
}

func TestUnknownLength(t *testing.T) {
	_, c := setup(t)
	// S3 needs a length: a body the SDK cannot measure is refused, as by S3.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: io.MultiReader(strings.NewReader("abc"))})
	requireCode(t, err, "MissingContentLength", 411)
}

func TestStoredAttributes(t *testing.T) {
	_, c := setup(t)
	exp := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	put(t, c, "k", "v", func(in *s3.PutObjectInput) {
		in.ContentEncoding = aws.String("x-test")
		in.ContentDisposition = aws.String("attachment")
		in.ContentLanguage = aws.String("de-CH")
		in.Expires = &exp
		in.WebsiteRedirectLocation = aws.String("/elsewhere")
		in.StorageClass = types.StorageClassStandardIa
		in.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
	})
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	require.NoError(t, err)
	assert.Equal(t, "x-test", aws.ToString(head.ContentEncoding))
	assert.Equal(t, "attachment", aws.ToString(head.ContentDisposition))
	assert.Equal(t, "de-CH", aws.ToString(head.ContentLanguage))
	assert.Equal(t, exp.Format(http.TimeFormat), aws.ToString(head.ExpiresString))
	assert.Equal(t, "/elsewhere", aws.ToString(head.WebsiteRedirectLocation))
	assert.Equal(t, types.StorageClassStandardIa, head.StorageClass)
	assert.NotEmpty(t, aws.ToString(head.ChecksumSHA256))
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b")})
	require.NoError(t, err)
	assert.Equal(t, types.ObjectStorageClassStandardIa, list.Contents[0].StorageClass)

	// A copy keeps the metadata, but not the redirect or the storage class;
	// it computes a checksum when asked.
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("copy"), CopySource: aws.String("b/k"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	require.NoError(t, err)
	head, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("copy"), ChecksumMode: types.ChecksumModeEnabled})
	require.NoError(t, err)
	assert.Equal(t, "de-CH", aws.ToString(head.ContentLanguage))
	assert.Empty(t, aws.ToString(head.WebsiteRedirectLocation))
	assert.Empty(t, head.StorageClass)
	assert.Equal(t, base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE([]byte("v")))), aws.ToString(head.ChecksumCRC32))
	assert.Nil(t, head.ChecksumSHA256)
}

func TestMultipartChecksums(t *testing.T) {
	_, c := setup(t)
	p1, p2 := bytes.Repeat([]byte{1}, 5<<20), []byte("tail")
	crc := func(b []byte) []byte { return binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)) }
	b64 := base64.StdEncoding.EncodeToString
	for _, typ := range []types.ChecksumType{types.ChecksumTypeComposite, types.ChecksumTypeFullObject} {
		k := aws.String(string(typ))
		create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("b"), Key: k,
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32, ChecksumType: typ})
		require.NoError(t, err)
		var parts []types.CompletedPart
		for i, p := range [][]byte{p1, p2} {
			n := aws.Int32(int32(i + 1))
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("b"), Key: k, UploadId: create.UploadId, PartNumber: n,
				Body: bytes.NewReader(p), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
			require.NoError(t, err)
			assert.Equal(t, b64(crc(p)), aws.ToString(out.ChecksumCRC32))
			parts = append(parts, types.CompletedPart{PartNumber: n, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
		}
		ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("b")})
		require.NoError(t, err)
		require.Len(t, ups.Uploads, 1)
		assert.Equal(t, create.UploadId, ups.Uploads[0].UploadId)
		assert.Equal(t, *k, aws.ToString(ups.Uploads[0].Key))
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("b"), Key: k, UploadId: create.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		require.NoError(t, err)

		got, data, err := get(t, c, &s3.GetObjectInput{Key: k})
		require.NoError(t, err)
		require.Equal(t, len(p1)+len(p2), len(data))
		assert.Equal(t, typ, got.ChecksumType)
		want := b64(crc(append(p1, p2...)))
		if typ == types.ChecksumTypeComposite {
			want = b64(crc(append(crc(p1), crc(p2)...))) + "-2"
		}
		assert.Equal(t, want, aws.ToString(got.ChecksumCRC32))
	}
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("b")})
	require.NoError(t, err)
	assert.Empty(t, ups.Uploads)
}

// pastSigner presigns as if it were an hour ago.
type pastSigner struct{ *v4.Signer }

func (p pastSigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, signingTime time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return p.Signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, signingTime.Add(-time.Hour), optFns...)
}

// TestPresignedGet fetches through presigned URLs with net/http alone: the
// object as stored, and 403 AccessDenied past the URL's expiry.
func TestPresignedGet(t *testing.T) {
	s := s3mem.New()
	s.CreateBucket("b")
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := s.Client(func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	put(t, c, "k", "shared", func(in *s3.PutObjectInput) { in.Metadata = map[string]string{"m": "v"} })
	pc := s3.NewPresignClient(c)

	fetch := func(u string) (*http.Response, string) {
		resp, err := http.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	req, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	require.NoError(t, err)
	resp, body := fetch(req.URL)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "shared", body)
	assert.Equal(t, "v", resp.Header.Get("X-Amz-Meta-M"))

	req, err = pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")},
		func(o *s3.PresignOptions) { o.Presigner, o.Expires = pastSigner{v4.NewSigner()}, time.Minute })
	require.NoError(t, err)
	resp, body = fetch(req.URL)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, body, "<Code>AccessDenied</Code>")
	assert.Contains(t, body, "Request has expired")
}
