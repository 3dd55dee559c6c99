package s3crypto

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// Rewrap rotates the master key of one SSE-C object: every data key in its
// companion is unwrapped, wrapped again under the provider's current master
// key, checked as Client.Rewrap checks a new envelope, and <key>.ssec is
// rewritten guarded by its ETag; the object is not touched. With Rekey, the object also gets a new data key: S3
// copies it onto itself (the data never leaves S3), and the old data key no
// longer opens it.
func (c *SSECClient) Rewrap(ctx context.Context, in *RewrapInput, optFns ...func(*s3.Options)) (_ *RewrapOutput, err error) {
	if in == nil || aws.ToString(in.Bucket) == "" || aws.ToString(in.Key) == "" {
		return nil, &ObjectError{Op: "Rewrap", Err: errors.New("a bucket and a key are needed")}
	}
	defer wrapObjectError(&err, "Rewrap", in.Bucket, in.Key)
	cc := *c
	cc.api = withRequest(c.api, in.ExpectedBucketOwner, in.RequestPayer, optFns)
	return cc.rewrap(ctx, in)
}

// rewrap rewraps every data key in the object's companion, or with Rekey
// replaces the object's data key by a server-side copy.
func (c *SSECClient) rewrap(ctx context.Context, in *RewrapInput) (*RewrapOutput, error) {
	o := objectRef{bucket: in.Bucket, key: in.Key}
	var optFns []func(*s3.Options)
	comp, etag, err := c.readCompanion(ctx, o, optFns)
	if err != nil {
		return nil, err
	}
	if comp == nil {
		if strings.HasSuffix(aws.ToString(in.Key), format.CompanionSuffix) {
			return &RewrapOutput{Status: EnvelopeObject}, nil
		}
		return &RewrapOutput{Status: NotEncrypted}, nil
	}
	if etag == nil {
		return nil, errors.New("the server returned no ETag for the companion: its rewrite cannot be guarded")
	}
	out := &RewrapOutput{
		OldWrap:        comp.Keys[0].Algorithm,
		OldDescription: maps.Clone(comp.Keys[0].Description),
	}
	current := c.provider.Current()
	if current == nil {
		return out, fmt.Errorf("%w: the provider has no current master key to rewrap with", envelope.ErrNoMasterKey)
	}
	if in.Rekey {
		return out, c.rekeySSEC(ctx, in, o, comp, etag, current, out, optFns)
	}
	if in.ETag != nil {
		if _, _, err := c.headSSEC(ctx, &s3.HeadObjectInput{Bucket: in.Bucket, Key: in.Key, IfMatch: in.ETag}, nil); err != nil {
			return out, s3Error("reading the object", err)
		}
	}
	allCurrent, anyCurrent := true, false
	unwrap := &pastCurrent{p: c.provider}
	for i := range comp.Keys {
		cur, refused, err := alreadyCurrent(readContext(ctx, &comp.Keys[i]), current, format.CustomerEnvelope(&comp.Keys[i]))
		if err != nil {
			return out, err
		}
		unwrap.refusals = append(unwrap.refusals, refusal{&comp.Keys[i], refused})
		allCurrent = allCurrent && cur
		anyCurrent = anyCurrent || cur
	}
	if allCurrent {
		out.Status = AlreadyCurrent
		return out, nil
	}

	wctx := func(ctx context.Context, old *envelope.WrappedKey) context.Context {
		return wrapContext(ctx, current, old)
	}
	var rw *format.RewrappedCompanion
	if !anyCurrent { // ReEncrypt rewraps from the provider's old keys only
		if rw, err = c.reEncryptCompanion(ctx, in, comp, current); err != nil {
			return out, err
		}
		out.ReEncrypted = rw != nil
	}
	if rw == nil {
		// Every key is unwrapped (the current master key not asked again
		// for a key it refused above), wrapped again, and checked as it
		// will be stored in internal/format: these data keys are not sent
		// to S3 here, so they never come up.
		rw, err = format.RewrapCompanion(ctx, comp, unwrap, current, current, format.RewrapOptions{
			UnwrapContext: readContext,
			WrapContext:   wctx,
		})
		if err != nil {
			return out, err
		}
	}
	next := rw.Companion
	out.NewWrap = next.Keys[0].Algorithm
	out.NewDescription = maps.Clone(next.Keys[0].Description)
	out.Verified = rw.Verified
	if in.EnforceRotation {
		for i := range next.Keys {
			if err := enforceRotation(wctx(ctx, &comp.Keys[i]), c.provider, current, &comp.Keys[i], format.CustomerEnvelope(&next.Keys[i])); err != nil {
				return out, err
			}
		}
	}

	out.Status = Rewrapped
	if in.DryRun {
		return out, nil
	}
	res, err := c.writeCompanion(ctx, o, next, etag, optFns)
	if err != nil {
		if err := c.companionWriteFailed(ctx, o, &next.Keys[0], optFns, err); err != nil {
			return out, err
		}
		out.Written = true
		return out, nil
	}
	out.Written = true
	out.ETag, out.VersionId = res.ETag, res.VersionId
	return out, nil
}

// reEncryptCompanion rewraps every key of comp by KMS ReEncrypt (see
// tryReEncrypt: a companion commits to nothing), or returns nil and no
// error when the keys are to be unwrapped and wrapped instead.
func (c *SSECClient) reEncryptCompanion(ctx context.Context, in *RewrapInput, comp *format.Companion, current keyring.Keyring) (*format.RewrappedCompanion, error) {
	keys := make([]envelope.WrappedKey, len(comp.Keys))
	for i := range comp.Keys {
		w, err := tryReEncrypt(ctx, c.provider, current, in.ReEncrypt, false, &comp.Keys[i], format.ContentSSEC)
		if err != nil || w == nil {
			return nil, err
		}
		keys[i] = *w
	}
	return format.ReplaceCompanionKeys(comp, keys)
}

