package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/internal/testenv"
)

// sub is c for a subtest: the same bucket and directory, failing t.
func (c *cli) sub(t *testing.T) *cli {
	cc := *c
	cc.t = t
	return &cc
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// exists reports whether the object is in the test's bucket, asking S3
// directly.
func (c *cli) exists(key string) bool {
	c.t.Helper()
	_, err := c.admin.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil && !isNotFound(err) {
		c.t.Fatalf("HEAD %s: %v", key, err)
	}
	return err == nil
}

func decodeJSON[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	return v
}

// requireSame fails unless got is want (by size and digest: no dumps of
// random bytes).
func requireSame(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) || sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("%s: %d bytes that differ from the %d put", what, len(got), len(want))
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPutGetRoundTrips puts and gets every format, with the envelope in
// metadata and in an instruction file, under AES and RSA keys (written
// with the public key only, read with the private one), and reads each
// back with get (to a file) and cat (to stdout), byte for byte.
func TestPutGetRoundTrips(t *testing.T) {
	c := newS3CLI(t)
	aes, rsa := c.aesKey("a.key"), c.rsaKey("team")
	data := randomBytes(t, 100<<10+7)
	c.file("data.bin", data)
	var outputs []result
	for _, format := range []string{"v3", "v2", "segmented"} {
		for _, instruction := range []bool{false, true} {
			for _, kind := range []string{"aes", "rsa"} {
				name := fmt.Sprintf("%s-%s-instruction=%v", format, kind, instruction)
				t.Run(name, func(t *testing.T) {
					c := c.sub(t)
					writeKey, readKey := aes.path, aes.path
					k := aes
					if kind == "rsa" {
						writeKey, readKey, k = rsa.pub, rsa.path, rsa
					}
					args := []string{"put", "--json", "--key", writeKey, "--desc", k.desc, "--format", format}
					if instruction {
						args = append(args, "--instruction-file")
					}
					r := c.run(nil, append(args, "data.bin", c.uri(name))...)
					requireExit(t, r, exitOK)
					res := decodeJSON[putResult](t, r)
					wantFormat := map[string]string{"v3": "V3", "v2": "V2", "segmented": "segmented"}[format]
					wantEnvelope := map[bool]string{false: "metadata", true: "instruction-file"}[instruction]
					if res.Format != wantFormat || res.Envelope != wantEnvelope || res.Size != int64(len(data)) || res.Parts != 1 || res.ETag == "" || res.URI != c.uri(name) || res.MasterKey != fmt.Sprintf(`{"key":%q}`, strings.TrimPrefix(k.desc, "key=")) {
						t.Fatalf("put's summary: %+v", res)
					}
					if got := c.exists(name + ".instruction"); got != instruction {
						t.Fatalf("instruction file stored: %v, want %v", got, instruction)
					}
					outputs = append(outputs, r)

					// Read with --desc, and (for the RSA objects) without:
					// the stored description picks the one key given.
					getArgs := []string{"get", "--key", readKey, "--desc", k.desc}
					if kind == "rsa" {
						getArgs = []string{"get", "--key", readKey}
					}
					out := name + ".out"
					r = c.run(nil, append(getArgs, c.uri(name), out)...)
					requireExit(t, r, exitOK)
					requireSame(t, "get", readFile(t, filepath.Join(c.dir, out)), data)
					if m := mode(t, filepath.Join(c.dir, out)); m != 0o600 {
						t.Fatalf("get wrote mode %04o, want 0600", m)
					}
					if want := fmt.Sprintf("get %s file=%s size=%d format=%s\n", c.uri(name), out, len(data), wantFormat); r.stdout != want {
						t.Fatalf("get's summary %q, want %q", r.stdout, want)
					}
					outputs = append(outputs, r)

					r = c.run(nil, "cat", "--key", readKey, "--desc", k.desc, c.uri(name))
					requireExit(t, r, exitOK)
					requireSame(t, "cat", []byte(r.stdout), data)
					r.stdout = "" // the plaintext, not an output to search
					outputs = append(outputs, r)

					r = c.run(nil, "inspect", "--json", c.uri(name))
					requireExit(t, r, exitOK)
					ins := decodeJSON[inspectResult](t, r)
					if ins.Format != wantFormat || ins.Envelope != wantEnvelope || ins.PlaintextSize == nil || *ins.PlaintextSize != int64(len(data)) || ins.Description["key"] != strings.TrimPrefix(k.desc, "key=") {
						t.Fatalf("inspect: %+v", ins)
					}
					outputs = append(outputs, r)
				})
			}
		}
	}
	requireNoSecrets(t, append(aes.secrets, rsa.secrets...), outputs...)
}

// TestPutGetStreamsAndKeySources: stdin to stdout, an empty object, a key
// from the environment, and a KMS key by alias (local-kms).
func TestPutGetStreamsAndKeySources(t *testing.T) {
	c := newS3CLI(t)
	data := randomBytes(t, 300<<10)

	// env:NAME: the key in an environment variable.
	raw := randomBytes(t, 32)
	c.env = append(c.env, "S3ENVELOPE_TEST_KEY="+base64.StdEncoding.EncodeToString(raw))
	var outputs []result
	r := c.run(data, "put", "--key", "env:S3ENVELOPE_TEST_KEY", "--desc", "key=env", "-", c.uri("stdin"))
	requireExit(t, r, exitOK)
	if !strings.HasPrefix(r.stdout, "put "+c.uri("stdin")+" size=307200 format=V3 envelope=metadata parts=1 key={\"key\":\"env\"} etag=") {
		t.Fatalf("put's summary: %q", r.stdout)
	}
	outputs = append(outputs, r)
	r = c.run(nil, "get", "--key", "env:S3ENVELOPE_TEST_KEY", c.uri("stdin"), "-")
	requireExit(t, r, exitOK)
	requireSame(t, "get -", []byte(r.stdout), data)
	r.stdout = ""
	outputs = append(outputs, r)
	requireExit(t, c.run(nil, "get", "--key", "env:S3ENVELOPE_UNSET", c.uri("stdin"), "x"), exitUsage, "S3ENVELOPE_UNSET is not set")

	// --content-type and --metadata go to the object, beside the envelope.
	r = c.run(data[:10], "put", "--key", "env:S3ENVELOPE_TEST_KEY", "--desc", "key=env", "--content-type", "text/x-test", "--metadata", "team=ops,ticket=42", "-", c.uri("typed"))
	requireExit(t, r, exitOK)
	head, err := c.admin.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String("typed")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ContentType) != "text/x-test" || head.Metadata["team"] != "ops" || head.Metadata["ticket"] != "42" {
		t.Fatalf("stored content type %q, metadata %v", aws.ToString(head.ContentType), head.Metadata)
	}

	// An empty object, from stdin and from a file.
	c.file("empty", nil)
	for _, src := range []string{"-", "empty"} {
		r = c.run(nil, "put", "--key", "env:S3ENVELOPE_TEST_KEY", "--desc", "key=env", src, c.uri("empty"+src))
		requireExit(t, r, exitOK)
		r = c.run(nil, "get", "--key", "env:S3ENVELOPE_TEST_KEY", c.uri("empty"+src), "empty.out"+src)
		requireExit(t, r, exitOK)
		if b := readFile(t, filepath.Join(c.dir, "empty.out"+src)); len(b) != 0 {
			t.Fatalf("an empty object came back as %d bytes", len(b))
		}
	}

	// kms:alias/...: local-kms makes the data key.
	kc := testenv.KMS(t)
	key, err := kc.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	alias := fmt.Sprintf("alias/s3envelope-cli-%x", randomBytes(t, 4))
	if _, err := kc.CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	kmsFlags := []string{"--kms-endpoint-url", c.kmsEndpoint(), "--key", "kms:" + alias}
	r = c.run(data, append([]string{"put", "--format", "segmented"}, append(kmsFlags, "-", c.uri("kms"))...)...)
	requireExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "key=kms:"+alias) {
		t.Fatalf("put's summary does not name the KMS key: %q", r.stdout)
	}
	r = c.run(nil, append([]string{"cat"}, append(kmsFlags, c.uri("kms"))...)...)
	requireExit(t, r, exitOK)
	requireSame(t, "cat of a KMS object", []byte(r.stdout), data)
	r = c.run(nil, "inspect", "--json", c.uri("kms"))
	requireExit(t, r, exitOK)
	ins := decodeJSON[inspectResult](t, r)
	if ins.WrapAlgorithm != "kms+context" || ins.EncryptionContext["aws:x-amz-cek-alg"] != "S3ESEG1" || ins.Description != nil {
		t.Fatalf("inspect of a KMS object: %+v", ins)
	}
	// An AES key for a KMS object: said plainly.
	r = c.run(nil, "get", "--key", "env:S3ENVELOPE_TEST_KEY", c.uri("kms"), "x")
	requireExit(t, r, exitFailed, "wrapped by a KMS key (kms+context), and --key env:S3ENVELOPE_TEST_KEY is an AES key")
	requireOneLineError(t, r)
	requireNoSecrets(t, secretForms(raw), outputs...)
}

