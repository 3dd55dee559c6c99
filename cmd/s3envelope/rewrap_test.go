package main

import (
	"bufio"
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
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/inventory/inventorytest"
	"github.com/s3envelope/s3envelope/internal/testenv"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// What the bucket commands' tests share: key files, and the library's
// clients over c.admin to write objects behind the command's back and to
// read back what it did.

// aesKeyFile writes a random AES-256 key file (encoded by encode) and
// returns its path, a keyring for it, and the key's hex and base64, which
// no output may show.
func (c *cli) aesKeyFile(name, kid string, encode func([]byte) string) (string, *keyring.AES, []string) {
	c.t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	kr, err := keyring.NewAES(k, map[string]string{"kid": kid})
	if err != nil {
		c.t.Fatal(err)
	}
	return c.file(name, []byte(encode(k)+"\n")), kr,
		[]string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)}
}

// rsaKeyFiles writes an RSA private key (PKCS #8 PEM) and its public key,
// and returns their paths and a keyring for the private key.
func (c *cli) rsaKeyFiles(name, kid string) (priv, pub string, kr *keyring.RSA) {
	c.t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		c.t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		c.t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		c.t.Fatal(err)
	}
	if kr, err = keyring.NewRSA(k, map[string]string{"kid": kid}); err != nil {
		c.t.Fatal(err)
	}
	return c.file(name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		c.file(name+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})), kr
}

