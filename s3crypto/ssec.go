package s3crypto

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/materials"
)

// SSECClient stores objects with S3's server-side encryption under
// customer-provided keys (SSE-C), and manages those keys with the keyrings,
// descriptions, providers and rotation of client-side objects: each object
// gets a fresh 256-bit data key, sent to S3 as the customer key with every
// request on the object and never stored; its wrapped form is kept in the
// companion object <key>.ssec. S3 sees plaintext and key while it serves a
// request, and discards the key. Requests go only to https endpoints
// (ErrInsecureEndpoint). Its methods have *s3.Client's signatures. It is
// safe for concurrent use.
type SSECClient struct {
	api      fullAPI
	provider materials.Provider
}

// NewSSEC returns an SSECClient that stores objects through api, wrapping
// data keys with p's current master key. It refuses (ErrInsecureEndpoint)
// an *s3.Client whose requests could reach a URL that is not https.
func NewSSEC(api S3API, p materials.Provider) (*SSECClient, error) {
	if err := checkClientArgs("NewSSEC", api, p); err != nil {
		return nil, err
	}
	if err := checkEndpoint(api); err != nil {
		return nil, fmt.Errorf("s3crypto: NewSSEC: %w", err)
	}
	return &SSECClient{api: &httpsOnly{api: complete(api)}, provider: p}, nil
}

// ErrInsecureEndpoint is returned for a SSECClient whose
// requests could reach a URL that is not https, before anything is sent
// there: by New, for an S3 client whose BaseEndpoint is plain HTTP (or
// whose HTTP client's redirects cannot be kept to https); by any request,
// listings included, whose endpoint is not https; and by a request that
// is redirected off https (the redirect is not followed). A customer key
// sent in clear text is disclosed: AWS refuses such requests, and the key
// is then to be considered lost.
var ErrInsecureEndpoint = errors.New("s3crypto: refusing to send an SSE-C request to a plain-HTTP endpoint; SSE-C keys travel only over HTTPS")

// ErrManagedCustomerKey is returned when a request to a
// SSECClient sets the SSECustomer* (or
// CopySourceSSECustomer*) fields itself: the client chooses and supplies
// every key.
var ErrManagedCustomerKey = errors.New("s3crypto: the SSE-C key is managed by the client; leave the SSECustomer* fields unset")

// ErrCustomerKeyRefused means S3 refused every data key the object's
// companion holds (HTTP 403): the object was written with a key this
// library did not record, such as by another client, or the companion was
// replaced.
var ErrCustomerKeyRefused = errors.New("s3crypto: S3 refused the object's recorded SSE-C data keys")

// sseAlgorithm is the only SSE-C algorithm S3 has.
const sseAlgorithm = "AES256"

// customerKey is a data key as the SSE-C request headers carry it.
type customerKey struct {
	alg, key, md5 *string
}

// newCustomerKey renders a 256-bit data key as SSE-C headers: the key and
// the MD5 of its 32 raw bytes, both in base64.
func newCustomerKey(dataKey []byte) customerKey {
	sum := md5.Sum(dataKey)
	return customerKey{
		alg: aws.String(sseAlgorithm),
		key: aws.String(base64.StdEncoding.EncodeToString(dataKey)),
		md5: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
}

// objectRef names an object and the request fields that every request
// about it carries.
type objectRef struct {
	bucket, key, owner *string
	payer              types.RequestPayer
}

func (o objectRef) companion() *string {
	return aws.String(aws.ToString(o.key) + format.CompanionSuffix)
}

func checkUnsetCustomerKey(alg, key, md5 *string) error {
	if alg != nil || key != nil || md5 != nil {
		return ErrManagedCustomerKey
	}
	return nil
}

// readCompanion reads an object's companion: nil (and no error) when there
// is none, and its ETag.
func (c *SSECClient) readCompanion(ctx context.Context, o objectRef, optFns []func(*s3.Options)) (*format.Companion, *string, error) {
	out, err := c.api.GetObject(ctx, &s3.GetObjectInput{
		Bucket: o.bucket, Key: o.companion(), ExpectedBucketOwner: o.owner, RequestPayer: o.payer,
	}, optFns...)
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, s3Error("reading the companion "+aws.ToString(o.companion()), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, format.MaxInstructionSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the companion %s: %w", aws.ToString(o.companion()), err)
	}
	comp, err := format.ParseCompanion(b)
	if err != nil {
		return nil, nil, fmt.Errorf("companion %s: %w", aws.ToString(o.companion()), err)
	}
	return comp, out.ETag, nil
}

// writeCompanion stores comp as the object's companion, only if the stored
// one still has etag (or, with a nil etag, if there is none).
func (c *SSECClient) writeCompanion(ctx context.Context, o objectRef, comp *format.Companion, etag *string, optFns []func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := comp.Marshal()
	if err != nil {
		return nil, err
	}
	in := &s3.PutObjectInput{
		Bucket: o.bucket, Key: o.companion(),
		Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))),
		ContentType:         aws.String("application/json"),
		ExpectedBucketOwner: o.owner, RequestPayer: o.payer,
	}
	if etag != nil {
		in.IfMatch = etag
	} else {
		in.IfNoneMatch = aws.String("*")
	}
	return c.api.PutObject(ctx, in, optFns...)
}

