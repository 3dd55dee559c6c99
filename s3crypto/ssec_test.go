package s3crypto_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3envelope/s3envelope/internal/testenv"

	"github.com/s3envelope/s3envelope/internal/kmsctx"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// These tests run against MinIO over TLS on 127.0.0.1, which ./scripts/test
// builds and starts with a fresh self-signed certificate: the one local
// server found to enforce SSE-C as AWS does (plain HTTP refused, a wrong
// key 403, a missing key 400, the data encrypted at rest). The client
// trusts that certificate and nothing else. They fail, never skip, without
// the server. versitygw ignores SSE-C headers: never test SSE-C on it.

// realSSEC returns an S3 client for the MinIO test server and a fresh bucket.
func realSSEC(t testing.TB) (*s3.Client, string) {
	t.Helper()
	c := testenv.SSEC(t)
	return c, testenv.Bucket(t, c, "s3env-ssec-")
}

func sseClient(t testing.TB, api s3crypto.S3API, cur keyring.Keyring, others ...keyring.Keyring) *s3crypto.SSECClient {
	t.Helper()
	c, err := s3crypto.NewSSEC(api, provider(t, cur, others...))
	require.NoError(t, err)
	return c
}

// companionOf reads an object's companion as stored.
func companionOf(t *testing.T, api *s3.Client, bucket, key string) (*format.Companion, []byte) {
	t.Helper()
	out, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key + format.CompanionSuffix)})
	require.NoError(t, err, "reading the companion of %s", key)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	comp, err := format.ParseCompanion(b)
	require.NoError(t, err)
	return comp, b
}

// dataKeyOf unwraps the object's current data key with kr, as only a
// holder of the master key can.
func dataKeyOf(t *testing.T, api *s3.Client, kr keyring.Keyring, bucket, key string) []byte {
	t.Helper()
	comp, _ := companionOf(t, api, bucket, key)
	k, err := format.OpenCustomerKey(context.Background(), kr, &comp.Keys[0])
	require.NoError(t, err)
	return k
}

// rawGet gets the object with the SDK alone, with dataKey as the SSE-C key
// (nil: none).
func rawGet(api *s3.Client, bucket, key string, dataKey []byte) ([]byte, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if dataKey != nil {
		sum := md5.Sum(dataKey)
		in.SSECustomerAlgorithm = aws.String("AES256")
		in.SSECustomerKey = aws.String(base64.StdEncoding.EncodeToString(dataKey))
		in.SSECustomerKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}
	out, err := api.GetObject(context.Background(), in)
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func sseRange(c objectClient, bucket, key, rng string) ([]byte, *s3.GetObjectOutput, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(rng)})
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out, err
}

// TestSSECRoundTrips puts objects of several sizes with managed SSE-C keys,
// reads them whole and in ranges, and checks what S3 was given: the data key
// (with its correct MD5) as the SSE-C key, nothing stored that holds it in
// clear, and an object S3 refuses without that key (400) or with another
// (403).
func TestSSECRoundTrips(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	for _, kr := range masterKeys(t) {
		c := sseClient(t, api, kr)
		for _, size := range []int{0, 1, 100, 64<<10 + 7, 5<<20 + 3} {
			key := fmt.Sprintf("rt/%s/%d", wrapName(kr), size)
			t.Run(key, func(t *testing.T) {
				body := random(size)
				put(t, c, bucket, key, bytes.NewReader(body))
				got, err := get(c, bucket, key)
				require.NoError(t, err)
				require.True(t, bytes.Equal(body, got), "round trip differs")

				head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				require.NoError(t, err)
				require.EqualValues(t, size, aws.ToInt64(head.ContentLength))
				require.Equal(t, "AES256", aws.ToString(head.SSECustomerAlgorithm))

				// The data key is the SSE-C key, and S3 agrees on its MD5.
				dk := dataKeyOf(t, api, kr, bucket, key)
				sum := md5.Sum(dk)
				require.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), aws.ToString(head.SSECustomerKeyMD5))
				raw, err := rawGet(api, bucket, key, dk)
				require.NoError(t, err)
				require.True(t, bytes.Equal(body, raw))

				// The companion holds one wrapped key and never the key itself.
				comp, stored := companionOf(t, api, bucket, key)
				require.Len(t, comp.Keys, 1)
				require.False(t, bytes.Contains(stored, dk))
				require.NotContains(t, string(stored), base64.StdEncoding.EncodeToString(dk))
				require.NotContains(t, string(stored), hex.EncodeToString(dk))

				if size == 0 {
					// MinIO serves an empty SSE-C object without its key
					// (there is nothing to decrypt); AWS refuses it.
					return
				}
				// S3 refuses the object without the key and with another.
				_, err = rawGet(api, bucket, key, nil)
				require.Error(t, err)
				require.Equal(t, 400, httpStatus(err), "%v", err)
				_, err = rawGet(api, bucket, key, random(32))
				require.Error(t, err)
				require.Equal(t, 403, httpStatus(err), "%v", err)

				if size < 200 {
					return
				}
				for _, r := range []struct {
					rng        string
					start, end int // [start, end)
				}{
					{"bytes=0-0", 0, 1},
					{"bytes=10-99", 10, 100},
					{fmt.Sprintf("bytes=%d-", size-50), size - 50, size},
					{"bytes=-77", size - 77, size},
					{fmt.Sprintf("bytes=%d-%d", size/2, size+1000), size / 2, size},
				} {
					got, out, err := sseRange(c, bucket, key, r.rng)
					require.NoError(t, err, r.rng)
					require.True(t, bytes.Equal(body[r.start:r.end], got), "range %s", r.rng)
					require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", r.start, r.end-1, size), aws.ToString(out.ContentRange))
				}
			})
		}
	}
}

