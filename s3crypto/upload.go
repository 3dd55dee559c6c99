package s3crypto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// Multipart limits and defaults.
const (
	// minPartSize is S3's smallest part (all but the last).
	minPartSize = 5 << 20
	// maxUploadParts is S3's largest number of parts.
	maxUploadParts = 10000
	// defaultPartSize is the plaintext bytes per part unless set.
	defaultPartSize = 8 << 20
	// defaultConcurrency is the number of parts in flight unless set.
	defaultConcurrency = 5
	// defaultPartRetries is how many times a failed part is sent again.
	defaultPartRetries = 2
)

// UploaderOptions configure an Uploader.
type UploaderOptions struct {
	// PartSize is the plaintext bytes per part; zero means
	// 8 MiB. It is raised to 5 MiB (S3's smallest part), rounded up to what
	// the format needs (16 bytes, or the segment size), and, for a body of
	// known length, grown so that the object fits in S3's 10,000 parts.
	PartSize int64
	// Concurrency is the number of parts sealed and sent at once; zero
	// means 5. An upload holds about Concurrency+1 parts in
	// memory.
	Concurrency int
	// PartRetries is how many times a failed part is sent again, with the
	// same ciphertext, before the upload is aborted (on top of the SDK's own
	// retries); zero means 2, negative none.
	PartRetries int
	// Progress, if set, is called after each part is stored, with the
	// plaintext bytes stored so far and the total (-1 when the body's length
	// is unknown). Calls never overlap.
	Progress func(done, total int64)
}

// Uploader stores large objects encrypted, in parts sent concurrently, in
// the Client's format: for V2 and V3 one GCM stream across the parts (each
// part sealed from its offset, the tag appended to the last), exactly what
// AWS's clients read; for the segmented format whole segments per part.
// Memory stays about (Concurrency+1) × PartSize whatever the object's size.
// It is safe for concurrent use.
type Uploader struct {
	c    transferClient
	api  fullAPI
	opts UploaderOptions
}

// NewUploader returns an Uploader that stores objects as c does: c is a
// *Client (sealed here, each part in place) or an *SSECClient (S3
// encrypts under the object's managed key).
func NewUploader(c transferClient, optFns ...func(*UploaderOptions)) *Uploader {
	u := &Uploader{c: c, api: c.s3api()}
	for _, fn := range optFns {
		fn(&u.opts)
	}
	return u
}

// UploadOutput describes a stored object.
type UploadOutput struct {
	// ETag and VersionId are S3's, of the stored (encrypted) object.
	ETag, VersionId *string
	// UploadId is the multipart upload's, or nil when the object was small
	// enough for one PutObject.
	UploadId *string
	// Parts is the number of parts (1 for a PutObject).
	Parts int
	// Size is the plaintext's length.
	Size int64
}

