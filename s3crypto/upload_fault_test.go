package s3crypto_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// Fault tests of the Uploader and Downloader against versitygw: the faults
// are injected by hookS3, an S3API wrapper around the real client.

// faultVariants are the three formats written, envelopes in metadata.
var faultVariants = []variant{{envelope.FormatV2, false}, {envelope.FormatV3, false}, {envelope.FormatSegmented, false}}

// injected is what the SDK returns once its own retries give up on a 503
// SlowDown: a retryable-looking server error.
func injected(op string) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: op, Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}}},
			Err:      &smithy.GenericAPIError{Code: "SlowDown", Message: "Please reduce your request rate (injected)", Fault: smithy.FaultServer},
		},
		RequestID: "injected",
	}}
}

// isInjected reports whether err wraps an error made by injected.
func isInjected(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "SlowDown" && strings.Contains(ae.ErrorMessage(), "(injected)")
}

// partAttempt is one UploadPart request as the server would have received it.
type partAttempt struct {
	sum  [sha256.Size]byte
	size int
}

// hookS3 is the real client with hooks on the calls the Uploader and the
// Downloader make. It counts the calls, records every UploadPart attempt
// (a hash of its body), and lets a test fail a call (a hook returning an
// error fails it without sending it) or act before one is sent.
type hookS3 struct {
	*s3.Client

	mu       sync.Mutex
	calls    map[string]int
	uploadID string
	creates  []*s3.CreateMultipartUploadInput
	puts     []*s3.PutObjectInput
	attempts map[int32][]partAttempt // by part number, in order
	ranged   int                     // ranged GETs so far
	inflight atomic.Int32            // UploadParts forwarded and not yet answered
	stored   map[int32]bool          // parts the server has answered with success

	// onPart runs before an UploadPart is forwarded (attempt counts
	// from 0); an error fails it unsent.
	onPart     func(ctx context.Context, part int32, attempt int) error
	onComplete func() error
	onAbort    func() error
	onGet      func(n int) error // before the n-th ranged GET (from 1)
}

func newHookS3(c *s3.Client) *hookS3 {
	return &hookS3{Client: c, calls: map[string]int{}, attempts: map[int32][]partAttempt{}, stored: map[int32]bool{}}
}

func (h *hookS3) count(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[op]
}

func (h *hookS3) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.calls {
		n += c
	}
	return n
}

func (h *hookS3) called(op string) {
	h.mu.Lock()
	h.calls[op]++
	h.mu.Unlock()
}

func (h *hookS3) parts() map[int32][]partAttempt {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int32][]partAttempt{}
	for k, v := range h.attempts {
		out[k] = append([]partAttempt(nil), v...)
	}
	return out
}

func (h *hookS3) upload() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.uploadID
}

func (h *hookS3) PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	h.called("PutObject")
	h.mu.Lock()
	h.puts = append(h.puts, in)
	h.mu.Unlock()
	return h.Client.PutObject(ctx, in, optFns...)
}

func (h *hookS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	h.called("HeadObject")
	return h.Client.HeadObject(ctx, in, optFns...)
}

func (h *hookS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	h.called("GetObject")
	if in.Range != nil {
		h.mu.Lock()
		h.ranged++
		n, hook := h.ranged, h.onGet
		h.mu.Unlock()
		if hook != nil {
			if err := hook(n); err != nil {
				return nil, err
			}
		}
	}
	return h.Client.GetObject(ctx, in, optFns...)
}

func (h *hookS3) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	h.called("CreateMultipartUpload")
	h.mu.Lock()
	h.creates = append(h.creates, in)
	h.mu.Unlock()
	out, err := h.Client.CreateMultipartUpload(ctx, in, optFns...)
	if err == nil {
		h.mu.Lock()
		h.uploadID = aws.ToString(out.UploadId)
		h.mu.Unlock()
	}
	return out, err
}

func (h *hookS3) UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	h.called("UploadPart")
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	n := aws.ToInt32(in.PartNumber)
	h.mu.Lock()
	attempt := len(h.attempts[n])
	h.attempts[n] = append(h.attempts[n], partAttempt{sha256.Sum256(b), len(b)})
	hook := h.onPart
	h.mu.Unlock()
	if aws.ToInt64(in.ContentLength) != int64(len(b)) {
		return nil, fmt.Errorf("hookS3: part %d: ContentLength %d, body %d bytes", n, aws.ToInt64(in.ContentLength), len(b))
	}
	if hook != nil {
		if err := hook(ctx, n, attempt); err != nil {
			return nil, err
		}
	}
	req := *in
	req.Body = bytes.NewReader(b)
	h.inflight.Add(1)
	defer h.inflight.Add(-1)
	out, err := h.Client.UploadPart(ctx, &req, optFns...)
	if err == nil {
		h.mu.Lock()
		h.stored[n] = true
		h.mu.Unlock()
	}
	return out, err
}