// companionWriteFailed follows a failed companion rewrite: nil when the
// companion's first key is now w (this rewrap's earlier attempt landed, its
// response lost, the SDK's retry refused), the write's error when another
// writer's companion is there, ErrOutcomeUnknown when the companion cannot
// be read to tell.
func (c *SSECClient) companionWriteFailed(ctx context.Context, o objectRef, w *envelope.WrappedKey, optFns []func(*s3.Options), werr error) error {
	const what = "rewriting the companion"
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w: %w", what, ErrOutcomeUnknown, werr)
	}
	comp, _, err := c.readCompanion(ctx, o, optFns)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w: %w (and reading the companion back failed: %w)", what, ErrOutcomeUnknown, werr, err)
	case comp != nil && sameWrap(&comp.Keys[0], w):
		return nil
	}
	return s3Error(what, werr)
}

// rekeySSEC copies the object onto itself from its data key to a fresh one,
// recording the new key in the companion (ahead of the old) before the copy
// and dropping the old one after.
func (c *SSECClient) rekeySSEC(ctx context.Context, in *RewrapInput, o objectRef, comp *format.Companion, etag *string, current keyring.Keyring, out *RewrapOutput, optFns []func(*s3.Options)) error {
	var head *s3.HeadObjectOutput
	var oldKey customerKey
	used, err := c.tryKeys(readContext(ctx, &comp.Keys[0]), comp, func(k customerKey) error {
		var err error
		head, err = c.api.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: in.Bucket, Key: in.Key, IfMatch: in.ETag,
			SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5,
		}, optFns...)
		oldKey = k
		return err
	})
	if err != nil {
		return s3Error("reading the object", err)
	}
	if head.ETag == nil {
		return errors.New("the server returned no ETag: the copy cannot be guarded against a concurrent write")
	}
	wctx := wrapContext(ctx, current, &comp.Keys[used])
	// The new data key is sent to S3 (as the customer key), so it comes up
	// here; it is made, recorded and checked in internal/format.
	fresh, err := format.StageCustomerKey(wctx, current, current, &comp.Keys[used])
	if err != nil {
		return err
	}
	defer clear(fresh.DataKey)
	newKey := newCustomerKey(fresh.DataKey)
	staging := fresh.Companion // the new key, then the old one
	wrapped := &staging.Keys[0]
	out.Verified = fresh.Verified
	if in.EnforceRotation {
		if err := enforceRotation(wctx, c.provider, current, &comp.Keys[used], format.CustomerEnvelope(wrapped)); err != nil {
			return err
		}
	}
	out.NewWrap = wrapped.Algorithm
	out.NewDescription = maps.Clone(wrapped.Description)
	out.Status = Rewrapped
	if in.DryRun {
		return nil
	}

	staged, err := c.writeCompanion(ctx, o, staging, etag, optFns)
	if err != nil {
		return s3Error("recording the new data key in the companion", err)
	}
	cp := &s3.CopyObjectInput{
		Bucket:            in.Bucket,
		Key:               in.Key,
		CopySource:        aws.String(copySource(aws.ToString(in.Bucket), aws.ToString(in.Key))),
		CopySourceIfMatch: head.ETag,
		MetadataDirective: types.MetadataDirectiveCopy,
		TaggingDirective:  types.TaggingDirectiveCopy,
		StorageClass:      head.StorageClass,
		ChecksumAlgorithm: checksumAlgorithm(head),

		ObjectLockMode:            head.ObjectLockMode,
		ObjectLockRetainUntilDate: head.ObjectLockRetainUntilDate,
		ObjectLockLegalHoldStatus: head.ObjectLockLegalHoldStatus,

		CopySourceSSECustomerAlgorithm: oldKey.alg, CopySourceSSECustomerKey: oldKey.key, CopySourceSSECustomerKeyMD5: oldKey.md5,
		SSECustomerAlgorithm: newKey.alg, SSECustomerKey: newKey.key, SSECustomerKeyMD5: newKey.md5,
	}
	if cp.StorageClass == types.StorageClassStandard {
		cp.StorageClass = ""
	}
	sk := &stagedKey{c: c, o: o, optFns: optFns, key: newKey, wrapped: *wrapped, prev: comp, etag: staged.ETag}
	if aws.ToInt64(head.ContentLength) > multipartCopyThreshold {
		// S3 copies at most 5 GiB at once: part by part, each part from
		// the old key to the new, the metadata given again.
		out.Multipart = true
		completeFailed := func(err error) (*string, *string, error) {
			return nil, nil, s3Error("completing the multipart copy", err)
		}
		err = multipartCopy(ctx, c.api, in, head, head.Metadata, &copyKeys{old: oldKey, new: newKey}, completeFailed, optFns, out)
		if err != nil {
			sk.abandon(ctx)
			return fmt.Errorf("copying the object onto itself under the new data key: %w", err)
		}
	} else {
		res, err := c.api.CopyObject(ctx, cp, optFns...)
		if err != nil {
			sk.abandon(ctx)
			return s3Error("copying the object onto itself under the new data key", err)
		}
		if res.CopyObjectResult != nil {
			out.ETag = res.CopyObjectResult.ETag
		}
		out.VersionId = res.VersionId
	}
	out.Rekeyed, out.Written = true, true
	if _, err := c.writeCompanion(ctx, o, &format.Companion{Keys: staging.Keys[:1]}, staged.ETag, optFns); err != nil {
		return fmt.Errorf("the object was re-keyed, but dropping the old wrapped key from the companion failed (that key opens nothing now): %w", err)
	}
	return nil
}
