package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/s3crypto"
)

func init() {
	for _, name := range []string{"inspect", "head"} {
		summary := "show an object's envelope — format, algorithms, description, sizes — without a key"
		if name == "head" {
			summary = "the same as inspect"
		}
		register(&command{
			name:    name,
			summary: summary,
			usage:   "[--verify --key KEY [--desc K=V]] s3://bucket/key",
			help: `Inspect (or head: the same command) shows what is stored beside an
encrypted object, from its metadata and, if the envelope is there, its
instruction file (<key>.instruction): the format (V2, V3, segmented), the
content algorithm, the wrap algorithm and the size of the wrapped data key,
the master key's description (for KMS: the encryption context), where the
envelope is stored, the plaintext and stored sizes, the segment size of a
segmented object, the ETag and the last-modified time.

It unwraps nothing and needs no key: it reads only what is stored, and
nothing of it is authenticated until the object is read. Wrapped keys and
IVs are not printed (they are not secret, only noise): the size of the
wrapped data key is.

--verify also unwraps the data key (give --key) and authenticates the
whole object, reading it to the end and discarding the plaintext; it
reports OK or why not (exit 1). With a single AES or RSA --key, --desc may
be left out: the object's stored description is used to try that key (see
'help get').

An object that is not encrypted by an S3 encryption client (no envelope in
its metadata, no instruction file) exits 1.

Examples:
  s3envelope inspect s3://bucket/report.pdf
  s3envelope head --json s3://bucket/report.pdf
  s3envelope inspect --verify --key team s3://bucket/report.pdf
  s3envelope inspect --verify --key kms:alias/backup s3://bucket/db.dump`,
			register: func(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
				o := &inspectOptions{name: name}
				o.keys.register(fs, "with --verify, the master key to read with")
				fs.BoolVar(&o.verify, "verify", false, "also unwrap the data key and authenticate the whole object (needs --key)")
				fs.BoolVar(&o.requireV3, "require-v3", false, "with --verify, refuse V2 objects (no key commitment); by default V2 and V3 are read")
				return o.run
			},
		})
	}
}

type inspectOptions struct {
	name      string
	keys      keyFlags
	verify    bool
	requireV3 bool
}

// instructionSuffix names an object's instruction file: <key>.instruction,
// as AWS's clients store it (envelope.Envelope.Instruction's doc).
const instructionSuffix = ".instruction"

// errNotEncrypted: the object has no envelope.
var errNotEncrypted = errors.New("not encrypted by an S3 encryption client")

// storedObject is an object's HEAD and its envelope, as stored: nothing in
// it is authenticated.
type storedObject struct {
	uri         objectURI
	head        *s3.HeadObjectOutput
	env         *envelope.Envelope
	instruction bool // the envelope is in <key>.instruction
}

// headEnvelope reads an object's envelope without unwrapping anything:
// HEAD, then envelope.Decode of its metadata, and of its instruction file
// when the metadata holds no wrapped key (as the library reads it).
func headEnvelope(ctx context.Context, api *s3.Client, u objectURI) (*storedObject, error) {
	head, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key)})
	if err != nil {
		return nil, s3Error(u, err)
	}
	obj := &storedObject{uri: u, head: head}
	obj.env, err = envelope.Decode(head.Metadata, nil)
	if err == nil {
		return obj, nil
	}
	// No wrapped key in the metadata: V2 keeps its whole envelope in the
	// instruction file, V3 all but three fields, so look for one.
	out, ierr := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key + instructionSuffix)})
	if isNotFound(ierr) {
		if errors.Is(err, envelope.ErrNoEnvelope) {
			return nil, fmt.Errorf("%s is %w (no envelope in its metadata, no %s%s)", u, errNotEncrypted, u.Key, instructionSuffix)
		}
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if ierr != nil {
		return nil, explain(objectURI{Bucket: u.Bucket, Key: u.Key + instructionSuffix}, ierr)
	}
	defer out.Body.Close()
	// An instruction file is a small JSON document; a huge one is not one.
	b, rerr := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	if rerr != nil {
		return nil, fmt.Errorf("reading %s%s: %w", u, instructionSuffix, rerr)
	}
	obj.env, err = envelope.Decode(head.Metadata, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	obj.instruction = true
	return obj, nil
}

// s3Error says "no such object" for a 404, and passes S3's errors on.
func s3Error(u objectURI, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%s: no such object", u)
	}
	return explain(u, err)
}

