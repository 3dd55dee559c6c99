package main

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// fetchPlain GETs a URL with net/http alone (no SDK), trusting the CA
// bundle of the environment when there is one, and returns the status and
// body.
func (c *cli) fetchPlain(raw string, header http.Header) (int, []byte) {
	c.t.Helper()
	g := &globals{con: &console{getenv: func(name string) string {
		for _, kv := range c.env {
			if v, ok := strings.CutPrefix(kv, name+"="); ok {
				return v
			}
		}
		return ""
	}}}
	hc, err := g.httpClient()
	if err != nil {
		c.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// shareURLs runs share and returns the URL lines it printed.
func (c *cli) shareURLs(args ...string) []string {
	c.t.Helper()
	r := c.run(nil, append([]string{"share"}, args...)...)
	requireExit(c.t, r, exitOK, "valid until")
	urls := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, u := range urls {
		if !strings.HasPrefix(u, "http") || !strings.Contains(u, "X-Amz-Signature=") {
			c.t.Fatalf("share printed %q, not a presigned URL", u)
		}
	}
	return urls
}

// TestShare: share → a plain net/http client fetches the ciphertext →
// get --url opens it, byte-identical, for an envelope in the metadata
// (one URL) and in an instruction file (two). A tampered object fails to
// authenticate and releases nothing; an expired URL fails with S3's
// reason; an object that is not encrypted is not shared.
func TestShare(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("team.key")
	data := randomBytes(t, 300<<10)
	c.put(k, "meta", data)
	c.put(k, "instr", data, "--instruction-file", "--format", "v2")
	c.put(k, "seg", data, "--format", "segmented")

	for _, key := range []string{"meta", "seg"} {
		urls := c.shareURLs(c.uri(key))
		if len(urls) != 1 {
			t.Fatalf("%s: share printed %d URLs for an envelope in the metadata", key, len(urls))
		}
		status, body := c.fetchPlain(urls[0], nil)
		if status != http.StatusOK || len(body) <= len(data) || strings.Contains(string(body), string(data[:64])) {
			t.Fatalf("%s: the URL fetched status %d, %d bytes: want the ciphertext", key, status, len(body))
		}
		out := filepath.Join(c.dir, key+".out")
		r := c.run(nil, "get", "--url", urls[0], "--key", k.path, "--desc", k.desc, out)
		requireExit(t, r, exitOK)
		requireSame(t, key, readFile(t, out), data)
		r = c.run(nil, "cat", "--url", urls[0], "--key", k.path, "--desc", k.desc)
		requireExit(t, r, exitOK)
		requireSame(t, key+" (cat)", []byte(r.stdout), data)
		requireNoSecrets(t, k.secrets, r)
	}

	urls := c.shareURLs(c.uri("instr"))
	if len(urls) != 2 || !strings.Contains(urls[1], ".instruction") {
		t.Fatalf("share printed %q for an envelope in an instruction file", urls)
	}
	r := c.run(nil, "cat", "--url", urls[0], "--instruction-url", urls[1], "--key", k.path, "--desc", k.desc)
	requireExit(t, r, exitOK)
	requireSame(t, "instruction file", []byte(r.stdout), data)
	r = c.run(nil, "cat", "--url", urls[0], "--key", k.path, "--desc", k.desc)
	requireExit(t, r, exitFailed, "no encryption envelope")
	requireOneLineError(t, r)

	// Tampered: one bit of the stored body flipped behind the command's
	// back. Nothing of a V3 object reaches stdout or a file.
	c.corrupt("meta", func(n int) int { return n / 2 })
	urls = c.shareURLs(c.uri("meta"))
	r = c.run(nil, "cat", "--url", urls[0], "--key", k.path, "--desc", k.desc)
	requireExit(t, r, exitFailed, "authentication failed")
	requireOneLineError(t, r)
	if r.stdout != "" {
		t.Fatalf("a tampered object released %d bytes", len(r.stdout))
	}
	r = c.run(nil, "get", "--url", urls[0], "--key", k.path, "--desc", k.desc, "tampered.out")
	requireExit(t, r, exitFailed, "authentication failed")
	c.requireNoDownloads("tampered.out")

	// Wrong key.
	other := c.aesKey("other.key")
	urls = c.shareURLs(c.uri("seg"))
	r = c.run(nil, "cat", "--url", urls[0], "--key", other.path, "--desc", k.desc)
	requireExit(t, r, exitFailed)
	requireOneLineError(t, r)
	if r.stdout != "" {
		t.Fatalf("the wrong key released %d bytes", len(r.stdout))
	}

	// Expired: the URL says so, and so does the command (without the
	// signature: a URL is a bearer credential).
	urls = c.shareURLs("--expires", "1s", c.uri("seg"))
	time.Sleep(2500 * time.Millisecond)
	r = c.run(nil, "cat", "--url", urls[0], "--key", k.path, "--desc", k.desc)
	requireExit(t, r, exitFailed, "403", "AccessDenied")
	requireOneLineError(t, r)
	if strings.Contains(r.stderr, "X-Amz-Signature") {
		t.Fatalf("the error shows the URL's signature: %s", r.stderr)
	}

	// Not encrypted: not shared as if it were.
	c.putPlain("plain", []byte("plain text"))
	r = c.run(nil, "share", c.uri("plain"))
	requireExit(t, r, exitFailed)
	requireOneLineError(t, r)
	if r.stdout != "" {
		t.Fatalf("share printed %q for an object that is not encrypted", r.stdout)
	}
}

func TestShareUsage(t *testing.T) {
	c := newS3CLI(t)
	k := c.aesKey("k")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"share"}, "give one object"},
		{[]string{"share", "s3://b"}, "names no object"},
		{[]string{"share", "--expires", "200h", c.uri("x")}, "168h"},
		{[]string{"share", "--sse-c", "--key", k.path, "--desc", k.desc, c.uri("x")}, "--headers-out"},
		{[]string{"share", "--headers-out", "h", c.uri("x")}, "--sse-c"},
		{[]string{"share", "--key", k.path, "--desc", k.desc, c.uri("x")}, "needs no --key"},
		{[]string{"get", "--url", "ftp://x/y", "--key", k.path, "--desc", k.desc, "-"}, "--url"},
		{[]string{"get", "--url", "https://x/y", "-"}, "--key"},
		{[]string{"get", "--url", "https://x/y", "--key", k.path, "--desc", k.desc, "--range", "bytes=0-1", "-"}, "--range"},
		{[]string{"get", "--instruction-url", "https://x/y", "--key", k.path, c.uri("x"), "-"}, "go with --url"},
	} {
		r := c.run(nil, tc.args...)
		requireExit(t, r, exitUsage, tc.want)
	}
	// SSE-C needs https: versitygw is plain HTTP.
	r := c.run(nil, "share", "--sse-c", "--key", k.path, "--desc", k.desc, "--headers-out", "h", c.uri("x"))
	requireExit(t, r, exitUsage)
	requireOneLineError(t, r)
	r = c.run(nil, "get", "--url", "http://127.0.0.1:1/b/k", "--headers-file", c.file("h", []byte("A: b\n")), "-")
	requireExit(t, r, exitUsage, "https")
}

