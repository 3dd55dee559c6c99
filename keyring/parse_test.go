package keyring

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// parseKey is a 32-byte key whose base64 uses the characters in which the
// standard and URL alphabets differ, so the two encodings are distinct.
var parseKey = append([]byte{0xFB, 0xEF, 0xFF, 0xFE}, pattern(28, 0xA0)...)

const aesWant = "keyring: AES key not in an accepted format: want 16, 24 or 32 bytes raw, in hex or in base64; got "

// goodAESInputs are the accepted forms of parseKey.
func goodAESInputs(t testing.TB) map[string][]byte {
	h := hex.EncodeToString(parseKey)
	std := base64.StdEncoding.EncodeToString(parseKey)
	url := base64.URLEncoding.EncodeToString(parseKey)
	require.True(t, strings.ContainsAny(std, "+/") && strings.ContainsAny(url, "-_"))
	return map[string][]byte{
		"raw":                     parseKey,
		"hex":                     []byte(h),
		"HEX":                     []byte(strings.ToUpper(h)),
		"Hex mixed case":          []byte(strings.ToUpper(h[:32]) + h[32:]),
		"hex newline":             []byte(h + "\n"),
		"hex CRLF":                []byte(h + "\r\n"),
		"base64":                  []byte(std),
		"base64 unpadded":         []byte(strings.TrimRight(std, "=")),
		"base64url":               []byte(url),
		"base64url raw":           []byte(strings.TrimRight(url, "=")),
		"base64 newline":          []byte(std + "\n"),
		"base64url CRLF":          []byte(strings.TrimRight(url, "=") + "\r\n"),
		"base64 unpadded newline": []byte(strings.TrimRight(std, "=") + "\n"),
	}
}

func TestParseAES(t *testing.T) {
	desc := map[string]string{"kid": "parsed"}
	ref := newAES(t, parseKey, nil)
	for name, in := range goodAESInputs(t) {
		t.Run(name, func(t *testing.T) {
			orig := bytes.Clone(in)
			k, err := ParseAES(in, desc)
			require.NoError(t, err)
			require.NotNil(t, k)
			require.Equal(t, orig, in, "ParseAES must not modify its input")
			require.Equal(t, desc, k.Description())
			requireSameAES(t, k, ref)
		})
	}
}

// TestParseAESShortKeys: AES-128 and AES-192 master keys (old ones must
// stay readable) in every form.
func TestParseAESShortKeys(t *testing.T) {
	for _, n := range []int{16, 24} {
		key := parseKey[:n]
		ref := newAES(t, key, nil)
		for name, in := range map[string]string{
			"raw":          string(key),
			"hex":          hex.EncodeToString(key),
			"hex newline":  hex.EncodeToString(key) + "\n",
			"base64":       base64.StdEncoding.EncodeToString(key),
			"base64url":    base64.RawURLEncoding.EncodeToString(key) + "\r\n",
			"base64 unpad": base64.RawStdEncoding.EncodeToString(key),
		} {
			k, err := ParseAES([]byte(in), nil)
			require.NoError(t, err, "%d bytes, %s", n, name)
			requireSameAES(t, k, ref)
		}
	}
}

// requireSameAES checks that a and b hold one master key: each unwraps the
// other's wrap.
func requireSameAES(t *testing.T, a, b *AES) {
	t.Helper()
	dataKey := pattern(32, 0x5A)
	for _, p := range [][2]*AES{{a, b}, {b, a}} {
		w, err := p[0].Wrap(ctx, dataKey, format.ContentAESGCMCommit)
		require.NoError(t, err)
		got, err := p[1].Unwrap(ctx, w, format.ContentAESGCMCommit)
		require.NoError(t, err)
		require.Equal(t, dataKey, got)
	}
}

// TestParseAESRawEndsInNewline: 32 raw bytes are the key, even when they
// end in what would be a newline in a text file.
func TestParseAESRawEndsInNewline(t *testing.T) {
	for _, tail := range []string{"\n", "\r\n", "\n\n", " \n"} {
		key := append(pattern(32-len(tail), 0xC0), tail...)
		k, err := ParseAES(key, nil)
		require.NoError(t, err, "%q", tail)
		requireSameAES(t, k, newAES(t, key, nil))
	}
	// Binary 32 bytes plus a newline are not a key file form.
	_, err := ParseAES(append(pattern(32, 0xC0), '\n'), nil)
	require.ErrorIs(t, err, ErrKeyFormat)
	require.Equal(t, aesWant+"33 bytes, 32 before the final newline", err.Error())
}

