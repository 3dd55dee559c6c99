package s3crypto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// Objects larger than multipartCopyThreshold are copied part by part, in
// parts of at least multipartCopyPartSize: S3 copies at most 5 GiB in one
// CopyObject, and a multipart upload has at most 10,000 parts. Variables so
// that tests can exercise the multipart copy on small objects.
var (
	multipartCopyThreshold int64 = 5 << 30
	multipartCopyPartSize  int64 = 512 << 20
)

const maxParts = 10000

// writeMetadataEnvelope stores newMeta as the object's metadata by a copy
// of the object onto itself, guarded by the ETag read.
func (c *Client) writeMetadataEnvelope(ctx context.Context, in *RewrapInput, rd *rewrapRead, newMeta map[string]string, newKey *envelope.WrappedKey, out *RewrapOutput) error {
	h := rd.head
	if h.ETag == nil {
		return errors.New("the server returned no ETag: the copy cannot be guarded against a concurrent write")
	}
	// What shows afterwards that the copy's body is the one read, should
	// the server not honour CopySourceIfMatch: the ETag, when it is the
	// body's MD5; otherwise the body's last 16 bytes (its GCM tag), read
	// now, guarded by the ETag.
	var tag []byte
	if aws.ToInt64(h.ContentLength) > multipartCopyThreshold || !md5ETag(h) {
		var err error
		if tag, err = c.lastBytes(ctx, in, h.ETag); err != nil {
			return s3Error("reading the object's tag", err)
		}
	}
	if aws.ToInt64(h.ContentLength) > multipartCopyThreshold {
		out.Multipart = true
		completeFailed := func(err error) (etag, version *string, _ error) {
			landed, err := c.writeFailed(ctx, in, newKey, inMetadata, "completing the multipart copy", err)
			if err != nil {
				return nil, nil, err
			}
			return landed.head.ETag, landed.head.VersionId, nil
		}
		if err := multipartCopy(ctx, c.api, in, rd.head, newMeta, nil, completeFailed, nil, out); err != nil {
			return err
		}
		return c.confirmCopy(ctx, in, h, tag, out.ETag)
	}
	cp := &s3.CopyObjectInput{
		Bucket:            in.Bucket,
		Key:               in.Key,
		CopySource:        aws.String(copySource(aws.ToString(in.Bucket), aws.ToString(in.Key))),
		CopySourceIfMatch: h.ETag,
		MetadataDirective: types.MetadataDirectiveReplace,
		Metadata:          newMeta,
		TaggingDirective:  types.TaggingDirectiveCopy,

		ContentType:             h.ContentType,
		ContentEncoding:         h.ContentEncoding,
		ContentDisposition:      h.ContentDisposition,
		ContentLanguage:         h.ContentLanguage,
		CacheControl:            h.CacheControl,
		WebsiteRedirectLocation: h.WebsiteRedirectLocation,
		StorageClass:            h.StorageClass,
		ChecksumAlgorithm:       checksumAlgorithm(h),

		ServerSideEncryption: h.ServerSideEncryption,
		SSEKMSKeyId:          h.SSEKMSKeyId,
		BucketKeyEnabled:     h.BucketKeyEnabled,

		ObjectLockMode:                   h.ObjectLockMode,
		ObjectLockRetainUntilDate:        h.ObjectLockRetainUntilDate,
		ObjectLockLegalHoldStatus:        h.ObjectLockLegalHoldStatus,
		ObjectLockEventHold:              h.ObjectLockEventHold,
		ObjectLockEventHoldDurationDays:  h.ObjectLockEventHoldDurationDays,
		ObjectLockEventHoldDurationYears: h.ObjectLockEventHoldDurationYears,
	}
	if cp.StorageClass == types.StorageClassStandard {
		cp.StorageClass = "" // the default, and what HEAD omits on AWS
	}
	res, err := c.api.CopyObject(ctx, cp, rawExpires(h))
	if err != nil {
		landed, err := c.writeFailed(ctx, in, newKey, inMetadata, "copying the object onto itself with the new envelope", err)
		if err != nil {
			return err
		}
		out.ETag, out.VersionId = landed.head.ETag, landed.head.VersionId
	} else {
		if res.CopyObjectResult != nil {
			out.ETag = res.CopyObjectResult.ETag
		}
		out.VersionId = res.VersionId
	}
	return c.confirmCopy(ctx, in, h, tag, out.ETag)
}

