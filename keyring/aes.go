package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"github.com/s3envelope/s3envelope/internal/kmsctx"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// gcmIVSize and gcmTagSize are the sizes of the IV prepended to and the tag
// appended to an AES/GCM-wrapped data key.
const (
	gcmIVSize  = 12
	gcmTagSize = 16
)

// AES is a symmetric master key. It wraps data keys with "AES/GCM" in the
// format of the AWS S3 Encryption Clients (Java AesKeyring): a random 12-byte
// IV, then AES-GCM of the data key under the master key with the content
// algorithm name as additional data, then the 16-byte tag.
//
// It unwraps "AES/GCM" and, when asked for them, the legacy "AESWrap"
// (RFC 3394) and "AES" (AES/ECB/PKCS5Padding, format V1) algorithms; it never
// wraps with a legacy algorithm. Whether legacy algorithms may be used is the
// caller's decision: AES unwraps whatever algorithm the WrappedKey names.
//
// An AES is safe for concurrent use. It keeps the master key only inside the
// expanded AES cipher, behind pointers, so printing an AES with fmt shows no
// key material. A random IV is drawn per wrap, so one master key should wrap
// fewer than 2^32 data keys.
type AES struct {
	block cipher.Block
	gcm   cipher.AEAD // nonce-prefixing AES-GCM: IV || ciphertext || tag
	desc  map[string]string
}

var _ Keyring = (*AES)(nil)

// NewAES returns an AES keyring for a master key of 16, 24 or 32 bytes. The
// key and desc are copied, so later changes to either by the caller do not
// affect the keyring; a nil desc is an empty description. The error, if any,
// does not contain key bytes.
func NewAES(key []byte, desc map[string]string) (*AES, error) {
	if !validKeyLen(len(key)) {
		return nil, fmt.Errorf("keyring: AES master key must be 16, 24 or 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key) // expands a copy; key is not retained
	if err != nil {
		return nil, fmt.Errorf("keyring: AES master key: cannot create cipher")
	}
	gcm, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: AES master key: cannot create GCM")
	}
	return &AES{block: block, gcm: gcm, desc: copyDesc(desc)}, nil
}

// Description returns a copy of the description given to NewAES (never nil).
func (k *AES) Description() map[string]string {
	return copyDesc(k.desc)
}

// Wrap wraps dataKey (16, 24 or 32 bytes) with "AES/GCM", binding contentAlg
// ("AES/GCM/NoPadding" or "115") as GCM additional data, so the wrapped key
// only unwraps for that content algorithm. The result is 12 + len(dataKey) +
// 16 bytes (60 for a 32-byte data key) and carries a copy of the keyring's
// description. It returns an error for a data key of another size, and one
// wrapping envelope.ErrUnsupported for any other content algorithm or when
// ctx carries an encryption context (WithEncryptionContext), which an AES
// wrap cannot bind.
func (k *AES) Wrap(ctx context.Context, dataKey []byte, contentAlg string) (*envelope.WrappedKey, error) {
	if err := checkWrapInput(format.WrapAESGCM, dataKey, contentAlg); err != nil {
		return nil, err
	}
	if err := refuseContext(ctx, format.WrapAESGCM); err != nil {
		return nil, err
	}
	out := k.gcm.Seal(nil, nil, dataKey, []byte(contentAlg))
	return &envelope.WrappedKey{
		Algorithm:   format.WrapAESGCM,
		Ciphertext:  out,
		Description: copyDesc(k.desc),
	}, nil
}

// Unwrap recovers a data key of 16, 24 or 32 bytes from w, which it does not
// modify. w.Algorithm selects the algorithm:
//
//   - "AES/GCM": IV || AES-GCM ciphertext || tag, authenticated with
//     contentAlg as additional data;
//   - "AESWrap" (legacy): RFC 3394 key unwrap with the default IV;
//   - "AES" (legacy, V1): AES/ECB/PKCS5Padding decryption, padding checked
//     strictly. This mode is unauthenticated: a tampered wrapped key may yield
//     a wrong data key instead of an error.
//
// Any failure to unwrap, and an unwrapped key of another size, is an error
// wrapping envelope.ErrAuthentication; a nil w wraps envelope.ErrMalformed;
// any other algorithm (including RSA and KMS ones), and an empty contentAlg
// for "AES/GCM", wraps envelope.ErrUnsupported. Legacy algorithms do not bind
// contentAlg and ignore it. w.Description is not consulted: choosing the
// master key for a description is the caller's job. An expected encryption
// context on ctx is refused (envelope.ErrDisallowed; see
// CheckExpectedContext).
func (k *AES) Unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
	if w == nil {
		return nil, fmt.Errorf("keyring: unwrap: no wrapped key: %w", envelope.ErrMalformed)
	}
	if err := kmsctx.Check(ctx, w.Algorithm); err != nil {
		return nil, err
	}
	switch w.Algorithm {
	case format.WrapAESGCM:
		return k.unwrapGCM(w.Ciphertext, contentAlg)
	case format.WrapLegacyAESWrap:
		return k.unwrapAESWrap(w.Ciphertext)
	case format.WrapLegacyAES:
		return k.unwrapECB(w.Ciphertext)
	}
	return nil, unwrapError(w.Algorithm, envelope.ErrUnsupported)
}

func (k *AES) unwrapGCM(ct []byte, contentAlg string) ([]byte, error) {
	if contentAlg == "" {
		return nil, fmt.Errorf("keyring: unwrap %s: empty content algorithm: %w", format.WrapAESGCM, envelope.ErrUnsupported)
	}
	// The length of a wrapped key is public; reject impossible ones early.
	if !validKeyLen(len(ct) - gcmIVSize - gcmTagSize) {
		return nil, notOpened(format.WrapAESGCM, k.desc)
	}
	key, err := k.gcm.Open(nil, nil, ct, []byte(contentAlg))
	if err != nil || !validKeyLen(len(key)) {
		clear(key)
		return nil, notOpened(format.WrapAESGCM, k.desc)
	}
	return key, nil
}