// TestSSECKMS uses a KMS master key (local-kms): the data key comes from
// GenerateDataKey with the SSE-C content algorithm in its context.
func TestSSECKMS(t *testing.T) {
	api, bucket := realSSEC(t)
	kc := realKMS(t)
	kr := newKMSKeyring(t, kc, newKMSKey(t, kc))
	c := sseClient(t, api, kr)
	body := random(300 << 10)
	put(t, c, bucket, "kms", bytes.NewReader(body))
	got, err := get(c, bucket, "kms")
	require.NoError(t, err)
	require.True(t, bytes.Equal(body, got))
	comp, _ := companionOf(t, api, bucket, "kms")
	require.Equal(t, format.WrapKMSContext, comp.Keys[0].Algorithm)
	require.Equal(t, format.ContentSSEC, comp.Keys[0].Description[kmsctx.ReservedKey])

	// A data key wrapped for SSE-C is not a client-side content key.
	_, err = kr.Unwrap(context.Background(), &comp.Keys[0], format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrAuthentication)
}

// TestSSECOtherKeys: an SSE-C object is unreadable to a client without its
// master key, and to a client-side client.
func TestSSECOtherKeys(t *testing.T) {
	api, bucket := realSSEC(t)
	owner := newAES(t, "owner")
	put(t, sseClient(t, api, owner), bucket, "k", bytes.NewReader([]byte("secret")))

	_, err := get(sseClient(t, api, newAES(t, "stranger")), bucket, "k")
	require.ErrorIs(t, err, envelope.ErrNoMasterKey)
	_, err = get(sseClient(t, api, newAES(t, "owner")), bucket, "k") // same description, another key
	require.ErrorIs(t, err, envelope.ErrAuthentication)
	_, err = get(newClient(t, api, owner), bucket, "k") // client-side: S3 wants the key
	require.Error(t, err)
	require.Equal(t, 400, httpStatus(err), "%v", err)

	// Overwritten behind the client's back with another key: S3 refuses
	// the recorded one, and the error says so without showing it.
	dk := dataKeyOf(t, api, owner, bucket, "k")
	other := random(32)
	in := ssecHead(bucket, "k", other)
	_, err = api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: in.Bucket, Key: in.Key, Body: strings.NewReader("x"),
		SSECustomerAlgorithm: in.SSECustomerAlgorithm, SSECustomerKey: in.SSECustomerKey, SSECustomerKeyMD5: in.SSECustomerKeyMD5})
	require.NoError(t, err)
	_, err = get(sseClient(t, api, owner), bucket, "k")
	require.ErrorIs(t, err, s3crypto.ErrCustomerKeyRefused)
	require.Equal(t, 403, httpStatus(err))
	for _, k := range [][]byte{dk, other} {
		for _, enc := range []string{base64.StdEncoding.EncodeToString(k), hex.EncodeToString(k), string(k)} {
			require.NotContains(t, err.Error(), enc)
		}
	}
}