// settle waits until the server has stored parts 1 to n-1 and no part is
// on its way to it. A fault injected then cannot cancel a part that the
// server is still receiving: such a part may be stored after the upload
// is aborted, recreating it (a server-side race, also on AWS: "you might
// need to abort a multipart upload multiple times"), which these tests
// leave aside (see TestUploadFaults).
func (h *hookS3) settle(n int32) {
	settled := func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for i := int32(1); i < n; i++ {
			if !h.stored[i] {
				return false
			}
		}
		return h.inflight.Load() == 0
	}
	for deadline := time.Now().Add(30 * time.Second); !settled() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}

// hold is an onPart hook: parts after the first n are held in flight for
// a while (so a fault elsewhere happens while they are), then sent; they
// fail, as the SDK does, if ctx is cancelled meanwhile.
func hold(ctx context.Context, part int32, n int32) error {
	if part > n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func (h *hookS3) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	h.called("CompleteMultipartUpload")
	if h.onComplete != nil {
		if err := h.onComplete(); err != nil {
			return nil, err
		}
	}
	return h.Client.CompleteMultipartUpload(ctx, in, optFns...)
}

func (h *hookS3) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	h.called("AbortMultipartUpload")
	if h.onAbort != nil {
		if err := h.onAbort(); err != nil {
			return nil, err
		}
	}
	return h.Client.AbortMultipartUpload(ctx, in, optFns...)
}

// newUploader returns an Uploader of MinPartSize parts, conc in flight.
func newUploader(c *s3crypto.Client, conc int, fns ...func(*s3crypto.UploaderOptions)) *s3crypto.Uploader {
	return s3crypto.NewUploader(c, append([]func(*s3crypto.UploaderOptions){func(o *s3crypto.UploaderOptions) {
		o.PartSize = minPartSize
		o.Concurrency = conc
	}}, fns...)...)
}

// newDownloader returns a Downloader of 1 MiB GETs, conc in flight.
func newDownloader(c *s3crypto.Client, conc int) *s3crypto.Downloader {
	return s3crypto.NewDownloader(c, func(o *s3crypto.DownloaderOptions) {
		o.PartSize = 1 << 20
		o.Concurrency = conc
	})
}

// rawObject returns the stored (encrypted) body and its HEAD.
func rawObject(t testing.TB, raw *s3.Client, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := raw.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	require.NoError(t, err)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return b, out
}

// requireGone checks that no object is stored at key.
func requireGone(t testing.TB, raw *s3.Client, bucket, key string) {
	t.Helper()
	_, err := raw.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	var nf *types.NotFound
	require.True(t, errors.As(err, &nf), "an object is stored at %s (HEAD: %v)", key, err)
}

// requireReadsBack reads key with GetObject and with the Downloader.
func requireReadsBack(t testing.TB, c *s3crypto.Client, bucket, key string, want []byte) {
	t.Helper()
	readsAs(t, c, bucket, key, want)
	var buf bytes.Buffer
	n, err := newDownloader(c, 3).Download(context.Background(), &buf, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), n)
	require.True(t, bytes.Equal(want, buf.Bytes()), "%s: downloaded plaintext differs", key)
}

