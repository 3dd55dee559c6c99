package s3crypto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

var (
	rsaOnce sync.Once
	rsaPriv *rsa.PrivateKey
)

func testRSA() *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaPriv = k
	})
	return rsaPriv
}

// masterKeys returns a keyring per wrap algorithm written.
func masterKeys(t testing.TB) []keyring.Keyring {
	k := make([]byte, 32)
	rand.Read(k)
	a, err := keyring.NewAES(k, map[string]string{"kid": "aes-test"})
	require.NoError(t, err)
	r, err := keyring.NewRSA(testRSA(), map[string]string{"kid": "rsa-test"})
	require.NoError(t, err)
	return []keyring.Keyring{a, r}
}

func wrapName(k keyring.Keyring) string {
	if _, ok := k.(*keyring.RSA); ok {
		return "RSA-OAEP-SHA1"
	}
	return "AES-GCM"
}

type variant struct {
	format      envelope.Format
	instruction bool
}

func (v variant) String() string {
	s := v.format.String()
	if v.instruction {
		return s + "/instruction"
	}
	return s + "/metadata"
}

func (v variant) apply(o *s3crypto.Options) {
	o.Format = v.format
	o.InstructionFile = v.instruction
	if v.format == envelope.FormatV2 {
		o.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt
	}
}

var variants = []variant{{envelope.FormatV2, false}, {envelope.FormatV2, true}, {envelope.FormatV3, false}, {envelope.FormatV3, true}}

// provider is materials.NewProvider for a test.
func provider(t testing.TB, cur keyring.Keyring, others ...keyring.Keyring) materials.Provider {
	t.Helper()
	p := materials.NewProvider(cur, others...)
	return p
}

func newClient(t testing.TB, api s3crypto.S3API, kr keyring.Keyring, opts ...func(*s3crypto.Options)) *s3crypto.Client {
	t.Helper()
	c, err := s3crypto.New(api, provider(t, kr), opts...)
	require.NoError(t, err)
	return c
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func put(t testing.TB, c objectClient, bucket, key string, body io.Reader) {
	t.Helper()
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body})
	require.NoError(t, err)
}

// get returns the plaintext, or the error with what was read before it.
func get(c objectClient, bucket, key string) ([]byte, error) {
	return getCtx(context.Background(), c, bucket, key)
}

// getCtx is get with a request context (for an expected encryption context).
func getCtx(ctx context.Context, c objectClient, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return b, err
	}
	if aws.ToInt64(out.ContentLength) != int64(len(b)) {
		return b, fmt.Errorf("ContentLength %d, body %d", aws.ToInt64(out.ContentLength), len(b))
	}
	return b, nil
}

var sizes = []int{0, 1, 15, 16, 17, 64<<10 - 1, 64 << 10, 64<<10 + 1, 5<<20 + 3}

// roundTrips puts and gets every size for every wrap × format × storage.
func roundTrips(t *testing.T, api s3crypto.S3API, bucket string) {
	for _, kr := range masterKeys(t) {
		for _, v := range variants {
			c := newClient(t, api, kr, v.apply)
			for _, n := range sizes {
				t.Run(fmt.Sprintf("%s/%v/%d", wrapName(kr), v, n), func(t *testing.T) {
					key := fmt.Sprintf("rt/%s/%v/%d", wrapName(kr), v, n)
					pt := random(n)
					put(t, c, bucket, key, bytes.NewReader(pt))
					got, err := get(c, bucket, key)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got), "plaintext differs")

					// A body of unknown length (not seekable) too.
					put(t, c, bucket, key+"-stream", io.MultiReader(bytes.NewReader(pt)))
					got, err = get(c, bucket, key+"-stream")
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got), "plaintext differs (stream)")
				})
			}
		}
	}
}

// generator is a seekable, deterministic plaintext of any size that is never
// held in memory.
type generator struct {
	size, pos int64
	seed      uint64
}

func (g *generator) Read(p []byte) (int, error) {
	if g.pos >= g.size {
		return 0, io.EOF
	}
	if rem := g.size - g.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	var w [8]byte
	for i := range p {
		off := g.pos + int64(i)
		if i == 0 || off%8 == 0 {
			binary.LittleEndian.PutUint64(w[:], uint64(off/8)*0x9E3779B97F4A7C15^g.seed)
		}
		p[i] = w[off%8]
	}
	g.pos += int64(len(p))
	return len(p), nil
}

func (g *generator) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += g.pos
	case io.SeekEnd:
		off += g.size
	}
	if off < 0 {
		return 0, errors.New("negative seek")
	}
	g.pos = off
	return off, nil
}

func digest(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return fmt.Sprintf("%x", h.Sum(nil)), n, err
}

// largeRoundTrip streams a generated object of size bytes up and down.
func largeRoundTrip(t *testing.T, c *s3crypto.Client, bucket string, size int64) {
	want, _, err := digest(&generator{size: size, seed: 7})
	require.NoError(t, err)
	put(t, c, bucket, "large", &generator{size: size, seed: 7})
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("large")})
	require.NoError(t, err)
	defer out.Body.Close()
	require.Equal(t, size, aws.ToInt64(out.ContentLength))
	got, n, err := digest(out.Body)
	require.NoError(t, err)
	require.Equal(t, size, n)
	require.Equal(t, want, got)
}

func isAuth(err error) bool { return errors.Is(err, envelope.ErrAuthentication) }

// S3's multipart limits, and the Uploader's default part size, as the
// tests count parts.
const (
	minPartSize        = 5 << 20
	maxUploadParts     = 10000
	defaultPartSize    = 8 << 20
	defaultPartRetries = 2
)

// objectClient is what *s3crypto.Client and *s3crypto.SSECClient share.
type objectClient interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// s3Full is every *s3.Client method the package calls: test doubles that
// wrap another API embed it, so that what they do not override passes
// through (embedding s3crypto.S3API would hide the rest).
type s3Full interface {
	s3crypto.S3API
	DeleteObjects(context.Context, *s3.DeleteObjectsInput, ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	GetObjectTagging(context.Context, *s3.GetObjectTaggingInput, ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPartCopy(context.Context, *s3.UploadPartCopyInput, ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error)
	UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

var _ s3Full = (*s3.Client)(nil)
var _ s3Full = (*memS3)(nil)
