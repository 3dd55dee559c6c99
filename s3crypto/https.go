package s3crypto

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// A SSECClient sends its customer keys only over TLS:
// every request it makes, of every operation (listings included), goes
// through httpsOnly, which adds two checks to the request's options:
//
//   - a Finalize middleware that refuses a request whose URL is not https,
//     before it is signed and sent, on every attempt;
//   - an HTTP client whose redirects are refused unless they lead to an
//     https URL (the SDK follows 307 and 308 to any host, and Go's client
//     copies the customer-key headers along).

// redirectError is the error (wrapped) when a ServerSideCustomerKey
// request is redirected to a URL that is not https: the redirected request
// is not sent, and the SDK does not retry it. It is ErrInsecureEndpoint to
// errors.Is.
type redirectError struct {
	From, To string // scheme and host of the redirecting and redirected URLs
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("s3crypto: refusing a redirect from %s to %s: SSE-C keys travel only over HTTPS", e.From, e.To)
}

// Is makes errors.Is(err, ErrInsecureEndpoint) true.
func (e *redirectError) Is(target error) bool { return target == ErrInsecureEndpoint }

// RetryableError tells the SDK's retryer not to send the request again:
// the server would redirect it the same way.
func (e *redirectError) RetryableError() bool { return false }

// origin is a URL's scheme and host, which is all an error names of it
// (a presigned query or a path could carry more than it should).
func origin(u *url.URL) string {
	if u == nil {
		return "(none)"
	}
	return u.Scheme + "://" + u.Host
}

// maxRedirects is Go's default limit, kept for the clients whose own
// CheckRedirect is nil.
const maxRedirects = 10

// checkRedirect wraps a client's redirect policy (nil: Go's default) so
// that no redirect leads off https.
func checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if req.URL == nil || !strings.EqualFold(req.URL.Scheme, "https") {
			var from *url.URL
			if len(via) > 0 {
				from = via[len(via)-1].URL
			}
			return &redirectError{From: origin(from), To: origin(req.URL)}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// httpsOnly is the S3 API of a SSECClient: every call
// gets the https checks.
type httpsOnly struct {
	api fullAPI

	mu     sync.Mutex
	frozen map[*awshttp.BuildableClient]*http.Client
}

// maxFrozen bounds the SDK clients whose guarded copies are kept (one per
// s3.Client in practice); past it each request builds its own.
const maxFrozen = 8

var _ fullAPI = (*httpsOnly)(nil)

// options is the request option that adds both checks.
func (h *httpsOnly) options(optFns []func(*s3.Options)) []func(*s3.Options) {
	return append(slices.Clip(optFns), func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, addRequireHTTPS)
		o.HTTPClient = h.guardRedirects(o.HTTPClient)
	})
}