// md5ETag reports whether the object's ETag is the MD5 of its body, as S3
// makes it for a body written in one piece, unencrypted or under SSE-S3;
// a copy of the same body then has the same ETag.
func md5ETag(h *s3.HeadObjectOutput) bool {
	e := strings.Trim(aws.ToString(h.ETag), `"`)
	if len(e) != 32 || strings.Trim(e, "0123456789abcdefABCDEF") != "" {
		return false // a multipart ETag ("…-N"), or not S3's
	}
	return h.SSECustomerAlgorithm == nil &&
		(h.ServerSideEncryption == "" || h.ServerSideEncryption == types.ServerSideEncryptionAes256)
}

// lastBytes reads the object's last 16 bytes — a GCM tag, for V2, V3 and
// the segmented format — guarded by etag.
func (c *Client) lastBytes(ctx context.Context, in *RewrapInput, etag *string) ([]byte, error) {
	res, err := c.api.GetObject(ctx, &s3.GetObjectInput{
		Bucket: in.Bucket, Key: in.Key, IfMatch: etag, Range: aws.String(fmt.Sprintf("bytes=-%d", format.TagSize)),
	}, rangedOptFns(nil)...)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	tag := make([]byte, format.TagSize)
	if _, err := io.ReadFull(res.Body, tag); err != nil {
		return nil, fmt.Errorf("%w: %d-byte tail: %w", envelope.ErrMalformed, format.TagSize, err)
	}
	return tag, nil
}

// errReplacedUnguarded is what a rewrap reports when it finds that it
// wrote the old envelope beside a body another writer stored meanwhile:
// the server did not honour the write's condition.
func errReplacedUnguarded(what string) error {
	return fmt.Errorf("%w: the object was replaced during the rewrap and the server did not honour the write's condition: %s now holds the old object's envelope, which does not open the new body; restore the object's previous version, or write it again", ErrConcurrentModification, what)
}

// confirmCopy checks, after a metadata rewrap, that the object's body is
// still the one read (whose data key the new envelope holds): by its ETag
// (newETag, what the copy made) when that is the body's MD5, otherwise by
// its last 16 bytes against tag, read before the copy.
func (c *Client) confirmCopy(ctx context.Context, in *RewrapInput, h *s3.HeadObjectOutput, tag []byte, newETag *string) error {
	if newETag == nil {
		head, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: in.Bucket, Key: in.Key})
		if err != nil {
			return fmt.Errorf("%w: the new envelope was written, but reading the object back to confirm its body failed: %w", ErrOutcomeUnknown, err)
		}
		newETag = head.ETag
	}
	if tag == nil {
		if aws.ToString(newETag) != aws.ToString(h.ETag) {
			return errReplacedUnguarded("the object")
		}
		return nil
	}
	after, err := c.lastBytes(ctx, in, newETag)
	if err != nil {
		return fmt.Errorf("%w: the new envelope was written, but reading the object back to confirm its body failed: %w", ErrOutcomeUnknown, err)
	}
	if !bytes.Equal(after, tag) {
		return errReplacedUnguarded("the object")
	}
	return nil
}

// rawExpires sends the object's Expires header exactly as it was stored
// (HeadObject's parsed Expires is lossy, and deprecated).
func rawExpires(h *s3.HeadObjectOutput) func(*s3.Options) {
	return func(o *s3.Options) {
		if h.ExpiresString != nil && *h.ExpiresString != "" {
			o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue("Expires", *h.ExpiresString))
		}
	}
}

