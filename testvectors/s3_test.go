package testvectors

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/s3envelope/s3envelope/internal/testenv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

const runHint = "run ./scripts/test from the repository root: it installs the tools, starts versitygw and sets S3ENVELOPE_S3_*"

// s3Env is the S3 server the tests run against, from the environment that
// ./scripts/test sets.
type s3Env struct {
	Endpoint, AccessKey, SecretKey, Region string
}

// requireS3 returns the test server's settings, failing (never skipping) the
// test when they are absent.
func requireS3(t testing.TB) s3Env {
	t.Helper()
	e := s3Env{
		Endpoint:  os.Getenv("S3ENVELOPE_S3_ENDPOINT"),
		AccessKey: os.Getenv("S3ENVELOPE_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("S3ENVELOPE_S3_SECRET_KEY"),
		Region:    os.Getenv("S3ENVELOPE_S3_REGION"),
	}
	if e.Endpoint == "" || e.AccessKey == "" || e.SecretKey == "" {
		t.Fatalf("S3ENVELOPE_S3_ENDPOINT, S3ENVELOPE_S3_ACCESS_KEY or S3ENVELOPE_S3_SECRET_KEY is not set; %s", runHint)
	}
	if e.Region == "" {
		e.Region = "us-east-1"
	}
	return e
}

// newS3Client returns a plain (not encrypting) S3 client for the test server.
func newS3Client(t testing.TB) *s3.Client { return testenv.S3(t) }

// newBucket creates a uniquely named bucket and removes it, with everything
// in it, when the test ends.
func newBucket(t testing.TB, c *s3.Client) string { return testenv.Bucket(t, c, "s3env-tv-") }

// headMetadata returns an object's user metadata (keys without x-amz-meta-),
// or nil and false when the object does not exist.
func headMetadata(t testing.TB, c *s3.Client, bucket, key string) (map[string]string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nf *types.NotFound
		if errors.As(err, &nf) {
			return nil, false
		}
		t.Fatalf("HeadObject %s/%s: %v", bucket, key, err)
	}
	return out.Metadata, true
}

var (
	rubyOnce sync.Once
	rubyErr  error
)

// requireRuby fails (never skips) the test unless ruby with Debian's
// aws-sdk-s3 gem is installed.
func requireRuby(t testing.TB) {
	t.Helper()
	rubyOnce.Do(func() {
		if _, err := exec.LookPath("ruby"); err != nil {
			rubyErr = errors.New("ruby is not installed")
			return
		}
		out, err := exec.Command("ruby", "-e", `require "aws-sdk-s3"`).CombinedOutput()
		if err != nil {
			rubyErr = errors.New("ruby cannot load aws-sdk-s3: " + string(out))
		}
	})
	if rubyErr != nil {
		t.Fatalf("%v; %s", rubyErr, runHint)
	}
}
