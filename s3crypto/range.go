package s3crypto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/segment"
)

// byteRange is a parsed HTTP Range of one range: bytes=first-last,
// bytes=first- (last < 0) or bytes=-suffix.
type byteRange struct {
	first, last, suffix int64
}

func parseRange(h string) (byteRange, error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	bad := fmt.Errorf("%w: Range %q is not one range bytes=a-b, bytes=a- or bytes=-n", envelope.ErrInvalidRange, h)
	if !ok || strings.Contains(spec, ",") {
		return byteRange{}, bad
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return byteRange{}, bad
	}
	num := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n >= 0 && strconv.FormatInt(n, 10) == s
	}
	switch {
	case a == "":
		n, ok := num(b)
		if !ok || n == 0 {
			return byteRange{}, bad
		}
		return byteRange{first: -1, last: -1, suffix: n}, nil
	case b == "":
		n, ok := num(a)
		if !ok {
			return byteRange{}, bad
		}
		return byteRange{first: n, last: -1}, nil
	}
	x, ok1 := num(a)
	y, ok2 := num(b)
	if !ok1 || !ok2 || y < x {
		return byteRange{}, bad
	}
	return byteRange{first: x, last: y}, nil
}

// resolve returns the plaintext bytes [off, off+n) the range selects in a
// plaintext of p bytes, as S3 does: the end is clamped, a suffix longer than
// the object selects all of it, and a range that selects nothing fails.
func (r byteRange) resolve(p int64) (off, n int64, err error) {
	switch {
	case r.suffix > 0:
		off = max(0, p-r.suffix)
	default:
		off = r.first
	}
	end := p
	if r.last >= 0 && r.last < p {
		end = r.last + 1
	}
	if off >= p {
		return 0, 0, fmt.Errorf("%w: range starts at %d, the object holds %d bytes", envelope.ErrInvalidRange, off, p)
	}
	return off, end - off, nil
}

// guess is the ciphertext range to ask for, assuming a segmented object
// with segments of size bytes: exactly the segments that hold the range,
// except for a suffix, whose first segment depends on the length of the
// last one, so up to one segment more is fetched.
func (r byteRange) guess(size int) string {
	s := int64(size)
	stride := s + segment.Overhead
	// Offsets past 2^50 (far beyond S3's largest object) all mean "past the
	// end"; capping them keeps the arithmetic below from overflowing into a
	// Range header S3 would ignore (and answer with the whole object).
	first, last, suffix := min(r.first, 1<<50), min(r.last, 1<<50), min(r.suffix, 1<<50)
	switch {
	case suffix > 0:
		// The last N bytes start up to S-1 bytes into a segment (the final
		// one holds 1…S) and span at most 1+⌈(N-1)/S⌉ segments: this is
		// the largest ciphertext suffix they can need, and less than S+16
		// bytes more than they do need.
		return fmt.Sprintf("bytes=-%d", suffix+s-1+segment.Overhead*(1+(suffix+s-2)/s))
	case last < 0:
		return fmt.Sprintf("bytes=%d-", first/s*stride)
	}
	return fmt.Sprintf("bytes=%d-%d", first/s*stride, (last/s+1)*stride-1)
}

// parseContentRange reads "bytes first-last/size".
func parseContentRange(h string) (first, last, size int64, err error) {
	bad := fmt.Errorf("%w: Content-Range %q", envelope.ErrMalformed, h)
	spec, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	rng, total, ok := strings.Cut(spec, "/")
	a, b, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return 0, 0, 0, bad
	}
	var e1, e2, e3 error
	first, e1 = strconv.ParseInt(a, 10, 64)
	last, e2 = strconv.ParseInt(b, 10, 64)
	size, e3 = strconv.ParseInt(total, 10, 64)
	if e1 != nil || e2 != nil || e3 != nil || first < 0 || last < first || size <= last {
		return 0, 0, 0, bad
	}
	return first, last, size, nil
}

// isInvalidRange reports whether err is S3 answering 416.
func isInvalidRange(err error) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "InvalidRange"
}

