package format_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// The V2/V3 open path in pieces (gcmopen.go), reached with small bodies by
// shrinking the piece to testPiece bytes: every worker count, lengths
// around the piece, the spool in memory, in a file or both.

const testPiece = 256

var gcmFormats = []envelope.Format{envelope.FormatV2, envelope.FormatV3}

// noGoroutinesLeft fails t if goroutines started since before are still
// running a moment later.
func noGoroutinesLeft(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// noSpoolLeft fails t if dir holds anything.
func noSpoolLeft(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, left, "spool files left behind")
}

// TestGCMPiecesOpen: bodies of every length around the piece open to their
// plaintext through Read and WriteTo, whatever the worker count and
// wherever the spool keeps them.
func TestGCMPiecesOpen(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	dir := t.TempDir()
	lengths := []int{0, 1, 15, 16, 17, testPiece - 1, testPiece, testPiece + 1, 2 * testPiece, 5*testPiece + 7, 40*testPiece + 3}
	before := runtime.NumGoroutine()
	for _, f := range gcmFormats {
		for _, n := range lengths {
			plain := random(n)
			meta, _, body := seal(t, kr, configFor(f), plain, false)
			for _, workers := range []int{1, 2, 3, 4} {
				// In a file only, in memory up to the middle of the second
				// piece, in memory only.
				for _, mem := range []int64{-1, testPiece * 3 / 2, 1 << 20} {
					t.Run(fmt.Sprintf("%v/%d/workers%d/mem%d", f, n, workers, mem), func(t *testing.T) {
						defer envelope.SetGCMTuning(testPiece, workers)()
						cfg := configFor(f)
						cfg.SpoolDir, cfg.SpoolMemory = dir, mem
						env, err := envelope.Decode(meta, nil)
						require.NoError(t, err)
						for _, how := range []string{"Read", "WriteTo"} {
							pt, err := envelope.Open(context.Background(), env, kr, cfg, iotest.HalfReader(bytes.NewReader(body)))
							require.NoError(t, err)
							require.EqualValues(t, n, pt.Size())
							var got bytes.Buffer
							if how == "Read" {
								_, err = io.CopyBuffer(struct{ io.Writer }{&got}, struct{ io.Reader }{pt}, make([]byte, 100))
							} else {
								_, err = io.Copy(&got, pt)
							}
							require.NoError(t, err, how)
							require.True(t, bytes.Equal(plain, got.Bytes()), "%s: plaintext differs", how)
							require.NoError(t, pt.Close())
						}
					})
				}
			}
		}
	}
	noSpoolLeft(t, dir)
	noGoroutinesLeft(t, before)
}

// TestGCMPiecesBitFlips: a single bit flipped anywhere in a body of
// several pieces, the tag included, or the body cut short at any piece
// boundary, fails Open with ErrAuthentication, and no plaintext at all is
// released.
func TestGCMPiecesBitFlips(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	dir := t.TempDir()
	before := runtime.NumGoroutine()
	for _, f := range gcmFormats {
		plain := random(3*testPiece + 5)
		meta, _, body := seal(t, kr, configFor(f), plain, false)
		env, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		for _, workers := range []int{1, 2, 4} {
			restore := envelope.SetGCMTuning(testPiece, workers)
			cfg := configFor(f)
			cfg.SpoolDir = dir
			for bit := range 8 * len(body) {
				// Every bit with the spool in memory; every 7th through a
				// spool file as well.
				mems := []int64{1 << 20}
				if bit%7 == 0 {
					mems = append(mems, -1)
				}
				for _, mem := range mems {
					cfg.SpoolMemory = mem
					bad := bytes.Clone(body)
					bad[bit/8] ^= 1 << (bit % 8)
					pt, err := envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(bad))
					if !errors.Is(err, envelope.ErrAuthentication) || pt != nil {
						restore()
						t.Fatalf("%v, workers %d: bit %d flipped: Open gave %v (plaintext %v)", f, workers, bit, err, pt != nil)
					}
				}
			}
			for _, cut := range []int{0, 15, testPiece - 1, testPiece, testPiece + envelope.TagSize, 2 * testPiece, 3 * testPiece, len(body) - 1} {
				pt, err := envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(body[:cut]))
				if !errors.Is(err, envelope.ErrAuthentication) || pt != nil {
					restore()
					t.Fatalf("%v, workers %d: cut to %d bytes: Open gave %v (plaintext %v)", f, workers, cut, err, pt != nil)
				}
			}
			restore()
		}
	}
	noSpoolLeft(t, dir)
	noGoroutinesLeft(t, before)
}

