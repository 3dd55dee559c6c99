package s3crypto_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// The PutObject and GetObject benchmarks measure the path users take: a
// real *s3.Client whose HTTP transport is an in-process S3 that reads a
// request body as a network transport does (32 KiB reads) and serves a
// response body through Read only. No network, no payload signing (https
// endpoint), no checksums: what is left is the SDK, the transport's copy,
// and this library. Each benchmark also times its reference — one
// crypto/cipher AES-256-GCM Seal or Open over the same bytes — between its
// iterations, and reports the ratio (x-Seal, x-Open: 1.0 is as fast as
// the reference). They measure; nothing asserts a speed.
//
// S3ENVELOPE_BENCH_SIZE sets the object size in MiB (default 256).

func benchSize(b *testing.B) int {
	mib := 256
	if s := os.Getenv("S3ENVELOPE_BENCH_SIZE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("S3ENVELOPE_BENCH_SIZE=%q: want a size in MiB", s)
		}
		mib = n
	}
	return mib << 20
}

var (
	benchPlainOnce sync.Once
	benchPlainData []byte
)

func benchPlaintext(b *testing.B) []byte {
	n := benchSize(b)
	benchPlainOnce.Do(func() {
		benchPlainData = make([]byte, n)
		for i := range benchPlainData {
			benchPlainData[i] = byte(i*7 + i>>13)
		}
	})
	if len(benchPlainData) != n {
		b.Fatal("benchmark size changed within one run")
	}
	return benchPlainData
}

// benchObject is what benchS3 stores of a PUT it keeps.
type benchObject struct {
	header http.Header
	body   []byte
}

// benchS3 is an http.RoundTripper serving PutObject and GetObject of one
// object. PUT bodies are read in 32 KiB pieces (net/http's copy buffer) and
// dropped unless keep is set.
type benchS3 struct {
	keep bool
	obj  benchObject
	buf  []byte
}

func (s *benchS3) RoundTrip(req *http.Request) (*http.Response, error) {
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Request: req, Body: http.NoBody,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	switch req.Method {
	case http.MethodPut:
		if s.buf == nil {
			s.buf = make([]byte, 32<<10)
		}
		var sink io.Writer = io.Discard
		var kept bytes.Buffer
		if s.keep {
			sink = &kept
		}
		n, err := io.CopyBuffer(onlyWrite{sink}, onlyRead{req.Body}, s.buf)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if req.ContentLength >= 0 && n != req.ContentLength {
			return nil, fmt.Errorf("benchS3: body of %d bytes, Content-Length %d", n, req.ContentLength)
		}
		if s.keep {
			s.obj = benchObject{header: req.Header.Clone(), body: kept.Bytes()}
		}
		resp.Header.Set("ETag", `"bench"`)
	case http.MethodGet:
		for k, v := range s.obj.header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") {
				resp.Header[k] = v
			}
		}
		resp.Header.Set("ETag", `"bench"`)
		resp.Header.Set("Content-Length", strconv.Itoa(len(s.obj.body)))
		resp.ContentLength = int64(len(s.obj.body))
		resp.Body = io.NopCloser(onlyRead{bytes.NewReader(s.obj.body)})
	default:
		return nil, fmt.Errorf("benchS3: %s not served", req.Method)
	}
	return resp, nil
}

// onlyRead and onlyWrite hide WriteTo and ReadFrom, as a network body does.
type onlyRead struct{ io.Reader }
type onlyWrite struct{ io.Writer }

func benchS3Client(s *benchS3) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("https://bench.local"),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "BENCH", SecretAccessKey: "bench"}, nil
		}),
		HTTPClient:                 &http.Client{Transport: s},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	})
}

type benchFormat struct {
	name string
	cfg  func(*s3crypto.Options)
}

var benchFormats = []benchFormat{
	{"V3", func(*s3crypto.Options) {}},
	{"V2", func(o *s3crypto.Options) { o.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt }},
	{"segmented", func(o *s3crypto.Options) { o.Format = envelope.FormatSegmented }},
}

