package batchops_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/internal/testenv"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// need returns an environment variable ./scripts/test sets, failing the
// test (never skipping it) when it is not set.
func need(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run ./scripts/test, which installs the Lambda emulator and versitygw and starts local-kms", name)
	}
	return v
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitHTTP waits until something answers HTTP at addr.
func waitHTTP(t *testing.T, addr string, exited <-chan struct{}, log *bytes.Buffer, mu *sync.Mutex) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("the process serving %s exited:\n%s", addr, log.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing answers on %s", addr)
}

// lockedBuffer is a process's output, written by its pipes' goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// start runs a server process until the test ends and waits for it to
// answer HTTP on addr.
func start(t *testing.T, addr string, env []string, name string, args ...string) *lockedBuffer {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
	// Its own process group: the emulator's runtime (bootstrap) is
	// stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			out.mu.Lock()
			t.Logf("%s output:\n%s", filepath.Base(name), out.buf.String())
			out.mu.Unlock()
		}
	})
	waitHTTP(t, addr, exited, &out.buf, &out.mu)
	return out
}

// counter is a reverse proxy that counts the requests it forwards by kind
// and, for KMS, can answer ThrottlingException or hold requests until the
// caller gives up.
type counter struct {
	mu       sync.Mutex
	counts   map[string]int
	throttle atomic.Int32 // requests still to throttle
	stall    atomic.Bool
	proxy    *httputil.ReverseProxy
}

func newCounter(t *testing.T, target string) (*counter, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{counts: map[string]int{}, proxy: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := r.Method
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		kind = strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	case r.Header.Get("X-Amz-Copy-Source") != "":
		kind = "COPY"
	case r.Method == http.MethodGet && r.Header.Get("Range") != "":
		kind = "GET (range)"
	}
	c.mu.Lock()
	c.counts[kind]++
	c.mu.Unlock()
	if c.stall.Load() {
		// The body read, the server notices the caller hang up (the
		// caller's context ending); a minute at most, so that a test
		// that failed still ends.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
		return
	}
	if c.throttle.Add(-1) >= 0 {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
		return
	}
	c.proxy.ServeHTTP(w, r)
}

// take returns the counts since the last take.
func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.counts
	c.counts = map[string]int{}
	return m
}

