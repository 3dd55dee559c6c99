package keyring

import (
	"crypto"
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// RFC 3394 section 4 test vectors.
var rfc3394Vectors = []struct {
	name, kek, keyData, wrapped string
}{
	{"4.1", "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
		"1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
	{"4.2", "000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF",
		"96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"},
	{"4.3", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF",
		"64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"},
	{"4.4", "000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF0001020304050607",
		"031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"},
	{"4.5", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF0001020304050607",
		"A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"},
	{"4.6", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
		"28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
}

func aesWrapKey(alg string, ct []byte) *envelope.WrappedKey {
	return &envelope.WrappedKey{Algorithm: alg, Ciphertext: ct}
}

func TestLegacyAESWrapRFC3394(t *testing.T) {
	for _, v := range rfc3394Vectors {
		t.Run(v.name, func(t *testing.T) {
			k := newAES(t, mustHex(t, v.kek), nil)
			wrapped := mustHex(t, v.wrapped)
			// The content algorithm is not bound by legacy wraps: any works.
			for _, ca := range []string{format.ContentAESCBC, format.ContentAESGCM, ""} {
				got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyAESWrap, wrapped), ca)
				require.NoError(t, err)
				require.Equal(t, mustHex(t, v.keyData), got)
			}

			flipEveryBit(wrapped, func(name string, c []byte) {
				got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyAESWrap, c), "")
				require.Nil(t, got, name)
				requireSentinel(t, err, envelope.ErrAuthentication)
			})
		})
	}
}

func TestLegacyAESWrapRejects(t *testing.T) {
	v := rfc3394Vectors[5]
	wrapped := mustHex(t, v.wrapped)
	wrong := newAES(t, pattern(32, 0x77), nil)
	_, err := wrong.Unwrap(ctx, aesWrapKey(format.WrapLegacyAESWrap, wrapped), "")
	requireSentinel(t, err, envelope.ErrAuthentication)
	require.Equal(t, "keyring: unwrap AESWrap: s3envelope: authentication failed", err.Error())

	k := newAES(t, mustHex(t, v.kek), nil)
	for _, n := range []int{0, 8, 16, 20, 23, 25, 39, 41, 48, 56} {
		c := make([]byte, n)
		copy(c, wrapped)
		got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyAESWrap, c), "")
		require.Nil(t, got, "len %d", n)
		requireSentinel(t, err, envelope.ErrAuthentication)
	}
}

// ecbPKCS5 encrypts b with AES/ECB/PKCS5Padding, one block at a time, for
// the legacy "AES" wrap. pad overrides the padding when not nil.
func ecbPKCS5(t testing.TB, master, b []byte, pad []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(master)
	require.NoError(t, err)
	if pad == nil {
		n := 16 - len(b)%16
		for range n {
			pad = append(pad, byte(n))
		}
	}
	pt := append(append([]byte(nil), b...), pad...)
	require.Zero(t, len(pt)%16)
	ct := make([]byte, len(pt))
	for off := 0; off < len(pt); off += 16 {
		block.Encrypt(ct[off:off+16], pt[off:off+16])
	}
	return ct
}

func TestLegacyAESECB(t *testing.T) {
	for _, mk := range keySizes {
		master := pattern(mk, 0x10)
		k := newAES(t, master, nil)
		for _, dk := range keySizes {
			t.Run(fmt.Sprintf("master%d/data%d", mk, dk), func(t *testing.T) {
				dataKey := pattern(dk, 0x90)
				ct := ecbPKCS5(t, master, dataKey, nil)
				got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyAES, ct), format.ContentAESCBC)
				require.NoError(t, err)
				require.Equal(t, dataKey, got)

				other := newAES(t, pattern(mk, 0x11), nil)
				got, err = other.Unwrap(ctx, aesWrapKey(format.WrapLegacyAES, ct), format.ContentAESCBC)
				if err == nil {
					// Unauthenticated: a wrong key only fails when the
					// padding does, which is overwhelmingly likely.
					require.NotEqual(t, dataKey, got)
				} else {
					requireSentinel(t, err, envelope.ErrAuthentication)
				}
			})
		}
	}
}

