package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3envelope/s3envelope/internal/testenv"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// These tests run the command as an operator would, against the real S3
// server that ./scripts/test starts (versitygw, S3ENVELOPE_S3_ENDPOINT) and,
// for kms: keys, its KMS server (local-kms, S3ENVELOPE_KMS_ENDPOINT), with
// credentials passed only through the standard AWS environment variables.
// They fail, never skip, without them.

type env struct {
	t        *testing.T
	endpoint string
	bucket   string
	admin    *s3.Client
	dir      string
}

func setup(t *testing.T) *env {
	t.Helper()
	return setupServer(t, "S3ENVELOPE_S3", "a real S3 server (versitygw)")
}

// setupSSEC is setup against MinIO over TLS (S3ENVELOPE_SSEC_*), whose
// certificate the command trusts through AWS_CA_BUNDLE, as an operator's
// would.
func setupSSEC(t *testing.T) *env {
	t.Helper()
	ca := os.Getenv("S3ENVELOPE_SSEC_CA")
	if ca == "" {
		t.Fatal("S3ENVELOPE_SSEC_CA is not set: run ./scripts/test, which starts MinIO over TLS")
	}
	t.Setenv("AWS_CA_BUNDLE", ca)
	return setupServer(t, "S3ENVELOPE_SSEC", "MinIO over TLS")
}

// setupServer makes the AWS environment of the server whose settings are in
// the variables prefix_ENDPOINT, _ACCESS_KEY, _SECRET_KEY, _REGION.
func setupServer(t *testing.T, prefix, what string) *env {
	endpoint := os.Getenv(prefix + "_ENDPOINT")
	if endpoint == "" {
		t.Fatalf("%s_ENDPOINT is not set: run ./scripts/test, which starts %s", prefix, what)
	}
	region := os.Getenv(prefix + "_REGION")
	if region == "" {
		region = "us-east-1"
	}
	id, secret := os.Getenv(prefix+"_ACCESS_KEY"), os.Getenv(prefix+"_SECRET_KEY")
	none := filepath.Join(t.TempDir(), "none") // keep ~/.aws out of the test
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": region, "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
	} {
		t.Setenv(k, v)
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background()) // the CA bundle, if any
	if err != nil {
		t.Fatal(err)
	}
	admin := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true
		o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	})
	bucket := testenv.Bucket(t, admin, "rewrap-")
	return &env{t: t, endpoint: endpoint, bucket: bucket, admin: admin, dir: t.TempDir()}
}

// file writes content to a file in the test's directory.
func (e *env) file(name string, content []byte) string {
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// aesKey writes a random AES-256 key file (hex or base64) and returns its
// path and a keyring for it.
func (e *env) aesKey(name, kid string, encode func([]byte) string) (string, *keyring.AES) {
	k := make([]byte, 32)
	rand.Read(k)
	kr, err := keyring.NewAES(k, map[string]string{"kid": kid})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.file(name, []byte(encode(k)+"\n")), kr
}

// rsaKey writes an RSA private key (PKCS #8 PEM) and its public key, and
// returns their paths and a keyring for the private key.
func (e *env) rsaKey(name, kid string) (priv, pub string, kr *keyring.RSA) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		e.t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		e.t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		e.t.Fatal(err)
	}
	kr, err = keyring.NewRSA(k, map[string]string{"kid": kid})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.file(name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		e.file(name+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})), kr
}

