package s3crypto

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
)

// Options configure a Client. The zero value is the strictest: V3 written,
// only V3 read, envelopes in object metadata, no legacy algorithms.
type Options struct {
	// Config holds Format, CommitmentPolicy, the segment settings
	// (SegmentSize, SegmentWorkers), the legacy switches
	// (EnableLegacyUnauthenticatedModes, EnableLegacyWrappingAlgorithms) and
	// the spool settings (SpoolDir, SpoolMemory, SpoolLimit); its fields
	// are promoted.
	envelope.Config

	// InstructionFile writes each new object's envelope to a separate object,
	// <key>.instruction, instead of the object's metadata. Reading always
	// looks at metadata first and at the instruction file when metadata holds
	// no envelope, whatever this is set to.
	InstructionFile bool
}

// S3API is the part of *s3.Client that every client needs; *s3.Client
// satisfies it. The features beyond PutObject, GetObject, HeadObject and
// DeleteObject use more of *s3.Client's methods, when the value passed to
// New has them: DeleteObjects; the Uploader CreateMultipartUpload,
// UploadPart, CompleteMultipartUpload and AbortMultipartUpload; Rewrap
// CopyObject, GetObjectTagging and, past 5 GiB, UploadPartCopy and the
// multipart calls; RewrapAll ListObjectsV2; SSECClient.CopyObject
// CopyObject. A feature whose methods are missing fails with an error that
// names them, so a test double implements only what it uses.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}
