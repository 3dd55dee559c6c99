package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/internal/testenv"
)

// These tests build the command once and run the binary as a person would,
// against the real servers ./scripts/test starts: versitygw (S3ENVELOPE_S3_*),
// local-kms (S3ENVELOPE_KMS_*) and MinIO over TLS (S3ENVELOPE_SSEC_*), with
// credentials passed only through the standard AWS environment variables.
// A test that needs a server fails, never skips, without it.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "s3envelope-cli-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "s3envelope")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("building the command: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli is the environment one test runs the binary in.
type cli struct {
	t        *testing.T
	env      []string // the process environment: AWS settings, nothing of the test runner's ~/.aws
	endpoint string   // --endpoint-url, when set up against a server
	bucket   string
	admin    *s3.Client // a plain client to the same server, to look behind the command's back
	dir      string     // the working directory
}

// newCLI is an environment with no server: for usage errors and keygen.
func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	none := filepath.Join(dir, "no-aws-config")
	return &cli{t: t, dir: dir, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TERM=dumb",
		"AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_EC2_METADATA_DISABLED=true",
	}}
}

// newS3CLI is an environment against versitygw with a fresh bucket.
func newS3CLI(t *testing.T) *cli {
	t.Helper()
	return newServerCLI(t, "S3ENVELOPE_S3", "a real S3 server (versitygw)")
}

// newSSECCLI is an environment against MinIO over TLS, whose certificate
// the command trusts through AWS_CA_BUNDLE, as an operator's would.
func newSSECCLI(t *testing.T) *cli {
	t.Helper()
	ca := os.Getenv("S3ENVELOPE_SSEC_CA")
	if ca == "" {
		t.Fatal("S3ENVELOPE_SSEC_CA is not set: run ./scripts/test, which starts MinIO over TLS")
	}
	c := newServerCLI(t, "S3ENVELOPE_SSEC", "MinIO over TLS")
	c.env = append(c.env, "AWS_CA_BUNDLE="+ca)
	return c
}

func newServerCLI(t *testing.T, prefix, what string) *cli {
	t.Helper()
	c := newCLI(t)
	c.endpoint = os.Getenv(prefix + "_ENDPOINT")
	if c.endpoint == "" {
		t.Fatalf("%s_ENDPOINT is not set: run ./scripts/test, which starts %s", prefix, what)
	}
	region := os.Getenv(prefix + "_REGION")
	if region == "" {
		region = "us-east-1"
	}
	id, secret := os.Getenv(prefix+"_ACCESS_KEY"), os.Getenv(prefix+"_SECRET_KEY")
	c.env = append(c.env, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION="+region)
	var opts []func(*awsconfig.LoadOptions) error
	if ca := os.Getenv(prefix + "_CA"); ca != "" {
		f, err := os.Open(ca)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		opts = append(opts, awsconfig.WithCustomCABundle(f))
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.admin = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint, o.UsePathStyle, o.Region = aws.String(c.endpoint), true, region
		o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	})
	c.bucket = testenv.Bucket(t, c.admin, "cli-")
	return c
}

// kmsEnv adds local-kms: its endpoint is returned for --kms-endpoint-url.
func (c *cli) kmsEndpoint() string {
	c.t.Helper()
	e := os.Getenv("S3ENVELOPE_KMS_ENDPOINT")
	if e == "" {
		c.t.Fatal("S3ENVELOPE_KMS_ENDPOINT is not set: run ./scripts/test, which starts local-kms")
	}
	return e
}

// uri names an object in the test's bucket.
func (c *cli) uri(key string) string { return "s3://" + c.bucket + "/" + key }

// file writes content to a file in the working directory.
func (c *cli) file(name string, content []byte) string {
	c.t.Helper()
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// command is the binary run with args (plus --endpoint-url after the
// subcommand's name when set up against a server) in the test's directory
// and environment, plus env.
func (c *cli) command(ctx context.Context, args []string, env ...string) *exec.Cmd {
	if c.endpoint != "" && len(args) > 0 {
		args = append([]string{args[0], "--endpoint-url", c.endpoint}, args[1:]...)
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir, cmd.Env = c.dir, append(append([]string(nil), c.env...), env...)
	return cmd
}

// run runs the binary with args (plus --endpoint-url when set up against a
// server) and stdin, and returns what it did.
func (c *cli) run(stdin []byte, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := c.command(ctx, args)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}
	if err != nil && r.code < 0 {
		c.t.Fatalf("running %v: %v", args, err)
	}
	c.t.Logf("$ s3envelope %s\n-> exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, clip(r.stdout), clip(r.stderr))
	return r
}

func clip(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "…"
	}
	return s
}

// requireExit fails unless r exited with code and its stderr holds want.
func requireExit(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Fatalf("stderr does not say %q:\n%s", w, r.stderr)
		}
	}
}

// requireOneLineError fails unless r's stderr is one line (the error).
func requireOneLineError(t *testing.T, r result) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "s3envelope ") {
		t.Fatalf("want a one-line error, got %d lines:\n%s", len(lines), r.stderr)
	}
}

func TestUsage(t *testing.T) {
	c := newCLI(t)
	r := c.run(nil)
	requireExit(t, r, exitUsage, "usage: s3envelope <command>")

	r = c.run(nil, "help")
	requireExit(t, r, exitOK)
	for name := range commands {
		if !strings.Contains(r.stdout, "  "+name+" ") {
			t.Errorf("help does not list %s:\n%s", name, r.stdout)
		}
	}
	for name, cmd := range commands {
		r := c.run(nil, "help", name)
		requireExit(t, r, exitOK)
		if !strings.Contains(r.stdout, "usage: s3envelope "+name) || !strings.Contains(r.stdout, "example") && !strings.Contains(r.stdout, "Example") {
			t.Errorf("help %s shows no usage line or no examples:\n%s", name, r.stdout)
		}
		if cmd.summary == "" || cmd.help == "" {
			t.Errorf("command %s has no summary or help", name)
		}
	}
	requireExit(t, c.run(nil, "frobnicate"), exitUsage, `no command "frobnicate"`)
}
