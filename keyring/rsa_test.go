package keyring

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// packOAEP builds the RSA-OAEP-SHA1 plaintext keyLen || key || contentAlg.
func packOAEP(key []byte, contentAlg string) []byte {
	return append(append([]byte{byte(len(key))}, key...), contentAlg...)
}

func oaepSHA1(t testing.TB, pub *rsa.PublicKey, msg []byte) []byte {
	t.Helper()
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, msg, nil)
	require.NoError(t, err)
	return ct
}

func rsaWrapped(alg string, ct []byte) *envelope.WrappedKey {
	return &envelope.WrappedKey{Algorithm: alg, Ciphertext: ct}
}

func TestRSARoundTrip(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	desc := map[string]string{"kid": "rsa-a"}
	k := newRSA(t, a, desc)
	for _, dk := range keySizes {
		for _, alg := range contentAlgs {
			t.Run(fmt.Sprintf("data%d/%s", dk, alg), func(t *testing.T) {
				dataKey := pattern(dk, 0x21)
				w, err := k.Wrap(ctx, dataKey, alg)
				require.NoError(t, err)
				require.Equal(t, format.WrapRSAOAEPSHA1, w.Algorithm)
				require.Len(t, w.Ciphertext, a.Size())
				require.Equal(t, desc, w.Description)

				// The wire layout, checked with plain crypto/rsa.
				p, err := rsa.DecryptOAEP(sha1.New(), nil, a, w.Ciphertext, nil)
				require.NoError(t, err)
				require.Equal(t, packOAEP(dataKey, alg), p)

				got, err := k.Unwrap(ctx, w, alg)
				require.NoError(t, err)
				require.Equal(t, dataKey, got)
			})
		}
	}
}

func TestRSAUnwrapsStdlibVector(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	k := newRSA(t, a, nil)
	for _, alg := range contentAlgs {
		dataKey := pattern(32, 0x99)
		ct := oaepSHA1(t, &a.PublicKey, packOAEP(dataKey, alg))
		got, err := k.Unwrap(ctx, rsaWrapped(format.WrapRSAOAEPSHA1, ct), alg)
		require.NoError(t, err)
		require.Equal(t, dataKey, got)
	}
}

func TestRSAContentAlgBinding(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	k := newRSA(t, a, nil)
	for _, p := range [][2]string{
		{format.ContentAESGCM, format.ContentAESGCMCommit},
		{format.ContentAESGCMCommit, format.ContentAESGCM},
		{format.ContentAESGCM, "AES/GCM/NoPaddinG"},
		{format.ContentAESGCM, "AES/GCM/NoPadding "},
		{format.ContentAESGCM, format.ContentAESCBC},
		{format.ContentAESGCMCommit, "11"},
	} {
		w, err := k.Wrap(ctx, pattern(32, 1), p[0])
		require.NoError(t, err)
		got, err := k.Unwrap(ctx, w, p[1])
		require.Nil(t, got)
		requireSentinel(t, err, envelope.ErrAuthentication)
		require.Equal(t, "keyring: unwrap RSA-OAEP-SHA1: s3envelope: authentication failed: the master key described {} does not open this data key (another key under that description, or a damaged wrapped key)", err.Error())
	}
}

func TestRSAMalformedPackedKey(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	k := newRSA(t, a, nil)
	ca := format.ContentAESGCM
	k32 := pattern(32, 5)
	cases := map[string][]byte{
		"empty":              {},
		"length only":        {32},
		"no content alg":     packOAEP(k32, ""),
		"keyLen 0":           append([]byte{0}, ca...),
		"keyLen 15":          append(append([]byte{15}, k32[:15]...), ca...),
		"keyLen 33":          append(append([]byte{33}, pattern(33, 1)...), ca...),
		"keyLen 255":         append(append([]byte{255}, k32...), ca...),
		"keyLen says 16":     append(append([]byte{16}, k32...), ca...),
		"keyLen says 24":     append(append([]byte{24}, k32...), ca...),
		"trailing byte":      append(packOAEP(k32, ca), 0),
		"truncated alg":      packOAEP(k32, ca[:len(ca)-1]),
		"alg prefix only":    packOAEP(k32, "AES"),
		"data key too short": append(append([]byte{32}, k32[:31]...), ca...),
	}
	for name, p := range cases {
		ct := oaepSHA1(t, &a.PublicKey, p)
		got, err := k.Unwrap(ctx, rsaWrapped(format.WrapRSAOAEPSHA1, ct), ca)
		require.Nil(t, got, name)
		requireSentinel(t, err, envelope.ErrAuthentication)
	}
	for _, c := range [][]byte{nil, {}, {1}, make([]byte, a.Size()), make([]byte, a.Size()-1), make([]byte, a.Size()+1)} {
		got, err := k.Unwrap(ctx, rsaWrapped(format.WrapRSAOAEPSHA1, c), ca)
		require.Nil(t, got)
		requireSentinel(t, err, envelope.ErrAuthentication)
	}
	// A ciphertext at least as large as the modulus.
	got, err := k.Unwrap(ctx, rsaWrapped(format.WrapRSAOAEPSHA1, a.N.Bytes()), ca)
	require.Nil(t, got)
	requireSentinel(t, err, envelope.ErrAuthentication)
}