// TestSSECMissing: a missing object is S3's NoSuchKey / NotFound; an object
// that was not written with a managed key is ErrNoEnvelope; a caller's own
// SSE-C key is refused.
func TestSSECMissing(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	c := sseClient(t, api, newAES(t, "a"))
	_, err := get(c, bucket, "nothing")
	var nsk *types.NoSuchKey
	require.ErrorAs(t, err, &nsk)
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("nothing")})
	var nf *types.NotFound
	require.ErrorAs(t, err, &nf)

	_, err = api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain"), Body: strings.NewReader("x")})
	require.NoError(t, err)
	_, err = get(c, bucket, "plain")
	require.ErrorIs(t, err, envelope.ErrNoEnvelope)

	k := base64.StdEncoding.EncodeToString(random(32))
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("own"), Body: strings.NewReader("x"), SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: &k})
	require.ErrorIs(t, err, s3crypto.ErrManagedCustomerKey)
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain"), SSECustomerKey: &k})
	require.ErrorIs(t, err, s3crypto.ErrManagedCustomerKey)
}

// TestSSECOverwriteAndDelete: an overwrite gets a new data key, the old one
// is dropped from the companion, and DeleteObject removes both objects.
func TestSSECOverwriteAndDelete(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	kr := newAES(t, "a")
	c := sseClient(t, api, kr)
	put(t, c, bucket, "k", strings.NewReader("one"))
	k1 := dataKeyOf(t, api, kr, bucket, "k")
	put(t, c, bucket, "k", strings.NewReader("two"))
	k2 := dataKeyOf(t, api, kr, bucket, "k")
	require.NotEqual(t, k1, k2)
	comp, _ := companionOf(t, api, bucket, "k")
	require.Len(t, comp.Keys, 1)
	got, err := get(c, bucket, "k")
	require.NoError(t, err)
	require.Equal(t, "two", string(got))

	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	require.NoError(t, err)
	list, err := api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	require.Empty(t, list.Contents)
}

// TestSSECMultipart uploads in parts (the key on the create, every part and
// the complete) and reads back whole, across part boundaries, and with the
// Downloader.
func TestSSECMultipart(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	kr := newAES(t, "a")
	c := sseClient(t, api, kr)
	for _, size := range []int64{1 << 20, 12<<20 + 5, 5 << 20 * 2} {
		key := fmt.Sprintf("mp/%d", size)
		body := random(int(size))
		for _, known := range []bool{true, false} {
			var r io.Reader = bytes.NewReader(body)
			if !known {
				r = io.MultiReader(r)
			}
			up := s3crypto.NewUploader(c, func(o *s3crypto.UploaderOptions) { o.PartSize = minPartSize; o.Concurrency = 3 })
			out, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: r})
			require.NoError(t, err)
			require.Equal(t, int((size+minPartSize-1)/minPartSize), out.Parts)
			got, err := get(c, bucket, key)
			require.NoError(t, err)
			require.True(t, bytes.Equal(body, got))
			if b := int(minPartSize); int(size) > b+10 { // across the first part boundary
				got, _, err = sseRange(c, bucket, key, fmt.Sprintf("bytes=%d-%d", b-10, b+9))
				require.NoError(t, err)
				require.True(t, bytes.Equal(body[b-10:b+10], got))

				part, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), PartNumber: aws.Int32(2)})
				require.NoError(t, err)
				got, err = io.ReadAll(part.Body)
				part.Body.Close()
				require.NoError(t, err)
				require.True(t, bytes.Equal(body[b:min(2*b, int(size))], got), "part 2")
			}

			var buf bytes.Buffer
			n, err := s3crypto.NewDownloader(c, func(o *s3crypto.DownloaderOptions) { o.PartSize = 1 << 20; o.Concurrency = 4 }).
				Download(ctx, &buf, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			require.NoError(t, err)
			require.Equal(t, size, n)
			require.True(t, bytes.Equal(body, buf.Bytes()))

			_, err = rawGet(api, bucket, key, nil)
			require.Equal(t, 400, httpStatus(err), "%v", err)
			_, err = rawGet(api, bucket, key, random(32))
			require.Equal(t, 403, httpStatus(err), "%v", err)
			comp, _ := companionOf(t, api, bucket, key)
			require.Len(t, comp.Keys, 1)
			uploads, err := api.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
			require.NoError(t, err)
			require.Empty(t, uploads.Uploads)
		}
	}
}