// benchGCM is the reference: one AES-256-GCM AEAD from crypto/cipher.
func benchGCM(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// settle collects the garbage of the setup before a timed loop: a
// collection it owes would otherwise run into the loop, and its marking
// slows what is measured by up to a second.
func settle() { runtime.GC() }

// refTimer times the reference once between iterations of the benchmark,
// with the benchmark's timer stopped, so that both see the same machine
// (on a shared VM the speed of a core drifts within a run), and reports
// the benchmark's speed as a multiple of the reference's.
type refTimer struct {
	b *testing.B
	f func()
	d time.Duration
	n int
}

func newRefTimer(b *testing.B, f func()) *refTimer {
	f() // warm
	settle()
	return &refTimer{b: b, f: f}
}

func (r *refTimer) run() {
	r.b.StopTimer()
	settle() // the garbage of the iteration is not the reference's to collect
	start := time.Now()
	r.f()
	r.d += time.Since(start)
	r.n++
	r.b.StartTimer()
}

func (r *refTimer) report(name string) {
	r.b.ReportMetric(float64(r.d)/float64(r.b.Elapsed()), name)
	r.b.ReportMetric(float64(r.n)*float64(benchSize(r.b))/r.d.Seconds()/1e6, "ref-MB/s")
}

// sealRef is one crypto/cipher Seal of plain; openRef one Open.
func sealRef(b *testing.B, plain []byte) *refTimer {
	g := benchGCM(b)
	nonce := make([]byte, g.NonceSize())
	dst := make([]byte, 0, len(plain)+g.Overhead())
	return newRefTimer(b, func() { dst = g.Seal(dst[:0], nonce, plain, nil) })
}

func openRef(b *testing.B, plain []byte) *refTimer {
	g := benchGCM(b)
	nonce := make([]byte, g.NonceSize())
	ct := g.Seal(nil, nonce, plain, nil)
	dst := make([]byte, 0, len(plain))
	return newRefTimer(b, func() {
		var err error
		if dst, err = g.Open(dst[:0], nonce, ct, nil); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkPutObject: s3crypto.Client.PutObject of the whole plaintext, as
// a seekable body (bytes.Reader) and as one of unknown length (io.Reader
// only), against one Seal of the same bytes.
func BenchmarkPutObject(b *testing.B) {
	plain := benchPlaintext(b)
	ctx := context.Background()
	kr := benchKey(b)
	b.Run("stdlib-Seal", func(b *testing.B) {
		// The reference alone, back to back: a core's best, which the
		// interleaved reference of the others does not always reach.
		ref := sealRef(b, plain)
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			ref.f()
		}
	})
	b.Run("SDK-plaintext", func(b *testing.B) {
		api := benchS3Client(&benchS3{})
		b.SetBytes(int64(len(plain)))
		ref := sealRef(b, plain)
		for b.Loop() {
			if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(plain)}); err != nil {
				b.Fatal(err)
			}
			ref.run()
		}
		ref.report("x-Seal")
	})
	for _, f := range benchFormats {
		for _, seekable := range []bool{true, false} {
			name := f.name + "/seekable"
			if !seekable {
				name = f.name + "/unknown-length"
			}
			b.Run(name, func(b *testing.B) {
				c := newClient(b, benchS3Client(&benchS3{}), kr, f.cfg)
				b.SetBytes(int64(len(plain)))
				ref := sealRef(b, plain)
				for b.Loop() {
					var body io.Reader = bytes.NewReader(plain)
					if !seekable {
						body = onlyRead{body}
					}
					if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: body}); err != nil {
						b.Fatal(err)
					}
					ref.run()
				}
				ref.report("x-Seal")
			})
		}
	}
}

// BenchmarkGetObject: s3crypto.Client.GetObject of the whole object, read
// to the end with io.Copy into io.Discard, against one Open of the same
// bytes. Run with -cpu 1,2 to see what a second core brings.
func BenchmarkGetObject(b *testing.B) {
	plain := benchPlaintext(b)
	kr := benchKey(b)
	b.Run("stdlib-Open", func(b *testing.B) {
		ref := openRef(b, plain)
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			ref.f()
		}
	})
	for _, f := range benchFormats {
		b.Run(f.name, func(b *testing.B) {
			store := benchStored(b, plain, kr, f.cfg)
			c := newClient(b, benchS3Client(store), kr, f.cfg, allowV2)
			b.SetBytes(int64(len(plain)))
			ref := openRef(b, plain)
			for b.Loop() {
				benchGet(b, c, len(plain))
				ref.run()
			}
			ref.report("x-Open")
		})
	}
}

// benchStored is a benchS3 holding plain as one object, PUT by a client
// with cfg.
func benchStored(b *testing.B, plain []byte, kr keyring.Keyring, cfg func(*s3crypto.Options)) *benchS3 {
	store := &benchS3{keep: true}
	w := newClient(b, benchS3Client(store), kr, cfg)
	if _, err := w.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(plain)}); err != nil {
		b.Fatal(err)
	}
	store.keep = false
	return store
}

// allowV2 lets a client that writes V3 read the V2 object too.
func allowV2(o *s3crypto.Options) {
	if o.CommitmentPolicy == envelope.RequireEncryptRequireDecrypt {
		o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
	}
}

// benchGet reads the benchmark's object to its end with GetObject and
// io.Copy, as a user would, and checks its length.
func benchGet(b *testing.B, c *s3crypto.Client, size int) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	if err != nil {
		b.Fatal(err)
	}
	got, err := io.Copy(io.Discard, out.Body)
	out.Body.Close()
	if err != nil || got != int64(size) {
		b.Fatalf("read %d of %d bytes: %v", got, size, err)
	}
}

func benchKey(b *testing.B) keyring.Keyring {
	k, err := keyring.NewAES(bytes.Repeat([]byte{1}, 32), map[string]string{"kid": "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return k
}
