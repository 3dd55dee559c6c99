package format_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testRSA(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

// testKeyrings returns one keyring per wrap algorithm written.
func testKeyrings(t testing.TB) map[string]keyring.Keyring {
	aesKey := make([]byte, 32)
	rand.Read(aesKey)
	a, err := keyring.NewAES(aesKey, map[string]string{"kid": "aes-1"})
	require.NoError(t, err)
	r, err := keyring.NewRSA(testRSA(t), map[string]string{"kid": "rsa-1"})
	require.NoError(t, err)
	return map[string]keyring.Keyring{envelope.WrapAESGCM: a, envelope.WrapRSAOAEPSHA1: r}
}

func configFor(f envelope.Format) envelope.Config {
	c := envelope.Config{Format: f}
	if f == envelope.FormatV2 {
		c.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt
	}
	return c
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// seal returns the stored form of plaintext: metadata (or, with instruction,
// the object's metadata and the instruction file) and the body.
func seal(t testing.TB, kr keyring.Keyring, cfg envelope.Config, plaintext []byte, instruction bool) (map[string]string, []byte, []byte) {
	t.Helper()
	s, err := envelope.NewSealer(context.Background(), kr, cfg)
	require.NoError(t, err)
	s.Envelope().PlaintextLength = int64(len(plaintext))
	body, err := io.ReadAll(s.Seal(bytes.NewReader(plaintext)))
	require.NoError(t, err)
	size, err := s.CiphertextSize(int64(len(plaintext)))
	require.NoError(t, err)
	require.EqualValues(t, size, len(body))
	if instruction {
		meta, ins, err := s.Envelope().Instruction()
		require.NoError(t, err)
		return meta, ins, body
	}
	meta, err := s.Envelope().Metadata()
	require.NoError(t, err)
	return meta, nil, body
}

// open decodes and opens, returning the plaintext read in full.
func open(kr envelope.Unwrapper, cfg envelope.Config, meta map[string]string, ins, body []byte) ([]byte, error) {
	env, err := envelope.Decode(meta, ins)
	if err != nil {
		return nil, err
	}
	pt, err := envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer pt.Close()
	out, err := io.ReadAll(pt)
	if err != nil {
		return nil, err
	}
	if pt.Size() >= 0 && int64(len(out)) != pt.Size() {
		return nil, fmt.Errorf("read %d bytes, Size says %d", len(out), pt.Size())
	}
	return out, nil
}

// allFormats are the formats written.
var allFormats = []envelope.Format{envelope.FormatV2, envelope.FormatV3, envelope.FormatSegmented}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 15, 16, 17, 64<<10 - 1, 64 << 10, 64<<10 + 1, 5<<20 + 3}
	for wrap, kr := range testKeyrings(t) {
		for _, f := range allFormats {
			for _, instruction := range []bool{false, true} {
				for _, n := range sizes {
					t.Run(fmt.Sprintf("%s/%v/instruction=%v/%d", wrap, f, instruction, n), func(t *testing.T) {
						cfg := configFor(f)
						pt := random(n)
						meta, ins, body := seal(t, kr, cfg, pt, instruction)
						got, err := open(kr, cfg, meta, ins, body)
						require.NoError(t, err)
						require.True(t, bytes.Equal(pt, got))
					})
				}
			}
		}
	}
}

func TestSpoolFileRemoved(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	dir := t.TempDir()
	cfg := envelope.Config{SpoolDir: dir, SpoolMemory: -1}
	pt := random(300 << 10)
	meta, _, body := seal(t, kr, cfg, pt, false)

	got, err := open(kr, cfg, meta, nil, body)
	require.NoError(t, err)
	require.Equal(t, pt, got)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "spool file left behind")

	body[len(body)-1] ^= 1
	_, err = open(kr, cfg, meta, nil, body)
	require.ErrorIs(t, err, envelope.ErrAuthentication)
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "spool file left behind after a failed open")
}

