package s3crypto_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
)

// TestPutObjectRetriedMidBody: a server (behind a lying proxy, over TLS so
// that the SDK streams the body unsigned) reads part of an encrypted body
// and answers 500; the real *s3.Client rewinds the body and sends it
// again. The second pass is sealed again and checked piece by piece against
// the first: the object stored opens to the plaintext. If the caller's
// bytes changed between the passes in a piece the first pass sent, the
// upload fails, and nothing that opens is stored. (A change past what the first pass
// sent is no nonce reuse — only one ciphertext of it ever leaves.)
func TestPutObjectRetriedMidBody(t *testing.T) {
	api, bucket := realS3(t)
	kr := newAES(t, "a")
	for _, v := range []variant{{format: envelope.FormatV3}, {format: envelope.FormatV2}, {format: envelope.FormatSegmented}} {
		for _, change := range []bool{false, true} {
			key := "retry/" + v.String()
			if change {
				key += "-changed"
			}
			l := newLiar(t, false, true)
			var failed atomic.Bool
			l.set(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPut || objectKey(r, bucket) != key || failed.Swap(true) {
					return false
				}
				io.CopyN(io.Discard, r.Body, 3<<20)
				http.Error(w, "<Error><Code>InternalError</Code></Error>", http.StatusInternalServerError)
				return true
			}, nil)
			c := newClient(t, l.client(t, true), kr, v.apply)
			pt := random(16 << 20)
			body := &changingBody{ReadSeeker: bytes.NewReader(pt), data: pt, change: change}
			_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: body})
			require.True(t, failed.Load(), "the first attempt was not failed by the proxy")
			if change {
				require.ErrorContains(t, err, "changed between reads", "%v", v)
				// S3 refuses a body shorter than its Content-Length;
				// versitygw was seen to keep what arrived before the client
				// aborted. Whatever a server kept, it must not open.
				if _, err := api.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(key)}); err == nil {
					_, err := get(newClient(t, api, kr, v.apply), bucket, key)
					require.ErrorIs(t, err, envelope.ErrAuthentication, "%v: the truncated object the server kept opened", v)
				}
				continue
			}
			require.NoError(t, err, "%v", v)
			got, err := get(newClient(t, api, kr, v.apply), bucket, key)
			require.NoError(t, err)
			require.True(t, bytes.Equal(pt, got), "%v: stored object differs", v)
		}
	}
}

// changingBody is a caller's seekable body; with change set, it flips a
// byte in its second MiB (sent before the proxy fails the first attempt)
// when rewound after a pass has begun (in the
// goroutine that rewinds it, so the sealing never races with it).
type changingBody struct {
	io.ReadSeeker
	data   []byte
	change bool
	read   int64
}

func (b *changingBody) Read(p []byte) (int, error) {
	n, err := b.ReadSeeker.Read(p)
	b.read += int64(n)
	return n, err
}

func (b *changingBody) Seek(off int64, whence int) (int64, error) {
	if b.change && whence == io.SeekStart && off == 0 && b.read > 0 {
		b.data[1<<20+5] ^= 1
		b.change = false
	}
	return b.ReadSeeker.Seek(off, whence)
}
