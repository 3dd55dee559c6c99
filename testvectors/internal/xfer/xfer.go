// Package xfer moves one large object up to S3 and back down with each
// client that cmd/compare and BenchmarkTransfer measure, from one
// deterministic body (Gen), so that both measure the same operations and
// check the bytes the same way.
//
// The clients:
//
//   - s3envelope-v3 and s3envelope-segmented: s3crypto.Uploader and
//     s3crypto.Downloader over an s3crypto.Client writing that format, with
//     a KMS master key (keyring.NewKMS).
//   - aws: AWS's S3 Encryption Client for Go v4.0.0 with a KMS keyring and
//     its defaults (V3): PutObject, and GetObject read to the end. Part
//     size and concurrency do not apply: each is one request.
//   - sdk-manager: aws-sdk-go-v2's feature/s3/manager Uploader and
//     Downloader, storing the plaintext as it is: what encryption is
//     measured against.
//
// feature/s3/manager rather than its successor feature/s3/transfermanager:
// transfermanager is still v0 (v0.5.9 when this was written), with no
// promise that its API holds from one minor version to the next, while
// manager is v1, frozen since its deprecation, and what most code in use
// calls; its Uploader and Downloader also take the same two settings as
// ours, PartSize and Concurrency. The version pinned in go.mod (v1.23.24) is
// the one built against the same aws-sdk-go-v2 and service/s3 versions as
// the rest of this module, so adding it moved no other dependency.
//
// Every client uses the same *s3.Client, with the SDK's default settings, so
// over plain HTTP every request's payload is hashed (SHA-256) for SigV4. Each
// Uploader keeps its own default for checksums, as a user gets them (seen on
// the wire against versitygw): the SDK's names CRC32 on
// CreateMultipartUpload and sends a CRC32 with every part; s3crypto's sends
// none unless the caller sets ChecksumAlgorithm.
package xfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	v4client "github.com/aws/amazon-s3-encryption-client-go/v4/client"
	v4materials "github.com/aws/amazon-s3-encryption-client-go/v4/materials"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// The clients' names.
const (
	LibV3        = "s3envelope-v3"
	LibSegmented = "s3envelope-segmented"
	AWSV4        = "aws"
	SDKManager   = "sdk-manager"
)

// Names lists every client, in the order reports show them.
var Names = []string{LibV3, LibSegmented, AWSV4, SDKManager}

// Label is how reports name each client.
var Label = map[string]string{
	LibV3:        "s3envelope V3 (Uploader / Downloader)",
	LibSegmented: "s3envelope segmented (Uploader / Downloader)",
	AWSV4:        "AWS S3EC Go v4.0.0 V3 (PutObject / GetObject)",
	SDKManager:   "SDK feature/s3/manager, unencrypted (Uploader / Downloader)",
}

// The Uploader's and Downloader's defaults (s3crypto's; it does not export
// them), given explicitly to both ours and the SDK's, whose own defaults
// differ (5 MiB parts).
const (
	DefaultPartSize    = 8 << 20
	DefaultConcurrency = 5
)

// Options are the transfer settings every multipart client gets.
type Options struct {
	PartSize    int64 // bytes per part and per ranged GET
	Concurrency int   // parts or ranged GETs in flight
}

// Servers are what the clients talk to.
type Servers struct {
	S3     *s3.Client
	KMS    *kms.Client // for the encrypting clients
	KMSKey string      // the KMS key's ARN, for the encrypting clients
}

// Client is one way of storing and reading an object.
type Client interface {
	// Upload stores body (whose length it learns by seeking) at key.
	Upload(ctx context.Context, bucket, key string, body io.ReadSeeker) error
	// Download writes the object's plaintext to w, in order, and returns
	// its length.
	Download(ctx context.Context, bucket, key string, w io.Writer) (int64, error)
}

// New returns the client called name.
func New(name string, s Servers, o Options) (Client, error) {
	if o.PartSize <= 0 || o.Concurrency <= 0 {
		return nil, fmt.Errorf("xfer: part size %d and concurrency %d must be positive", o.PartSize, o.Concurrency)
	}
	switch name {
	case LibV3:
		return newLib(s, o, envelope.FormatV3)
	case LibSegmented:
		return newLib(s, o, envelope.FormatSegmented)
	case AWSV4:
		return newAWS(s)
	case SDKManager:
		return newSDKManager(s, o), nil
	}
	return nil, fmt.Errorf("xfer: unknown client %q (want one of %s)", name, strings.Join(Names, ", "))
}

