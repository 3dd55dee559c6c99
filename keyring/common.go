package keyring

import (
	"errors"
	"fmt"
	"maps"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// errDataKeySize is misuse on the wrap side: not a decryption failure, so
// it wraps none of the envelope sentinels.
var errDataKeySize = errors.New("data key must be 16, 24 or 32 bytes")

// ErrWeakKey is returned by NewRSAPublic, and by Wrap of an RSA keyring,
// for an RSA key under 2048 bits: no new data key is wrapped under one.
// Such a key may still unwrap the data keys of old objects.
var ErrWeakKey = errors.New("RSA key too small to wrap: at least 2048 bits required")

// minRSAWrapBits is the smallest RSA modulus new data keys are wrapped under.
// Smaller keys (down to what crypto/rsa accepts) may still unwrap old objects.
const minRSAWrapBits = 2048

// validKeyLen reports whether n is an AES key size.
func validKeyLen(n int) bool {
	return n == 16 || n == 24 || n == 32
}

// copyDesc returns a non-nil copy of d.
func copyDesc(d map[string]string) map[string]string {
	out := make(map[string]string, len(d))
	maps.Copy(out, d)
	return out
}

// algName renders a wrap algorithm name for an error message.
func algName(alg string) string { return format.AlgName(alg) }

// unwrapError builds the error for a failed unwrap: it names the operation and
// algorithm and wraps exactly one sentinel. It never includes key material.
func unwrapError(alg string, sentinel error) error {
	return fmt.Errorf("keyring: unwrap %s: %w", algName(alg), sentinel)
}

// notOpened is the error for a wrapped key that a master key does not
// open. The description it was found by is named: a different key kept
// under the same description reads exactly like tampering otherwise.
func notOpened(alg string, desc map[string]string) error {
	return fmt.Errorf("keyring: unwrap %s: %w: the master key described %s does not open this data key (another key under that description, or a damaged wrapped key)",
		algName(alg), envelope.ErrAuthentication, format.EncodeDescription(desc))
}

// wrapError builds the error for a failed wrap.
func wrapError(alg string, err error) error {
	return fmt.Errorf("keyring: wrap %s: %w", algName(alg), err)
}

// checkWrapInput validates the arguments common to every Wrap.
func checkWrapInput(alg string, dataKey []byte, contentAlg string) error {
	if !validKeyLen(len(dataKey)) {
		return wrapError(alg, fmt.Errorf("%w, got %d", errDataKeySize, len(dataKey)))
	}
	switch contentAlg {
	case format.ContentAESGCM, format.ContentAESGCMCommit, format.ContentSegmented, format.ContentSSEC:
		return nil
	}
	return wrapError(alg, fmt.Errorf("content algorithm %s: %w", algName(contentAlg), envelope.ErrUnsupported))
}