// TestTamperBits flips every bit of the body (tag included), the wrapped key,
// the IV or message ID and the commitment: each must fail with
// ErrAuthentication before any plaintext is returned.
func TestTamperBits(t *testing.T) {
	pt := random(40)
	for wrap, kr := range testKeyrings(t) {
		for _, f := range allFormats {
			cfg := configFor(f)
			meta, _, body := seal(t, kr, cfg, pt, false)
			fields := []string{"x-amz-key-v2", "x-amz-iv"}
			switch f {
			case envelope.FormatV3:
				fields = []string{"x-amz-3", "x-amz-i", "x-amz-d"}
			case envelope.FormatSegmented:
				fields = []string{"x-s3e-k", "x-s3e-i", "x-s3e-d"}
			}
			cases := 0
			for i := 0; i < len(body)*8; i++ {
				b := bytes.Clone(body)
				b[i/8] ^= 1 << (i % 8)
				got, err := open(kr, cfg, meta, nil, b)
				require.ErrorIs(t, err, envelope.ErrAuthentication, "%s %v body bit %d", wrap, f, i)
				require.Nil(t, got)
				cases++
			}
			for _, field := range fields {
				raw, err := base64.StdEncoding.DecodeString(meta[field])
				require.NoError(t, err)
				for i := 0; i < len(raw)*8; i++ {
					r := bytes.Clone(raw)
					r[i/8] ^= 1 << (i % 8)
					m := clone(meta)
					m[field] = base64.StdEncoding.EncodeToString(r)
					got, err := open(kr, cfg, m, nil, body)
					require.ErrorIs(t, err, envelope.ErrAuthentication, "%s %v %s bit %d", wrap, f, field, i)
					require.Nil(t, got)
					cases++
				}
			}
			t.Logf("%s %v: %d single-bit flips rejected", wrap, f, cases)
		}
	}
}

func TestTruncatedAndExtendedBody(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	for _, f := range allFormats {
		cfg := configFor(f)
		meta, _, body := seal(t, kr, cfg, random(100), false)
		for _, b := range [][]byte{nil, body[:1], body[:15], body[:16], body[:len(body)-1], append(bytes.Clone(body), 0)} {
			_, err := open(kr, cfg, meta, nil, b)
			require.ErrorIs(t, err, envelope.ErrAuthentication, "%v body of %d bytes", f, len(b))
		}
	}
}