// client returns an encrypting client with current key cur, reading V2 too.
func (e *env) client(cur keyring.Keyring, others []keyring.Keyring, opts ...func(*s3crypto.Options)) *s3crypto.Client {
	p := materials.NewProvider(cur, others...)
	c, err := s3crypto.New(e.admin, p, append(opts, func(o *s3crypto.Options) {
		if o.CommitmentPolicy == envelope.RequireEncryptRequireDecrypt {
			o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
		}
	})...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// objectClient is what *s3crypto.Client and *s3crypto.SSECClient share.
type objectClient interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// sseClient is e.client for managed SSE-C objects.
func (e *env) sseClient(cur keyring.Keyring, others []keyring.Keyring) *s3crypto.SSECClient {
	c, err := s3crypto.NewSSEC(e.admin, materials.NewProvider(cur, others...))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) put(c objectClient, key string, body []byte) {
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &e.bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		e.t.Fatal(err)
	}
}

// read decrypts key with c.
func (e *env) read(c objectClient, key string) ([]byte, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &e.bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// rewrap runs the command with args plus -bucket and -endpoint.
func (e *env) rewrap(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	all := append([]string{"-bucket", e.bucket, "-endpoint", e.endpoint}, args...)
	code = run(context.Background(), all, &out, &errOut)
	e.t.Logf("rewrap %s\n-> exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

func requireContains(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

// TestRewrapCommand rotates a bucket of V3 (metadata) and V2 (instruction
// file) objects, under an AES and an RSA key, to a new AES key; then a dry
// run finds everything current; then an object under a key the command was
// not given fails the run (exit 1), stays in the checkpoint file, and is
// rewrapped by a resumed run that has the key.
func TestRewrapCommand(t *testing.T) {
	e := setup(t)
	oldAESFile, oldAES := e.aesKey("old.hex", "2025", hex.EncodeToString)
	oldRSAFile, _, oldRSA := e.rsaKey("old-rsa.pem", "rsa-2025")
	newFile, newAES := e.aesKey("new.b64", "2026", base64.StdEncoding.EncodeToString)
	v3 := e.client(oldAES, nil)
	v2 := e.client(oldRSA, nil, func(o *s3crypto.Options) {
		o.CommitmentPolicy, o.Format, o.InstructionFile = envelope.ForbidEncryptAllowDecrypt, envelope.FormatV2, true
	})
	want := map[string][]byte{}
	for i := range 30 {
		k := fmt.Sprintf("data/v3-%02d", i)
		want[k] = []byte("three " + k)
		e.put(v3, k, want[k])
	}
	for i := range 10 {
		k := fmt.Sprintf("data/v2-%02d", i)
		want[k] = []byte("two " + k)
		e.put(v2, k, want[k])
	}
	for _, k := range []string{"data/plain-1", "data/plain-2"} {
		if _, err := e.admin.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &e.bucket, Key: aws.String(k), Body: strings.NewReader("plain")}); err != nil {
			t.Fatal(err)
		}
	}
	resume := filepath.Join(e.dir, "rewrap.checkpoint")
	keys := []string{"-new-key", newFile, "-new-desc", "kid=2026",
		"-old-key", oldAESFile, "-old-desc", `{"kid":"2025"}`,
		"-old-key", oldRSAFile, "-old-desc", "kid=rsa-2025"}

	code, out, errOut := e.rewrap(append(keys, "-prefix", "data/", "-concurrency", "4", "-resume", resume, "-progress-every", "1ns")...)
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	requireContains(t, out, "rewrapped              40", "already current        0", "not encrypted          2",
		"envelope objects       10", "failed                 0", "complete:")
	requireContains(t, errOut, `to master key {"kid":"2026"}`, "progress: listed 52 (all) · done 52: 40 rewrapped")
	if _, err := os.Stat(resume); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the checkpoint file outlived a complete walk: %v", err)
	}
	onlyNew, onlyOld := e.client(nil, []keyring.Keyring{newAES}), e.client(nil, []keyring.Keyring{oldAES, oldRSA})
	for k, pt := range want {
		got, err := e.read(onlyNew, k)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s with the new key: %q, %v", k, got, err)
		}
		if _, err := e.read(onlyOld, k); !errors.Is(err, envelope.ErrNoMasterKey) {
			t.Errorf("%s with the old keys: %v, want ErrNoMasterKey", k, err)
		}
	}

	code, out, _ = e.rewrap(append(keys, "-prefix", "data/", "-dry-run")...)
	if code != 0 {
		t.Fatalf("dry run: exit status %d", code)
	}
	requireContains(t, out, "to rewrap (dry run)    0", "already current        40")

	// An object under a key the command lacks: the run fails, the rest is
	// done, and the checkpoint names it.
	strayFile, stray := e.aesKey("stray.hex", "stray", hex.EncodeToString)
	e.put(e.client(stray, nil), "data/stray", []byte("stray"))
	e.put(v3, "data/v3-late", []byte("late"))
	code, out, errOut = e.rewrap(append(keys, "-prefix", "data/", "-resume", resume)...)
	if code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	requireContains(t, out, "rewrapped              1", "failed                 1", `FAILED data/stray: `, `{"kid":"stray"}`)
	requireContains(t, errOut, "FAILED data/stray", "run again with -resume "+resume)
	b, err := os.ReadFile(resume)
	if err != nil {
		t.Fatal(err)
	}
	var cp s3crypto.RewrapCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	if len(cp.Retry) != 1 || cp.Retry[0] != "data/stray" || cp.After != "data/v3-late" {
		t.Errorf("checkpoint %+v", cp)
	}

	code, out, errOut = e.rewrap(append(keys, "-prefix", "data/", "-resume", resume, "-old-key", strayFile, "-old-desc", "kid=stray")...)
	if code != 0 {
		t.Fatalf("resumed: exit status %d", code)
	}
	requireContains(t, errOut, `resuming from `+resume+`: after "data/v3-late", 1 object(s) to retry`)
	requireContains(t, out, "s3://"+e.bucket+"/data/: 1 objects", "rewrapped              1")
	if got, err := e.read(onlyNew, "data/stray"); err != nil || string(got) != "stray" {
		t.Errorf("data/stray with the new key: %q, %v", got, err)
	}
}

// TestRewrapCommandSSEC rotates managed SSE-C objects on MinIO: the
// companions to the new key, then with -rekey every data key.
func TestRewrapCommandSSEC(t *testing.T) {
	e := setupSSEC(t)
	oldFile, oldAES := e.aesKey("old.hex", "2025", hex.EncodeToString)
	newFile, newAES := e.aesKey("new.hex", "2026", hex.EncodeToString)
	w := e.sseClient(oldAES, nil)
	for i := range 5 {
		e.put(w, fmt.Sprintf("s/%d", i), []byte(fmt.Sprint("object ", i)))
	}
	keys := []string{"-sse-c", "-new-key", newFile, "-new-desc", "kid=2026", "-old-key", oldFile, "-old-desc", "kid=2025"}
	code, out, _ := e.rewrap(keys...)
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	requireContains(t, out, "rewrapped              5", "envelope objects       5", "failed                 0")
	onlyNew, onlyOld := e.sseClient(nil, []keyring.Keyring{newAES}), e.sseClient(nil, []keyring.Keyring{oldAES})
	for i := range 5 {
		k := fmt.Sprintf("s/%d", i)
		if got, err := e.read(onlyNew, k); err != nil || string(got) != fmt.Sprint("object ", i) {
			t.Errorf("%s with the new key: %q, %v", k, got, err)
		}
		if _, err := e.read(onlyOld, k); !errors.Is(err, envelope.ErrNoMasterKey) {
			t.Errorf("%s with the old key: %v, want ErrNoMasterKey", k, err)
		}
	}
	code, out, _ = e.rewrap(append(keys, "-rekey")...)
	if code != 0 {
		t.Fatalf("-rekey: exit status %d", code)
	}
	requireContains(t, out, "rewrapped              5")
	if got, err := e.read(onlyNew, "s/3"); err != nil || string(got) != "object 3" {
		t.Errorf("after -rekey: %q, %v", got, err)
	}
	if code, _, errOut := e.rewrap("-new-key", newFile, "-new-desc", "kid=2026", "-rekey"); code != 2 || !strings.Contains(errOut, "-rekey is for SSE-C") {
		t.Errorf("-rekey without -sse-c: exit %d, %s", code, errOut)
	}
}

// TestRewrapCommandKeys: an RSA public key as the new key (wrap-only), and
// KMS keys both ways (kms:<arn> with -kms-endpoint).
func TestRewrapCommandKeys(t *testing.T) {
	e := setup(t)
	oldFile, oldAES := e.aesKey("old.hex", "2025", hex.EncodeToString)
	_, pubFile, escrow := e.rsaKey("escrow.pem", "escrow")
	e.put(e.client(oldAES, nil), "a", []byte("alpha"))
	code, out, _ := e.rewrap("-new-key", pubFile, "-new-desc", "kid=escrow", "-old-key", oldFile, "-old-desc", "kid=2025")
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	requireContains(t, out, "rewrapped              1")
	if got, err := e.read(e.client(nil, []keyring.Keyring{escrow}), "a"); err != nil || string(got) != "alpha" {
		t.Errorf("with the escrow key: %q, %v", got, err)
	}

	kmsEndpoint := os.Getenv("S3ENVELOPE_KMS_ENDPOINT")
	if kmsEndpoint == "" {
		t.Fatal("S3ENVELOPE_KMS_ENDPOINT is not set: run ./scripts/test, which starts a KMS-compatible server (local-kms)")
	}
	kc := kms.New(kms.Options{BaseEndpoint: aws.String(kmsEndpoint), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCALKMS", "unchecked", "")})
	ck, err := kc.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(ck.KeyMetadata.Arn)
	kmsKey, err := keyring.NewKMS(kc, arn)
	if err != nil {
		t.Fatal(err)
	}
	newFile, newAES := e.aesKey("new.hex", "2026", hex.EncodeToString)
	e.put(e.client(oldAES, nil), "b", []byte("bravo"))
	code, out, _ = e.rewrap("-new-key", "kms:"+arn, "-kms-endpoint", kmsEndpoint, "-old-key", oldFile, "-old-desc", "kid=2025", "-prefix", "b")
	if code != 0 {
		t.Fatalf("to KMS: exit status %d", code)
	}
	requireContains(t, out, "rewrapped              1", "complete:")
	if got, err := e.read(e.client(kmsKey, nil), "b"); err != nil || string(got) != "bravo" {
		t.Errorf("with the KMS key: %q, %v", got, err)
	}
	code, out, _ = e.rewrap("-new-key", newFile, "-new-desc", "kid=2026", "-old-key", "kms:"+arn, "-kms-endpoint", kmsEndpoint, "-prefix", "b")
	if code != 0 {
		t.Fatalf("from KMS: exit status %d", code)
	}
	requireContains(t, out, "rewrapped              1")
	if got, err := e.read(e.client(nil, []keyring.Keyring{newAES}), "b"); err != nil || string(got) != "bravo" {
		t.Errorf("with the new AES key: %q, %v", got, err)
	}
}

// TestRewrapCommandUsage: bad usage exits 2 and says why.
func TestRewrapCommandUsage(t *testing.T) {
	e := setup(t)
	keyFile, _ := e.aesKey("k.hex", "k", hex.EncodeToString)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-new-key", keyFile}, "a description is required"},
		{[]string{"-new-key", keyFile, "-new-desc", "kid=1", "-old-key", keyFile}, "one -old-desc per -old-key"},
		{[]string{"-new-key", keyFile, "-new-desc", "kid", "-old-key", keyFile}, "one -old-desc per -old-key"},
		{[]string{"-new-key", keyFile, "-new-desc", "nokv"}, "want k=v"},
		{[]string{"-new-key", keyFile, "-new-desc", "kid=1", "-dry-run", "-resume", "x"}, "-dry-run writes no checkpoint"},
		{[]string{"-new-key", keyFile, "-new-desc", "kid=1", "-concurrency", "0"}, "-concurrency must be at least 1"},
		{[]string{"-new-key", keyFile, "-new-desc", "kid=1", "-re-encrypt", "sometimes"}, "-re-encrypt is auto, always or never"},
		{[]string{"-no-such-flag"}, "flag provided but not defined"},
	} {
		code, _, errOut := e.rewrap(tc.args...)
		if code != 2 {
			t.Errorf("%v: exit status %d, want 2", tc.args, code)
		}
		requireContains(t, errOut, tc.want)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-new-key", keyFile, "-new-desc", "kid=1"}, &out, &out); code != 2 {
		t.Errorf("without -bucket: exit status %d", code)
	}
}

// TestProgressLine: on a terminal the progress line is rewritten in place
// (\r and erase-to-end-of-line), and a failure is printed on a line of its own.
func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true}
	p.update(s3crypto.RewrapProgress{Listed: 2, RewrapCounts: s3crypto.RewrapCounts{Rewrapped: 1}})
	p.update(s3crypto.RewrapProgress{Listed: 2, Key: "x", Err: errors.New("boom"), RewrapCounts: s3crypto.RewrapCounts{Rewrapped: 1, Failed: 1}})
	p.done()
	s := b.String()
	requireContains(t, s, "\rlisted 2 · done 1: 1 rewrapped", "\r\x1b[KFAILED x: boom\n", "\rlisted 2 · done 2: 1 rewrapped, 0 current, 0 not encrypted, 0 envelope objects, 0 gone, 1 failed")
	if !strings.HasSuffix(s, "\n") {
		t.Errorf("the last progress line is not ended: %q", s)
	}
}

