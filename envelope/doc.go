// Package envelope seals and opens the bodies of encrypted objects, and
// reads and writes the envelope stored beside them, without any storage
// client: what package s3crypto does over S3, for a caller who moves the
// bytes itself.
//
// # Objects and envelopes
//
// Every object is sealed under its own one-time data key (AES-256-GCM). The
// data key is wrapped by a master key (a Wrapper: package keyring holds AES,
// RSA and AWS KMS master keys) and stored, with the master key's
// description, in the object's envelope: user metadata (Envelope.Metadata)
// or an instruction file stored beside the object (Envelope.Instruction).
// To read, Decode the envelope and Open the body with an Unwrapper that
// holds the master key the description names (package materials resolves
// it among several).
//
// # Formats
//
// FormatV3 (the default) and FormatV2 are the formats of AWS's S3
// Encryption Clients, byte for byte: one AES-GCM pass over the whole body,
// whose tag is at its end. V3 also commits to the data key, so a stored key
// cannot be swapped for another that decrypts the same body differently.
// FormatSegmented is this library's own (docs/segmented-format.md): the body
// is sealed in independently authenticated segments, so it can be read at
// random (NewReaderAt), sealed on every core and stored in parallel parts,
// and it may exceed V2/V3's 64 GiB. FormatV1 (AES-CBC, unauthenticated) is
// read only, and only when Config.EnableLegacyUnauthenticatedModes is set.
//
// # What is released
//
// No plaintext is released before it is authenticated. A V2 or V3 body's
// tag is at its end, so Open spools the ciphertext (memory, then a
// temporary file: Config.SpoolMemory, SpoolDir, SpoolLimit) and yields
// plaintext only once the tag verifies. A segmented body yields each
// segment once it authenticates; a body cut short or altered fails at the
// first bad segment, after releasing the segments before it, so a read
// error means the whole object failed.
//
// # Errors
//
// Every failure wraps one of the Err* sentinels, for errors.Is: a tampered
// body or a wrong key is ErrAuthentication, a stored envelope that is not
// well formed ErrMalformed, an algorithm this package does not implement
// ErrUnsupported, one the Config does not allow ErrDisallowed. Messages
// never carry key material.
package envelope
