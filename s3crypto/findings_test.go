package s3crypto_test

// Regression tests for the findings of the outside security review
// (issue 13), named for them. Each failed before its fix. The hostile
// servers are liars (liar_test.go) in front of versitygw or MinIO, reached
// through a real *s3.Client.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

const customerKeyHeader = "X-Amz-Server-Side-Encryption-Customer-Key"

// keyCatcher is a plain-HTTP host that counts what reaches it, and the
// requests that carry an SSE-C key; it answers every request with a body of
// its own.
type keyCatcher struct {
	srv        *httptest.Server
	reqs, keys atomic.Int32
}

func newKeyCatcher(t *testing.T) *keyCatcher {
	k := &keyCatcher{}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.reqs.Add(1)
		if r.Header.Get(customerKeyHeader) != "" {
			k.keys.Add(1)
		}
		io.WriteString(w, "the attacker's body")
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// Finding 1: an https endpoint that answers 307 to a plain-HTTP host must
// not get the SDK to send the customer key there — for GetObject,
// HeadObject, the Downloader and the HEAD after a failed write — nor get
// that host's body returned as the object. Redirects to https still work.
func TestFinding01SSECKeyNeverFollowsARedirectOffHTTPS(t *testing.T) {
	api, bucket := realSSEC(t)
	kr := newAES(t, "a")
	put(t, sseClient(t, api, kr), bucket, "obj", strings.NewReader("the object"))
	catcher := newKeyCatcher(t)
	isObject := func(r *http.Request) bool { return objectKey(r, bucket) == "obj" }
	redirect := func(w http.ResponseWriter, r *http.Request, to string) {
		w.Header().Set("Location", to+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
	ctx := context.Background()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")}
	for _, sdkHTTP := range []bool{false, true} {
		t.Run(fmt.Sprintf("SDK's HTTP client %v", sdkHTTP), func(t *testing.T) {
			l := newLiar(t, true, true)
			c := sseClient(t, l.client(t, sdkHTTP), kr)
			l.set(func(w http.ResponseWriter, r *http.Request) bool {
				if isObject(r) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
					redirect(w, r, catcher.srv.URL)
					return true
				}
				return false
			}, nil)
			errs := map[string]error{}
			var out *s3.GetObjectOutput
			out, errs["GetObject"] = c.GetObject(ctx, in)
			_, errs["HeadObject"] = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: in.Bucket, Key: in.Key})
			_, errs["Download"] = s3crypto.NewDownloader(c).Download(ctx, io.Discard, in)
			for op, err := range errs {
				require.ErrorIs(t, err, s3crypto.ErrInsecureEndpoint, op)
			}
			require.Nil(t, out, "GetObject returned the redirected host's body")

			// A write that fails is followed by a HEAD with the new key,
			// to learn whether it landed: redirected too.
			l.set(func(w http.ResponseWriter, r *http.Request) bool {
				switch {
				case isObject(r) && r.Method == http.MethodPut:
					internalError(w)
					return true
				case isObject(r) && r.Method == http.MethodHead:
					redirect(w, r, catcher.srv.URL)
					return true
				}
				return false
			}, nil)
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: in.Bucket, Key: in.Key, Body: strings.NewReader("new")})
			require.Error(t, err)
			require.Zero(t, catcher.reqs.Load(), "requests reached the plain-HTTP host (%d with a customer key)", catcher.keys.Load())

			// A redirect that stays on https is followed (here to the same
			// URL once, so that the signature still holds).
			var redirected atomic.Bool
			l.set(func(w http.ResponseWriter, r *http.Request) bool {
				if isObject(r) && r.Method == http.MethodGet && !redirected.Swap(true) {
					redirect(w, r, l.srv.URL)
					return true
				}
				return false
			}, nil)
			got, err := get(c, bucket, "obj")
			require.NoError(t, err)
			require.Equal(t, "the object", string(got))
			require.True(t, redirected.Load())
		})
	}
}

// opaque hides the *s3.Client it holds, as a wrapper of the user's would:
// New cannot inspect its endpoint.
type opaque struct{ s3Full }

