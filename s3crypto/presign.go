package s3crypto

import (
	"context"
	"crypto/subtle"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// PresignedObject is a presigned GET of an object: what a recipient with
// no AWS credentials fetches it with, by any HTTP client, until the URLs
// expire. A URL is a bearer credential for the bytes it names: whoever
// holds it can fetch them.
type PresignedObject struct {
	// URL is the presigned GET of the object.
	URL string
	// InstructionURL is the presigned GET of the object's instruction
	// file, which holds its envelope; "" when the envelope is in the
	// object's metadata (and for an SSECClient's object).
	InstructionURL string
	// header returns the headers to send, nil for none. A func, because
	// fmt prints a func's address whatever the verb and however deep the
	// value is nested, where it prints a map's (or a pointer's) contents:
	// the customer key in them must not reach a log through %v.
	header func() http.Header
}

// Header returns the headers the recipient must send with URL (a copy),
// or nil when there are none (the common case for a Client's object). For
// an SSECClient's object they are the SSE-C headers, which carry the
// object's data key in clear: hand them over as you would the key itself,
// only over an encrypted channel, and never log them (the URL's signature
// covers them, so the URL fetches nothing without them). fmt's %v of a
// PresignedObject does not print them.
func (p *PresignedObject) Header() http.Header {
	if p == nil || p.header == nil {
		return nil
	}
	return p.header()
}

// errPresignRange refuses a Range or PartNumber in a presigned GET of a
// client-side object: OpenObject opens whole bodies only.
var errPresignRange = fmt.Errorf("%w: a presigned GET of an encrypted object shares it whole (Range and PartNumber must be unset)", envelope.ErrDisallowed)

// PresignGetObject presigns a GET of the encrypted object in with pc, a
// presign client of the caller's *s3.Client (s3.NewPresignClient), as
// pc.PresignGetObject would. It first looks at the object through the
// Client (HeadObject, with the request options optFns give in
// s3.PresignOptions.ClientOptions) to find its envelope: in the object's
// metadata, URL alone; in its instruction file, URL and InstructionURL
// (both presigned with the same options). An object with no envelope fails
// with envelope.ErrNoEnvelope: it is not this client's to share as
// encrypted. in.Range and in.PartNumber must be unset.
//
// The recipient fetches the URLs with any HTTP client and opens the
// response with OpenResponse (or OpenObject), holding the master key or a
// provider of it. There is no presigned PUT: a presigned PUT stores the
// bytes its sender sends, so it cannot encrypt (see the package doc).
func (c *Client) PresignGetObject(ctx context.Context, pc *s3.PresignClient, in *s3.GetObjectInput, optFns ...func(*s3.PresignOptions)) (_ *PresignedObject, err error) {
	if in == nil || pc == nil {
		return nil, &ObjectError{Op: "PresignGetObject", Err: fmt.Errorf("%w or presign client", errNilInput)}
	}
	defer wrapObjectError(&err, "PresignGetObject", in.Bucket, in.Key)
	if in.Range != nil || in.PartNumber != nil {
		return nil, errPresignRange
	}
	s3Opts := presignClientOptions(optFns)
	head, err := c.api.HeadObject(ctx, headInput(in), s3Opts...)
	if err != nil {
		return nil, err
	}
	if _, err := c.loadEnvelope(ctx, in.Bucket, in.Key, head.Metadata, in.ExpectedBucketOwner, in.RequestPayer, s3Opts); err != nil {
		if errors.Is(err, envelope.ErrNoEnvelope) {
			return nil, fmt.Errorf("%w: not client-side encrypted, so not shared as encrypted (presign it with the s3.PresignClient itself)", err)
		}
		return nil, err
	}
	p, err := presign(ctx, pc, in, optFns)
	if err != nil {
		return nil, err
	}
	if !format.HasEnvelope(head.Metadata) {
		instr, err := presign(ctx, pc, &s3.GetObjectInput{
			Bucket: in.Bucket, Key: aws.String(aws.ToString(in.Key) + format.InstructionSuffix),
			ExpectedBucketOwner: in.ExpectedBucketOwner, RequestPayer: in.RequestPayer,
		}, optFns)
		if err != nil {
			return nil, fmt.Errorf("instruction file: %w", err)
		}
		if h := instr.Header(); h != nil {
			return nil, fmt.Errorf("the instruction file's presigned GET needs headers (%v): the options ask for more than a plain GET", slices.Sorted(maps.Keys(h)))
		}
		p.InstructionURL = instr.URL
	}
	return p, nil
}

// PresignGetObject presigns a GET of the object in with pc, a presign
// client of the caller's *s3.Client (s3.NewPresignClient), with the
// object's data key as its SSE-C key: it reads the companion and asks S3
// which recorded key opens the object (HeadObject, with the request options
// optFns give in s3.PresignOptions.ClientOptions), as GetObject does. S3
// decrypts what the recipient fetches, so any Range is served. The
// SSECustomer* fields must be unset (ErrManagedCustomerKey).
//
// The result's Header holds the SSE-C headers, the data key among them,
// which the recipient must send with the URL: they are a secret, to be
// handed over as the key itself is (see PresignedObject.Header). The URL
// is refused (ErrInsecureEndpoint) unless it is https, and the key is
// never put in the URL itself: the signature covers the headers instead.
// Once the object is re-keyed (Rewrap with Rekey), or overwritten, the URL
// fetches nothing.
func (c *SSECClient) PresignGetObject(ctx context.Context, pc *s3.PresignClient, in *s3.GetObjectInput, optFns ...func(*s3.PresignOptions)) (_ *PresignedObject, err error) {
	if in == nil || pc == nil {
		return nil, &ObjectError{Op: "PresignGetObject", Err: fmt.Errorf("%w or presign client", errNilInput)}
	}
	defer wrapObjectError(&err, "PresignGetObject", in.Bucket, in.Key)
	if err := checkUnsetCustomerKey(in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5); err != nil {
		return nil, err
	}
	h := headInput(in)
	h.Range, h.PartNumber = nil, nil
	_, k, err := c.headSSEC(ctx, h, presignClientOptions(optFns))
	if err != nil {
		return nil, err
	}
	req := *in
	req.SSECustomerAlgorithm, req.SSECustomerKey, req.SSECustomerKeyMD5 = k.alg, k.key, k.md5
	p, err := presign(ctx, pc, &req, optFns)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(p.URL)
	if err != nil || !strings.EqualFold(u.Scheme, "https") {
		return nil, fmt.Errorf("%w (the presigned URL is %s)", ErrInsecureEndpoint, origin(u))
	}
	for name := range u.Query() {
		if strings.Contains(strings.ToLower(name), "server-side-encryption-customer") {
			return nil, errors.New("the presigner put the SSE-C key in the URL instead of signing it as a header; refusing to return it")
		}
	}
	if h := p.Header(); !sameSecret(h.Get("X-Amz-Server-Side-Encryption-Customer-Key"), *k.key) ||
		h.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5") != *k.md5 {
		return nil, errors.New("the presigner did not sign the SSE-C headers")
	}
	return p, nil
}