// TestPutGetLarge: 40 MiB, past put's multipart threshold, through the
// Uploader (from a file, and from stdin of unknown length) and back
// through the Downloader (to a file) and GetObject (to stdout).
func TestPutGetLarge(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	data := randomBytes(t, 40<<20+5)
	c.file("big.bin", data)
	for _, tc := range []struct {
		format, src string
	}{{"v3", "big.bin"}, {"segmented", "-"}} {
		name := tc.format + "-large"
		var stdin []byte
		if tc.src == "-" {
			stdin = data
		}
		r := c.run(stdin, "put", "--json", "--key", k.path, "--desc", k.desc, "--format", tc.format, tc.src, c.uri(name))
		requireExit(t, r, exitOK)
		res := decodeJSON[putResult](t, r)
		// S3's ETag of a multipart object ends in -<parts>.
		if res.Parts != 6 || !strings.HasSuffix(res.ETag, `-6"`) || res.Size != int64(len(data)) {
			t.Fatalf("%s: not a multipart upload of 8 MiB parts: %+v", name, res)
		}
		r = c.run(nil, "get", "--key", k.path, c.uri(name), name)
		requireExit(t, r, exitOK)
		requireSame(t, "get "+name, readFile(t, filepath.Join(c.dir, name)), data)
		r = c.run(nil, "cat", "--key", k.path, c.uri(name))
		requireExit(t, r, exitOK)
		requireSame(t, "cat "+name, []byte(r.stdout), data)
	}
}