// getRange serves a GetObject with a Range. A segmented object's range is
// fetched as the segments that hold it, guessing the segment size so that
// one request usually suffices, and each segment is authenticated before
// any of its bytes are released. V2 and V3 ranges are refused unless legacy
// unauthenticated modes are on.
func (c *Client) getRange(ctx context.Context, in *s3.GetObjectInput, optFns []func(*s3.Options)) (*s3.GetObjectOutput, error) {
	rng, err := parseRange(aws.ToString(in.Range))
	if err != nil {
		return nil, err
	}
	guessSize := c.opts.SegmentSize
	if guessSize == 0 {
		guessSize = format.DefaultSegmentSize
	}
	req := *in
	req.Range = aws.String(rng.guess(guessSize))
	req.ChecksumMode = ""
	optFns = rangedOptFns(optFns)
	out, err := c.api.GetObject(ctx, &req, optFns...)
	var (
		meta                      map[string]string
		etag                      *string
		size, fetchFirst, fetchTo int64 // fetched body bytes [fetchFirst, fetchTo)
	)
	switch {
	case err == nil:
		meta, etag = out.Metadata, out.ETag
		if out.ContentRange == nil {
			// The whole object came back.
			size, fetchTo = aws.ToInt64(out.ContentLength), aws.ToInt64(out.ContentLength)
		} else {
			var last int64
			if fetchFirst, last, size, err = parseContentRange(*out.ContentRange); err != nil {
				out.Body.Close()
				return nil, err
			}
			fetchTo = last + 1
		}
	case isInvalidRange(err):
		// Nothing of the guess exists: the range is past the end, or the
		// guessed segment size is wrong. Ask what the object is.
		head, herr := c.api.HeadObject(ctx, headInput(in), optFns...)
		if herr != nil {
			return nil, herr
		}
		meta, etag, size = head.Metadata, head.ETag, aws.ToInt64(head.ContentLength)
		out = nil
	default:
		return nil, err
	}
	fail := func(err error) (*s3.GetObjectOutput, error) {
		if out != nil {
			out.Body.Close()
		}
		return nil, err
	}
	env, err := c.loadEnvelope(ctx, in.Bucket, in.Key, meta, in.ExpectedBucketOwner, in.RequestPayer, optFns)
	if err != nil {
		return fail(err)
	}
	if env.Format != envelope.FormatSegmented && !c.opts.EnableLegacyUnauthenticatedModes {
		return fail(ErrRange)
	}
	p, err := env.PlaintextSize(size)
	if err != nil {
		return fail(err)
	}
	off, n, err := rng.resolve(p)
	if err != nil {
		return fail(err)
	}
	start, end, err := env.CiphertextRange(size, off, n)
	if err != nil {
		return fail(err)
	}
	if out == nil || fetchFirst > start || fetchTo < end {
		if out != nil {
			out.Body.Close()
		}
		req.Range = aws.String(fmt.Sprintf("bytes=%d-%d", start, end-1))
		if req.IfMatch == nil {
			req.IfMatch = etag // the same object the envelope came from
		}
		if out, err = c.api.GetObject(ctx, &req, optFns...); err != nil {
			return nil, s3Error("ranged GET", err)
		}
		fetchFirst = start
		if out.ContentRange != nil {
			var gotSize int64
			if fetchFirst, _, gotSize, err = parseContentRange(*out.ContentRange); err == nil && gotSize != size {
				err = fmt.Errorf("%w: object changed size between requests", ErrConcurrentModification)
			}
			if err != nil {
				return fail(err)
			}
		}
		if fetchFirst != start {
			return fail(fmt.Errorf("%w: asked for bytes from %d, got them from %d", envelope.ErrMalformed, start, fetchFirst))
		}
	}
	if _, err := io.CopyN(io.Discard, out.Body, start-fetchFirst); err != nil {
		return fail(shortBody(err))
	}
	pt, err := format.OpenRange(ctx, env, c.provider, c.cfg(), announced(out.Body, end-start), size, off, n)
	if err != nil {
		return fail(err)
	}
	res := *out
	res.Body = &plainBody{Plaintext: pt, body: out.Body}
	res.ContentLength = aws.Int64(n)
	res.ContentRange = aws.String(fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, p))
	clearChecksums(&res)
	return &res, nil
}

// shortBody types the end of a body that stopped before the bytes its
// response announced: storage lied about what it sent, which for an
// encrypted object is a failure to authenticate it.
func shortBody(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the body ended before the bytes its response announced: %w", envelope.ErrAuthentication, io.ErrUnexpectedEOF)
	}
	return err
}