// TestSSECCopy copies an object to a new key: the copy has its own data
// key, which does not open the source, and the source's key does not open
// the copy.
func TestSSECCopy(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	kr := newAES(t, "a")
	c := sseClient(t, api, kr)
	body := random(1<<20 + 9)
	put(t, c, bucket, "src key+with space", bytes.NewReader(body))
	_, err := c.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("dst"),
		CopySource: aws.String(bucket + "/" + "src%20key%2Bwith%20space"),
	})
	require.NoError(t, err)
	got, err := get(c, bucket, "dst")
	require.NoError(t, err)
	require.True(t, bytes.Equal(body, got))
	srcKey := dataKeyOf(t, api, kr, bucket, "src key+with space")
	dstKey := dataKeyOf(t, api, kr, bucket, "dst")
	require.NotEqual(t, srcKey, dstKey)
	_, err = rawGet(api, bucket, "dst", srcKey)
	require.Equal(t, 403, httpStatus(err), "%v", err)
	_, err = rawGet(api, bucket, "src key+with space", dstKey)
	require.Equal(t, 403, httpStatus(err), "%v", err)

	// A client-side Client has no CopyObject: its objects are copied by
	// reading and putting them (or rewrapped in place by Rewrap).
	_, copies := any(newClient(t, api, kr)).(interface {
		CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	})
	require.False(t, copies)
}

// TestSSECRewrap rotates the master key: only the companion is rewritten
// (the object's ETag and data key stay), and afterwards the object opens
// with the new master key only.
func TestSSECRewrap(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	for _, wraps := range []struct{ old, new keyring.Keyring }{
		{newAES(t, "old"), newAES(t, "new")},
		{newAES(t, "old"), newRSA(t, 0, "new-rsa")},
		{newRSA(t, 1, "old-rsa"), newAES(t, "new")},
	} {
		key := fmt.Sprintf("rw/%s-%s", wrapName(wraps.old), wrapName(wraps.new))
		body := random(70 << 10)
		put(t, sseClient(t, api, wraps.old), bucket, key, bytes.NewReader(body))
		dk := dataKeyOf(t, api, wraps.old, bucket, key)
		head1, err := api.HeadObject(ctx, ssecHead(bucket, key, dk))
		require.NoError(t, err)

		rot := sseClient(t, api, wraps.new, wraps.old)
		out, err := rot.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: aws.String(bucket), Key: aws.String(key), EnforceRotation: true})
		require.NoError(t, err)
		require.Equal(t, s3crypto.Rewrapped, out.Status)
		require.False(t, out.InstructionFile)
		require.True(t, out.Written)
		require.True(t, out.Verified)
		require.False(t, out.Rekeyed)

		head2, err := api.HeadObject(ctx, ssecHead(bucket, key, dk))
		require.NoError(t, err, "the data key must still open the object")
		require.Equal(t, aws.ToString(head1.ETag), aws.ToString(head2.ETag), "the object was rewritten")
		require.Equal(t, head1.LastModified, head2.LastModified)
		require.Equal(t, dk, dataKeyOf(t, api, wraps.new, bucket, key))

		got, err := get(sseClient(t, api, wraps.new), bucket, key)
		require.NoError(t, err)
		require.True(t, bytes.Equal(body, got))
		_, err = get(sseClient(t, api, wraps.old), bucket, key)
		require.ErrorIs(t, err, envelope.ErrNoMasterKey)

		again, err := rot.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		require.NoError(t, err)
		require.Equal(t, s3crypto.AlreadyCurrent, again.Status)
	}
}

func ssecHead(bucket, key string, dk []byte) *s3.HeadObjectInput {
	sum := md5.Sum(dk)
	return &s3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
		SSECustomerAlgorithm: aws.String("AES256"),
		SSECustomerKey:       aws.String(base64.StdEncoding.EncodeToString(dk)),
		SSECustomerKeyMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
}

