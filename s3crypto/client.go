package s3crypto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/spool"
	"github.com/s3envelope/s3envelope/internal/typednil"
	"github.com/s3envelope/s3envelope/materials"
)

// maxMetadataSize is S3's limit on an object's user metadata: the UTF-8
// bytes of every key and value, summed.
const maxMetadataSize = 2048

// ErrPlaintextChecksum is returned by PutObject when the input carries a
// precomputed ContentMD5 or Checksum* value. Such a value describes the
// plaintext, which S3 never receives; sending it would fail, and storing a
// plaintext hash would leak (CVE-2022-2582). Set ChecksumAlgorithm instead:
// the SDK then checksums the ciphertext actually sent.
var ErrPlaintextChecksum = errors.New("s3crypto: a precomputed checksum describes the plaintext; set ChecksumAlgorithm to checksum the ciphertext instead")

// ErrRange is returned by GetObject for a PartNumber request, and for a
// Range of a V2 or V3 object unless legacy unauthenticated modes are on: a
// slice of a one-pass AES-GCM object cannot be authenticated without the
// rest. It is an envelope.ErrDisallowed (errors.Is).
var ErrRange error = rangeError{}

type rangeError struct{}

func (rangeError) Error() string {
	return "s3crypto: a range of a V2 or V3 object cannot be authenticated without the whole object: " +
		"read it whole (GetObject, or a Downloader for large objects), or write objects in the segmented format for authenticated ranges"
}

func (rangeError) Is(target error) bool { return target == envelope.ErrDisallowed }

// Client encrypts and decrypts objects client-side around an S3 client.
// Its methods have *s3.Client's signatures. It is safe for concurrent use.
type Client struct {
	api      fullAPI
	provider materials.Provider
	opts     Options
}

// New returns a Client that stores objects through api, wrapping data keys
// with p's current master key and unwrapping them with whichever of p's
// master keys the stored description names. It fails with an error wrapping
// envelope.ErrPolicy when the options' Format contradicts their
// CommitmentPolicy.
func New(api S3API, p materials.Provider, optFns ...func(*Options)) (*Client, error) {
	if err := checkClientArgs("New", api, p); err != nil {
		return nil, err
	}
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	fc := format.Config(o.Config)
	f, err := fc.WriteFormat()
	if err != nil {
		return nil, fmt.Errorf("s3crypto: %w", err)
	}
	o.Format = f
	return &Client{api: complete(api), provider: p, opts: o}, nil
}

// checkClientArgs refuses what New and NewSSEC cannot use: a nil API or
// provider, a provider built from invalid arguments, or one whose current
// master key is a nil pointer (what a failed keyring constructor returns).
func checkClientArgs(fn string, api S3API, p materials.Provider) error {
	if typednil.Is(api) || typednil.Is(p) {
		return fmt.Errorf("s3crypto: %s needs an S3 client and a materials provider", fn)
	}
	if inv, ok := p.(interface{ Err() error }); ok && inv.Err() != nil {
		return fmt.Errorf("s3crypto: %s: %w", fn, inv.Err())
	}
	if cur := p.Current(); cur != nil && typednil.Is(cur) {
		return fmt.Errorf("s3crypto: %s: the provider's current master key: %w", fn, materials.ErrNilKeyring)
	}
	return nil
}

// cfg is the options' Config as the formats take it.
func (c *Client) cfg() format.Config { return format.Config(c.opts.Config) }

// Options returns a copy of the client's options, with Format resolved.
func (c *Client) Options() Options { return c.opts }