// TestUploadPartRetried: a part whose UploadPart fails twice (a 503, as the
// SDK reports it after its own retries) is sent a third time, with the
// same bytes each time; the upload succeeds and reads back. Run for a
// middle part and for the last (which carries the V2/V3 tag), in every
// format; the stored object is exactly the parts as sent.
func TestUploadPartRetried(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	kr := masterKeys(t)[0]
	const tail = 12345
	const size = 3*minPartSize + tail // 4 parts
	for _, v := range faultVariants {
		for _, failing := range []int32{2, 4} {
			t.Run(fmt.Sprintf("%v/part%d", v, failing), func(t *testing.T) {
				api := newHookS3(raw)
				api.onPart = func(_ context.Context, part int32, attempt int) error {
					if part == failing && attempt < 2 {
						return injected("UploadPart")
					}
					return nil
				}
				c := newClient(t, api, kr, v.apply)
				key := fmt.Sprintf("retry/%v/%d", v, failing)
				pt := random(size)
				out, err := newUploader(c, 3).Upload(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(pt)})
				require.NoError(t, err)
				require.Equal(t, 4, out.Parts)
				require.Equal(t, int64(size), out.Size)
				require.Equal(t, api.upload(), aws.ToString(out.UploadId))

				parts := api.parts()
				require.Len(t, parts, 4)
				for n, a := range parts {
					if n == failing {
						require.Len(t, a, 3, "part %d: attempts", n)
					} else {
						require.Len(t, a, 1, "part %d: attempts", n)
					}
					for i := 1; i < len(a); i++ {
						require.Equal(t, a[0], a[i], "part %d attempt %d sent different bytes", n, i)
					}
				}
				if v.format != envelope.FormatSegmented {
					require.Equal(t, minPartSize, parts[1][0].size)
					require.Equal(t, tail+format.TagSize, parts[4][0].size, "the last part carries the tag")
				}
				// The stored body is the parts as sent, in order.
				stored, _ := rawObject(t, raw, bucket, key)
				off := 0
				for n := int32(1); n <= 4; n++ {
					a := parts[n][0]
					require.LessOrEqual(t, off+a.size, len(stored))
					require.Equal(t, a.sum, sha256.Sum256(stored[off:off+a.size]), "stored part %d", n)
					off += a.size
				}
				require.Equal(t, len(stored), off)
				require.Equal(t, 1, api.count("CompleteMultipartUpload"))
				require.Zero(t, api.count("AbortMultipartUpload"))

				requireReadsBack(t, c, bucket, key, pt)
				requireNoUploads(t, raw, bucket)
			})
		}
	}
}