// Finding 2: an SSE-C client refuses a plain-HTTP endpoint when it is
// made, if it can see it, and otherwise refuses every request before it is
// sent — RewrapAll's listing included.
func TestFinding02SSECPlainHTTPNeverSent(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"}, nil
	})
	api := s3.New(s3.Options{BaseEndpoint: aws.String(srv.URL), Region: "us-east-1", UsePathStyle: true, Credentials: creds})
	kr := newAES(t, "a")
	_, err := s3crypto.NewSSEC(api, provider(t, kr))
	require.ErrorIs(t, err, s3crypto.ErrInsecureEndpoint, "NewSSEC with an http BaseEndpoint")
	for name, o := range map[string]func(*s3.Options){
		"DisableHTTPS":       func(o *s3.Options) { o.EndpointOptions.DisableHTTPS = true },
		"unknown HTTPClient": func(o *s3.Options) { o.HTTPClient = doerFunc(http.DefaultClient.Do) },
	} {
		tlsAPI := s3.New(s3.Options{BaseEndpoint: aws.String("https://127.0.0.1:1"), Region: "us-east-1", UsePathStyle: true, Credentials: creds}, o)
		_, err := s3crypto.NewSSEC(tlsAPI, provider(t, kr))
		require.ErrorIs(t, err, s3crypto.ErrInsecureEndpoint, name)
	}
	// A client-side client may use plain HTTP (nothing secret is sent).
	_, err = s3crypto.New(api, provider(t, kr))
	require.NoError(t, err)

	c, err := s3crypto.NewSSEC(opaque{api}, provider(t, kr))
	require.NoError(t, err, "NewSSEC cannot see into an opaque API")
	ctx := context.Background()
	b, k := aws.String("bucket"), aws.String("key")
	errs := map[string]error{}
	_, errs["PutObject"] = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("secret")})
	_, errs["GetObject"] = c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k})
	_, errs["HeadObject"] = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: k})
	_, errs["DeleteObject"] = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: k})
	_, errs["CopyObject"] = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: k, CopySource: aws.String("bucket/src")})
	_, errs["Rewrap"] = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: b, Key: k})
	_, errs["RewrapAll"] = c.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: b})
	// The paths added with API 1.0: a batch delete, and request options and
	// a bucket owner wrapped around the https checks.
	_, errs["DeleteObjects"] = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: k}}}})
	noop := func(*s3.Options) {}
	_, errs["Rewrap with options"] = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: b, Key: k, ExpectedBucketOwner: aws.String("111122223333")}, noop)
	_, errs["RewrapAll with options"] = c.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: b, RequestPayer: types.RequestPayerRequester}, noop)
	_, errs["Upload"] = s3crypto.NewUploader(c).Upload(ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: bytes.NewReader(make([]byte, 6<<20))})
	_, errs["Download"] = s3crypto.NewDownloader(c).Download(ctx, io.Discard, &s3.GetObjectInput{Bucket: b, Key: k})
	for op, err := range errs {
		require.ErrorIs(t, err, s3crypto.ErrInsecureEndpoint, op)
	}
	require.Zero(t, requests.Load(), "requests reached the plain-HTTP server")

	// The same endpoint over TLS is accepted (the check is the scheme).
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	defer tlsSrv.Close()
	api = s3.New(s3.Options{BaseEndpoint: aws.String(tlsSrv.URL), Region: "us-east-1", UsePathStyle: true, HTTPClient: tlsSrv.Client(), Credentials: creds})
	_, err = sseClient(t, api, kr).GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k})
	require.Error(t, err)
	require.NotErrorIs(t, err, s3crypto.ErrInsecureEndpoint)
	require.NotZero(t, requests.Load())
}

// doerFunc is an HTTP client of a kind the SDK does not build.
type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// sealV2 seals plaintext as a V2 body under dataKey, as a bucket writer
// holding that key would.
func sealV2(t *testing.T, dataKey, plaintext []byte) (iv, body []byte) {
	b, err := aes.NewCipher(dataKey)
	require.NoError(t, err)
	g, err := cipher.NewGCM(b)
	require.NoError(t, err)
	iv = random(12)
	return iv, g.Seal(nil, iv, plaintext, nil)
}