func TestParseAESRefuses(t *testing.T) {
	h := hex.EncodeToString(parseKey)
	std := base64.StdEncoding.EncodeToString(parseKey)
	unpadded := strings.TrimRight(std, "=")
	// The last character of the unpadded form carries 2 bits of padding;
	// strict decoding refuses them set.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", unpadded[42])
	require.Zero(t, last&3)
	nonCanonical := unpadded[:42] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last|1])
	i := strings.IndexAny(std, "+/")
	mixed := std[:i] + "-" + std[i+1:]
	j := strings.IndexAny(mixed, "+/")
	require.GreaterOrEqual(t, j, 0, "the mixed form keeps a standard-alphabet character")
	key16, key24 := parseKey[:16], parseKey[:24]

	cases := []struct {
		name, in, got string
	}{
		{"empty", "", "0 bytes"},
		{"newline", "\n", "1 bytes, 0 before the final newline"},
		{"31 raw", string(parseKey[:31]), "31 bytes"},
		{"33 raw", string(append(bytes.Clone(parseKey), 0xAA)), "33 bytes"},
		{"hex two newlines", h + "\n\n", "66 bytes, 65 before the final newline: whitespace other than one final newline"},

		{"hex space newline", h + " \n", "66 bytes, 65 before the final newline: whitespace other than one final newline"},
		{"hex tab", h + "\t", "65 bytes: whitespace other than one final newline"},
		{"leading space", " " + h, "65 bytes: whitespace other than one final newline"},
		{"inner space", h[:32] + " " + h[32:], "65 bytes: whitespace other than one final newline"},
		{"inner space for a digit", h[:32] + " " + h[33:], "64 bytes: whitespace other than one final newline"},
		{"base64 inner newline", std[:20] + "\n" + std[21:], "44 bytes: whitespace other than one final newline"},
		{"base64 inner CRLF", unpadded[:20] + "\r\n" + unpadded[21:], "44 bytes: whitespace other than one final newline"},
		{"odd hex", h[:63], "63 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"hex of 31 bytes", h[:62], "62 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"hex of 33 bytes", h + "aa", "66 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"0x hex", "0x" + h, "66 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"not hex", h[:63] + "g", "64 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"hex of 15 bytes", hex.EncodeToString(key16[:15]), "30 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"hex of 20 bytes newline", hex.EncodeToString(key24[:20]) + "\n", "41 bytes, 40 before the final newline: not hex or base64 of 16, 24 or 32 bytes"},
		{"base64 of 20 bytes", base64.StdEncoding.EncodeToString(key24[:20]), "28 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"base64 of 31 bytes", base64.StdEncoding.EncodeToString(parseKey[:31]), "44 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"base64 of 33 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(parseKey), 1)), "44 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"base64 of 33 bytes unpadded", base64.RawStdEncoding.EncodeToString(append(bytes.Clone(parseKey), 1)), "44 bytes: not hex or base64 of 16, 24 or 32 bytes"},

		{"mixed alphabets", mixed, "44 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"padding on 43", unpadded[:42] + "=", "43 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"non-canonical base64", nonCanonical, "43 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"garbage", "zz!!qq--not-a-key--qq!!zz", "25 bytes"},
		{"garbage 44", strings.Repeat("%", 44), "44 bytes"},
		{"garbage 32", strings.Repeat("=", 32), "32 bytes: not hex or base64 of 16, 24 or 32 bytes"},
		{"BOM hex", "\ufeff" + h, "67 bytes"},
		{"PEM", "-----BEGIN AES KEY-----\n" + std + "\n-----END AES KEY-----\n", "91 bytes, 90 before the final newline: whitespace other than one final newline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			k, err := ParseAES(in, nil)
			require.Nil(t, k)
			require.ErrorIs(t, err, ErrKeyFormat)
			require.Equal(t, aesWant+tc.got, err.Error())
			requireNoInput(t, err, parseKey, in)
		})
	}
}

// requireNoInput checks that err's message contains neither key in any
// encoding nor any 12 bytes of in, nor of in's hex.
func requireNoInput(t testing.TB, err error, key, in []byte) {
	t.Helper()
	msg := err.Error()
	for _, s := range secretForms(key) {
		require.NotContains(t, msg, s)
	}
	const w = 12
	for _, s := range []string{string(in), hex.EncodeToString(in)} {
		for i := 0; i+w <= len(s); i++ {
			require.NotContains(t, msg, s[i:i+w])
		}
	}
}

// pemOf encodes der as one PEM block.
func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		require.NoError(t, err)
		return v
	}
}