// TestUploadFaults: an upload that cannot finish fails and is aborted,
// leaving no multipart upload and no object behind; when the abort fails
// too, the error says the parts remain and names the upload.
//
// Each fault is injected once no part is on its way to the server (see
// hookS3.settle and hold). A part cancelled mid-request can still be
// stored by the server after the abort, which recreates the upload
// (seen with versitygw about once in 40 such uploads; AWS documents the
// same): the Uploader aborts once, so such an upload is left behind. That
// race is reported, not tested here.
func TestUploadFaults(t *testing.T) {
	raw, bucket := realS3(t)
	kr := masterKeys(t)[0]
	const size = 3*minPartSize + 100 // 4 parts

	// upload runs one upload (of size random bytes if body is nil) through
	// api, set up by setup.
	upload := func(t *testing.T, v variant, key string, api *hookS3, setup func(*hookS3), body io.Reader, fns ...func(*s3crypto.UploaderOptions)) (*s3crypto.UploadOutput, error) {
		if setup != nil {
			setup(api)
		}
		c := newClient(t, api, kr, v.apply)
		if body == nil {
			body = bytes.NewReader(random(size))
		}
		out, err := newUploader(c, 2, fns...).Upload(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: body})
		t.Logf("error: %v", err)
		return out, err
	}
	requireAborted := func(t *testing.T, api *hookS3, key string) {
		t.Helper()
		require.NotEmpty(t, api.upload(), "no multipart upload was started")
		// Once; after a cancelled ctx, again until S3 no longer knows the
		// upload (a part cut off in flight could have landed after it).
		aborts := api.count("AbortMultipartUpload")
		require.True(t, aborts >= 1 && aborts <= 4, "%d aborts", aborts)
		requireNoUploadsLeft(t, raw, bucket, api.upload())
		requireGone(t, raw, bucket, key)
	}

	for _, v := range faultVariants {
		// (b) A part that always fails: sent 1 + PartRetries times with
		// the same bytes, then the upload is aborted.
		for _, tc := range []struct {
			retries, attempts int
		}{{0, 1 + defaultPartRetries}, {-1, 1}, {4, 5}} {
			t.Run(fmt.Sprintf("%v/part-always-fails/retries=%d", v, tc.retries), func(t *testing.T) {
				key := fmt.Sprintf("fail/%v/part/%d", v, tc.retries)
				api := newHookS3(raw)
				out, err := upload(t, v, key, api, func(h *hookS3) {
					h.onPart = func(ctx context.Context, part int32, _ int) error {
						if part == 2 {
							h.settle(2)
							return injected("UploadPart")
						}
						return hold(ctx, part, 2)
					}
				}, nil, func(o *s3crypto.UploaderOptions) { o.PartRetries = tc.retries })
				require.Error(t, err)
				require.Nil(t, out)
				require.True(t, isInjected(err), "the part's error is not wrapped: %v", err)
				require.ErrorContains(t, err, "part 2")
				require.ErrorContains(t, err, "upload aborted")
				a := api.parts()[2]
				require.Len(t, a, tc.attempts)
				for i := 1; i < len(a); i++ {
					require.Equal(t, a[0], a[i], "attempt %d sent different bytes", i)
				}
				require.Zero(t, api.count("CompleteMultipartUpload"))
				requireAborted(t, api, key)
			})
		}

		// (c) ctx cancelled from Progress once two parts are stored.
		t.Run(fmt.Sprintf("%v/cancelled", v), func(t *testing.T) {
			const conc, parts = 2, 12
			key := fmt.Sprintf("fail/%v/cancel", v)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var reports atomic.Int32
			api := newHookS3(raw)
			// Parts 3 on wait for the cancel: none is on its way to the
			// server when it comes.
			api.onPart = func(ctx context.Context, part int32, _ int) error { return hold(ctx, part, 2) }
			c := newClient(t, api, kr, v.apply)
			up := newUploader(c, conc, func(o *s3crypto.UploaderOptions) {
				o.Progress = func(done, total int64) {
					if reports.Add(1) == 2 {
						cancel()
					}
				}
			})
			out, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(random(parts * minPartSize))})
			t.Logf("error: %v", err)
			require.ErrorIs(t, err, context.Canceled)
			require.Nil(t, out)
			// Two parts stored, at most conc-1 more waiting, and one
			// that may have been handed to a worker as ctx was cancelled.
			sent := api.count("UploadPart")
			t.Logf("%d of %d parts started, %d progress reports", sent, parts, reports.Load())
			require.Equal(t, int32(2), reports.Load())
			require.LessOrEqual(t, sent, 2+conc, "parts started after the cancel")
			require.Zero(t, api.count("CompleteMultipartUpload"))
			requireAborted(t, api, key) // with a cancelled ctx
		})

		// (d) The body fails: mid-way (parts already sent), and within
		// the first part (nothing sent at all); with an error of its own,
		// and with io.ErrUnexpectedEOF (what net/http's Body returns when
		// the stream is cut short), which must not pass for the end of
		// the body.
		for _, errBody := range []error{errors.New("disk on fire"), io.ErrUnexpectedEOF} {
			for _, at := range []int{minPartSize + 2<<20 + 3, 1 << 20} {
				t.Run(fmt.Sprintf("%v/body-fails-at-%d/%v", v, at, errBody), func(t *testing.T) {
					key := fmt.Sprintf("fail/%v/body/%d/%v", v, at, errBody)
					// The body fails once part 1 is stored: it is not
					// cancelled on its way to the server.
					api := newHookS3(raw)
					body := &failingReader{r: bytes.NewReader(random(size)), left: at, err: errBody, before: func() { api.settle(int32(at/minPartSize) + 1) }}
					out, err := upload(t, v, key, api, nil, body)
					require.ErrorIs(t, err, errBody)
					require.Nil(t, out)
					require.ErrorContains(t, err, "reading the body")
					if at < minPartSize {
						require.Zero(t, api.total(), "requests sent for an upload that failed before its first part was read")
						requireGone(t, raw, bucket, key)
						return
					}
					require.Zero(t, api.count("CompleteMultipartUpload"))
					requireAborted(t, api, key)
				})
			}
		}

		// (e) CompleteMultipartUpload fails: aborted.
		t.Run(fmt.Sprintf("%v/complete-fails", v), func(t *testing.T) {
			key := fmt.Sprintf("fail/%v/complete", v)
			api := newHookS3(raw)
			out, err := upload(t, v, key, api, func(h *hookS3) {
				h.onComplete = func() error { return injected("CompleteMultipartUpload") }
			}, nil)
			require.Nil(t, out)
			require.True(t, isInjected(err), "the Complete error is not wrapped: %v", err)
			require.ErrorContains(t, err, "completing the multipart upload")
			require.ErrorContains(t, err, "upload aborted")
			require.Equal(t, 4, api.count("UploadPart"))
			require.Equal(t, 1, api.count("CompleteMultipartUpload"))
			requireAborted(t, api, key)
		})

		// (f) The abort fails too: the error says the parts remain and
		// names the upload, which is indeed still there.
		for _, failing := range []string{"part", "complete"} {
			t.Run(fmt.Sprintf("%v/abort-fails-after-%s", v, failing), func(t *testing.T) {
				key := fmt.Sprintf("fail/%v/abort/%s", v, failing)
				api := newHookS3(raw)
				out, err := upload(t, v, key, api, func(h *hookS3) {
					if failing == "part" {
						h.onPart = func(ctx context.Context, part int32, _ int) error {
							if part == 3 {
								h.settle(3)
								return injected("UploadPart")
							}
							return hold(ctx, part, 3)
						}
					} else {
						h.onComplete = func() error { return injected("CompleteMultipartUpload") }
					}
					h.onAbort = func() error { return injected("AbortMultipartUpload") }
				}, nil)
				require.Nil(t, out)
				require.Error(t, err)
				id := api.upload()
				require.NotEmpty(t, id)
				require.ErrorContains(t, err, "parts remain")
				require.ErrorContains(t, err, id, "the error does not name the upload")
				var oe *s3crypto.ObjectError
				require.ErrorAs(t, err, &oe)
				require.Equal(t, id, oe.UploadId)
				require.Equal(t, "Upload", oe.Op)
				require.Equal(t, key, oe.Key)
				require.NotContains(t, err.Error(), "upload aborted")
				require.True(t, isInjected(err))
				require.Equal(t, 1, api.count("AbortMultipartUpload"))
				ups, lerr := raw.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
				require.NoError(t, lerr)
				require.Len(t, ups.Uploads, 1)
				require.Equal(t, id, aws.ToString(ups.Uploads[0].UploadId))
				require.Equal(t, key, aws.ToString(ups.Uploads[0].Key))
				requireGone(t, raw, bucket, key)
				// Clean up as the error tells the caller to.
				_, err = raw.AbortMultipartUpload(context.Background(), &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: &id})
				require.NoError(t, err)
				requireNoUploads(t, raw, bucket)
			})
		}
	}
}

