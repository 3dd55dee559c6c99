package s3crypto_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/s3crypto"
)

// uploadVariants are every format written, in metadata and instruction files.
var uploadVariants = append(variants, variant{envelope.FormatSegmented, false}, variant{envelope.FormatSegmented, true})

// TestUploadRoundTrips uploads through the Uploader to versitygw, with one
// and several parts in flight, bodies of known and unknown length, and
// reads each object back with GetObject.
func TestUploadRoundTrips(t *testing.T) {
	api, bucket := realS3(t)
	ctx := context.Background()
	kr := masterKeys(t)[0]
	for _, v := range uploadVariants {
		c := newClient(t, api, kr, v.apply)
		for _, conc := range []int{1, 8} {
			for _, size := range []int64{0, 1, 5<<20 - 1, 5 << 20, 5<<20 + 1, 17<<20 + 3} {
				for _, known := range []bool{true, false} {
					name := fmt.Sprintf("upload/%v/c%d/%d/known=%v", v, conc, size, known)
					t.Run(name, func(t *testing.T) {
						var body io.Reader = &generator{size: size, seed: uint64(size)}
						if !known {
							body = io.MultiReader(body)
						}
						var calls int
						var last int64
						up := s3crypto.NewUploader(c, func(o *s3crypto.UploaderOptions) {
							o.Concurrency = conc
							o.PartSize = minPartSize
							o.Progress = func(done, total int64) {
								calls++
								require.GreaterOrEqual(t, done, last)
								last = done
								if known {
									require.Equal(t, size, total)
								} else {
									require.EqualValues(t, -1, total)
								}
							}
						})
						out, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(name), Body: body})
						require.NoError(t, err)
						require.Equal(t, size, out.Size)
						require.Equal(t, size, last)
						require.Equal(t, out.Parts, calls)
						if size > 5<<20 {
							require.NotNil(t, out.UploadId)
							require.Greater(t, out.Parts, 1)
						}
						got, n, err := func() (string, int64, error) {
							o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(name)})
							if err != nil {
								return "", 0, err
							}
							defer o.Body.Close()
							return digest(o.Body)
						}()
						require.NoError(t, err)
						require.Equal(t, size, n)
						want, _, _ := digest(&generator{size: size, seed: uint64(size)})
						require.Equal(t, want, got)

						// And with the Downloader's parallel ranged GETs.
						var dlDone, dlTotal int64
						dl := s3crypto.NewDownloader(c, func(o *s3crypto.DownloaderOptions) {
							o.Concurrency = conc
							o.PartSize = 1 << 20
							o.Progress = func(done, total int64) { dlDone, dlTotal = done, total }
						})
						h := sha256.New()
						n, err = dl.Download(ctx, h, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(name)})
						require.NoError(t, err)
						require.Equal(t, size, n)
						require.Equal(t, want, hex.EncodeToString(h.Sum(nil)))
						if size > 0 {
							require.Equal(t, size, dlDone)
							require.Equal(t, size, dlTotal)
						}
					})
				}
			}
		}
	}
}

// TestNoMultipartPassThrough: the Client has no CreateMultipartUpload or
// UploadPart, so code that would send parts around the encryption does not
// compile against it (parts passed through would be stored unencrypted, as
// AWS's Go client lets them); the Uploader seals every part.
func TestNoMultipartPassThrough(t *testing.T) {
	var c any = newClient(t, newMemS3(), masterKeys(t)[0])
	_, create := c.(interface {
		CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	})
	_, part := c.(interface {
		UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	})
	require.False(t, create || part)
}

// TestUploadDefaultChecksums: a client as config.LoadDefaultConfig makes
// one (RequestChecksumCalculation WhenSupported: the SDK adds a CRC32 to
// every UploadPart) uploads in parts. S3 refuses the Complete of parts
// checksummed under an upload created without an algorithm (InvalidPart),
// so the Uploader names one; an algorithm the caller names is kept.
func TestUploadDefaultChecksums(t *testing.T) {
	plain, bucket := realS3(t)
	ctx := context.Background()
	for _, alg := range []types.ChecksumAlgorithm{"", types.ChecksumAlgorithmSha256} {
		for _, calc := range []aws.RequestChecksumCalculation{aws.RequestChecksumCalculationWhenSupported, aws.RequestChecksumCalculationWhenRequired} {
			t.Run(fmt.Sprintf("%s/%v", alg, calc), func(t *testing.T) {
				o := plain.Options()
				o.RequestChecksumCalculation = calc
				c := newClient(t, s3.New(o), masterKeys(t)[0])
				key := fmt.Sprintf("checksums/%s/%v", alg, calc)
				size := int64(11 << 20)
				out, err := s3crypto.NewUploader(c, func(o *s3crypto.UploaderOptions) { o.PartSize = minPartSize }).Upload(ctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key), Body: &generator{size: size, seed: 7}, ChecksumAlgorithm: alg,
				})
				require.NoError(t, err)
				require.Greater(t, out.Parts, 1)
				o2, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				require.NoError(t, err)
				defer o2.Body.Close()
				got, n, err := digest(o2.Body)
				require.NoError(t, err)
				want, _, _ := digest(&generator{size: size, seed: 7})
				require.Equal(t, size, n)
				require.Equal(t, want, got)
			})
		}
	}
}