// Upload encrypts in.Body under a fresh data key and stores it, as one
// PutObject when it fits in one part and as a multipart upload otherwise.
// The body is read once, in order; its length may be unknown. in's
// attributes (metadata, content type, tags, storage class, server-side
// encryption, object lock, …) go to the object; ContentMD5 and Checksum*
// values are refused (ErrPlaintextChecksum), ChecksumAlgorithm checksums
// each part's ciphertext (CRC32 when unset).
//
// A part that fails is sent again with the same ciphertext; an upload that
// fails or whose ctx is cancelled is aborted, so no parts are left behind
// (if the abort itself fails, the error says so and names the upload). The
// envelope is in the object's metadata from the start, so it exists only
// with the complete object; an instruction file is written after it.
//
// With an SSECClient, the parts are sent as they are and S3
// encrypts them: the data key is recorded in the companion before the
// upload starts (as PutObject does) and sent with the create, every part
// and the complete; a failed upload is aborted and the companion put back.
func (u *Uploader) Upload(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (_ *UploadOutput, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "Upload", Err: errNilInput}
	}
	var up *upload
	defer func() {
		wrapObjectError(&err, "Upload", in.Bucket, in.Key)
		if oe, ok := err.(*ObjectError); ok && up != nil && up.uploadID != nil {
			oe.UploadId = *up.uploadID
		}
	}()
	if err := checkPlaintextChecksums(in); err != nil {
		return nil, err
	}
	if in.WriteOffsetBytes != nil {
		return nil, errors.New("appending (WriteOffsetBytes) cannot extend an encrypted object")
	}
	if in.ChecksumAlgorithm == "" {
		// The SDK's default (RequestChecksumCalculation WhenSupported, what
		// config.LoadDefaultConfig gives) adds a CRC32 to every part, and
		// S3 refuses to complete checksummed parts of an upload created
		// without an algorithm (InvalidPart). Naming CRC32, as the SDK's
		// own transfer manager does, works whatever the client's setting.
		withAlg := *in
		withAlg.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
		in = &withAlg
	}
	size, body, err := bodyLength(in.Body, in.ContentLength)
	if err != nil {
		return nil, err
	}
	partSize, bufSize, err := u.c.planUpload(u, in, size)
	if err != nil {
		return nil, err
	}
	concurrency := u.opts.Concurrency
	if concurrency <= 0 {
		concurrency = defaultConcurrency
	}
	up = &upload{
		u: u, in: in, optFns: optFns, src: bodyReader{body},
		size: size, partSize: partSize, concurrency: concurrency,
		bufSize: int(bufSize) + format.TagSize,
	}
	return up.run(ctx)
}

// bodyLength returns the plaintext length of body (-1 when unknown) and the
// reader to take exactly that many bytes from.
func bodyLength(body io.Reader, contentLength *int64) (int64, io.Reader, error) {
	if body == nil {
		return 0, bytes.NewReader(nil), nil
	}
	_, _, size, seekable, err := seekableLength(body)
	if err != nil {
		return 0, nil, err
	}
	if !seekable {
		size = -1
	}
	if contentLength != nil {
		if *contentLength < 0 || (size >= 0 && *contentLength > size) {
			return 0, nil, fmt.Errorf("ContentLength %d but the body holds %d bytes", *contentLength, size)
		}
		size = *contentLength
		body = withContentLength(body, size)
	}
	return size, body, nil
}

// bodyReader keeps the body's own io.ErrUnexpectedEOF (a stream cut short,
// as net/http reports one) from passing for io.ReadFull's, which readPart
// takes for the end of the body: the object would be stored truncated.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.ErrUnexpectedEOF {
		err = fmt.Errorf("the body was cut short: %w", err)
	}
	return n, err
}

// partSize is the plaintext bytes per part for an object of size bytes
// (-1: unknown) whose parts must be multiples of align.
func (u *Uploader) partSize(align, size int64) int64 {
	ps := u.opts.PartSize
	if ps <= 0 {
		ps = defaultPartSize
	}
	ps = max(ps, minPartSize)
	if size > 0 {
		ps = max(ps, (size+maxUploadParts-1)/maxUploadParts)
	}
	return (ps + align - 1) / align * align
}

// upload is one Upload in progress.
type upload struct {
	u           *Uploader
	in          *s3.PutObjectInput
	optFns      []func(*s3.Options)
	sealer      partSealer // made once the body needs more than one part
	src         io.Reader
	size        int64
	partSize    int64
	concurrency int
	bufSize     int

	peek     []byte // a byte read past the current part, if any
	uploadID *string

	mu       sync.Mutex
	done     int64
	err      error
	parts    []types.CompletedPart
	progress sync.Mutex
}

// part is one part read from the body.
type part struct {
	number int32
	off    int64
	buf    []byte
	n      int
	last   bool
}

// readPart reads the next part into buf: up to partSize bytes, then one
// byte more to learn whether the body ends there.
func (up *upload) readPart(buf []byte, number int32, off int64) (*part, error) {
	n := 0
	if len(up.peek) == 1 {
		buf[0] = up.peek[0]
		up.peek = up.peek[:0]
		n = 1
	}
	k, err := io.ReadFull(up.src, buf[n:up.partSize])
	n += k
	p := &part{number: number, off: off, buf: buf, n: n}
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		p.last = true
		return p, nil
	case err != nil:
		return nil, err
	}
	var b [1]byte
	k, err = io.ReadFull(up.src, b[:])
	switch {
	case k == 1:
		up.peek = append(up.peek[:0], b[0])
	case err == io.EOF:
		p.last = true
	default:
		return nil, err
	}
	return p, nil
}