func TestLegacyAESECBBadPadding(t *testing.T) {
	master := pattern(32, 0x10)
	k := newAES(t, master, nil)
	rep := func(b byte, n int) []byte {
		out := make([]byte, n)
		for i := range out {
			out[i] = b
		}
		return out
	}
	cases := []struct {
		name    string
		body    []byte
		pad     []byte
		allowed bool
	}{
		{"zero pad byte", pattern(31, 1), []byte{0}, false},
		{"pad 17", pattern(16, 1), rep(17, 16), false},
		{"pad 255", pattern(16, 1), rep(255, 16), false},
		{"inconsistent", pattern(24, 1), []byte{8, 8, 8, 8, 8, 8, 7, 8}, false},
		{"inconsistent first", pattern(32, 1), append([]byte{15}, rep(16, 15)...), false},
		{"key length 31", pattern(31, 1), []byte{1}, false},
		{"key length 20", pattern(20, 1), rep(12, 12), false},
		{"key length 40", pattern(40, 1), rep(8, 8), false},
		{"key length 8", pattern(8, 1), rep(24, 24), false},
		{"valid 24", pattern(24, 1), rep(8, 8), true},
	}
	for _, c := range cases {
		ct := ecbPKCS5(t, master, c.body, c.pad)
		got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyAES, ct), "")
		if c.allowed {
			require.NoError(t, err, c.name)
			require.Equal(t, c.body, got)
			continue
		}
		require.Nil(t, got, c.name)
		requireSentinel(t, err, envelope.ErrAuthentication)
		require.Equal(t, "keyring: unwrap AES: s3envelope: authentication failed", err.Error())
	}
	for _, n := range []int{0, 15, 16, 31, 33, 47, 49, 64} {
		got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyAES, make([]byte, n)), "")
		require.Nil(t, got, "len %d", n)
		requireSentinel(t, err, envelope.ErrAuthentication)
	}
}

func TestLegacyRSAOAEPSHA256(t *testing.T) {
	a, b, small := testRSAKeys(t)
	for _, priv := range []*rsa.PrivateKey{a, small} {
		k := newRSA(t, priv, nil)
		for _, dk := range keySizes {
			dataKey := pattern(dk, 0x33)
			// Java's default provider: SHA-256, MGF1-SHA-1.
			sunJCE, err := rsa.EncryptOAEPWithOptions(rand.Reader, &priv.PublicKey, dataKey,
				&rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1})
			require.NoError(t, err)
			// Bouncy Castle: SHA-256 for both.
			bc, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, dataKey, nil)
			require.NoError(t, err)
			for _, ct := range [][]byte{sunJCE, bc} {
				got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyRSAOAEPSHA256, ct), format.ContentAESCBC)
				require.NoError(t, err)
				require.Equal(t, dataKey, got)

				c := append([]byte(nil), ct...)
				c[len(c)/2] ^= 0x04
				got, err = k.Unwrap(ctx, aesWrapKey(format.WrapLegacyRSAOAEPSHA256, c), "")
				require.Nil(t, got)
				requireSentinel(t, err, envelope.ErrAuthentication)

				// Not under another key, nor as another algorithm.
				_, err = newRSA(t, b, nil).Unwrap(ctx, aesWrapKey(format.WrapLegacyRSAOAEPSHA256, ct), "")
				requireSentinel(t, err, envelope.ErrAuthentication)
				_, err = k.Unwrap(ctx, aesWrapKey(format.WrapRSAOAEPSHA1, ct), format.ContentAESGCM)
				requireSentinel(t, err, envelope.ErrAuthentication)
			}
		}
		// A plaintext that is not an AES key.
		for _, n := range []int{0, 1, 15, 20, 33, 40} {
			ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, pattern(n, 1), nil)
			require.NoError(t, err)
			got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyRSAOAEPSHA256, ct), "")
			require.Nil(t, got)
			requireSentinel(t, err, envelope.ErrAuthentication)
		}
	}
}

func TestLegacyRSAPKCS1v15(t *testing.T) {
	a, b, small := testRSAKeys(t)
	for _, priv := range []*rsa.PrivateKey{a, small} {
		k := newRSA(t, priv, nil)
		for _, dk := range keySizes {
			dataKey := pattern(dk, 0x44)
			ct := pkcs1v15Encrypt(t, &priv.PublicKey, dataKey)
			got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyRSA, ct), format.ContentAESCBC)
			require.NoError(t, err)
			require.Equal(t, dataKey, got)

			_, err = newRSA(t, b, nil).Unwrap(ctx, aesWrapKey(format.WrapLegacyRSA, ct), "")
			requireSentinel(t, err, envelope.ErrAuthentication)
			_, err = k.Unwrap(ctx, aesWrapKey(format.WrapLegacyRSAOAEPSHA256, ct), "")
			requireSentinel(t, err, envelope.ErrAuthentication)
		}
		for _, n := range []int{0, 1, 15, 20, 33, 40} {
			ct := pkcs1v15Encrypt(t, &priv.PublicKey, pattern(n, 1))
			got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyRSA, ct), "")
			require.Nil(t, got)
			requireSentinel(t, err, envelope.ErrAuthentication)
			require.Equal(t, "keyring: unwrap RSA: s3envelope: authentication failed", err.Error())
		}
		for _, c := range [][]byte{nil, {1, 2, 3}, make([]byte, priv.Size()), make([]byte, priv.Size()+1)} {
			got, err := k.Unwrap(ctx, aesWrapKey(format.WrapLegacyRSA, c), "")
			require.Nil(t, got)
			requireSentinel(t, err, envelope.ErrAuthentication)
		}
	}
}