// Finding 3: the data key of an SSE-C object (S3 receives it on every
// request) must never open a client-side object, under any switch: its
// KMS blob and context copied into a V2 envelope as a legacy "kms" wrap,
// with a body sealed under that key, is refused.
func TestFinding03SSECDataKeyNeverOpensAClientSideObject(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	kr := newKMSKeyring(t, kc, newKMSKey(t, kc))
	ctx := context.Background()
	// The companion's key, as an SSE-C client makes it (and S3 sees it).
	dataKey, wrapped, err := format.NewCustomerKey(keyring.WithEncryptionContext(ctx, map[string]string{"tenant": "acme"}), kr)
	require.NoError(t, err)
	iv, body := sealV2(t, dataKey, []byte("chosen by whoever saw the SSE-C key"))
	for _, wrap := range []string{format.WrapLegacyKMS, format.WrapKMSContext} {
		key := "planted/" + wrap
		_, err = api.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body), Metadata: map[string]string{
			"x-amz-key-v2": base64.StdEncoding.EncodeToString(wrapped.Ciphertext), "x-amz-iv": base64.StdEncoding.EncodeToString(iv),
			"x-amz-cek-alg": format.ContentAESGCM, "x-amz-wrap-alg": wrap, "x-amz-tag-len": "128",
			"x-amz-matdesc": format.EncodeDescription(wrapped.Description),
		}})
		require.NoError(t, err)
		c := newClient(t, api, kr, func(o *s3crypto.Options) {
			o.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt
			o.EnableLegacyWrappingAlgorithms = true
			o.EnableLegacyUnauthenticatedModes = true
		})
		got, err := get(c, bucket, key)
		require.ErrorIs(t, err, envelope.ErrAuthentication, wrap)
		require.Empty(t, got)
	}
}

// Finding 4: a V2 instruction file beside a V3 object's x-amz-c/d/i must
// not make the object open as V2 (no commitment check): the envelope is
// malformed, and no key is unwrapped.
func TestFinding04InstructionFileCannotDowngradeV3(t *testing.T) {
	api, bucket := realS3(t)
	kr := newAES(t, "a")
	ctx := context.Background()
	v3 := newClient(t, api, kr, func(o *s3crypto.Options) { o.InstructionFile = true })
	v2 := newClient(t, api, kr, func(o *s3crypto.Options) {
		o.InstructionFile = true
		o.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt
	})
	put(t, v3, bucket, "v3", strings.NewReader("committed"))
	put(t, v2, bucket, "v2", strings.NewReader("other"))
	// The attacker copies the V2 object's instruction file over the V3 one's.
	_, err := api.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("v3" + format.InstructionSuffix),
		CopySource: aws.String(bucket + "/v2" + format.InstructionSuffix)})
	require.NoError(t, err)
	unwraps := &countingUnwraps{Provider: provider(t, kr)}
	reader, err := s3crypto.New(api, unwraps, func(o *s3crypto.Options) { o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt })
	require.NoError(t, err)
	_, err = get(reader, bucket, "v3")
	require.ErrorIs(t, err, envelope.ErrMalformed)
	require.Zero(t, unwraps.n.Load(), "a key was unwrapped for a malformed envelope")
}

// countingUnwraps counts the data keys a provider unwraps.
type countingUnwraps struct {
	materials.Provider
	n atomic.Int32
}

func (c *countingUnwraps) Unwrap(ctx context.Context, w *envelope.WrappedKey, alg string) ([]byte, error) {
	c.n.Add(1)
	return c.Provider.Unwrap(ctx, w, alg)
}

// Finding 5: a GET that expects an encryption context must not return an
// RSA-wrapped object that a holder of the public key swapped in; an AES or
// RSA wrap cannot bind a context, so the expectation is refused (typed)
// rather than ignored, and so is a PUT asking to bind one.
func TestFinding05ExpectedContextNeverIgnored(t *testing.T) {
	api, bucket := realS3(t)
	priv := newRSA(t, 0, "rsa")
	pub, err := keyring.NewRSAPublic(&rsaKey(0).PublicKey, priv.Description())
	require.NoError(t, err)
	ctx := context.Background()
	acme := keyring.WithEncryptionContext(ctx, map[string]string{"tenant": "acme"})
	put(t, newClient(t, api, pub), bucket, "swapped", strings.NewReader("planted by a public-key holder"))
	reader := newClient(t, api, priv)
	got, err := getCtx(acme, reader, bucket, "swapped")
	require.ErrorIs(t, err, envelope.ErrDisallowed)
	require.Empty(t, got)

	for _, kr := range []keyring.Keyring{newAES(t, "aes"), priv} {
		c := newClient(t, api, kr)
		_, err := c.PutObject(acme, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("ctx"), Body: strings.NewReader("x")})
		require.ErrorIs(t, err, envelope.ErrUnsupported)
	}
	// Without an expectation, the object opens as before.
	got, err = get(reader, bucket, "swapped")
	require.NoError(t, err)
	require.Equal(t, "planted by a public-key holder", string(got))
}

