package s3crypto_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/s3mem"
	"github.com/s3envelope/s3envelope/internal/testenv"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// A presigned URL is fetched here by net/http alone, as a recipient with
// no SDK and no credentials would, and opened by a Client whose S3 client
// refuses every call (noS3): opening needs the response and the master
// key, nothing from S3.

// noS3 is the S3 client of a recipient, who has none: every call fails
// the test.
type noS3 struct{ t testing.TB }

func (n noS3) fail(op string) error {
	n.t.Errorf("the recipient's client called S3 %s", op)
	return errors.New("no S3 here")
}

func (n noS3) PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return nil, n.fail("PutObject")
}

func (n noS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return nil, n.fail("GetObject")
}

func (n noS3) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return nil, n.fail("HeadObject")
}

func (n noS3) DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return nil, n.fail("DeleteObject")
}

// recipient is a Client that only opens what it is handed.
func recipient(t testing.TB, kr keyring.Keyring, opts ...func(*s3crypto.Options)) *s3crypto.Client {
	t.Helper()
	return newClient(t, noS3{t}, kr, opts...)
}

// memShared returns a client of an in-process S3 served on a loopback
// listener, so that its presigned URLs reach it by net/http, and a bucket.
func memShared(t testing.TB) (*s3.Client, string) {
	t.Helper()
	srv := s3mem.New()
	srv.CreateBucket("shared")
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv.Client(func(o *s3.Options) { o.BaseEndpoint = aws.String(ts.URL) }), "shared"
}

// httpGet GETs u with net/http, sending h.
func httpGet(t testing.TB, hc *http.Client, u string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	require.NoError(t, err)
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	return resp
}

// fetchInstruction fetches p's instruction file, nil when there is none.
func fetchInstruction(t testing.TB, hc *http.Client, p *s3crypto.PresignedObject) []byte {
	t.Helper()
	if p.InstructionURL == "" {
		return nil
	}
	resp := httpGet(t, hc, p.InstructionURL, nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "instruction file: %s", b)
	return b
}

// openShared fetches p with hc and opens the response with c: the
// plaintext released (all of it only with a nil error), the output, and
// the error that ended the open or the read.
func openShared(t testing.TB, c *s3crypto.Client, hc *http.Client, p *s3crypto.PresignedObject) ([]byte, *s3.GetObjectOutput, error) {
	t.Helper()
	instr := fetchInstruction(t, hc, p)
	return readOpened(c.OpenResponse(context.Background(), httpGet(t, hc, p.URL, p.Header()), instr))
}

func readOpened(out *s3.GetObjectOutput, err error) ([]byte, *s3.GetObjectOutput, error) {
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out, err
}

// presignCase is a variant that may be segmented, with small segments.
type presignCase variant

func (pc presignCase) String() string { return variant(pc).String() }

func (pc presignCase) apply(o *s3crypto.Options) {
	variant(pc).apply(o)
	if pc.format == envelope.FormatSegmented {
		o.SegmentSize = 4 << 10 // several segments in a small object
	}
}

var presignCases = []presignCase{
	{envelope.FormatV2, false}, {envelope.FormatV2, true},
	{envelope.FormatV3, false}, {envelope.FormatV3, true},
	{envelope.FormatSegmented, false}, {envelope.FormatSegmented, true},
}

// presignRoundTrips shares objects of every format, envelope in metadata
// and in an instruction file, of several sizes: presigned by the writer,
// fetched by net/http, opened by a recipient, byte-identical.
func presignRoundTrips(t *testing.T, api *s3.Client, bucket string, hc *http.Client) {
	ctx := context.Background()
	pc := s3.NewPresignClient(api)
	kr := masterKeys(t)[0]
	for _, tc := range presignCases {
		t.Run(tc.String(), func(t *testing.T) {
			w := newClient(t, api, kr, tc.apply)
			r := recipient(t, kr, tc.apply)
			for _, size := range []int{0, 1, 4<<10 + 17, 100_003} {
				key := fmt.Sprintf("%v-%d", tc, size)
				pt := random(size)
				_, err := w.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(pt),
					Metadata: map[string]string{"Owner": "alice"}, ContentType: aws.String("text/plain")})
				require.NoError(t, err)
				p, err := w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				require.Equal(t, tc.instruction, p.InstructionURL != "", "InstructionURL %q", p.InstructionURL)
				require.Nil(t, p.Header(), "a client-side object needs no headers")
				got, out, err := openShared(t, r, hc, p)
				require.NoError(t, err, "size %d", size)
				require.True(t, bytes.Equal(pt, got), "size %d: plaintext differs", size)
				assert.Equal(t, int64(size), aws.ToInt64(out.ContentLength))
				assert.Equal(t, "alice", out.Metadata["owner"])
				// The headers map to the metadata the SDK's GetObject gives.
				raw, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				raw.Body.Close()
				assert.Equal(t, raw.Metadata, out.Metadata)
				assert.Equal(t, "text/plain", aws.ToString(out.ContentType))
				assert.NotEmpty(t, aws.ToString(out.ETag))
			}
		})
	}
}

