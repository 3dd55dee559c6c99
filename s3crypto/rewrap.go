package s3crypto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/s3envelope/s3envelope/internal/kmsctx"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
)

// ErrConcurrentModification is returned (wrapped) by Rewrap when the object
// or its instruction file changed between the rewrap's read and its write.
// Usually the server refused the guarded write (HTTP 412, or 409
// ConditionalRequestConflict): nothing was written by the rewrap, and the
// other writer's object stands. Rewrap never retries such a write itself:
// read the object again (Rewrap again) if it still needs rewrapping. When
// a server did not honour the condition, the check after the write finds
// it, and the error says what the rewrap left. It is also returned by a
// ranged GetObject, NewReaderAt's reads and Downloader when the object was
// replaced between their requests (If-Match failed).
var ErrConcurrentModification = errors.New("s3crypto: the object changed while it was being read or rewrapped")

// ErrOutcomeUnknown is returned (wrapped) by Rewrap when it cannot tell
// what its write did: the write failed (or its response was lost) and
// reading back what is stored failed too, or the write succeeded and the
// check that the object is still the one read could not be made. No other
// writer is known to be involved. The object opens with its old envelope
// or its new one (they hold the same data key); Rewrap again settles it
// (AlreadyCurrent if the write landed), and RewrapAll lists it for retry.
var ErrOutcomeUnknown = errors.New("s3crypto: the outcome of the rewrap's write could not be checked; rewrap the object again")

// ErrRotationNotEnforced is returned (wrapped) by Rewrap with
// EnforceRotation when the old master key can still unwrap the new wrapped
// data key: the "new" master key is the old one under another description,
// or the old key can otherwise read what the new one wrote.
var ErrRotationNotEnforced = errors.New("s3crypto: the old master key can still unwrap the rewrapped data key")

// RewrapStatus says what Rewrap found and did.
type RewrapStatus int

const (
	// Rewrapped: the data key was rewrapped under the provider's current
	// master key and the new envelope was written (not with DryRun: see
	// RewrapOutput.Written).
	Rewrapped RewrapStatus = iota + 1
	// AlreadyCurrent: the envelope is already wrapped by the current master
	// key; nothing was written.
	AlreadyCurrent
	// NotEncrypted: the object has no envelope (it was not client-side
	// encrypted); nothing was written.
	NotEncrypted
	// EnvelopeObject: the object holds another's envelope (an instruction
	// file, <key>.instruction, or an SSE-C companion, <key>.ssec); it is
	// rewrapped with that object.
	EnvelopeObject
)

func (s RewrapStatus) String() string {
	switch s {
	case Rewrapped:
		return "rewrapped"
	case AlreadyCurrent:
		return "already current"
	case NotEncrypted:
		return "not encrypted"
	case EnvelopeObject:
		return "envelope object"
	}
	return fmt.Sprintf("RewrapStatus(%d)", int(s))
}

// envelopeStorage says where a client-side object's envelope is stored.
type envelopeStorage int

const (
	inMetadata        envelopeStorage = iota + 1 // the object's user metadata
	inInstructionFile                            // <key>.instruction (V3 keeps three fields on the object)
)

