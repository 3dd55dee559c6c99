package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// verifyJSON is what verify --json writes.
type verifyJSON struct {
	Target                                                         string
	Objects, Verified, NotEncrypted, EnvelopeObjects, Gone, Failed int
	Bytes                                                          int64
	Failures                                                       []objectFailure
	Complete                                                       bool
	Checkpoint                                                     *verifyCheckpoint
}

// TestVerify: a bucket of good V2 (instruction file), V3 and segmented
// objects under an AES and an RSA key verifies; then a corrupted V3 object,
// a corrupted segment, an object under a key the command is not given and
// an object that is not encrypted make it exit 1, each failure on a line of
// its own with its reason, and listed in the JSON summary. No plaintext is
// written anywhere.
func TestVerify(t *testing.T) {
	c := newS3CLI(t)
	aesFile, aesKey, aesSecret := c.aesKeyFile("a.hex", "2026", hex.EncodeToString)
	rsaFile, _, rsaKey := c.rsaKeyFiles("r.pem", "rsa")
	v3 := c.libClient(aesKey, nil)
	v2 := c.libClient(rsaKey, nil, func(o *s3crypto.Options) {
		o.CommitmentPolicy, o.Format, o.InstructionFile = envelope.ForbidEncryptAllowDecrypt, envelope.FormatV2, true
	})
	seg := c.libClient(aesKey, nil, func(o *s3crypto.Options) { o.Format = envelope.FormatSegmented })
	secret := []byte("plaintext that must not be written anywhere ")
	body := func(n int) []byte { return bytes.Repeat(secret, n/len(secret)+1)[:n] }
	c.putWith(v3, "v/v3-a", body(1000))
	c.putWith(v3, "v/v3-b", body(70000))
	c.putWith(v2, "v/v2-a", body(5000))
	c.putWith(seg, "v/seg-a", body(300<<10)) // five 64 KiB segments
	c.putWith(seg, "v/seg-empty", nil)
	const good = 5
	wantBytes := 1000 + 70000 + 5000 + 300<<10
	keys := []string{"--key", aesFile, "--desc", "kid=2026", "--key", rsaFile, "--desc", "kid=rsa"}

	r := c.run(nil, append([]string{"verify", c.uri("v/")}, keys...)...)
	requireExit(t, r, exitOK)
	requireContains(t, r.stdout, c.uri("v/")+": 6 objects in ", fmt.Sprintf("verified               %d (", good),
		"envelope objects       1", "failed                 0", "complete: every object opened")
	requireNoKeyBytes(t, r, aesSecret)
	if strings.Contains(r.stdout+r.stderr, string(secret[:20])) {
		t.Fatal("verify printed plaintext")
	}

	_, stray, _ := c.aesKeyFile("stray.hex", "stray", hex.EncodeToString)
	c.putWith(c.libClient(stray, nil), "v/stray", body(10))
	c.putWith(v3, "v/v3-corrupt", body(2000))
	c.corrupt("v/v3-corrupt", func(int) int { return 100 })
	c.putWith(seg, "v/seg-corrupt", body(200<<10))
	c.corrupt("v/seg-corrupt", func(int) int { return 100 << 10 }) // the second segment
	c.putPlain("v/plain", []byte("not encrypted"))
	before := dirNames(t, c.dir)

	r = c.run(nil, append([]string{"verify", c.uri("v/"), "--json"}, keys...)...)
	requireExit(t, r, exitFailed,
		"FAILED "+c.uri("v/v3-corrupt")+" (authentication failed): ",
		"FAILED "+c.uri("v/seg-corrupt")+" (authentication failed): ",
		"FAILED "+c.uri("v/stray")+" (no master key for its description): ",
		"FAILED "+c.uri("v/plain")+" (not encrypted): ",
		"s3envelope verify: 4 object(s) did not open; run again to retry")
	if n := strings.Count(r.stderr, "FAILED "); n != 4 {
		t.Errorf("%d failure lines, want 4", n)
	}
	var sum verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("--json: %v", err)
	}
	reasons := map[string]string{}
	for _, f := range sum.Failures {
		reasons[f.Key] = f.Reason
		if f.Error == "" {
			t.Errorf("%s: no error", f.Key)
		}
	}
	want := map[string]string{"v/v3-corrupt": "authentication failed", "v/seg-corrupt": "authentication failed",
		"v/stray": "no master key for its description", "v/plain": "not encrypted"}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("failures %v, want %v", reasons, want)
	}
	if sum.Objects != 10 || sum.Verified != good || sum.Failed != 4 || sum.EnvelopeObjects != 1 || !sum.Complete || sum.Bytes < int64(wantBytes) {
		t.Errorf("summary %+v", sum)
	}
	if sum.Checkpoint == nil || len(sum.Checkpoint.Retry) != 4 {
		t.Errorf("summary checkpoint %+v, want the 4 failures to retry", sum.Checkpoint)
	}
	if strings.Contains(r.stdout+r.stderr, string(secret[:20])) {
		t.Fatal("verify printed plaintext")
	}
	if after := dirNames(t, c.dir); after != before {
		t.Errorf("verify wrote files: %s, then %s", before, after)
	}

	// Not-encrypted objects allowed; the other failures remain.
	r = c.run(nil, append([]string{"verify", "--allow-unencrypted", c.uri("v/")}, keys...)...)
	requireExit(t, r, exitFailed, "3 object(s) did not open")
	requireContains(t, r.stdout, "unencrypted, allowed   1", "failed                 3")

	// V2 under --require-v3: a policy failure.
	r = c.run(nil, append([]string{"verify", "--require-v3", c.uri("v/v2")}, keys...)...)
	requireExit(t, r, exitFailed, "FAILED "+c.uri("v/v2-a")+" (policy (legacy)): ")
	requireContains(t, r.stdout, "envelope objects       1", "failed                 1")
}