func TestPresignMemRoundTrips(t *testing.T) {
	api, bucket := memShared(t)
	presignRoundTrips(t, api, bucket, http.DefaultClient)
}

func TestPresignS3RoundTrips(t *testing.T) {
	api, bucket := realS3(t)
	presignRoundTrips(t, api, bucket, http.DefaultClient)
}

// pastSigner presigns as if it were an hour ago: with any expiry under an
// hour, the URL has expired when it is made.
type pastSigner struct{ *v4.Signer }

func (p pastSigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, signingTime time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return p.Signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, signingTime.Add(-time.Hour), optFns...)
}

func expired(o *s3.PresignOptions) { o.Presigner, o.Expires = pastSigner{v4.NewSigner()}, time.Minute }

// requireStatus requires err to be S3's error response with this status
// and, when code is set, this S3 error code.
func requireStatus(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *awshttp.ResponseError
	require.ErrorAs(t, err, &re, "%v", err)
	assert.Equal(t, status, re.HTTPStatusCode(), "%v", err)
	var oe *s3crypto.ObjectError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "OpenResponse", oe.Op)
	if code != "" {
		var ae smithy.APIError
		require.ErrorAs(t, err, &ae, "%v", err)
		assert.Equal(t, code, ae.ErrorCode(), "%v", err)
	}
}

// bodyProxy returns a URL rewriter for a proxy to the server of origin (a URL
// on it) that passes each response's body through edit, keeping its
// headers (Content-Length included) as the server sent them.
func bodyProxy(t *testing.T, origin string, edit func([]byte) []byte) func(string) string {
	t.Helper()
	o, err := url.Parse(origin)
	require.NoError(t, err)
	target := &url.URL{Scheme: o.Scheme, Host: o.Host}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			resp.Body = io.NopCloser(bytes.NewReader(edit(b)))
			return nil
		},
	}
	ts := httptest.NewServer(rp)
	t.Cleanup(ts.Close)
	return func(u string) string {
		pu, err := url.Parse(u)
		require.NoError(t, err)
		pu.Scheme, pu.Host = "http", ts.Listener.Addr().String()
		return pu.String()
	}
}