// libClient is a library client over c.admin with current key cur (nil to
// only read), reading V2 too.
func (c *cli) libClient(cur keyring.Keyring, others []keyring.Keyring, opts ...func(*s3crypto.Options)) *s3crypto.Client {
	c.t.Helper()
	cl, err := s3crypto.New(c.admin, materials.NewProvider(cur, others...), append([]func(*s3crypto.Options){func(o *s3crypto.Options) {
		o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
	}}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// libSSEC is libClient for managed SSE-C objects.
func (c *cli) libSSEC(cur keyring.Keyring, others []keyring.Keyring) *s3crypto.SSECClient {
	c.t.Helper()
	cl, err := s3crypto.NewSSEC(c.admin, materials.NewProvider(cur, others...))
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// objectClient is what *s3crypto.Client and *s3crypto.SSECClient share.
type objectClient interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

func (c *cli) putWith(cl objectClient, key string, body []byte) {
	c.t.Helper()
	if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &c.bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cli) putPlain(key string, body []byte) {
	c.t.Helper()
	if _, err := c.admin.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &c.bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		c.t.Fatal(err)
	}
}

// read decrypts key with cl.
func (c *cli) read(cl objectClient, key string) ([]byte, error) {
	out, err := cl.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &c.bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func requireContains(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

// requireNoKeyBytes fails if any output of r shows one of the encodings of
// a key.
func requireNoKeyBytes(t *testing.T, r result, secrets ...[]string) {
	t.Helper()
	for _, enc := range secrets {
		for _, s := range enc {
			if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
				t.Fatalf("the output shows key bytes (%.8s…)", s)
			}
		}
	}
}

// TestRewrap rotates a bucket of V3 (metadata) and V2 (instruction file)
// objects, under an AES and an RSA key, to a new AES key; then a dry run
// finds everything current; then an object under a key the command was not
// given fails the run (exit 1), stays in the checkpoint file, and is
// rewrapped by a resumed run that has the key.
func TestRewrap(t *testing.T) {
	c := newS3CLI(t)
	c.env = append(c.env, "S3ENVELOPE_PROGRESS_INTERVAL=1ns")
	oldAESFile, oldAES, oldSecret := c.aesKeyFile("old.hex", "2025", hex.EncodeToString)
	oldRSAFile, _, oldRSA := c.rsaKeyFiles("old-rsa.pem", "rsa-2025")
	newFile, newAES, newSecret := c.aesKeyFile("new.b64", "2026", base64.StdEncoding.EncodeToString)
	v3 := c.libClient(oldAES, nil)
	v2 := c.libClient(oldRSA, nil, func(o *s3crypto.Options) {
		o.CommitmentPolicy, o.Format, o.InstructionFile = envelope.ForbidEncryptAllowDecrypt, envelope.FormatV2, true
	})
	want := map[string][]byte{}
	for i := range 30 {
		k := fmt.Sprintf("data/v3-%02d", i)
		want[k] = []byte("three " + k)
		c.putWith(v3, k, want[k])
	}
	for i := range 10 {
		k := fmt.Sprintf("data/v2-%02d", i)
		want[k] = []byte("two " + k)
		c.putWith(v2, k, want[k])
	}
	c.putPlain("data/plain-1", []byte("plain"))
	c.putPlain("data/plain-2", []byte("plain"))
	c.putPlain("elsewhere", []byte("not under the prefix"))
	resume := filepath.Join(c.dir, "rewrap.checkpoint")
	keys := []string{"--new-key", newFile, "--new-desc", "kid=2026",
		"--old-key", oldAESFile, "--old-desc", `{"kid":"2025"}`,
		"--old-key", oldRSAFile, "--old-desc", "kid=rsa-2025"}

	// Flags after the argument, as an operator types them.
	r := c.run(nil, append([]string{"rewrap", c.uri("data/"), "--concurrency", "4", "--resume", resume}, keys...)...)
	requireExit(t, r, exitOK, `rewrapping `+c.uri("data/")+` to master key {"kid":"2026"}`,
		"progress op=rewrap target="+c.uri("data/")+" done=52 total=52 unit=objects", "rewrapped=40 current=0 failed=0")
	requireContains(t, r.stdout, c.uri("data/")+": 52 objects in ", "rewrapped              40", "already current        0",
		"not encrypted          2", "envelope objects       10", "failed                 0", "complete:")
	requireNoKeyBytes(t, r, oldSecret, newSecret)
	if _, err := os.Stat(resume); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the checkpoint file outlived a complete walk: %v", err)
	}
	onlyNew, onlyOld := c.libClient(nil, []keyring.Keyring{newAES}), c.libClient(nil, []keyring.Keyring{oldAES, oldRSA})
	for k, pt := range want {
		got, err := c.read(onlyNew, k)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s with the new key: %q, %v", k, got, err)
		}
		if _, err := c.read(onlyOld, k); !errors.Is(err, envelope.ErrNoMasterKey) {
			t.Errorf("%s with the old keys: %v, want ErrNoMasterKey", k, err)
		}
	}

	r = c.run(nil, append([]string{"rewrap", "--dry-run", c.uri("data/")}, keys...)...)
	requireExit(t, r, exitOK, "dry run: checking")
	requireContains(t, r.stdout, "to rewrap (dry run)    0", "already current        40", "dry run complete: 0 object(s) would be rewrapped")

	// An object under a key the command lacks: the run fails, the rest is
	// done, and the checkpoint names it.
	strayFile, stray, straySecret := c.aesKeyFile("stray.hex", "stray", hex.EncodeToString)
	c.putWith(c.libClient(stray, nil), "data/stray", []byte("stray"))
	c.putWith(v3, "data/v3-late", []byte("late"))
	r = c.run(nil, append([]string{"rewrap", "--resume", resume, c.uri("data/")}, keys...)...)
	requireExit(t, r, exitFailed, "FAILED "+c.uri("data/stray")+" (no master key for its description): ",
		"s3envelope rewrap: 1 object(s) failed; run again with --resume "+resume)
	requireContains(t, r.stdout, "rewrapped              1", "failed                 1", "FAILED data/stray (no master key for its description): ", `{"kid":"stray"}`)
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); !strings.HasPrefix(lines[len(lines)-1], "s3envelope rewrap: ") {
		t.Errorf("the last line of stderr is not the error: %q", lines[len(lines)-1])
	}
	b, err := os.ReadFile(resume)
	if err != nil {
		t.Fatal(err)
	}
	var cp s3crypto.RewrapCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	if len(cp.Retry) != 1 || cp.Retry[0] != "data/stray" || cp.After != "data/v3-late" || cp.Bucket != c.bucket || cp.Prefix != "data/" {
		t.Errorf("checkpoint %+v", cp)
	}

	// Resumed with the stray key, as JSON.
	r = c.run(nil, append([]string{"rewrap", "--json", "--resume", resume, c.uri("data/"), "--old-key", strayFile, "--old-desc", "kid=stray"}, keys...)...)
	requireExit(t, r, exitOK, `resuming from `+resume+`: after "data/v3-late", 1 object(s) to retry`)
	requireNoKeyBytes(t, r, oldSecret, newSecret, straySecret)
	var sum struct {
		Target                                     string
		Objects, Rewrapped, AlreadyCurrent, Failed int
		Failures                                   []objectFailure
		Complete                                   bool
		Checkpoint                                 *s3crypto.RewrapCheckpoint
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("--json: %v", err)
	}
	if sum.Target != c.uri("data/") || sum.Objects != 1 || sum.Rewrapped != 1 || sum.Failed != 0 || !sum.Complete || sum.Failures == nil || len(sum.Failures) != 0 || sum.Checkpoint != nil {
		t.Errorf("--json summary %+v", sum)
	}
	if got, err := c.read(onlyNew, "data/stray"); err != nil || string(got) != "stray" {
		t.Errorf("data/stray with the new key: %q, %v", got, err)
	}
	if _, err := os.Stat(resume); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the checkpoint file outlived a complete walk: %v", err)
	}
	if got, err := c.read(c.admin, "elsewhere"); err != nil || string(got) != "not under the prefix" {
		t.Errorf("an object outside the prefix changed: %q, %v", got, err)
	}
}

