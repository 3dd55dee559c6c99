// Package s3mem is an in-memory S3 server for the module's examples and unit
// tests. It is a test fixture, not S3: it speaks enough of S3's path-style
// REST API, as aws-sdk-go-v2's s3 client sends it, for a real *s3.Client to
// put, get, copy, list and delete objects and to run multipart uploads
// against it in-process, with no listener and no dependency beyond the SDK.
// Server.Client returns such a client; Server is also an http.Handler, for
// httptest.NewServer.
//
// What it checks, as S3 does: request checksums (x-amz-checksum-* headers
// and aws-chunked trailers, Content-MD5, a hex x-amz-content-sha256),
// declared lengths, conditional reads and writes (If-Match, If-None-Match,
// the copy-source conditions), multipart part order, ETags and minimum part
// size. It keeps what S3 keeps of an object (user metadata, Content-Type and
// the other standard headers, storage class, website redirect, tags, the
// x-amz-checksum, composite for a multipart upload that asked for one), and
// its errors are S3's XML error bodies with S3's codes, so that the SDK
// returns its typed errors (*types.NoSuchKey, *types.NotFound, …).
//
// Presigned URLs (SigV4 query authentication, s3.PresignClient) are served,
// to net/http's client as to any: their query authentication is accepted,
// the x-amz-* headers the signer moved into the query are taken as headers,
// and a URL past its expiry (X-Amz-Date plus X-Amz-Expires) is refused as S3
// refuses it, 403 AccessDenied "Request has expired".
//
// What it does not do: authentication or authorization (signatures are not
// verified, a presigned URL's included; ExpectedBucketOwner and ACL headers
// are ignored), versioning,
// bucket configuration, object lock, SSE-S3 and SSE-KMS (the
// x-amz-server-side-encryption headers are ignored), ListObjects v1,
// ListParts, PutObjectTagging, paging of ListMultipartUploads, reads by part
// number, and virtual-hosted addressing. Requests it cannot serve are
// refused with 400 NotImplemented rather than half-served: a versionId, an
// unknown query parameter or sub-resource, object lock headers, and above
// all SSE-C headers (x-amz-server-side-encryption-customer-*), so that no
// test can believe an object was stored under a customer key when s3mem
// would hold it as sent.
package s3mem

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// endpoint is where Client sends requests. It is https because the SDK
// sends trailing checksums (Content-Encoding: aws-chunked) only over TLS,
// as it does to S3; no connection is made, so no TLS happens either.
const endpoint = "https://s3mem.local"

// Server holds buckets of objects in memory and serves S3 requests for them.
// It is safe for concurrent use. The zero value is not usable; call New.
type Server struct {
	requests atomic.Int64 // for x-amz-request-id

	mu      sync.Mutex
	buckets map[string]map[string]*object // bucket → key → object
	uploads map[string]*upload            // upload ID → multipart upload
}

// New returns a Server with no buckets.
func New() *Server {
	return &Server{buckets: map[string]map[string]*object{}, uploads: map[string]*upload{}}
}

// CreateBucket creates the named bucket if it does not exist.
func (s *Server) CreateBucket(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[name] == nil {
		s.buckets[name] = map[string]*object{}
	}
}

// Client returns an *s3.Client whose requests s serves in-process: path-style
// addressing, region us-east-1, static fake credentials, and the request and
// response checksum settings a client from config.LoadDefaultConfig has
// (calculate and validate when supported). Its endpoint is
// https://s3mem.local, so that the SDK sends PutObject and UploadPart bodies
// as it does to S3, aws-chunked with a trailing CRC32, which s3mem decodes
// and verifies; nothing is dialled. optFns apply last and may change any of
// it, e.g. to wrap Options.HTTPClient.
func (s *Server) Client(optFns ...func(*s3.Options)) *s3.Client {
	creds := aws.Credentials{AccessKeyID: "S3MEMACCESSKEY", SecretAccessKey: "s3mem-secret", Source: "s3mem"}
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		HTTPClient:                 &http.Client{Transport: transport{s}},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}, optFns...)
}

