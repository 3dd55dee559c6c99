// Package kmsctx carries a KMS encryption context on a context.Context
// (keyring.WithEncryptionContext sets it), and checks that only wraps that
// bind one are asked to.
package kmsctx

import (
	"context"
	"fmt"
	"maps"

	"github.com/s3envelope/s3envelope/internal/format"
)

// ReservedKey is the encryption-context key under which a kms+context wrap
// binds the content algorithm, as AWS's clients do; callers may not set it.
const ReservedKey = "aws:x-amz-cek-alg"

// LegacyKeyIDKey is where a legacy kms wrap's writer put the KMS key ID in
// the stored context (x-amz-matdesc): not part of the caller's context.
const LegacyKeyIDKey = "kms_cmk_id"

type key struct{}

// With returns ctx carrying ec (a copy); a nil ec removes a context set
// before.
func With(ctx context.Context, ec map[string]string) context.Context {
	if ec == nil {
		return context.WithValue(ctx, key{}, nil)
	}
	return context.WithValue(ctx, key{}, maps.Clone(ec))
}

// From returns the encryption context ctx carries, if any.
func From(ctx context.Context) (map[string]string, bool) {
	ec, ok := ctx.Value(key{}).(map[string]string)
	return ec, ok
}

// Binds reports whether a wrap algorithm binds an encryption context.
func Binds(wrapAlg string) bool {
	return wrapAlg == format.WrapKMSContext || wrapAlg == format.WrapLegacyKMS
}

// Check fails, wrapping format.ErrDisallowed, when ctx carries an expected
// encryption context and the wrap algorithm cannot bind one: every wrap but
// KMS's. An AES- or RSA-wrapped key's description is not authenticated (a
// holder of an RSA public key can write any), so such an expectation could
// never be checked. Providers call it before unwrapping, whatever the master
// key's implementation.
func Check(ctx context.Context, wrapAlg string) error {
	if _, ok := From(ctx); ok && !Binds(wrapAlg) {
		alg := format.AlgName(wrapAlg)
		return fmt.Errorf("keyring: unwrap %s: %w: an expected encryption context is bound only by KMS wraps, and this data key is wrapped with %s", alg, format.ErrDisallowed, alg)
	}
	return nil
}

// Carried is the encryption context a rewrap carries over from a stored KMS
// wrap to the new one: the stored context less what wraps add themselves —
// ReservedKey, and for a legacy kms wrap the key ID its writer put under
// LegacyKeyIDKey.
func Carried(w *format.WrappedKey) map[string]string {
	ec := maps.Clone(w.Description)
	if ec == nil {
		ec = map[string]string{}
	}
	delete(ec, ReservedKey)
	if w.Algorithm == format.WrapLegacyKMS {
		delete(ec, LegacyKeyIDKey)
	}
	return ec
}
