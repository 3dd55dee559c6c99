package s3crypto

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// fullAPI is every S3 call this package makes. *s3.Client has them all; a
// narrower S3API is completed by partialAPI.
type fullAPI interface {
	S3API
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, optFns ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

var _ fullAPI = (*s3.Client)(nil)

// complete returns api with every call this package makes: api itself when
// it has them (an *s3.Client), else api with the missing ones failing.
func complete(api S3API) fullAPI {
	if f, ok := api.(fullAPI); ok {
		return f
	}
	return partialAPI{api}
}

// partialAPI is an S3API without some of *s3.Client's other methods: each
// is called if the value has it, and fails, naming it, if not.
type partialAPI struct{ S3API }

func (p partialAPI) missing(method string) error {
	return fmt.Errorf("the S3 client (%T) has no %s method, which this operation needs", p.S3API, method)
}

func (p partialAPI) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	if f, ok := p.S3API.(interface {
		DeleteObjects(context.Context, *s3.DeleteObjectsInput, ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	}); ok {
		return f.DeleteObjects(ctx, in, optFns...)
	}
	return nil, p.missing("DeleteObjects")
}

func (p partialAPI) CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	if f, ok := p.S3API.(interface {
		CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	}); ok {
		return f.CopyObject(ctx, in, optFns...)
	}
	return nil, p.missing("CopyObject")
}

func (p partialAPI) GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error) {
	if f, ok := p.S3API.(interface {
		GetObjectTagging(context.Context, *s3.GetObjectTaggingInput, ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
	}); ok {
		return f.GetObjectTagging(ctx, in, optFns...)
	}
	return nil, p.missing("GetObjectTagging")
}

func (p partialAPI) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	if f, ok := p.S3API.(interface {
		ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	}); ok {
		return f.ListObjectsV2(ctx, in, optFns...)
	}
	return nil, p.missing("ListObjectsV2")
}

func (p partialAPI) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	if f, ok := p.S3API.(interface {
		CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	}); ok {
		return f.CreateMultipartUpload(ctx, in, optFns...)
	}
	return nil, p.missing("CreateMultipartUpload")
}

func (p partialAPI) UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, optFns ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error) {
	if f, ok := p.S3API.(interface {
		UploadPartCopy(context.Context, *s3.UploadPartCopyInput, ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error)
	}); ok {
		return f.UploadPartCopy(ctx, in, optFns...)
	}
	return nil, p.missing("UploadPartCopy")
}

func (p partialAPI) UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if f, ok := p.S3API.(interface {
		UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	}); ok {
		return f.UploadPart(ctx, in, optFns...)
	}
	return nil, p.missing("UploadPart")
}

func (p partialAPI) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	if f, ok := p.S3API.(interface {
		CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	}); ok {
		return f.CompleteMultipartUpload(ctx, in, optFns...)
	}
	return nil, p.missing("CompleteMultipartUpload")
}

func (p partialAPI) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	if f, ok := p.S3API.(interface {
		AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	}); ok {
		return f.AbortMultipartUpload(ctx, in, optFns...)
	}
	return nil, p.missing("AbortMultipartUpload")
}

// requestAPI gives every request of an operation that makes several (a
// rewrap, a walk) the caller's bucket owner, requester-pays flag and
// request options, each where the request does not set its own.
type requestAPI struct {
	api    fullAPI
	owner  *string
	payer  types.RequestPayer
	optFns []func(*s3.Options)
}

// withRequest returns api giving its requests owner, payer and optFns.
func withRequest(api fullAPI, owner *string, payer types.RequestPayer, optFns []func(*s3.Options)) fullAPI {
	if owner == nil && payer == "" && len(optFns) == 0 {
		return api
	}
	return &requestAPI{api: api, owner: owner, payer: payer, optFns: slices.Clip(optFns)}
}

func (r *requestAPI) opts(optFns []func(*s3.Options)) []func(*s3.Options) {
	return append(slices.Clip(r.optFns), optFns...)
}

func setOwner(owner **string, payer *types.RequestPayer, r *requestAPI) {
	if *owner == nil {
		*owner = r.owner
	}
	if *payer == "" {
		*payer = r.payer
	}
}

func (r *requestAPI) PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.PutObject(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.GetObject(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.HeadObject(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.DeleteObject(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.DeleteObjects(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	if req.ExpectedSourceBucketOwner == nil {
		req.ExpectedSourceBucketOwner = r.owner
	}
	return r.api.CopyObject(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.GetObjectTagging(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.ListObjectsV2(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.CreateMultipartUpload(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, optFns ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	if req.ExpectedSourceBucketOwner == nil {
		req.ExpectedSourceBucketOwner = r.owner
	}
	return r.api.UploadPartCopy(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.UploadPart(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.CompleteMultipartUpload(ctx, &req, r.opts(optFns)...)
}

func (r *requestAPI) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	req := *in
	setOwner(&req.ExpectedBucketOwner, &req.RequestPayer, r)
	return r.api.AbortMultipartUpload(ctx, &req, r.opts(optFns)...)
}