func TestParseRSA(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	ref := newRSA(t, a, nil)
	pkcs8 := pemOf("PRIVATE KEY", must[[]byte](t)(x509.MarshalPKCS8PrivateKey(a)))
	pkix := pemOf("PUBLIC KEY", must[[]byte](t)(x509.MarshalPKIXPublicKey(&a.PublicKey)))
	desc := map[string]string{"kid": "rsa"}
	cases := []struct {
		name    string
		in      []byte
		private bool
	}{
		{"PKCS #1 private", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(a)), true},
		{"PKCS #8 private", pkcs8, true},
		{"PKCS #8 private CRLF", bytes.ReplaceAll(pkcs8, []byte("\n"), []byte("\r\n")), true},
		{"PKCS #8 private trailing whitespace", append(bytes.Clone(pkcs8), "\n\n \t\r\n"...), true},
		{"PKCS #8 private no final newline", bytes.TrimSuffix(pkcs8, []byte("\n")), true},
		{"PKIX public", pkix, false},
		{"PKCS #1 public", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&a.PublicKey)), false},
	}
	dataKey := pattern(32, 0x77)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			orig := bytes.Clone(tc.in)
			k, err := ParseRSA(tc.in, desc)
			require.NoError(t, err)
			require.NotNil(t, k)
			require.Equal(t, orig, tc.in, "ParseRSA must not modify its input")
			require.Equal(t, desc, k.Description())

			w, err := k.Wrap(ctx, dataKey, format.ContentAESGCM)
			require.NoError(t, err)
			got, err := ref.Unwrap(ctx, w, format.ContentAESGCM)
			require.NoError(t, err)
			require.Equal(t, dataKey, got)

			w, err = ref.Wrap(ctx, dataKey, format.ContentAESGCM)
			require.NoError(t, err)
			got, err = k.Unwrap(ctx, w, format.ContentAESGCM)
			if !tc.private {
				require.Nil(t, got)
				requireSentinel(t, err, envelope.ErrWrapOnly)
				return
			}
			require.NoError(t, err)
			require.Equal(t, dataKey, got)
		})
	}
}

// TestParseRSAWeakKeys: ParseRSA keeps NewRSA's and NewRSAPublic's rule. A
// public key under 2048 bits can only wrap, so it is refused; a private one
// can still unwrap old objects, so it parses, and its Wrap refuses.
func TestParseRSAWeakKeys(t *testing.T) {
	_, _, small := testRSAKeys(t)
	for _, in := range [][]byte{
		pemOf("PUBLIC KEY", must[[]byte](t)(x509.MarshalPKIXPublicKey(&small.PublicKey))),
		pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&small.PublicKey)),
	} {
		k, err := ParseRSA(in, nil)
		require.Nil(t, k)
		require.ErrorIs(t, err, ErrWeakKey)
		require.Equal(t, "keyring: RSA public key of 1024 bits: RSA key too small to wrap: at least 2048 bits required", err.Error())
	}

	old := newRSA(t, small, nil)
	dataKey := pattern(32, 0x31)
	w := &envelope.WrappedKey{Algorithm: format.WrapRSAOAEPSHA1, Ciphertext: oaepSHA1(t, &small.PublicKey, packOAEP(dataKey, format.ContentAESGCM))}
	for _, in := range [][]byte{
		pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)),
		pemOf("PRIVATE KEY", must[[]byte](t)(x509.MarshalPKCS8PrivateKey(small))),
	} {
		k, err := ParseRSA(in, nil)
		require.NoError(t, err)
		got, err := k.Unwrap(ctx, w, format.ContentAESGCM)
		require.NoError(t, err)
		require.Equal(t, dataKey, got)
		_, err = k.Wrap(ctx, dataKey, format.ContentAESGCM)
		require.ErrorIs(t, err, ErrWeakKey)
		_, err = old.Wrap(ctx, dataKey, format.ContentAESGCM)
		require.ErrorIs(t, err, ErrWeakKey)
	}
}

const rsaWant = `keyring: RSA key not in an accepted format: want one PEM block, "RSA PRIVATE KEY", "PRIVATE KEY", "RSA PUBLIC KEY" or "PUBLIC KEY" of an RSA key; got `