// TestSSECRekey retires the data key too: S3 copies the object onto itself
// under a fresh key (in one copy, and part by part as for objects over
// 5 GiB); the old data key no longer opens it, and the companion holds only
// the new key, wrapped by the current master key.
func TestSSECRekey(t *testing.T) {
	t.Run("copy", func(t *testing.T) { testSSECRekey(t, 2<<20+1, false) })
	t.Run("multipart copy", func(t *testing.T) {
		defer s3crypto.SetMultipartCopyForTest(8<<20, 5<<20)()
		testSSECRekey(t, 11<<20+5, true)
	})
}

func testSSECRekey(t *testing.T, size int, multipart bool) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	old, cur := newAES(t, "old"), newAES(t, "new")
	body := random(size)
	_, err := sseClient(t, api, old).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader(body),
		ContentType: aws.String("text/x-test"), Metadata: map[string]string{"color": "blue"},
		Tagging: aws.String("t=1"),
	})
	require.NoError(t, err)
	oldKey := dataKeyOf(t, api, old, bucket, "k")

	rot := sseClient(t, api, cur, old)
	dry, err := rot.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: aws.String(bucket), Key: aws.String("k"), Rekey: true, DryRun: true})
	require.NoError(t, err)
	require.False(t, dry.Written)
	require.Equal(t, oldKey, dataKeyOf(t, api, old, bucket, "k"))

	out, err := rot.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: aws.String(bucket), Key: aws.String("k"), Rekey: true})
	require.NoError(t, err)
	require.Equal(t, s3crypto.Rewrapped, out.Status)
	require.True(t, out.Rekeyed)
	require.True(t, out.Written)
	require.True(t, out.Verified)
	require.Equal(t, multipart, out.Multipart)

	_, err = rawGet(api, bucket, "k", oldKey)
	require.Equal(t, 403, httpStatus(err), "the old data key still opens the object: %v", err)
	comp, _ := companionOf(t, api, bucket, "k")
	require.Len(t, comp.Keys, 1)
	newKey := dataKeyOf(t, api, cur, bucket, "k")
	require.NotEqual(t, oldKey, newKey)

	c := sseClient(t, api, cur)
	got, err := get(c, bucket, "k")
	require.NoError(t, err)
	require.True(t, bytes.Equal(body, got))
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	require.NoError(t, err)
	require.Equal(t, "text/x-test", aws.ToString(head.ContentType))
	require.Equal(t, "blue", head.Metadata["color"])
	tags, err := api.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	require.NoError(t, err)
	require.Len(t, tags.TagSet, 1)

	_, err = newClient(t, api, cur).Rewrap(ctx, &s3crypto.RewrapInput{Bucket: aws.String(bucket), Key: aws.String("k"), Rekey: true})
	require.ErrorIs(t, err, envelope.ErrUnsupported)
}

// TestSSECRewrapAll rotates a bucket: every companion is rewritten, the
// companions themselves are counted as handled with their objects, plain
// objects as not encrypted; with Rekey every data key is replaced.
func TestSSECRewrapAll(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	old, cur := newAES(t, "old"), newAES(t, "new")
	w := sseClient(t, api, old)
	bodies := map[string][]byte{}
	for i := range 7 {
		k := fmt.Sprintf("all/%02d", i)
		bodies[k] = random(1000 + i)
		put(t, w, bucket, k, bytes.NewReader(bodies[k]))
	}
	_, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("all/plain"), Body: strings.NewReader("p")})
	require.NoError(t, err)
	oldKeys := map[string][]byte{}
	for k := range bodies {
		oldKeys[k] = dataKeyOf(t, api, old, bucket, k)
	}

	rot := sseClient(t, api, cur, old)
	out, err := rot.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: aws.String(bucket), Concurrency: 3})
	require.NoError(t, err)
	require.Equal(t, 7, out.Rewrapped)
	require.Equal(t, 7, out.EnvelopeObjects)
	require.Equal(t, 1, out.NotEncrypted)
	require.Zero(t, out.Failed)
	for k, b := range bodies {
		got, err := get(sseClient(t, api, cur), bucket, k)
		require.NoError(t, err)
		require.True(t, bytes.Equal(b, got))
		require.Equal(t, oldKeys[k], dataKeyOf(t, api, cur, bucket, k))
	}

	out, err = rot.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: aws.String(bucket), Rekey: true})
	require.NoError(t, err)
	require.Equal(t, 7, out.Rewrapped)
	for k, b := range bodies {
		got, err := get(sseClient(t, api, cur), bucket, k)
		require.NoError(t, err)
		require.True(t, bytes.Equal(b, got))
		_, err = rawGet(api, bucket, k, oldKeys[k])
		require.Equal(t, 403, httpStatus(err), "%s: %v", k, err)
	}
}