// Finding 6: a writer's KMS encryption context that holds kms_cmk_id
// round-trips with the same context expected.
func TestFinding06WritersKMSCmkIDRoundTrips(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	c := newClient(t, api, newKMSKeyring(t, kc, newKMSKey(t, kc)))
	ctx := keyring.WithEncryptionContext(context.Background(), map[string]string{"tenant": "acme", "kms_cmk_id": "reports"})
	require.NoError(t, kmsPut(ctx, c, bucket, "cmk", []byte("reports")))
	got, err := getCtx(ctx, c, bucket, "cmk")
	require.NoError(t, err)
	require.Equal(t, "reports", string(got))
	_, err = getCtx(keyring.WithEncryptionContext(context.Background(), map[string]string{"tenant": "acme"}), c, bucket, "cmk")
	require.ErrorIs(t, err, envelope.ErrAuthentication)
}

// Finding 7: a server that claims a V2/V3 object of 2^40 bytes — in a
// range's Content-Range or a HEAD's Content-Length — makes the read fail
// with ErrTooLarge, legacy switches or not; nothing panics.
func TestFinding07HugeClaimedSizeIsTooLarge(t *testing.T) {
	api, bucket := realS3(t)
	kr := newAES(t, "a")
	for _, f := range []envelope.Format{envelope.FormatV2, envelope.FormatV3} {
		v := variant{format: f}
		key := "huge/" + f.String()
		put(t, newClient(t, api, kr, v.apply), bucket, key, bytes.NewReader(random(1000)))
		l := newLiar(t, false, false)
		const huge = int64(1) << 40
		l.set(nil, func(r *http.Request, resp *http.Response) {
			if objectKey(r, bucket) != key {
				return
			}
			if cr := resp.Header.Get("Content-Range"); cr != "" {
				resp.Header.Set("Content-Range", cr[:strings.LastIndex(cr, "/")+1]+strconv.FormatInt(huge, 10))
			}
			if r.Method == http.MethodHead {
				resp.Header.Set("Content-Length", strconv.FormatInt(huge, 10))
			}
		})
		c := newClient(t, l.client(t, false), kr, func(o *s3crypto.Options) {
			o.EnableLegacyUnauthenticatedModes = true
			o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
		})
		ctx := context.Background()
		for _, rng := range []string{"bytes=-10", "bytes=0-9", "bytes=100-"} {
			require.NotPanics(t, func() {
				_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String(rng)})
				require.ErrorIs(t, err, envelope.ErrTooLarge, "%v %s", f, rng)
			})
		}
		_, err := s3crypto.NewDownloader(c).Download(ctx, io.Discard, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		require.ErrorIs(t, err, envelope.ErrTooLarge, "%v Download", f)
	}
}

// Finding 8: closing a GetObject body while another goroutine reads it —
// how an HTTP body is aborted — is safe (run under -race: no read touches
// spool memory Close gave back).
func TestFinding08CloseBodyDuringRead(t *testing.T) {
	api, bucket := realS3(t)
	kr := newAES(t, "a")
	ctx := context.Background()
	for _, v := range []variant{{envelope.FormatV3, false}, {envelope.FormatSegmented, false}} {
		c := newClient(t, api, kr, v.apply, func(o *s3crypto.Options) { o.SpoolMemory = 1 << 20 })
		pt := random(4 << 20)
		key := "close/" + v.String()
		put(t, c, bucket, key, bytes.NewReader(pt))
		for _, copyOut := range []bool{false, true} {
			for _, after := range []time.Duration{0, 100 * time.Microsecond, 2 * time.Millisecond} {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				var wg sync.WaitGroup
				var got bytes.Buffer
				wg.Go(func() {
					if copyOut { // io.Copy, as most readers do: the body's WriteTo
						io.Copy(io.MultiWriter(&got, slowWriter{20 * time.Microsecond}), out.Body)
						return
					}
					buf := make([]byte, 1000)
					for {
						n, err := out.Body.Read(buf)
						got.Write(buf[:n])
						if err != nil {
							return
						}
					}
				})
				time.Sleep(after)
				require.NoError(t, out.Body.Close())
				wg.Wait()
				require.True(t, bytes.HasPrefix(pt, got.Bytes()), "%v: released bytes that are not the plaintext", v)
			}
		}
	}
}