// TestLoadKeyFiles: key files are read by keyring.ParseAES and ParseRSA; a
// public key may be only the new key; a refused file's error says what was
// wanted and holds none of the file. It needs no server.
func TestLoadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noKMS := func() *kms.Client { t.Fatal("no KMS client wanted"); return nil }
	key := make([]byte, 32)
	rand.Read(key)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	for _, tc := range []struct {
		file  string
		isNew bool
		want  string // "" for success
	}{
		{write("hex", []byte(hex.EncodeToString(key)+"\n")), false, ""},
		{write("b64", []byte(base64.RawURLEncoding.EncodeToString(key))), false, ""},
		{write("raw", key), false, ""},
		{write("rsa.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})), false, ""},
		{pub, true, ""},
		{pub, false, "an old key must be able to unwrap"},
		{write("aes128", []byte(hex.EncodeToString(key[:16])+"\n")), false, ""},
		{write("aes120", []byte(hex.EncodeToString(key[:15])+"\n")), true, "want 16, 24 or 32 bytes raw, in hex or in base64; got 31 bytes"},
		{write("spaced", []byte(hex.EncodeToString(key)+"\n\n")), true, "whitespace other than one final newline"},
		{write("bag.pem", append([]byte("Bag Attributes\n"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})...)), true, "do not start with one"},
	} {
		k, err := loadKey(tc.file, "kid=1", tc.isNew, noKMS)
		switch {
		case tc.want == "" && (err != nil || k == nil || k.Description()["kid"] != "1"):
			t.Errorf("%s: %v, %v", tc.file, k, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error containing %q", tc.file, err, tc.want)
		case tc.want != "" && strings.Contains(err.Error(), hex.EncodeToString(key[:8])):
			t.Errorf("%s: the error shows the key: %v", tc.file, err)
		}
		if tc.want != "" && k != nil {
			t.Errorf("%s: a keyring with the error", tc.file)
		}
	}
}