// presignFailures checks what a recipient gets from a response that is
// not the object's as stored: an error of the right type, and nothing
// released.
func presignFailures(t *testing.T, api *s3.Client, bucket string) {
	ctx := context.Background()
	pc := s3.NewPresignClient(api)
	kr := masterKeys(t)[0]
	pt := random(100_000)

	t.Run("tampered", func(t *testing.T) {
		for _, tc := range presignCases {
			w := newClient(t, api, kr, tc.apply)
			r := recipient(t, kr, tc.apply)
			key := "tamper-" + tc.String()
			put(t, w, bucket, key, bytes.NewReader(pt))
			p, err := w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			require.NoError(t, err)
			instr := fetchInstruction(t, http.DefaultClient, p)
			for _, at := range []int{0, 1000, 50_000, -17, -1} {
				through := bodyProxy(t, p.URL, func(b []byte) []byte {
					i := (at + len(b)) % len(b)
					b[i] ^= 0x20
					return b
				})
				resp := httpGet(t, http.DefaultClient, through(p.URL), nil)
				got, _, err := readOpened(r.OpenResponse(ctx, resp, instr))
				require.ErrorIs(t, err, envelope.ErrAuthentication, "%v, byte %d flipped", tc, at)
				if tc.format == envelope.FormatSegmented && at != 0 {
					// Released segment by segment: only whole segments
					// before the flipped one, each authenticated.
					require.True(t, bytes.HasPrefix(pt, got), "%v, byte %d: released bytes not the object's", tc, at)
					require.Less(t, len(got), len(pt))
				} else {
					require.Empty(t, got, "%v, byte %d flipped: released before the tag verified", tc, at)
				}
			}
			// Cut short under the announced Content-Length: net/http sees
			// the connection end early.
			through := bodyProxy(t, p.URL, func(b []byte) []byte { return b[:len(b)-100] })
			got, _, err := readOpened(r.OpenResponse(ctx, httpGet(t, http.DefaultClient, through(p.URL), nil), instr))
			require.ErrorIs(t, err, envelope.ErrAuthentication, "%v truncated", tc)
			if tc.format != envelope.FormatSegmented {
				require.Empty(t, got)
			} else {
				require.True(t, bytes.HasPrefix(pt, got))
			}
		}
	})

	t.Run("content length", func(t *testing.T) {
		for _, tc := range presignCases {
			w := newClient(t, api, kr, tc.apply)
			r := recipient(t, kr, tc.apply)
			key := "length-" + tc.String()
			put(t, w, bucket, key, bytes.NewReader(pt))
			p, err := w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			require.NoError(t, err)
			instr := fetchInstruction(t, http.DefaultClient, p)
			for _, delta := range []int64{-1, 1, 16, -4096} {
				resp := httpGet(t, http.DefaultClient, p.URL, nil)
				h := resp.Header.Clone()
				h.Set("Content-Length", strconv.FormatInt(resp.ContentLength+delta, 10))
				got, _, err := readOpened(r.OpenObject(ctx, h, resp.Body, instr))
				// Shorter: the tag (or final segment) is not where it is
				// looked for; longer: the body ends early.
				require.ErrorIs(t, err, envelope.ErrAuthentication, "%v, Content-Length off by %d", tc, delta)
				if tc.format != envelope.FormatSegmented {
					require.Empty(t, got)
				} else {
					require.True(t, bytes.HasPrefix(pt, got))
				}
			}
			// And no instruction file where the envelope is in one.
			if tc.instruction {
				resp := httpGet(t, http.DefaultClient, p.URL, nil)
				_, err := r.OpenResponse(ctx, resp, nil)
				require.True(t, errors.Is(err, envelope.ErrNoEnvelope) || errors.Is(err, envelope.ErrMalformed), "%v: %v", tc, err)
			}
		}
	})

	t.Run("not encrypted", func(t *testing.T) {
		_, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("plain"), Body: bytes.NewReader([]byte("in the clear"))})
		require.NoError(t, err)
		w := newClient(t, api, kr)
		_, err = w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("plain")})
		require.ErrorIs(t, err, envelope.ErrNoEnvelope)
		// Presigned without the Client, the response is refused too.
		req, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("plain")})
		require.NoError(t, err)
		got, _, err := readOpened(recipient(t, kr).OpenResponse(ctx, httpGet(t, http.DefaultClient, req.URL, nil), nil))
		require.ErrorIs(t, err, envelope.ErrNoEnvelope)
		require.Empty(t, got)
	})

	t.Run("status", func(t *testing.T) {
		w := newClient(t, api, kr)
		r := recipient(t, kr)
		put(t, w, bucket, "status", bytes.NewReader(pt))
		// A missing object: 404 NoSuchKey, as the SDK reports it.
		req, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("absent")})
		require.NoError(t, err)
		_, err = r.OpenResponse(ctx, httpGet(t, http.DefaultClient, req.URL, nil), nil)
		requireStatus(t, err, http.StatusNotFound, "NoSuchKey")
		var nsk *types.NoSuchKey
		require.ErrorAs(t, err, &nsk)
		_, err = w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("absent")})
		var nf *types.NotFound
		require.ErrorAs(t, err, &nf, "presigning a missing object: %v", err)

		// An expired URL: 403 AccessDenied.
		p, err := w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("status")}, expired)
		require.NoError(t, err)
		_, err = r.OpenResponse(ctx, httpGet(t, http.DefaultClient, p.URL, nil), nil)
		requireStatus(t, err, http.StatusForbidden, "AccessDenied")
		t.Logf("expired: %v", err)

		// A range: refused when presigning, and as a response.
		_, err = w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("status"), Range: aws.String("bytes=0-9")})
		require.ErrorIs(t, err, envelope.ErrDisallowed)
		p, err = w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("status")})
		require.NoError(t, err)
		resp := httpGet(t, http.DefaultClient, p.URL, http.Header{"Range": {"bytes=0-99"}})
		require.Equal(t, http.StatusPartialContent, resp.StatusCode)
		_, err = r.OpenResponse(ctx, resp, nil)
		require.ErrorIs(t, err, envelope.ErrDisallowed)
		// …unless it is the whole object.
		resp = httpGet(t, http.DefaultClient, p.URL, http.Header{"Range": {"bytes=0-"}})
		got, _, err := readOpened(r.OpenResponse(ctx, resp, nil))
		require.NoError(t, err)
		require.True(t, bytes.Equal(pt, got))
	})

	t.Run("content encoding", func(t *testing.T) {
		// A body stored as gzip (the plaintext was): net/http asks for
		// gzip and decompresses what says it is, which the ciphertext is
		// not. Refused, and opened when fetched without decompression.
		w := newClient(t, api, kr)
		r := recipient(t, kr)
		_, err := w.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("gz"), Body: bytes.NewReader(pt), ContentEncoding: aws.String("gzip")})
		require.NoError(t, err)
		p, err := w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("gz")})
		require.NoError(t, err)
		_, err = r.OpenResponse(ctx, httpGet(t, &http.Client{}, p.URL, nil), nil)
		require.ErrorIs(t, err, envelope.ErrDisallowed)
		raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		got, out, err := openShared(t, r, raw, p)
		require.NoError(t, err)
		require.True(t, bytes.Equal(pt, got))
		require.Equal(t, int64(len(pt)), aws.ToInt64(out.ContentLength))
	})

	t.Run("duplicate envelope header", func(t *testing.T) {
		w := newClient(t, api, kr)
		r := recipient(t, kr)
		put(t, w, bucket, "dup", bytes.NewReader(pt))
		p, err := w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("dup")})
		require.NoError(t, err)
		const wrapped = "X-Amz-Meta-X-Amz-3" // V3's wrapped data key
		for _, edit := range []func(http.Header){
			func(h http.Header) { h.Add(wrapped, "AAAA") },
			func(h http.Header) { h["x-amz-meta-x-amz-3"] = []string{"AAAA"} },
			func(h http.Header) { h["x-amz-meta-x-amz-3"] = h[wrapped] }, // even the same value
		} {
			resp := httpGet(t, http.DefaultClient, p.URL, nil)
			require.NotEmpty(t, resp.Header.Get(wrapped))
			edit(resp.Header)
			_, err := r.OpenObject(ctx, resp.Header, resp.Body, nil)
			require.ErrorIs(t, err, envelope.ErrMalformed)
		}
	})
}

