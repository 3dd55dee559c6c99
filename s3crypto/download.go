package s3crypto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// DownloaderOptions configure a Downloader.
type DownloaderOptions struct {
	// PartSize is the stored bytes fetched by one ranged GET; zero means 8 MiB.
	PartSize int64
	// Concurrency is the number of ranged GETs in flight; zero means
	// 5. A download holds about Concurrency × PartSize of
	// ciphertext, plus the spool of a V2/V3 object.
	Concurrency int
	// Progress, if set, is called as plaintext is written, with the bytes
	// written so far and the total. Calls never overlap.
	Progress func(done, total int64)
}

// Downloader reads large objects with parallel ranged GETs and decrypts
// them as Client.GetObject does: a segmented object's segments are
// released in order as each is authenticated (and opened on
// Config.SegmentWorkers cores); a V2 or V3 object is spooled, verified,
// and only then released. Every GET names the ETag the object had when the
// download started, so a replaced object fails instead of mixing versions.
// It is safe for concurrent use.
type Downloader struct {
	c    transferClient
	api  fullAPI
	opts DownloaderOptions
}

// NewDownloader returns a Downloader that reads objects as c does: c is a
// *Client (decrypted here) or an *SSECClient (S3 decrypts under the
// object's managed key).
func NewDownloader(c transferClient, optFns ...func(*DownloaderOptions)) *Downloader {
	d := &Downloader{c: c, api: c.s3api()}
	for _, fn := range optFns {
		fn(&d.opts)
	}
	return d
}