// checksumAlgorithm is the algorithm of the checksum the object carries, so
// that the copy keeps the same kind of checksum.
func checksumAlgorithm(h *s3.HeadObjectOutput) types.ChecksumAlgorithm {
	for _, c := range []struct {
		v   *string
		alg types.ChecksumAlgorithm
	}{
		{h.ChecksumCRC64NVME, types.ChecksumAlgorithmCrc64nvme},
		{h.ChecksumCRC32, types.ChecksumAlgorithmCrc32},
		{h.ChecksumCRC32C, types.ChecksumAlgorithmCrc32c},
		{h.ChecksumSHA1, types.ChecksumAlgorithmSha1},
		{h.ChecksumSHA256, types.ChecksumAlgorithmSha256},
		{h.ChecksumSHA512, types.ChecksumAlgorithmSha512},
		{h.ChecksumMD5, types.ChecksumAlgorithmMd5},
		{h.ChecksumXXHASH64, types.ChecksumAlgorithmXxhash64},
		{h.ChecksumXXHASH3, types.ChecksumAlgorithmXxhash3},
		{h.ChecksumXXHASH128, types.ChecksumAlgorithmXxhash128},
	} {
		if c.v != nil && *c.v != "" {
			return c.alg
		}
	}
	return ""
}

// copyKeys are the SSE-C keys of a re-keying copy: the object's, and the
// copy's.
type copyKeys struct{ old, new customerKey }

// multipartCopy writes newMeta by copying the object onto itself part by
// part: each UploadPartCopy is guarded by the ETag read (h's), and the
// completion by If-Match on it. Any failure aborts the upload. With keys,
// an SSE-C object is copied from its old key to the new one. A complete
// that fails is judged by completeFailed: what landed, or the error.
func multipartCopy(ctx context.Context, api fullAPI, in *RewrapInput, h *s3.HeadObjectOutput, newMeta map[string]string, keys *copyKeys,
	completeFailed func(error) (etag, version *string, err error), optFns []func(*s3.Options), out *RewrapOutput) (err error) {
	size := aws.ToInt64(h.ContentLength)
	var tagging *string
	if aws.ToInt32(h.TagCount) > 0 || h.TagCount == nil {
		tags, err := api.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: in.Bucket, Key: in.Key, VersionId: h.VersionId}, optFns...)
		if err != nil {
			return s3Error("reading the object's tags", err)
		}
		if len(tags.TagSet) > 0 {
			v := url.Values{}
			for _, t := range tags.TagSet {
				v.Add(aws.ToString(t.Key), aws.ToString(t.Value))
			}
			tagging = aws.String(v.Encode())
		}
	}
	create := &s3.CreateMultipartUploadInput{
		Bucket:   in.Bucket,
		Key:      in.Key,
		Metadata: newMeta,
		Tagging:  tagging,

		ContentType:             h.ContentType,
		ContentEncoding:         h.ContentEncoding,
		ContentDisposition:      h.ContentDisposition,
		ContentLanguage:         h.ContentLanguage,
		CacheControl:            h.CacheControl,
		WebsiteRedirectLocation: h.WebsiteRedirectLocation,
		StorageClass:            h.StorageClass,

		ServerSideEncryption: h.ServerSideEncryption,
		SSEKMSKeyId:          h.SSEKMSKeyId,
		BucketKeyEnabled:     h.BucketKeyEnabled,

		ObjectLockMode:                   h.ObjectLockMode,
		ObjectLockRetainUntilDate:        h.ObjectLockRetainUntilDate,
		ObjectLockLegalHoldStatus:        h.ObjectLockLegalHoldStatus,
		ObjectLockEventHold:              h.ObjectLockEventHold,
		ObjectLockEventHoldDurationDays:  h.ObjectLockEventHoldDurationDays,
		ObjectLockEventHoldDurationYears: h.ObjectLockEventHoldDurationYears,
	}
	if create.StorageClass == types.StorageClassStandard {
		create.StorageClass = ""
	}
	if keys != nil {
		create.SSECustomerAlgorithm, create.SSECustomerKey, create.SSECustomerKeyMD5 = keys.new.alg, keys.new.key, keys.new.md5
	}
	mpu, err := api.CreateMultipartUpload(ctx, create, append(slices.Clip(optFns), rawExpires(h))...)
	if err != nil {
		return s3Error("starting the multipart copy", err)
	}
	completed := false
	defer func() {
		if completed {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, aerr := api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: in.Bucket, Key: in.Key, UploadId: mpu.UploadId,
		}, optFns...); aerr != nil {
			err = fmt.Errorf("%w (and aborting the multipart upload %s failed: %v)", err, aws.ToString(mpu.UploadId), aerr)
		}
	}()

	partSize := max(multipartCopyPartSize, (size+maxParts-1)/maxParts)
	src := aws.String(copySource(aws.ToString(in.Bucket), aws.ToString(in.Key)))
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < size; n, off = n+1, off+partSize {
		end := min(off+partSize, size) - 1
		part := &s3.UploadPartCopyInput{
			Bucket:            in.Bucket,
			Key:               in.Key,
			UploadId:          mpu.UploadId,
			PartNumber:        aws.Int32(n),
			CopySource:        src,
			CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
			CopySourceIfMatch: h.ETag,
		}
		if keys != nil {
			part.CopySourceSSECustomerAlgorithm, part.CopySourceSSECustomerKey, part.CopySourceSSECustomerKeyMD5 = keys.old.alg, keys.old.key, keys.old.md5
			part.SSECustomerAlgorithm, part.SSECustomerKey, part.SSECustomerKeyMD5 = keys.new.alg, keys.new.key, keys.new.md5
		}
		res, err := api.UploadPartCopy(ctx, part, optFns...)
		if err != nil {
			return s3Error(fmt.Sprintf("copying part %d", n), err)
		}
		if res.CopyPartResult == nil || res.CopyPartResult.ETag == nil {
			return fmt.Errorf("copying part %d: the server returned no ETag", n)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: res.CopyPartResult.ETag})
	}
	complete := &s3.CompleteMultipartUploadInput{
		Bucket:          in.Bucket,
		Key:             in.Key,
		UploadId:        mpu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfMatch:         h.ETag,
	}
	if keys != nil {
		complete.SSECustomerAlgorithm, complete.SSECustomerKey, complete.SSECustomerKeyMD5 = keys.new.alg, keys.new.key, keys.new.md5
	}
	res, err := api.CompleteMultipartUpload(ctx, complete, optFns...)
	if err != nil {
		etag, version, err := completeFailed(err)
		if err != nil {
			return err
		}
		completed = true
		out.ETag, out.VersionId = etag, version
		return nil
	}
	completed = true
	out.ETag = res.ETag
	out.VersionId = res.VersionId
	return nil
}