func show(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// lambdaEnv is the test's function, running under the emulator.
type lambdaEnv struct {
	t        *testing.T
	invokeAt string
	s3, kms  *counter
	api      *s3.Client // straight to versitygw
	kmsAPI   *kms.Client
	oldKMS   *keyring.KMS
	newKMS   *keyring.KMS
	oldAES   *keyring.AES
}

// TestLambda runs cmd/bootstrap as Lambda runs a provided.al2023 function
// — under the Runtime Interface Emulator, configured by its environment —
// against versitygw (its own, with bucket versioning) and local-kms, and
// invokes it over HTTP with Batch Operations events of schema 1.0 and 2.0.
func TestLambda(t *testing.T) {
	rie := need(t, "S3ENVELOPE_LAMBDA_RIE")
	vgw := need(t, "S3ENVELOPE_VERSITYGW")
	kmsEndpoint := need(t, "S3ENVELOPE_KMS_ENDPOINT")
	dir := t.TempDir()

	// The function as it is deployed: a static linux binary named bootstrap.
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(dir, "bootstrap"), "./cmd/bootstrap")
	build.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building bootstrap: %v\n%s", err, out)
	}

	// versitygw with versioning, on a fresh data dir and credentials.
	ak, sk := "AK"+strings.ToUpper(hex.EncodeToString(random(9))), hex.EncodeToString(random(20))
	s3Addr := freePort(t)
	for _, d := range []string{"data", "versions"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	start(t, s3Addr, []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "ROOT_ACCESS_KEY_ID=" + ak, "ROOT_SECRET_ACCESS_KEY=" + sk},
		vgw, "--port", s3Addr, "--quiet", "posix", "--versioning-dir", filepath.Join(dir, "versions"), filepath.Join(dir, "data"))
	e := &lambdaEnv{t: t}
	e.api = s3.New(s3.Options{BaseEndpoint: aws.String("http://" + s3Addr), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")})
	var s3URL, kmsURL string
	e.s3, s3URL = newCounter(t, "http://"+s3Addr)
	e.kms, kmsURL = newCounter(t, kmsEndpoint)

	// Master keys: the new one in KMS; the old ones in KMS and an AES key
	// in a file (in a deployment, Secrets Manager or SSM).
	e.kmsAPI = testenv.KMS(t)
	newID, oldID := createKey(t, e.kmsAPI), createKey(t, e.kmsAPI)
	var err error
	e.newKMS, err = keyring.NewKMS(e.kmsAPI, newID)
	if err != nil {
		t.Fatal(err)
	}
	e.oldKMS, _ = keyring.NewKMS(e.kmsAPI, oldID)
	aesBytes := random(32)
	e.oldAES, _ = keyring.NewAES(aesBytes, map[string]string{"kid": "2025"})
	keyFile := filepath.Join(dir, "aes-2025.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(aesBytes)), 0o600); err != nil {
		t.Fatal(err)
	}

	// The emulator runs bootstrap with its own environment (less what
	// Lambda reserves); nothing from outside, and no ~/.aws.
	e.invokeAt = freePort(t)
	none := filepath.Join(dir, "none")
	start(t, e.invokeAt, []string{
		"PATH=/usr/bin:/bin", "HOME=" + dir,
		"AWS_ACCESS_KEY_ID=" + ak, "AWS_SECRET_ACCESS_KEY=" + sk, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_ENDPOINT_URL_S3=" + s3URL, "AWS_ENDPOINT_URL_KMS=" + kmsURL,
		"AWS_LAMBDA_FUNCTION_TIMEOUT=12",
		"BATCHOPS_S3_PATH_STYLE=true",
		"BATCHOPS_RESERVE=2s",
		"BATCHOPS_NEW_KEY=kms:" + newID,
		"BATCHOPS_OLD_KEYS=kms:" + oldID + ", aes:file:" + keyFile + "?kid=2025",
	}, rie, "--log-level", "error", "--runtime-interface-emulator-address", e.invokeAt,
		"--runtime-api-address", freePort(t), filepath.Join(dir, "bootstrap"))

	t.Run("schema 1.0", e.schema1)
	t.Run("throttled KMS", e.throttled)
	t.Run("deadline", e.deadline)
	t.Run("schema 2.0 versions", e.schema2)
	t.Run("reEncrypt", e.reEncrypt)
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func createKey(t *testing.T, c *kms.Client) string {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("s3envelope batchops " + t.Name())})
	if err != nil {
		t.Fatalf("KMS CreateKey on %s: %v", os.Getenv("S3ENVELOPE_KMS_ENDPOINT"), err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

func (e *lambdaEnv) client(k keyring.Keyring, optFns ...func(*s3crypto.Options)) *s3crypto.Client {
	c, err := s3crypto.New(e.api, materials.NewProvider(k), optFns...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *lambdaEnv) bucket(t *testing.T, versioned bool) string {
	t.Helper()
	name := "batchops-" + hex.EncodeToString(random(5))
	if _, err := e.api.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatal(err)
	}
	if versioned {
		if _, err := e.api.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: &name,
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatalf("enabling versioning: %v", err)
		}
	}
	return name
}

// put writes an object and returns its version ID.
func put(t *testing.T, c interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}, bucket, key, body string, meta map[string]string) string {
	t.Helper()
	out, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body), Metadata: meta})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return aws.ToString(out.VersionId)
}