type lib struct {
	up   *s3crypto.Uploader
	down *s3crypto.Downloader
}

func newLib(s Servers, o Options, f envelope.Format) (*lib, error) {
	kr, err := keyring.NewKMS(s.KMS, s.KMSKey)
	if err != nil {
		return nil, err
	}
	c, err := s3crypto.New(s.S3, materials.NewProvider(kr), func(co *s3crypto.Options) { co.Format = f })
	if err != nil {
		return nil, err
	}
	return &lib{
		up: s3crypto.NewUploader(c, func(u *s3crypto.UploaderOptions) {
			u.PartSize, u.Concurrency = o.PartSize, o.Concurrency
		}),
		down: s3crypto.NewDownloader(c, func(d *s3crypto.DownloaderOptions) {
			d.PartSize, d.Concurrency = o.PartSize, o.Concurrency
		}),
	}, nil
}

func (l *lib) Upload(ctx context.Context, bucket, key string, body io.ReadSeeker) error {
	_, err := l.up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body})
	return err
}

func (l *lib) Download(ctx context.Context, bucket, key string, w io.Writer) (int64, error) {
	return l.down.Download(ctx, w, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
}

type awsV4 struct {
	c *v4client.S3EncryptionClientV4
}

func newAWS(s Servers) (*awsV4, error) {
	cmm, err := v4materials.NewCryptographicMaterialsManager(v4materials.NewKmsKeyring(s.KMS, s.KMSKey))
	if err != nil {
		return nil, err
	}
	c, err := v4client.New(s.S3, cmm, func(o *v4client.EncryptionClientOptions) {
		o.Logger = log.New(io.Discard, "", 0) // defaults otherwise: V3, REQUIRE_ENCRYPT_REQUIRE_DECRYPT
	})
	if err != nil {
		return nil, err
	}
	return &awsV4{c}, nil
}

func (a *awsV4) Upload(ctx context.Context, bucket, key string, body io.ReadSeeker) error {
	_, err := a.c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body})
	return err
}

func (a *awsV4) Download(ctx context.Context, bucket, key string, w io.Writer) (int64, error) {
	out, err := a.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	return io.Copy(w, out.Body)
}

// CheckStored checks what client name stored at key from a body of size
// bytes: an envelope of the client's format in the object's metadata and a
// body of that format's length, or, for the unencrypted client, the
// plaintext's length and no envelope.
func CheckStored(ctx context.Context, c *s3.Client, name, bucket, key string, size int64) error {
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("HeadObject %s/%s: %w", bucket, key, err)
	}
	stored := aws.ToInt64(out.ContentLength)
	e, derr := envelope.Decode(out.Metadata, nil)
	var want envelope.Format
	switch name {
	case SDKManager:
		if derr == nil {
			return fmt.Errorf("%s stored %s with an envelope of format %v: it should be unencrypted", name, key, e.Format)
		}
		if stored != size {
			return fmt.Errorf("%s stored %d bytes at %s; want %d", name, stored, key, size)
		}
		return nil
	case LibV3, AWSV4:
		want = envelope.FormatV3
	case LibSegmented:
		want = envelope.FormatSegmented
	default:
		return fmt.Errorf("xfer: unknown client %q", name)
	}
	if derr != nil {
		return fmt.Errorf("%s stored %s without a readable envelope: %w", name, key, derr)
	}
	if e.Format != want {
		return fmt.Errorf("%s stored %s in format %v; want %v", name, key, e.Format, want)
	}
	pt, err := e.PlaintextSize(stored)
	if err != nil {
		return fmt.Errorf("%s stored %d bytes at %s: %w", name, stored, key, err)
	}
	if pt != size {
		return fmt.Errorf("%s stored %d bytes at %s, %d of plaintext; want %d", name, stored, key, pt, size)
	}
	return nil
}

// ParseSize reads a size: a byte count, or a number with KiB, MiB or GiB.
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("bad size " + strconv.Quote(s) + " (want e.g. 16MiB, 1GiB or a byte count)")
	}
	return n * mult, nil
}

// FormatSize writes a size as ParseSize reads it, in the largest whole unit.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