func (up *upload) run(ctx context.Context) (*UploadOutput, error) {
	c := up.u.c
	up.peek = make([]byte, 0, 1)
	first, err := up.readPart(make([]byte, up.bufSize), 1, 0)
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if first.last {
		// One part: a plain encrypted PutObject.
		req := *up.in
		req.Body = bytes.NewReader(first.buf[:first.n])
		req.ContentLength = aws.Int64(int64(first.n))
		out, err := c.PutObject(ctx, &req, up.optFns...)
		if err != nil {
			return nil, err
		}
		up.report(int64(first.n))
		return &UploadOutput{ETag: out.ETag, VersionId: out.VersionId, Parts: 1, Size: int64(first.n)}, nil
	}

	start, err := c.startMultipart(ctx, up)
	if err != nil {
		return nil, err
	}
	up.in, up.sealer = start.in, start.sealer
	mpu, err := up.u.api.CreateMultipartUpload(ctx, createInput(up.in, start.meta), up.optFns...)
	if err != nil {
		start.failed(ctx)
		return nil, fmt.Errorf("starting the multipart upload: %w", err)
	}
	up.uploadID = mpu.UploadId

	total, err := up.sendParts(ctx, first)
	if err == nil {
		var out *s3.CompleteMultipartUploadOutput
		if out, err = up.complete(ctx); err == nil {
			if err = start.done(ctx); err != nil {
				return nil, err
			}
			return &UploadOutput{ETag: out.ETag, VersionId: out.VersionId, UploadId: up.uploadID, Parts: len(up.parts), Size: total}, nil
		}
	}
	aerr := up.abort(ctx)
	start.failed(ctx)
	if aerr != nil {
		return nil, fmt.Errorf("%w; and aborting the upload failed, so its parts remain: %w", err, aerr)
	}
	return nil, fmt.Errorf("%w (upload aborted)", err)
}

// transferClient is what the Uploader and Downloader need of a client:
// *Client and *SSECClient implement it.
type transferClient interface {
	s3api() fullAPI
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	// planUpload checks an upload's input and returns its plaintext bytes
	// per part and the buffer a part needs.
	planUpload(u *Uploader, in *s3.PutObjectInput, size int64) (partSize, bufSize int64, err error)
	// startMultipart readies an upload that needs more than one part.
	startMultipart(ctx context.Context, up *upload) (*multipartStart, error)
	// download is Downloader.Download, its input checked.
	download(ctx context.Context, d *Downloader, w io.Writer, in *s3.GetObjectInput, optFns []func(*s3.Options)) (int64, error)
}

// multipartStart is how a client's multipart upload goes.
type multipartStart struct {
	in     *s3.PutObjectInput // what the create, the parts and the complete carry
	meta   map[string]string  // the object's metadata
	sealer partSealer
	done   func(ctx context.Context) error // after the complete
	failed func(ctx context.Context)       // after a failed create or an abort
}

func (c *Client) s3api() fullAPI { return c.api }

func (c *Client) planUpload(u *Uploader, in *s3.PutObjectInput, size int64) (partSize, bufSize int64, err error) {
	if c.provider.Current() == nil {
		return 0, 0, fmt.Errorf("%w: the provider has no current master key", envelope.ErrNoMasterKey)
	}
	// The shape of the object's format, to size parts before a data key is
	// made (a body that fits one part goes through PutObject, which makes
	// its own).
	shape := &format.Envelope{Format: c.opts.Format, SegmentSize: c.opts.SegmentSize}
	align := int64(format.TagSize)
	if shape.Format == envelope.FormatSegmented {
		if shape.SegmentSize == 0 {
			shape.SegmentSize = format.DefaultSegmentSize
		}
		align = int64(shape.SegmentSize)
	}
	if size >= 0 {
		if _, err := shape.CiphertextSize(size); err != nil {
			return 0, 0, err
		}
	}
	partSize = u.partSize(align, size)
	if bufSize, err = shape.CiphertextSize(partSize); err != nil {
		return 0, 0, err
	}
	return partSize, bufSize, nil
}