// TestShareSSEC: a managed SSE-C object on MinIO over TLS is shared as a
// URL plus a headers file (0600) that holds its key — never printed; a
// plain net/http client fetches it with the headers and not without, and
// get --url --headers-file writes it byte-identical.
func TestShareSSEC(t *testing.T) {
	c := newSSECCLI(t)
	path, kr, secrets := c.aesKeyFile("m.key", "m", func(b []byte) string { return base64.StdEncoding.EncodeToString(b) })
	data := randomBytes(t, 200<<10)
	c.putWith(c.libSSEC(kr, nil), "doc", data)

	r := c.run(nil, "share", "--sse-c", "--key", path, "--desc", "kid=m", "--headers-out", "doc.headers", c.uri("doc"))
	requireExit(t, r, exitOK, "doc.headers")
	hf := filepath.Join(c.dir, "doc.headers")
	if m := mode(t, hf); m.Perm() != 0o600 {
		t.Fatalf("the headers file has mode %v, want 0600", m.Perm())
	}
	b, err := os.ReadFile(hf)
	if err != nil {
		t.Fatal(err)
	}
	header, err := readHeaders(hf)
	if err != nil {
		t.Fatal(err)
	}
	objectKey := header.Get("X-Amz-Server-Side-Encryption-Customer-Key")
	if objectKey == "" || !strings.Contains(string(b), objectKey) {
		t.Fatalf("the headers file holds no SSE-C key:\n%s", b)
	}
	requireNoSecrets(t, append(secrets, objectKey), r)
	url := strings.TrimSpace(r.stdout)

	if status, _ := c.fetchPlain(url, nil); status == http.StatusOK {
		t.Fatal("the URL fetched the object without the SSE-C headers")
	}
	status, body := c.fetchPlain(url, header)
	if status != http.StatusOK {
		t.Fatalf("the URL with its headers: status %d", status)
	}
	requireSame(t, "fetched with net/http", body, data)

	r = c.run(nil, "get", "--url", url, "--headers-file", hf, "doc.out")
	requireExit(t, r, exitOK)
	requireSame(t, "get --url", readFile(t, filepath.Join(c.dir, "doc.out")), data)
	requireNoSecrets(t, append(secrets, objectKey), r)

	// The headers file is not overwritten.
	r = c.run(nil, "share", "--sse-c", "--key", path, "--desc", "kid=m", "--headers-out", "doc.headers", c.uri("doc"))
	requireExit(t, r, exitUsage, "exists")

	// Once the object changes, the URL and headers open nothing.
	if _, err := c.admin.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(c.bucket), Key: aws.String("doc")}); err != nil {
		t.Fatal(err)
	}
	r = c.run(nil, "get", "--url", url, "--headers-file", hf, "gone.out")
	requireExit(t, r, exitFailed, "404")
	c.requireNoDownloads("gone.out")
}

// TestGetURLRedirect: a URL that answers with a redirect elsewhere (a
// hostile proxy, a spoofed endpoint) is not followed: the SSE-C headers,
// which hold the object's key, never reach the other host.
func TestGetURLRedirect(t *testing.T) {
	c := newCLI(t)
	var reached atomic.Int32
	elsewhere := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Write([]byte("anything"))
	}))
	defer elsewhere.Close()
	redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	// Both test servers share one certificate: trust it as a CA bundle.
	ca := c.file("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: redirector.Certificate().Raw}))
	headers := c.file("h", []byte("X-Amz-Server-Side-Encryption-Customer-Key: c2VjcmV0\n"))
	r := c.run(nil, "get", "--ca-bundle", ca, "--url", redirector.URL+"/b/k?X-Amz-Signature=abc", "--headers-file", headers, "out")
	requireExit(t, r, exitFailed, "refusing to follow a redirect")
	requireOneLineError(t, r)
	if reached.Load() != 0 {
		t.Fatal("the redirect was followed: the SSE-C headers went to another host")
	}
	c.requireNoDownloads("out")
	if strings.Contains(r.stderr, "X-Amz-Signature") || strings.Contains(r.stderr, "c2VjcmV0") {
		t.Fatalf("the error shows the URL's signature or the key: %s", r.stderr)
	}
}
