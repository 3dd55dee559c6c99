package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	g := &globals{con: &console{stderr: &buf, getenv: func(string) string { return "" }}}
	p := g.newProgress("put", "s3://b/k", "bytes", 1000)
	p.Add(400)
	p.Add(600)
	p.Finish()
	out := buf.String()
	if strings.Contains(out, "\r") || strings.Contains(out, "\x1b") {
		t.Fatalf("terminal control characters in plain output: %q", out)
	}
	last := strings.Split(strings.TrimSpace(out), "\n")
	if got := last[len(last)-1]; !strings.HasPrefix(got, "progress op=put target=s3://b/k done=1000 total=1000 unit=bytes rate=") {
		t.Fatalf("last line %q", got)
	}

	buf.Reset()
	g.quiet = true
	p = g.newProgress("put", "s3://b/k", "bytes", 1000)
	p.Add(1000)
	p.Finish()
	if buf.Len() != 0 {
		t.Fatalf("--quiet wrote %q", buf.String())
	}
}

func TestProgressBar(t *testing.T) {
	p := &progress{op: "get", unit: "bytes", total: 4 << 20, done: 1 << 20}
	bar := p.bar(2<<20, 2e9)
	for _, want := range []string{"get [======>", "25% 1.0 MiB/4.0 MiB", "2.0 MiB/s", "ETA 2s"} {
		if !strings.Contains(bar, want) {
			t.Errorf("bar %q lacks %q", bar, want)
		}
	}
}