// sameSecret compares key material in constant time.
func sameSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// presignClientOptions are the request options of optFns' ClientOptions,
// for the requests that look at the object before it is presigned.
func presignClientOptions(optFns []func(*s3.PresignOptions)) []func(*s3.Options) {
	var o s3.PresignOptions
	for _, fn := range optFns {
		fn(&o)
	}
	return o.ClientOptions
}

// presign presigns a GET of in with pc. The headers a recipient must send
// are the signed ones but Host (which an HTTP client sends from the URL).
func presign(ctx context.Context, pc *s3.PresignClient, in *s3.GetObjectInput, optFns []func(*s3.PresignOptions)) (*PresignedObject, error) {
	req, err := pc.PresignGetObject(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	if req.Method != http.MethodGet {
		return nil, fmt.Errorf("the presign client made a %s, not a GET", req.Method)
	}
	p := &PresignedObject{URL: req.URL}
	h := req.SignedHeader.Clone()
	h.Del("Host")
	if len(h) > 0 {
		p.header = h.Clone
	}
	return p, nil
}

// OpenObject opens an encrypted object's body that was fetched without the
// Client — through a presigned URL, by any HTTP client — from the response
// as it came: its headers (header, as net/http gives them: the envelope in
// the x-amz-meta-* headers, which are mapped to metadata as the SDK's
// GetObject maps them) and its body, and, when the envelope is in an
// instruction file (PresignedObject.InstructionURL), that file's bytes
// (nil otherwise). It releases plaintext as GetObject does, under the
// same options, provider and checks: a V2 or V3 body is spooled and its
// tag verified before the first byte; a segmented one is released segment
// by segment as each verifies. A body shorter than its Content-Length
// fails with envelope.ErrAuthentication; a partial response
// (Content-Range of less than the whole object) with envelope.ErrDisallowed;
// one with no envelope with envelope.ErrNoEnvelope. OpenObject takes body
// and closes it, on failure too.
//
// It returns what GetObject returns, with only these set: Body (the
// plaintext; Close it), ContentLength (the plaintext length), Metadata,
// ETag and ContentType.
func (c *Client) OpenObject(ctx context.Context, header http.Header, body io.ReadCloser, instruction []byte) (*s3.GetObjectOutput, error) {
	return c.openObject(ctx, "OpenObject", header, body, instruction)
}

// OpenResponse is OpenObject for an *http.Response, which it checks
// first: a status other than 200 (or a 206 of the whole object) fails with
// S3's error as the SDK reports it — an *awshttp.ResponseError (errors.As)
// with the status and S3's error code and message (errors.As finds a
// smithy.APIError; "AccessDenied", "Request has expired" for an expired
// URL; *types.NoSuchKey for a missing object) — and the body is not
// opened. net/http's default transport decompresses a body stored with
// Content-Encoding gzip, which is then not the stored ciphertext: such a
// response is refused (envelope.ErrDisallowed); fetch those objects with
// http.Transport's DisableCompression.
func (c *Client) OpenResponse(ctx context.Context, resp *http.Response, instruction []byte) (*s3.GetObjectOutput, error) {
	if err := checkResponse(resp); err != nil {
		return nil, &ObjectError{Op: "OpenResponse", Err: err}
	}
	return c.openObject(ctx, "OpenResponse", resp.Header, resp.Body, instruction)
}

func (c *Client) openObject(ctx context.Context, op string, header http.Header, body io.ReadCloser, instruction []byte) (_ *s3.GetObjectOutput, err error) {
	defer wrapObjectError(&err, op, nil, nil)
	if body == nil {
		return nil, fmt.Errorf("%w: no body", errNilInput)
	}
	out, err := responseOutput(header, body)
	if err != nil {
		body.Close()
		return nil, err
	}
	env, err := format.Decode(out.Metadata, instruction)
	if err != nil {
		body.Close()
		return nil, err
	}
	return c.openWhole(ctx, env, out)
}

// responseOutput is the GetObject output that a whole object's response
// headers describe, with body as Body (yielding exactly Content-Length
// bytes, when it is given).
func responseOutput(h http.Header, body io.ReadCloser) (*s3.GetObjectOutput, error) {
	meta, err := headerMetadata(h)
	if err != nil {
		return nil, err
	}
	out := &s3.GetObjectOutput{Body: body, Metadata: meta}
	one := func(name string) (string, bool, error) {
		switch vs := h.Values(name); len(vs) {
		case 0:
			return "", false, nil
		case 1:
			return strings.TrimSpace(vs[0]), true, nil
		}
		return "", false, fmt.Errorf("%w: %s header given more than once", envelope.ErrMalformed, name)
	}
	v, ok, err := one("Content-Length")
	if err != nil {
		return nil, err
	}
	if ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: Content-Length %q", envelope.ErrMalformed, v)
		}
		out.ContentLength = aws.Int64(n)
		out.Body = struct {
			io.Reader
			io.Closer
		}{announced(body, n), body}
	}
	if v, ok, err = one("Content-Range"); err != nil {
		return nil, err
	}
	if ok {
		first, last, size, err := parseContentRange(v)
		if err != nil {
			return nil, err
		}
		if first != 0 || last != size-1 || (out.ContentLength != nil && *out.ContentLength != size) {
			return nil, fmt.Errorf("%w: a partial response (Content-Range %s): only a whole object is opened", envelope.ErrDisallowed, v)
		}
	}
	if v, ok, err = one("Etag"); err != nil {
		return nil, err
	} else if ok {
		out.ETag = aws.String(v)
	}
	if v, ok, err = one("Content-Type"); err != nil {
		return nil, err
	} else if ok {
		out.ContentType = aws.String(v)
	}
	return out, nil
}