// PutObject seals in.Body under a fresh data key and stores it, with its
// envelope in the object's metadata or, with Options.InstructionFile, in
// <key>.instruction (written after the object). The body is streamed in
// constant memory: a seekable body is sealed as it is sent, a MiB ahead of
// the transport on every core (and must yield the same bytes if the SDK
// reads it again, or the upload fails rather than reuse a nonce); any
// other body is sealed into a spool first. The caller's body is not read
// after PutObject returns.
// ContentLength, if set, is the plaintext length. ContentMD5 and Checksum*
// values describe the plaintext and are refused (ErrPlaintextChecksum).
func (c *Client) PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (_ *s3.PutObjectOutput, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "PutObject", Err: errNilInput}
	}
	defer wrapObjectError(&err, "PutObject", in.Bucket, in.Key)
	if err := checkPlaintextChecksums(in); err != nil {
		return nil, err
	}
	if in.WriteOffsetBytes != nil {
		return nil, errors.New("appending (WriteOffsetBytes) cannot extend an AES-GCM object")
	}
	current := c.provider.Current()
	if current == nil {
		return nil, fmt.Errorf("%w: the provider has no current master key", envelope.ErrNoMasterKey)
	}
	sealer, err := format.NewSealer(ctx, current, c.cfg())
	if err != nil {
		return nil, err
	}
	body, plain, size, release, err := c.sealedBody(sealer, in.Body, in.ContentLength)
	if err != nil {
		return nil, err
	}
	defer release()

	env := sealer.Envelope()
	env.PlaintextLength = plain
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
	meta, err := mergeMetadata(in.Metadata, envMeta)
	if err != nil {
		return nil, err
	}

	req := *in
	req.Body = body
	req.ContentLength = aws.Int64(size)
	req.Metadata = meta
	out, err := c.api.PutObject(ctx, &req, optFns...)
	if err != nil {
		return nil, err
	}
	if instruction != nil {
		if err := c.putInstruction(ctx, in, instruction, optFns); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// putInstruction writes the instruction file of the object in names.
func (c *Client) putInstruction(ctx context.Context, in *s3.PutObjectInput, instruction []byte, optFns []func(*s3.Options)) error {
	_, err := c.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket:              in.Bucket,
		Key:                 aws.String(aws.ToString(in.Key) + format.InstructionSuffix),
		Body:                bytes.NewReader(instruction),
		ContentLength:       aws.Int64(int64(len(instruction))),
		Metadata:            map[string]string{format.InstructionMarker: ""},
		ExpectedBucketOwner: in.ExpectedBucketOwner,
		RequestPayer:        in.RequestPayer,
	}, optFns...)
	if err != nil {
		return fmt.Errorf("object stored but its instruction file was not, so it cannot be read: %w", err)
	}
	return nil
}

// sealedBody returns the request body for plaintext src, the plaintext
// and body lengths, and a function that releases what the body holds.
func (c *Client) sealedBody(sealer *format.Sealer, src io.Reader, contentLength *int64) (body io.Reader, plain, size int64, release func(), err error) {
	if src == nil {
		src = bytes.NewReader(nil)
	}
	rs, start, plain, seekable, err := seekableLength(src)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	if seekable {
		if contentLength != nil {
			if *contentLength > plain || *contentLength < 0 {
				return nil, 0, 0, nil, fmt.Errorf("ContentLength %d but the body holds %d bytes", *contentLength, plain)
			}
			plain = *contentLength
		}
		size, err := sealer.CiphertextSize(plain)
		if err != nil {
			return nil, 0, 0, nil, err
		}
		b := newSealBody(sealer, rs, start, plain, size)
		return b, plain, size, b.close, nil
	}
	if contentLength != nil {
		if _, err := sealer.CiphertextSize(*contentLength); err != nil {
			return nil, 0, 0, nil, err
		}
		src = withContentLength(src, *contentLength)
	}
	sp := spool.New(c.opts.SpoolDir, c.opts.SpoolMemory)
	sealed := sealer.SealAhead(src, -1, nil)
	size, err = io.Copy(sp, sealed)
	sealed.Close()
	if err == nil {
		plain, err = sealer.Envelope().PlaintextSize(size)
	}
	if err != nil {
		sp.Close()
		return nil, 0, 0, nil, err
	}
	b := newSpoolBody(sp)
	return b, plain, size, func() { b.close(); sp.Close() }, nil
}