// TestGCMPiecesSourceError: an error from the body's reader part-way, at
// or around any piece boundary, is what Open returns; nothing is released,
// no spool file and no goroutine is left.
func TestGCMPiecesSourceError(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	dir := t.TempDir()
	boom := errors.New("connection reset")
	before := runtime.NumGoroutine()
	for _, f := range gcmFormats {
		plain := random(20*testPiece + 9)
		meta, _, body := seal(t, kr, configFor(f), plain, false)
		env, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		for _, workers := range []int{1, 2, 4} {
			func() {
				defer envelope.SetGCMTuning(testPiece, workers)()
				cfg := configFor(f)
				cfg.SpoolDir, cfg.SpoolMemory = dir, -1
				for _, at := range []int{0, 1, testPiece - 1, testPiece, testPiece + 1, testPiece + envelope.TagSize, 7*testPiece + 3, len(body) - envelope.TagSize, len(body) - 1} {
					src := io.MultiReader(bytes.NewReader(body[:at]), iotest.ErrReader(boom))
					pt, err := envelope.Open(context.Background(), env, kr, cfg, src)
					require.ErrorIs(t, err, boom, "%v, workers %d, error after %d bytes", f, workers, at)
					require.Nil(t, pt)
				}
			}()
		}
	}
	noSpoolLeft(t, dir)
	noGoroutinesLeft(t, before)
}

// closingWriter closes the plaintext it is written from once it has taken
// after bytes.
type closingWriter struct {
	pt    *envelope.Plaintext
	after int
	n     int
}

func (w *closingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if w.n >= w.after {
		w.pt.Close()
	}
	return len(p), nil
}

// TestGCMPiecesCloseMidRead: closing the plaintext part-way, between Reads
// or from within a WriteTo in progress, stops every worker and removes the
// spool; what was read before is the plaintext's start.
func TestGCMPiecesCloseMidRead(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	dir := t.TempDir()
	const piece = 4096
	for _, f := range gcmFormats {
		plain := random(300*piece + 11)
		meta, _, body := seal(t, kr, configFor(f), plain, false)
		env, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		for _, workers := range []int{1, 2, 4} {
			for _, mem := range []int64{-1, 1 << 30} {
				func() {
					defer envelope.SetGCMTuning(piece, workers)()
					cfg := configFor(f)
					cfg.SpoolDir, cfg.SpoolMemory = dir, mem
					before := runtime.NumGoroutine()

					pt, err := envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(body))
					require.NoError(t, err)
					head := make([]byte, piece+100)
					_, err = io.ReadFull(pt, head)
					require.NoError(t, err)
					require.Equal(t, plain[:len(head)], head)
					require.NoError(t, pt.Close())
					_, err = pt.Read(head)
					require.Error(t, err, "Read after Close")
					noGoroutinesLeft(t, before)
					noSpoolLeft(t, dir)

					pt, err = envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(body))
					require.NoError(t, err)
					w := &closingWriter{pt: pt, after: 10 * piece}
					n, err := io.Copy(w, pt)
					require.Error(t, err, "WriteTo after Close")
					require.Less(t, n, int64(len(plain)), "WriteTo went on after Close")
					noGoroutinesLeft(t, before)
					noSpoolLeft(t, dir)
				}()
			}
		}
	}
}

// TestGCMPiecesDefaultTuning: a body of several default pieces (512 KiB)
// opens on GOMAXPROCS workers.
func TestGCMPiecesDefaultTuning(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	dir := t.TempDir()
	plain := random(5<<20 + 3)
	for _, f := range gcmFormats {
		cfg := configFor(f)
		cfg.SpoolDir, cfg.SpoolMemory = dir, 3<<20+5
		meta, _, body := seal(t, kr, cfg, plain, false)
		got, err := open(kr, cfg, meta, nil, body)
		require.NoError(t, err)
		require.True(t, bytes.Equal(plain, got), "%v: plaintext differs", f)
	}
	noSpoolLeft(t, dir)
}

// FuzzOpenPieces is FuzzOpen's check for V2/V3 bodies opened in pieces of
// 32 bytes on three workers: an arbitrary body opens to the exact
// plaintext or fails with a typed error, releasing nothing.
func FuzzOpenPieces(f *testing.F) {
	kr, err := keyring.NewAES(make([]byte, 32), map[string]string{"kid": "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(envelope.SetGCMTuning(32, 3))
	plain := bytes.Repeat([]byte("opened in pieces, never altered. "), 9)
	type stored struct {
		env  *envelope.Envelope
		body []byte
	}
	var objs []stored
	for _, fm := range gcmFormats {
		meta, _, body := seal(f, kr, configFor(fm), plain, false)
		env, err := envelope.Decode(meta, nil)
		if err != nil {
			f.Fatal(err)
		}
		objs = append(objs, stored{env, body})
		f.Add(uint8(len(objs)-1), body, int64(-1))
		f.Add(uint8(len(objs)-1), body[:len(body)-1], int64(40))
		f.Add(uint8(len(objs)-1), append(bytes.Clone(body), 0), int64(0))
	}
	cfg := envelope.Config{CommitmentPolicy: envelope.RequireEncryptAllowDecrypt, SpoolDir: f.TempDir()}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, spoolMemory int64) {
		o := objs[int(which)%len(objs)]
		cfg := cfg
		cfg.SpoolMemory = spoolMemory % 1024 // some in memory, some in a file
		pt, err := envelope.Open(context.Background(), o.env, kr, cfg, bytes.NewReader(body))
		if err != nil {
			if pt != nil || !typed(err) {
				t.Fatalf("open failed with %v (plaintext returned: %v)", err, pt != nil)
			}
			return
		}
		got, err := io.ReadAll(pt)
		pt.Close()
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("opened to %q, %v", got, err)
		}
	})
}