// invoke posts an event to the emulator as Batch Operations posts it to
// Lambda, and reads the function's response.
func (e *lambdaEnv) invoke(t *testing.T, event any) *events.S3BatchJobResponse {
	t.Helper()
	body, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+e.invokeAt+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("invoking: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var res events.S3BatchJobResponse
	if err := json.Unmarshal(raw, &res); err != nil || resp.StatusCode != 200 || res.InvocationID == "" {
		t.Fatalf("the function answered %s: %s (%v)", resp.Status, raw, err)
	}
	return &res
}

// enc URL-encodes a key as Batch Operations does: a form encoding, "/"
// kept.
func enc(key string) string { return strings.ReplaceAll(url.QueryEscape(key), "%2F", "/") }

type want struct {
	key, code, says string
}

func check(t *testing.T, res *events.S3BatchJobResponse, schema, inv string, wants []want) {
	t.Helper()
	if res.InvocationSchemaVersion != schema || res.InvocationID != inv || res.TreatMissingKeysAs != "PermanentFailure" || len(res.Results) != len(wants) {
		t.Fatalf("response %+v", res)
	}
	for i, w := range wants {
		r := res.Results[i]
		if r.TaskID != fmt.Sprint("task-", i) || r.ResultCode != w.code || !strings.Contains(r.ResultString, w.says) {
			t.Errorf("%s: %s %s %q; want %s with %q", w.key, r.TaskID, r.ResultCode, r.ResultString, w.code, w.says)
		}
	}
}

func v1Event(bucket string, keys ...string) events.S3BatchJobEvent {
	ev := events.S3BatchJobEvent{InvocationSchemaVersion: "1.0", InvocationID: "inv-" + hex.EncodeToString(random(4)), Job: events.S3BatchJob{ID: "job-1"}}
	for i, k := range keys {
		ev.Tasks = append(ev.Tasks, events.S3BatchJobTask{TaskID: fmt.Sprint("task-", i), S3Key: enc(k), S3BucketARN: "arn:aws:s3:::" + bucket})
	}
	return ev
}

// readBack opens each object with the new master key alone, and checks
// that no old key opens it any more.
func (e *lambdaEnv) readBack(t *testing.T, bucket string, bodies map[string]string) {
	t.Helper()
	fresh := e.client(e.newKMS)
	for key, body := range bodies {
		out, err := fresh.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			t.Errorf("%s with the new master key alone: %v", key, err)
			continue
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(got) != body {
			t.Errorf("%s: %q, want %q", key, got, body)
		}
		for _, old := range []keyring.Keyring{e.oldKMS, e.oldAES} {
			if out, err := e.client(old).GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)}); err == nil {
				out.Body.Close()
				t.Errorf("%s still opens with an old master key", key)
			}
		}
	}
}

// schema1: one invocation of every kind of task, an unversioned bucket,
// keys with spaces, unicode and form-encoding's special characters.
func (e *lambdaEnv) schema1(t *testing.T) {
	bucket := e.bucket(t, false)
	kmsObj, aesObj, instrObj := "with space/ü ñ 日本.txt", "a+b=c&d%e.txt", "instruction file/ø"
	put(t, e.client(e.oldKMS), bucket, kmsObj, "kms body", nil)
	put(t, e.client(e.oldAES), bucket, aesObj, "aes body", nil)
	put(t, e.client(e.oldAES, func(o *s3crypto.Options) { o.InstructionFile = true }), bucket, instrObj, "instr body", nil)
	put(t, e.client(e.newKMS), bucket, "current", "current body", nil)
	put(t, e.api, bucket, "plain", "plain", nil)
	retired, _ := keyring.NewAES(random(32), map[string]string{"kid": "2024"})
	put(t, e.client(retired), bucket, "retired", "r", nil)
	put(t, e.api, bucket, "malformed", "m", map[string]string{"x-amz-key-v2": "!!", "x-amz-iv": "AAAA", "x-amz-cek-alg": "AES/GCM/NoPadding", "x-amz-wrap-alg": "kms+context", "x-amz-matdesc": "{}"})

	// Alone first, to count what one rewrap costs (docs/rotation-at-scale.md
	// prices a job by these): the envelope in metadata is rewritten by a
	// copy of the object onto itself, an instruction file by a PUT; KMS is
	// asked to Decrypt under the new key (is it current?), the old (the
	// data key), the new (does the new wrap open?), and to Encrypt.
	for _, c := range []struct {
		key     string
		s3, kms string
	}{
		{kmsObj, "COPY 1, HEAD 1", "Decrypt 3, Encrypt 1"},
		{aesObj, "COPY 1, HEAD 1", "Decrypt 1, Encrypt 1"},
		{instrObj, "GET 1, HEAD 2, PUT 1", "Decrypt 1, Encrypt 1"},
	} {
		e.s3.take()
		e.kms.take()
		ev := v1Event(bucket, c.key)
		check(t, e.invoke(t, ev), "1.0", ev.InvocationID, []want{{c.key, "Succeeded", "rewrapped"}})
		s3n, kmsn := show(e.s3.take()), show(e.kms.take())
		t.Logf("one rewrap of %q: S3: %s; KMS: %s", c.key, s3n, kmsn)
		if s3n != c.s3 || kmsn != c.kms {
			t.Errorf("one rewrap of %q: S3 %s, KMS %s; want S3 %s, KMS %s", c.key, s3n, kmsn, c.s3, c.kms)
		}
	}
	put(t, e.client(e.oldKMS), bucket, kmsObj, "kms body", nil) // again, for the full invocation
	ev := v1Event(bucket, kmsObj, aesObj, instrObj, "current", "plain", "retired", "malformed", "missing", instrObj+".instruction")
	check(t, e.invoke(t, ev), "1.0", ev.InvocationID, []want{
		{kmsObj, "Succeeded", "rewrapped"},
		{aesObj, "Succeeded", "already current"},
		{instrObj, "Succeeded", "already current"},
		{"current", "Succeeded", "already current"},
		{"plain", "PermanentFailure", "not encrypted"},
		{"retired", "PermanentFailure", "no master key"},
		{"malformed", "PermanentFailure", "malformed"},
		{"missing", "PermanentFailure", "no such object"},
		{"the instruction file", "Succeeded", "instruction file"},
	})
	e.readBack(t, bucket, map[string]string{kmsObj: "kms body", aesObj: "aes body", instrObj: "instr body", "current": "current body"})
}