// Finding 9: a ranged body shorter than its response announced fails with
// an error that wraps a sentinel (and io.ErrUnexpectedEOF), for every
// format's ranges and for a ReaderAt — never a bare io.EOF.
func TestFinding09ShortRangedBodyIsTyped(t *testing.T) {
	api, bucket := realS3(t)
	kr := newAES(t, "a")
	pt := random(300 << 10)
	opts := func(o *s3crypto.Options) {
		o.EnableLegacyUnauthenticatedModes = true
		o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
	}
	for _, f := range []envelope.Format{envelope.FormatSegmented, envelope.FormatV3, envelope.FormatV2} {
		v := variant{format: f}
		key := "short/" + f.String()
		put(t, newClient(t, api, kr, v.apply), bucket, key, bytes.NewReader(pt))
		// Cuts of the tail; 50 KiB of a suffix range's ~64 KiB fetch also
		// cuts into the bytes before the range, which are skipped.
		for _, cut := range []int64{1, 17, 50 << 10, 70 << 10} {
			l := newLiar(t, false, false)
			var short atomic.Bool
			l.set(nil, func(r *http.Request, resp *http.Response) {
				n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
				if objectKey(r, bucket) != key || r.Method != http.MethodGet || resp.Header.Get("Content-Range") == "" || err != nil || n <= cut {
					return
				}
				short.Store(true)
				resp.Header.Set("Content-Length", strconv.FormatInt(n-cut, 10))
				resp.Body = struct {
					io.Reader
					io.Closer
				}{io.LimitReader(resp.Body, n-cut), resp.Body}
			})
			c := newClient(t, l.client(t, false), kr, opts)
			for rng, want := range map[string][]byte{"bytes=0-99999": pt[:100000], "bytes=1000-": pt[1000:], "bytes=-5000": pt[len(pt)-5000:], "bytes=-100": pt[len(pt)-100:]} {
				short.Store(false)
				got, _, err := getRange(context.Background(), c, bucket, key, rng)
				if err == nil {
					// Only when the cut spared the bytes the range needs
					// (a V2/V3 fetch may be wider; a segmented one is exact).
					require.True(t, !short.Load() || f != envelope.FormatSegmented, "%v %s cut by %d read without error", f, rng, cut)
					require.True(t, bytes.Equal(want, got), "%v %s: wrong bytes without an error", f, rng)
					continue
				}
				require.True(t, errors.Is(err, envelope.ErrAuthentication) || errors.Is(err, envelope.ErrMalformed), "%v %s cut by %d: %v", f, rng, cut, err)
				require.True(t, bytes.HasPrefix(want, got), "%v %s: released bytes that are not the range's", f, rng)
			}
			if f == envelope.FormatSegmented {
				ra, err := c.NewReaderAt(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
				if err == nil {
					_, err = ra.ReadAt(make([]byte, 100<<10), 1000)
				}
				require.True(t, errors.Is(err, envelope.ErrAuthentication) || errors.Is(err, envelope.ErrMalformed), "ReaderAt cut by %d: %v", cut, err)
			}
		}
	}
}

// nilCurrent is a provider whose current master key is a nil pointer.
type nilCurrent struct{ materials.Provider }

func (nilCurrent) Current() keyring.Keyring { return (*keyring.AES)(nil) }

// Finding 10: `master, _ := keyring.NewAES(badKey, …)` — the README's old
// pattern — leaves a nil *keyring.AES; s3crypto.New refuses it (through
// NewProvider, or a provider of one's own) instead of PutObject panicking.
func TestFinding10TypedNilKeyringRefused(t *testing.T) {
	master, err := keyring.NewAES(make([]byte, 5), nil)
	require.Error(t, err)
	_, err = s3crypto.New(newMemS3(), materials.NewProvider(master))
	require.ErrorIs(t, err, materials.ErrNilKeyring)
	_, err = s3crypto.New(newMemS3(), materials.NewProvider(newAES(t, "a"), master))
	require.ErrorIs(t, err, materials.ErrNilKeyring)
	_, err = s3crypto.New(newMemS3(), nilCurrent{provider(t, newAES(t, "a"))})
	require.ErrorIs(t, err, materials.ErrNilKeyring)
	var nilProvider *countingUnwraps
	_, err = s3crypto.New(newMemS3(), nilProvider)
	require.Error(t, err)
	var nilAPI *s3.Client
	_, err = s3crypto.New(nilAPI, provider(t, newAES(t, "a")))
	require.Error(t, err)
}

// Finding 11: a write refused because the companion could not be read
// advises deleting the companion (which loses the stored object's key) only
// when that is the one way forward: a companion that cannot be used — not
// a cancelled context, a refused request or a plain-HTTP endpoint.
func TestFinding11CompanionHintOnlyWhenItHelps(t *testing.T) {
	api, bucket := realSSEC(t)
	kr := newAES(t, "a")
	c := sseClient(t, api, kr)
	put(t, c, bucket, "obj", strings.NewReader("v1"))
	const hint = "deleting"
	in := func() *s3.PutObjectInput {
		return &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("obj"), Body: strings.NewReader("v2")}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.PutObject(cancelled, in())
	require.ErrorIs(t, err, context.Canceled)
	require.NotContains(t, err.Error(), hint)

	// Refused by the server: a liar that answers the companion's GET 403.
	l := newLiar(t, true, true)
	l.set(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, format.CompanionSuffix) && r.Method == http.MethodGet {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		return false
	}, nil)
	_, err = sseClient(t, l.client(t, true), kr).PutObject(context.Background(), in())
	require.Error(t, err)
	require.NotContains(t, err.Error(), hint)

	// A companion that cannot be used: the hint, and the object untouched.
	_, err = api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("obj" + format.CompanionSuffix), Body: strings.NewReader(`{"v":"9","keys":[]}`)})
	require.NoError(t, err)
	_, err = c.PutObject(context.Background(), in())
	require.ErrorIs(t, err, envelope.ErrUnsupported)
	require.Contains(t, err.Error(), hint)
}

