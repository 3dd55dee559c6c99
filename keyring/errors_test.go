package keyring

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/internal/format"
)

// secretForms returns the ways a secret could appear in a message.
func secretForms(secret []byte) []string {
	var out []string
	for _, s := range [][]byte{secret, secret[:8], secret[len(secret)-8:]} {
		h := hex.EncodeToString(s)
		out = append(out, h, strings.ToUpper(h), string(s), base64.StdEncoding.EncodeToString(s),
			strings.Trim(fmt.Sprint(s), "[]")) // decimal, as %v prints a []byte
	}
	return out
}

// TestErrorsCarryNoKeyMaterial drives every error path with recognisable
// master and data keys and checks that no message contains them in any
// encoding, nor the wrapped bytes.
func TestErrorsCarryNoKeyMaterial(t *testing.T) {
	master := pattern(32, 0xB0)
	dataKey := pattern(32, 0xD0)
	a, _, small := testRSAKeys(t)

	var errs []error
	add := func(err error) {
		t.Helper()
		require.Error(t, err)
		errs = append(errs, err)
	}

	// Construction.
	_, err := NewAES(master[:31], nil)
	add(err)
	_, err = NewAES(append(append([]byte(nil), master...), dataKey...), nil)
	add(err)

	k := newAES(t, master, nil)
	// Wrap.
	_, err = k.Wrap(ctx, dataKey[:31], format.ContentAESGCM)
	add(err)
	_, err = k.Wrap(ctx, append(append([]byte(nil), dataKey...), master...), format.ContentAESGCM)
	add(err)
	_, err = k.Wrap(ctx, dataKey, format.ContentAESCBC)
	add(err)

	// Unwrap, every algorithm; the "wrapped" bytes contain both secrets.
	both := append(append([]byte(nil), master...), dataKey...)
	w, err := k.Wrap(ctx, dataKey, format.ContentAESGCM)
	require.NoError(t, err)
	for _, alg := range []string{format.WrapAESGCM, format.WrapLegacyAESWrap, format.WrapLegacyAES, format.WrapRSAOAEPSHA1, "x"} {
		for _, ct := range [][]byte{both, dataKey, master, dataKey[:24], w.Ciphertext[:59]} {
			_, err = k.Unwrap(ctx, rsaWrapped(alg, ct), format.ContentAESGCM)
			add(err)
		}
	}
	_, err = k.Unwrap(ctx, w, format.ContentAESGCMCommit)
	add(err)
	_, err = k.Unwrap(ctx, w, "")
	add(err)
	_, err = k.Unwrap(ctx, nil, format.ContentAESGCM)
	add(err)
	// ECB with bad padding over the data key, and AESWrap with a bad IV.
	_, err = k.Unwrap(ctx, rsaWrapped(format.WrapLegacyAES, ecbPKCS5(t, master, dataKey[:31], []byte{0})), "")
	add(err)

	// RSA.
	r := newRSA(t, a, nil)
	rs := newRSA(t, small, nil)
	pub, err := NewRSAPublic(&a.PublicKey, nil)
	require.NoError(t, err)
	_, err = NewRSAPublic(&small.PublicKey, nil)
	add(err)
	_, err = rs.Wrap(ctx, dataKey, format.ContentAESGCM)
	add(err)
	_, err = r.Wrap(ctx, both, format.ContentAESGCM)
	add(err)
	_, err = r.Wrap(ctx, dataKey, "AES/CTR/NoPadding")
	add(err)
	wrong := oaepSHA1(t, &a.PublicKey, packOAEP(dataKey, format.ContentAESGCMCommit))
	oaep256 := func(p []byte) []byte {
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &a.PublicKey, p, nil)
		require.NoError(t, err)
		return ct
	}
	pkcs1 := pkcs1v15Encrypt(t, &a.PublicKey, both)
	for _, alg := range []string{format.WrapRSAOAEPSHA1, format.WrapLegacyRSAOAEPSHA256, format.WrapLegacyRSA, format.WrapAESGCM} {
		for _, ct := range [][]byte{both, dataKey, wrong, oaep256(both), pkcs1} {
			_, err = r.Unwrap(ctx, rsaWrapped(alg, ct), format.ContentAESGCM)
			add(err)
			_, err = pub.Unwrap(ctx, rsaWrapped(alg, ct), format.ContentAESGCM)
			add(err)
		}
	}

	secrets := append(secretForms(master), secretForms(dataKey)...)
	secrets = append(secrets, hex.EncodeToString(a.D.Bytes()[:16]), a.D.String()[:24])
	for _, err := range errs {
		msg := err.Error()
		require.True(t, strings.HasPrefix(msg, "keyring: "), msg)
		for _, s := range secrets {
			require.NotContains(t, msg, s)
		}
	}
	t.Logf("checked %d error messages", len(errs))
}
