package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress reports long work on stderr. On a terminal it redraws one line
// (a bar, the rate, the ETA) at most ten times a second; otherwise it
// writes a plain key=value line every interval (JSON with --json), and one
// at the end; with --quiet, nothing. It is safe for concurrent use.
type progress struct {
	w      io.Writer
	tty    bool
	json   bool
	off    bool
	every  time.Duration
	op     string // what is being done: "put", "verify", ...
	target string // on what: s3://bucket/key
	unit   string // "bytes" or "objects"
	total  int64  // -1 when unknown

	mu      sync.Mutex
	start   time.Time
	last    time.Time
	done    int64
	detail  string // extra key=value pairs, e.g. failed=2
	drawn   bool   // a terminal line is showing, not yet ended
	printed int64  // done when the last line was written
}

// progressInterval is how often a plain progress line is written.
const progressInterval = 5 * time.Second

func (g *globals) newProgress(op, target, unit string, total int64) *progress {
	p := &progress{
		w: g.con.stderr, json: g.json, off: g.quiet, every: progressInterval,
		op: op, target: target, unit: unit, total: total, start: time.Now(), printed: -1,
	}
	if isTerminal(g.con.stderr) && g.con.getenv("TERM") != "dumb" {
		p.tty, p.every = true, 100*time.Millisecond
	} else {
		// The first plain line comes after one interval, not at once: at
		// the start it says nothing, and a quick failure's one-line error
		// should stand alone. Finish writes the last line in any case.
		p.last = p.start
	}
	if d, err := time.ParseDuration(g.con.getenv("S3ENVELOPE_PROGRESS_INTERVAL")); err == nil && d > 0 && !p.tty {
		p.every = d
	}
	return p
}

// isTerminal reports whether w is a terminal (a character device that is
// not the null device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// Add counts n more units done.
func (p *progress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.tick()
}

// Set sets the units done and the extra detail.
func (p *progress) Set(done int64, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.detail = done, detail
	p.tick()
}

// SetDetail sets the extra detail alone, for work whose units are counted
// by Add (bytes through a countingWriter) and its detail elsewhere.
func (p *progress) SetDetail(detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detail = detail
	p.tick()
}

// SetTotal sets the total once it is known.
func (p *progress) SetTotal(total int64) {
	p.mu.Lock()
	p.total = total
	p.mu.Unlock()
}

// Printf writes a line of its own (a failure, say) without garbling the
// bar.
func (p *progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLine()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// Finish writes the last state and ends the terminal line.
func (p *progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return
	}
	if p.done != p.printed {
		p.print()
	}
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// Stop ends the work without a final state, for work that failed: a
// terminal line is ended where it stood, so that the one-line error
// follows on a line of its own; no plain line is written.
func (p *progress) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func (p *progress) tick() {
	if p.off || time.Since(p.last) < p.every {
		return
	}
	p.print()
}

func (p *progress) clearLine() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *progress) print() {
	p.last = time.Now()
	p.printed = p.done
	elapsed := max(time.Since(p.start).Seconds(), 1e-3)
	rate := float64(p.done) / elapsed
	var eta time.Duration = -1
	if p.total >= 0 && rate > 0 {
		eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second)
	}
	switch {
	case p.tty:
		fmt.Fprintf(p.w, "\r%s\x1b[K", p.bar(rate, eta))
		p.drawn = true
	case p.json:
		line := map[string]any{"op": p.op, "target": p.target, "unit": p.unit, "done": p.done, "rate": rate, "elapsed_s": elapsed}
		if p.total >= 0 {
			line["total"] = p.total
		}
		if eta >= 0 {
			line["eta_s"] = eta.Seconds()
		}
		if p.detail != "" {
			line["detail"] = p.detail
		}
		b, _ := json.Marshal(map[string]any{"progress": line})
		fmt.Fprintf(p.w, "%s\n", b)
	default:
		var b strings.Builder
		fmt.Fprintf(&b, "progress op=%s target=%s done=%d", p.op, p.target, p.done)
		if p.total >= 0 {
			fmt.Fprintf(&b, " total=%d", p.total)
		}
		fmt.Fprintf(&b, " unit=%s rate=%.0f/s", p.unit, rate)
		if eta >= 0 {
			fmt.Fprintf(&b, " eta=%s", eta)
		}
		if p.detail != "" {
			b.WriteString(" " + p.detail)
		}
		fmt.Fprintln(p.w, b.String())
	}
}

// bar is the terminal line: [=====>     ] 42% 1.2 GiB/2.9 GiB 310 MiB/s ETA 6s
func (p *progress) bar(rate float64, eta time.Duration) string {
	var b strings.Builder
	b.WriteString(p.op + " ")
	if p.total > 0 {
		const width = 24
		frac := min(float64(p.done)/float64(p.total), 1)
		full := int(frac * width)
		b.WriteString("[" + strings.Repeat("=", full))
		if full < width {
			b.WriteString(">" + strings.Repeat(" ", width-full-1))
		}
		fmt.Fprintf(&b, "] %3.0f%% %s/%s", frac*100, p.amount(p.done), p.amount(p.total))
	} else {
		b.WriteString(p.amount(p.done))
	}
	fmt.Fprintf(&b, " %s/s", p.amount(int64(rate)))
	if eta >= 0 {
		fmt.Fprintf(&b, " ETA %s", eta)
	}
	if p.detail != "" {
		b.WriteString(" " + p.detail)
	}
	return b.String()
}

func (p *progress) amount(n int64) string {
	if p.unit != "bytes" {
		return fmt.Sprintf("%d %s", n, p.unit)
	}
	return humanBytes(n)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// counting wraps a reader or writer to count bytes into a progress.
type countingReader struct {
	r io.Reader
	p *progress
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Add(int64(n))
	return n, err
}

type countingWriter struct {
	w io.Writer
	p *progress
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.p.Add(int64(n))
	return n, err
}