// Finding 13: a rewrap whose write landed but whose response was lost, and
// whose check of what landed then failed, reports ErrOutcomeUnknown — never
// ErrConcurrentModification, which says another writer won. Rewrapping
// again settles it. For the instruction-file (PutObject) path and the
// metadata (CopyObject) path.
func TestFinding13RewrapOutcomeUnknownIsItsOwnError(t *testing.T) {
	api, bucket := realS3(t)
	oldKey, newKey := newAES(t, "old"), newAES(t, "new")
	for _, instr := range []bool{true, false} {
		v := variant{format: envelope.FormatV3, instruction: instr}
		key := "outcome/" + v.String()
		body := random(1000)
		put(t, newClient(t, api, oldKey, v.apply), bucket, key, bytes.NewReader(body))
		isWrite := func(r *http.Request) bool {
			if instr {
				return r.Method == http.MethodPut && objectKey(r, bucket) == key+format.InstructionSuffix
			}
			return isCopy(r, bucket, key)
		}
		var wrote, failing atomic.Bool
		l := newLiar(t, false, false)
		l.set(func(w http.ResponseWriter, r *http.Request) bool {
			switch {
			case failing.Load() && r.Method == http.MethodHead:
				internalError(w) // the check after the lost response fails too
				return true
			case failing.Load() && isWrite(r):
				// The retry: refused, as S3 refuses it once the first
				// attempt changed the ETag.
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusPreconditionFailed)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`)
				return true
			}
			return false
		}, func(r *http.Request, resp *http.Response) {
			if isWrite(r) && !wrote.Swap(true) {
				// The write landed; its response is lost: the SDK retries,
				// and the retry's condition fails (412).
				resp.StatusCode = http.StatusServiceUnavailable
				resp.Header.Set("Content-Length", "0")
				resp.Body = io.NopCloser(strings.NewReader(""))
				failing.Store(true)
			}
		})
		c := clientFor(t, l.client(t, false, func(o *s3.Options) { o.RetryMaxAttempts = 2 }), newKey, []keyring.Keyring{oldKey})
		_, err := c.Rewrap(context.Background(), &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
		require.ErrorIs(t, err, s3crypto.ErrOutcomeUnknown, "%v", v)
		require.NotErrorIs(t, err, s3crypto.ErrConcurrentModification, "%v", v)
		require.True(t, wrote.Load())

		failing.Store(false)
		out, err := clientFor(t, api, newKey, []keyring.Keyring{oldKey}).Rewrap(context.Background(), &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
		require.NoError(t, err)
		require.Equal(t, s3crypto.AlreadyCurrent, out.Status, "%v: the lost write had landed", v)
		got, err := get(reader(t, api, newKey), bucket, key)
		require.NoError(t, err)
		require.True(t, bytes.Equal(body, got))
	}
}

// The review's extra (1): a server that does not honour CopySourceIfMatch
// or If-Match must not let a rewrap leave the old envelope beside a body
// another writer stored meanwhile without saying so. The liar strips the
// condition from the rewrap's write, after the other writer has replaced
// the object; the rewrap finds it (the copy's ETag or the body's tag; the
// object's ETag and commitment beside a rewritten instruction file) and
// reports ErrConcurrentModification.
func TestRewrapReportsAWriteTheServerDidNotGuard(t *testing.T) {
	api, bucket := realS3(t)
	oldKey, newKey := newAES(t, "old"), newAES(t, "new")
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		v         variant
		multipart bool
	}{
		{"metadata, one part", variant{envelope.FormatV3, false}, false},
		{"metadata, multipart", variant{envelope.FormatV3, false}, true},
		{"segmented, multipart", variant{envelope.FormatSegmented, false}, true},
		{"V3 instruction file", variant{envelope.FormatV3, true}, false},
		{"V2 instruction file", variant{envelope.FormatV2, true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "unguarded/" + strings.ReplaceAll(tc.name, " ", "-")
			writer := newClient(t, api, oldKey, tc.v.apply)
			if tc.multipart {
				up := s3crypto.NewUploader(writer, func(o *s3crypto.UploaderOptions) { o.PartSize = 5 << 20 })
				_, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(random(11 << 20))})
				require.NoError(t, err)
			} else {
				put(t, writer, bucket, key, bytes.NewReader(random(3000)))
			}
			isWrite := func(r *http.Request) bool {
				if tc.v.instruction {
					return r.Method == http.MethodPut && objectKey(r, bucket) == key+format.InstructionSuffix
				}
				return isCopy(r, bucket, key)
			}
			replaced := []byte("the other writer's object")
			l := newLiar(t, false, false)
			var raced atomic.Bool
			l.strip = func(r *http.Request) []string {
				if !isWrite(r) || raced.Swap(true) {
					return nil
				}
				put(t, writer, bucket, key, bytes.NewReader(replaced)) // between the rewrap's read and write
				return []string{"X-Amz-Copy-Source-If-Match", "If-Match"}
			}
			c := clientFor(t, l.client(t, false), newKey, []keyring.Keyring{oldKey})
			_, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
			require.True(t, raced.Load())
			require.ErrorIs(t, err, s3crypto.ErrConcurrentModification)
			require.ErrorContains(t, err, "did not honour")
			// What the error describes: the object no longer opens.
			_, err = get(reader(t, api, oldKey, newKey), bucket, key)
			require.Error(t, err)
		})
	}
}

// The review's extra (2): a V2/V3 body whose length the server does not
// give (a chunked response) spools at most Options.SpoolLimit bytes, then
// fails with ErrTooLarge; within the limit it opens.
func TestGetObjectOfUnknownLengthIsBounded(t *testing.T) {
	api, bucket := realS3(t)
	kr := newAES(t, "a")
	pt := random(3 << 20)
	put(t, newClient(t, api, kr), bucket, "chunked", bytes.NewReader(pt))
	l := newLiar(t, false, false)
	var chunked atomic.Int32
	l.set(nil, func(r *http.Request, resp *http.Response) {
		if r.Method == http.MethodGet && objectKey(r, bucket) == "chunked" {
			resp.Header.Del("Content-Length")
			chunked.Add(1)
		}
	})
	for _, limit := range []int64{1 << 20, 0} {
		dir := t.TempDir()
		c := newClient(t, l.client(t, false), kr, func(o *s3crypto.Options) {
			o.SpoolLimit, o.SpoolDir, o.SpoolMemory = limit, dir, 64<<10
		})
		got, err := get(c, bucket, "chunked")
		if limit > 0 {
			require.ErrorIs(t, err, envelope.ErrTooLarge)
		} else {
			require.NoError(t, err)
			require.True(t, bytes.Equal(pt, got))
		}
	}
	require.EqualValues(t, 2, chunked.Load())
}