func TestParseRSARefuses(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	pkcs1 := pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(a))
	pkcs8DER := must[[]byte](t)(x509.MarshalPKCS8PrivateKey(a))
	pkcs8 := pemOf("PRIVATE KEY", pkcs8DER)
	pkix := pemOf("PUBLIC KEY", must[[]byte](t)(x509.MarshalPKIXPublicKey(&a.PublicKey)))
	ec := must[*ecdsa.PrivateKey](t)(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{
		"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,000102030405060708090A0B0C0D0E0F",
	}, Bytes: pattern(1200, 3)})
	commented := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Comment": "a key"}, Bytes: pkcs8DER})
	end := bytes.Index(pkcs8, []byte("-----END"))

	cases := []struct {
		name string
		in   []byte
		got  string
	}{
		{"empty", nil, "0 bytes that do not start with one"},
		{"garbage", []byte("zz!!qq--not-a-key--qq!!zz"), "25 bytes that do not start with one"},
		{"AES hex", []byte(hex.EncodeToString(parseKey) + "\n"), "65 bytes that do not start with one"},
		{"DER", pkcs8DER, fmt.Sprintf("%d bytes that do not start with one", len(pkcs8DER))},
		{"leading newline", append([]byte("\n"), pkcs8...), fmt.Sprintf("%d bytes that do not start with one", 1+len(pkcs8))},
		{"leading text", append([]byte("Bag Attributes\n"), pkcs8...), fmt.Sprintf("%d bytes that do not start with one", 15+len(pkcs8))},
		{"two blocks", append(bytes.Clone(pkcs8), pkix...), "2 PEM blocks"},
		{"same block twice", append(bytes.Clone(pkcs1), pkcs1...), "2 PEM blocks"},
		{"trailing garbage", append(bytes.Clone(pkcs8), "junk\n"...), `data after the PEM block "PRIVATE KEY"`},
		{"trailing NUL", append(bytes.Clone(pkcs8), 0), `data after the PEM block "PRIVATE KEY"`},
		{"no END", pkcs8[:end], "a malformed PEM block"},
		{"bad base64", bytes.Replace(pkcs8, []byte("MII"), []byte("M!I"), 1), "a malformed PEM block"},
		{"encrypted", encrypted, `the encrypted PEM block "RSA PRIVATE KEY": decrypt the key first`},
		{"PKCS #8 encrypted", pemOf("ENCRYPTED PRIVATE KEY", pattern(1300, 9)), `the encrypted PEM block "ENCRYPTED PRIVATE KEY": decrypt the key first`},
		{"headers", commented, `the PEM block "PRIVATE KEY" with headers`},
		{"EC SEC1", pemOf("EC PRIVATE KEY", must[[]byte](t)(x509.MarshalECPrivateKey(ec))), `the PEM block "EC PRIVATE KEY"`},
		{"EC PKCS #8", pemOf("PRIVATE KEY", must[[]byte](t)(x509.MarshalPKCS8PrivateKey(ec))), `the PEM block "PRIVATE KEY" with an ECDSA key`},
		{"EC PKIX", pemOf("PUBLIC KEY", must[[]byte](t)(x509.MarshalPKIXPublicKey(&ec.PublicKey))), `the PEM block "PUBLIC KEY" with an ECDSA key`},
		{"Ed25519 PKCS #8", pemOf("PRIVATE KEY", must[[]byte](t)(x509.MarshalPKCS8PrivateKey(ed))), `the PEM block "PRIVATE KEY" with an Ed25519 key`},
		{"X25519 PKIX", pemOf("PUBLIC KEY", must[[]byte](t)(x509.MarshalPKIXPublicKey(must[*ecdh.PrivateKey](t)(ecdh.X25519().GenerateKey(rand.Reader)).PublicKey()))), `the PEM block "PUBLIC KEY" with an X25519 (ECDH) key`},
		{"PKCS #8 as PKCS #1", pemOf("RSA PRIVATE KEY", pkcs8DER), `the PEM block "RSA PRIVATE KEY" with no valid PKCS #1 RSA private key`},
		{"PKCS #1 as PKCS #8", pemOf("PRIVATE KEY", x509.MarshalPKCS1PrivateKey(a)), `the PEM block "PRIVATE KEY" with no valid PKCS #8 private key`},
		{"PKCS #1 public as PKIX", pemOf("PUBLIC KEY", x509.MarshalPKCS1PublicKey(&a.PublicKey)), `the PEM block "PUBLIC KEY" with no valid PKIX public key`},
		{"PKIX as PKCS #1 public", pemOf("RSA PUBLIC KEY", must[[]byte](t)(x509.MarshalPKIXPublicKey(&a.PublicKey))), `the PEM block "RSA PUBLIC KEY" with no valid PKCS #1 RSA public key`},
		{"truncated DER", pemOf("PRIVATE KEY", pkcs8DER[:600]), `the PEM block "PRIVATE KEY" with no valid PKCS #8 private key`},
		{"DER trailing data", pemOf("RSA PRIVATE KEY", append(x509.MarshalPKCS1PrivateKey(a), 0, 0)), `the PEM block "RSA PRIVATE KEY" with no valid PKCS #1 RSA private key`},
		{"certificate", pemOf("CERTIFICATE", pattern(300, 1)), `the PEM block "CERTIFICATE"`},
		{"lower-case type", pemOf("private key", pkcs8DER), `the PEM block "private key"`},
		{"long type", pemOf(strings.Repeat("K", 200), pkcs8DER), `the PEM block "` + strings.Repeat("K", 64) + `..."`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseRSA(tc.in, nil)
			require.Nil(t, k)
			require.ErrorIs(t, err, ErrKeyFormat)
			require.NotErrorIs(t, err, ErrWeakKey)
			require.Equal(t, rsaWant+tc.got, err.Error())
			requireNoPEMInput(t, err, a, tc.in)
		})
	}
}

