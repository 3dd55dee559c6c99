package s3crypto_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// memS3 is an in-process stand-in for the four S3 calls, for fast unit tests.
// The tests against a real server (versitygw) are in s3_test.go.
type memS3 struct {
	noRewrapS3
	mu      sync.Mutex
	objects map[string]memObject
	calls   []string
	// rangedBytes counts the body bytes served to ranged GETs.
	rangedBytes int64
}

type memObject struct {
	body []byte
	meta map[string]string
}

func newMemS3() *memS3 { return &memS3{objects: map[string]memObject{}} }

func (m *memS3) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	if in.ContentLength != nil && *in.ContentLength != int64(len(b)) {
		return nil, io.ErrUnexpectedEOF
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "put "+*in.Key)
	m.objects[*in.Key] = memObject{body: b, meta: maps.Clone(in.Metadata)}
	return &s3.PutObjectOutput{ETag: aws.String(`"etag"`)}, nil
}

func (m *memS3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "get "+*in.Key)
	o, ok := m.objects[*in.Key]
	if !ok {
		return nil, &types.NoSuchKey{Message: aws.String("no such key")}
	}
	out := &s3.GetObjectOutput{
		Body:          io.NopCloser(bytes.NewReader(o.body)),
		ContentLength: aws.Int64(int64(len(o.body))),
		Metadata:      maps.Clone(o.meta),
		ChecksumCRC32: aws.String("ciphertext-crc"),
		ETag:          aws.String(`"etag"`),
	}
	if in.Range != nil {
		first, last, ok := memRange(*in.Range, int64(len(o.body)))
		if !ok {
			return nil, &smithy.GenericAPIError{Code: "InvalidRange", Message: "range not satisfiable"}
		}
		m.rangedBytes += last - first + 1
		out.Body = io.NopCloser(bytes.NewReader(o.body[first : last+1]))
		out.ContentLength = aws.Int64(last - first + 1)
		out.ContentRange = aws.String(fmt.Sprintf("bytes %d-%d/%d", first, last, len(o.body)))
	}
	return out, nil
}

// memRange resolves one HTTP range over size bytes as S3 does.
func memRange(h string, size int64) (first, last int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	a, b, found2 := strings.Cut(spec, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 || size == 0 {
			return 0, 0, false
		}
		return max(0, size-n), size - 1, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first >= size {
		return 0, 0, false
	}
	last = size - 1
	if b != "" {
		if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
			return 0, 0, false
		}
		last = min(last, size-1)
	}
	return first, last, true
}

func (m *memS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[*in.Key]
	if !ok {
		return nil, &types.NotFound{}
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(int64(len(o.body))), Metadata: maps.Clone(o.meta), ETag: aws.String(`"etag"`)}, nil
}

func (m *memS3) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "delete "+*in.Key)
	delete(m.objects, *in.Key)
	return &s3.DeleteObjectOutput{}, nil
}

func (m *memS3) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, _ ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := &s3.DeleteObjectsOutput{}
	for _, o := range in.Delete.Objects {
		m.calls = append(m.calls, "delete "+*o.Key)
		delete(m.objects, *o.Key)
		if !aws.ToBool(in.Delete.Quiet) {
			out.Deleted = append(out.Deleted, types.DeletedObject{Key: o.Key})
		}
	}
	return out, nil
}

func (m *memS3) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.objects {
		out = append(out, k)
	}
	return out
}

func (m *memS3) object(k string) memObject {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.objects[k]
	return memObject{body: bytes.Clone(o.body), meta: maps.Clone(o.meta)}
}

func (m *memS3) set(k string, o memObject) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[k] = o
}

// noRewrapS3 stubs the S3API methods that only Rewrap and RewrapAll call,
// for the in-process doubles: rewraps are tested against a real server.
type noRewrapS3 struct{}

var errNoRewrap = errors.New("test double: not implemented (rewrap is tested against versitygw)")

func (noRewrapS3) CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	return nil, errNoRewrap
}

func (noRewrapS3) GetObjectTagging(context.Context, *s3.GetObjectTaggingInput, ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error) {
	return nil, errNoRewrap
}

func (noRewrapS3) ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return nil, errNoRewrap
}

func (noRewrapS3) CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return nil, errNoRewrap
}

func (noRewrapS3) UploadPartCopy(context.Context, *s3.UploadPartCopyInput, ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error) {
	return nil, errNoRewrap
}

func (noRewrapS3) UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	return nil, errNoRewrap
}

func (noRewrapS3) CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	return nil, errNoRewrap
}

func (noRewrapS3) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return nil, errNoRewrap
}