// startMultipart makes the data key of a client-side upload; the object's
// metadata holds the envelope, or an instruction file is written after the
// complete.
func (c *Client) startMultipart(ctx context.Context, up *upload) (*multipartStart, error) {
	current := c.provider.Current()
	if current == nil {
		return nil, fmt.Errorf("%w: the provider has no current master key", envelope.ErrNoMasterKey)
	}
	sealer, err := format.NewSealer(ctx, current, c.cfg())
	if err != nil {
		return nil, err
	}
	if int64(sealer.PartAlign()) > up.partSize || up.partSize%int64(sealer.PartAlign()) != 0 {
		return nil, fmt.Errorf("internal error: part size %d does not fit the format", up.partSize)
	}
	env := sealer.Envelope()
	if up.size >= 0 {
		env.PlaintextLength = up.size
	}
	var envMeta map[string]string
	var instruction []byte
	if c.opts.InstructionFile {
		envMeta, instruction, err = env.Instruction()
	} else {
		envMeta, err = env.Metadata()
	}
	if err != nil {
		return nil, err
	}
	meta, err := mergeMetadata(up.in.Metadata, envMeta)
	if err != nil {
		return nil, err
	}
	return &multipartStart{
		in: up.in, meta: meta, sealer: sealer,
		done: func(ctx context.Context) error {
			if instruction == nil {
				return nil
			}
			return c.putInstruction(ctx, up.in, instruction, up.optFns)
		},
		failed: func(context.Context) {},
	}, nil
}

func (c *SSECClient) s3api() fullAPI { return c.api }

func (c *SSECClient) planUpload(u *Uploader, in *s3.PutObjectInput, size int64) (partSize, bufSize int64, err error) {
	if err := checkUnsetCustomerKey(in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5); err != nil {
		return 0, 0, err
	}
	if c.provider.Current() == nil {
		return 0, 0, fmt.Errorf("%w: the provider has no current master key", envelope.ErrNoMasterKey)
	}
	partSize = u.partSize(1, size)
	return partSize, partSize, nil
}

// startMultipart records the object's new data key in the companion first
// (as PutObject does); the key goes with the create, every part and the
// complete, and S3 encrypts the parts as they are.
func (c *SSECClient) startMultipart(ctx context.Context, up *upload) (*multipartStart, error) {
	o := objectRef{bucket: up.in.Bucket, key: up.in.Key, owner: up.in.ExpectedBucketOwner, payer: up.in.RequestPayer}
	staged, err := c.stageKey(ctx, o, up.optFns)
	if err != nil {
		return nil, err
	}
	req := *up.in
	req.SSECustomerAlgorithm, req.SSECustomerKey, req.SSECustomerKeyMD5 = staged.key.alg, staged.key.key, staged.key.md5
	return &multipartStart{
		in: &req, meta: req.Metadata, sealer: plainParts{},
		done:   func(ctx context.Context) error { staged.commit(ctx); return nil },
		failed: staged.abandon,
	}, nil
}

// partSealer seals the parts of an upload in place: an envelope.Sealer, or
// plainParts when S3 encrypts.
type partSealer interface {
	SealPart(buf []byte, n int, off int64, last bool) ([]byte, error)
	Tag() ([]byte, error)
}

// plainParts sends parts as they are: S3 encrypts them (SSE-C).
type plainParts struct{}

func (plainParts) SealPart(buf []byte, n int, _ int64, _ bool) ([]byte, error) { return buf[:n], nil }
func (plainParts) Tag() ([]byte, error)                                        { return nil, nil }