// requireNoPEMInput checks that err's message holds no private exponent of
// a and no 16 characters of in's base64 lines.
func requireNoPEMInput(t testing.TB, err error, a *rsa.PrivateKey, in []byte) {
	t.Helper()
	msg := err.Error()
	require.NotContains(t, msg, hex.EncodeToString(a.D.Bytes()[:16]))
	require.NotContains(t, msg, a.D.String()[:24])
	for line := range strings.Lines(string(in)) {
		if strings.HasPrefix(line, "-----") {
			continue
		}
		for i := 0; i+16 <= len(line); i++ {
			require.NotContains(t, msg, line[i:i+16])
		}
	}
}

func TestParseErrorsWrapOnlyKeyFormat(t *testing.T) {
	_, err := ParseAES(nil, nil)
	require.False(t, isSentinelError(err) || errors.Is(err, ErrWeakKey))
	_, err = ParseRSA(nil, nil)
	require.False(t, isSentinelError(err) || errors.Is(err, ErrWeakKey))
}

func FuzzParseAES(f *testing.F) {
	for _, in := range goodAESInputs(f) {
		f.Add(in)
	}
	h := hex.EncodeToString(parseKey)
	for _, s := range []string{"", "\n", h + "\n\n", h[:63] + "g", h[:32], h[:48], " " + h,
		base64.StdEncoding.EncodeToString(parseKey[:24]), base64.RawURLEncoding.EncodeToString(parseKey) + "="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		k, err := ParseAES(in, nil)
		if !bytes.Equal(orig, in) {
			t.Fatal("ParseAES modified its input")
		}
		if err == nil {
			if k == nil {
				t.Fatal("nil keyring without an error")
			}
			return
		}
		if k != nil || !errors.Is(err, ErrKeyFormat) || !strings.HasPrefix(err.Error(), aesWant) {
			t.Fatalf("keyring %v, error %v", k, err)
		}
		if len(in) >= 4 && strings.Contains(err.Error(), hex.EncodeToString(in)) ||
			len(in) >= 24 && strings.Contains(err.Error(), string(in)) {
			t.Fatalf("error %q contains the input", err)
		}
	})
}

func FuzzParseRSA(f *testing.F) {
	a, _, small := testRSAKeys(f)
	pkcs8 := must[[]byte](f)(x509.MarshalPKCS8PrivateKey(a))
	for _, in := range [][]byte{
		pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(a)),
		pemOf("PRIVATE KEY", pkcs8),
		pemOf("PUBLIC KEY", must[[]byte](f)(x509.MarshalPKIXPublicKey(&a.PublicKey))),
		pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&a.PublicKey)),
		pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&small.PublicKey)),
		pemOf("RSA PRIVATE KEY", pkcs8),
		pemOf("ENCRYPTED PRIVATE KEY", pattern(100, 0)),
		append(pemOf("PRIVATE KEY", pkcs8), "x"...),
		[]byte("-----BEGIN "), []byte("-----BEGIN X-----\n-----END X-----\n"), nil,
	} {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		k, err := ParseRSA(in, nil)
		if !bytes.Equal(orig, in) {
			t.Fatal("ParseRSA modified its input")
		}
		if err == nil {
			if k == nil {
				t.Fatal("nil keyring without an error")
			}
			return
		}
		if k != nil || !strings.HasPrefix(err.Error(), "keyring: ") {
			t.Fatalf("keyring %v, error %v", k, err)
		}
		if !errors.Is(err, ErrKeyFormat) && !errors.Is(err, ErrWeakKey) && !strings.HasPrefix(err.Error(), "keyring: invalid RSA") {
			t.Fatalf("unexpected error %v", err)
		}
		if len(in) >= 4 && strings.Contains(err.Error(), hex.EncodeToString(in)) ||
			len(in) >= 24 && strings.Contains(err.Error(), string(in)) {
			t.Fatalf("error %q contains the input", err)
		}
	})
}