// stagedKey is a new data key recorded in an object's companion, ahead of
// the key of the object stored now, before the object is written with it.
// After the write, commit drops the old key; after a failed write, abandon
// puts the companion back.
type stagedKey struct {
	c       *SSECClient
	o       objectRef
	optFns  []func(*s3.Options)
	key     customerKey
	wrapped envelope.WrappedKey
	prev    *format.Companion // the companion before, nil if none
	etag    *string           // the companion's ETag after staging
}

// companionAttempts bounds the read-and-write rounds of a companion update
// that lose to concurrent writers.
const companionAttempts = 3

// stageKey makes a fresh data key for the object and records it in the
// companion first, keeping the key of the object stored now second:
// whenever the object write fails or is cut off, the object that is there
// keeps a key at hand. The companion update is guarded by its ETag and
// retried when another writer updated it first.
func (c *SSECClient) stageKey(ctx context.Context, o objectRef, optFns []func(*s3.Options)) (*stagedKey, error) {
	current := c.provider.Current()
	if current == nil {
		return nil, fmt.Errorf("%w: the provider has no current master key", envelope.ErrNoMasterKey)
	}
	dataKey, wrapped, err := format.NewCustomerKey(ctx, current)
	if err != nil {
		return nil, fmt.Errorf("making a data key: %w", err)
	}
	s := &stagedKey{c: c, o: o, optFns: optFns, key: newCustomerKey(dataKey), wrapped: *wrapped}
	clear(dataKey)
	for attempt := 1; ; attempt++ {
		prev, etag, err := c.readCompanion(ctx, o, optFns)
		if err != nil {
			return nil, fmt.Errorf("%w; nothing was written%s", err, companionHint(err))
		}
		keys := []envelope.WrappedKey{s.wrapped}
		if prev != nil {
			live, err := c.liveKey(ctx, o, prev, optFns)
			if err != nil {
				return nil, err
			}
			keys = append(keys, prev.Keys[live])
		}
		out, err := c.writeCompanion(ctx, o, &format.Companion{Keys: keys}, etag, optFns)
		if err == nil {
			s.prev, s.etag = prev, out.ETag
			return s, nil
		}
		if !isPrecondition(err) || attempt == companionAttempts {
			return nil, s3Error("recording the new data key in the companion", err)
		}
	}
}

// companionHint is advice for a write refused because the companion could
// not be read: only a companion that was read and cannot be used (damaged,
// of an unknown version, too large) is in the way for good, and only then
// is deleting it — which loses the stored object's key — the way forward.
// A network failure, a refused request or a cancelled context is retried.
func companionHint(err error) string {
	if errors.Is(err, envelope.ErrMalformed) || errors.Is(err, envelope.ErrUnsupported) || errors.Is(err, envelope.ErrTooLarge) {
		return " (the companion cannot be used: deleting it lets the object be written, and loses the stored object's key)"
	}
	return ""
}

