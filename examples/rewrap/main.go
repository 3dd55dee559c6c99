// Command rewrap shows master-key rotation inside an application: objects
// written under last year's master key are moved to this year's by
// s3crypto's RewrapAll, which rewrites only their envelopes (no body is
// downloaded or re-encrypted), and the old key can then be retired. To
// rotate a bucket by hand — dry runs, resumable walks, SSE-C objects — use
// the operator's tool instead: s3envelope rewrap (cmd/s3envelope).
//
//	go run ./examples/rewrap                      # in-process S3 server, no setup
//	go run ./examples/rewrap -endpoint http://127.0.0.1:7070 -bucket my-bucket
//
// With -endpoint, credentials and region come from the usual AWS
// environment variables and config files, and the bucket must exist.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/internal/s3mem"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

func main() {
	endpoint := flag.String("endpoint", "", "S3-compatible endpoint URL (default: an in-process S3 server)")
	bucket := flag.String("bucket", "", "existing bucket to use with -endpoint")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *endpoint, *bucket); err != nil {
		fmt.Fprintln(os.Stderr, "rewrap FAILED:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, endpoint, bucket string) error {
	api, bucket, err := connect(ctx, endpoint, bucket)
	if err != nil {
		return err
	}
	// In an application the key bytes come from a vault or a file
	// (keyring.ParseAES); the descriptions are stored with every object.
	key2025, err1 := newMasterKey("2025")
	key2026, err2 := newMasterKey("2026")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}

	// Last year the application wrote with 2025.
	before, err := s3crypto.New(api, materials.NewProvider(key2025))
	if err != nil {
		return err
	}
	const prefix, n = "rotation/", 5
	for i := range n {
		body := fmt.Appendf(nil, "record %d", i)
		if _, err := before.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(fmt.Sprint(prefix, i)), Body: bytes.NewReader(body)}); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "wrote %d objects under %s with master key 2025\n", n, prefix)

	// The rotation: 2026 is current (it wraps), 2025 still unwraps. Until
	// RewrapAll is done the application reads both generations through
	// this client; with EnforceRotation a new envelope that 2025 could
	// still open is refused.
	rotating, err := s3crypto.New(api, materials.NewProvider(key2026, key2025))
	if err != nil {
		return err
	}
	res, err := rotating.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Prefix: aws.String(prefix), EnforceRotation: true})
	if err != nil {
		return err // the walk stopped; res.Checkpoint says where, for RewrapAllInput.Resume
	}
	fmt.Fprintf(w, "RewrapAll %s: %d rewrapped, %d already current, %d failed\n", prefix, res.Rewrapped, res.AlreadyCurrent, res.Failed)
	if res.Failed > 0 {
		return fmt.Errorf("%d objects failed, the first: %w", res.Failed, res.Failures[0])
	}

	// Once every object is rewrapped, 2026 alone reads them: 2025 retires.
	after, err := s3crypto.New(api, materials.NewProvider(key2026))
	if err != nil {
		return err
	}
	for i := range n {
		key := aws.String(fmt.Sprint(prefix, i))
		out, err := after.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: key})
		if err != nil {
			return err
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || string(got) != fmt.Sprintf("record %d", i) {
			return fmt.Errorf("%s after the rotation: %q, %v", *key, got, err)
		}
		if _, err := after.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: key}); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "master key 2026 alone reads every object: 2025 can be retired (the objects were deleted)")
	return nil
}

// connect returns a plain *s3.Client and a bucket: at endpoint, or the
// library's in-memory S3 served in this process.
func connect(ctx context.Context, endpoint, bucket string) (*s3.Client, string, error) {
	if endpoint == "" {
		srv := s3mem.New()
		srv.CreateBucket("rewrap")
		return srv.Client(), "rewrap", nil
	}
	if bucket == "" {
		return nil, "", errors.New("-bucket is required with -endpoint")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, "", err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true
		if o.Region == "" {
			o.Region = "us-east-1"
		}
	}), bucket, nil
}

func newMasterKey(kid string) (*keyring.AES, error) {
	b := make([]byte, 32)
	rand.Read(b)
	return keyring.NewAES(b, map[string]string{"kid": kid})
}