func TestPutBadInput(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	c.file("data.bin", []byte("hello"))
	c.file("bad.key", []byte("not a key"))
	if err := os.Mkdir(filepath.Join(c.dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--key", "missing.key", "--desc", "key=a", "data.bin", c.uri("x")}, exitUsage, "--key missing.key: open missing.key: no such file or directory"},
		{[]string{"--key", "bad.key", "--desc", "key=a", "data.bin", c.uri("x")}, exitUsage, "--key bad.key: "},
		{[]string{"--key", k.path, "data.bin", c.uri("x")}, exitUsage, "one --desc per --key"},
		{[]string{"data.bin", c.uri("x")}, exitUsage, "give a master key with --key"},
		{[]string{"--key", k.path, "--desc", "key=a", "missing.bin", c.uri("x")}, exitUsage, "open missing.bin: no such file or directory"},
		{[]string{"--key", k.path, "--desc", "key=a", "adir", c.uri("x")}, exitUsage, "adir is not a regular file"},
		{[]string{"--key", k.path, "--desc", "key=a", "data.bin", "s3:/" + c.bucket + "/x"}, exitUsage, "is not an S3 URI"},
		{[]string{"--key", k.path, "--desc", "key=a", "data.bin", "s3://" + c.bucket}, exitUsage, "names no object"},
		{[]string{"--key", k.path, "--desc", "key=a", "data.bin"}, exitUsage, "want FILE"},
		{[]string{"--key", k.path, "--desc", "key=a", "--format", "v4", "data.bin", c.uri("x")}, exitUsage, `--format "v4"`},
		{[]string{"--key", k.path, "--desc", "key=a", "--metadata", "novalue", "data.bin", c.uri("x")}, exitUsage, "--metadata"},
		{[]string{"--key", k.path, "--desc", "key=a", "data.bin", "s3://no-such-bucket-s3envelope/x"}, exitFailed, "NoSuchBucket"},
	} {
		r := c.run(nil, append([]string{"put"}, tc.args...)...)
		requireExit(t, r, tc.code, "s3envelope put: ", tc.want)
		if tc.code == exitUsage && strings.Contains(r.stderr, "usage:") {
			continue // a usage error: the message and the usage line
		}
		requireOneLineError(t, r)
		requireNoSecrets(t, k.secrets, r)
	}
	if c.exists("x") {
		t.Fatal("a refused put stored an object")
	}
}

// TestPutInterrupted: Ctrl-C during a multipart upload of an endless
// stdin aborts the upload: no parts left behind, no object, exit 1 with
// one line saying so.
func TestPutInterrupted(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := c.command(ctx, []string{"put", "--quiet", "--key", k.path, "--desc", k.desc, "-", c.uri("stream")})
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // an endless stream, until the command is gone
		chunk := randomBytes(t, 1<<20)
		for {
			if _, err := stdin.Write(chunk); err != nil {
				return
			}
		}
	}()
	// Interrupt once the multipart upload exists and parts are going up.
	for {
		out, err := c.admin.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(c.bucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Uploads) > 0 {
			parts, err := c.admin.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(c.bucket), Key: out.Uploads[0].Key, UploadId: out.Uploads[0].UploadId})
			if err == nil && len(parts.Parts) > 0 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no multipart upload appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	t.Logf("exit %d, stderr: %s", r.code, r.stderr)
	requireExit(t, r, exitFailed, "s3envelope put: interrupted: ")
	requireOneLineError(t, r)
	if r.stdout != "" {
		t.Fatalf("an interrupted put printed a summary: %q", r.stdout)
	}
	out, err := c.admin.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(c.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left after Ctrl-C", len(out.Uploads))
	}
	if c.exists("stream") {
		t.Fatal("an interrupted put stored an object")
	}
}

