package s3crypto_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultKind is what the proxy does to one request.
type faultKind string

const (
	faultNone       faultKind = ""
	faultDropBefore faultKind = "drop connection, request not forwarded"
	faultDropAfter  faultKind = "drop connection after the server executed it"
	fault500Before  faultKind = "500, request not forwarded"
	fault500After   faultKind = "500 after the server executed it"
	faultDelay      faultKind = "delayed past the client's timeout, then executed"
)

var faultKinds = []faultKind{faultDropBefore, faultDropAfter, fault500Before, fault500After, faultDelay}

// proxy is a reverse proxy on 127.0.0.1 in front of the test S3 server
// that can inject faults into a share of the requests (bounded in number),
// and run a hook before forwarding a request.
type proxy struct {
	srv       *httptest.Server
	target    *url.URL
	transport *http.Transport

	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64       // share of requests that get a fault
	budget   int           // faults left
	delay    time.Duration // for faultDelay
	injected map[faultKind]int
	requests int
	before   func(r *http.Request) // hook, may be nil
	after    func(r *http.Request) faultKind
}

func newProxy(t testing.TB) *proxy {
	t.Helper()
	endpoint := os.Getenv("S3ENVELOPE_S3_ENDPOINT")
	if endpoint == "" {
		t.Fatal("S3ENVELOPE_S3_ENDPOINT is not set: run ./scripts/test, which starts a real S3 server (versitygw) for these tests")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{
		target:    u,
		transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		rng:       rand.New(rand.NewPCG(1, 2)),
		injected:  map[faultKind]int{},
	}
	p.srv = httptest.NewServer(p) // listens on 127.0.0.1
	t.Cleanup(func() {
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.transport.CloseIdleConnections()
	})
	return p
}

func (p *proxy) URL() string { return p.srv.URL }

// faults turns fault injection on (rate > 0) or off.
func (p *proxy) faults(rate float64, budget int, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate, p.budget, p.delay = rate, budget, delay
}

func (p *proxy) setHook(before func(r *http.Request)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = before
}

func (p *proxy) stats() (requests int, injected map[faultKind]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[faultKind]int{}
	for k, v := range p.injected {
		m[k] = v
	}
	return p.requests, m
}

func (p *proxy) pick(r *http.Request) (faultKind, func(*http.Request), func(*http.Request) faultKind) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	kind := faultNone
	if p.budget > 0 && p.rng.Float64() < p.rate {
		kind = faultKinds[p.rng.IntN(len(faultKinds))]
		p.budget--
		p.injected[kind]++
	}
	return kind, p.before, p.after
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, before, after := p.pick(r)
	if before != nil {
		before(r)
	}
	switch kind {
	case faultDropBefore:
		drop(w)
		return
	case fault500Before:
		internalError(w)
		return
	case faultDelay:
		time.Sleep(p.delay)
	}
	out := r.Clone(context.WithoutCancel(r.Context())) // the server finishes what it started
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.Host = r.Host // signed by the client
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if after != nil && kind == faultNone {
		kind = after(r)
	}
	switch kind {
	case faultDropAfter:
		io.Copy(io.Discard, resp.Body)
		drop(w)
		return
	case fault500After:
		io.Copy(io.Discard, resp.Body)
		internalError(w)
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func drop(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func internalError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>`)
}

// isCopy reports whether r is a CopyObject or UploadPartCopy of key.
func isCopy(r *http.Request, bucket, key string) bool {
	return r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "" && objectKey(r, bucket) == key
}

// objectKey is the (decoded) object key of a path-style request to bucket.
func objectKey(r *http.Request, bucket string) string {
	k, _ := strings.CutPrefix(r.URL.Path, "/"+bucket+"/")
	return k
}

func formatFaults(m map[faultKind]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, string(k)+": "+strconv.Itoa(v))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
