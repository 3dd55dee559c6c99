package keyring

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

var ctx = context.Background()

// contentAlgs are the content algorithms a wrap may bind.
var contentAlgs = []string{format.ContentAESGCM, format.ContentAESGCMCommit}

// keySizes are the AES key sizes for master and data keys.
var keySizes = []int{16, 24, 32}

// sentinels are the envelope sentinel errors; every unwrap error wraps
// exactly one of them.
var sentinels = []error{
	envelope.ErrAuthentication, envelope.ErrNoMasterKey, envelope.ErrUnsupported,
	envelope.ErrDisallowed, envelope.ErrPolicy, envelope.ErrMalformed,
	envelope.ErrTooLarge, envelope.ErrWrapOnly,
}

// requireSentinel asserts that err wraps want and no other sentinel.
func requireSentinel(t testing.TB, err, want error) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, want)
	for _, s := range sentinels {
		if s != want {
			require.NotErrorIs(t, err, s)
		}
	}
}

// isSentinelError reports whether err wraps exactly one sentinel.
func isSentinelError(err error) bool {
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	return n == 1
}

// RSA keys are slow to generate: make each once per test binary.
var (
	rsaOnce          sync.Once
	rsaKeyA, rsaKeyB *rsa.PrivateKey
	rsaKey1024       *rsa.PrivateKey
	rsaGenErr        error
)

func genRSAKeys() {
	rsaOnce.Do(func() {
		var err error
		if rsaKeyA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			rsaGenErr = err
			return
		}
		if rsaKeyB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			rsaGenErr = err
			return
		}
		rsaKey1024, rsaGenErr = rsa.GenerateKey(rand.Reader, 1024)
	})
}

// testRSAKeys returns two distinct 2048-bit keys and a 1024-bit key.
func testRSAKeys(t testing.TB) (a, b, small *rsa.PrivateKey) {
	t.Helper()
	genRSAKeys()
	require.NoError(t, rsaGenErr)
	return rsaKeyA, rsaKeyB, rsaKey1024
}

// pattern returns n bytes start, start+1, ... (mod 256).
func pattern(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// flipEveryBit calls f with a copy of b for each single-bit flip of b.
func flipEveryBit(b []byte, f func(name string, flipped []byte)) {
	for i := range b {
		for bit := range 8 {
			c := append([]byte(nil), b...)
			c[i] ^= 1 << bit
			f(fmt.Sprintf("byte%d/bit%d", i, bit), c)
		}
	}
}

func newAES(t testing.TB, key []byte, desc map[string]string) *AES {
	t.Helper()
	k, err := NewAES(key, desc)
	require.NoError(t, err)
	return k
}

func newRSA(t testing.TB, priv *rsa.PrivateKey, desc map[string]string) *RSA {
	t.Helper()
	k, err := NewRSA(priv, desc)
	require.NoError(t, err)
	return k
}

// pkcs1v15Encrypt builds a legacy "RSA" (PKCS #1 v1.5) wrap with crypto/rsa.
func pkcs1v15Encrypt(t testing.TB, pub *rsa.PublicKey, msg []byte) []byte {
	t.Helper()
	//lint:ignore SA1019 format V1 objects use PKCS #1 v1.5; tests build such wraps.
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
	require.NoError(t, err)
	return ct
}