// TestRewrapInterrupted: Ctrl-C writes the checkpoint and exits 1, saying
// how to go on; the resumed run finishes the rest, and every object ends
// under the new key.
func TestRewrapInterrupted(t *testing.T) {
	c := newS3CLI(t)
	oldFile, oldAES, _ := c.aesKeyFile("old.hex", "2025", hex.EncodeToString)
	newFile, newAES, _ := c.aesKeyFile("new.hex", "2026", hex.EncodeToString)
	const n = 200
	c.populate(c.libClient(oldAES, nil), "r/", n)
	resume := filepath.Join(c.dir, "rewrap.checkpoint")
	args := []string{"rewrap", c.uri("r/"), "--concurrency", "1", "--resume", resume,
		"--new-key", newFile, "--new-desc", "kid=2026", "--old-key", oldFile, "--old-desc", "kid=2025"}
	r := c.interrupt("rewrapped=20 ", args...)
	requireExit(t, r, exitFailed, "s3envelope rewrap: interrupted; run again with --resume "+resume+" to continue")
	first := summaryCount(t, r.stdout, "rewrapped")
	var cp s3crypto.RewrapCheckpoint
	b, err := os.ReadFile(resume)
	if err != nil {
		t.Fatalf("no checkpoint after Ctrl-C: %v", err)
	}
	if err := json.Unmarshal(b, &cp); err != nil || cp.After == "" || cp.After >= fmt.Sprintf("r/%04d", n-1) {
		t.Fatalf("checkpoint %+v, %v", cp, err)
	}
	r = c.run(nil, args...)
	requireExit(t, r, exitOK, "resuming from "+resume)
	// The object in flight at Ctrl-C may have landed without being
	// counted; the resumed walk then finds it already current.
	second, current := summaryCount(t, r.stdout, "rewrapped"), summaryCount(t, r.stdout, "already current")
	if first+second+current != n || current > 1 {
		t.Errorf("rewrapped %d, then %d on resume (%d already current): want %d in all, at most 1 in flight", first, second, current, n)
	}
	onlyNew := c.libClient(nil, []keyring.Keyring{newAES})
	for i := range n {
		if _, err := c.read(onlyNew, fmt.Sprintf("r/%04d", i)); err != nil {
			t.Errorf("r/%04d with the new key: %v", i, err)
		}
	}
}

// TestRewrapSSEC rotates managed SSE-C objects on MinIO over TLS: the
// companions to the new key, then with --rekey every data key; against a
// plain-HTTP endpoint, --sse-c is refused before anything is sent.
func TestRewrapSSEC(t *testing.T) {
	c := newSSECCLI(t)
	oldFile, oldAES, oldSecret := c.aesKeyFile("old.hex", "2025", hex.EncodeToString)
	newFile, newAES, newSecret := c.aesKeyFile("new.hex", "2026", hex.EncodeToString)
	w := c.libSSEC(oldAES, nil)
	for i := range 5 {
		c.putWith(w, fmt.Sprintf("s/%d", i), []byte(fmt.Sprint("object ", i)))
	}
	keys := []string{"--sse-c", "--new-key", newFile, "--new-desc", "kid=2026", "--old-key", oldFile, "--old-desc", "kid=2025"}
	r := c.run(nil, append([]string{"rewrap", c.uri("")}, keys...)...)
	requireExit(t, r, exitOK)
	requireContains(t, r.stdout, "rewrapped              5", "envelope objects       5", "failed                 0")
	requireNoKeyBytes(t, r, oldSecret, newSecret)
	onlyNew, onlyOld := c.libSSEC(nil, []keyring.Keyring{newAES}), c.libSSEC(nil, []keyring.Keyring{oldAES})
	for i := range 5 {
		k := fmt.Sprintf("s/%d", i)
		if got, err := c.read(onlyNew, k); err != nil || string(got) != fmt.Sprint("object ", i) {
			t.Errorf("%s with the new key: %q, %v", k, got, err)
		}
		if _, err := c.read(onlyOld, k); !errors.Is(err, envelope.ErrNoMasterKey) {
			t.Errorf("%s with the old key: %v, want ErrNoMasterKey", k, err)
		}
	}
	r = c.run(nil, append([]string{"rewrap", c.uri(""), "--rekey"}, keys...)...)
	requireExit(t, r, exitOK)
	requireContains(t, r.stdout, "rewrapped              5")
	if got, err := c.read(onlyNew, "s/3"); err != nil || string(got) != "object 3" {
		t.Errorf("after --rekey: %q, %v", got, err)
	}

	// The same over plain HTTP (versitygw): refused, in one line, exit 2.
	h := newS3CLI(t)
	hNew, _, _ := h.aesKeyFile("new.hex", "2026", hex.EncodeToString)
	hOld, _, _ := h.aesKeyFile("old.hex", "2025", hex.EncodeToString)
	r = h.run(nil, "rewrap", "--sse-c", h.uri(""), "--new-key", hNew, "--new-desc", "kid=2026", "--old-key", hOld, "--old-desc", "kid=2025")
	requireExit(t, r, exitUsage, "--sse-c needs an https endpoint, and "+h.endpoint+" is not")
	requireOneLineError(t, r)
}