// seekableLength returns the bytes from r's position to its end and that
// position, leaving r where it was; seekable is false when r is no
// io.ReadSeeker or cannot seek (an *os.File on a pipe).
func seekableLength(r io.Reader) (rs io.ReadSeeker, start, n int64, seekable bool, err error) {
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		return nil, 0, 0, false, nil
	}
	if start, err = rs.Seek(0, io.SeekCurrent); err != nil {
		return nil, 0, 0, false, nil
	}
	end, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, 0, 0, false, err
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return nil, 0, 0, false, err
	}
	return rs, start, end - start, true, nil
}

// withContentLength is the caller's body of ContentLength n: its first n
// bytes, and an error if it holds fewer.
func withContentLength(r io.Reader, n int64) io.Reader {
	return &exactReader{r: r, left: n, short: func(missing int64) error {
		return fmt.Errorf("body ended %d bytes before ContentLength: %w", missing, io.ErrUnexpectedEOF)
	}}
}

// exactReader yields exactly the next left bytes of r, and fails with
// short(bytes missing) if r ends before them.
type exactReader struct {
	r     io.Reader
	left  int64
	short func(missing int64) error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	n, err := e.r.Read(p[:min(int64(len(p)), e.left)])
	e.left -= int64(n)
	switch {
	case e.left == 0:
		return n, io.EOF
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return n, e.short(e.left)
	}
	return n, err
}

func checkPlaintextChecksums(in *s3.PutObjectInput) error {
	for name, v := range map[string]*string{
		"ContentMD5": in.ContentMD5, "ChecksumCRC32": in.ChecksumCRC32, "ChecksumCRC32C": in.ChecksumCRC32C,
		"ChecksumCRC64NVME": in.ChecksumCRC64NVME, "ChecksumSHA1": in.ChecksumSHA1, "ChecksumSHA256": in.ChecksumSHA256,
	} {
		if v != nil {
			return fmt.Errorf("%w (PutObject %s)", ErrPlaintextChecksum, name)
		}
	}
	return nil
}

// mergeMetadata adds the envelope to the caller's metadata, refusing caller
// keys that an envelope uses, and S3's size limit.
func mergeMetadata(user, env map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(user)+len(env))
	for k, v := range user {
		if format.IsEnvelopeKey(k) || strings.EqualFold(k, format.InstructionMarker) {
			return nil, fmt.Errorf("%w: user metadata key %q is reserved for the encryption envelope", envelope.ErrMalformed, k)
		}
		out[k] = v
	}
	maps.Copy(out, env)
	if size := metadataSize(out); size > maxMetadataSize {
		return nil, fmt.Errorf("%w: metadata with the envelope is %d bytes, over S3's %d; store the envelope in an instruction file (Options.InstructionFile)", envelope.ErrTooLarge, size, maxMetadataSize)
	}
	return out, nil
}

// metadataSize is what S3 counts against maxMetadataSize.
func metadataSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

// GetObject gets an object and opens it (see the package doc for what is
// released when). ContentLength is the plaintext length and the Checksum*
// fields, which describe the ciphertext, are cleared. A Range (one range)
// of a segmented object is read authenticated, fetching only the segments
// that hold it, with ContentRange in plaintext bytes; a range past the end
// fails with envelope.ErrInvalidRange. A Range of a V2 or V3 object, and
// any PartNumber, fail with ErrRange (with EnableLegacyUnauthenticatedModes
// a V2/V3 range is decrypted with AES-CTR, unauthenticated). An object with
// no envelope fails with envelope.ErrNoEnvelope; a size no V2 or V3 object
// can have, with envelope.ErrTooLarge before the body is read. Close the
// Body.
func (c *Client) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (_ *s3.GetObjectOutput, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "GetObject", Err: errNilInput}
	}
	defer wrapObjectError(&err, "GetObject", in.Bucket, in.Key)
	if in.PartNumber != nil {
		return nil, ErrRange
	}
	if in.Range != nil {
		return c.getRange(ctx, in, optFns)
	}
	out, err := c.api.GetObject(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	env, err := c.loadEnvelope(ctx, in.Bucket, in.Key, out.Metadata, in.ExpectedBucketOwner, in.RequestPayer, optFns)
	if err != nil {
		out.Body.Close()
		return nil, err
	}
	return c.openWhole(ctx, env, out)
}

