package format_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
)

var huge = flag.Bool("huge", false, "TestBeyondOnePass seals and opens 65 GiB (about a minute on 2 cores) instead of 1 GiB")

// patternChunk is the unit of the generated plaintext: each chunk is a
// fixed random block with its index written over its first 8 bytes, so a
// misplaced, repeated or missing chunk is caught.
const patternChunk = 64 << 10

var patternBlock = random(patternChunk)

// patternReader generates n bytes of the pattern without holding them.
type patternReader struct{ off, n int64 }

func (g *patternReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n-g.off)]
	done := 0
	for done < len(p) {
		k := copy(p[done:], patternAt(g.off))
		g.off += int64(k)
		done += k
	}
	return done, nil
}

// patternAt returns the pattern from off to the end of its chunk.
func patternAt(off int64) []byte {
	var chunk [patternChunk]byte
	copy(chunk[:], patternBlock)
	binary.BigEndian.PutUint64(chunk[:], uint64(off/patternChunk))
	return chunk[off%patternChunk:]
}

// patternChecker is a sink that compares what it is given with the
// pattern and counts it, holding nothing.
type patternChecker struct{ off int64 }

func (c *patternChecker) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		want := patternAt(c.off)
		k := min(len(want), len(p)-done)
		if !bytes.Equal(p[done:done+k], want[:k]) {
			return done, fmt.Errorf("plaintext differs at byte %d", c.off)
		}
		c.off += int64(k)
		done += k
	}
	return done, nil
}

// TestBeyondOnePass seals a segmented object larger than one AES-GCM pass
// may be (64 GiB) with -huge, or 1 GiB without, and opens it as it is
// sealed, through a pipe: no more than a few MiB are ever held.
func TestBeyondOnePass(t *testing.T) {
	size := int64(1 << 30)
	if *huge {
		size = 65<<30 + 12345
		require.Greater(t, size, int64(envelope.MaxPlaintext))
	}
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	cfg := envelope.Config{Format: envelope.FormatSegmented}
	s, err := envelope.NewSealer(context.Background(), kr, cfg)
	require.NoError(t, err)
	want, err := s.CiphertextSize(size)
	require.NoError(t, err)
	meta, err := s.Envelope().Metadata()
	require.NoError(t, err)
	e, err := envelope.Decode(meta, nil)
	require.NoError(t, err)

	start := time.Now()
	pr, pw := io.Pipe()
	sealed := make(chan error, 1)
	var written int64
	go func() {
		n, err := io.Copy(pw, s.Seal(&patternReader{n: size}))
		written = n
		pw.CloseWithError(err)
		sealed <- err
	}()
	p, err := envelope.Open(context.Background(), e, kr, cfg, pr)
	require.NoError(t, err)
	sink := &patternChecker{}
	_, err = io.Copy(sink, p)
	require.NoError(t, err)
	require.NoError(t, <-sealed)
	elapsed := time.Since(start)
	require.Equal(t, size, sink.off)
	require.Equal(t, want, written)
	t.Logf("%d bytes (%.1f GiB) sealed and opened in %v: %.0f MB/s", size, float64(size)/(1<<30), elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6)
}

// TestPatternCheckerCatches: the sink used above does notice a wrong byte.
func TestPatternCheckerCatches(t *testing.T) {
	b, err := io.ReadAll(&patternReader{n: 3 * patternChunk})
	require.NoError(t, err)
	b[2*patternChunk+1] ^= 1
	_, err = io.Copy(&patternChecker{}, bytes.NewReader(b))
	require.Error(t, err)
	require.False(t, errors.Is(err, io.EOF))
}
