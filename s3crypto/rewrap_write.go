package s3crypto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3envelope/s3envelope/envelope"
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
	if aws.ToInt64(h.ContentLength) > multipartCopyThreshold {
		out.Multipart = true
		return c.multipartCopy(ctx, in, rd.head, newMeta, newKey, nil, nil, out)
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
		if c.envelopeLanded(ctx, in, newKey, EnvelopeInMetadata) {
			return nil
		}
		return s3Error("copying the object onto itself with the new envelope", err)
	}
	if res.CopyObjectResult != nil {
		out.ETag = res.CopyObjectResult.ETag
	}
	out.VersionId = res.VersionId
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
// an SSE-C object is copied from its old key to the new one (newKey is
// then not used: the caller checks what landed).
func (c *Client) multipartCopy(ctx context.Context, in *RewrapInput, h *s3.HeadObjectOutput, newMeta map[string]string, newKey *envelope.WrappedKey, keys *copyKeys, optFns []func(*s3.Options), out *RewrapOutput) (err error) {
	size := aws.ToInt64(h.ContentLength)
	var tagging *string
	if aws.ToInt32(h.TagCount) > 0 || h.TagCount == nil {
		tags, err := c.api.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: in.Bucket, Key: in.Key, VersionId: h.VersionId}, optFns...)
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
	mpu, err := c.api.CreateMultipartUpload(ctx, create, append(slices.Clip(optFns), rawExpires(h))...)
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
		if _, aerr := c.api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
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
		res, err := c.api.UploadPartCopy(ctx, part, optFns...)
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
	res, err := c.api.CompleteMultipartUpload(ctx, complete, optFns...)
	if err != nil {
		if keys == nil && c.envelopeLanded(ctx, in, newKey, EnvelopeInMetadata) {
			completed = true
			return nil
		}
		return s3Error("completing the multipart copy", err)
	}
	completed = true
	out.ETag = res.ETag
	out.VersionId = res.VersionId
	return nil
}

// writeInstructionFile rewrites <key>.instruction, guarded by the ETag read.
// The instruction file keeps its own user metadata (with the marker AWS's
// Java client sets).
func (c *Client) writeInstructionFile(ctx context.Context, in *RewrapInput, rd *rewrapRead, instr []byte, newKey *envelope.WrappedKey, out *RewrapOutput) error {
	if rd.instr.ETag == nil {
		return errors.New("the server returned no ETag for the instruction file: its rewrite cannot be guarded")
	}
	meta := make(map[string]string, len(rd.instr.Metadata)+1)
	for k, v := range rd.instr.Metadata {
		meta[k] = v
	}
	if !hasKeyFold(meta, envelope.InstructionMarker) {
		meta[envelope.InstructionMarker] = ""
	}
	res, err := c.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        in.Bucket,
		Key:           aws.String(aws.ToString(in.Key) + envelope.InstructionSuffix),
		Body:          bytes.NewReader(instr),
		ContentLength: aws.Int64(int64(len(instr))),
		Metadata:      meta,
		ContentType:   rd.instr.ContentType,
		IfMatch:       rd.instr.ETag,
	})
	if err != nil {
		if c.envelopeLanded(ctx, in, newKey, EnvelopeInInstructionFile) {
			return nil
		}
		return s3Error("rewriting the instruction file", err)
	}
	out.ETag = res.ETag
	out.VersionId = res.VersionId
	return nil
}

// envelopeLanded reports whether the stored envelope now holds exactly the
// new wrapped key: after a failed write, that tells an earlier attempt of
// this rewrap that succeeded (its response lost, the SDK's retry refused)
// from a concurrent writer. Wrapped keys are randomized (AES-GCM IV, OAEP,
// KMS), so no other writer stores the same bytes.
func (c *Client) envelopeLanded(ctx context.Context, in *RewrapInput, newKey *envelope.WrappedKey, storage EnvelopeStorage) bool {
	if ctx.Err() != nil {
		return false
	}
	rd, out, err := c.readForRewrap(ctx, &RewrapInput{Bucket: in.Bucket, Key: in.Key})
	if err != nil || out != nil || rd.storage != storage {
		return false
	}
	return rd.env.Key.Algorithm == newKey.Algorithm && bytes.Equal(rd.env.Key.Ciphertext, newKey.Ciphertext)
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