// TestRSAEveryBitFlipFails flips each of the 2048 bits of one wrapped key
// (every 16th bit with -short: RSA decryption is slow under -race).
func TestRSAEveryBitFlipFails(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	k := newRSA(t, a, nil)
	alg := format.ContentAESGCMCommit
	w, err := k.Wrap(ctx, pattern(32, 2), alg)
	require.NoError(t, err)
	var flips [][]byte
	flipEveryBit(w.Ciphertext, func(_ string, c []byte) { flips = append(flips, c) })
	require.Len(t, flips, 2048)
	step := 1
	if testing.Short() {
		step = 16
	}
	// Spread the RSA decryptions over the CPUs.
	workers := max(1, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := i * step; j < len(flips); j += workers * step {
				got, err := k.Unwrap(ctx, rsaWrapped(w.Algorithm, flips[j]), alg)
				if got != nil || !errors.Is(err, envelope.ErrAuthentication) || !isSentinelError(err) {
					t.Errorf("flip %d: got key %v, err %v", j, got != nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRSAWrongMasterKey(t *testing.T) {
	a, b, _ := testRSAKeys(t)
	ka, kb := newRSA(t, a, nil), newRSA(t, b, nil)
	for _, alg := range contentAlgs {
		w, err := ka.Wrap(ctx, pattern(32, 3), alg)
		require.NoError(t, err)
		got, err := kb.Unwrap(ctx, w, alg)
		require.Nil(t, got)
		requireSentinel(t, err, envelope.ErrAuthentication)
	}
}

func TestRSAPublicOnly(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	pub, err := NewRSAPublic(&a.PublicKey, map[string]string{"kid": "pub"})
	require.NoError(t, err)
	priv := newRSA(t, a, nil)
	for _, alg := range contentAlgs {
		w, err := pub.Wrap(ctx, pattern(24, 4), alg)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"kid": "pub"}, w.Description)

		got, err := pub.Unwrap(ctx, w, alg)
		require.Nil(t, got)
		requireSentinel(t, err, envelope.ErrWrapOnly)
		require.Equal(t, "keyring: unwrap RSA-OAEP-SHA1: s3envelope: master key can only wrap", err.Error())

		got, err = priv.Unwrap(ctx, w, alg)
		require.NoError(t, err)
		require.Equal(t, pattern(24, 4), got)
	}
	for _, w := range []*envelope.WrappedKey{nil, rsaWrapped(format.WrapLegacyRSA, []byte{1}), rsaWrapped("bogus", nil)} {
		_, err := pub.Unwrap(ctx, w, format.ContentAESGCM)
		requireSentinel(t, err, envelope.ErrWrapOnly)
	}
}

func TestRSASmallKeys(t *testing.T) {
	_, _, small := testRSAKeys(t)
	_, err := NewRSAPublic(&small.PublicKey, nil)
	require.ErrorIs(t, err, ErrWeakKey)
	require.False(t, isSentinelError(err))
	require.Contains(t, err.Error(), "1024 bits")

	k := newRSA(t, small, nil)
	w, err := k.Wrap(ctx, pattern(32, 1), format.ContentAESGCM)
	require.Nil(t, w)
	require.ErrorIs(t, err, ErrWeakKey)
	require.False(t, isSentinelError(err))
	require.Equal(t, "keyring: wrap RSA-OAEP-SHA1: 1024-bit key: RSA key too small to wrap: at least 2048 bits required", err.Error())

	// Old objects wrapped under a small key still unwrap.
	for _, alg := range contentAlgs {
		ct := oaepSHA1(t, &small.PublicKey, packOAEP(pattern(32, 8), alg))
		got, err := k.Unwrap(ctx, rsaWrapped(format.WrapRSAOAEPSHA1, ct), alg)
		require.NoError(t, err)
		require.Equal(t, pattern(32, 8), got)
	}
}

func TestRSAWrapRejects(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	k := newRSA(t, a, nil)
	for _, n := range []int{0, 15, 17, 31, 33, 200} {
		w, err := k.Wrap(ctx, pattern(n, 1), format.ContentAESGCM)
		require.Nil(t, w)
		require.ErrorIs(t, err, errDataKeySize)
		require.False(t, isSentinelError(err))
	}
	for _, alg := range []string{"", format.ContentAESCBC, "116", strings.Repeat("A", 300)} {
		w, err := k.Wrap(ctx, pattern(32, 1), alg)
		require.Nil(t, w)
		requireSentinel(t, err, envelope.ErrUnsupported)
	}
}

func TestRSAUnwrapUnsupported(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	k := newRSA(t, a, nil)
	w, err := k.Wrap(ctx, pattern(32, 1), format.ContentAESGCM)
	require.NoError(t, err)
	for _, alg := range []string{
		format.WrapAESGCM, format.WrapLegacyAESWrap, format.WrapLegacyAES,
		format.WrapKMSContext, format.WrapLegacyKMS, "", "rsa-oaep-sha1", "RSA/ECB/PKCS1Padding",
	} {
		got, err := k.Unwrap(ctx, rsaWrapped(alg, w.Ciphertext), format.ContentAESGCM)
		require.Nil(t, got)
		requireSentinel(t, err, envelope.ErrUnsupported)
	}
	_, err = k.Unwrap(ctx, w, "")
	requireSentinel(t, err, envelope.ErrUnsupported)
	_, err = k.Unwrap(ctx, nil, format.ContentAESGCM)
	requireSentinel(t, err, envelope.ErrMalformed)
}

func TestNewRSAValidation(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	_, err := NewRSA(nil, nil)
	require.Error(t, err)
	_, err = NewRSA(&rsa.PrivateKey{}, nil)
	require.Error(t, err)
	_, err = NewRSAPublic(nil, nil)
	require.Error(t, err)
	_, err = NewRSAPublic(&rsa.PublicKey{}, nil)
	require.Error(t, err)
	_, err = NewRSAPublic(&rsa.PublicKey{N: a.N, E: 4}, nil)
	require.Error(t, err)

	bad := &rsa.PrivateKey{PublicKey: a.PublicKey, D: new(big.Int).Add(a.D, big.NewInt(2)), Primes: a.Primes}
	_, err = NewRSA(bad, nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), hex.EncodeToString(a.D.Bytes()[:8]))

	// NewRSA does not modify the caller's key.
	bare := &rsa.PrivateKey{PublicKey: a.PublicKey, D: a.D, Primes: a.Primes}
	k, err := NewRSA(bare, nil)
	require.NoError(t, err)
	require.Nil(t, bare.Precomputed.Dp)
	w, err := k.Wrap(ctx, pattern(32, 1), format.ContentAESGCM)
	require.NoError(t, err)
	got, err := k.Unwrap(ctx, w, format.ContentAESGCM)
	require.NoError(t, err)
	require.Equal(t, pattern(32, 1), got)
}

func TestRSADescriptionIsCopied(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	desc := map[string]string{"kid": "one"}
	k := newRSA(t, a, desc)
	pub, err := NewRSAPublic(&a.PublicKey, desc)
	require.NoError(t, err)
	desc["kid"] = "two"
	for _, r := range []*RSA{k, pub} {
		require.Equal(t, map[string]string{"kid": "one"}, r.Description())
		r.Description()["kid"] = "three"
		require.Equal(t, map[string]string{"kid": "one"}, r.Description())
		w, err := r.Wrap(ctx, pattern(32, 1), format.ContentAESGCM)
		require.NoError(t, err)
		w.Description["kid"] = "four"
		require.Equal(t, map[string]string{"kid": "one"}, r.Description())
	}
	empty := newRSA(t, a, nil)
	require.NotNil(t, empty.Description())
	require.Empty(t, empty.Description())
}

func TestRSAPrintsNoKey(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	k := newRSA(t, a, nil)
	d := strings.ToLower(hex.EncodeToString(a.D.Bytes()[:16]))
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		s := strings.ToLower(fmt.Sprintf(f, k))
		require.NotContains(t, s, d, f)
		require.NotContains(t, s, a.D.String()[:20], f)
	}
}
