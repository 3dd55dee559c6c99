// Package keyring holds master keys: the keys that wrap and unwrap the
// one-time data keys of encrypted objects. ParseAES and ParseRSA read them
// from key files (hex, base64 or raw AES-256 keys; RSA keys in PEM), strictly.
package keyring

import "github.com/s3envelope/s3envelope/envelope"

// Keyring is one master key. It wraps data keys for new objects and unwraps
// the data keys of objects it wrapped, identified by its description.
type Keyring interface {
	envelope.Wrapper
	envelope.Unwrapper
	// Description returns a copy of the master key's description, stored with
	// every object as x-amz-matdesc (V2) or x-amz-m (V3). It is not secret.
	Description() map[string]string
}

// Matcher is implemented by master keys that recognise the data keys they
// wrapped by more than the stored description. A KMS key stores each object's
// encryption context as its description, so it matches by wrap algorithm and
// leaves the rest to KMS.
type Matcher interface {
	Matches(w *envelope.WrappedKey) bool
}