func TestPolicy(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	pt := random(10)
	v2meta, _, v2body := seal(t, kr, configFor(envelope.FormatV2), pt, false)
	v3meta, _, v3body := seal(t, kr, configFor(envelope.FormatV3), pt, false)

	for _, tc := range []struct {
		policy     envelope.CommitmentPolicy
		v2OK, v3OK bool
	}{
		{envelope.RequireEncryptRequireDecrypt, false, true},
		{envelope.RequireEncryptAllowDecrypt, true, true},
		{envelope.ForbidEncryptAllowDecrypt, true, true},
	} {
		cfg := envelope.Config{CommitmentPolicy: tc.policy}
		_, err := open(kr, cfg, v2meta, nil, v2body)
		if tc.v2OK {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, envelope.ErrPolicy)
		}
		_, err = open(kr, cfg, v3meta, nil, v3body)
		require.NoError(t, err)
	}

	// Stripping V3 down to V2-looking metadata is caught by the policy (and
	// would fail authentication anyway).
	for _, tc := range []struct {
		cfg  envelope.Config
		want envelope.Format
		err  error
	}{
		{envelope.Config{}, envelope.FormatV3, nil},
		{envelope.Config{CommitmentPolicy: envelope.RequireEncryptAllowDecrypt}, envelope.FormatV3, nil},
		{envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, envelope.FormatV2, nil},
		{envelope.Config{Format: envelope.FormatV2}, 0, envelope.ErrPolicy},
		{envelope.Config{Format: envelope.FormatV2, CommitmentPolicy: envelope.RequireEncryptAllowDecrypt}, 0, envelope.ErrPolicy},
		{envelope.Config{Format: envelope.FormatV3, CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, 0, envelope.ErrPolicy},
		{envelope.Config{Format: envelope.FormatV1, CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, 0, envelope.ErrUnsupported},
		{envelope.Config{CommitmentPolicy: 7}, 0, envelope.ErrPolicy},
	} {
		got, err := tc.cfg.WriteFormat()
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, "%+v", tc.cfg)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}

// TestDowngrade rewrites stored algorithm names (CVE-2020-8912): the reader
// must refuse rather than decrypt under an algorithm the caller did not ask for.
func TestDowngrade(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	cfg := envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}
	meta, _, body := seal(t, kr, cfg, random(64), false)
	for _, tc := range []struct {
		key, value string
		err        error
	}{
		{"x-amz-cek-alg", "AES/CTR/NoPadding", envelope.ErrUnsupported},
		{"x-amz-cek-alg", "AES/CBC/PKCS5Padding", envelope.ErrMalformed}, // a GCM IV is no CBC IV
		{"x-amz-wrap-alg", "AESWrap", envelope.ErrDisallowed},
		{"x-amz-wrap-alg", "kms", envelope.ErrDisallowed},
		{"x-amz-wrap-alg", "RSA-OAEP-SHA1", envelope.ErrUnsupported},
		{"x-amz-wrap-alg", "ROT13", envelope.ErrUnsupported},
		{"x-amz-tag-len", "96", envelope.ErrMalformed},
		{"x-amz-unencrypted-content-length", "63", envelope.ErrMalformed},
	} {
		m := clone(meta)
		m[tc.key] = tc.value
		_, err := open(kr, cfg, m, nil, body)
		require.ErrorIs(t, err, tc.err, "%s=%s", tc.key, tc.value)
	}
	// V3 with its suite rewritten.
	v3meta, _, v3body := seal(t, kr, envelope.Config{}, random(64), false)
	for _, v := range []string{"114", "AES/GCM/NoPadding", ""} {
		m := clone(v3meta)
		m["x-amz-c"] = v
		_, err := open(kr, envelope.Config{}, m, nil, v3body)
		require.ErrorIs(t, err, envelope.ErrUnsupported, "x-amz-c=%q", v)
	}
}