// openWhole opens out, the response to a GET of a whole object whose
// envelope is env, into what GetObject returns: the same output with the
// authenticated plaintext as Body and its length as ContentLength (nil
// when neither the response nor the envelope tells it). Whichever way the
// response came (the SDK, a presigned URL), this is the one place that
// decides what is released when. It closes out.Body on failure.
func (c *Client) openWhole(ctx context.Context, env *format.Envelope, out *s3.GetObjectOutput) (*s3.GetObjectOutput, error) {
	fail := func(err error) (*s3.GetObjectOutput, error) {
		out.Body.Close()
		return nil, err
	}
	if err := boundLength(env, out.ContentLength); err != nil {
		return fail(err)
	}
	pt, err := format.Open(ctx, env, c.provider, c.cfg(), out.Body)
	if err != nil {
		return fail(err)
	}
	res := *out
	res.Body = &plainBody{Plaintext: pt, body: out.Body}
	res.ContentLength = nil
	switch size := pt.Size(); {
	case size >= 0:
		// Everything is spooled: the HTTP body is no longer needed.
		out.Body.Close()
		res.ContentLength = aws.Int64(size)
	case out.ContentLength != nil:
		if size, err = env.PlaintextSize(*out.ContentLength); err != nil {
			res.Body.Close()
			return nil, err
		}
		res.ContentLength = aws.Int64(size)
	}
	res.ContentRange = nil
	clearChecksums(&res)
	return &res, nil
}

// boundLength gives a V2 or V3 envelope that stores no plaintext length
// (V3 never does) the one the stored size implies, so that Open refuses a
// body longer than the server announced as soon as it passes that length
// instead of spooling it whole; a size no V2 or V3 object can have
// (ErrTooLarge, ErrAuthentication) is refused before the body is read. A
// response without a size leaves the envelope's length unknown, for
// Config.SpoolLimit to bound.
func boundLength(env *format.Envelope, contentLength *int64) error {
	if contentLength == nil || *contentLength < 0 || (env.Format != envelope.FormatV2 && env.Format != envelope.FormatV3) {
		return nil
	}
	p, err := env.PlaintextSize(*contentLength)
	if err != nil {
		return err
	}
	if env.PlaintextLength < 0 {
		env.PlaintextLength = p
	}
	return nil
}

// loadEnvelope decodes the envelope from metadata, reading the instruction
// file only when the metadata holds none.
func (c *Client) loadEnvelope(ctx context.Context, bucket, key *string, meta map[string]string, owner *string, payer types.RequestPayer, optFns []func(*s3.Options)) (*format.Envelope, error) {
	if format.HasEnvelope(meta) {
		return format.Decode(meta, nil)
	}
	instr, err := c.api.GetObject(ctx, &s3.GetObjectInput{
		Bucket:              bucket,
		Key:                 aws.String(aws.ToString(key) + format.InstructionSuffix),
		ExpectedBucketOwner: owner,
		RequestPayer:        payer,
	}, optFns...)
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return format.Decode(meta, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("reading instruction file: %w", err)
	}
	defer instr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(instr.Body, format.MaxInstructionSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading instruction file: %w", err)
	}
	return format.Decode(meta, b)
}

// HeadObject returns an object's metadata, with ContentLength as the
// plaintext length when the object is encrypted (which may take a read of
// its instruction file) and the ciphertext's Checksum* fields cleared. An
// object with no envelope is returned as S3 describes it.
func (c *Client) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (_ *s3.HeadObjectOutput, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "HeadObject", Err: errNilInput}
	}
	defer wrapObjectError(&err, "HeadObject", in.Bucket, in.Key)
	out, err := c.api.HeadObject(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	env, err := c.loadEnvelope(ctx, in.Bucket, in.Key, out.Metadata, in.ExpectedBucketOwner, in.RequestPayer, optFns)
	if errors.Is(err, envelope.ErrNoEnvelope) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	res := *out
	if size, err := env.PlaintextSize(aws.ToInt64(out.ContentLength)); err == nil {
		res.ContentLength = aws.Int64(size)
	} else if !errors.Is(err, envelope.ErrUnsupported) {
		return nil, err
	}
	res.ChecksumCRC32, res.ChecksumCRC32C, res.ChecksumCRC64NVME, res.ChecksumSHA1, res.ChecksumSHA256 = nil, nil, nil, nil, nil
	res.ChecksumType = ""
	return &res, nil
}