// dirNames lists a directory's files, to see that nothing was written.
func dirNames(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

// TestVerifyInterrupted: Ctrl-C mid-walk writes the checkpoint and exits
// 1; the resumed run verifies the rest, and every object is verified
// exactly once over the two runs.
func TestVerifyInterrupted(t *testing.T) {
	c := newS3CLI(t)
	keyFile, key, _ := c.aesKeyFile("k.hex", "k", hex.EncodeToString)
	const n = 300
	c.populate(c.libClient(key, nil), "i/", n)
	resume := filepath.Join(c.dir, "verify.checkpoint")
	args := []string{"verify", c.uri("i/"), "--concurrency", "1", "--resume", resume, "--key", keyFile, "--desc", "kid=k"}
	r := c.interrupt("objects=40 ", args...)
	requireExit(t, r, exitFailed, "s3envelope verify: interrupted; run again with --resume "+resume+" to continue")
	requireContains(t, r.stdout, "stopped after ")
	first := summaryCount(t, r.stdout, "verified")
	if first < 40 || first >= n {
		t.Fatalf("verified %d objects before the interrupt", first)
	}
	b, err := os.ReadFile(resume)
	if err != nil {
		t.Fatalf("no checkpoint after Ctrl-C: %v", err)
	}
	var cp verifyCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil || cp.Command != "verify" || cp.Bucket != c.bucket || cp.Prefix != "i/" || cp.After != fmt.Sprintf("i/%04d", first-1) || len(cp.Retry) != 0 {
		t.Fatalf("checkpoint %+v, %v; want after i/%04d", cp, err, first-1)
	}

	r = c.run(nil, args...)
	requireExit(t, r, exitOK, fmt.Sprintf(`resuming from %s: after "i/%04d", 0 object(s) to retry`, resume, first-1))
	if second := summaryCount(t, r.stdout, "verified"); first+second != n {
		t.Errorf("verified %d, then %d on resume: want %d in all, each once", first, second, n)
	}
	if _, err := os.Stat(resume); !os.IsNotExist(err) {
		t.Errorf("the checkpoint outlived a complete walk: %v", err)
	}

	// A checkpoint of another prefix is refused.
	other := c.file("other.checkpoint", []byte(`{"command":"verify","bucket":"`+c.bucket+`","prefix":"j/","after":"j/1"}`))
	r = c.run(nil, "verify", c.uri("i/"), "--resume", other, "--key", keyFile, "--desc", "kid=k")
	requireExit(t, r, exitUsage, "--resume "+other+" is the checkpoint of s3://"+c.bucket+"/j/, not of "+c.uri("i/"))
	requireOneLineError(t, r)
}

// TestVerifyProgress: piped, progress is plain key=value lines (JSON lines
// with --json, none with --quiet); on a terminal, one line redrawn in
// place, ended before the summary.
func TestVerifyProgress(t *testing.T) {
	c := newS3CLI(t)
	keyFile, key, _ := c.aesKeyFile("k.hex", "k", hex.EncodeToString)
	c.populate(c.libClient(key, nil), "p/", 20)
	args := []string{"verify", c.uri("p/"), "--key", keyFile, "--desc", "kid=k"}

	c.env = append(c.env, "S3ENVELOPE_PROGRESS_INTERVAL=1ns")
	r := c.run(nil, args...)
	requireExit(t, r, exitOK, "progress op=verify target="+c.uri("p/")+" done=", " unit=bytes rate=", "objects=20 failed=0")
	if strings.ContainsAny(r.stderr, "\r\x1b") {
		t.Errorf("terminal control characters in piped progress: %q", r.stderr)
	}
	r = c.run(nil, append(args, "--json")...)
	requireExit(t, r, exitOK, `{"progress":{`, `"op":"verify"`, `"detail":"objects=20 failed=0"`)
	var sum verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Verified != 20 {
		t.Errorf("--json summary %+v, %v", sum, err)
	}
	r = c.run(nil, append(args, "--quiet")...)
	requireExit(t, r, exitOK)
	if r.stderr != "" {
		t.Errorf("--quiet wrote %q", r.stderr)
	}

	r = c.runOnTerminal(nil, args...)
	if r.code != exitOK {
		t.Fatalf("exit status %d", r.code)
	}
	requireContains(t, r.stderr, "\rverify ", "\x1b[K", "B/s", "objects=20 failed=0")
	if !strings.HasSuffix(r.stderr, "\n") || strings.Contains(r.stderr, "progress op=") {
		t.Errorf("terminal output %q: want a bar, ended", r.stderr)
	}
	requireContains(t, r.stdout, "verified               20")
}

// TestVerifySSEC verifies managed SSE-C objects on MinIO over TLS: they
// open (the companions are not counted as objects of their own), an object
// whose companion is under another key does not, and a plain-HTTP endpoint
// is refused before anything is sent.
func TestVerifySSEC(t *testing.T) {
	c := newSSECCLI(t)
	keyFile, key, secret := c.aesKeyFile("k.hex", "k", hex.EncodeToString)
	_, stray, _ := c.aesKeyFile("stray.hex", "stray", hex.EncodeToString)
	w := c.libSSEC(key, nil)
	for i := range 3 {
		c.putWith(w, fmt.Sprintf("s/%d", i), bytes.Repeat([]byte{byte(i)}, 1000*(i+1)))
	}
	c.putWith(c.libSSEC(stray, nil), "s/stray", []byte("stray"))
	r := c.run(nil, "verify", "--sse-c", c.uri("s/"), "--key", keyFile, "--desc", "kid=k")
	requireExit(t, r, exitFailed, "FAILED "+c.uri("s/stray")+" (no master key for its description): ", "1 object(s) did not open")
	requireContains(t, r.stdout, "verified               3 (5.9 KiB", "envelope objects       4", "failed                 1")
	requireNoKeyBytes(t, r, secret)
	if out, err := c.read(w, "s/1"); err != nil || len(out) != 2000 {
		t.Errorf("s/1 after verify: %d bytes, %v", len(out), err)
	}

	h := newS3CLI(t)
	hKey, _, _ := h.aesKeyFile("k.hex", "k", hex.EncodeToString)
	r = h.run(nil, "verify", "--sse-c", h.uri(""), "--key", hKey, "--desc", "kid=k")
	requireExit(t, r, exitUsage, "--sse-c needs an https endpoint, and "+h.endpoint+" is not")
	requireOneLineError(t, r)
}

// TestVerifyUsage: bad usage and setup exit 2 with a one-line reason.
func TestVerifyUsage(t *testing.T) {
	c := newS3CLI(t)
	keyFile, key, secret := c.aesKeyFile("k.hex", "k", hex.EncodeToString)
	c.putWith(c.libClient(key, nil), "x", []byte("x"))
	for _, tc := range []struct {
		args    []string
		want    string
		oneLine bool
	}{
		{[]string{c.uri("")}, "give a master key with --key", false},
		{[]string{c.uri(""), "--key", keyFile}, "give one --desc per --key", false},
		{[]string{c.uri(""), "--key", filepath.Join(c.dir, "missing"), "--desc", "kid=k"}, "--key " + filepath.Join(c.dir, "missing") + ": open ", true},
		{[]string{c.uri(""), "--key", "env:S3E_NO_SUCH_VAR", "--desc", "kid=k"}, "the environment variable S3E_NO_SUCH_VAR is not set", true},
		{[]string{c.uri(""), "--key", keyFile, "--desc", "kid=k", "--concurrency", "0"}, "--concurrency must be at least 1", false},
		{[]string{"--key", keyFile, "--desc", "kid=k"}, "give one s3://bucket[/prefix] to verify", false},
		{[]string{"s3://", "--key", keyFile, "--desc", "kid=k"}, "names no bucket", false},
	} {
		r := c.run(nil, append([]string{"verify"}, tc.args...)...)
		requireExit(t, r, exitUsage, tc.want)
		if !strings.HasPrefix(r.stderr, "s3envelope verify: ") {
			t.Errorf("%v: %q", tc.args, r.stderr)
		}
		if tc.oneLine {
			requireOneLineError(t, r)
		}
		requireNoKeyBytes(t, r, secret)
	}
	// A wrong key (the right description, other bytes) fails the object,
	// not the setup.
	wrongFile, _, _ := c.aesKeyFile("wrong.hex", "k", hex.EncodeToString)
	r := c.run(nil, "verify", c.uri(""), "--key", wrongFile, "--desc", "kid=k")
	requireExit(t, r, exitFailed, "FAILED "+c.uri("x")+" (authentication failed): ")
	// A rewrap checkpoint is not a verify checkpoint.
	rcp := c.file("rewrap.checkpoint", []byte(`{"bucket":"`+c.bucket+`","after":"x"}`))
	r = c.run(nil, "verify", c.uri(""), "--resume", rcp, "--key", keyFile, "--desc", "kid=k")
	requireExit(t, r, exitUsage, "--resume "+rcp+" is not a verify checkpoint")
	requireOneLineError(t, r)
	if got, err := c.read(c.libClient(nil, []keyring.Keyring{key}), "x"); err != nil || string(got) != "x" {
		t.Errorf("x: %q, %v", got, err)
	}
}