// RewrapInput names one object to rewrap.
type RewrapInput struct {
	Bucket *string
	Key    *string
	// ExpectedBucketOwner and RequestPayer go with every request the
	// rewrap makes, as on S3's own inputs.
	ExpectedBucketOwner *string
	RequestPayer        types.RequestPayer
	// ETag, if set, is the ETag the object must have when the rewrap reads
	// it (for example the ETag a listing returned); otherwise the rewrap
	// fails with ErrConcurrentModification before it does anything.
	ETag *string
	// DryRun does everything but the write: the envelope is read, the data
	// key unwrapped, rewrapped and verified, and the output says what would
	// be written.
	DryRun bool
	// EnforceRotation refuses (ErrRotationNotEnforced) a new wrapped key
	// that the old master key can still unwrap.
	EnforceRotation bool
	// Rekey, for an SSECClient, also retires the object's data key: S3
	// copies the object onto itself from the old SSE-C key to a fresh one
	// (the data never leaves S3), and the companion then holds only the new
	// key. The old data key no longer opens anything (except older versions,
	// in a versioned bucket). A Client refuses Rekey: its data keys are
	// retired by reading and putting the object.
	Rekey bool
	// ReEncrypt says whether a KMS → KMS rewrap (a KMS-wrapped object, a
	// keyring.KMS current master key, a provider from materials) uses KMS
	// ReEncrypt, one request that never brings the data key out of KMS, in
	// place of Decrypt and Encrypt. Nil: for V2 objects and SSE-C
	// companions only (they have no key commitment to check); true: for
	// every format; false: never. A re-encrypted V3 or segmented object's
	// key commitment is not checked against its data key at rewrap time (it
	// still is on every read), and no new wrap is unwrapped to verify it
	// (see RewrapOutput.ReEncrypted). A KMS client without a ReEncrypt
	// method is used as if it were false, and so, when ReEncrypt is nil, is
	// KMS refusing ReEncrypt for want of permission (the rewrap then costs
	// that one refused request more).
	ReEncrypt *bool
}

// RewrapOutput says what Rewrap found and did.
type RewrapOutput struct {
	Status RewrapStatus
	// Format is the object's format (V2 or V3), unchanged by a rewrap; zero
	// when the object is not encrypted.
	Format envelope.Format
	// InstructionFile says the envelope is (and stays) in <key>.instruction,
	// not in the object's metadata. (An SSE-C object's keys are always in
	// its companion, <key>.ssec.)
	InstructionFile bool
	// OldWrap and NewWrap are the wrap algorithms before and after (NewWrap
	// is empty unless Status is Rewrapped).
	OldWrap, NewWrap string
	// OldDescription and NewDescription are the master keys' descriptions
	// (for KMS, the encryption context) before and after.
	OldDescription, NewDescription map[string]string
	// Written is true when the new envelope was stored (false with DryRun).
	Written bool
	// Verified is true when the current master key unwrapped the new
	// envelope, exactly as it was to be stored, back to the same data key
	// before it was written. A rewrap to a master key that can wrap but not
	// unwrap (an RSA public key) is not Verified: then only the V3 key
	// commitment (for V3 objects) was checked.
	Verified bool
	// ReEncrypted is true when KMS ReEncrypt rewrapped the data key (see
	// RewrapInput.ReEncrypt): it never left KMS, and KMS, not this client,
	// vouches that the new wrap holds the same data key (Verified is false).
	ReEncrypted bool
	// Multipart is true when a metadata envelope was written by a multipart
	// copy (objects over 5 GiB).
	Multipart bool
	// Rekeyed is true when the object was copied onto itself under a new
	// data key (RewrapInput.Rekey).
	Rekeyed bool
	// ETag and VersionId are those of what was written: the object for a
	// metadata envelope, the instruction file for an instruction-file one.
	ETag, VersionId *string
}

// Rewrap rotates the master key of one object without touching its body
// (see Rotation in the package doc): the data key is unwrapped, wrapped
// again under the provider's current master key, checked, and the new
// envelope written in place of the old, guarded so that a concurrent write
// is never overwritten (ErrConcurrentModification). Objects already under
// the current key (AlreadyCurrent), without an envelope (NotEncrypted) and
// instruction files and companions (EnvelopeObject) are not written.
func (c *Client) Rewrap(ctx context.Context, in *RewrapInput, optFns ...func(*s3.Options)) (_ *RewrapOutput, err error) {
	if in == nil || aws.ToString(in.Bucket) == "" || aws.ToString(in.Key) == "" {
		return nil, &ObjectError{Op: "Rewrap", Err: errors.New("a bucket and a key are needed")}
	}
	defer wrapObjectError(&err, "Rewrap", in.Bucket, in.Key)
	if in.Rekey {
		return nil, fmt.Errorf("%w: Rekey is for SSE-C objects; a client-side object's data key is replaced by reading and putting it", envelope.ErrUnsupported)
	}
	cc := *c
	cc.api = withRequest(c.api, in.ExpectedBucketOwner, in.RequestPayer, optFns)
	return cc.rewrap(ctx, in)
}