// writeInstructionFile rewrites <key>.instruction, guarded by the ETag read,
// and then confirms that the object beside it is still the one read. The
// instruction file keeps its own user metadata (with the marker AWS's Java
// client sets).
func (c *Client) writeInstructionFile(ctx context.Context, in *RewrapInput, rd *rewrapRead, rw *format.Rewrapped, out *RewrapOutput) error {
	instr, newKey := rw.Instruction, &rw.Envelope.Key
	if rd.instr.ETag == nil {
		return errors.New("the server returned no ETag for the instruction file: its rewrite cannot be guarded")
	}
	meta := make(map[string]string, len(rd.instr.Metadata)+1)
	for k, v := range rd.instr.Metadata {
		meta[k] = v
	}
	if !hasKeyFold(meta, format.InstructionMarker) {
		meta[format.InstructionMarker] = ""
	}
	res, err := c.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        in.Bucket,
		Key:           aws.String(aws.ToString(in.Key) + format.InstructionSuffix),
		Body:          bytes.NewReader(instr),
		ContentLength: aws.Int64(int64(len(instr))),
		Metadata:      meta,
		ContentType:   rd.instr.ContentType,
		IfMatch:       rd.instr.ETag,
	})
	if err != nil {
		landed, err := c.writeFailed(ctx, in, newKey, inInstructionFile, "rewriting the instruction file", err)
		if err != nil {
			return err
		}
		out.ETag, out.VersionId = landed.instr.ETag, landed.instr.VersionId
	} else {
		out.ETag, out.VersionId = res.ETag, res.VersionId
	}
	return c.confirmInstruction(ctx, in, rd, rw)
}