// failingReader yields left bytes of r, then (after calling before, if
// set) err.
type failingReader struct {
	r      io.Reader
	left   int
	err    error
	before func()
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		if f.before != nil {
			f.before()
		}
		return 0, f.err
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	return n, err
}

// requirePrefix checks that got is a prefix of want: what a failed download
// wrote must be authenticated plaintext, in order.
func requirePrefix(t testing.TB, want, got []byte) {
	t.Helper()
	require.LessOrEqual(t, len(got), len(want))
	require.True(t, bytes.Equal(want[:len(got)], got), "the %d bytes written are not a prefix of the plaintext", len(got))
}

// TestDownloadFaults: the Downloader fails cleanly when a GET fails, when
// the stored bytes were tampered with, and when the object is replaced
// during the download. A segmented object may have released a prefix of
// its plaintext (whole, authenticated segments) by then; a V2 or V3 object
// nothing at all.
func TestDownloadFaults(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	kr, theirs := masterKeys(t)[0], masterKeys(t)[0]
	const size = 6<<20 + 777
	const segSize = format.DefaultSegmentSize
	for _, v := range faultVariants {
		segmented := v.format == envelope.FormatSegmented
		// store uploads size random bytes to key with a plain client.
		store := func(t *testing.T, key string) []byte {
			pt := random(size)
			_, err := newUploader(newClient(t, raw, kr, v.apply), 2).Upload(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(pt)})
			require.NoError(t, err)
			return pt
		}
		// requireReleased checks what a failed download wrote.
		requireReleased := func(t *testing.T, pt []byte, n int64, got *bytes.Buffer) {
			t.Helper()
			require.Equal(t, int64(got.Len()), n, "bytes written and bytes reported differ")
			if !segmented {
				require.Zero(t, got.Len(), "a V2/V3 object released plaintext before it was authenticated")
				return
			}
			requirePrefix(t, pt, got.Bytes())
			require.Zero(t, got.Len()%segSize, "a partial segment was released")
		}

		t.Run(fmt.Sprintf("%v/GET-fails", v), func(t *testing.T) {
			key := fmt.Sprintf("dl/%v/get-fails", v)
			pt := store(t, key)
			api := newHookS3(raw)
			api.onGet = func(n int) error {
				if n == 4 {
					return injected("GetObject")
				}
				return nil
			}
			var got bytes.Buffer
			n, err := newDownloader(newClient(t, api, kr, v.apply), 2).Download(ctx, &got, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			t.Logf("error: %v; %d bytes written", err, n)
			require.True(t, isInjected(err), "the GET's error is not wrapped: %v", err)
			require.ErrorContains(t, err, key)
			requireReleased(t, pt, n, &got)
			require.Less(t, api.count("GetObject"), 7, "GETs went on after the failure")
		})

		t.Run(fmt.Sprintf("%v/tampered", v), func(t *testing.T) {
			key := fmt.Sprintf("dl/%v/tampered", v)
			pt := store(t, key)
			stored, head := rawObject(t, raw, bucket, key)
			mid := len(stored) / 2
			stored[mid] ^= 0x40
			_, err := raw.PutObject(ctx, &s3.PutObjectInput{
				Bucket: &bucket, Key: &key, Body: bytes.NewReader(stored),
				Metadata: head.Metadata, ContentType: head.ContentType,
			})
			require.NoError(t, err)
			c := newClient(t, raw, kr, v.apply)
			var got bytes.Buffer
			n, err := newDownloader(c, 4).Download(ctx, &got, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			t.Logf("error: %v; %d bytes written", err, n)
			require.ErrorIs(t, err, envelope.ErrAuthentication)
			requireReleased(t, pt, n, &got)
			if segmented {
				// Nothing from the tampered segment or after it.
				bad := mid / (segSize + 16)
				require.LessOrEqual(t, got.Len(), bad*segSize)
				require.Positive(t, got.Len(), "the segments before the tampered one were not released")
			}
			_, err = get(c, bucket, key)
			require.ErrorIs(t, err, envelope.ErrAuthentication, "GetObject of the tampered object")
		})

		// The object is replaced by another writer between the
		// Downloader's GETs (before the n-th): the next GET, guarded by
		// the ETag seen by the HEAD, fails.
		for _, before := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/replaced-before-GET-%d", v, before), func(t *testing.T) {
				key := fmt.Sprintf("dl/%v/replaced/%d", v, before)
				pt := store(t, key)
				mine := random(size)
				writer := newClient(t, raw, theirs, v.apply)
				api := newHookS3(raw)
				var replaced atomic.Bool
				var overwrite error
				api.onGet = func(n int) error {
					if n == before {
						_, overwrite = writer.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(mine)})
						replaced.Store(true)
					}
					return nil
				}
				var got bytes.Buffer
				// One GET at a time: the first is complete before the
				// object is replaced.
				n, err := newDownloader(newClient(t, api, kr, v.apply), 1).Download(ctx, &got, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
				t.Logf("error: %v; %d bytes written", err, n)
				require.True(t, replaced.Load())
				require.NoError(t, overwrite)
				require.ErrorIs(t, err, s3crypto.ErrConcurrentModification)
				requireReleased(t, pt, n, &got)
				require.Equal(t, before, api.count("GetObject"), "GETs after the one refused")
				readsAs(t, newClient(t, raw, theirs, v.apply), bucket, key, mine)
			})
		}
	}
}