// rewrapRead is what a rewrap read: the object's HEAD, and the instruction
// file when the envelope is there.
type rewrapRead struct {
	head    *s3.HeadObjectOutput
	env     *format.Envelope
	storage envelopeStorage
	instr   *s3.GetObjectOutput // the instruction file's GET (body read and closed)
}

func (c *Client) rewrap(ctx context.Context, in *RewrapInput) (*RewrapOutput, error) {
	rd, out, err := c.readForRewrap(ctx, in)
	if err != nil || out != nil {
		return out, err
	}
	env := rd.env
	out = &RewrapOutput{
		Format:          env.Format,
		InstructionFile: rd.storage == inInstructionFile,
		OldWrap:         env.Key.Algorithm,
		OldDescription:  maps.Clone(env.Key.Description),
	}
	if err := c.checkRewrappable(env); err != nil {
		return out, err
	}
	current := c.provider.Current()
	if current == nil {
		return out, fmt.Errorf("%w: the provider has no current master key to rewrap with", envelope.ErrNoMasterKey)
	}
	rctx := readContext(ctx, &env.Key)
	isCurrent, refused, err := alreadyCurrent(rctx, current, env)
	if err != nil {
		return out, err
	}
	if isCurrent {
		out.Status = AlreadyCurrent
		return out, nil
	}

	rw, err := c.rewrapKey(ctx, in, env, current, refused, format.RewrapOptions{
		Metadata:        rd.head.Metadata,
		InstructionFile: rd.storage == inInstructionFile,
		UnwrapContext:   readContext,
		WrapContext: func(ctx context.Context, old *envelope.WrappedKey) context.Context {
			return wrapContext(ctx, current, old)
		},
	}, out)
	if err != nil {
		return out, err
	}
	defer rw.Close()
	newKey := &rw.Envelope.Key
	out.NewWrap = newKey.Algorithm
	out.NewDescription = maps.Clone(newKey.Description)
	if rd.storage == inMetadata {
		if size := metadataSize(rw.Metadata); size > maxMetadataSize {
			return out, fmt.Errorf("%w: metadata with the new envelope is %d bytes, over S3's %d", envelope.ErrTooLarge, size, maxMetadataSize)
		}
	}
	out.Verified = rw.Verified
	if in.EnforceRotation {
		if err := enforceRotation(wrapContext(ctx, current, &env.Key), c.provider, current, &env.Key, rw.Envelope); err != nil {
			return out, err
		}
	}

	out.Status = Rewrapped
	if in.DryRun {
		return out, nil
	}
	if rd.storage == inMetadata {
		err = c.writeMetadataEnvelope(ctx, in, rd, rw.Metadata, newKey, out)
	} else {
		err = c.writeInstructionFile(ctx, in, rd, rw, out)
	}
	if err != nil {
		return out, err
	}
	out.Written = true
	return out, nil
}

// reEncrypter is a provider that rewraps a KMS-wrapped data key under a
// KMS master key inside KMS: materials' providers and caches have it (see
// their ReEncrypt); Provider does not require it.
type reEncrypter interface {
	ReEncrypt(ctx context.Context, w *envelope.WrappedKey, contentAlg string, to *keyring.KMS) (*envelope.WrappedKey, error)
}

