package format

import (
	"context"
	"errors"
	"strconv"

	"github.com/s3envelope/s3envelope/internal/typednil"
)

// Wrap algorithm names as stored in x-amz-wrap-alg (V1/V2). V3 stores a
// two-digit code instead; the envelope codec translates.
const (
	WrapAESGCM      = "AES/GCM"
	WrapRSAOAEPSHA1 = "RSA-OAEP-SHA1"
	WrapKMSContext  = "kms+context"

	// Legacy wrap algorithms: unwrap only, and only when the caller enables
	// legacy wrapping algorithms.
	WrapLegacyAESWrap       = "AESWrap"
	WrapLegacyRSAOAEPSHA256 = "RSA/ECB/OAEPWithSHA-256AndMGF1Padding"
	WrapLegacyAES           = "AES" // AES/ECB/PKCS5Padding over the data key (V1)
	WrapLegacyRSA           = "RSA" // RSA/ECB/PKCS1Padding over the data key (V1)
	WrapLegacyKMS           = "kms"
)

// Content algorithm names. For V2 the name is stored in x-amz-cek-alg; for V3
// the algorithm suite ID in decimal is stored in x-amz-c. Key wraps bind this
// string (AES/GCM as AAD, RSA-OAEP inside the packed plaintext, KMS in the
// encryption context) so that a data key cannot be moved between formats.
const (
	ContentAESGCM       = "AES/GCM/NoPadding"
	ContentAESCBC       = "AES/CBC/PKCS5Padding"
	ContentAESGCMCommit = "115"
)

// DataKeySize is the size of every data key this library generates: AES-256.
const DataKeySize = 32

// IsLegacyWrap reports whether alg is a wrap algorithm that may only be
// unwrapped, and only with legacy wrapping algorithms enabled.
func IsLegacyWrap(alg string) bool {
	switch alg {
	case WrapLegacyAESWrap, WrapLegacyRSAOAEPSHA256, WrapLegacyAES, WrapLegacyRSA, WrapLegacyKMS:
		return true
	}
	return false
}

// maxAlgNameInError bounds how much of a stored (untrusted) algorithm name is
// printed in an error.
const maxAlgNameInError = 64

// AlgName renders a wrap algorithm name for an error message. Known names
// are printed as is; anything else comes from stored metadata and is quoted
// and truncated.
func AlgName(alg string) string {
	switch alg {
	case WrapAESGCM, WrapRSAOAEPSHA1, WrapKMSContext,
		WrapLegacyAESWrap, WrapLegacyRSAOAEPSHA256,
		WrapLegacyAES, WrapLegacyRSA, WrapLegacyKMS:
		return alg
	}
	if len(alg) > maxAlgNameInError {
		alg = alg[:maxAlgNameInError] + "..."
	}
	return strconv.Quote(alg)
}

// WrappedKey is a data key wrapped by a master key, with what must be stored
// beside it to unwrap it again.
type WrappedKey struct {
	// Algorithm is the wrap algorithm (one of the Wrap* constants).
	Algorithm string
	// Ciphertext is the wrapped data key as stored (before base64).
	Ciphertext []byte
	// Description is the master key's description (x-amz-matdesc, x-amz-m),
	// or for KMS the encryption context (x-amz-matdesc in V2, x-amz-t in V3).
	Description map[string]string
}

// Wrapper wraps data keys under a master key.
//
// contentAlg is the content algorithm of the object (a Content* constant);
// the wrap binds it so the wrapped key cannot be reused under another format.
type Wrapper interface {
	Wrap(ctx context.Context, dataKey []byte, contentAlg string) (*WrappedKey, error)
}

// Unwrapper recovers a data key from a stored wrapped key.
//
// It returns an error wrapping ErrNoMasterKey when it holds no master key for
// w.Description, ErrAuthentication when the wrapped key does not unwrap, and
// ErrUnsupported or ErrDisallowed for wrap algorithms it cannot or may not use.
type Unwrapper interface {
	Unwrap(ctx context.Context, w *WrappedKey, contentAlg string) ([]byte, error)
}

// DataKeyGenerator is implemented by master keys that create data keys
// themselves (KMS GenerateDataKey). When the Wrapper given to Seal implements
// it, Seal uses it instead of generating a random data key and wrapping it.
type DataKeyGenerator interface {
	GenerateDataKey(ctx context.Context, contentAlg string) (dataKey []byte, w *WrappedKey, err error)
}

// errNilMasterKey is returned for a nil Wrapper or Unwrapper, or one that
// holds a nil pointer (what a failed keyring constructor returns).
var errNilMasterKey = errors.New("envelope: nil master key (did its constructor fail?)")

func checkMasterKey(k any) error {
	if typednil.Is(k) {
		return errNilMasterKey
	}
	return nil
}
