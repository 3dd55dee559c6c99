package s3crypto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// s3At returns an S3 client for the test server (or for endpoint, when not
// empty: a proxy in front of it), with optFns applied.
func s3At(t testing.TB, endpoint string, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	if endpoint == "" {
		endpoint = os.Getenv("S3ENVELOPE_S3_ENDPOINT")
	}
	if endpoint == "" {
		t.Fatal("S3ENVELOPE_S3_ENDPOINT is not set: run ./scripts/test, which starts a real S3 server (versitygw) for these tests")
	}
	ak, sk := os.Getenv("S3ENVELOPE_S3_ACCESS_KEY"), os.Getenv("S3ENVELOPE_S3_SECRET_KEY")
	region := os.Getenv("S3ENVELOPE_S3_REGION")
	if region == "" {
		region = "us-east-1"
	}
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       region,
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, nil
		}),
	}, optFns...)
}

// withTransport routes a client's requests through rt.
func withTransport(rt http.RoundTripper) func(*s3.Options) {
	return func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: rt} }
}

// meter is an http.RoundTripper that counts the bytes a client moves (request
// line, headers and body up; status line, headers and body down) and
// records each request as "METHOD /path?query".
type meter struct {
	base     http.RoundTripper
	up, down atomic.Int64
	mu       sync.Mutex
	reqs     []string
}

func newMeter() *meter { return &meter{base: http.DefaultTransport.(*http.Transport).Clone()} }

func (m *meter) RoundTrip(r *http.Request) (*http.Response, error) {
	m.mu.Lock()
	m.reqs = append(m.reqs, r.Method+" "+r.URL.RequestURI())
	m.mu.Unlock()
	m.up.Add(int64(len(r.Method) + len(r.URL.RequestURI()) + len(" HTTP/1.1\r\n") + headerSize(r.Header) + len("Host: \r\n") + len(r.Host)))
	if r.Body != nil {
		r.Body = &countingBody{ReadCloser: r.Body, n: &m.up}
	}
	resp, err := m.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	m.down.Add(int64(len(resp.Proto) + len(resp.Status) + 3 + headerSize(resp.Header)))
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &m.down}
	return resp, nil
}

func headerSize(h http.Header) int {
	n := 2
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// requests returns and forgets the requests recorded so far.
func (m *meter) requests() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.reqs
	m.reqs = nil
	return r
}

func (m *meter) reset() {
	m.requests()
	m.up.Store(0)
	m.down.Store(0)
}

// writes are the requests that change something.
func writes(reqs []string) []string {
	var w []string
	for _, r := range reqs {
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			w = append(w, r)
		}
	}
	return w
}

var (
	rsaKeysOnce sync.Once
	rsaKeys     [3]*rsa.PrivateKey
)

// rsaKey returns one of three fixed-per-run 2048-bit RSA keys.
func rsaKey(i int) *rsa.PrivateKey {
	rsaKeysOnce.Do(func() {
		rsaKeys[0] = testRSA()
		for j := 1; j < len(rsaKeys); j++ {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

// rotation is an old and a new master key of given wraps.
type rotation struct{ old, new keyring.Keyring }

func newAES(t testing.TB, kid string) *keyring.AES {
	k, err := keyring.NewAES(random(32), map[string]string{"kid": kid})
	require.NoError(t, err)
	return k
}

func newRSA(t testing.TB, i int, kid string) *keyring.RSA {
	k, err := keyring.NewRSA(rsaKey(i), map[string]string{"kid": kid})
	require.NoError(t, err)
	return k
}

// clientFor returns an encrypting client over api with current master key
// cur (nil: read only) and others, that reads V2 and V3.
func clientFor(t testing.TB, api s3crypto.S3API, cur keyring.Keyring, others []keyring.Keyring, opts ...func(*s3crypto.Options)) *s3crypto.Client {
	t.Helper()
	all := append([]func(*s3crypto.Options){func(o *s3crypto.Options) { o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt }}, opts...)
	c, err := s3crypto.New(api, provider(t, cur, others...), all...)
	require.NoError(t, err)
	return c
}

// reader returns a client that reads with exactly the given master keys.
func reader(t testing.TB, api s3crypto.S3API, keys ...keyring.Keyring) *s3crypto.Client {
	return clientFor(t, api, nil, keys)
}

// snapshot is what the server holds for one object, read with the raw
// client: HEAD, tags, and the instruction file if there is one.
type snapshot struct {
	head      *s3.HeadObjectOutput
	tags      []types.Tag
	instr     []byte
	instrHead *s3.HeadObjectOutput
}

func snap(t testing.TB, api *s3.Client, bucket, key string) snapshot {
	t.Helper()
	ctx := context.Background()
	h, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	require.NoError(t, err)
	tg, err := api.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: &key})
	require.NoError(t, err)
	s := snapshot{head: h, tags: tg.TagSet}
	ik := key + format.InstructionSuffix
	g, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &ik})
	if err == nil {
		s.instr, err = io.ReadAll(g.Body)
		g.Body.Close()
		require.NoError(t, err)
		s.instrHead, err = api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &ik})
		require.NoError(t, err)
	}
	return s
}

// requireSameAttributes compares two HEADs field by field: every field but
// those named in except (and the SDK's ResultMetadata) must be equal.
// Metadata is compared without the envelope's keys; the caller checks those.
func requireSameAttributes(t testing.TB, before, after *s3.HeadObjectOutput, except ...string) {
	t.Helper()
	skip := map[string]bool{"ResultMetadata": true}
	for _, e := range except {
		skip[e] = true
	}
	bv, av := reflect.ValueOf(before).Elem(), reflect.ValueOf(after).Elem()
	compared := 0
	for i := range bv.NumField() {
		f := bv.Type().Field(i)
		if !f.IsExported() || skip[f.Name] {
			continue
		}
		b, a := bv.Field(i).Interface(), av.Field(i).Interface()
		if f.Name == "Metadata" {
			b, a = userMetadata(before.Metadata), userMetadata(after.Metadata)
		}
		require.Equal(t, b, a, "HeadObject field %s changed", f.Name)
		compared++
	}
	require.Greater(t, compared, 30, "fields compared")
}

// userMetadata is metadata without the envelope's keys.
func userMetadata(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if !format.IsEnvelopeKey(k) {
			out[k] = v
		}
	}
	return out
}

func envelopeMetadata(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if format.IsEnvelopeKey(k) {
			out[k] = v
		}
	}
	return out
}

// readsAs checks that c decrypts bucket/key to want.
func readsAs(t testing.TB, c objectClient, bucket, key string, want []byte) {
	t.Helper()
	got, err := get(c, bucket, key)
	require.NoError(t, err, "reading %s", key)
	require.True(t, bytes.Equal(want, got), "%s: plaintext differs", key)
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