// TestRewrapKeys: an RSA public key as the new key (wrap-only), and KMS
// keys both ways (kms:<arn> with --kms-endpoint-url).
func TestRewrapKeys(t *testing.T) {
	c := newS3CLI(t)
	oldFile, oldAES, _ := c.aesKeyFile("old.hex", "2025", hex.EncodeToString)
	_, pubFile, escrow := c.rsaKeyFiles("escrow.pem", "escrow")
	c.putWith(c.libClient(oldAES, nil), "a", []byte("alpha"))
	r := c.run(nil, "rewrap", c.uri("a"), "--new-key", pubFile, "--new-desc", "kid=escrow", "--old-key", oldFile, "--old-desc", "kid=2025")
	requireExit(t, r, exitOK)
	requireContains(t, r.stdout, "rewrapped              1")
	if got, err := c.read(c.libClient(nil, []keyring.Keyring{escrow}), "a"); err != nil || string(got) != "alpha" {
		t.Errorf("with the escrow key: %q, %v", got, err)
	}

	kmsEndpoint := c.kmsEndpoint()
	kc := testenv.KMS(t)
	ck, err := kc.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(ck.KeyMetadata.Arn)
	kmsKey, err := keyring.NewKMS(kc, arn)
	if err != nil {
		t.Fatal(err)
	}
	newFile, newAES, _ := c.aesKeyFile("new.hex", "2026", hex.EncodeToString)
	c.putWith(c.libClient(oldAES, nil), "b", []byte("bravo"))
	r = c.run(nil, "rewrap", c.uri("b"), "--new-key", "kms:"+arn, "--kms-endpoint-url", kmsEndpoint, "--old-key", oldFile, "--old-desc", "kid=2025")
	requireExit(t, r, exitOK, "to master key kms:"+arn)
	requireContains(t, r.stdout, "rewrapped              1", "complete:")
	if got, err := c.read(c.libClient(kmsKey, nil), "b"); err != nil || string(got) != "bravo" {
		t.Errorf("with the KMS key: %q, %v", got, err)
	}
	r = c.run(nil, "rewrap", c.uri("b"), "--new-key", newFile, "--new-desc", "kid=2026", "--old-key", "kms:"+arn, "--kms-endpoint-url", kmsEndpoint)
	requireExit(t, r, exitOK)
	requireContains(t, r.stdout, "rewrapped              1")
	if got, err := c.read(c.libClient(nil, []keyring.Keyring{newAES}), "b"); err != nil || string(got) != "bravo" {
		t.Errorf("with the new AES key: %q, %v", got, err)
	}
}

// TestRewrapUsage: bad usage and setup exit 2 with a one-line reason;
// nothing is rewrapped.
func TestRewrapUsage(t *testing.T) {
	c := newS3CLI(t)
	keyFile, kr, secret := c.aesKeyFile("k.hex", "k", hex.EncodeToString)
	_, pub, _ := c.rsaKeyFiles("r.pem", "r")
	c.putWith(c.libClient(kr, nil), "x", []byte("x"))
	ok := []string{"--new-key", keyFile, "--new-desc", "kid=1", "--old-key", keyFile, "--old-desc", "kid=k"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{c.uri(""), "--new-key", keyFile, "--old-key", keyFile, "--old-desc", "kid=k"}, "an AES or RSA key needs a --desc"},
		{[]string{c.uri(""), "--new-key", keyFile, "--new-desc", "kid=1", "--old-key", keyFile}, "give one --old-desc per --old-key"},
		{[]string{c.uri(""), "--new-key", keyFile, "--new-desc", "kid=1"}, "give the master keys the objects are under now with --old-key"},
		{[]string{c.uri(""), "--old-key", keyFile, "--old-desc", "kid=k"}, "give the master key to rotate to with --new-key"},
		{[]string{c.uri(""), "--new-key", keyFile, "--new-desc", "nokv", "--old-key", keyFile, "--old-desc", "kid=k"}, "want k=v"},
		{[]string{c.uri(""), "--new-key", filepath.Join(c.dir, "missing.key"), "--new-desc", "kid=1", "--old-key", keyFile, "--old-desc", "kid=k"}, "--new-key " + filepath.Join(c.dir, "missing.key") + ": open "},
		{[]string{c.uri(""), "--new-key", keyFile, "--new-desc", "kid=1", "--old-key", pub, "--old-desc", "kid=r"}, "--old-key " + pub + ": this is an RSA public key"},
		{append([]string{c.uri(""), "--dry-run", "--resume", "x"}, ok...), "--dry-run writes no checkpoint"},
		{append([]string{c.uri(""), "--concurrency", "0"}, ok...), "--concurrency must be at least 1"},
		{append([]string{c.uri(""), "--re-encrypt", "sometimes"}, ok...), "--re-encrypt is auto, always or never"},
		{append([]string{c.uri(""), "--rekey"}, ok...), "--rekey is for SSE-C objects"},
		{append([]string{c.uri(""), "--shard", "4/4"}, ok...), "--shard is i/N with 0 <= i < N"},
		{append([]string{c.uri(""), "--shard", "1"}, ok...), "--shard is i/N with 0 <= i < N"},
		{append([]string{c.uri(""), "--inventory", "bucket/manifest.json"}, ok...), "--inventory is the s3://bucket/key"},
		{append([]string{"not-a-uri"}, ok...), `"not-a-uri" is not an S3 URI`},
		{ok, "give one s3://bucket[/prefix] to rewrap"},
	} {
		r := c.run(nil, append([]string{"rewrap"}, tc.args...)...)
		requireExit(t, r, exitUsage, tc.want)
		if !strings.HasPrefix(r.stderr, "s3envelope rewrap: ") || strings.Count(r.stderr, "\n") > 2 {
			t.Errorf("%v: want the error (and a usage line), got:\n%s", tc.args, r.stderr)
		}
		requireNoKeyBytes(t, r, secret)
	}
	r := c.run(nil, "rewrap", "--no-such-flag")
	requireExit(t, r, exitUsage, "flag provided but not defined: -no-such-flag")

	// A verify checkpoint is not a rewrap checkpoint.
	vcp := c.file("verify.checkpoint", []byte(`{"command":"verify","bucket":"`+c.bucket+`"}`))
	r = c.run(nil, append([]string{"rewrap", c.uri(""), "--resume", vcp}, ok...)...)
	requireExit(t, r, exitUsage, "--resume "+vcp+": not a checkpoint of this command")
	requireOneLineError(t, r)

	if got, err := c.read(c.libClient(kr, nil), "x"); err != nil || string(got) != "x" {
		t.Errorf("x after the refused runs: %q, %v", got, err)
	}
}

