package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/internal/testenv"
)

const wantTranscript = `wrote 5 objects under rotation/ with master key 2025
RewrapAll rotation/: 5 rewrapped, 0 already current, 0 failed
master key 2026 alone reads every object: 2025 can be retired (the objects were deleted)
`

// TestRewrap runs the example as `go run ./examples/rewrap` does, against
// its in-process server.
func TestRewrap(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, "", ""); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if out.String() != wantTranscript {
		t.Errorf("transcript:\n%s\nwant:\n%s", out.String(), wantTranscript)
	}
}

// TestRewrapEndpoint runs it with -endpoint against the real S3 server
// that ./scripts/test starts, credentials passed only through the
// environment, and checks that it leaves nothing behind.
func TestRewrapEndpoint(t *testing.T) {
	endpoint := os.Getenv("S3ENVELOPE_S3_ENDPOINT")
	if endpoint == "" {
		t.Fatal("S3ENVELOPE_S3_ENDPOINT is not set: run ./scripts/test, which starts a real S3 server (versitygw)")
	}
	id, secret := os.Getenv("S3ENVELOPE_S3_ACCESS_KEY"), os.Getenv("S3ENVELOPE_S3_SECRET_KEY")
	admin := s3.New(s3.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")})
	bucket := testenv.Bucket(t, admin, "rewrap-")
	none := filepath.Join(t.TempDir(), "none") // keep ~/.aws out of the test
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_REGION": "", "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
	} {
		t.Setenv(k, v)
	}
	var out bytes.Buffer
	if err := run(context.Background(), &out, endpoint, bucket); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.HasPrefix(out.String(), "wrote 5 objects") || !strings.Contains(out.String(), "5 rewrapped") {
		t.Errorf("transcript:\n%s", out.String())
	}
	list, err := admin.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		t.Errorf("left behind: %s", aws.ToString(o.Key))
	}
}