// liveKey returns the index of the companion's key that opens the object.
// A companion of one key is settled: that key. Two keys mean a write was
// interrupted (or is in flight): S3 is asked which one the object has; the
// first, when neither opens it or the object is gone.
func (c *SSECClient) liveKey(ctx context.Context, o objectRef, comp *format.Companion, optFns []func(*s3.Options)) (int, error) {
	if len(comp.Keys) == 1 {
		return 0, nil
	}
	i, err := c.tryKeys(ctx, comp, func(k customerKey) error {
		_, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: o.bucket, Key: o.key, ExpectedBucketOwner: o.owner, RequestPayer: o.payer,
			SSECustomerAlgorithm: k.alg, SSECustomerKey: k.key, SSECustomerKeyMD5: k.md5,
		}, optFns...)
		return err
	})
	var nf *types.NotFound
	switch {
	case err == nil:
		return i, nil
	case errors.Is(err, ErrCustomerKeyRefused), errors.As(err, &nf):
		return 0, nil
	}
	return 0, fmt.Errorf("finding which recorded key opens the stored object: %w", err)
}

// commit drops the replaced object's key from the companion once the
// object is written with the staged key. If another writer updated the
// companion since, it is left as that writer made it.
func (s *stagedKey) commit(ctx context.Context) {
	if s.prev == nil {
		return // the companion holds the staged key alone already
	}
	_, _ = s.c.writeCompanion(ctx, s.o, &format.Companion{Keys: []envelope.WrappedKey{s.wrapped}}, s.etag, s.optFns)
}

// abandon follows a failed object write. If the object turns out written
// with the staged key after all (a response lost), the write is committed;
// if S3 refuses the staged key or the object is gone, the companion is put
// back as it was (unless another writer has updated it since); otherwise
// the companion keeps both keys, and readers try both. Nothing is lost.
func (s *stagedKey) abandon(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, err := s.c.api.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: s.o.bucket, Key: s.o.key, ExpectedBucketOwner: s.o.owner, RequestPayer: s.o.payer,
		SSECustomerAlgorithm: s.key.alg, SSECustomerKey: s.key.key, SSECustomerKeyMD5: s.key.md5,
	}, s.optFns...)
	var nf *types.NotFound
	switch {
	case err == nil:
		s.commit(ctx)
	case !isKeyRefused(err) && !errors.As(err, &nf):
	case s.prev != nil:
		_, _ = s.c.writeCompanion(ctx, s.o, s.prev, s.etag, s.optFns)
	default:
		_, _ = s.c.api.DeleteObject(ctx, &s3.DeleteObjectInput{
			Bucket: s.o.bucket, Key: s.o.companion(), IfMatch: s.etag,
			ExpectedBucketOwner: s.o.owner, RequestPayer: s.o.payer,
		}, s.optFns...)
	}
}

// isKeyRefused reports whether S3 refused a request for its customer key:
// HTTP 403 (a wrong key; HEAD responses carry no error code).
func isKeyRefused(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden
}

// withObjectKey reads the object's companion and calls try with each key it
// holds, newest first, until S3 accepts one. An object without a companion
// fails with the error missing returns.
func (c *SSECClient) withObjectKey(ctx context.Context, o objectRef, optFns []func(*s3.Options), missing func() error, try func(customerKey) error) error {
	comp, _, err := c.readCompanion(ctx, o, optFns)
	if err != nil {
		return err
	}
	if comp == nil {
		return missing()
	}
	_, err = c.tryKeys(ctx, comp, try)
	return err
}

// tryKeys calls try with each key of comp, newest first, until S3 accepts
// one, and returns its index.
func (c *SSECClient) tryKeys(ctx context.Context, comp *format.Companion, try func(customerKey) error) (int, error) {
	var first error
	for i, w := range comp.Keys {
		dataKey, err := format.OpenCustomerKey(ctx, c.provider, &w)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("unwrapping the data key: %w", err)
			}
			continue
		}
		k := newCustomerKey(dataKey)
		clear(dataKey)
		err = try(k)
		if err == nil || !isKeyRefused(err) {
			return i, err
		}
		if first == nil {
			first = fmt.Errorf("%w: %w", ErrCustomerKeyRefused, err)
		}
	}
	return -1, first
}

// noCompanion is the error for an object that has no companion: S3's own
// when the object does not exist either (so that errors.As finds
// *types.NoSuchKey or *types.NotFound), envelope.ErrNoEnvelope otherwise.
func (c *SSECClient) noCompanion(ctx context.Context, o objectRef, optFns []func(*s3.Options), notFound error) error {
	_, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: o.bucket, Key: o.key, ExpectedBucketOwner: o.owner, RequestPayer: o.payer,
	}, optFns...)
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%w (no companion %s either)", notFound, aws.ToString(o.companion()))
	}
	return fmt.Errorf("%w: no companion %s: the object was not written with a managed SSE-C key, or its key is lost", envelope.ErrNoEnvelope, aws.ToString(o.companion()))
}

