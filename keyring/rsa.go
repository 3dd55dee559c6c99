package keyring

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/s3envelope/s3envelope/internal/kmsctx"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// RSA is an asymmetric master key. It wraps data keys with "RSA-OAEP-SHA1" in
// the format of the AWS S3 Encryption Clients (Java RsaKeyring): RSA-OAEP with
// SHA-1 and MGF1-SHA-1 and an empty label over
// keyLen (1 byte) || data key || content algorithm name.
//
// Built with NewRSA it also unwraps "RSA-OAEP-SHA1" and, when asked for them,
// the legacy "RSA/ECB/OAEPWithSHA-256AndMGF1Padding" and "RSA" (PKCS #1 v1.5,
// format V1) algorithms; it never wraps with a legacy algorithm. Whether
// legacy algorithms may be used is the caller's decision. Built with
// NewRSAPublic it only wraps.
//
// New data keys are wrapped only under keys of at least 2048 bits; smaller
// keys (down to the 1024 bits crypto/rsa accepts) can still unwrap old
// objects. An RSA is safe for concurrent use; its fields are pointers, so
// printing it with fmt shows no key material.
type RSA struct {
	priv *rsa.PrivateKey // nil for a wrap-only keyring
	pub  *rsa.PublicKey
	desc map[string]string
}

var _ Keyring = (*RSA)(nil)

// NewRSA returns an RSA keyring that wraps and unwraps with priv. desc is
// copied, and nil is an empty description. priv must pass
// (*rsa.PrivateKey).Validate; the keyring uses its own shallow copy of priv
// with precomputed values, so it never modifies priv. Keys under 2048 bits are
// accepted here (for unwrapping old objects) but refused by Wrap.
func NewRSA(priv *rsa.PrivateKey, desc map[string]string) (*RSA, error) {
	if priv == nil || priv.N == nil {
		return nil, errors.New("keyring: RSA private key is nil")
	}
	cp := new(rsa.PrivateKey)
	*cp = *priv
	cp.Precompute()
	if err := cp.Validate(); err != nil {
		return nil, fmt.Errorf("keyring: invalid RSA private key: %w", err)
	}
	return &RSA{priv: cp, pub: &cp.PublicKey, desc: copyDesc(desc)}, nil
}

// NewRSAPublic returns a wrap-only RSA keyring: Wrap works as for NewRSA,
// and Unwrap always returns an error wrapping envelope.ErrWrapOnly. desc is
// copied, and nil is an empty description. Since such a keyring can only
// wrap, a key under 2048 bits is refused here.
func NewRSAPublic(pub *rsa.PublicKey, desc map[string]string) (*RSA, error) {
	if pub == nil || pub.N == nil {
		return nil, errors.New("keyring: RSA public key is nil")
	}
	if pub.N.BitLen() < minRSAWrapBits {
		return nil, fmt.Errorf("keyring: RSA public key of %d bits: %w", pub.N.BitLen(), ErrWeakKey)
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, errors.New("keyring: invalid RSA public exponent")
	}
	cp := &rsa.PublicKey{N: pub.N, E: pub.E}
	return &RSA{pub: cp, desc: copyDesc(desc)}, nil
}

// Description returns a copy of the description given at construction (never
// nil).
func (k *RSA) Description() map[string]string {
	return copyDesc(k.desc)
}

// Wrap wraps dataKey (16, 24 or 32 bytes) with "RSA-OAEP-SHA1", binding
// contentAlg ("AES/GCM/NoPadding" or "115") inside the encrypted plaintext so
// the wrapped key only unwraps for that content algorithm. The result is as
// long as the modulus and carries a copy of the keyring's description. It
// returns an error for a data key of another size, a key under 2048 bits, or
// (wrapping envelope.ErrUnsupported) any other content algorithm or an
// encryption context on ctx (WithEncryptionContext), which an RSA wrap
// cannot bind.
func (k *RSA) Wrap(ctx context.Context, dataKey []byte, contentAlg string) (*envelope.WrappedKey, error) {
	if err := checkWrapInput(format.WrapRSAOAEPSHA1, dataKey, contentAlg); err != nil {
		return nil, err
	}
	if err := refuseContext(ctx, format.WrapRSAOAEPSHA1); err != nil {
		return nil, err
	}
	if bits := k.pub.N.BitLen(); bits < minRSAWrapBits {
		return nil, wrapError(format.WrapRSAOAEPSHA1, fmt.Errorf("%d-bit key: %w", bits, ErrWeakKey))
	}
	packed := make([]byte, 0, 1+len(dataKey)+len(contentAlg))
	packed = append(packed, byte(len(dataKey)))
	packed = append(packed, dataKey...)
	packed = append(packed, contentAlg...)
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, k.pub, packed, nil)
	clear(packed)
	if err != nil {
		// crypto/rsa errors name sizes, never message bytes.
		return nil, wrapError(format.WrapRSAOAEPSHA1, err)
	}
	return &envelope.WrappedKey{
		Algorithm:   format.WrapRSAOAEPSHA1,
		Ciphertext:  ct,
		Description: copyDesc(k.desc),
	}, nil
}