// faultyPuts fails the object writes of a SSECClient (not
// the companion's) as told.
type faultyPuts struct {
	*s3.Client
	// put decides, per object PUT: "fail" (not sent), "lose" (sent, the
	// response lost), "" (sent).
	put func() string
	// headFails makes the HEAD that checks a failed write fail too.
	headFails bool
	// beforeCompanion, if set, runs before each companion write is sent.
	beforeCompanion func()
}

var errInjected = errors.New("injected failure")

func (f *faultyPuts) PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if strings.HasSuffix(aws.ToString(in.Key), format.CompanionSuffix) {
		if f.beforeCompanion != nil {
			f.beforeCompanion()
		}
		return f.Client.PutObject(ctx, in, optFns...)
	}
	switch f.put() {
	case "fail":
		return nil, errInjected
	case "lose":
		if _, err := f.Client.PutObject(ctx, in, optFns...); err != nil {
			return nil, err
		}
		return nil, errInjected
	}
	return f.Client.PutObject(ctx, in, optFns...)
}

func (f *faultyPuts) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if f.headFails {
		return nil, errInjected
	}
	return f.Client.HeadObject(ctx, in, optFns...)
}

// TestSSECFailedWrites: whatever way an overwrite fails, the object stored
// keeps a key its readers find.
func TestSSECFailedWrites(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	kr := newAES(t, "a")
	good := sseClient(t, api, kr)
	for _, tc := range []struct {
		name      string
		mode      string
		headFails bool
		want      string // what is read after the failed write
		keys      int    // the companion's keys after it
	}{
		{"not sent", "fail", false, "old", 1},       // companion put back
		{"response lost", "lose", false, "new", 1},  // found written: committed
		{"unknown outcome", "fail", true, "old", 2}, // both kept, both tried
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "f/" + tc.mode + fmt.Sprint(tc.headFails)
			put(t, good, bucket, key, strings.NewReader("old"))
			f := &faultyPuts{Client: api, put: func() string { return tc.mode }, headFails: tc.headFails}
			_, err := sseClient(t, f, kr).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("new")})
			require.ErrorIs(t, err, errInjected)
			got, err := get(good, bucket, key)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
			comp, _ := companionOf(t, api, bucket, key)
			require.Len(t, comp.Keys, tc.keys)

			// The next write settles it, whichever key was live.
			put(t, good, bucket, key, strings.NewReader("next"))
			got, err = get(good, bucket, key)
			require.NoError(t, err)
			require.Equal(t, "next", string(got))
			comp, _ = companionOf(t, api, bucket, key)
			require.Len(t, comp.Keys, 1)
		})
	}

	// A first write that fails leaves no companion behind.
	f := &faultyPuts{Client: api, put: func() string { return "fail" }}
	_, err := sseClient(t, f, kr).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("f/first"), Body: strings.NewReader("x")})
	require.ErrorIs(t, err, errInjected)
	_, err = api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("f/first" + format.CompanionSuffix)})
	var nf *types.NotFound
	require.ErrorAs(t, err, &nf)
}

// TestSSECAtRest: MinIO stores the SSE-C object's data encrypted: a
// recognizable plaintext appears nowhere under its data directory.
func TestSSECAtRest(t *testing.T) {
	api, bucket := realSSEC(t)
	dir := os.Getenv("S3ENVELOPE_SSEC_DATA_DIR")
	if dir == "" {
		t.Fatal("S3ENVELOPE_SSEC_DATA_DIR is not set: run ./scripts/test")
	}
	marker := []byte("s3envelope-at-rest-marker-" + hex.EncodeToString(random(8)))
	body := bytes.Repeat(marker, 2000)
	put(t, sseClient(t, api, newAES(t, "a")), bucket, "rest", bytes.NewReader(body))
	// A plain object with the same content is found, so the scan works.
	_, err := api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain"), Body: bytes.NewReader(body)})
	require.NoError(t, err)
	found := map[string]bool{}
	err = filepath.WalkDir(filepath.Join(dir, bucket), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, marker) {
			rel, _ := filepath.Rel(filepath.Join(dir, bucket), p)
			found[strings.SplitN(rel, string(filepath.Separator), 2)[0]] = true
		}
		return nil
	})
	require.NoError(t, err)
	require.True(t, found["plain"], "the scan did not find the plain object's data: %v", found)
	require.False(t, found["rest"], "the SSE-C object's plaintext is stored in clear")
}