// rewrapKey makes the new envelope: by KMS ReEncrypt when wanted and
// possible (see tryReEncrypt; V2 has no key commitment), otherwise the data
// key is unwrapped (not asking current again when it refused the data key
// in alreadyCurrent: refused), wrapped again, serialized as it will be
// stored, decoded back and checked in internal/format. Either way the data
// key never comes up here.
func (c *Client) rewrapKey(ctx context.Context, in *RewrapInput, env *format.Envelope, current keyring.Keyring, refused error, opts format.RewrapOptions, out *RewrapOutput) (*format.Rewrapped, error) {
	newKey, err := tryReEncrypt(ctx, c.provider, current, in.ReEncrypt, env.Format != envelope.FormatV2, &env.Key, env.ContentAlgorithm)
	switch {
	case err != nil:
		return nil, err
	case newKey != nil:
		out.ReEncrypted = true
		return format.ReplaceKey(env, newKey, opts)
	}
	unwrap := &pastCurrent{p: c.provider, refusals: []refusal{{&env.Key, refused}}}
	return format.Rewrap(ctx, env, unwrap, current, current, opts)
}

// tryReEncrypt rewraps w under current with KMS ReEncrypt when pref asks
// for it (nil: unless the format commits to its data key), w is a KMS
// wrap, current a keyring.KMS, and the provider can (reEncrypter). It
// returns nil and no error when the rewrap is to unwrap and wrap instead:
// ReEncrypt not wanted or not possible, the KMS client without it, or —
// when pref is nil — KMS refusing it for want of permission.
func tryReEncrypt(ctx context.Context, p materials.Provider, current keyring.Keyring, pref *bool, commits bool, w *envelope.WrappedKey, contentAlg string) (*envelope.WrappedKey, error) {
	to, toKMS := current.(*keyring.KMS)
	re, canReEncrypt := p.(reEncrypter)
	want := !commits
	if pref != nil {
		want = *pref
	}
	if !want || !toKMS || !canReEncrypt || !kmsctx.Binds(w.Algorithm) {
		return nil, nil
	}
	newKey, err := re.ReEncrypt(readContext(ctx, w), w, contentAlg, to)
	switch {
	case err == nil:
		return newKey, nil
	case errors.Is(err, errors.ErrUnsupported):
	case pref == nil && isAccessDenied(err):
		// The default chose ReEncrypt, not the caller: a role granted
		// kms:Decrypt and kms:Encrypt but not kms:ReEncrypt* rotates as it
		// did before ReEncrypt was used.
	default:
		return nil, fmt.Errorf("re-encrypting the data key in KMS: %w", err)
	}
	return nil, nil
}

// isAccessDenied reports whether KMS refused a request for want of a
// permission (AWS KMS does not model the error as a type).
func isAccessDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException"
}

// readContext is the context to unwrap an object's data key with: the
// caller's expected encryption context applies to a KMS wrap; for any
// other, a context on ctx is the one for the new wrap (see RewrapAll), not
// an expectation.
func readContext(ctx context.Context, old *envelope.WrappedKey) context.Context {
	if kmsctx.Binds(old.Algorithm) {
		return ctx
	}
	return keyring.WithEncryptionContext(ctx, nil)
}

// wrapContext is the context to wrap the data key again with. A KMS master
// key keeps the object's KMS encryption context (less what the old wrap
// added itself), or takes the caller's for an object that had none. Any
// other master key binds no context: an old KMS one is dropped, and one on
// ctx is left for the master key to refuse.
func wrapContext(ctx context.Context, current keyring.Keyring, old *envelope.WrappedKey) context.Context {
	_, toKMS := current.(*keyring.KMS)
	switch {
	case !kmsctx.Binds(old.Algorithm):
		return ctx
	case !toKMS:
		return keyring.WithEncryptionContext(ctx, nil)
	}
	return keyring.WithEncryptionContext(ctx, kmsctx.Carried(old))
}

