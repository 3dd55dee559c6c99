package s3crypto

import (
	"errors"
	"fmt"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/segment"
)

// FuzzRangeHeaders feeds hostile Range and Content-Range headers (a
// caller's, and a server's) to their parsers and the range arithmetic. A
// Range parses to one range or fails with envelope.ErrInvalidRange; a
// parsed range resolves, within an object of any size, to a non-empty span
// inside it or to ErrInvalidRange; the ciphertext range guessed for a
// segmented object is itself a valid Range that covers the segments of
// that span. A Content-Range parses to 0 <= first <= last < size, which
// prints back to the same header, or fails with envelope.ErrMalformed.
func FuzzRangeHeaders(f *testing.F) {
	for _, r := range []string{"bytes=0-0", "bytes=10-99", "bytes=5-", "bytes=-7", "bytes=-0", "bytes=9-3",
		"bytes=1-2,4-5", "bytes=+1-2", "bytes=01-2", "bytes=9223372036854775807-", "bytes=-9223372036854775807", "items=0-1", " bytes=3-4 "} {
		f.Add(r, "bytes 0-9/10", int64(100), uint8(0))
	}
	for _, cr := range []string{"bytes 5-4/10", "bytes 0-9/9", "bytes */10", "bytes 0-9/*", "bytes -1-3/10", "bytes 0-9223372036854775806/9223372036854775807"} {
		f.Add("bytes=0-", cr, int64(0), uint8(3))
	}
	f.Fuzz(func(t *testing.T, rangeHeader, contentRange string, size int64, shift uint8) {
		if size < 0 {
			size = -(size + 1)
		}
		size %= 1 << 50
		r, err := parseRange(rangeHeader)
		if err != nil {
			if !errors.Is(err, envelope.ErrInvalidRange) {
				t.Fatalf("Range %q: untyped error %v", rangeHeader, err)
			}
		} else {
			off, n, err := r.resolve(size)
			switch {
			case err != nil:
				if !errors.Is(err, envelope.ErrInvalidRange) {
					t.Fatalf("resolve: untyped error %v", err)
				}
			case off < 0 || n < 1 || off+n > size:
				t.Fatalf("Range %q in %d bytes resolved to [%d, +%d)", rangeHeader, size, off, n)
			case r.suffix == 0 && off != r.first:
				t.Fatalf("Range %q starts at %d", rangeHeader, off)
			}
			seg := segment.MinSize << (int(shift) % 12)
			if seg > segment.MaxSize {
				seg = segment.MaxSize
			}
			g := r.guess(seg)
			gr, gerr := parseRange(g)
			if gerr != nil {
				t.Fatalf("guess %q for %q is not a Range: %v", g, rangeHeader, gerr)
			}
			if err == nil && r.suffix == 0 {
				stride := int64(seg + segment.Overhead)
				if gr.first != off/int64(seg)*stride {
					t.Fatalf("guess %q for [%d, +%d) does not start at its first segment", g, off, n)
				}
				if gr.last >= 0 && gr.last < ((off+n-1)/int64(seg)+1)*stride-1 {
					t.Fatalf("guess %q for [%d, +%d) ends before its last segment", g, off, n)
				}
			}
		}

		first, last, total, err := parseContentRange(contentRange)
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("Content-Range %q: untyped error %v", contentRange, err)
			}
			return
		}
		if first < 0 || last < first || total <= last {
			t.Fatalf("Content-Range %q parsed to %d-%d/%d", contentRange, first, last, total)
		}
		again := fmt.Sprintf("bytes %d-%d/%d", first, last, total)
		f2, l2, t2, err := parseContentRange(again)
		if err != nil || f2 != first || l2 != last || t2 != total {
			t.Fatalf("Content-Range %q does not print back (%q: %v)", contentRange, again, err)
		}
	})
}