// TestRewrapProgressOnTerminal: on a terminal the progress is one line
// redrawn in place, a failure is printed on a line of its own, and the
// line is ended before the error.
func TestRewrapProgressOnTerminal(t *testing.T) {
	c := newS3CLI(t)
	oldFile, oldAES, _ := c.aesKeyFile("old.hex", "2025", hex.EncodeToString)
	newFile, _, _ := c.aesKeyFile("new.hex", "2026", hex.EncodeToString)
	_, stray, _ := c.aesKeyFile("stray.hex", "stray", hex.EncodeToString)
	c.populate(c.libClient(oldAES, nil), "t/", 30)
	c.putWith(c.libClient(stray, nil), "t/stray", []byte("stray"))
	r := c.runOnTerminal(nil, "rewrap", c.uri("t/"), "--new-key", newFile, "--new-desc", "kid=2026", "--old-key", oldFile, "--old-desc", "kid=2025")
	if r.code != exitFailed {
		t.Fatalf("exit status %d, want %d", r.code, exitFailed)
	}
	requireContains(t, r.stderr, "\rrewrap ", "\x1b[K", "rewrapped=30 current=0 failed=1",
		"\r\x1b[KFAILED "+c.uri("t/stray")+" (no master key for its description): ",
		"\ns3envelope rewrap: 1 object(s) failed")
	if strings.Contains(r.stderr, "progress op=") {
		t.Errorf("plain progress lines on a terminal")
	}
	requireContains(t, r.stdout, "rewrapped              30", "failed                 1")
}

// TestRewrapKeyFiles: key files are read by keyring.ParseAES and ParseRSA;
// a public key may be only the new key; a refused file's error says what
// was wanted and holds none of the file. It needs no server.
func TestRewrapKeyFiles(t *testing.T) {
	c := newCLI(t)
	g := &globals{con: &console{getenv: func(string) string { return "" }}}
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
	pub := c.file("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	for _, tc := range []struct {
		file string
		role keyRole
		want string // "" for success
	}{
		{c.file("hex", []byte(hex.EncodeToString(key)+"\n")), forReading, ""},
		{c.file("b64", []byte(base64.RawURLEncoding.EncodeToString(key))), forReading, ""},
		{c.file("raw", key), forReading, ""},
		{c.file("rsa.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})), forReading, ""},
		{pub, forWriting, ""},
		{pub, forReading, "this is an RSA public key, which can only encrypt"},
		{c.file("aes128", []byte(hex.EncodeToString(key[:16])+"\n")), forReading, ""},
		{c.file("aes120", []byte(hex.EncodeToString(key[:15])+"\n")), forWriting, "want 16, 24 or 32 bytes raw, in hex or in base64; got 31 bytes"},
		{c.file("spaced", []byte(hex.EncodeToString(key)+"\n\n")), forWriting, "whitespace other than one final newline"},
		{c.file("bag.pem", append([]byte("Bag Attributes\n"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})...)), forWriting, "do not start with one"},
	} {
		k, err := loadKey(context.Background(), g, tc.file, "kid=1", tc.role)
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

// TestParseInterspersed: flags may follow the arguments, as in the AWS
// CLI; after "--" everything is an argument.
func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ks repeated
	fs.Var(&ks, "key", "")
	dry := fs.Bool("dry-run", false, "")
	args, err := parseInterspersed(fs, []string{"--key", "a", "s3://b/p", "--dry-run", "--key", "b", "x", "--", "--key", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(args, " ") != "s3://b/p x --key c" || strings.Join(ks, " ") != "a b" || !*dry {
		t.Errorf("arguments %q, keys %q, dry run %v", args, ks, *dry)
	}
	if _, err := parseInterspersed(fs, []string{"s3://b", "--nope"}); err == nil {
		t.Error("an unknown flag after the argument was accepted")
	}
}

// interrupt runs the binary with progress lines for every update, sends it
// SIGINT (Ctrl-C) once its stderr shows marker, and returns what it did.
func (c *cli) interrupt(marker string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := c.command(ctx, args, "S3ENVELOPE_PROGRESS_INTERVAL=1ns")
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	var errOut strings.Builder
	signalled := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		errOut.WriteString(sc.Text() + "\n")
		if !signalled && strings.Contains(sc.Text(), marker) {
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				c.t.Fatal(err)
			}
			signalled = true
		}
	}
	err = cmd.Wait()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}
	if err != nil && r.code < 0 {
		c.t.Fatalf("running %v: %v", args, err)
	}
	c.t.Logf("$ s3envelope %s (Ctrl-C after %q)\n-> exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), marker, r.code, clip(r.stdout), clip(r.stderr))
	if !signalled {
		c.t.Fatalf("the command ended before its progress showed %q", marker)
	}
	return r
}

// populate writes n small objects named prefix0000... with cl,
// concurrently.
func (c *cli) populate(cl objectClient, prefix string, n int) {
	c.t.Helper()
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			key := fmt.Sprintf("%s%04d", prefix, i)
			_, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &c.bucket, Key: &key, Body: strings.NewReader("object " + key)})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			c.t.Fatal(err)
		}
	}
}