// readForRewrap reads the object's metadata and envelope. A non-nil output
// means there is nothing to rewrap.
func (c *Client) readForRewrap(ctx context.Context, in *RewrapInput) (*rewrapRead, *RewrapOutput, error) {
	head, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       in.Bucket,
		Key:          in.Key,
		IfMatch:      in.ETag,
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return nil, nil, s3Error("reading the object's metadata", err)
	}
	key := aws.ToString(in.Key)
	isInstrName := strings.HasSuffix(key, format.InstructionSuffix)
	if isInstrName && hasKeyFold(head.Metadata, format.InstructionMarker) {
		return nil, &RewrapOutput{Status: EnvelopeObject}, nil
	}
	rd := &rewrapRead{head: head, storage: inMetadata}
	if format.HasEnvelope(head.Metadata) {
		rd.env, err = format.Decode(head.Metadata, nil)
		if err != nil {
			return nil, nil, err
		}
		return rd, nil, nil
	}
	instr, err := c.api.GetObject(ctx, &s3.GetObjectInput{
		Bucket: in.Bucket,
		Key:    aws.String(key + format.InstructionSuffix),
	})
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		_, err := format.Decode(head.Metadata, nil)
		if errors.Is(err, envelope.ErrNoEnvelope) {
			if isInstrName {
				// An instruction file written without the marker (or a
				// plain object with that name): nothing to rewrap.
				return nil, &RewrapOutput{Status: EnvelopeObject}, nil
			}
			return nil, &RewrapOutput{Status: NotEncrypted}, nil
		}
		if err == nil {
			err = fmt.Errorf("%w: inconsistent envelope", envelope.ErrMalformed)
		}
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, s3Error("reading the instruction file", err)
	}
	raw, err := io.ReadAll(io.LimitReader(instr.Body, format.MaxInstructionSize+1))
	instr.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the instruction file: %w", err)
	}
	rd.env, err = format.Decode(head.Metadata, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("instruction file: %w", err)
	}
	rd.storage = inInstructionFile
	rd.instr = instr
	return rd, nil, nil
}

// checkRewrappable refuses envelopes the client's options do not allow or
// that cannot be written back. Stored metadata never widens the options:
// the same rules as for reading apply.
func (c *Client) checkRewrappable(env *format.Envelope) error {
	switch {
	case env.Format == envelope.FormatV1 || env.ContentAlgorithm == format.ContentAESCBC:
		return fmt.Errorf("%w: a V1 (AES/CBC) object cannot be rewrapped; re-encrypt it (read it and put it again)", envelope.ErrUnsupported)
	case format.IsLegacyWrap(env.Key.Algorithm) && !c.opts.EnableLegacyWrappingAlgorithms:
		return fmt.Errorf("%w: wrap algorithm %s is legacy; enable legacy wrapping algorithms to rewrap it", envelope.ErrDisallowed, env.Key.Algorithm)
	case env.Format != envelope.FormatV3 && env.Format != envelope.FormatSegmented && c.opts.CommitmentPolicy == envelope.RequireEncryptRequireDecrypt:
		return fmt.Errorf("%w: %v object is not key-committing and %v reads only V3; use RequireEncryptAllowDecrypt to rewrap it", envelope.ErrPolicy, env.Format, c.opts.CommitmentPolicy)
	}
	return nil
}

// alreadyCurrent reports whether the current master key wrapped env's data
// key. A key matched by description must also unwrap it (a description
// shared by two keys is an error, not a skip), unless it can only wrap. A
// KMS key matches any KMS wrap, so only a successful Decrypt under the
// current key's ID (KMS refuses a blob of another key) makes it current;
// refused is then KMS's refusal (a matcher's, in general), for the rewrap's
// unwrap not to ask the same again (pastCurrent). A legacy wrap is never
// current: rewrapping upgrades it.
func alreadyCurrent(ctx context.Context, current keyring.Keyring, env *format.Envelope) (isCurrent bool, refused, err error) {
	if format.IsLegacyWrap(env.Key.Algorithm) || !materials.Matches(current, &env.Key) {
		return false, nil, nil
	}
	unwrapped, err := env.UnwrapsWith(ctx, current)
	if unwrapped {
		// The envelope is current; it must still be the body's (a rewrap
		// that a server let land beside a new body is found here).
		if err != nil {
			return false, nil, fmt.Errorf("the object's key commitment does not match its data key — the object and its envelope disagree: %w", err)
		}
		return true, nil, nil
	}
	_, byMatcher := current.(interface {
		Matches(*envelope.WrappedKey) bool
	})
	switch {
	case errors.Is(err, envelope.ErrWrapOnly):
		return true, nil, nil
	case byMatcher && (errors.Is(err, envelope.ErrAuthentication) || isIncorrectKMSKey(err)):
		return false, err, nil
	case byMatcher:
		return false, nil, fmt.Errorf("checking whether the current master key wrapped the data key: %w", err)
	}
	return false, nil, fmt.Errorf("the current master key matches the stored description but does not unwrap the data key: %w", err)
}