// sendParts reads, seals and uploads every part, at most concurrency at
// once, and returns the plaintext length. After a failure no new part is
// sent, but the parts in flight are let finish (cancelled, a part could
// still land after the abort and bring the upload back).
func (up *upload) sendParts(ctx context.Context, first *part) (int64, error) {
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	free := make(chan []byte, up.concurrency+1)
	for range up.concurrency {
		free <- nil // allocated on first use
	}
	work := make(chan *part)
	var sealed sync.WaitGroup // parts before the last, until sealed
	var workers sync.WaitGroup
	for range up.concurrency {
		workers.Go(func() {
			for p := range work {
				if stopCtx.Err() != nil {
					if !p.last {
						sealed.Done()
					}
				} else if err := up.sendPart(ctx, stopCtx, p, &sealed); err != nil {
					up.fail(err)
					stop()
				}
				free <- p.buf
			}
		})
	}

	p := first
	var total int64
	var err error
	for {
		total += int64(p.n)
		if !p.last {
			sealed.Add(1)
		}
		select {
		case work <- p:
		case <-stopCtx.Done():
			if !p.last {
				sealed.Done()
			}
		}
		if p.last || stopCtx.Err() != nil {
			break
		}
		if p.number == maxUploadParts {
			err = fmt.Errorf("the body is longer than %d parts of %d bytes; set a larger PartSize", maxUploadParts, up.partSize)
			break
		}
		var buf []byte
		select {
		case buf = <-free:
		case <-stopCtx.Done():
		}
		if stopCtx.Err() != nil {
			break
		}
		if buf == nil {
			buf = make([]byte, up.bufSize)
		}
		next, rerr := up.readPart(buf, p.number+1, p.off+int64(p.n))
		if rerr != nil {
			err = fmt.Errorf("reading the body: %w", rerr)
			break
		}
		p = next
	}
	close(work)
	if err != nil {
		up.fail(err)
		stop()
	}
	workers.Wait()
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.err != nil {
		return 0, up.err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if up.size >= 0 && total != up.size {
		return 0, fmt.Errorf("the body held %d bytes, not %d", total, up.size)
	}
	return total, nil
}

// sendPart seals a part in place and uploads it, retrying with the same
// ciphertext; the last part waits for every other part to be sealed, then
// carries the V2/V3 tag.
func (up *upload) sendPart(ctx, stopCtx context.Context, p *part, sealed *sync.WaitGroup) error {
	ct, err := up.sealer.SealPart(p.buf, p.n, p.off, p.last)
	if !p.last {
		sealed.Done()
	}
	if err != nil {
		return err
	}
	if p.last {
		sealed.Wait()
		tag, err := up.sealer.Tag()
		if err != nil {
			return err
		}
		ct = append(ct, tag...)
	}
	retries := up.u.opts.PartRetries
	if retries == 0 {
		retries = defaultPartRetries
	}
	in := &s3.UploadPartInput{
		Bucket: up.in.Bucket, Key: up.in.Key, UploadId: up.uploadID, PartNumber: aws.Int32(p.number),
		ContentLength:        aws.Int64(int64(len(ct))),
		ChecksumAlgorithm:    up.in.ChecksumAlgorithm,
		SSECustomerAlgorithm: up.in.SSECustomerAlgorithm, SSECustomerKey: up.in.SSECustomerKey, SSECustomerKeyMD5: up.in.SSECustomerKeyMD5,
		ExpectedBucketOwner: up.in.ExpectedBucketOwner, RequestPayer: up.in.RequestPayer,
	}
	var out *s3.UploadPartOutput
	for attempt := 0; ; attempt++ {
		in.Body = bytes.NewReader(ct)
		out, err = up.u.api.UploadPart(ctx, in, up.optFns...)
		if err == nil || attempt >= retries || stopCtx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("part %d: %w", p.number, err)
	}
	up.mu.Lock()
	up.parts = append(up.parts, types.CompletedPart{
		PartNumber: aws.Int32(p.number), ETag: out.ETag,
		ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C, ChecksumCRC64NVME: out.ChecksumCRC64NVME,
		ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256,
	})
	up.mu.Unlock()
	up.report(int64(p.n))
	return nil
}

func (up *upload) fail(err error) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.err == nil {
		up.err = err
	}
}