// TestPutProgress: plain lines when stderr is piped (the last one says
// all was done), a bar with percent, rate and ETA on a terminal.
func TestPutProgress(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("a.key")
	data := randomBytes(t, 24<<20)
	c.file("big.bin", data)
	c.env = append(c.env, "S3ENVELOPE_PROGRESS_INTERVAL=50ms")

	r := c.run(nil, "put", "--key", k.path, "--desc", k.desc, "big.bin", c.uri("piped"))
	requireExit(t, r, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) < 1 || lines[0] == "" {
		t.Fatal("no progress lines")
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "progress op=put target="+c.uri("piped")+" done=") || strings.ContainsAny(l, "\r\x1b") {
			t.Fatalf("not a plain progress line: %q", l)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, fmt.Sprintf(" done=%d total=%d unit=bytes rate=", len(data), len(data))) {
		t.Fatalf("last progress line %q", last)
	}

	r = c.run(nil, "put", "--json", "--key", k.path, "--desc", k.desc, "big.bin", c.uri("json"))
	requireExit(t, r, exitOK)
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var v struct {
			Progress struct {
				Op   string `json:"op"`
				Done int64  `json:"done"`
			} `json:"progress"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.Progress.Op != "put" {
			t.Fatalf("with --json, a progress line that is not JSON: %q", l)
		}
	}

	r = c.run(nil, "put", "--quiet", "--key", k.path, "--desc", k.desc, "big.bin", c.uri("quiet"))
	requireExit(t, r, exitOK)
	if r.stderr != "" {
		t.Fatalf("--quiet wrote %q", r.stderr)
	}

	r = c.runOnTerminal(nil, "put", "--key", k.path, "--desc", k.desc, "big.bin", c.uri("tty"))
	requireExit(t, r, exitOK)
	for _, want := range []string{"\rput [", "%", "/s", "ETA ", "100% 24.0 MiB/24.0 MiB"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("the terminal shows no %q:\n%q", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "progress op=") {
		t.Fatalf("plain lines on a terminal:\n%q", r.stderr)
	}
	requireNoSecrets(t, k.secrets, r)
}
