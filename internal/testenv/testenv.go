// Package testenv connects tests to the servers ./scripts/test starts —
// versitygw (S3), MinIO over TLS (the SSE-C target) and local-kms — from the
// S3ENVELOPE_* variables it exports. A test that needs a server fails,
// never skips, when it is missing. Only tests import it.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

const hint = "run ./scripts/test from the repository root: it installs and starts the test servers and sets S3ENVELOPE_*"

// env returns the variable, failing t when it is not set.
func env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set; %s", name, hint)
	}
	return v
}

func region(name string) string {
	if r := os.Getenv(name); r != "" {
		return r
	}
	return "us-east-1"
}

func static(ak, sk string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, nil
	})
}

// S3 returns a plain S3 client for versitygw.
func S3(t testing.TB) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(env(t, "S3ENVELOPE_S3_ENDPOINT")),
		Region:       region("S3ENVELOPE_S3_REGION"),
		UsePathStyle: true,
		Credentials:  static(env(t, "S3ENVELOPE_S3_ACCESS_KEY"), env(t, "S3ENVELOPE_S3_SECRET_KEY")),
	})
}

// ssecTLS is the TLS configuration that trusts only MinIO's test
// certificate.
func ssecTLS(t testing.TB) *tls.Config {
	t.Helper()
	caFile := env(t, "S3ENVELOPE_SSEC_CA")
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("reading S3ENVELOPE_SSEC_CA, the test server's certificate: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// SSECHTTP returns a plain net/http client for MinIO over TLS (a presigned
// URL's recipient), trusting only the test certificate.
func SSECHTTP(t testing.TB) *http.Client {
	t.Helper()
	return &http.Client{Transport: &http.Transport{TLSClientConfig: ssecTLS(t)}}
}

// SSEC returns a plain S3 client for MinIO over TLS, trusting only the test
// certificate.
func SSEC(t testing.TB) *s3.Client {
	t.Helper()
	tlsConfig := ssecTLS(t)
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = tlsConfig
	})
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(env(t, "S3ENVELOPE_SSEC_ENDPOINT")),
		Region:       region("S3ENVELOPE_SSEC_REGION"),
		UsePathStyle: true,
		HTTPClient:   httpClient,
		Credentials:  static(env(t, "S3ENVELOPE_SSEC_ACCESS_KEY"), env(t, "S3ENVELOPE_SSEC_SECRET_KEY")),
	})
}

// KMS returns a KMS client for local-kms (which checks no signatures).
func KMS(t testing.TB) *kms.Client {
	t.Helper()
	return kms.New(kms.Options{
		BaseEndpoint: aws.String(env(t, "S3ENVELOPE_KMS_ENDPOINT")),
		Region:       region("S3ENVELOPE_KMS_REGION"),
		Credentials:  static("local", "local"),
	})
}

// Bucket creates a bucket whose name starts with prefix, and removes it,
// with every object and unfinished multipart upload in it, when the test
// ends.
func Bucket(t testing.TB, c *s3.Client, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s on %s: %v", name, aws.ToString(c.Options().BaseEndpoint), err)
	}
	t.Cleanup(func() {
		if err := empty(c, name); err != nil {
			t.Errorf("cleanup: emptying bucket %s: %v", name, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
			t.Errorf("cleanup: deleting bucket %s: %v", name, err)
		}
	})
	return name
}

// empty deletes every object and aborts every multipart upload in bucket.
func empty(c *s3.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		return err
	}
	for _, u := range ups.Uploads {
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil {
			return err
		}
	}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			return &deleteError{out.Errors[0]}
		}
	}
	return nil
}

type deleteError struct{ e types.Error }

func (d *deleteError) Error() string {
	return "deleting " + aws.ToString(d.e.Key) + ": " + aws.ToString(d.e.Code) + " " + aws.ToString(d.e.Message)
}