// explain shortens an error that carries an AWS service's answer to what
// the service said, as the AWS CLI does ("s3://b/k: S3 PutObject:
// NoSuchBucket: The specified bucket does not exist"), keeping the error
// for errors.Is. Everything else (the library's own errors, an
// interruption) is left as it is.
func explain(u objectURI, err error) error {
	var ae smithy.APIError
	if err == nil || errors.Is(err, context.Canceled) || !errors.As(err, &ae) {
		return err
	}
	what := "the service"
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		what = oe.ServiceID + " " + oe.OperationName
	}
	msg := ae.ErrorCode()
	if m := ae.ErrorMessage(); m != "" {
		msg += ": " + m
	}
	if errors.Is(err, s3crypto.ErrConcurrentModification) {
		msg = s3crypto.ErrConcurrentModification.Error() + " (" + msg + ")"
	}
	return &explained{msg: fmt.Sprintf("%s: %s: %s", u, what, msg), err: err}
}

type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

func isNotFound(err error) bool {
	var nf *types.NotFound
	var nsk *types.NoSuchKey
	return errors.As(err, &nf) || errors.As(err, &nsk)
}

// isKMS reports whether a wrap algorithm is KMS's, whose stored
// description is the encryption context.
func isKMS(wrapAlg string) bool { return strings.HasPrefix(wrapAlg, "kms") }

// contentCipher says in words what a content algorithm is.
func contentCipher(alg string) string {
	switch alg {
	case "115":
		return "AES-256-GCM, committing to the data key (HKDF-SHA512)"
	case "AES/GCM/NoPadding":
		return "AES-256-GCM, no key commitment"
	case "S3ESEG1":
		return "AES-256-GCM in authenticated segments, committing to the data key"
	case "AES/CBC/PKCS5Padding":
		return "AES-CBC, unauthenticated (legacy)"
	}
	return "unknown"
}

// inspectResult is what inspect prints: nothing secret, and no wrapped key
// or IV (noise), only the wrapped key's length.
type inspectResult struct {
	URI              string            `json:"uri"`
	Format           string            `json:"format"`
	ContentAlgorithm string            `json:"contentAlgorithm"`
	ContentCipher    string            `json:"contentCipher"`
	WrapAlgorithm    string            `json:"wrapAlgorithm"`
	WrappedKeyBytes  int               `json:"wrappedKeyBytes"`
	Description      map[string]string `json:"description,omitempty"`
	// EncryptionContext replaces Description for a KMS-wrapped key.
	EncryptionContext map[string]string `json:"encryptionContext,omitempty"`
	Envelope          string            `json:"envelope"` // "metadata" or "instruction-file"
	InstructionFile   string            `json:"instructionFile,omitempty"`
	PlaintextSize     *int64            `json:"plaintextSize,omitempty"` // nil for V1 (known once decrypted)
	StoredSize        int64             `json:"storedSize"`
	SegmentSize       int               `json:"segmentSize,omitempty"`
	ETag              string            `json:"etag,omitempty"`
	LastModified      *time.Time        `json:"lastModified,omitempty"`
	ContentType       string            `json:"contentType,omitempty"`
	Verified          *bool             `json:"verified,omitempty"`
	VerifyError       string            `json:"verifyError,omitempty"`
}

func describeObject(obj *storedObject) *inspectResult {
	e := obj.env
	r := &inspectResult{
		URI:              obj.uri.String(),
		Format:           e.Format.String(),
		ContentAlgorithm: e.ContentAlgorithm,
		ContentCipher:    contentCipher(e.ContentAlgorithm),
		WrapAlgorithm:    e.Key.Algorithm,
		WrappedKeyBytes:  len(e.Key.Ciphertext),
		Envelope:         "metadata",
		StoredSize:       aws.ToInt64(obj.head.ContentLength),
		SegmentSize:      e.SegmentSize,
		ETag:             aws.ToString(obj.head.ETag),
		LastModified:     obj.head.LastModified,
		ContentType:      aws.ToString(obj.head.ContentType),
	}
	if isKMS(e.Key.Algorithm) {
		r.EncryptionContext = e.Key.Description
	} else {
		r.Description = e.Key.Description
	}
	if obj.instruction {
		r.Envelope, r.InstructionFile = "instruction-file", obj.uri.String()+instructionSuffix
	}
	if n, err := e.PlaintextSize(r.StoredSize); err == nil {
		r.PlaintextSize = &n
	}
	return r
}