func TestDecodeMalformed(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	v2, _, _ := seal(t, kr, envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, nil, false)
	v3, _, _ := seal(t, kr, envelope.Config{}, nil, false)
	v3obj, v3ins, _ := seal(t, kr, envelope.Config{}, nil, true)
	without := func(m map[string]string, k string) map[string]string { m = clone(m); delete(m, k); return m }
	with := func(m map[string]string, k, v string) map[string]string { m = clone(m); m[k] = v; return m }
	for _, tc := range []struct {
		name string
		meta map[string]string
		ins  []byte
		err  error
	}{
		{"no envelope", map[string]string{"color": "blue"}, nil, envelope.ErrNoEnvelope},
		{"v2 no iv", without(v2, "x-amz-iv"), nil, envelope.ErrMalformed},
		{"v2 no cek-alg", without(v2, "x-amz-cek-alg"), nil, envelope.ErrMalformed},
		{"v2 no wrap-alg", without(v2, "x-amz-wrap-alg"), nil, envelope.ErrMalformed},
		{"v2 no tag-len", without(v2, "x-amz-tag-len"), nil, envelope.ErrMalformed},
		{"v2 short iv", with(v2, "x-amz-iv", "AAAA"), nil, envelope.ErrMalformed},
		{"v2 key not base64", with(v2, "x-amz-key-v2", "!!"), nil, envelope.ErrMalformed},
		{"v2 matdesc not json", with(v2, "x-amz-matdesc", "{"), nil, envelope.ErrMalformed},
		{"v2 matdesc not strings", with(v2, "x-amz-matdesc", `{"a":1}`), nil, envelope.ErrMalformed},
		{"v2 with v3 fields", with(v2, "x-amz-d", v3["x-amz-d"]), nil, envelope.ErrMalformed},
		{"v2 and v3 keys", with(v2, "x-amz-3", v3["x-amz-3"]), nil, envelope.ErrMalformed},
		{"v3 no commitment", without(v3, "x-amz-d"), nil, envelope.ErrMalformed},
		{"v3 no message id", without(v3, "x-amz-i"), nil, envelope.ErrMalformed},
		{"v3 no wrap", without(v3, "x-amz-w"), nil, envelope.ErrMalformed},
		{"v3 no suite", without(v3, "x-amz-c"), nil, envelope.ErrMalformed},
		{"v3 unknown wrap", with(v3, "x-amz-w", "99"), nil, envelope.ErrUnsupported},
		{"v3 short commitment", with(v3, "x-amz-d", "AAAA"), nil, envelope.ErrMalformed},
		{"v3 with v2 iv", with(v3, "x-amz-iv", v2["x-amz-iv"]), nil, envelope.ErrMalformed},
		{"v3 instruction missing", v3obj, nil, envelope.ErrMalformed},
		{"v3 instruction holds commitment", without(v3obj, "x-amz-d"), []byte(`{"x-amz-3":"AAAA","x-amz-w":"02","x-amz-d":"` + v3["x-amz-d"] + `"}`), envelope.ErrMalformed},
		{"instruction not json", nil, []byte("{"), envelope.ErrMalformed},
		{"instruction array", nil, []byte("[]"), envelope.ErrMalformed},
		{"instruction null", nil, []byte("null"), envelope.ErrMalformed},
		{"instruction nested", nil, []byte(`{"x-amz-key-v2":{"a":"b"}}`), envelope.ErrMalformed},
		{"instruction huge", nil, bytes.Repeat([]byte(" "), envelope.MaxInstructionSize+1), envelope.ErrTooLarge},
		{"field huge", with(v2, "x-amz-matdesc", string(bytes.Repeat([]byte("a"), 17<<10))), nil, envelope.ErrTooLarge},
	} {
		_, err := envelope.Decode(tc.meta, tc.ins)
		require.ErrorIs(t, err, tc.err, tc.name)
	}
	// The well-formed instruction split still decodes.
	_, err := envelope.Decode(v3obj, v3ins)
	require.NoError(t, err)
}

func TestMetadataWinsOverInstruction(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	cfg := envelope.Config{}
	pt := random(33)
	meta, _, body := seal(t, kr, cfg, pt, false)
	_, otherIns, _ := seal(t, kr, cfg, random(33), true)
	got, err := open(kr, cfg, meta, otherIns, body)
	require.NoError(t, err)
	require.Equal(t, pt, got)
}

func TestMetadataKeysCaseInsensitive(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	cfg := envelope.Config{}
	pt := random(33)
	meta, _, body := seal(t, kr, cfg, pt, false)
	upper := map[string]string{}
	for k, v := range meta {
		upper[http_canonical(k)] = v
	}
	got, err := open(kr, cfg, upper, nil, body)
	require.NoError(t, err)
	require.Equal(t, pt, got)
}

func http_canonical(k string) string {
	b := []byte(k)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
		up = c == '-'
	}
	return string(b)
}

func TestDescriptionStored(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	meta, _, _ := seal(t, kr, envelope.Config{}, nil, false)
	require.Equal(t, `{"kid":"aes-1"}`, meta["x-amz-m"])
	meta, _, _ = seal(t, kr, envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, nil, false)
	require.Equal(t, `{"kid":"aes-1"}`, meta["x-amz-matdesc"])
	require.Equal(t, "AES/GCM", meta["x-amz-wrap-alg"])
	require.Equal(t, "AES/GCM/NoPadding", meta["x-amz-cek-alg"])
	require.Equal(t, "128", meta["x-amz-tag-len"])
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("network down") }

