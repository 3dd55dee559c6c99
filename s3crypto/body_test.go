package s3crypto_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
)

// rereadS3 reads each PutObject body the way the SDK does over plain HTTP:
// it measures it by seeking, reads it whole (to sign it), rewinds, and reads
// it again to send it. The two reads must agree.
type rereadS3 struct {
	*memS3
	between func() // called between the two reads
}

func (r *rereadS3) PutObject(ctx context.Context, in *s3.PutObjectInput, fns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	rs, ok := in.Body.(io.ReadSeeker)
	if !ok {
		return nil, errors.New("body not seekable")
	}
	cur, _ := rs.Seek(0, io.SeekCurrent)
	end, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if _, err := rs.Seek(cur, io.SeekStart); err != nil {
		return nil, err
	}
	if end != aws.ToInt64(in.ContentLength) {
		return nil, errors.New("seek length differs from ContentLength")
	}
	first, err := io.ReadAll(rs)
	if err != nil {
		return nil, err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if r.between != nil {
		r.between()
	}
	second, err := io.ReadAll(rs)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(first, second) {
		return nil, errors.New("two reads of the body differ")
	}
	in2 := *in
	in2.Body = bytes.NewReader(second)
	return r.memS3.PutObject(ctx, &in2, fns...)
}

func TestSeekableBodyRereadLikeTheSDK(t *testing.T) {
	api := &rereadS3{memS3: newMemS3()}
	c := newClient(t, api, masterKeys(t)[0])
	pt := random(300<<10 + 5)
	// The caller's body starts mid-stream: only the rest is the object.
	body := bytes.NewReader(append([]byte("skip"), pt...))
	_, err := body.Seek(4, io.SeekStart)
	require.NoError(t, err)
	put(t, c, "b", "k", body)
	got, err := get(c, "b", "k")
	require.NoError(t, err)
	require.True(t, bytes.Equal(pt, got))
}

// TestBodyChangedBetweenReads: re-encrypting different bytes under the same
// data key and nonce would leak; the upload must fail instead.
func TestBodyChangedBetweenReads(t *testing.T) {
	buf := random(200 << 10)
	api := &rereadS3{memS3: newMemS3(), between: func() { buf[150<<10] ^= 1 }}
	c := newClient(t, api, masterKeys(t)[0])
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(buf)})
	require.ErrorContains(t, err, "changed between reads")
	require.Empty(t, api.keys())
}
