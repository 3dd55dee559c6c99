package keyring

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// fuzzAlgs are the wrap algorithms a fuzz input selects by index; indexes
// past the end use the fuzzed string instead.
var fuzzAlgs = []string{
	format.WrapAESGCM, format.WrapLegacyAESWrap, format.WrapLegacyAES,
	format.WrapRSAOAEPSHA1, format.WrapLegacyRSAOAEPSHA256, format.WrapLegacyRSA,
	format.WrapKMSContext,
}

func pickAlg(sel uint8, raw string) string {
	if int(sel) < len(fuzzAlgs) {
		return fuzzAlgs[sel]
	}
	return raw
}

// checkUnwrapResult fails unless exactly one of key and err is set, err
// wraps exactly one sentinel, and key is an AES key.
func checkUnwrapResult(t *testing.T, key []byte, err error) {
	t.Helper()
	if err != nil {
		if key != nil {
			t.Fatalf("key returned with error %v", err)
		}
		if !isSentinelError(err) {
			t.Fatalf("untyped error: %v", err)
		}
		return
	}
	if !validKeyLen(len(key)) {
		t.Fatalf("unwrapped key of %d bytes", len(key))
	}
}

func FuzzAESUnwrap(f *testing.F) {
	k, err := NewAES(pattern(32, 0), nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, ca := range contentAlgs {
		w, err := k.Wrap(ctx, pattern(32, 0x20), ca)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), "", w.Ciphertext, ca)
	}
	for _, v := range rfc3394Vectors {
		if len(v.kek) == 64 && v.kek[:2] == "00" {
			f.Add(uint8(1), "", mustHex(f, v.wrapped), "")
		}
	}
	f.Add(uint8(2), "", ecbPKCS5(f, pattern(32, 0), pattern(32, 1), nil), format.ContentAESCBC)
	f.Add(uint8(2), "", ecbPKCS5(f, pattern(32, 0), pattern(16, 1), nil), "")
	f.Add(uint8(3), "", make([]byte, 256), format.ContentAESGCM)
	f.Add(uint8(200), "AESWrap ", make([]byte, 40), "")
	f.Add(uint8(200), "", []byte(nil), "")

	f.Fuzz(func(t *testing.T, sel uint8, rawAlg string, wrapped []byte, contentAlg string) {
		w := &envelope.WrappedKey{Algorithm: pickAlg(sel, rawAlg), Ciphertext: wrapped}
		key, err := k.Unwrap(ctx, w, contentAlg)
		checkUnwrapResult(t, key, err)
	})
}

func FuzzRSAUnwrap(f *testing.F) {
	a, _, _ := testRSAKeys(f)
	k, err := NewRSA(a, nil)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := NewRSAPublic(&a.PublicKey, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, ca := range contentAlgs {
		w, err := k.Wrap(ctx, pattern(32, 0x20), ca)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(3), "", w.Ciphertext, ca, false)
		f.Add(uint8(3), "", w.Ciphertext, ca, true)
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &a.PublicKey, pattern(24, 1), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(4), "", ct, "", false)
	f.Add(uint8(5), "", pkcs1v15Encrypt(f, &a.PublicKey, pattern(16, 1)), "", false)
	f.Add(uint8(3), "", a.N.Bytes(), format.ContentAESGCM, false)
	f.Add(uint8(3), "", []byte{}, format.ContentAESGCM, false)
	f.Add(uint8(0), "", make([]byte, 60), format.ContentAESGCM, false)
	f.Add(uint8(255), "RSA ", make([]byte, 256), "", false)

	f.Fuzz(func(t *testing.T, sel uint8, rawAlg string, wrapped []byte, contentAlg string, publicOnly bool) {
		w := &envelope.WrappedKey{Algorithm: pickAlg(sel, rawAlg), Ciphertext: wrapped}
		r := k
		if publicOnly {
			r = pub
		}
		key, err := r.Unwrap(ctx, w, contentAlg)
		checkUnwrapResult(t, key, err)
	})
}