func TestOpenReadError(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	meta, _, _ := seal(t, kr, envelope.Config{}, random(10), false)
	env, err := envelope.Decode(meta, nil)
	require.NoError(t, err)
	_, err = envelope.Open(context.Background(), env, kr, envelope.Config{}, io.MultiReader(bytes.NewReader(make([]byte, 100)), errReader{}))
	require.ErrorContains(t, err, "network down")
}

func clone(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestCloseMidReadAndSpoolErrors: closing a plaintext part-way stops its
// read-ahead and removes its spool; a spool that cannot be written fails the
// open cleanly. Neither leaves goroutines behind.
func TestCloseMidReadAndSpoolErrors(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	dir := t.TempDir()
	cfg := envelope.Config{SpoolDir: dir, SpoolMemory: 1 << 20}
	pt := random(5 << 20)
	meta, _, body := seal(t, kr, cfg, pt, false)
	env, err := envelope.Decode(meta, nil)
	require.NoError(t, err)
	before := runtime.NumGoroutine()

	p, err := envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(body))
	require.NoError(t, err)
	head := make([]byte, 1000)
	_, err = io.ReadFull(p, head)
	require.NoError(t, err)
	require.Equal(t, pt[:1000], head)
	require.NoError(t, p.Close())
	_, err = p.Read(head)
	require.Error(t, err)

	bad := cfg
	bad.SpoolDir = filepath.Join(dir, "missing")
	_, err = envelope.Open(context.Background(), env, kr, bad, bytes.NewReader(body))
	require.Error(t, err)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestAWSQuirks: what AWS's clients and S3 store that a strict reader must
// still accept: an empty x-amz-unencrypted-content-length and x-amz-m (AWS
// Go v4), and a non-ASCII description returned RFC 2047-encoded by S3.
func TestAWSQuirks(t *testing.T) {
	aesKey := random(32)
	kr, err := keyring.NewAES(aesKey, map[string]string{"owner": "Zoë"})
	require.NoError(t, err)
	pt := random(50)
	meta, _, body := seal(t, kr, envelope.Config{}, pt, false)
	meta["x-amz-unencrypted-content-length"] = ""
	meta["x-amz-m"] = "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(meta["x-amz-m"])) + "?="
	env, err := envelope.Decode(meta, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"owner": "Zoë"}, env.Key.Description)
	got, err := open(kr, envelope.Config{}, meta, nil, body)
	require.NoError(t, err)
	require.Equal(t, pt, got)

	plain, err := keyring.NewAES(aesKey, nil)
	require.NoError(t, err)
	m2, _, body2 := seal(t, plain, envelope.Config{}, pt, false)
	m2["x-amz-m"] = ""
	_, err = open(plain, envelope.Config{}, m2, nil, body2)
	require.NoError(t, err)
	m2["x-amz-m"] = "=?bogus"
	_, err = envelope.Decode(m2, nil)
	require.ErrorIs(t, err, envelope.ErrMalformed)
}

// TestPlaintextReadPaths reads plaintext held in memory, in a spool file and
// across the two, with one-byte reads, odd reads and WriteTo (io.Copy).
func TestPlaintextReadPaths(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	pt := random(3<<20 + 77)
	for _, mem := range []int64{-1, 1 << 20, 8 << 20} {
		cfg := envelope.Config{SpoolDir: t.TempDir(), SpoolMemory: mem}
		meta, _, body := seal(t, kr, cfg, pt, false)
		env, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		p, err := envelope.Open(context.Background(), env, kr, cfg, bytes.NewReader(body))
		require.NoError(t, err)
		var got bytes.Buffer
		one := make([]byte, 1)
		for range 100 {
			n, err := p.Read(one)
			require.NoError(t, err)
			got.Write(one[:n])
		}
		odd := make([]byte, 70001)
		for range 20 {
			n, err := io.ReadFull(p, odd)
			require.NoError(t, err)
			got.Write(odd[:n])
		}
		_, err = io.Copy(&got, p)
		require.NoError(t, err)
		require.NoError(t, p.Close())
		require.True(t, bytes.Equal(pt, got.Bytes()), "spool memory %d", mem)
	}
}