// metaPrefix starts the header of each user-metadata key.
const metaPrefix = "x-amz-meta-"

// headerMetadata maps x-amz-meta-* headers to user metadata as the SDK's
// GetObject does (the prefix dropped, the rest lower-cased, the first
// value trimmed), so that both read the same envelope. S3 sends each key
// once; an envelope field that comes twice, repeated or under two
// spellings, is refused (envelope.ErrMalformed), since which copy is read
// must not decide how the object opens. Other keys keep their first value
// in sorted header order.
func headerMetadata(h http.Header) (map[string]string, error) {
	var meta map[string]string
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if len(name) < len(metaPrefix) || !strings.EqualFold(name[:len(metaPrefix)], metaPrefix) || len(h[name]) == 0 {
			continue
		}
		k := strings.ToLower(name[len(metaPrefix):])
		_, dup := meta[k]
		if (dup || len(h[name]) > 1) && format.IsEnvelopeKey(k) {
			return nil, fmt.Errorf("%w: envelope field %s comes in more than one header value", envelope.ErrMalformed, k)
		}
		if dup {
			continue
		}
		if meta == nil {
			meta = map[string]string{}
		}
		meta[k] = strings.TrimSpace(h[name][0])
	}
	return meta, nil
}

// maxErrorBody bounds what is read of an error response for S3's code and
// message.
const maxErrorBody = 64 << 10

