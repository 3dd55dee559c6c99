package format_test

// Regression tests for the findings of the outside security review
// (issue 13), named for them. Each failed before its fix.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// Finding 4: a V2 instruction file beside a V3 (or segmented) object's own
// fields must not downgrade it to V2 — where the commitment would never be
// checked. Decode refuses it as malformed, before any key is unwrapped.
func TestFinding04InstructionFileCannotDowngrade(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	pt := []byte("committed body")
	v2cfg := configFor(envelope.FormatV2)
	_, v2ins, _ := seal(t, kr, v2cfg, pt, true)
	for _, f := range []envelope.Format{envelope.FormatV3, envelope.FormatSegmented} {
		meta, ins, body := seal(t, kr, configFor(f), pt, true)
		require.NotEmpty(t, meta, "%v keeps fields on the object", f)
		got, err := open(kr, envelope.Config{CommitmentPolicy: envelope.RequireEncryptAllowDecrypt}, meta, ins, body)
		require.NoError(t, err)
		require.Equal(t, pt, got)

		// The object's own fields, and another object's V2 instruction file
		// (its data key a V2 one the attacker could have made).
		_, err = envelope.Decode(meta, v2ins)
		require.ErrorIs(t, err, envelope.ErrMalformed, "%v object with a V2 instruction file", f)
		for k, v := range meta {
			_, err = envelope.Decode(map[string]string{k: v}, v2ins)
			require.ErrorIs(t, err, envelope.ErrMalformed, "%v field %s beside a V2 instruction file", f, k)
		}
	}
	// A V2 object with its own V2 instruction file still opens, and so does
	// one with the stored length on the object.
	meta, ins, body := seal(t, kr, v2cfg, pt, true)
	meta["x-amz-unencrypted-content-length"] = strconv.Itoa(len(pt))
	got, err := open(kr, v2cfg, meta, ins, body)
	require.NoError(t, err)
	require.Equal(t, pt, got)
}

// Finding 7 (envelope part): sizes past a format's limit are ErrTooLarge,
// wherever they come from — a stored length, a stored size, a range — and
// no input panics, legacy switches or not.
func TestFinding07HostileSizesAreTooLarge(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	legacy := envelope.Config{CommitmentPolicy: envelope.RequireEncryptAllowDecrypt, EnableLegacyUnauthenticatedModes: true}
	for _, f := range []envelope.Format{envelope.FormatV2, envelope.FormatV3} {
		meta, _, _ := seal(t, kr, configFor(f), []byte("small"), false)
		env, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		huge := int64(1) << 40
		_, err = env.PlaintextSize(huge)
		require.ErrorIs(t, err, envelope.ErrTooLarge, "%v", f)
		_, _, err = env.CiphertextRange(huge, huge-10-envelope.TagSize, 10)
		require.ErrorIs(t, err, envelope.ErrTooLarge, "%v", f)
		require.NotPanics(t, func() {
			_, err = envelope.OpenRange(context.Background(), env, kr, legacy, bytes.NewReader(make([]byte, 32)), huge, huge-10-envelope.TagSize, 10)
		})
		require.ErrorIs(t, err, envelope.ErrTooLarge, "%v", f)
		// The largest size a V2/V3 object may have is still fine.
		p, err := env.PlaintextSize(envelope.MaxPlaintext + envelope.TagSize)
		require.NoError(t, err)
		require.EqualValues(t, envelope.MaxPlaintext, p)

		// A stored length past the limit: refused when decoded.
		m := maps.Clone(meta)
		m["x-amz-unencrypted-content-length"] = strconv.FormatInt(huge, 10)
		_, err = envelope.Decode(m, nil)
		require.ErrorIs(t, err, envelope.ErrTooLarge)
	}
}

// slowSource hands out a body a little at a time, so that reads overlap a
// concurrent Close.
type slowSource struct{ r io.Reader }

func (s slowSource) Read(p []byte) (int, error) {
	return s.r.Read(p[:min(len(p), 777)])
}

