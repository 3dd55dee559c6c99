package s3crypto_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// fourMethods is an S3 client with only the four methods of S3API.
type fourMethods struct{ s3crypto.S3API }

// TestNarrowS3API: New takes any value with PutObject, GetObject,
// HeadObject and DeleteObject; a feature that needs more of *s3.Client
// fails, naming what is missing, instead of the value failing to compile
// or needing stubs.
func TestNarrowS3API(t *testing.T) {
	ctx := context.Background()
	kr := masterKeys(t)[0]
	c := newClient(t, fourMethods{newMemS3()}, kr)
	put(t, c, "b", "k", strings.NewReader("body"))
	got, err := get(c, "b", "k")
	require.NoError(t, err)
	require.Equal(t, "body", string(got))

	_, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("b"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("k")}}}})
	require.ErrorContains(t, err, "has no DeleteObjects method")
	_, err = c.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: aws.String("b")})
	require.ErrorContains(t, err, "has no ListObjectsV2 method")
	_, err = s3crypto.NewUploader(c).Upload(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("big"), Body: strings.NewReader(strings.Repeat("x", 9<<20))})
	require.ErrorContains(t, err, "has no CreateMultipartUpload method")
}

// TestDeleteObjects: the objects go, and so do the instruction files (or
// SSE-C companions) of those deleted without a version.
func TestDeleteObjects(t *testing.T) {
	ctx := context.Background()
	kr := masterKeys(t)[0]
	api := newMemS3()
	meta := newClient(t, api, kr)
	ins := newClient(t, api, kr, func(o *s3crypto.Options) { o.InstructionFile = true })
	put(t, ins, "b", "a", strings.NewReader("a"))
	put(t, meta, "b", "m", strings.NewReader("m"))
	put(t, ins, "b", "v", strings.NewReader("v"))
	require.ElementsMatch(t, []string{"a", "a.instruction", "m", "v", "v.instruction"}, api.keys())

	out, err := meta.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("b"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("a")}, {Key: aws.String("m")}, {Key: aws.String("v"), VersionId: aws.String("1")},
	}}})
	require.NoError(t, err)
	require.Len(t, out.Deleted, 3, "the caller's objects, as S3 reported them")
	require.Empty(t, out.Errors)
	// v's instruction file belongs to its current version.
	require.ElementsMatch(t, []string{"v.instruction"}, api.keys())

	sse := sseClient(t, api, kr)
	put(t, sse, "b", "s", strings.NewReader("s"))
	require.Contains(t, api.keys(), "s.ssec")
	_, err = sse.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("b"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("s")}}, Quiet: aws.Bool(true)}})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"v.instruction"}, api.keys())
}

// requestRecorder records the bucket owner and the number of request
// options of every call, and sends the request on without the owner (the
// test server has no accounts).
type requestRecorder struct {
	s3Full
	mu     sync.Mutex
	owners map[string]int // owner ("" for none) → calls
	opts   []int
}

func (r *requestRecorder) note(owner **string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owners[aws.ToString(*owner)]++
	r.opts = append(r.opts, n)
	*owner = nil
}

func (r *requestRecorder) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	req := *in
	r.note(&req.ExpectedBucketOwner, len(optFns))
	return r.s3Full.HeadObject(ctx, &req, optFns...)
}

func (r *requestRecorder) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	req := *in
	r.note(&req.ExpectedBucketOwner, len(optFns))
	return r.s3Full.GetObject(ctx, &req, optFns...)
}

func (r *requestRecorder) CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	req := *in
	r.note(&req.ExpectedBucketOwner, len(optFns))
	req.ExpectedSourceBucketOwner = nil
	return r.s3Full.CopyObject(ctx, &req, optFns...)
}

func (r *requestRecorder) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	req := *in
	r.note(&req.ExpectedBucketOwner, len(optFns))
	return r.s3Full.ListObjectsV2(ctx, &req, optFns...)
}

// TestRewrapRequestOptions: Rewrap and RewrapAll take request options and
// the bucket owner, as S3's calls do, and give them to every request they
// make.
func TestRewrapRequestOptions(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	old, cur := newAES(t, "2025"), newAES(t, "2026")
	w := newClient(t, raw, old)
	for _, k := range []string{"p/1", "p/2"} {
		put(t, w, bucket, k, strings.NewReader("body of "+k))
	}
	rec := &requestRecorder{s3Full: raw, owners: map[string]int{}}
	c := clientFor(t, rec, cur, []keyring.Keyring{old})
	opt := func(*s3.Options) {}
	res, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: aws.String(bucket), Key: aws.String("p/1"), ExpectedBucketOwner: aws.String("111122223333")}, opt)
	require.NoError(t, err)
	require.Equal(t, s3crypto.Rewrapped, res.Status)
	all, err := c.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: aws.String(bucket), Prefix: aws.String("p/"), ExpectedBucketOwner: aws.String("111122223333")}, opt, opt)
	require.NoError(t, err)
	require.Equal(t, 1, all.Rewrapped)
	require.Equal(t, 1, all.AlreadyCurrent)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, map[string]int{"111122223333": rec.owners["111122223333"]}, rec.owners, "every request carries the owner")
	require.NotZero(t, rec.owners["111122223333"])
	for _, n := range rec.opts {
		require.GreaterOrEqual(t, n, 1, "every request carries the caller's options")
	}
	got, err := get(newClient(t, raw, cur), bucket, "p/2")
	require.NoError(t, err)
	require.Equal(t, "body of p/2", string(got))
}
