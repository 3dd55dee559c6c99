package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3envelope/s3envelope/internal/testenv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3envelope/s3envelope/internal/s3mem"
)

// TestQuickstart runs the quickstart as `go run ./examples/quickstart` does,
// against its in-process server.
func TestQuickstart(t *testing.T) {
	out := runQuickstart(t, config{})
	for _, want := range []string{
		"(an in-process S3, internal/s3mem)",
		"no plaintext in it",
		`x-amz-m = {"kid":"2025"}`,
		"10 MiB streamed from a non-seekable generator, decrypted intact",
		"== 3. Rotate to the 2026 master key",
		`stored description {"kid":"2026"}`,
		`fails with ErrNoMasterKey:`,
		"RewrapAll quickstart/: 2 rewrapped, 1 already under 2026, 0 failed",
		`now reads report-2025.txt; its description is {"kid":"2026"}`,
		"format V2",
		"v2.txt.instruction",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
}

// TestQuickstartEndpoint runs the -endpoint path, which takes credentials
// from the standard AWS environment variables: against a separate
// in-memory S3 served over HTTP, and against the real S3 server that ./scripts/test starts (and
// names in S3ENVELOPE_S3_ENDPOINT).
func TestQuickstartEndpoint(t *testing.T) {
	t.Run("s3mem", func(t *testing.T) {
		srv := httptest.NewServer(s3mem.New())
		t.Cleanup(srv.Close)
		quickstartAt(t, srv.URL, "us-east-1", "id", "secret")
	})
	t.Run("S3ENVELOPE_S3_ENDPOINT", func(t *testing.T) {
		endpoint := os.Getenv("S3ENVELOPE_S3_ENDPOINT")
		if endpoint == "" {
			t.Fatal("S3ENVELOPE_S3_ENDPOINT is not set: run ./scripts/test, which starts a real S3 server (versitygw)")
		}
		region := os.Getenv("S3ENVELOPE_S3_REGION")
		if region == "" {
			region = "us-east-1"
		}
		quickstartAt(t, endpoint, region, os.Getenv("S3ENVELOPE_S3_ACCESS_KEY"), os.Getenv("S3ENVELOPE_S3_SECRET_KEY"))
	})
}

// quickstartAt creates a bucket at endpoint, then runs the quickstart there
// with the credentials passed only through the environment.
func quickstartAt(t *testing.T, endpoint, region, id, secret string) {
	admin := s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint), Region: region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
	})
	bucket := testenv.Bucket(t, admin, "quickstart-")
	none := filepath.Join(t.TempDir(), "none") // keep ~/.aws out of the test
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
	} {
		t.Setenv(k, v)
	}
	out := runQuickstart(t, config{Endpoint: endpoint, Bucket: bucket, Region: region})
	if !strings.Contains(out, "(-endpoint)") || !strings.Contains(out, "== 3. Rotate") {
		t.Errorf("unexpected transcript")
	}
	// The quickstart deletes what it wrote, instruction files included.
	list, err := admin.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		t.Errorf("left behind: %s", aws.ToString(o.Key))
	}
}

func runQuickstart(t *testing.T, cfg config) string {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), &out, cfg)
	t.Logf("transcript:\n%s", out.String())
	if err != nil {
		t.Fatalf("quickstart failed: %v", err)
	}
	if !strings.HasSuffix(out.String(), "== OK: every check passed; the example objects were deleted\n") {
		t.Fatal("the transcript does not end with the OK line")
	}
	return out.String()
}