func TestPresignMemFailures(t *testing.T) {
	api, bucket := memShared(t)
	presignFailures(t, api, bucket)
}

func TestPresignS3Failures(t *testing.T) {
	api, bucket := realS3(t)
	presignFailures(t, api, bucket)

	// A signature that does not match: S3's 403, not an open.
	ctx := context.Background()
	kr := masterKeys(t)[0]
	w := newClient(t, api, kr)
	put(t, w, bucket, "forged", bytes.NewReader([]byte("x")))
	p, err := w.PresignGetObject(ctx, s3.NewPresignClient(api), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("forged")})
	require.NoError(t, err)
	u, err := url.Parse(p.URL)
	require.NoError(t, err)
	q := u.Query()
	sig := []byte(q.Get("X-Amz-Signature"))
	sig[0] = "10"[min(1, int(sig[0]-'0'))] // another hex digit
	q.Set("X-Amz-Signature", string(sig))
	u.RawQuery = q.Encode()
	_, err = recipient(t, kr).OpenResponse(ctx, httpGet(t, http.DefaultClient, u.String(), nil), nil)
	requireStatus(t, err, http.StatusForbidden, "")
	t.Logf("forged: %v", err)
}

// TestPresignKMS shares a KMS-wrapped object under an encryption context:
// the recipient, holding only the KMS keyring, opens it; expecting another
// context, it fails authentication and releases nothing.
func TestPresignKMS(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	kr := newKMSKeyring(t, kc, newKMSKey(t, kc))
	ctx := context.Background()
	ec := map[string]string{"tenant": "acme"}
	for _, tc := range []presignCase{{envelope.FormatV3, false}, {envelope.FormatV2, true}, {envelope.FormatSegmented, false}} {
		t.Run(tc.String(), func(t *testing.T) {
			w := newClient(t, api, kr, tc.apply)
			key := "kms-" + tc.String()
			pt := random(200_001)
			require.NoError(t, kmsPut(kmsWithEC(ctx, ec), w, bucket, key, pt))
			p, err := w.PresignGetObject(ctx, s3.NewPresignClient(api), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			require.NoError(t, err)
			r := recipient(t, newKMSKeyring(t, kc, kr.KeyID()), tc.apply)
			got, _, err := openShared(t, r, http.DefaultClient, p)
			require.NoError(t, err)
			require.True(t, bytes.Equal(pt, got), "plaintext differs")

			instr := fetchInstruction(t, http.DefaultClient, p)
			other := keyring.WithEncryptionContext(ctx, map[string]string{"tenant": "evil"})
			got, _, err = readOpened(r.OpenResponse(other, httpGet(t, http.DefaultClient, p.URL, nil), instr))
			require.ErrorIs(t, err, envelope.ErrAuthentication)
			require.Empty(t, got)
		})
	}
}

// TestPresignSSEC shares a managed SSE-C object from MinIO over TLS: the
// URL with the SSE-C headers, which net/http sends, and MinIO decrypts.
// The key is in those headers only — not in the URL, not in what fmt
// prints — and the signature covers them: without them, or with another
// key, MinIO refuses.
func TestPresignSSEC(t *testing.T) {
	api, bucket := realSSEC(t)
	ctx := context.Background()
	kr := masterKeys(t)[0]
	c := sseClient(t, api, kr)
	pt := random(300_007)
	put(t, c, bucket, "shared", bytes.NewReader(pt))
	pc := s3.NewPresignClient(api)
	p, err := c.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("shared")})
	require.NoError(t, err)
	require.Empty(t, p.InstructionURL)
	dataKey := dataKeyOf(t, api, kr, bucket, "shared")
	b64Key := base64.StdEncoding.EncodeToString(dataKey)

	h := p.Header()
	require.Equal(t, b64Key, h.Get("X-Amz-Server-Side-Encryption-Customer-Key"))
	require.Equal(t, "AES256", h.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm"))
	require.NotEmpty(t, h.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5"))
	u, err := url.Parse(p.URL)
	require.NoError(t, err)
	require.Equal(t, "https", u.Scheme)
	require.NotContains(t, p.URL, b64Key)
	require.NotContains(t, p.URL, url.QueryEscape(b64Key))
	for _, name := range []string{"x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key", "x-amz-server-side-encryption-customer-key-md5"} {
		require.Contains(t, strings.Split(u.Query().Get("X-Amz-SignedHeaders"), ";"), name)
	}
	type holder struct{ p s3crypto.PresignedObject }
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{p, *p, holder{*p}, []*s3crypto.PresignedObject{p}} {
			s := fmt.Sprintf(verb, v)
			require.NotContains(t, s, b64Key, "%s of %T", verb, v)
			require.NotContains(t, s, fmt.Sprintf("%x", dataKey), "%s of %T", verb, v)
			require.NotContains(t, s, string(dataKey), "%s of %T", verb, v)
		}
	}

	hc := testenv.SSECHTTP(t)
	fetch := func(h http.Header) (int, []byte) {
		resp := httpGet(t, hc, p.URL, h)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	status, got := fetch(p.Header())
	require.Equal(t, http.StatusOK, status, "%s", got)
	require.True(t, bytes.Equal(pt, got), "plaintext differs")

	status, _ = fetch(nil)
	require.GreaterOrEqual(t, status, 400, "without the SSE-C headers")
	other := random(32)
	sum := md5.Sum(other)
	forged := p.Header()
	forged.Set("X-Amz-Server-Side-Encryption-Customer-Key", base64.StdEncoding.EncodeToString(other))
	forged.Set("X-Amz-Server-Side-Encryption-Customer-Key-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	status, _ = fetch(forged)
	require.Equal(t, http.StatusForbidden, status, "with another key")

	// A range is S3's to serve: the Range header is signed and handed over.
	p, err = c.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("shared"), Range: aws.String("bytes=1000-1999")})
	require.NoError(t, err)
	require.Equal(t, "bytes=1000-1999", p.Header().Get("Range"))
	status, got = fetch(p.Header())
	require.Equal(t, http.StatusPartialContent, status)
	require.True(t, bytes.Equal(pt[1000:2000], got))

	// Expired: MinIO's 403.
	p, err = c.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("shared")}, expired)
	require.NoError(t, err)
	status, _ = fetch(p.Header())
	require.Equal(t, http.StatusForbidden, status)

	// Customer keys of the caller's own are refused; so is a URL that is
	// not https, before the key is handed anywhere.
	_, err = c.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("shared"), SSECustomerKey: aws.String("k")})
	require.ErrorIs(t, err, s3crypto.ErrManagedCustomerKey)
	insecure := s3.NewPresignClient(api, func(o *s3.PresignOptions) {
		o.ClientOptions = append(o.ClientOptions, func(o *s3.Options) {
			o.BaseEndpoint = aws.String("http://" + strings.TrimPrefix(aws.ToString(o.BaseEndpoint), "https://"))
		})
	})
	p, err = c.PresignGetObject(ctx, insecure, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("shared")})
	require.ErrorIs(t, err, s3crypto.ErrInsecureEndpoint)
	require.Nil(t, p)
	require.NotContains(t, err.Error(), b64Key)

	// An object without a companion is not shared.
	_, err = api.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("plain"), Body: bytes.NewReader([]byte("x"))})
	require.NoError(t, err)
	_, err = c.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("plain")})
	require.ErrorIs(t, err, envelope.ErrNoEnvelope)
}