// TestDownloadCancel: cancelling ctx during a Download (as the third GET
// starts) returns promptly with context.Canceled, and leaves no goroutine
// behind.
func TestDownloadCancel(t *testing.T) {
	raw, bucket := realS3(t)
	kr := masterKeys(t)[0]
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	base := s3At(t, "", withTransport(tr))
	const size = 24 << 20
	for _, v := range faultVariants {
		t.Run(v.String(), func(t *testing.T) {
			key := "cancel/" + v.String()
			pt := random(size)
			_, err := newUploader(newClient(t, raw, kr, v.apply), 2).Upload(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(pt)})
			require.NoError(t, err)

			api := newHookS3(base)
			c := newClient(t, api, kr, v.apply)
			// A complete download first: it works, and warms everything
			// that is started once per process.
			requireReadsBack(t, c, bucket, key, pt)
			tr.CloseIdleConnections()
			time.Sleep(100 * time.Millisecond)
			before := runtime.NumGoroutine()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cancelled atomic.Int64
			api.mu.Lock()
			api.ranged = 0
			api.onGet = func(n int) error {
				if n == 3 {
					cancelled.Store(time.Now().UnixNano())
					cancel()
				}
				return nil
			}
			api.mu.Unlock()
			var got bytes.Buffer
			n, err := newDownloader(c, 4).Download(ctx, &got, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			returned := time.Now()
			t.Logf("error: %v; %d bytes written", err, n)
			require.ErrorIs(t, err, context.Canceled)
			require.NotZero(t, cancelled.Load())
			took := returned.Sub(time.Unix(0, cancelled.Load()))
			t.Logf("returned %v after the cancel", took.Round(time.Microsecond))
			require.Less(t, took, 2*time.Second)
			require.Equal(t, int64(got.Len()), n)
			if v.format == envelope.FormatSegmented {
				requirePrefix(t, pt, got.Bytes())
			} else {
				require.Zero(t, n)
			}

			tr.CloseIdleConnections()
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				tr.CloseIdleConnections()
			}
			if after := runtime.NumGoroutine(); after > before {
				var dump strings.Builder
				pprof.Lookup("goroutine").WriteTo(&dump, 1)
				t.Fatalf("%d goroutines before the download, %d after:\n%s", before, after, dump.String())
			}
		})
	}
}

