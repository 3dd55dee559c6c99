package s3crypto_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
)

// liar is an S3 endpoint on 127.0.0.1 — plain HTTP, or TLS with
// httptest's certificate — in front of a real server (versitygw, or MinIO
// over TLS for SSE-C), that a test makes lie. intercept sees each request
// first and may answer it itself (a redirect, an error); otherwise the
// request is forwarded as the client signed it, and rewrite may change the
// response (status, headers, body) before it is passed on.
type liar struct {
	srv       *httptest.Server
	target    *url.URL
	transport *http.Transport
	ssec      bool

	mu        sync.Mutex
	intercept func(w http.ResponseWriter, r *http.Request) bool
	rewrite   func(r *http.Request, resp *http.Response)
	// strip names headers to remove from a request before it is
	// forwarded (a condition a server might ignore); the request is then
	// signed again with the backend's credentials.
	strip func(r *http.Request) []string
}

// newLiar starts a liar in front of versitygw or, with ssec, MinIO.
func newLiar(t testing.TB, ssec, useTLS bool) *liar {
	t.Helper()
	env := "S3ENVELOPE_S3_ENDPOINT"
	if ssec {
		env = "S3ENVELOPE_SSEC_ENDPOINT"
	}
	endpoint := os.Getenv(env)
	if endpoint == "" {
		t.Fatalf("%s is not set: run ./scripts/test, which starts the test servers", env)
	}
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	l := &liar{target: u, ssec: ssec, transport: &http.Transport{DisableCompression: true}}
	if ssec {
		pem, err := os.ReadFile(os.Getenv("S3ENVELOPE_SSEC_CA"))
		require.NoError(t, err, "reading S3ENVELOPE_SSEC_CA")
		roots := x509.NewCertPool()
		require.True(t, roots.AppendCertsFromPEM(pem))
		l.transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	if useTLS {
		l.srv = httptest.NewTLSServer(l)
	} else {
		l.srv = httptest.NewServer(l)
	}
	t.Cleanup(func() {
		l.srv.CloseClientConnections()
		l.srv.Close()
		l.transport.CloseIdleConnections()
	})
	return l
}

func (l *liar) set(intercept func(http.ResponseWriter, *http.Request) bool, rewrite func(*http.Request, *http.Response)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.intercept, l.rewrite = intercept, rewrite
}

func (l *liar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	intercept, rewrite, strip := l.intercept, l.rewrite, l.strip
	l.mu.Unlock()
	if intercept != nil && intercept(w, r) {
		return
	}
	out := r.Clone(context.WithoutCancel(r.Context()))
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = l.target.Scheme, l.target.Host
	out.Host = r.Host // signed by the client
	if r.ContentLength == 0 {
		out.Body = nil
	}
	if strip != nil {
		if names := strip(r); len(names) > 0 {
			for _, h := range names {
				out.Header.Del(h)
			}
			if err := l.resign(out); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
	}
	resp, err := l.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if rewrite != nil {
		rewrite(r, resp)
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// credentials are the backend's.
func (l *liar) credentials() aws.Credentials {
	prefix := "S3ENVELOPE_S3_"
	if l.ssec {
		prefix = "S3ENVELOPE_SSEC_"
	}
	return aws.Credentials{AccessKeyID: os.Getenv(prefix + "ACCESS_KEY"), SecretAccessKey: os.Getenv(prefix + "SECRET_KEY")}
}

// resign signs a request again, as S3 clients do (SigV4, the payload hash
// the client sent), for the host the client signed for.
func (l *liar) resign(r *http.Request) error {
	r.Header.Del("Authorization")
	return v4.NewSigner().SignHTTP(context.Background(), l.credentials(), r, r.Header.Get("X-Amz-Content-Sha256"),
		"s3", "us-east-1", time.Now(), func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

// client returns an S3 client for the liar, with the backend's
// credentials. Over TLS it trusts httptest's certificate, through the
// SDK's own BuildableClient (sdkHTTP) or a plain *http.Client.
func (l *liar) client(t testing.TB, sdkHTTP bool, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	creds := l.credentials()
	o := s3.Options{
		BaseEndpoint: aws.String(l.srv.URL),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
	}
	if l.srv.TLS != nil {
		if sdkHTTP {
			roots := x509.NewCertPool()
			roots.AddCert(l.srv.Certificate())
			o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
				tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
			})
		} else {
			o.HTTPClient = l.srv.Client()
		}
	}
	return s3.New(o, optFns...)
}