// confirmInstruction checks, after an instruction file was rewritten, that
// the object is still the one read: its ETag unchanged and, for V3 and the
// segmented format, the commitment on the object still that of the data
// key the new file holds (rw checks it; the key stays in format). Should
// the server not have honoured If-Match on the object's replacement, the
// old data key now sits beside a new body: that is reported, as is a newer
// writer's envelope that replaced ours.
func (c *Client) confirmInstruction(ctx context.Context, in *RewrapInput, rd *rewrapRead, rw *format.Rewrapped) error {
	head, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: in.Bucket, Key: in.Key})
	var nf *types.NotFound
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("%w: the object was deleted while its instruction file was rewritten", ErrConcurrentModification)
	case err != nil:
		return fmt.Errorf("%w: the new instruction file was written, but reading the object back to confirm it failed: %w", ErrOutcomeUnknown, err)
	}
	if aws.ToString(head.ETag) == aws.ToString(rd.head.ETag) {
		env, err := format.Decode(head.Metadata, rw.Instruction)
		if err == nil {
			err = rw.CheckDataKey(env)
		}
		if err == nil {
			return nil
		}
	}
	// The object changed: is the instruction file beside it still ours?
	now, _, err := c.readForRewrap(ctx, &RewrapInput{Bucket: in.Bucket, Key: in.Key})
	if err != nil {
		return fmt.Errorf("%w: the object changed after its instruction file was rewritten, and reading it back failed: %w", ErrOutcomeUnknown, err)
	}
	if now != nil && now.storage == inInstructionFile && sameWrap(&now.env.Key, &rw.Envelope.Key) {
		return errReplacedUnguarded(aws.ToString(in.Key) + format.InstructionSuffix)
	}
	return fmt.Errorf("%w: the object and its envelope were replaced after the rewrap wrote; the newer envelope stands", ErrConcurrentModification)
}

// writeFailed follows a rewrap's write that returned an error: it reads
// the envelope stored now. It returns what it read when the new envelope is
// there (an earlier attempt of the same write landed, its response lost,
// the SDK's retry refused), the write's error when another envelope is
// there (or the object is gone), and ErrOutcomeUnknown when it cannot tell.
func (c *Client) writeFailed(ctx context.Context, in *RewrapInput, newKey *envelope.WrappedKey, storage envelopeStorage, what string, werr error) (*rewrapRead, error) {
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrOutcomeUnknown, werr)
	}
	rd, out, err := c.readForRewrap(ctx, &RewrapInput{Bucket: in.Bucket, Key: in.Key})
	var nf *types.NotFound
	switch {
	case errors.As(err, &nf):
		return nil, s3Error(what, werr) // deleted meanwhile
	case err != nil:
		return nil, fmt.Errorf("%s: %w: %w (and reading what is stored now failed: %w)", what, ErrOutcomeUnknown, werr, err)
	case out == nil && rd.storage == storage && sameWrap(&rd.env.Key, newKey):
		return rd, nil
	}
	return nil, s3Error(what, werr)
}

// sameWrap reports whether two wrapped keys are the same bytes. Wrapped
// keys are randomized (AES-GCM IV, OAEP, KMS), so no other writer stores
// the same.
func sameWrap(a, b *envelope.WrappedKey) bool {
	return a.Algorithm == b.Algorithm && bytes.Equal(a.Ciphertext, b.Ciphertext)
}

// copySource is the x-amz-copy-source value for bucket/key: every byte but
// unreserved characters and the slashes percent-encoded (servers decode it
// as a query component, where "+" would become a space).
func copySource(bucket, key string) string {
	var b strings.Builder
	for _, s := range []string{bucket, "/", key} {
		for i := 0; i < len(s); i++ {
			ch := s[i]
			switch {
			case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
				ch == '-', ch == '_', ch == '.', ch == '~', ch == '/':
				b.WriteByte(ch)
			default:
				fmt.Fprintf(&b, "%%%02X", ch)
			}
		}
	}
	return b.String()
}