// TestUploadAttributes: the PutObject attributes reach the stored object,
// for a one-part (PutObject) and a multipart upload in every format, and
// the object still decrypts; user metadata that collides with an
// envelope's keys is refused before any request is sent.
func TestUploadAttributes(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	kr := masterKeys(t)[0]
	// versitygw's posix backend may not keep a storage class: the
	// encrypted object must carry whatever an unencrypted one does.
	_, err := raw.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("attr/probe"), Body: strings.NewReader("x"), StorageClass: types.StorageClassStandardIa})
	require.NoError(t, err)
	probe, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("attr/probe")})
	require.NoError(t, err)
	t.Logf("an unencrypted object PUT with STANDARD_IA is stored as %q", probe.StorageClass)
	for _, v := range append(faultVariants, variant{envelope.FormatV3, true}) {
		for _, size := range []int{1000, 2*minPartSize + 1} {
			t.Run(fmt.Sprintf("%v/%d", v, size), func(t *testing.T) {
				key := fmt.Sprintf("attr/%v/%d", v, size)
				api := newHookS3(raw)
				c := newClient(t, api, kr, v.apply)
				pt := random(size)
				out, err := newUploader(c, 2).Upload(ctx, &s3.PutObjectInput{
					Bucket: &bucket, Key: &key, Body: bytes.NewReader(pt),
					ContentType:       aws.String("application/x-test"),
					CacheControl:      aws.String("max-age=60"),
					Metadata:          map[string]string{"owner": "alice", "project": "envelope"},
					Tagging:           aws.String("team=crypto&env=test"),
					StorageClass:      types.StorageClassStandardIa,
					ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
				})
				require.NoError(t, err)
				multipart := size > minPartSize
				require.Equal(t, multipart, out.UploadId != nil)
				// The request carried every attribute.
				var sent struct {
					class    types.StorageClass
					tagging  *string
					checksum types.ChecksumAlgorithm
				}
				if multipart {
					require.Equal(t, 3, api.count("UploadPart"))
					require.Len(t, api.creates, 1)
					sent.class, sent.tagging, sent.checksum = api.creates[0].StorageClass, api.creates[0].Tagging, api.creates[0].ChecksumAlgorithm
				} else {
					require.Zero(t, api.count("CreateMultipartUpload"))
					require.NotEmpty(t, api.puts)
					sent.class, sent.tagging, sent.checksum = api.puts[0].StorageClass, api.puts[0].Tagging, api.puts[0].ChecksumAlgorithm
				}
				require.Equal(t, types.StorageClassStandardIa, sent.class)
				require.Equal(t, "team=crypto&env=test", aws.ToString(sent.tagging))
				require.Equal(t, types.ChecksumAlgorithmCrc32, sent.checksum)

				s := snap(t, raw, bucket, key)
				require.Equal(t, "application/x-test", aws.ToString(s.head.ContentType))
				require.Equal(t, "max-age=60", aws.ToString(s.head.CacheControl))
				require.Equal(t, map[string]string{"owner": "alice", "project": "envelope"}, userMetadata(s.head.Metadata))
				// The wrapped key is in the metadata, or in the instruction file.
				_, inMeta := s.head.Metadata["x-amz-key-v2"]
				if v.format != envelope.FormatV2 {
					_, inMeta = s.head.Metadata["x-amz-3"]
				}
				if v.format == envelope.FormatSegmented {
					inMeta = len(envelopeMetadata(s.head.Metadata)) > 0
				}
				require.Equal(t, !v.instruction, inMeta, "wrapped key in metadata: %v", s.head.Metadata)
				require.Equal(t, v.instruction, len(s.instr) > 0, "instruction file")
				require.Equal(t, map[string]string{"team": "crypto", "env": "test"}, tagMap(s.tags))
				require.Equal(t, probe.StorageClass, s.head.StorageClass)
				require.NotEmpty(t, aws.ToString(s.head.ChecksumCRC32), "no CRC32 of the ciphertext stored")
				t.Logf("stored CRC32 %s (%s)", aws.ToString(s.head.ChecksumCRC32), s.head.ChecksumType)
				// It is the ciphertext's: of the whole body, or (multipart)
				// the CRC32 of the parts' CRC32s.
				stored, _ := rawObject(t, raw, bucket, key)
				want := crc32.ChecksumIEEE(stored)
				suffix := ""
				if multipart {
					var crcs []byte
					off := 0
					for n := int32(1); n <= 3; n++ {
						a := api.parts()[n]
						require.Len(t, a, 1)
						crcs = binary.BigEndian.AppendUint32(crcs, crc32.ChecksumIEEE(stored[off:off+a[0].size]))
						off += a[0].size
					}
					require.Equal(t, len(stored), off)
					want, suffix = crc32.ChecksumIEEE(crcs), "-3"
				}
				require.Equal(t, base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, want))+suffix, aws.ToString(s.head.ChecksumCRC32))

				readsAs(t, c, bucket, key, pt)
				h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				require.Equal(t, int64(size), aws.ToInt64(h.ContentLength))
				requireNoUploads(t, raw, bucket)
			})
		}
	}

	for _, reserved := range []string{"x-amz-key-v2", "X-Amz-Cek-Alg", "x-amz-c", format.InstructionMarker} {
		for _, size := range []int{10, 2*minPartSize + 1} {
			for _, v := range faultVariants {
				t.Run(fmt.Sprintf("reserved/%s/%v/%d", reserved, v, size), func(t *testing.T) {
					key := fmt.Sprintf("attr/reserved/%s/%v/%d", reserved, v, size)
					api := newHookS3(raw)
					_, err := newUploader(newClient(t, api, kr, v.apply), 2).Upload(ctx, &s3.PutObjectInput{
						Bucket: &bucket, Key: &key, Body: bytes.NewReader(random(size)),
						Metadata: map[string]string{"owner": "alice", reserved: "mine"},
					})
					require.ErrorIs(t, err, envelope.ErrMalformed)
					require.ErrorContains(t, err, "reserved")
					require.Zero(t, api.total(), "requests sent: %v", api.calls)
					requireGone(t, raw, bucket, key)
				})
			}
		}
	}

	// A precomputed checksum describes the plaintext: refused, nothing sent.
	api := newHookS3(raw)
	_, err = newUploader(newClient(t, api, kr), 2).Upload(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: aws.String("attr/md5"), Body: bytes.NewReader(random(2*minPartSize + 1)),
		ChecksumCRC32: aws.String("AAAAAA=="),
	})
	require.ErrorIs(t, err, s3crypto.ErrPlaintextChecksum)
	require.Zero(t, api.total())
}