func (r *inspectResult) print(w io.Writer) {
	line := func(k, format string, args ...any) {
		fmt.Fprintf(w, "%-18s %s\n", k+":", fmt.Sprintf(format, args...))
	}
	line("object", "%s", r.URI)
	line("format", "%s", r.Format)
	line("content algorithm", "%s (%s)", r.ContentAlgorithm, r.ContentCipher)
	line("wrap algorithm", "%s (wrapped data key: %d bytes)", r.WrapAlgorithm, r.WrappedKeyBytes)
	if r.EncryptionContext != nil {
		line("kms context", "%s", jsonString(r.EncryptionContext))
	} else {
		line("description", "%s", jsonString(r.Description))
	}
	if r.InstructionFile != "" {
		line("envelope", "in the instruction file %s", r.InstructionFile)
	} else {
		line("envelope", "in the object's metadata")
	}
	if r.PlaintextSize != nil {
		line("plaintext size", "%d bytes (%s)", *r.PlaintextSize, humanBytes(*r.PlaintextSize))
	} else {
		line("plaintext size", "unknown until decrypted")
	}
	line("stored size", "%d bytes (%s)", r.StoredSize, humanBytes(r.StoredSize))
	if r.SegmentSize > 0 {
		line("segment size", "%d bytes (%s)", r.SegmentSize, humanBytes(int64(r.SegmentSize)))
	}
	if r.ETag != "" {
		line("etag", "%s", r.ETag)
	}
	if r.LastModified != nil {
		line("last modified", "%s", r.LastModified.UTC().Format(time.RFC3339))
	}
	if r.ContentType != "" {
		line("content type", "%s", r.ContentType)
	}
	switch {
	case r.Verified == nil:
	case *r.Verified:
		line("verified", "OK: the data key unwrapped and every byte authenticated")
	default:
		line("verified", "FAILED: %s", r.VerifyError)
	}
}

func (o *inspectOptions) run(ctx context.Context, g *globals, args []string) error {
	if len(args) != 1 {
		return usageErr("want one object, s3://bucket/key (got %d arguments)", len(args))
	}
	u, err := parseURI(args[0], true)
	if err != nil {
		return err
	}
	if !o.verify && (len(o.keys.specs) > 0 || len(o.keys.descs) > 0) {
		return usageErr("--key and --desc are for --verify: inspect itself needs no key")
	}
	if o.verify && len(o.keys.specs) == 0 {
		return usageErr("--verify needs the master key: give --key")
	}
	api, err := g.s3(ctx)
	if err != nil {
		return err
	}
	obj, err := headEnvelope(ctx, api, u)
	if err != nil {
		return err
	}
	res := describeObject(obj)
	var verr error
	if o.verify {
		verr = o.verifyObject(ctx, g, obj)
		var setup *classified
		if errors.As(verr, &setup) {
			return verr // a key that could not be loaded: nothing was verified
		}
		ok := verr == nil
		res.Verified = &ok
		if verr != nil {
			res.VerifyError = oneLine(verr)
		}
	}
	if g.json {
		if err := g.emit(res); err != nil {
			return err
		}
	} else {
		res.print(g.con.stdout)
	}
	if verr != nil {
		return fmt.Errorf("%s does not verify: %w", u, verr)
	}
	return nil
}

// verifyObject unwraps the data key and authenticates the whole object,
// discarding the plaintext.
func (o *inspectOptions) verifyObject(ctx context.Context, g *globals, obj *storedObject) error {
	cl, err := readClient(ctx, g, &o.keys, obj, o.requireV3)
	if err != nil {
		return err
	}
	p := g.newProgress("verify", obj.uri.String(), "bytes", aws.ToInt64(obj.head.ContentLength))
	cl.count(obj.uri, p, false)
	d := s3crypto.NewDownloader(cl.Client)
	_, err = d.Download(ctx, io.Discard, &s3.GetObjectInput{Bucket: aws.String(obj.uri.Bucket), Key: aws.String(obj.uri.Key), IfMatch: obj.head.ETag})
	if err != nil {
		p.Stop()
		return explain(obj.uri, err)
	}
	p.Finish()
	return nil
}

// jsonString shows a description as JSON, keys sorted.
func jsonString(m map[string]string) string {
	if m == nil {
		m = map[string]string{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Sprint(m)
	}
	return string(b)
}