// report adds n plaintext bytes to the progress and calls Progress.
func (up *upload) report(n int64) {
	if up.u.opts.Progress == nil {
		return
	}
	up.progress.Lock()
	defer up.progress.Unlock()
	up.done += n
	up.u.opts.Progress(up.done, up.size)
}

func (up *upload) complete(ctx context.Context) (*s3.CompleteMultipartUploadOutput, error) {
	sort.Slice(up.parts, func(i, j int) bool { return *up.parts[i].PartNumber < *up.parts[j].PartNumber })
	out, err := up.u.api.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: up.in.Bucket, Key: up.in.Key, UploadId: up.uploadID,
		MultipartUpload:      &types.CompletedMultipartUpload{Parts: up.parts},
		SSECustomerAlgorithm: up.in.SSECustomerAlgorithm, SSECustomerKey: up.in.SSECustomerKey, SSECustomerKeyMD5: up.in.SSECustomerKeyMD5,
		ExpectedBucketOwner: up.in.ExpectedBucketOwner, RequestPayer: up.in.RequestPayer,
		IfMatch: up.in.IfMatch, IfNoneMatch: up.in.IfNoneMatch,
	}, up.optFns...)
	if err != nil {
		return nil, fmt.Errorf("completing the multipart upload: %w", err)
	}
	return out, nil
}

// abort aborts the upload even when ctx is cancelled. When ctx was
// cancelled, parts were cut off in flight and one could still land after
// the abort and bring the upload back (S3 documents that an abort may need
// repeating): it aborts again, after a pause, until S3 knows the upload no
// more.
func (up *upload) abort(ctx context.Context) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for attempt := 0; ; attempt++ {
		_, err := up.u.api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: up.in.Bucket, Key: up.in.Key, UploadId: up.uploadID,
			ExpectedBucketOwner: up.in.ExpectedBucketOwner, RequestPayer: up.in.RequestPayer,
		}, up.optFns...)
		var nsu *types.NoSuchUpload
		switch {
		case attempt > 0 && errors.As(err, &nsu):
			return nil
		case err != nil:
			return err
		case ctx.Err() == nil || attempt == 3:
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// createInput is the CreateMultipartUpload request for a PutObject request
// whose metadata (with the envelope) is meta.
func createInput(in *s3.PutObjectInput, meta map[string]string) *s3.CreateMultipartUploadInput {
	return &s3.CreateMultipartUploadInput{
		Bucket: in.Bucket, Key: in.Key, Metadata: meta,
		ACL: in.ACL, CacheControl: in.CacheControl, ContentDisposition: in.ContentDisposition,
		ContentEncoding: in.ContentEncoding, ContentLanguage: in.ContentLanguage, ContentType: in.ContentType,
		Expires: in.Expires, GrantFullControl: in.GrantFullControl, GrantRead: in.GrantRead,
		GrantReadACP: in.GrantReadACP, GrantWriteACP: in.GrantWriteACP,
		ObjectLockLegalHoldStatus: in.ObjectLockLegalHoldStatus, ObjectLockMode: in.ObjectLockMode,
		ObjectLockRetainUntilDate: in.ObjectLockRetainUntilDate,
		ServerSideEncryption:      in.ServerSideEncryption, SSEKMSKeyId: in.SSEKMSKeyId,
		SSEKMSEncryptionContext: in.SSEKMSEncryptionContext, BucketKeyEnabled: in.BucketKeyEnabled,
		SSECustomerAlgorithm: in.SSECustomerAlgorithm, SSECustomerKey: in.SSECustomerKey, SSECustomerKeyMD5: in.SSECustomerKeyMD5,
		StorageClass: in.StorageClass, Tagging: in.Tagging, WebsiteRedirectLocation: in.WebsiteRedirectLocation,
		ChecksumAlgorithm:   in.ChecksumAlgorithm,
		ExpectedBucketOwner: in.ExpectedBucketOwner, RequestPayer: in.RequestPayer,
	}
}
