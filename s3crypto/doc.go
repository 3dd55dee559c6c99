// Package s3crypto encrypts S3 objects in the caller's process: a Client
// wraps an S3 client with *s3.Client's PutObject, GetObject, HeadObject and
// DeleteObject, so that an application swaps one line. Bodies are sealed
// under a fresh data key before they leave the process and opened,
// authenticated first, when they come back, in the object formats of AWS's
// S3 Encryption Clients; keys never reach S3.
//
//	c, err := s3crypto.New(s3.NewFromConfig(cfg), materials.NewProvider(masterKey))
//	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: file})
//	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
//
// # Formats
//
// New objects are written in envelope.FormatV3 (AWS's key-committing
// format, the default), FormatV2 (for readers that predate V3) or
// FormatSegmented (this library's own: authenticated ranges, parallel
// parts, no 64 GiB limit; AWS's clients cannot read it), chosen by
// Options.Format. Reading takes the format from the object; the
// CommitmentPolicy and the legacy switches decide what may be read. The
// envelope is stored in the object's metadata, or with
// Options.InstructionFile in <key>.instruction beside it (reading looks at
// both, whatever the option).
//
// A V2 or V3 body carries its tag at its end, so GetObject spools it
// (memory, then a temporary file) and releases plaintext only once the tag
// verifies (the GHASH, then the decryption, on up to four cores); a
// segmented body is released segment by segment as each verifies. Close
// the Body, from any goroutine, to abort a read.
//
// # Large objects and ranges
//
// An Uploader stores a body of any length, known or not, as a multipart
// upload of sealed parts (a V2/V3 object is still one GCM stream that AWS's
// clients read); a Downloader reads with parallel ranged GETs, every one
// naming the ETag the object had when the download started. A Range GET
// of a segmented object, and Client.NewReaderAt, read only the segments
// they need, each authenticated. A range of a V2 or V3 object cannot be
// authenticated without the whole body: it fails with ErrRange unless
// EnableLegacyUnauthenticatedModes is set.
//
// # Rotation
//
// Rewrap rotates the master key of one object without touching its body:
// it unwraps the data key with whichever of the provider's keys the stored
// description names, wraps it with the current master key, checks that the
// new envelope — serialized exactly as it will be stored — unwraps to the
// same data key (and matches V3's key commitment), and writes it in place
// of the old: a metadata envelope by a copy of the object onto itself
// (CopyObject with MetadataDirective REPLACE, guarded by CopySourceIfMatch;
// a multipart copy past 5 GiB), an instruction file by rewriting it with
// If-Match. Every other metadata key, the content headers, storage class,
// server-side encryption, object lock settings and tags are kept. After the
// write it confirms that the body is still the one whose key it rewrapped,
// so that a server that ignored the write's condition is found out
// (ErrConcurrentModification); a write whose outcome cannot be checked is
// ErrOutcomeUnknown (Rewrap again settles it).
//
// RewrapAll walks a bucket or prefix, Concurrency objects at a time, with a
// checkpoint that only ever advances past finished objects, so an
// interrupted walk resumes without skipping one. S3 does not copy object
// ACLs; in a versioned bucket older versions keep the old envelope. For a
// bucket too big to list once per process, RewrapAllInput.Inventory walks
// the keys of an S3 Inventory report instead (objects written after the
// report are not in it), and Shard/ShardCount split the walk by a hash of
// each key, so that N processes share a bucket with no coordination, each
// with its own checkpoint.
//
// KMS: a keyring.KMS matches every KMS-wrapped object, so an object is
// AlreadyCurrent only when KMS decrypts its data key under the current
// key's ID. When KMS refuses, the unwrap that follows does not ask the
// current key again: a provider from materials (cached or not) is told of
// the refusal and tries its other keys, in order. The object's encryption context is kept for a KMS → KMS rewrap;
// a new KMS wrap otherwise uses the context on ctx
// (keyring.WithEncryptionContext). To rotate from one KMS key to another,
// give both: materials.NewProvider(newKMS, oldKMS).
//
// A KMS → KMS rewrap of a V2 object, or of an SSE-C object's companion,
// uses KMS ReEncrypt: one request, after the Decrypt that finds the object
// not current, in place of the Decrypts and the Encrypt of unwrapping,
// wrapping and verifying; the data key never leaves KMS
// (RewrapOutput.ReEncrypted). What it trades: nothing here unwraps the new
// wrap to check it holds the same data key — KMS guarantees that — and a
// V3 or segmented object's key commitment cannot be checked against a data
// key never seen. So those formats use ReEncrypt only when asked
// (RewrapInput.ReEncrypt, RewrapAllInput.ReEncrypt: true); their
// commitment is still checked on every read, and a rewrap then carries a
// broken envelope forward rather than finding it. ReEncrypt false never
// uses it; by default, a role that KMS refuses ReEncrypt (kms:Decrypt and
// kms:Encrypt granted, kms:ReEncrypt* not) rotates as before, for one
// refused request more per object. The source is held to the provider's
// KMS master keys, as Decrypt is: a named key, or a discovery key's filter,
// so a planted object under another key is refused, not rewrapped. A
// provider not from materials, or a KMS client without ReEncrypt, unwraps
// and wraps.
//
// # Managed SSE-C
//
// An SSECClient has S3 encrypt each object under a customer-provided key
// (SSE-C) and manages those keys as Client manages data keys: a fresh key
// per object, sent with every request on the object and never stored, its
// wrapped form kept in the companion object <key>.ssec. The new key is
// recorded before the object is written and the replaced object's key is
// dropped after, so no write ever leaves an object without its key. Its
// requests go only to https URLs, redirects included (ErrInsecureEndpoint):
// a customer key sent in clear text is a lost key. Rewrap rewrites the
// companion; with Rekey, S3 also copies the object onto itself under a new
// data key.
//
// # Sharing through presigned URLs
//
// A presigned URL (s3.PresignClient) lets someone without AWS credentials
// GET one object until the URL expires (Expires, at most 7 days, and never
// past the signing credentials' own expiry). Client.PresignGetObject
// presigns a GET of an encrypted object: it looks at the object first and
// returns its URL, plus the URL of its instruction file when the envelope
// is in one. The URLs fetch ciphertext and the envelope (in the x-amz-meta-*
// headers of the response); to open them the recipient needs the master
// key, or a provider that reaches it (an AES key, an RSA private key, a
// KMS keyring allowed kms:Decrypt). It opens the response with
// Client.OpenResponse, or OpenObject given the headers and body as they
// came, with the same checks, policy and release rules as GetObject:
// nothing of a V2 or V3 object before its tag verifies, a segmented object
// segment by segment. Neither makes an S3 request, so the recipient's
// Client may wrap an unconfigured s3.New(s3.Options{}). An expired URL, a
// missing object or a refused signature is S3's error, with its status, as
// the SDK reports it (*awshttp.ResponseError). A URL is a bearer credential
// for the ciphertext: treat it as one.
//
// For an SSECClient's object S3 decrypts, and the recipient needs no key
// of this library's: SSECClient.PresignGetObject returns the URL and the
// SSE-C headers to send with it (PresignedObject.Header), which the URL's
// signature covers. Those headers carry the object's data key in clear:
// they are a secret to hand over as the key itself, over an encrypted
// channel, and never to log. They outlive the URL: with any other means of
// GETting the object, they open it until it is re-keyed (Rewrap with
// Rekey) or overwritten. The URL is https or refused, and the key is never
// put in it; fmt does not print a PresignedObject's headers.
//
// There is no presigned PUT of an encrypted object. A presigned PUT stores
// the bytes its sender sends, as they are: an object is encrypted
// client-side only where it is sealed, so an uploader holding a presigned
// PUT stores encrypted bytes only if it seals them in its own process —
// with this library, which then holds the master key (or, for RSA, its
// public key) — and sends the envelope as the x-amz-meta-* headers the URL
// was signed for. A URL alone would carry plaintext to S3. Nor does an
// SSECClient presign a PUT: its uploader would have to hold the object's
// data key.
//
// # Errors
//
// Failures wrap the envelope package's sentinels (errors.Is:
// envelope.ErrAuthentication for a tampered object or a wrong key,
// envelope.ErrNoMasterKey when no master key matches the stored
// description, envelope.ErrNoEnvelope for an object that is not encrypted,
// …) or this package's, and S3's own errors pass through (errors.As finds
// *types.NoSuchKey). Messages name the operation and the object, never key
// material.
package s3crypto
