package s3crypto_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// endlessEnvelopes serves every instruction file and companion as a body
// that never ends, and counts the bytes taken from it.
type endlessEnvelopes struct {
	*memS3
	read int64
}

func (e *endlessEnvelopes) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	k := aws.ToString(in.Key)
	if strings.HasSuffix(k, format.InstructionSuffix) || strings.HasSuffix(k, format.CompanionSuffix) {
		return &s3.GetObjectOutput{Body: io.NopCloser(&countingEndless{n: &e.read}), ETag: aws.String(`"e"`)}, nil
	}
	return e.memS3.GetObject(ctx, in, optFns...)
}

type countingEndless struct{ n *int64 }

func (c *countingEndless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '{'
	}
	*c.n += int64(len(p))
	return len(p), nil
}

// TestBoundsEnvelopeObjects: an instruction file or SSE-C companion that
// never ends is refused with ErrTooLarge after MaxInstructionSize+1 bytes.
func TestBoundsEnvelopeObjects(t *testing.T) {
	ctx := context.Background()
	kr := masterKeys(t)[0]
	type objectClient interface {
		PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
		GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	}
	for _, tc := range []struct {
		name   string
		client func(api s3crypto.S3API) objectClient
	}{
		{"instruction file", func(api s3crypto.S3API) objectClient {
			return newClient(t, api, kr, func(o *s3crypto.Options) { o.InstructionFile = true })
		}},
		{"companion", func(api s3crypto.S3API) objectClient { return sseClient(t, api, kr) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &endlessEnvelopes{memS3: newMemS3()}
			c := tc.client(api)
			// The object itself, with a V3 metadata part for the
			// instruction-file case.
			w := tc.client(api.memS3)
			_, err := w.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("body")})
			require.NoError(t, err)
			api.read = 0
			_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
			require.ErrorIs(t, err, envelope.ErrTooLarge)
			require.LessOrEqual(t, api.read, int64(format.MaxInstructionSize+1)+32<<10)
		})
	}
}