// Download writes the plaintext of the object in names to w and returns
// the bytes written. in.Range and in.PartNumber must be nil. On an error,
// what was written is authenticated but incomplete (nothing at all for V2
// and V3). Cancelling ctx stops the download.
func (d *Downloader) Download(ctx context.Context, w io.Writer, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (_ int64, err error) {
	if in == nil {
		return 0, &ObjectError{Op: "Download", Err: errNilInput}
	}
	defer wrapObjectError(&err, "Download", in.Bucket, in.Key)
	if in.Range != nil || in.PartNumber != nil {
		return 0, errors.New("in.Range and in.PartNumber must be nil")
	}
	return d.c.download(ctx, d, w, in, optFns)
}

// download decrypts what the Downloader fetches: a segmented object's
// segments as they arrive, a V2/V3 object once its spool verifies.
func (c *Client) download(ctx context.Context, d *Downloader, w io.Writer, in *s3.GetObjectInput, optFns []func(*s3.Options)) (int64, error) {
	head, err := c.api.HeadObject(ctx, headInput(in), optFns...)
	if err != nil {
		return 0, err
	}
	env, err := c.loadEnvelope(ctx, in.Bucket, in.Key, head.Metadata, in.ExpectedBucketOwner, in.RequestPayer, optFns)
	if err != nil {
		return 0, err
	}
	size := aws.ToInt64(head.ContentLength)
	if err := boundLength(env, head.ContentLength); err != nil {
		return 0, err
	}
	total, err := env.PlaintextSize(size)
	if err != nil && !errors.Is(err, envelope.ErrUnsupported) {
		return 0, err
	}
	if err != nil {
		total = -1 // AES/CBC: known once decrypted
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := *in
	if req.IfMatch == nil {
		req.IfMatch = head.ETag
	}
	req.ChecksumMode = ""
	pr, pw := io.Pipe()
	var fetching sync.WaitGroup
	fetching.Go(func() {
		pw.CloseWithError(d.fetch(ctx, pw, &req, size, rangedOptFns(optFns)))
	})
	defer func() {
		cancel()
		pr.CloseWithError(context.Canceled) // unblocks the fetcher
		fetching.Wait()
	}()

	pt, err := format.Open(ctx, env, c.provider, c.cfg(), pr)
	if err != nil {
		return 0, err
	}
	defer pt.Close()
	dst := w
	if d.opts.Progress != nil {
		dst = &progressWriter{w: w, total: total, fn: d.opts.Progress}
	}
	n, err := io.Copy(dst, pt)
	if err != nil {
		return n, err
	}
	return n, nil
}

// download of an SSE-C object: its key is resolved once (with the HEAD),
// then the ranged GETs carry it and S3 decrypts.
func (c *SSECClient) download(ctx context.Context, d *Downloader, w io.Writer, in *s3.GetObjectInput, optFns []func(*s3.Options)) (int64, error) {
	head, key, err := c.headSSEC(ctx, headInput(in), optFns)
	if err != nil {
		return 0, err
	}
	size := aws.ToInt64(head.ContentLength)
	req := *in
	if req.IfMatch == nil {
		req.IfMatch = head.ETag
	}
	req.SSECustomerAlgorithm, req.SSECustomerKey, req.SSECustomerKeyMD5 = key.alg, key.key, key.md5
	dst := &progressWriter{w: w, total: size, fn: d.opts.Progress}
	if err := d.fetch(ctx, dst, &req, size, optFns); err != nil {
		return dst.done, err
	}
	return dst.done, nil
}

// fetch writes the object's stored bytes [0, size) to w in order, fetching
// them with ranged GETs, Concurrency at once.
func (d *Downloader) fetch(ctx context.Context, w io.Writer, in *s3.GetObjectInput, size int64, optFns []func(*s3.Options)) error {
	partSize := d.opts.PartSize
	if partSize <= 0 {
		partSize = defaultPartSize
	}
	concurrency := d.opts.Concurrency
	if concurrency <= 0 {
		concurrency = defaultConcurrency
	}
	parts := int((size + partSize - 1) / partSize)
	if parts == 0 {
		return nil // an empty body: envelope.Open judges it
	}
	type result struct {
		buf []byte
		err error
	}
	// A ring, not one slot per part: the parts fetched and not yet written
	// hold the concurrency buffers, so they are fewer than concurrency and
	// consecutive, and never share a slot. Memory does not grow with the
	// object.
	results := make([]chan result, concurrency)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, concurrency)
	for range concurrency {
		free <- nil
	}
	next := make(chan int)
	var fetchers sync.WaitGroup
	for range concurrency {
		fetchers.Go(func() {
			for {
				// A buffer first, then an index: so the lowest part not
				// yet written always has its buffer (taken the other way
				// round, later parts could hold every buffer while it
				// waits, and the download would hang).
				var buf []byte
				select {
				case buf = <-free:
				case <-ctx.Done():
					return
				}
				i, ok := <-next
				if !ok {
					return
				}
				start := int64(i) * partSize
				n := min(partSize, size-start)
				if int64(cap(buf)) < n {
					buf = make([]byte, partSize)
				}
				buf = buf[:n]
				err := d.get(ctx, in, buf, start, optFns)
				results[i%concurrency] <- result{buf, err}
			}
		})
	}
	go func() {
		defer close(next)
		for i := range parts {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer fetchers.Wait()
	defer cancel()
	for i := range parts {
		var r result
		select {
		case r = <-results[i%concurrency]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if _, err := w.Write(r.buf); err != nil {
			return err
		}
		free <- r.buf
	}
	return nil
}

// get fills buf with the stored bytes from start.
func (d *Downloader) get(ctx context.Context, in *s3.GetObjectInput, buf []byte, start int64, optFns []func(*s3.Options)) error {
	req := *in
	req.Range = aws.String(fmt.Sprintf("bytes=%d-%d", start, start+int64(len(buf))-1))
	out, err := d.api.GetObject(ctx, &req, optFns...)
	if err != nil {
		return s3Error("ranged GET", err)
	}
	defer out.Body.Close()
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return fmt.Errorf("ranged GET: %w", err)
	}
	return nil
}

// progressWriter reports the bytes written through it.
type progressWriter struct {
	w     io.Writer
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
	return n, err
}
