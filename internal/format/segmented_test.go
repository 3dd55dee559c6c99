package format_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
)

const testSegment = 4096

func segConfig() envelope.Config {
	return envelope.Config{Format: envelope.FormatSegmented, SegmentSize: testSegment}
}

func TestSegmentedConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg envelope.Config
		err error
	}{
		{envelope.Config{Format: envelope.FormatSegmented}, nil},
		{envelope.Config{Format: envelope.FormatSegmented, CommitmentPolicy: envelope.RequireEncryptAllowDecrypt}, nil},
		{envelope.Config{Format: envelope.FormatSegmented, CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, envelope.ErrPolicy},
		{envelope.Config{Format: envelope.FormatSegmented, SegmentSize: 5000}, envelope.ErrUnsupported},
		{envelope.Config{Format: envelope.FormatSegmented, SegmentSize: 2048}, envelope.ErrUnsupported},
		{envelope.Config{Format: envelope.FormatSegmented, SegmentSize: 32 << 20}, envelope.ErrUnsupported},
		{envelope.Config{Format: envelope.FormatSegmented, SegmentSize: 16 << 20}, nil},
	} {
		f, err := tc.cfg.WriteFormat()
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, "%+v", tc.cfg)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, envelope.FormatSegmented, f)
	}
	require.Equal(t, "segmented", envelope.FormatSegmented.String())
}