// transport is an http.RoundTripper that serves each request with a handler
// in the calling goroutine: the handler reads the request body as the client
// streams it, and the response is recorded, then returned whole.
type transport struct{ h http.Handler }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	// Make the client's request look like one a server received.
	sr := req.Clone(req.Context())
	sr.RequestURI = req.URL.RequestURI()
	sr.RemoteAddr = "192.0.2.1:443"
	if sr.Host == "" {
		sr.Host = req.URL.Host
	}
	switch {
	case sr.Body == nil || sr.Body == http.NoBody:
		sr.Body, sr.ContentLength = http.NoBody, 0
	case sr.ContentLength == 0: // a client's 0 with a body means unknown
		sr.ContentLength = -1
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, sr)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// s3Error is an S3 error response.
type s3Error struct {
	status        int
	code, message string
}

func (e *s3Error) Error() string { return e.code + ": " + e.message }

func fail(status int, code, format string, a ...any) *s3Error {
	return &s3Error{status, code, fmt.Sprintf(format, a...)}
}

func notImplemented(what string) *s3Error {
	return fail(http.StatusBadRequest, "NotImplemented", "s3mem does not implement %s", what)
}

var (
	errNoSuchBucket = fail(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
	errNoSuchKey    = fail(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	errNoSuchUpload = fail(http.StatusNotFound, "NoSuchUpload", "The specified multipart upload does not exist.")
	errPrecondition = fail(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.")
)

// refusedHeaders are header prefixes (canonical form) of features s3mem
// does not have; a request carrying one is refused, not served without it.
var refusedHeaders = []string{
	"X-Amz-Server-Side-Encryption-Customer-",
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-",
	"X-Amz-Object-Lock-",
}

// knownParams are the query parameters s3mem understands; any other one
// (versionId, acl, response-content-type, …) is refused.
var knownParams = map[string]bool{
	"x-id": true, "uploads": true, "uploadId": true, "partNumber": true, "tagging": true, "delete": true,
	"list-type": true, "prefix": true, "delimiter": true, "max-keys": true, "continuation-token": true, "start-after": true, "max-uploads": true,
	// A presigned URL's query authentication.
	"X-Amz-Algorithm": true, "X-Amz-Credential": true, "X-Amz-Date": true, "X-Amz-Expires": true,
	"X-Amz-SignedHeaders": true, "X-Amz-Signature": true, "X-Amz-Security-Token": true,
}

// checkExpiry refuses a presigned request past its expiry, as S3 does; its
// signature is not checked (s3mem checks none).
func checkExpiry(q url.Values) *s3Error {
	signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	secs, err2 := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || err2 != nil || secs < 1 || secs > 7*24*3600 {
		return fail(http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Date and X-Amz-Expires must be a SigV4 time and 1 to 604800 seconds.")
	}
	if time.Now().After(signed.Add(time.Duration(secs) * time.Second)) {
		return fail(http.StatusForbidden, "AccessDenied", "Request has expired")
	}
	return nil
}

// hoisted moves the x-amz-* headers that a presigned URL carries in its
// query (x-amz-checksum-mode, x-amz-expected-bucket-owner, …) into the
// request's headers, where S3 takes them from, and out of q.
func hoisted(r *http.Request, q url.Values) {
	for name, vs := range q {
		if knownParams[name] || !strings.HasPrefix(strings.ToLower(name), "x-amz-") {
			continue
		}
		if r.Header.Get(name) == "" {
			r.Header[http.CanonicalHeaderKey(name)] = vs
		}
		delete(q, name)
	}
}

// ServeHTTP serves one path-style S3 request: /bucket or /bucket/key.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amz-Request-Id", "s3mem-"+strconv.FormatInt(s.requests.Add(1), 10))
	if err := s.serve(w, r); err != nil {
		writeError(w, r, err)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) *s3Error {
	q := r.URL.Query()
	if q.Has("X-Amz-Signature") {
		if err := checkExpiry(q); err != nil {
			return err
		}
		hoisted(r, q)
	}
	for name := range r.Header {
		for _, p := range refusedHeaders {
			if strings.HasPrefix(name, p) {
				return notImplemented("the " + name + " header (SSE-C and object lock are not supported)")
			}
		}
	}
	for name := range q {
		if !knownParams[name] {
			return notImplemented("the " + name + " query parameter")
		}
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	copying := r.Header.Get("X-Amz-Copy-Source") != ""
	switch {
	case bucket == "":
		return notImplemented("ListBuckets")
	case key == "" && r.Method == http.MethodPut && len(q) == 0:
		return s.createBucket(w, r, bucket)
	case key == "" && r.Method == http.MethodHead:
		return s.headBucket(w, bucket)
	case key == "" && r.Method == http.MethodGet && q.Get("list-type") == "2":
		return s.listObjects(w, r, bucket)
	case key == "" && r.Method == http.MethodGet && q.Has("uploads"):
		return s.listMultipartUploads(w, r, bucket)
	case key == "" && r.Method == http.MethodPost && q.Has("delete"):
		return s.deleteObjects(w, r, bucket)
	case key == "" && r.Method == http.MethodDelete && len(q) == 0:
		return s.deleteBucket(w, bucket)
	case key == "":
		return notImplemented(r.Method + " on a bucket with this query")
	case q.Has("tagging") && r.Method == http.MethodGet:
		return s.getObjectTagging(w, bucket, key)
	case q.Has("tagging"):
		return notImplemented(r.Method + " ?tagging")
	case r.Method == http.MethodPost && q.Has("uploads"):
		return s.createMultipartUpload(w, r, bucket, key)
	case r.Method == http.MethodPut && q.Has("uploadId") && copying:
		return s.uploadPartCopy(w, r, bucket, key)
	case r.Method == http.MethodPut && q.Has("uploadId"):
		return s.uploadPart(w, r, bucket, key)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return s.completeMultipartUpload(w, r, bucket, key)
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return s.abortMultipartUpload(w, r, bucket, key)
	case q.Has("uploadId") || q.Has("uploads"):
		return notImplemented(r.Method + " with an upload ID (ListParts)")
	case r.Method == http.MethodPut && copying:
		return s.copyObject(w, r, bucket, key)
	case r.Method == http.MethodPut:
		return s.putObject(w, r, bucket, key)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return s.getObject(w, r, bucket, key)
	case r.Method == http.MethodDelete:
		return s.deleteObject(w, r, bucket, key)
	}
	return notImplemented(r.Method + " on an object")
}

func (s *Server) createBucket(w http.ResponseWriter, r *http.Request, bucket string) *s3Error {
	if _, _, err := readBody(r); err != nil { // a CreateBucketConfiguration, ignored
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[bucket] != nil {
		return fail(http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
	}
	s.buckets[bucket] = map[string]*object{}
	w.Header().Set("Location", "/"+bucket)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteBucket(w http.ResponseWriter, bucket string) *s3Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.buckets[bucket] == nil:
		return errNoSuchBucket
	case len(s.buckets[bucket]) > 0:
		return fail(http.StatusConflict, "BucketNotEmpty", "The bucket you tried to delete is not empty.")
	}
	for _, u := range s.uploads {
		if u.bucket == bucket {
			return fail(http.StatusConflict, "BucketNotEmpty", "The bucket you tried to delete has multipart uploads in progress.")
		}
	}
	delete(s.buckets, bucket)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) headBucket(w http.ResponseWriter, bucket string) *s3Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[bucket] == nil {
		return errNoSuchBucket
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// writeXML writes v as an XML response body.
func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		panic(err) // only s3mem's own types are marshalled
	}
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeError writes e as S3 does: an XML body, except to HEAD.
func writeError(w http.ResponseWriter, r *http.Request, e *s3Error) {
	if r.Method == http.MethodHead {
		w.WriteHeader(e.status)
		return
	}
	writeXML(w, e.status, struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		Resource  string
		RequestID string `xml:"RequestId"`
	}{Code: e.code, Message: e.message, Resource: r.URL.Path, RequestID: w.Header().Get("X-Amz-Request-Id")})
}

// now is a modification time: S3's Last-Modified has whole seconds.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// isoTime is the time format of S3's XML bodies.
func isoTime(t time.Time) string { return t.Format("2006-01-02T15:04:05.000Z") }
