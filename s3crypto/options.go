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

// S3API is the part of *s3.Client that Client calls. *s3.Client satisfies
// it, and so can a test double (a SSECClient adds its
// https checks to every call's options, which a double may ignore). The methods after DeleteObject are used
// only by Rewrap, RewrapAll and Uploader; a test double that never uses
// them can stub them.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)

	CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, optFns ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

var _ S3API = (*s3.Client)(nil)