// Unwrap recovers a data key of 16, 24 or 32 bytes from w, which it does not
// modify. For a keyring from NewRSAPublic it always fails with an error
// wrapping envelope.ErrWrapOnly. Otherwise w.Algorithm selects the algorithm:
//
//   - "RSA-OAEP-SHA1": OAEP (SHA-1, MGF1-SHA-1, empty label), then the packed
//     key length must be 16, 24 or 32 and the rest of the plaintext exactly
//     the data key followed by contentAlg;
//   - "RSA/ECB/OAEPWithSHA-256AndMGF1Padding" (legacy): OAEP with SHA-256,
//     MGF1 with SHA-1 (Java's default provider) or SHA-256 (Bouncy Castle),
//     over the raw data key;
//   - "RSA" (legacy, V1): PKCS #1 v1.5 over the raw data key. This mode is
//     open to padding-oracle attacks; it exists only to read old objects.
//
// Any failure to unwrap, and an unwrapped key of another size, is an error
// wrapping envelope.ErrAuthentication; a nil w wraps envelope.ErrMalformed;
// any other algorithm (including AES and KMS ones), and an empty contentAlg
// for "RSA-OAEP-SHA1", wraps envelope.ErrUnsupported. Legacy algorithms do
// not bind contentAlg and ignore it. w.Description is not consulted. An
// expected encryption context on ctx is refused (envelope.ErrDisallowed; see
// CheckExpectedContext).
func (k *RSA) Unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
	if k.priv == nil {
		alg := ""
		if w != nil {
			alg = w.Algorithm
		}
		return nil, unwrapError(alg, envelope.ErrWrapOnly)
	}
	if w == nil {
		return nil, fmt.Errorf("keyring: unwrap: no wrapped key: %w", envelope.ErrMalformed)
	}
	if err := kmsctx.Check(ctx, w.Algorithm); err != nil {
		return nil, err
	}
	switch w.Algorithm {
	case format.WrapRSAOAEPSHA1:
		return k.unwrapOAEPSHA1(w.Ciphertext, contentAlg)
	case format.WrapLegacyRSAOAEPSHA256:
		return k.unwrapOAEPSHA256(w.Ciphertext)
	case format.WrapLegacyRSA:
		return k.unwrapPKCS1v15(w.Ciphertext)
	}
	return nil, unwrapError(w.Algorithm, envelope.ErrUnsupported)
}

func (k *RSA) unwrapOAEPSHA1(ct []byte, contentAlg string) ([]byte, error) {
	if contentAlg == "" {
		return nil, fmt.Errorf("keyring: unwrap %s: empty content algorithm: %w", format.WrapRSAOAEPSHA1, envelope.ErrUnsupported)
	}
	p, err := rsa.DecryptOAEP(sha1.New(), nil, k.priv, ct, nil)
	if err != nil {
		return nil, notOpened(format.WrapRSAOAEPSHA1, k.desc)
	}
	defer clear(p)
	if len(p) == 0 {
		return nil, notOpened(format.WrapRSAOAEPSHA1, k.desc)
	}
	keyLen := int(p[0])
	if !validKeyLen(keyLen) || len(p) != 1+keyLen+len(contentAlg) ||
		subtle.ConstantTimeCompare(p[1+keyLen:], []byte(contentAlg)) != 1 {
		return nil, notOpened(format.WrapRSAOAEPSHA1, k.desc)
	}
	key := make([]byte, keyLen)
	copy(key, p[1:1+keyLen])
	return key, nil
}