// checkResponse refuses a response that is not a whole object's: a status
// other than 200 becomes S3's error as the SDK reports it (its body is
// read for S3's code and message, and closed); a 206 must say what part
// it holds, and a body the transport decompressed is not the stored one.
func checkResponse(resp *http.Response) error {
	switch {
	case resp == nil:
		return fmt.Errorf("%w: no response", errNilInput)
	case resp.StatusCode == http.StatusPartialContent && resp.Header.Get("Content-Range") == "":
		resp.Body.Close()
		return fmt.Errorf("%w: a 206 response without Content-Range", envelope.ErrMalformed)
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent:
		return statusError(resp)
	case resp.Uncompressed:
		resp.Body.Close()
		return fmt.Errorf("%w: the HTTP client decompressed the body (Content-Encoding gzip), so it is not the stored ciphertext: fetch with compression off", envelope.ErrDisallowed)
	}
	return nil
}

// statusError is the error of a response with a status other than 200, as
// the SDK makes it: an *awshttp.ResponseError holding S3's error (a
// smithy.APIError with S3's code and message, *types.NoSuchKey for that
// code), or the status alone when the body holds no S3 error.
func statusError(resp *http.Response) error {
	var doc struct{ Code, Message string }
	if resp.Body != nil {
		// What is read is only looked at for S3's error: a failed read
		// leaves the status alone to report.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		if xml.Unmarshal(b, &doc) != nil {
			doc.Code = ""
		}
	}
	var cause error
	switch {
	case doc.Code == "NoSuchKey":
		cause = &types.NoSuchKey{Message: aws.String(doc.Message)}
	case doc.Code != "":
		cause = &smithy.GenericAPIError{Code: doc.Code, Message: doc.Message}
	default:
		cause = fmt.Errorf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: cause},
		RequestID:     resp.Header.Get("X-Amz-Request-Id"),
	}
}
