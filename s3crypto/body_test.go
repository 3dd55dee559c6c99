package s3crypto_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
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

// Bodies above 1 MiB are sealed a piece ahead on other goroutines
// (Sealer.SealAhead); smaller ones in the caller's.
var rereadSizes = []int{300<<10 + 5, 3<<20 + 17}

func TestSeekableBodyRereadLikeTheSDK(t *testing.T) {
	for _, n := range rereadSizes {
		for _, v := range []variant{{format: envelope.FormatV3}, {format: envelope.FormatV2}, {format: envelope.FormatSegmented}} {
			t.Run(fmt.Sprint(v, n), func(t *testing.T) {
				api := &rereadS3{memS3: newMemS3()}
				c := newClient(t, api, masterKeys(t)[0], v.apply)
				pt := random(n)
				// The caller's body starts mid-stream: only the rest is the object.
				body := bytes.NewReader(append([]byte("skip"), pt...))
				_, err := body.Seek(4, io.SeekStart)
				require.NoError(t, err)
				put(t, c, "b", "k", body)
				got, err := get(c, "b", "k")
				require.NoError(t, err)
				require.True(t, bytes.Equal(pt, got))
			})
		}
	}
}

// TestBodyChangedBetweenReads: re-encrypting different bytes under the same
// data key and nonce would leak; the upload must fail instead.
func TestBodyChangedBetweenReads(t *testing.T) {
	for _, n := range rereadSizes {
		for _, at := range []int{n / 2, n - 1} {
			buf := random(n)
			api := &rereadS3{memS3: newMemS3(), between: func() { buf[at] ^= 1 }}
			c := newClient(t, api, masterKeys(t)[0])
			_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(buf)})
			require.ErrorContains(t, err, "changed between reads", "%d-byte body changed at %d", n, at)
			require.Empty(t, api.keys())
		}
	}
}

// abandonS3 reads part of each PutObject body and fails, as a transport
// does when the server answers before the body is sent.
type abandonS3 struct{ *memS3 }

func (a abandonS3) PutObject(ctx context.Context, in *s3.PutObjectInput, fns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if _, err := io.ReadFull(in.Body, make([]byte, 100<<10)); err != nil {
		return nil, err
	}
	return nil, errors.New("server closed the connection")
}

// TestAbandonedBodyNotReadAfterReturn: when PutObject returns, the goroutines
// sealing ahead have stopped: the caller's body is theirs again.
func TestAbandonedBodyNotReadAfterReturn(t *testing.T) {
	src := &countingSeeker{ReadSeeker: bytes.NewReader(random(8 << 20))}
	c := newClient(t, abandonS3{newMemS3()}, masterKeys(t)[0])
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: src})
	require.ErrorContains(t, err, "server closed the connection")
	read := src.n.Load()
	require.Less(t, read, int64(8<<20), "the whole body was read for a request that sent 100 KiB")
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, read, src.n.Load(), "body read after PutObject returned")
}

type countingSeeker struct {
	io.ReadSeeker
	n atomic.Int64
}

func (c *countingSeeker) Read(p []byte) (int, error) {
	n, err := c.ReadSeeker.Read(p)
	c.n.Add(int64(n))
	return n, err
}