// summaryCount reads the count of a row of a text summary.
func summaryCount(t *testing.T, stdout, row string) int {
	t.Helper()
	for _, l := range strings.Split(stdout, "\n") {
		var n int
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), row+" "); ok {
			if _, err := fmt.Sscan(strings.TrimSpace(rest), &n); err == nil {
				return n
			}
		}
	}
	t.Fatalf("no %q row in the summary:\n%s", row, stdout)
	return 0
}

// inventory writes an S3 Inventory report of the test bucket's objects
// under prefix into a bucket of its own, as S3 would, and returns the
// manifest's s3:// URL.
func (c *cli) inventory(prefix string) string {
	c.t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c.admin, &s3.ListObjectsV2Input{Bucket: &c.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			c.t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	dest := testenv.Bucket(c.t, c.admin, "cli-inv-")
	m, err := inventorytest.Write(context.Background(), c.admin.PutObject, dest, "", c.bucket, inventorytest.Rows(keys), 1000)
	if err != nil {
		c.t.Fatal(err)
	}
	return "s3://" + dest + "/" + m
}

// TestRewrapInventoryShards: three runs, --shard 0/3, 1/3 and 2/3 of an
// inventory report, each with its own --resume file, rewrap every object
// between them; so do two sharded listing walks (dry runs). A shard's
// checkpoint file does not resume another shard, and an unusable report
// is refused (exit 2) before anything is rewrapped.
func TestRewrapInventoryShards(t *testing.T) {
	c := newS3CLI(t)
	oldFile, oldAES, _ := c.aesKeyFile("old.hex", "2025", hex.EncodeToString)
	newFile, newAES, _ := c.aesKeyFile("new.hex", "2026", hex.EncodeToString)
	const n = 90
	c.populate(c.libClient(oldAES, nil), "s/", n)
	url := c.inventory("")
	keys := []string{"--new-key", newFile, "--new-desc", "kid=2026", "--old-key", oldFile, "--old-desc", "kid=2025"}

	total := 0
	for i := range 2 {
		r := c.run(nil, append([]string{"rewrap", "--dry-run", c.uri(""), "--shard", fmt.Sprintf("%d/2", i)}, keys...)...)
		requireExit(t, r, exitOK, fmt.Sprintf("dry run: checking %s, shard %d/2 to master key", c.uri(""), i))
		total += summaryCount(t, r.stdout, "to rewrap (dry run)")
	}
	if total != n {
		t.Errorf("two listing shards would rewrap %d objects, want %d", total, n)
	}

	// Refused before anything is done: another shard's checkpoint, another
	// bucket's report, a corrupt report.
	cp0 := c.file("other-shard.checkpoint", []byte(`{"bucket":"`+c.bucket+`","inventory":"`+url+`","shard":0,"shardCount":3,"after":"s/0050"}`))
	r := c.run(nil, append([]string{"rewrap", c.uri(""), "--inventory", url, "--shard", "1/3", "--resume", cp0}, keys...)...)
	requireExit(t, r, exitUsage, "--resume "+cp0+" is the checkpoint of inventory "+url+", shard 0/3, not of inventory "+url+", shard 1/3")
	requireOneLineError(t, r)
	other := testenv.Bucket(t, c.admin, "cli-")
	r = c.run(nil, append([]string{"rewrap", "s3://" + other, "--inventory", url}, keys...)...)
	requireExit(t, r, exitUsage, "unusable S3 Inventory report", "another bucket's inventory")
	dest, manifest, _ := strings.Cut(strings.TrimPrefix(url, "s3://"), "/")
	data := strings.TrimSuffix(manifest, "2026-12-03T00-00Z/manifest.json") + "data/0000.csv.gz"
	if _, err := c.admin.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &dest, Key: &data,
		Body: bytes.NewReader(inventorytest.File(c.bucket, inventorytest.Rows([]string{"s/0001"})))}); err != nil {
		t.Fatal(err)
	}
	r = c.run(nil, append([]string{"rewrap", c.uri(""), "--inventory", url}, keys...)...)
	requireExit(t, r, exitUsage, "unusable S3 Inventory report", "checksum mismatch")
	if r.stdout != "" {
		t.Errorf("a refused run printed a summary:\n%s", r.stdout)
	}
	if _, err := c.read(c.libClient(nil, []keyring.Keyring{oldAES}), "s/0001"); err != nil {
		t.Errorf("s/0001 is no longer under the old key after the refused runs: %v", err)
	}

	url = c.inventory("")
	total = 0
	for i := range 3 {
		resume := filepath.Join(c.dir, fmt.Sprintf("shard%d.checkpoint", i))
		r := c.run(nil, append([]string{"rewrap", "--json", c.uri(""), "--inventory", url, "--shard", fmt.Sprintf("%d/3", i), "--resume", resume}, keys...)...)
		requireExit(t, r, exitOK, "from inventory "+url+", shard "+fmt.Sprint(i)+"/3")
		var sum struct{ Rewrapped, Objects int }
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Rewrapped != sum.Objects || sum.Objects == 0 || sum.Objects == n {
			t.Errorf("shard %d/3: %+v", i, sum)
		}
		total += sum.Rewrapped
	}
	if total != n {
		t.Errorf("three shards rewrapped %d objects, want %d", total, n)
	}
	onlyNew := c.libClient(nil, []keyring.Keyring{newAES})
	for i := range n {
		if _, err := c.read(onlyNew, fmt.Sprintf("s/%04d", i)); err != nil {
			t.Errorf("s/%04d with the new key: %v", i, err)
		}
	}
}

