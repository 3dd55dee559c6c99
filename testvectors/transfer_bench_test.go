package testvectors

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/testvectors/internal/xfer"
)

// transferSizeEnv names the variable that sets BenchmarkTransfer's object
// size (a byte count, or e.g. 256MiB); unset, it is 1 GiB.
const transferSizeEnv = "S3ENVELOPE_TRANSFER_SIZE"

// BenchmarkTransfer measures what encryption costs a large transfer, over
// versitygw: the SDK's unencrypted feature/s3/manager Uploader and
// Downloader against s3crypto's, writing V3 and segmented objects (package
// internal/xfer), with the same part size and concurrency (8 MiB, 5: ours'
// defaults). Each upload stores the same generated body; after the uploads
// what is stored is checked (format and length), and every download's
// CRC-32C is checked against the body's, so that no broken path is
// measured. cmd/compare measures the same operations in fresh processes,
// with peak memory and AWS's own encryption client.
//
//	./scripts/test exec go test -run '^$' -bench Transfer -benchtime 3x -count 1 -timeout 30m ./testvectors/
//
// (./scripts/test -run '^$' -bench Transfer ./testvectors/ runs it too, but
// under -race.) S3ENVELOPE_TRANSFER_SIZE sets the size.
func BenchmarkTransfer(b *testing.B) {
	size := int64(1 << 30)
	if v := os.Getenv(transferSizeEnv); v != "" {
		var err error
		if size, err = xfer.ParseSize(v); err != nil {
			b.Fatalf("%s: %v", transferSizeEnv, err)
		}
	}
	const seed = 15
	s3c := newS3Client(b)
	kc := newKMSClient(b)
	servers := xfer.Servers{S3: s3c, KMS: kc, KMSKey: newKMSKey(b, kc)}
	bucket := newBucket(b, s3c)
	want, err := xfer.Digest(seed, size)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	opts := xfer.Options{PartSize: xfer.DefaultPartSize, Concurrency: xfer.DefaultConcurrency}

	for _, name := range []string{xfer.SDKManager, xfer.LibV3, xfer.LibSegmented} {
		c, err := xfer.New(name, servers, opts)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		key := name
		upload := func(b *testing.B) {
			if err := c.Upload(ctx, bucket, key, xfer.NewGen(seed, size)); err != nil {
				b.Fatalf("%s: upload: %v", name, err)
			}
		}
		b.Run(name, func(b *testing.B) {
			b.Run("upload", func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					upload(b)
				}
				if err := xfer.CheckStored(ctx, s3c, name, bucket, key, size); err != nil {
					b.Fatal(err)
				}
			})
			b.Run("download", func(b *testing.B) {
				// The object the upload stored, or, when -bench picked
				// downloads alone, one stored now (b.Loop starts the
				// timer after it).
				if _, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
					if nf := (*types.NotFound)(nil); !errors.As(err, &nf) {
						b.Fatalf("HeadObject %s: %v", key, err)
					}
					upload(b)
				}
				if err := xfer.CheckStored(ctx, s3c, name, bucket, key, size); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(size)
				for b.Loop() {
					h := xfer.NewCRC()
					n, err := c.Download(ctx, bucket, key, h)
					if err != nil {
						b.Fatalf("%s: download: %v", name, err)
					}
					if got := hex.EncodeToString(h.Sum(nil)); n != size || got != want {
						b.Fatalf("%s: downloaded %d bytes with CRC-32C %s; want %d bytes with %s", name, n, got, size, want)
					}
				}
			})
		})
	}
}
