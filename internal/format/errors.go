package format

import "errors"

// Sentinel errors. Every error this module returns for a failed decryption,
// a refused format or a malformed envelope wraps exactly one of these, so
// callers can branch with errors.Is. Messages never carry key material.
var (
	// ErrAuthentication means the object failed authentication: a tampered
	// body, tag, commitment, IV or message ID, or a wrapped key that does not
	// unwrap under the master key. No unauthenticated plaintext is ever
	// released: for V2 and V3 none at all; a segmented object may have
	// released the segments before the fault, each authenticated, and is
	// then incomplete.
	ErrAuthentication = errors.New("s3envelope: authentication failed")

	// ErrNoMasterKey means no master key at hand matches the stored
	// description. The error text names the description (descriptions are not
	// secret).
	ErrNoMasterKey = errors.New("s3envelope: no master key matches the description")

	// ErrUnsupported means the stored envelope names a format, content
	// algorithm or wrap algorithm this library does not implement.
	ErrUnsupported = errors.New("s3envelope: unsupported algorithm")

	// ErrDisallowed means the stored envelope names an algorithm that exists
	// but that the caller's options do not allow (legacy modes are off by
	// default).
	ErrDisallowed = errors.New("s3envelope: algorithm not allowed by options")

	// ErrPolicy means the commitment policy forbids the operation: reading a
	// non-committing object under RequireEncryptRequireDecrypt, or a format
	// that contradicts the policy.
	ErrPolicy = errors.New("s3envelope: commitment policy violation")

	// ErrMalformed means the stored envelope (metadata or instruction file)
	// is missing a field, has a field of the wrong size or encoding, or is
	// inconsistent.
	ErrMalformed = errors.New("s3envelope: malformed envelope")

	// ErrTooLarge means the object exceeds what one AES-GCM pass may encrypt
	// (2^36-32 bytes), or a stored field exceeds its bound.
	ErrTooLarge = errors.New("s3envelope: object too large")

	// ErrInvalidRange means a requested byte range lies outside the
	// object's plaintext (HTTP 416).
	ErrInvalidRange = errors.New("s3envelope: requested range not satisfiable")

	// ErrWrapOnly means the master key can wrap data keys but not unwrap them
	// (an RSA public key held by a writer).
	ErrWrapOnly = errors.New("s3envelope: master key can only wrap")
)

// ErrNoEnvelope means an object carries no envelope in its metadata and has
// no instruction file: it was not client-side encrypted.
var ErrNoEnvelope = errors.New("s3envelope: object has no encryption envelope")