// copyCounter is a reverse proxy to an S3 server that counts, per key,
// the server-side copies that succeeded: a rewrap of an object whose
// envelope is in its metadata is exactly one (a copy onto itself). It
// finishes each request even when the client is gone (killed), so a copy
// the server applied is always counted.
type copyCounter struct {
	mu     sync.Mutex
	copies map[string]int
	srv    *httptest.Server
}

func newCopyCounter(t *testing.T, endpoint, bucket string) *copyCounter {
	t.Helper()
	target, err := neturl.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cc := &copyCounter{copies: map[string]int{}}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // SigV4 signed the Host the client sent (the proxy's)
	}}
	proxy.ModifyResponse = func(resp *http.Response) error {
		r := resp.Request
		if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "" && resp.StatusCode == http.StatusOK {
			key := strings.TrimPrefix(r.URL.Path, "/"+bucket+"/")
			cc.mu.Lock()
			cc.copies[key]++
			cc.mu.Unlock()
		}
		return nil
	}
	cc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Not cancelled when the client goes; and a Done channel, else
		// the proxy cancels on the connection's close itself.
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		defer cancel()
		proxy.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(cc.srv.Close)
	return cc
}

// take returns the counts so far and starts again.
func (cc *copyCounter) take() map[string]int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	c := cc.copies
	cc.copies = map[string]int{}
	return c
}