// throttled: KMS answers ThrottlingException past the SDK's retries: the
// task is a TemporaryFailure, and Batch Operations' next delivery of it
// succeeds.
func (e *lambdaEnv) throttled(t *testing.T) {
	bucket := e.bucket(t, false)
	put(t, e.client(e.oldKMS), bucket, "k", "body", nil)
	e.kms.take()
	e.kms.throttle.Store(1000)
	ev := v1Event(bucket, "k")
	check(t, e.invoke(t, ev), "1.0", ev.InvocationID, []want{{"k", "TemporaryFailure", "ThrottlingException"}})
	e.kms.throttle.Store(0)
	t.Logf("KMS requests throttled: %s", show(e.kms.take()))
	check(t, e.invoke(t, ev), "1.0", ev.InvocationID, []want{{"k", "Succeeded", "rewrapped"}})
	e.readBack(t, bucket, map[string]string{"k": "body"})
}

// deadline: KMS hangs; the first task is cut off the reserve (2 s) before
// the function's 12 s timeout, the second is not started; both are
// TemporaryFailure and the function answers in time. Delivered again, they
// succeed.
func (e *lambdaEnv) deadline(t *testing.T) {
	bucket := e.bucket(t, false)
	put(t, e.client(e.oldKMS), bucket, "a", "a", nil)
	put(t, e.client(e.oldKMS), bucket, "b", "b", nil)
	e.kms.stall.Store(true)
	defer e.kms.stall.Store(false)
	ev := v1Event(bucket, "a", "b")
	began := time.Now()
	res := e.invoke(t, ev)
	e.kms.stall.Store(false)
	took := time.Since(began)
	check(t, res, "1.0", ev.InvocationID, []want{{"a", "TemporaryFailure", "deadline"}, {"b", "TemporaryFailure", "deadline is near"}})
	if took > 12*time.Second {
		t.Errorf("the function answered after %v, past its 12 s timeout", took)
	}
	check(t, e.invoke(t, ev), "1.0", ev.InvocationID, []want{{"a", "Succeeded", "rewrapped"}, {"b", "Succeeded", "rewrapped"}})
	e.readBack(t, bucket, map[string]string{"a": "a", "b": "b"})
}