// PutObject stores in.Body, which S3 encrypts under a fresh data key. The
// key is recorded (wrapped) in <key>.ssec before the object is written: the
// companion then holds the new key first and the replaced object's key
// second, so an interrupted or failed write never leaves the stored object
// without its key (a failed write puts the companion back). ContentMD5 and
// Checksum* values describe the plaintext S3 receives and are sent.
// SSECustomer* fields must be unset (ErrManagedCustomerKey).
func (c *SSECClient) PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (_ *s3.PutObjectOutput, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "PutObject", Err: errNilInput}
	}
	defer wrapObjectError(&err, "PutObject", in.Bucket, in.Key)
	o := objectRef{bucket: in.Bucket, key: in.Key, owner: in.ExpectedBucketOwner, payer: in.RequestPayer}
	if err := checkUnsetCustomerKey(in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5); err != nil {
		return nil, err
	}
	staged, err := c.stageKey(ctx, o, optFns)
	if err != nil {
		return nil, err
	}
	req := *in
	req.SSECustomerAlgorithm, req.SSECustomerKey, req.SSECustomerKeyMD5 = staged.key.alg, staged.key.key, staged.key.md5
	out, err := c.api.PutObject(ctx, &req, optFns...)
	if err != nil {
		staged.abandon(ctx)
		return nil, err
	}
	staged.commit(ctx)
	return out, nil
}

// GetObject reads the companion, unwraps the data key and sends it as the
// SSE-C key; S3 decrypts, including any Range or PartNumber, and its
// response is returned as it is. When S3 refuses the key (an interrupted
// write leaves two; both are tried) the error wraps ErrCustomerKeyRefused;
// an object without a companion fails with envelope.ErrNoEnvelope, or S3's
// NoSuchKey when it does not exist.
func (c *SSECClient) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (_ *s3.GetObjectOutput, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "GetObject", Err: errNilInput}
	}
	defer wrapObjectError(&err, "GetObject", in.Bucket, in.Key)
	o := objectRef{bucket: in.Bucket, key: in.Key, owner: in.ExpectedBucketOwner, payer: in.RequestPayer}
	if err := checkUnsetCustomerKey(in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5); err != nil {
		return nil, err
	}
	var out *s3.GetObjectOutput
	err = c.withObjectKey(ctx, o, optFns,
		func() error {
			return c.noCompanion(ctx, o, optFns, &types.NoSuchKey{Message: aws.String("The specified key does not exist.")})
		},
		func(k customerKey) error {
			req := *in
			req.SSECustomerAlgorithm, req.SSECustomerKey, req.SSECustomerKeyMD5 = k.alg, k.key, k.md5
			var err error
			out, err = c.api.GetObject(ctx, &req, optFns...)
			return err
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// HeadObject is S3's HEAD with the object's key (read as for GetObject).
func (c *SSECClient) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (_ *s3.HeadObjectOutput, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "HeadObject", Err: errNilInput}
	}
	defer wrapObjectError(&err, "HeadObject", in.Bucket, in.Key)
	out, _, err := c.headSSEC(ctx, in, optFns)
	return out, err
}

// DeleteObject deletes an object and its companion. With a VersionId it
// deletes only that version of the object: the companion belongs to the
// current version and is left alone.
func (c *SSECClient) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return deleteWithCompanion(ctx, c.api, in, format.CompanionSuffix, "companion", optFns)
}

// DeleteObjects deletes up to 1,000 objects in one request, as S3 does,
// and then the companions of those deleted without a VersionId. A
// companion that could not be deleted is reported in the output's Errors,
// under its own key.
func (c *SSECClient) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	return deleteObjectsWithCompanions(ctx, c.api, in, format.CompanionSuffix, optFns)
}

