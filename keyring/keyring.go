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
