package format_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// Resource bounds: hostile sizes are refused without memory or disk that
// grows with them.

// allocated returns the bytes fn allocates on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBoundsMetadata: an envelope field of 4 MiB, or an instruction file
// or companion of 64 MiB, is refused with ErrTooLarge before it is parsed
// or decoded: what Decode allocates does not grow with it.
func TestBoundsMetadata(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	huge := strings.Repeat("A", 4<<20)
	for _, f := range allFormats {
		meta, _, _ := seal(t, kr, configFor(f), []byte("x"), false)
		for k := range meta {
			t.Run(fmt.Sprintf("%v/%s", f, k), func(t *testing.T) {
				m := map[string]string{}
				for k2, v := range meta {
					m[k2] = v
				}
				m[k] = huge
				var err error
				n := allocated(func() { _, err = envelope.Decode(m, nil) })
				require.ErrorIs(t, err, envelope.ErrTooLarge)
				require.Less(t, n, uint64(64<<10), "Decode allocated %d bytes for a %d-byte field", n, len(huge))
			})
		}
	}

	big := make([]byte, 64<<20)
	copy(big, `{"x-amz-key-v2":"`)
	var err error
	n := allocated(func() { _, err = envelope.Decode(map[string]string{}, big) })
	require.ErrorIs(t, err, envelope.ErrTooLarge)
	require.Less(t, n, uint64(64<<10))
	n = allocated(func() { _, err = envelope.ParseCompanion(big) })
	require.ErrorIs(t, err, envelope.ErrTooLarge)
	require.Less(t, n, uint64(64<<10))

	// Many small fields: each is bounded, and so is the sum a reader
	// takes from S3 (2 KiB of user metadata); Decode does not care how
	// many keys that are not its own are there.
	m, _, _ := seal(t, kr, configFor(envelope.FormatV3), []byte("x"), false)
	for i := range 100000 {
		m[fmt.Sprintf("x-junk-%d", i)] = "v"
	}
	_, err = envelope.Decode(m, nil)
	require.NoError(t, err)
}

// endless yields a repeating pattern forever and counts what was read.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e.n + int64(i))
	}
	e.n += int64(len(p))
	return len(p), nil
}

// TestBoundsBodyLongerThanDeclared: a V2/V3 body that goes on far past its
// stored plaintext length is refused after about one chunk past it,
// nothing spooled is left, and nothing is released. A segmented body of
// garbage fails at its first segment.
func TestBoundsBodyLongerThanDeclared(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			cfg := configFor(f)
			cfg.SpoolDir = t.TempDir()
			cfg.SpoolMemory = -1 // every byte spooled goes to disk
			meta, _, _ := seal(t, kr, cfg, []byte("ten bytes!"), false)
			env, err := envelope.Decode(meta, nil)
			require.NoError(t, err)
			if f == envelope.FormatV3 {
				// V3 stores no length: the reader gives the one S3's
				// Content-Length implies, as s3crypto does.
				require.EqualValues(t, -1, env.PlaintextLength)
				env.PlaintextLength, err = env.PlaintextSize(10 + envelope.TagSize)
				require.NoError(t, err)
			}
			src := &endless{}
			pt, err := envelope.Open(context.Background(), env, kr, cfg, src)
			if err == nil {
				// Segmented: released as verified, so the fault is met
				// on the first read.
				require.Equal(t, envelope.FormatSegmented, f)
				b, rerr := io.ReadAll(io.LimitReader(pt, 1<<30))
				require.ErrorIs(t, rerr, envelope.ErrAuthentication)
				require.Empty(t, b)
				pt.Close()
			} else {
				require.ErrorIs(t, err, envelope.ErrMalformed)
				require.Nil(t, pt)
			}
			require.Less(t, src.n, int64(4<<20), "read %d bytes of a 10-byte object", src.n)
			left, err := os.ReadDir(cfg.SpoolDir)
			require.NoError(t, err)
			require.Empty(t, left, "spool files left behind")
		})
	}
}

// TestBoundsWeakRSA: no new envelope is made under an RSA key of fewer
// than 2048 bits; such a key may still unwrap what it wrapped long ago.
func TestBoundsWeakRSA(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	_, err = keyring.NewRSAPublic(&small.PublicKey, nil)
	require.ErrorIs(t, err, keyring.ErrWeakKey)
	kr, err := keyring.NewRSA(small, map[string]string{"kid": "old"})
	require.NoError(t, err)
	for _, f := range allFormats {
		_, err := envelope.NewSealer(context.Background(), kr, configFor(f))
		require.ErrorIs(t, err, keyring.ErrWeakKey, f.String())
	}
	_, _, err = envelope.NewCustomerKey(context.Background(), kr)
	require.ErrorIs(t, err, keyring.ErrWeakKey)
}