// refusal is the current master key's answer to alreadyCurrent for one
// wrapped key: err, when it refused it as another key's; nil otherwise.
type refusal struct {
	w   *envelope.WrappedKey
	err error
}

// pastCurrent is the provider as a rewrap's unwrap. For a wrapped key that
// the current master key refused in alreadyCurrent, it has the provider
// skip that key (UnwrapSkippingCurrent, which materials' providers and
// caches have) rather than ask it again what it was just asked — the same
// blob, key, context and content algorithm, so the same refusal: on KMS,
// one Decrypt less per object. The other keys are tried as Unwrap tries
// them, and the refusal is the error where Unwrap would return the current
// key's. A provider without the method, or a key not refused, is asked as
// by Unwrap.
type pastCurrent struct {
	p        materials.Provider
	refusals []refusal
}

// currentSkipper is a provider that can unwrap without asking its current
// master key again (see pastCurrent).
type currentSkipper interface {
	UnwrapSkippingCurrent(ctx context.Context, w *envelope.WrappedKey, contentAlg string, refused error) ([]byte, error)
}

func (u *pastCurrent) Unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
	if s, ok := u.p.(currentSkipper); ok && w != nil {
		for _, r := range u.refusals {
			if r.err != nil && sameWrap(r.w, w) && maps.Equal(r.w.Description, w.Description) {
				return s.UnwrapSkippingCurrent(ctx, w, contentAlg, r.err)
			}
		}
	}
	return u.p.Unwrap(ctx, w, contentAlg)
}

func isIncorrectKMSKey(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "IncorrectKeyException" || ae.ErrorCode() == "InvalidCiphertextException")
}

// enforceRotation fails when the old master key (the one that wrapped old)
// unwraps the new envelope, decoded. ctx carries the wrap's KMS encryption
// context.
//
// When the current key matches the old wrap without being its key (a KMS
// key matches every KMS wrap, and KMS refused to decrypt the old data key
// under the current key's ID), the provider resolves the old wrap to the
// current key and cannot name the old one; KMS keeps the two apart (a KMS
// key given by ID decrypts only its own blobs), so there is nothing to check.
func enforceRotation(ctx context.Context, p materials.Provider, current keyring.Keyring, old *envelope.WrappedKey, decoded *format.Envelope) error {
	if materials.Matches(current, old) {
		return nil
	}
	oldKey, err := p.Resolve(ctx, old)
	if err != nil {
		return fmt.Errorf("finding the old master key to enforce the rotation: %w", err)
	}
	if unwrapped, _ := decoded.UnwrapsWith(ctx, oldKey); unwrapped {
		return fmt.Errorf("%w (old description %s)", ErrRotationNotEnforced, format.EncodeDescription(old.Description))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func hasKeyFold(m map[string]string, key string) bool {
	for k := range m {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// isPrecondition reports whether err is S3 refusing a conditional request.
func isPrecondition(err error) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == 412 {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict")
}

// s3Error wraps an S3 error, typing a refused precondition.
func s3Error(what string, err error) error {
	if isPrecondition(err) {
		return fmt.Errorf("%s: %w: %w", what, ErrConcurrentModification, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