// announced is a response body of n bytes, as its response announced: its
// first n bytes, and shortBody's error if it holds fewer.
func announced(body io.Reader, n int64) io.Reader {
	return &exactReader{r: body, left: n, short: func(int64) error { return shortBody(io.EOF) }}
}

// rangedOptFns are the options of a GET of part of an object's ciphertext.
// A whole-object checksum cannot check part of it (and some servers send
// one anyway); GCM authenticates what the range holds.
func rangedOptFns(optFns []func(*s3.Options)) []func(*s3.Options) {
	return append(slices.Clip(optFns), func(o *s3.Options) {
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
}

// headInput is the HeadObject request that describes the object in.
func headInput(in *s3.GetObjectInput) *s3.HeadObjectInput {
	return &s3.HeadObjectInput{
		Bucket: in.Bucket, Key: in.Key, VersionId: in.VersionId,
		IfMatch: in.IfMatch, IfNoneMatch: in.IfNoneMatch,
		IfModifiedSince: in.IfModifiedSince, IfUnmodifiedSince: in.IfUnmodifiedSince,
		SSECustomerAlgorithm: in.SSECustomerAlgorithm, SSECustomerKey: in.SSECustomerKey, SSECustomerKeyMD5: in.SSECustomerKeyMD5,
		ExpectedBucketOwner: in.ExpectedBucketOwner, RequestPayer: in.RequestPayer,
	}
}

// plainBody is a GetObject Body that decrypts as it is read and closes the
// HTTP body with the plaintext.
type plainBody struct {
	*format.Plaintext
	body io.Closer
}

func (b *plainBody) Close() error {
	err := b.Plaintext.Close()
	if cerr := b.body.Close(); err == nil {
		err = cerr
	}
	return err
}

// clearChecksums drops the Checksum* fields of a response, which describe
// the ciphertext.
func clearChecksums(o *s3.GetObjectOutput) {
	o.ChecksumCRC32, o.ChecksumCRC32C, o.ChecksumCRC64NVME, o.ChecksumSHA1, o.ChecksumSHA256 = nil, nil, nil, nil, nil
	o.ChecksumType = ""
}

// NewReaderAt returns a reader of a segmented object's plaintext at
// random offsets (io.ReaderAt, with Size), each read authenticated: it
// heads the object, checks the key commitment and opens the final segment,
// then each ReadAt fetches, with one ranged GET, only the segments it needs.
// Every GET names the ETag the object had when the reader was made, so a
// replaced object fails (ErrConcurrentModification) instead of mixing
// versions. ctx governs every later read. in.Range and in.PartNumber must be
// nil. Objects of other formats fail with envelope.ErrUnsupported.
func (c *Client) NewReaderAt(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (_ *io.SectionReader, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "NewReaderAt", Err: errNilInput}
	}
	defer wrapObjectError(&err, "NewReaderAt", in.Bucket, in.Key)
	if in.Range != nil || in.PartNumber != nil {
		return nil, errors.New("in.Range and in.PartNumber must be nil")
	}
	head, err := c.api.HeadObject(ctx, headInput(in), optFns...)
	if err != nil {
		return nil, err
	}
	env, err := c.loadEnvelope(ctx, in.Bucket, in.Key, head.Metadata, in.ExpectedBucketOwner, in.RequestPayer, optFns)
	if err != nil {
		return nil, err
	}
	req := *in
	if req.IfMatch == nil {
		req.IfMatch = head.ETag
	}
	req.ChecksumMode = ""
	src := &rangeSource{ctx: ctx, api: c.api, in: req, optFns: rangedOptFns(optFns)}
	r, err := format.NewReaderAt(ctx, env, c.provider, c.cfg(), src, aws.ToInt64(head.ContentLength))
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(r, 0, r.Size()), nil
}

// rangeSource reads an object's stored bytes with one ranged GET per
// ReadAt.
type rangeSource struct {
	ctx    context.Context
	api    fullAPI
	in     s3.GetObjectInput
	optFns []func(*s3.Options)
}

func (s *rangeSource) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	req := s.in
	req.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	out, err := s.api.GetObject(s.ctx, &req, s.optFns...)
	if err != nil {
		return 0, s3Error("ranged GET", err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}