// Finding 8: Close while another goroutine reads — how an HTTP body is
// aborted — is safe: no read touches spool memory that Close gave back
// (the race detector watches), the read ends with an error or the end,
// and nothing is left behind. Run under -race.
func TestFinding08CloseDuringRead(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	for _, f := range allFormats {
		for _, mem := range []int64{0, 64 << 10} { // all in memory; mostly in a file
			cfg := configFor(f)
			cfg.SpoolDir, cfg.SpoolMemory = t.TempDir(), mem
			pt := random(3<<20 + 5)
			meta, _, body := seal(t, kr, cfg, pt, false)
			env, err := envelope.Decode(meta, nil)
			require.NoError(t, err)
			for _, writeTo := range []bool{false, true} {
				for _, after := range []time.Duration{0, 50 * time.Microsecond, time.Millisecond} {
					p, err := envelope.Open(context.Background(), env, kr, cfg, slowSource{bytes.NewReader(body)})
					require.NoError(t, err)
					var wg sync.WaitGroup
					var got bytes.Buffer
					var rerr error
					wg.Add(1)
					go func() {
						defer wg.Done()
						if writeTo {
							_, rerr = p.WriteTo(&got)
							return
						}
						buf := make([]byte, 4096)
						for {
							n, err := p.Read(buf)
							got.Write(buf[:n])
							if err != nil {
								rerr = err
								return
							}
						}
					}()
					time.Sleep(after)
					require.NoError(t, p.Close())
					wg.Wait()
					require.True(t, bytes.HasPrefix(pt, got.Bytes()), "%v: released bytes that are not the plaintext", f)
					if rerr == nil || errors.Is(rerr, io.EOF) {
						require.Equal(t, len(pt), got.Len(), "%v: a read that ended without error read it all", f)
					}
					_, err = p.Read(make([]byte, 1))
					require.Error(t, err, "read after Close")
					require.NoError(t, p.Close(), "a second Close")
				}
			}
			left, err := os.ReadDir(cfg.SpoolDir)
			require.NoError(t, err)
			require.Empty(t, left, "spool files left behind")
		}
	}
}

// The second part of the review's extras: a V2/V3 body of unknown length
// (no stored length, no size from storage) is bounded by SpoolLimit, and
// refused with ErrTooLarge as soon as it passes it.
func TestSpoolLimitBoundsAnUnknownLength(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	for _, f := range []envelope.Format{envelope.FormatV2, envelope.FormatV3} {
		cfg := configFor(f)
		cfg.SpoolDir, cfg.SpoolMemory = t.TempDir(), -1
		cfg.SpoolLimit = 1 << 20
		meta, _, _ := seal(t, kr, cfg, []byte("x"), false)
		env, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		env.PlaintextLength = -1 // as a V3 object fetched with no Content-Length
		src := &endless{}
		// 64 MiB of it, so that a limit not kept fails fast, not at 64 GiB.
		_, err = envelope.Open(context.Background(), env, kr, cfg, io.LimitReader(src, 64<<20))
		require.ErrorIs(t, err, envelope.ErrTooLarge, "%v", f)
		require.Less(t, src.n, int64(2<<20), "read %d bytes past a 1 MiB limit", src.n)
		left, err := os.ReadDir(cfg.SpoolDir)
		require.NoError(t, err)
		require.Empty(t, left)

		// Within the limit, a body of unknown length opens.
		pt := random(512 << 10)
		meta, _, body := seal(t, kr, cfg, pt, false)
		env, err = envelope.Decode(meta, nil)
		require.NoError(t, err)
		env.PlaintextLength = -1
		p, err := envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(body))
		require.NoError(t, err)
		got, err := io.ReadAll(p)
		require.NoError(t, err)
		require.Equal(t, pt, got)
		require.NoError(t, p.Close())
	}
}

// Finding 9 (envelope part): a legacy (AES-CTR) range whose body ends early
// fails with ErrAuthentication wrapping io.ErrUnexpectedEOF, not a bare
// io.EOF after a shorter range.
func TestFinding09ShortLegacyRangeIsTyped(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	cfg := envelope.Config{EnableLegacyUnauthenticatedModes: true}
	pt := random(1000)
	meta, _, body := seal(t, kr, cfg, pt, false)
	env, err := envelope.Decode(meta, nil)
	require.NoError(t, err)
	size := int64(len(body))
	for _, rng := range [][2]int64{{0, 100}, {37, 500}, {990, 10}} {
		start, end, err := env.CiphertextRange(size, rng[0], rng[1])
		require.NoError(t, err)
		for _, cut := range []int64{0, 1, (end - start) / 2, end - start - 1} {
			p, err := envelope.OpenRange(context.Background(), env, kr, cfg, bytes.NewReader(body[start:start+cut]), size, rng[0], rng[1])
			require.NoError(t, err)
			_, err = io.ReadAll(p)
			require.ErrorIs(t, err, envelope.ErrAuthentication, "range %v cut to %d bytes", rng, cut)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			p.Close()
		}
		p, err := envelope.OpenRange(context.Background(), env, kr, cfg, bytes.NewReader(body[start:end]), size, rng[0], rng[1])
		require.NoError(t, err)
		got, err := io.ReadAll(p)
		require.NoError(t, err)
		require.Equal(t, pt[rng[0]:rng[0]+rng[1]], got)
	}
}