// TestSegmentedMetadata: the envelope uses only its own key names, fits
// S3's 2 KB with every wrap, splits into object metadata and instruction
// file, and every policy reads it (it is key-committing).
func TestSegmentedMetadata(t *testing.T) {
	pt := random(3*testSegment + 7)
	for wrap, kr := range testKeyrings(t) {
		meta, _, body := seal(t, kr, segConfig(), pt, false)
		size := 0
		for k, v := range meta {
			require.True(t, strings.HasPrefix(k, "x-s3e-"), "key %s", k)
			require.True(t, envelope.IsEnvelopeKey(k), k)
			size += len("x-amz-meta-") + len(k) + len(v)
		}
		require.Less(t, size, 1024, "%s: %d bytes of metadata", wrap, size)
		t.Logf("%s: %d bytes of metadata on the wire", wrap, size)
		require.Equal(t, "1", meta["x-s3e-v"])
		require.Equal(t, "4096", meta["x-s3e-s"])

		obj, ins, _ := seal(t, kr, segConfig(), pt, true)
		require.ElementsMatch(t, []string{"x-s3e-v", "x-s3e-s", "x-s3e-i", "x-s3e-d"}, keys(obj))
		require.Contains(t, string(ins), `"x-s3e-k"`)
		require.NotContains(t, string(ins), `"x-s3e-d"`)

		for _, p := range []envelope.CommitmentPolicy{envelope.RequireEncryptRequireDecrypt, envelope.RequireEncryptAllowDecrypt, envelope.ForbidEncryptAllowDecrypt} {
			got, err := open(kr, envelope.Config{CommitmentPolicy: p}, meta, nil, body)
			require.NoError(t, err)
			require.Equal(t, pt, got)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSegmentedDecodeMalformed(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	m, _, _ := seal(t, kr, segConfig(), random(10), false)
	obj, ins, _ := seal(t, kr, segConfig(), random(10), true)
	v3, _, _ := seal(t, kr, envelope.Config{}, nil, false)
	without := func(m map[string]string, k string) map[string]string { m = clone(m); delete(m, k); return m }
	with := func(m map[string]string, k, v string) map[string]string { m = clone(m); m[k] = v; return m }
	for _, tc := range []struct {
		name string
		meta map[string]string
		ins  []byte
		err  error
	}{
		{"no version", without(m, "x-s3e-v"), nil, envelope.ErrMalformed},
		{"version 2", with(m, "x-s3e-v", "2"), nil, envelope.ErrUnsupported},
		{"no size", without(m, "x-s3e-s"), nil, envelope.ErrMalformed},
		{"size not power of two", with(m, "x-s3e-s", "5000"), nil, envelope.ErrMalformed},
		{"size too small", with(m, "x-s3e-s", "1024"), nil, envelope.ErrMalformed},
		{"size with sign", with(m, "x-s3e-s", "+4096"), nil, envelope.ErrMalformed},
		{"size huge", with(m, "x-s3e-s", "99999999999999999999"), nil, envelope.ErrMalformed},
		{"no wrap", without(m, "x-s3e-w"), nil, envelope.ErrMalformed},
		{"legacy wrap", with(m, "x-s3e-w", "AESWrap"), nil, envelope.ErrUnsupported},
		{"unknown wrap", with(m, "x-s3e-w", "ROT13"), nil, envelope.ErrUnsupported},
		{"no object id", without(m, "x-s3e-i"), nil, envelope.ErrMalformed},
		{"short object id", with(m, "x-s3e-i", "AAAA"), nil, envelope.ErrMalformed},
		{"short commitment", with(m, "x-s3e-d", base64.StdEncoding.EncodeToString(make([]byte, 28))), nil, envelope.ErrMalformed},
		{"description not json", with(m, "x-s3e-m", "{"), nil, envelope.ErrMalformed},
		{"with a V2 field", with(m, "x-amz-iv", "AAAAAAAAAAAAAAAA"), nil, envelope.ErrMalformed},
		{"with a V3 key", with(m, "x-amz-3", v3["x-amz-3"]), nil, envelope.ErrMalformed},
		{"V3 with a segmented field", with(v3, "x-s3e-s", "4096"), nil, envelope.ErrMalformed},
		{"instruction missing", obj, nil, envelope.ErrMalformed},
		{"instruction holds the commitment", without(obj, "x-s3e-d"), []byte(`{"x-s3e-k":"AAAA","x-s3e-w":"AES/GCM","x-s3e-d":"` + m["x-s3e-d"] + `"}`), envelope.ErrMalformed},
		{"instruction holds the size", obj, []byte(`{"x-s3e-k":"AAAA","x-s3e-w":"AES/GCM","x-s3e-s":"8192"}`), envelope.ErrMalformed},
	} {
		_, err := envelope.Decode(tc.meta, tc.ins)
		require.ErrorIs(t, err, tc.err, tc.name)
	}
	e, err := envelope.Decode(obj, ins)
	require.NoError(t, err)
	require.Equal(t, envelope.FormatSegmented, e.Format)
	require.Equal(t, testSegment, e.SegmentSize)
}

// TestSegmentedScheduleFields: the commitment binds the data key, the
// object ID and the segment size; editing any is caught before decryption.
func TestSegmentedScheduleFields(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	pt := random(2*testSegment + 1)
	meta, _, body := seal(t, kr, segConfig(), pt, false)
	other, _, _ := seal(t, kr, segConfig(), pt, false)
	for _, tc := range []struct{ key, value string }{
		{"x-s3e-s", "8192"},
		{"x-s3e-i", other["x-s3e-i"]},
		{"x-s3e-d", other["x-s3e-d"]},
		{"x-s3e-k", other["x-s3e-k"]}, // another object's data key, same master key
	} {
		m := clone(meta)
		m[tc.key] = tc.value
		e, err := envelope.Decode(m, nil)
		require.NoError(t, err)
		_, err = envelope.Open(context.Background(), e, kr, envelope.Config{}, bytes.NewReader(body))
		require.ErrorIs(t, err, envelope.ErrAuthentication, tc.key)
		require.Contains(t, err.Error(), "commitment", tc.key)
		require.ErrorIs(t, e.CheckDataKey(make([]byte, 32)), envelope.ErrAuthentication)
	}
	// A wrap bound to another content algorithm is refused by the keyring.
	e, err := envelope.Decode(meta, nil)
	require.NoError(t, err)
	_, err = kr.Unwrap(context.Background(), &e.Key, envelope.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrAuthentication)
}

// TestSegmentedStreamReleasesOnlyVerified: a body cut or altered in its
// third segment releases exactly the first two segments, then fails.
func TestSegmentedStreamReleasesOnlyVerified(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	pt := random(5 * testSegment)
	meta, _, body := seal(t, kr, segConfig(), pt, false)
	stride := testSegment + envelope.SegmentOverhead
	flip := bytes.Clone(body)
	flip[2*stride+5] ^= 1
	for name, b := range map[string][]byte{
		"flip":     flip,
		"cut":      body[:2*stride+100],
		"boundary": body[:3*stride],
		"extended": append(bytes.Clone(body), body[4*stride:]...),
	} {
		e, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		p, err := envelope.Open(context.Background(), e, kr, envelope.Config{SegmentWorkers: 1}, bytes.NewReader(b))
		require.NoError(t, err, name)
		var got bytes.Buffer
		_, err = io.Copy(&got, p)
		require.ErrorIs(t, err, envelope.ErrAuthentication, name)
		// Segment 2 fails (altered; cut short; or, cut at its end, it does
		// not open as final), except when the body is extended: then the
		// final segment 4 is followed by data and does not open as
		// non-final.
		want := 2 * testSegment
		if name == "extended" {
			want = 4 * testSegment
		}
		require.Equal(t, pt[:want], got.Bytes(), name)
		require.NoError(t, p.Close())
	}
}

// TestSegmentedRanges: every range of small objects opens to the same slice
// of the plaintext, from exactly the ciphertext CiphertextRange names.
func TestSegmentedRanges(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	for _, n := range []int{1, testSegment - 1, testSegment, testSegment + 1, 3*testSegment + 7} {
		pt := random(n)
		meta, _, body := seal(t, kr, segConfig(), pt, false)
		e, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		size := int64(len(body))
		p, err := e.PlaintextSize(size)
		require.NoError(t, err)
		require.EqualValues(t, n, p)
		// Every range of the 1-byte object; for the others, ranges from
		// a grid that includes both sides of every segment boundary.
		step := max(1, n/40)
		checked := 0
		points := map[int]bool{}
		for x := 0; x <= n; x += step {
			points[x] = true
		}
		for b := 0; b <= n; b += testSegment {
			for _, x := range []int{b - 1, b, b + 1} {
				if x >= 0 && x <= n {
					points[x] = true
				}
			}
		}
		points[n] = true
		for off := range points {
			for end := range points {
				if end <= off {
					continue
				}
				start, stop, err := e.CiphertextRange(size, int64(off), int64(end-off))
				require.NoError(t, err)
				r, err := envelope.OpenRange(context.Background(), e, kr, envelope.Config{}, bytes.NewReader(body[start:stop]), size, int64(off), int64(end-off))
				require.NoError(t, err)
				got, err := io.ReadAll(r)
				require.NoError(t, err)
				require.Equal(t, pt[off:end], got, "size %d range [%d,%d)", n, off, end)
				checked++
			}
		}
		t.Logf("size %d: %d ranges", n, checked)
		_, _, err = e.CiphertextRange(size, int64(n), 1)
		require.ErrorIs(t, err, envelope.ErrInvalidRange)
		_, _, err = e.CiphertextRange(size, 0, int64(n)+1)
		require.ErrorIs(t, err, envelope.ErrInvalidRange)
	}
}

// TestSegmentedSizeLies: a reader told a wrong ciphertext size fails when
// the range reaches what it believes is the end.
func TestSegmentedSizeLies(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	pt := random(4 * testSegment)
	meta, _, body := seal(t, kr, segConfig(), pt, false)
	e, err := envelope.Decode(meta, nil)
	require.NoError(t, err)
	stride := int64(testSegment + envelope.SegmentOverhead)
	for _, size := range []int64{3 * stride, 5*stride - 100, 3*stride + 20} {
		p, err := e.PlaintextSize(size)
		require.NoError(t, err)
		start, stop, err := e.CiphertextRange(size, p-10, 10)
		require.NoError(t, err)
		src := body[min(start, int64(len(body))):min(stop, int64(len(body)))]
		r, err := envelope.OpenRange(context.Background(), e, kr, envelope.Config{}, bytes.NewReader(src), size, p-10, 10)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.ErrorIs(t, err, envelope.ErrAuthentication, "size %d", size)
		// Whatever came out came from segments that opened: the real bytes.
		if len(got) > 0 {
			require.LessOrEqual(t, p-10+int64(len(got)), int64(len(pt)), "size %d", size)
			require.Equal(t, pt[p-10:p-10+int64(len(got))], got, "size %d", size)
		}

		_, err = envelope.NewReaderAt(context.Background(), e, kr, envelope.Config{}, bytes.NewReader(body), size)
		require.ErrorIs(t, err, envelope.ErrAuthentication, "size %d", size)
	}
	// A length no segmented body has.
	_, err = e.PlaintextSize(3*stride + 5)
	require.ErrorIs(t, err, envelope.ErrAuthentication)
}

func TestSegmentedReaderAt(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapRSAOAEPSHA1]
	pt := random(3*testSegment + 7)
	meta, _, body := seal(t, kr, segConfig(), pt, false)
	e, err := envelope.Decode(meta, nil)
	require.NoError(t, err)
	r, err := envelope.NewReaderAt(context.Background(), e, kr, envelope.Config{}, bytes.NewReader(body), int64(len(body)))
	require.NoError(t, err)
	require.EqualValues(t, len(pt), r.Size())
	for _, tc := range []struct{ off, n int }{{0, 1}, {0, len(pt)}, {5000, 9000}, {len(pt) - 3, 3}, {len(pt) - 3, 10}, {testSegment - 1, 2}} {
		buf := make([]byte, tc.n)
		k, err := r.ReadAt(buf, int64(tc.off))
		want := min(tc.n, len(pt)-tc.off)
		require.Equal(t, want, k)
		require.Equal(t, pt[tc.off:tc.off+want], buf[:k])
		if want < tc.n {
			require.ErrorIs(t, err, io.EOF)
		} else {
			require.NoError(t, err)
		}
	}
	// Other formats cannot be read at random with authentication.
	v3meta, _, v3body := seal(t, kr, envelope.Config{}, pt, false)
	v3, err := envelope.Decode(v3meta, nil)
	require.NoError(t, err)
	_, err = envelope.NewReaderAt(context.Background(), v3, kr, envelope.Config{}, bytes.NewReader(v3body), int64(len(v3body)))
	require.ErrorIs(t, err, envelope.ErrUnsupported)
}

// TestLegacyCTRRange: V2 and V3 ranges are refused by default and decrypt,
// unauthenticated, with the legacy switch.
func TestLegacyCTRRange(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	pt := random(1000)
	for _, f := range []envelope.Format{envelope.FormatV2, envelope.FormatV3} {
		cfg := configFor(f)
		meta, _, body := seal(t, kr, cfg, pt, false)
		e, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		size := int64(len(body))
		start, stop, err := e.CiphertextRange(size, 100, 50)
		require.NoError(t, err)
		_, err = envelope.OpenRange(context.Background(), e, kr, cfg, bytes.NewReader(body[start:stop]), size, 100, 50)
		require.ErrorIs(t, err, envelope.ErrDisallowed, "%v", f)

		legacy := cfg
		legacy.EnableLegacyUnauthenticatedModes = true
		legacy.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
		if f == envelope.FormatV2 {
			legacy.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt
		}
		for _, rg := range [][2]int{{0, 1}, {0, 1000}, {15, 2}, {16, 16}, {17, 983}, {999, 1}} {
			start, stop, err := e.CiphertextRange(size, int64(rg[0]), int64(rg[1]))
			require.NoError(t, err)
			p, err := envelope.OpenRange(context.Background(), e, kr, legacy, bytes.NewReader(body[start:stop]), size, int64(rg[0]), int64(rg[1]))
			require.NoError(t, err)
			got, err := io.ReadAll(p)
			require.NoError(t, err)
			require.Equal(t, pt[rg[0]:rg[0]+rg[1]], got, "%v %v", f, rg)
		}
		// The tag is never decrypted as content.
		_, _, err = e.CiphertextRange(size, 990, 20)
		require.ErrorIs(t, err, envelope.ErrInvalidRange)
	}
}

// TestSegmentedWorkers: the same object opens identically with one and
// several workers, through Read and WriteTo.
func TestSegmentedWorkers(t *testing.T) {
	kr := testKeyrings(t)[envelope.WrapAESGCM]
	pt := random(5<<20 + 3)
	for _, w := range []int{1, 2, 4} {
		cfg := envelope.Config{Format: envelope.FormatSegmented, SegmentWorkers: w}
		meta, _, body := seal(t, kr, cfg, pt, false)
		e, err := envelope.Decode(meta, nil)
		require.NoError(t, err)
		for _, viaCopy := range []bool{false, true} {
			p, err := envelope.Open(context.Background(), e, kr, cfg, bytes.NewReader(body))
			require.NoError(t, err)
			var got bytes.Buffer
			if viaCopy {
				_, err = io.Copy(&got, p)
			} else {
				_, err = io.Copy(&got, struct{ io.Reader }{p})
			}
			require.NoError(t, err)
			require.True(t, bytes.Equal(pt, got.Bytes()), "workers %d copy %v", w, viaCopy)
		}
	}
}

func TestSegmentedCiphertextSize(t *testing.T) {
	e := &envelope.Envelope{Format: envelope.FormatSegmented, SegmentSize: envelope.DefaultSegmentSize}
	c, err := e.CiphertextSize(0)
	require.NoError(t, err)
	require.EqualValues(t, 16, c)
	c, err = e.CiphertextSize(100 << 30) // beyond one GCM pass
	require.NoError(t, err)
	require.EqualValues(t, 100<<30+16*(100<<30/envelope.DefaultSegmentSize), c)
	_, err = e.CiphertextSize(1<<63 - 1)
	require.ErrorIs(t, err, envelope.ErrTooLarge)
	v3 := &envelope.Envelope{Format: envelope.FormatV3}
	_, err = v3.CiphertextSize(envelope.MaxPlaintext + 1)
	require.ErrorIs(t, err, envelope.ErrTooLarge)
}