// headSSEC is HeadObject; it also returns the key S3 accepted.
func (c *SSECClient) headSSEC(ctx context.Context, in *s3.HeadObjectInput, optFns []func(*s3.Options)) (*s3.HeadObjectOutput, customerKey, error) {
	o := objectRef{bucket: in.Bucket, key: in.Key, owner: in.ExpectedBucketOwner, payer: in.RequestPayer}
	if err := checkUnsetCustomerKey(in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5); err != nil {
		return nil, customerKey{}, err
	}
	var out *s3.HeadObjectOutput
	var key customerKey
	err := c.withObjectKey(ctx, o, optFns,
		func() error {
			return c.noCompanion(ctx, o, optFns, &types.NotFound{Message: aws.String("Not Found")})
		},
		func(k customerKey) error {
			req := *in
			req.SSECustomerAlgorithm, req.SSECustomerKey, req.SSECustomerKeyMD5 = k.alg, k.key, k.md5
			var err error
			out, err = c.api.HeadObject(ctx, &req, optFns...)
			key = k
			return err
		})
	if err != nil {
		return nil, customerKey{}, err
	}
	return out, key, nil
}

// CopyObject copies an object within S3, with the object's data never
// leaving S3: the copy gets a fresh data key (S3 decrypts the source with
// the source's key and encrypts the copy with the new one, so the copy
// shares no key with its source) and a companion of its own, recorded
// before the copy is made. CopySource names the source as S3 takes it
// ("bucket/key", URL-encoded, optionally "?versionId=…"), and its key is
// read from the source's companion. Objects over 5 GiB cannot be copied in
// one request (S3's limit).
func (c *SSECClient) CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (_ *s3.CopyObjectOutput, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "CopyObject", Err: errNilInput}
	}
	defer wrapObjectError(&err, "CopyObject", in.Bucket, in.Key)
	o := objectRef{bucket: in.Bucket, key: in.Key, owner: in.ExpectedBucketOwner, payer: in.RequestPayer}
	if err := checkUnsetCustomerKey(in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5); err != nil {
		return nil, err
	}
	if err := checkUnsetCustomerKey(in.CopySourceSSECustomerAlgorithm, in.CopySourceSSECustomerKey, in.CopySourceSSECustomerKeyMD5); err != nil {
		return nil, err
	}
	srcBucket, srcKey, err := parseCopySource(aws.ToString(in.CopySource))
	if err != nil {
		return nil, err
	}
	src := objectRef{bucket: aws.String(srcBucket), key: aws.String(srcKey), owner: in.ExpectedSourceBucketOwner, payer: in.RequestPayer}
	if srcBucket == aws.ToString(in.Bucket) && srcKey == aws.ToString(in.Key) {
		return nil, errors.New("copying an object onto itself changes its data key: use Rewrap with Rekey")
	}
	// The source's key first: a source that cannot be read leaves the
	// destination untouched.
	srcComp, _, err := c.readCompanion(ctx, src, optFns)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if srcComp == nil {
		return nil, fmt.Errorf("source: %w", c.noCompanion(ctx, src, optFns, &types.NoSuchKey{Message: aws.String("The specified key does not exist.")}))
	}
	staged, err := c.stageKey(ctx, o, optFns)
	if err != nil {
		return nil, err
	}
	var out *s3.CopyObjectOutput
	err = c.withObjectKey(ctx, src, optFns, func() error { return errors.New("the source's companion disappeared") },
		func(k customerKey) error {
			req := *in
			req.CopySourceSSECustomerAlgorithm, req.CopySourceSSECustomerKey, req.CopySourceSSECustomerKeyMD5 = k.alg, k.key, k.md5
			req.SSECustomerAlgorithm, req.SSECustomerKey, req.SSECustomerKeyMD5 = staged.key.alg, staged.key.key, staged.key.md5
			var err error
			out, err = c.api.CopyObject(ctx, &req, optFns...)
			return err
		})
	if err != nil {
		staged.abandon(ctx)
		return nil, err
	}
	staged.commit(ctx)
	return out, nil
}

// parseCopySource splits a CopySource value into bucket and key.
func parseCopySource(s string) (bucket, key string, err error) {
	s = strings.TrimPrefix(s, "/")
	if i := strings.Index(s, "?"); i >= 0 {
		if !strings.HasPrefix(s[i+1:], "versionId=") {
			return "", "", fmt.Errorf("CopySource %q: unexpected query", s)
		}
		s = s[:i]
	}
	bucket, key, ok := strings.Cut(s, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("CopySource %q is not bucket/key", s)
	}
	if key, err = url.PathUnescape(key); err != nil {
		return "", "", fmt.Errorf("CopySource %q: %w", s, err)
	}
	return bucket, key, nil
}