// Finding 10 (envelope part): a nil-pointer master key is an error, not a
// panic, wherever a master key is taken.
func TestFinding10NilMasterKey(t *testing.T) {
	var master *keyring.AES // what `master, _ := keyring.NewAES(bad, …)` leaves
	ctx := context.Background()
	_, err := envelope.NewSealer(ctx, master, envelope.Config{})
	require.Error(t, err)
	_, _, err = envelope.NewCustomerKey(ctx, master)
	require.Error(t, err)
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	meta, _, body := seal(t, kr, envelope.Config{}, []byte("x"), false)
	env, err := envelope.Decode(meta, nil)
	require.NoError(t, err)
	require.NotPanics(t, func() {
		_, err = envelope.Open(ctx, env, master, envelope.Config{}, bytes.NewReader(body))
	})
	require.Error(t, err)
	_, err = envelope.OpenCustomerKey(ctx, master, &envelope.WrappedKey{Algorithm: envelope.WrapAESGCM, Ciphertext: []byte{1}})
	require.Error(t, err)
}

// FuzzOpenRangeLegacy feeds the legacy (AES-CTR) range path hostile sizes,
// offsets and bodies: every outcome is plaintext or a typed error, never a
// panic (finding 7: a claimed 2^40-byte object and a suffix range).
func FuzzOpenRangeLegacy(f *testing.F) {
	kr, err := keyring.NewAES(make([]byte, 32), map[string]string{"kid": "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	envs := map[bool]*envelope.Envelope{}
	for _, v3 := range []bool{false, true} {
		cfg := envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}
		if v3 {
			cfg = envelope.Config{}
		}
		meta, _, _ := seal(f, kr, cfg, []byte("seed"), false)
		env, err := envelope.Decode(meta, nil)
		if err != nil {
			f.Fatal(err)
		}
		envs[v3] = env
	}
	f.Add(false, int64(1)<<40, int64(1)<<40-10-16, int64(10), []byte("body"))
	f.Add(true, int64(1)<<40, int64(1)<<40-26, int64(10), []byte("body"))
	f.Add(true, int64(100), int64(5), int64(50), bytes.Repeat([]byte{7}, 64))
	f.Add(false, int64(-1), int64(-5), int64(-50), []byte{})
	f.Add(false, int64(envelope.MaxPlaintext+envelope.TagSize), int64(envelope.MaxPlaintext-1), int64(1), []byte("x"))
	cfg := envelope.Config{CommitmentPolicy: envelope.RequireEncryptAllowDecrypt, EnableLegacyUnauthenticatedModes: true}
	f.Fuzz(func(t *testing.T, v3 bool, size, off, n int64, body []byte) {
		env := envs[v3]
		typedOr := func(err error) {
			if err != nil && !typed(err) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("untyped error for size %d, range %d+%d: %v", size, off, n, err)
			}
		}
		_, err := env.PlaintextSize(size)
		typedOr(err)
		_, _, err = env.CiphertextRange(size, off, n)
		typedOr(err)
		p, err := envelope.OpenRange(context.Background(), env, kr, cfg, bytes.NewReader(body), size, off, n)
		typedOr(err)
		if err != nil {
			return
		}
		defer p.Close()
		got, err := io.ReadAll(p)
		typedOr(err)
		if int64(len(got)) > n {
			t.Fatalf("released %d bytes of a %d-byte range", len(got), n)
		}
	})
}

// An envelope field given twice in different cases (x-amz-iv and X-Amz-Iv)
// is malformed: which one map order picked used to decide, at random,
// whether the object opened.
func TestEnvelopeFieldTwiceInDifferentCases(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	meta, _, _ := seal(t, kr, configFor(envelope.FormatV2), []byte("body"), false)
	_, err := envelope.Decode(meta, nil)
	require.NoError(t, err)
	meta["X-Amz-Iv"] = "AAAAAAAAAAAAAAAA"
	_, err = envelope.Decode(meta, nil)
	require.ErrorIs(t, err, envelope.ErrMalformed)

	_, ins, _ := seal(t, kr, configFor(envelope.FormatV2), []byte("body"), true)
	_, err = envelope.Decode(nil, ins)
	require.NoError(t, err)
	ins = append(ins[:bytes.LastIndexByte(ins, '}')], []byte(`,"X-Amz-Iv":"AAAAAAAAAAAAAAAA"}`)...)
	_, err = envelope.Decode(nil, ins)
	require.ErrorIs(t, err, envelope.ErrMalformed)
}