// DeleteObject deletes an object and its instruction file, if any. With a
// VersionId it deletes only that version of the object: the instruction
// file belongs to the current version and is left alone.
func (c *Client) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return deleteWithCompanion(ctx, c.api, in, format.InstructionSuffix, "instruction file", optFns)
}

// DeleteObjects deletes up to 1,000 objects in one request, as S3 does,
// and then the instruction files of those deleted without a VersionId. An
// instruction file that could not be deleted is reported in the output's
// Errors, under its own key.
func (c *Client) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	return deleteObjectsWithCompanions(ctx, c.api, in, format.InstructionSuffix, optFns)
}

// deleteObjectsWithCompanions deletes objects, then the objects beside
// them that hold their envelopes or keys.
func deleteObjectsWithCompanions(ctx context.Context, api fullAPI, in *s3.DeleteObjectsInput, suffix string, optFns []func(*s3.Options)) (_ *s3.DeleteObjectsOutput, err error) {
	if in == nil || in.Delete == nil {
		return nil, &ObjectError{Op: "DeleteObjects", Err: errNilInput}
	}
	defer wrapObjectError(&err, "DeleteObjects", in.Bucket, nil)
	out, err := api.DeleteObjects(ctx, in, optFns...)
	if err != nil {
		return out, err
	}
	failed := map[string]bool{}
	for _, e := range out.Errors {
		if e.VersionId == nil {
			failed[aws.ToString(e.Key)] = true
		}
	}
	var companions []types.ObjectIdentifier
	for _, o := range in.Delete.Objects {
		if k := aws.ToString(o.Key); o.VersionId == nil && !failed[k] {
			companions = append(companions, types.ObjectIdentifier{Key: aws.String(k + suffix)})
		}
	}
	for batch := range slices.Chunk(companions, 1000) {
		res, err := api.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket:              in.Bucket,
			Delete:              &types.Delete{Objects: batch, Quiet: aws.Bool(true)},
			ExpectedBucketOwner: in.ExpectedBucketOwner,
			RequestPayer:        in.RequestPayer,
		}, optFns...)
		if err != nil {
			return out, fmt.Errorf("objects deleted, the objects beside them (%s) not: %w", suffix, err)
		}
		out.Errors = append(out.Errors, res.Errors...)
	}
	return out, nil
}

// deleteWithCompanion deletes an object and then, unless a version was
// named, the object beside it that holds its envelope or keys.
func deleteWithCompanion(ctx context.Context, api fullAPI, in *s3.DeleteObjectInput, suffix, what string, optFns []func(*s3.Options)) (_ *s3.DeleteObjectOutput, err error) {
	if in == nil {
		return nil, &ObjectError{Op: "DeleteObject", Err: errNilInput}
	}
	defer wrapObjectError(&err, "DeleteObject", in.Bucket, in.Key)
	out, err := api.DeleteObject(ctx, in, optFns...)
	if err != nil || in.VersionId != nil {
		return out, err
	}
	_, err = api.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket:              in.Bucket,
		Key:                 aws.String(aws.ToString(in.Key) + suffix),
		ExpectedBucketOwner: in.ExpectedBucketOwner,
		RequestPayer:        in.RequestPayer,
	}, optFns...)
	if err != nil {
		return out, fmt.Errorf("object deleted, its %s not: %w", what, err)
	}
	return out, nil
}

func objectName(bucket, key *string) string {
	return "s3://" + aws.ToString(bucket) + "/" + aws.ToString(key)
}