// guardRedirects returns hc with redirects off https refused. Go's
// *http.Client is copied with a wrapped CheckRedirect (its transport, and
// so its connections, shared); the SDK's BuildableClient is frozen into
// one (kept, so that its connections are reused). An HTTP client of any
// other kind cannot be guarded: every request through it is refused.
func (h *httpsOnly) guardRedirects(hc aws.HTTPClient) aws.HTTPClient {
	switch c := hc.(type) {
	case *http.Client:
		if c == nil {
			break
		}
		cc := *c
		cc.CheckRedirect = checkRedirect(c.CheckRedirect)
		return &cc
	case *awshttp.BuildableClient:
		if c == nil {
			break
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if g, ok := h.frozen[c]; ok {
			return g
		}
		g := guardFrozen(c)
		if h.frozen == nil {
			h.frozen = map[*awshttp.BuildableClient]*http.Client{}
		}
		if len(h.frozen) < maxFrozen {
			h.frozen[c] = g
		}
		return g
	}
	return refuseClient{errUnguardable(hc)}
}

func guardFrozen(c *awshttp.BuildableClient) *http.Client {
	if f, ok := c.Freeze().(*http.Client); ok {
		g := *f
		g.CheckRedirect = checkRedirect(f.CheckRedirect)
		return &g
	}
	// Not what the SDK builds today; its transport and timeout, no
	// redirects but to https.
	return &http.Client{Transport: c.GetTransport(), Timeout: c.GetTimeout(), CheckRedirect: checkRedirect(nil)}
}

// checkClient is the check New makes of an HTTP client it can see: one
// whose redirects cannot be guarded is refused up front.
func checkClient(hc aws.HTTPClient) error {
	switch c := hc.(type) {
	case *http.Client:
		if c != nil {
			return nil
		}
	case *awshttp.BuildableClient:
		if c != nil {
			return nil
		}
	}
	return errUnguardable(hc)
}

func errUnguardable(hc aws.HTTPClient) error {
	return fmt.Errorf("%w: the redirects of an HTTP client of type %T cannot be kept to https; use an *http.Client or the SDK's BuildableClient", ErrInsecureEndpoint, hc)
}

// refuseClient sends nothing.
type refuseClient struct{ err error }

func (r refuseClient) Do(*http.Request) (*http.Response, error) { return nil, r.err }

// addRequireHTTPS adds the https check to a request's middleware, once
// however many times a request passes through an httpsOnly.
func addRequireHTTPS(st *middleware.Stack) error {
	if _, ok := st.Finalize.Get(requireHTTPS.ID()); ok {
		return nil
	}
	return st.Finalize.Add(requireHTTPS, middleware.After)
}

// requireHTTPS runs after the endpoint is resolved and before the request
// is signed and sent, on every attempt.
var requireHTTPS = middleware.FinalizeMiddlewareFunc("s3envelope.RequireHTTPS",
	func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		req, ok := in.Request.(*smithyhttp.Request)
		if !ok || req.URL == nil || !strings.EqualFold(req.URL.Scheme, "https") {
			var u *url.URL
			if ok {
				u = req.URL
			}
			return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("%w (endpoint %s)", ErrInsecureEndpoint, origin(u))
		}
		return next.HandleFinalize(ctx, in)
	})

// checkEndpoint refuses, when New can see them (api is an *s3.Client, or
// holds one), options that would send customer keys in clear text: a base
// endpoint that is not https, HTTPS disabled, or an HTTP client whose
// redirects cannot be kept to https. Endpoints chosen per request are
// checked per request.
func checkEndpoint(api S3API) error {
	oa, ok := api.(interface{ Options() s3.Options })
	if !ok {
		return nil
	}
	o := oa.Options()
	if o.BaseEndpoint != nil {
		u, err := url.Parse(*o.BaseEndpoint)
		if err != nil || !strings.EqualFold(u.Scheme, "https") {
			scheme := "unparsable"
			if err == nil {
				scheme = u.Scheme + "://" + u.Host
			}
			return fmt.Errorf("%w: the S3 client's BaseEndpoint is %s", ErrInsecureEndpoint, scheme)
		}
	}
	if o.EndpointOptions.DisableHTTPS {
		return fmt.Errorf("%w: the S3 client has EndpointOptions.DisableHTTPS set", ErrInsecureEndpoint)
	}
	return checkClient(o.HTTPClient)
}

func (h *httpsOnly) PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return h.api.PutObject(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return h.api.GetObject(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return h.api.HeadObject(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return h.api.DeleteObject(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	return h.api.CopyObject(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error) {
	return h.api.GetObjectTagging(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return h.api.ListObjectsV2(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return h.api.CreateMultipartUpload(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, optFns ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error) {
	return h.api.UploadPartCopy(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	return h.api.UploadPart(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	return h.api.CompleteMultipartUpload(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return h.api.AbortMultipartUpload(ctx, in, h.options(optFns)...)
}

func (h *httpsOnly) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	return h.api.DeleteObjects(ctx, in, h.options(optFns)...)
}