// TestSSECConcurrentCompanion: another writer updates the companion between
// this writer's read and write of it; the guarded write is refused, read
// again and retried, and both writes' objects stay readable in turn.
func TestSSECConcurrentCompanion(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	kr := newAES(t, "a")
	other := sseClient(t, api, kr)
	put(t, other, bucket, "k", strings.NewReader("first"))
	var sneaks, companionWrites int
	f := &faultyPuts{Client: api, put: func() string { return "" }}
	f.beforeCompanion = func() {
		companionWrites++
		if sneaks < 2 {
			sneaks++
			put(t, other, bucket, "k", strings.NewReader(fmt.Sprintf("other %d", sneaks)))
			got, err := get(other, bucket, "k")
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("other %d", sneaks), string(got))
		}
	}
	_, err := sseClient(t, f, kr).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("mine")})
	require.NoError(t, err)
	require.Equal(t, 2, sneaks)
	require.Equal(t, 4, companionWrites, "two refused stagings, the third staged, then the commit")
	got, err := get(other, bucket, "k")
	require.NoError(t, err)
	require.Equal(t, "mine", string(got))
	comp, _ := companionOf(t, api, bucket, "k")
	require.Len(t, comp.Keys, 1)

	// A writer that always loses gives up with ErrConcurrentModification,
	// and the object stays the other writer's.
	f.beforeCompanion = func() { put(t, other, bucket, "k", strings.NewReader("always other")) }
	_, err = sseClient(t, f, kr).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("never")})
	require.ErrorIs(t, err, s3crypto.ErrConcurrentModification)
	got, err = get(other, bucket, "k")
	require.NoError(t, err)
	require.Equal(t, "always other", string(got))
}

// BenchmarkSSEC compares managed SSE-C with the SDK's own SSE-C (one fixed
// key, no key management) on MinIO: the cost of the companion.
func BenchmarkSSEC(b *testing.B) {
	api, bucket := realSSEC(b)
	ctx := context.Background()
	kr, err := keyring.NewAES(random(32), map[string]string{"kid": "bench"})
	require.NoError(b, err)
	c := sseClient(b, api, kr)
	fixed := random(32)
	raw := ssecHead(bucket, "", fixed)
	for _, size := range []int{1 << 10, 16 << 20} {
		body := random(size)
		// New keys, then overwrites of one key (which also drop the
		// replaced object's key from the companion).
		for _, mode := range []string{"new", "overwrite"} {
			key := func(prefix string, i int) *string {
				if mode == "new" {
					return aws.String(fmt.Sprint(prefix, size, "/", mode, i))
				}
				return aws.String(fmt.Sprint(prefix, size))
			}
			b.Run(fmt.Sprintf("put-%s/managed/%d", mode, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for i := 0; b.Loop(); i++ {
					_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: key("m", i), Body: bytes.NewReader(body)})
					require.NoError(b, err)
				}
			})
			b.Run(fmt.Sprintf("put-%s/sdk/%d", mode, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for i := 0; b.Loop(); i++ {
					_, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: key("r", i), Body: bytes.NewReader(body),
						SSECustomerAlgorithm: raw.SSECustomerAlgorithm, SSECustomerKey: raw.SSECustomerKey, SSECustomerKeyMD5: raw.SSECustomerKeyMD5})
					require.NoError(b, err)
				}
			})
		}
		b.Run(fmt.Sprintf("get/managed/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				got, err := get(c, bucket, fmt.Sprint("m", size))
				require.NoError(b, err)
				require.Len(b, got, size)
			}
		})
		b.Run(fmt.Sprintf("get/sdk/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				got, err := rawGet(api, bucket, fmt.Sprint("r", size), fixed)
				require.NoError(b, err)
				require.Len(b, got, size)
			}
		})
	}
}