// schema2: a versioned bucket, tasks naming versions, user arguments; an
// object replaced after the manifest was made is not rewrapped.
func (e *lambdaEnv) schema2(t *testing.T) {
	bucket := e.bucket(t, true)
	old := e.client(e.oldKMS)
	keys := []string{"v/ü key 1", "replaced", "gone", "dry"}
	vers := make([]string, len(keys))
	for i, k := range keys {
		vers[i] = put(t, old, bucket, k, "first "+k, nil)
		if vers[i] == "" {
			t.Fatalf("versitygw returned no version ID for %s: is versioning on?", k)
		}
	}
	// After the manifest: "replaced" gets a new version (still under the
	// old key: its writer had not switched), "gone"'s version is deleted.
	put(t, old, bucket, "replaced", "second", nil)
	if _, err := e.api.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("gone"), VersionId: &vers[2]}); err != nil {
		t.Fatal(err)
	}
	event := func(args map[string]string, idx ...int) events.S3BatchJobEventV2 {
		ev := events.S3BatchJobEventV2{InvocationSchemaVersion: "2.0", InvocationID: "inv-" + hex.EncodeToString(random(4)),
			Job: events.S3BatchJobV2{ID: "job-2", UserArguments: args}}
		for n, i := range idx {
			ev.Tasks = append(ev.Tasks, events.S3BatchJobTaskV2{TaskID: fmt.Sprint("task-", n), S3Key: enc(keys[i]), S3VersionID: vers[i], S3Bucket: bucket})
		}
		return ev
	}
	ev := event(map[string]string{"dryRun": "true"}, 3)
	check(t, e.invoke(t, ev), "2.0", ev.InvocationID, []want{{"dry", "Succeeded", "dry run"}})
	if out, err := old.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("dry")}); err != nil {
		t.Errorf("the dry run changed the object: %v", err)
	} else {
		out.Body.Close()
	}

	ev = event(map[string]string{"enforceRotation": "true"}, 0)
	e.s3.take()
	check(t, e.invoke(t, ev), "2.0", ev.InvocationID, []want{{keys[0], "Succeeded", "rewrapped"}})
	if n := show(e.s3.take()); n != "COPY 1, HEAD 2" {
		t.Errorf("a task naming a version: S3 %s; want one HEAD more (the version's) than without: COPY 1, HEAD 2", n)
	}
	put(t, old, bucket, keys[0], "first "+keys[0], nil) // under the old key again, as the manifest saw it
	vers[0] = headVersion(t, e.api, bucket, keys[0])

	ev = event(map[string]string{"enforceRotation": "true"}, 0, 1, 2)
	wants := []want{
		{keys[0], "Succeeded", "rewrapped"},
		{"replaced", "PermanentFailure", "replaced since the manifest was made"},
		{"gone", "PermanentFailure", "no such object or version"},
	}
	check(t, e.invoke(t, ev), "2.0", ev.InvocationID, wants)
	// Delivered again (Batch Operations may): the rewrapped version's
	// successor has its ETag, so the task finds it current.
	wants[0] = want{keys[0], "Succeeded", "already current"}
	check(t, e.invoke(t, ev), "2.0", ev.InvocationID, wants)
	e.readBack(t, bucket, map[string]string{keys[0]: "first " + keys[0]})
	if out, err := old.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("replaced")}); err != nil {
		t.Errorf("the replaced object was touched: %v", err)
	} else {
		out.Body.Close()
	}
}

// reEncrypt: the user argument has KMS rewrap the data key in one
// ReEncrypt (after the Decrypt that finds the object is not current).
func (e *lambdaEnv) reEncrypt(t *testing.T) {
	bucket := e.bucket(t, false)
	put(t, e.client(e.oldKMS), bucket, "k", "body", nil)
	e.s3.take()
	e.kms.take()
	ev := events.S3BatchJobEventV2{InvocationSchemaVersion: "2.0", InvocationID: "inv-re", Job: events.S3BatchJobV2{ID: "job-3", UserArguments: map[string]string{"reEncrypt": "true"}},
		Tasks: []events.S3BatchJobTaskV2{{TaskID: "task-0", S3Key: "k", S3Bucket: bucket}}}
	check(t, e.invoke(t, ev), "2.0", "inv-re", []want{{"k", "Succeeded", "rewrapped"}})
	counts := e.kms.take()
	t.Logf("one rewrap by ReEncrypt: S3: %s; KMS: %s", show(e.s3.take()), show(counts))
	if counts["ReEncrypt"] != 1 || counts["Encrypt"] != 0 {
		t.Errorf("KMS requests %s: want one ReEncrypt and no Encrypt", show(counts))
	}
	e.readBack(t, bucket, map[string]string{"k": "body"})
}

func headVersion(t *testing.T, api *s3.Client, bucket, key string) string {
	t.Helper()
	h, err := api.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(h.VersionId)
}
