package s3crypto_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/s3envelope/s3envelope/internal/testenv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// These tests run against a real S3 server: versitygw, which ./scripts/test
// builds and starts on 127.0.0.1. They fail, never skip, without it.

// realS3 returns an S3 client for the test server and a fresh bucket,
// removed when the test ends.
func realS3(t *testing.T) (*s3.Client, string) {
	t.Helper()
	c := testenv.S3(t)
	return c, testenv.Bucket(t, c, "s3env-")
}

func TestS3RoundTrips(t *testing.T) {
	api, bucket := realS3(t)
	roundTrips(t, api, bucket)
}

// TestS3Large streams a generated 128 MiB object up and down (the
// generator is seekable, so nothing is spooled on the way up).
func TestS3Large(t *testing.T) {
	api, bucket := realS3(t)
	for _, v := range []variant{{envelope.FormatV3, false}, {envelope.FormatV2, true}} {
		t.Run(v.String(), func(t *testing.T) {
			start := time.Now()
			largeRoundTrip(t, newClient(t, api, masterKeys(t)[0], v.apply), bucket, 128<<20)
			t.Logf("128 MiB up and down in %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

func TestS3UnknownLength(t *testing.T) {
	api, bucket := realS3(t)
	c := newClient(t, api, masterKeys(t)[0])
	pt := random(9<<20 + 1)
	put(t, c, bucket, "stream", io.MultiReader(bytes.NewReader(pt[:100]), bytes.NewReader(pt[100:])))
	got, err := get(c, bucket, "stream")
	require.NoError(t, err)
	require.True(t, bytes.Equal(pt, got))
}

// TestS3StoredObject checks what the server holds: ciphertext of plaintext
// length + 16, the envelope in metadata, nothing of the plaintext.
func TestS3StoredObject(t *testing.T) {
	api, bucket := realS3(t)
	c := newClient(t, api, masterKeys(t)[0])
	pt := bytes.Repeat([]byte("secret "), 1000)
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader(pt),
		Metadata: map[string]string{"owner": "alice"}, ContentType: aws.String("text/plain"),
	})
	require.NoError(t, err)
	raw, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	require.NoError(t, err)
	stored, err := io.ReadAll(raw.Body)
	raw.Body.Close()
	require.NoError(t, err)
	require.Len(t, stored, len(pt)+16)
	require.False(t, bytes.Contains(stored, []byte("secret")))
	require.Equal(t, "115", raw.Metadata["x-amz-c"])
	require.Equal(t, "02", raw.Metadata["x-amz-w"])
	require.Equal(t, "alice", raw.Metadata["owner"])

	h, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	require.NoError(t, err)
	require.Equal(t, int64(len(pt)), aws.ToInt64(h.ContentLength))
	require.Equal(t, "text/plain", aws.ToString(h.ContentType))

	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	require.NoError(t, err)
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	require.NoError(t, err)
	require.Equal(t, pt, got)
	require.Equal(t, "text/plain", aws.ToString(out.ContentType))
}

// TestS3Tamper edits the stored object behind the client's back: body bits
// and envelope fields. Every GET fails authentication and releases nothing.
func TestS3Tamper(t *testing.T) {
	api, bucket := realS3(t)
	ctx := context.Background()
	for _, v := range []variant{{envelope.FormatV2, false}, {envelope.FormatV3, false}} {
		c := newClient(t, api, masterKeys(t)[0], v.apply)
		put(t, c, bucket, "t", bytes.NewReader(random(1000)))
		raw, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("t")})
		require.NoError(t, err)
		body, _ := io.ReadAll(raw.Body)
		raw.Body.Close()
		meta := raw.Metadata
		store := func(b []byte, m map[string]string) {
			_, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("t"), Body: bytes.NewReader(b), Metadata: m})
			require.NoError(t, err)
		}
		for _, i := range []int{0, 1, 500, len(body) - 17, len(body) - 16, len(body) - 1} {
			b := bytes.Clone(body)
			b[i] ^= 0x04
			store(b, meta)
			got, err := get(c, bucket, "t")
			require.ErrorIs(t, err, envelope.ErrAuthentication, "%v body byte %d", v, i)
			require.Empty(t, got)
		}
		store(body[:len(body)-1], meta)
		_, err = get(c, bucket, "t")
		require.ErrorIs(t, err, envelope.ErrAuthentication, "truncated")
		store(append(bytes.Clone(body), 0), meta)
		_, err = get(c, bucket, "t")
		require.ErrorIs(t, err, envelope.ErrAuthentication, "extended")
	}
}

func TestS3InstructionFileAndDelete(t *testing.T) {
	api, bucket := realS3(t)
	ctx := context.Background()
	c := newClient(t, api, masterKeys(t)[1], func(o *s3crypto.Options) { o.InstructionFile = true })
	// Metadata near S3's limit still fits: the envelope is elsewhere.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("doc"), Body: bytes.NewReader([]byte("body")),
		Metadata: map[string]string{"big": string(bytes.Repeat([]byte("a"), 1800))},
	})
	require.NoError(t, err)
	got, err := get(c, bucket, "doc")
	require.NoError(t, err)
	require.Equal(t, "body", string(got))

	_, err = api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("doc.instruction")})
	require.NoError(t, err)
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("doc")})
	require.NoError(t, err)
	_, err = api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("doc.instruction")})
	require.Error(t, err, "instruction file must be deleted with its object")

	// With the envelope in metadata the same metadata is refused before
	// sending, with advice.
	m := newClient(t, api, masterKeys(t)[1])
	_, err = m.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("doc2"), Body: bytes.NewReader([]byte("body")),
		Metadata: map[string]string{"big": string(bytes.Repeat([]byte("a"), 1800))},
	})
	require.ErrorIs(t, err, envelope.ErrTooLarge)
}
