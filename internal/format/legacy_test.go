package format_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// v1Object builds a V1 object the way AWS's legacy clients did, with the
// standard library only: AES/ECB/PKCS5-wrapped data key, AES/CBC/PKCS5 body.
func v1Object(t *testing.T, master, dataKey, iv, plaintext []byte) (map[string]string, []byte) {
	pad := func(b []byte) []byte {
		n := aes.BlockSize - len(b)%aes.BlockSize
		return append(bytes.Clone(b), bytes.Repeat([]byte{byte(n)}, n)...)
	}
	mb, err := aes.NewCipher(master)
	require.NoError(t, err)
	wrapped := pad(dataKey)
	for i := 0; i < len(wrapped); i += aes.BlockSize {
		mb.Encrypt(wrapped[i:], wrapped[i:])
	}
	db, err := aes.NewCipher(dataKey)
	require.NoError(t, err)
	body := pad(plaintext)
	cipher.NewCBCEncrypter(db, iv).CryptBlocks(body, body)
	return map[string]string{
		"x-amz-key":                        base64.StdEncoding.EncodeToString(wrapped),
		"x-amz-iv":                         base64.StdEncoding.EncodeToString(iv),
		"x-amz-matdesc":                    `{}`,
		"x-amz-unencrypted-content-length": fmt.Sprint(len(plaintext)),
	}, body
}

func TestV1LegacyRead(t *testing.T) {
	master, dataKey, iv := random(32), random(32), random(16)
	kr, err := keyring.NewAES(master, nil)
	require.NoError(t, err)
	legacy := envelope.Config{
		CommitmentPolicy:                 envelope.ForbidEncryptAllowDecrypt,
		EnableLegacyUnauthenticatedModes: true,
		EnableLegacyWrappingAlgorithms:   true,
	}
	for _, n := range []int{0, 1, 15, 16, 17, 64<<10 - 1, 64 << 10, 64<<10 + 1, 200<<10 + 3} {
		pt := random(n)
		meta, body := v1Object(t, master, dataKey, iv, pt)
		got, err := open(kr, legacy, meta, nil, body)
		require.NoError(t, err, "size %d", n)
		require.True(t, bytes.Equal(pt, got), "size %d", n)

		// Off by default: refused for what it is.
		_, err = open(kr, envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, meta, nil, body)
		require.ErrorIs(t, err, envelope.ErrDisallowed)
		_, err = open(kr, envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt, EnableLegacyUnauthenticatedModes: true}, meta, nil, body)
		require.ErrorIs(t, err, envelope.ErrDisallowed, "legacy AES/ECB wrap needs its own switch")
		// Even with the switches on, the policy still applies.
		strict := legacy
		strict.CommitmentPolicy = envelope.RequireEncryptRequireDecrypt
		_, err = open(kr, strict, meta, nil, body)
		require.ErrorIs(t, err, envelope.ErrPolicy)
	}
	// Malformed CBC bodies are errors, not short reads.
	meta, body := v1Object(t, master, dataKey, iv, random(40))
	for _, b := range [][]byte{nil, body[:len(body)-1], body[:16]} {
		_, err := open(kr, legacy, meta, nil, b)
		require.Error(t, err)
	}
}