// slowWriter is a consumer slower than the GETs.
type slowWriter struct{ d time.Duration }

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(s.d)
	return len(p), nil
}

// TestDownloadSlowWriter: with a consumer slower than the GETs, the
// fetchers wait for buffers that only the in-order writer frees. A
// fetcher that took a part before a buffer could find every buffer held
// by later parts, and the download hung (fixed in download.go: a buffer
// first, then a part). Many small parts, few buffers, many rounds: the
// hang took one or two rounds to show.
func TestDownloadSlowWriter(t *testing.T) {
	api := newMemS3()
	c := newClient(t, api, masterKeys(t)[0], func(o *s3crypto.Options) { o.Format = envelope.FormatSegmented })
	pt := random(2 << 20)
	put(t, c, "b", "k", bytes.NewReader(pt))
	want := sha256.Sum256(pt)
	for _, conc := range []int{2, 3} {
		dl := s3crypto.NewDownloader(c, func(o *s3crypto.DownloaderOptions) {
			o.PartSize = 16 << 10
			o.Concurrency = conc
		})
		for round := range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			h := sha256.New()
			n, err := dl.Download(ctx, io.MultiWriter(slowWriter{20 * time.Microsecond}, h), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
			cancel()
			require.NoError(t, err, "concurrency %d, round %d: the download hung", conc, round)
			require.Equal(t, int64(len(pt)), n)
			require.Equal(t, want[:], h.Sum(nil))
		}
	}
}

// requireNoUploadsLeft checks that the bucket holds no multipart upload,
// naming any it finds (and whether it is the one just aborted, id).
func requireNoUploadsLeft(t testing.TB, raw *s3.Client, bucket, id string) {
	t.Helper()
	ups, err := raw.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	require.NoError(t, err)
	var left []string
	for _, u := range ups.Uploads {
		left = append(left, fmt.Sprintf("%s (upload %s, the aborted one: %v, initiated %v)", aws.ToString(u.Key), aws.ToString(u.UploadId), aws.ToString(u.UploadId) == id, aws.ToTime(u.Initiated)))
	}
	require.Empty(t, left, "multipart uploads left behind")
}