// TestRewrapShardsAtScale: four processes of the command, each rewrapping
// its shard of a bucket from an inventory report with its own --resume
// file, one of them killed (SIGKILL: no checkpoint written on the way out)
// mid-walk and run again: every object is rewrapped exactly once (copies
// counted at the server, through a proxy), none is lost, and a reader
// finds every object readable throughout. The bucket has
// S3ENVELOPE_SCALE_OBJECTS objects (5,000 by default); when that is set,
// the rotation is first timed with 1, 2 and 4 processes, for BENCHMARKS.md.
func TestRewrapShardsAtScale(t *testing.T) {
	n, measure := 5000, false
	if s := os.Getenv("S3ENVELOPE_SCALE_OBJECTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 100 {
			t.Fatalf("S3ENVELOPE_SCALE_OBJECTS=%q: want a number of objects, at least 100", s)
		}
		n, measure = v, true
	}
	c := newS3CLI(t)
	var files []string
	var krs []keyring.Keyring
	for i := range 5 {
		f, kr, _ := c.aesKeyFile(fmt.Sprintf("k%d.hex", i), fmt.Sprintf("k%d", i), hex.EncodeToString)
		files, krs = append(files, f), append(krs, kr)
	}
	start := time.Now()
	keys := make([]string, n)
	for i := range n {
		keys[i] = fmt.Sprintf("o/%07d", i)
	}
	writer := c.libClient(krs[0], nil)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := writer.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &c.bucket, Key: aws.String(k), Body: strings.NewReader("object " + k)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d objects written in %v", n, time.Since(start).Round(time.Millisecond))
	url := c.inventory("")

	cc := newCopyCounter(t, c.endpoint, c.bucket)
	proxied := *c
	proxied.endpoint = cc.srv.URL
	from := 0
	// rotate rewraps everything from key from to from+1 with procs
	// processes; with kill, process 1 is killed midway and run again. It
	// checks the copies counted and returns the objects per second.
	rotate := func(procs int, kill bool) float64 {
		t.Helper()
		cc.take()
		args := func(i int) []string {
			return []string{"rewrap", proxied.uri(""), "--inventory", url, "--shard", fmt.Sprintf("%d/%d", i, procs),
				"--resume", filepath.Join(c.dir, fmt.Sprintf("r%d-%d.checkpoint", from, i)), "--concurrency", "8",
				"--new-key", files[from+1], "--new-desc", fmt.Sprintf("kid=k%d", from+1),
				"--old-key", files[from], "--old-desc", fmt.Sprintf("kid=k%d", from)}
		}
		start := time.Now()
		var wg sync.WaitGroup
		for i := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if kill && i == 1 {
					proxied.killAndResume(args(i))
					return
				}
				r := proxied.runQuiet(args(i)...)
				if r.code != exitOK {
					t.Errorf("shard %d/%d: exit %d\n%s", i, procs, r.code, r.stderr)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		copies := cc.take()
		for _, k := range keys {
			if copies[k] != 1 {
				t.Errorf("%s rewrapped %d times from k%d to k%d", k, copies[k], from, from+1)
			}
		}
		if len(copies) != n {
			t.Errorf("%d objects copied, want %d", len(copies), n)
		}
		from++
		rate := float64(n) / elapsed.Seconds()
		t.Logf("%d objects, %d process(es)%s: %v, %.0f objects/s", n, procs, map[bool]string{true: " (one killed and resumed)"}[kill], elapsed.Round(time.Millisecond), rate)
		return rate
	}
	if measure {
		rates := []float64{rotate(1, false), rotate(2, false), rotate(4, false)}
		t.Logf("objects/s with 1, 2, 4 processes: %.0f, %.0f, %.0f", rates[0], rates[1], rates[2])
	}

	// A reader, all along the killed walk, finds every object it tries.
	stop, stopped := make(chan struct{}), make(chan struct{})
	reads := 0
	reader := c.libClient(nil, []keyring.Keyring{krs[from], krs[from+1]})
	go func() {
		defer close(stopped)
		for i := 0; ; i = (i + 7919) % n {
			select {
			case <-stop:
				return
			default:
			}
			if got, err := c.read(reader, keys[i]); err != nil || string(got) != "object "+keys[i] {
				t.Errorf("%s unreadable during the walk: %q, %v", keys[i], got, err)
			}
			reads++
		}
	}()
	rotate(4, true)
	close(stop)
	<-stopped
	t.Logf("%d reads during the walk, every one of them good", reads)

	onlyNew := c.libClient(nil, []keyring.Keyring{krs[from]})
	for i := 0; i < n; i += max(1, n/500) {
		if got, err := c.read(onlyNew, keys[i]); err != nil || string(got) != "object "+keys[i] {
			t.Errorf("%s with the last key only: %q, %v", keys[i], got, err)
		}
	}
	listed := 0
	p := s3.NewListObjectsV2Paginator(c.admin, &s3.ListObjectsV2Input{Bucket: &c.bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		listed += len(page.Contents)
	}
	if listed != n {
		t.Errorf("%d objects in the bucket after the rotations, want %d", listed, n)
	}
}

// runQuiet runs the binary as run does, logging only a failure.
func (c *cli) runQuiet(args ...string) result {
	c.t.Helper()
	args = append([]string{args[0], "--endpoint-url", c.endpoint}, args[1:]...)
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}
	if err != nil && r.code < 0 {
		c.t.Errorf("running %v: %v", args, err)
	}
	return r
}

// killAndResume runs a rewrap, SIGKILLs it once it has saved its second
// checkpoint (so midway, with work done and some in flight, between two
// saves), and runs it again with the same --resume file, to its end.
func (c *cli) killAndResume(args []string) {
	resume := ""
	for i, a := range args {
		if a == "--resume" {
			resume = args[i+1]
		}
	}
	cmd := exec.Command(binary, append([]string{args[0], "--endpoint-url", c.endpoint}, args[1:]...)...)
	cmd.Dir, cmd.Env = c.dir, c.env
	if err := cmd.Start(); err != nil {
		c.t.Error(err)
		return
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	first := ""
	for {
		if b, err := os.ReadFile(resume); err == nil {
			var cp s3crypto.RewrapCheckpoint
			if json.Unmarshal(b, &cp) == nil && first == "" {
				first = cp.After
			} else if cp.After != first {
				break
			}
		}
		select {
		case err := <-exited:
			c.t.Errorf("the walk to kill ended (%v) before saving a checkpoint: give it more objects", err)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond) // well into the walk, between checkpoint writes
	if err := cmd.Process.Kill(); err != nil {
		c.t.Errorf("SIGKILL: %v", err)
	}
	<-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		c.t.Errorf("the walk was not killed: %v", cmd.ProcessState)
		return
	}
	b, err := os.ReadFile(resume)
	if err != nil {
		c.t.Error(err)
		return
	}
	var cp s3crypto.RewrapCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil || cp.After == "" {
		c.t.Errorf("checkpoint after SIGKILL: %s, %v", b, err)
	}
	r := c.runQuiet(args...)
	if r.code != exitOK || !strings.Contains(r.stderr, "resuming from "+resume) {
		c.t.Errorf("resumed after SIGKILL: exit %d\n%s", r.code, r.stderr)
	}
	c.t.Logf("killed after %q; resumed: %s", cp.After, strings.TrimSpace(r.stdout))
}
