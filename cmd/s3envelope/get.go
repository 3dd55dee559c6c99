package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

const readKeyHelp = `Master keys: --key as for put, repeatable (every key given is tried by
its description). With a single AES or RSA key, --desc may be left out:
the command then reads the object's envelope first and tries the key under
the description stored there. That is safe: the description only says
which key to try, and nothing else is taken from it — a key that is not
the object's fails to unwrap the data key (exit 1, "authentication
failed"), and the body is authenticated under the data key anyway. An RSA
public key cannot read: give the private key.

V2 objects (no key commitment, written by AWS's older clients) are read
unless --require-v3 is given; V3 and segmented objects always are.`

func init() {
	register(&command{
		name:    "get",
		summary: "download and decrypt an object to a file (or stdout), authenticated",
		usage:   "[flags] s3://bucket/key FILE|-  (or --url URL FILE|-)",
		help: `Get downloads an object, decrypts it and writes the plaintext to FILE,
or to stdout for "-" (as cat does). Every byte is authenticated before it
is written.

A file is written whole or not at all: the plaintext goes to a temporary
file beside it (mode 0600), which is renamed to FILE only once the whole
object has authenticated; a failure or Ctrl-C removes it. FILE keeps mode
0600: it holds what was encrypted. An existing FILE is not replaced
unless --force is given; a directory gets the object's base name.
Files are downloaded with parallel ranged GETs, every one pinned to the
ETag the object had when the download started.

--range bytes=FIRST-LAST (or FIRST-, or -SUFFIX) reads part of a segmented
object: only the segments that hold it are fetched, each authenticated.
A range of a V2 or V3 object cannot be authenticated without reading the
whole object, so it is refused (exit 1).

A V2 or V3 object is one AES-GCM stream whose tag is at its end: its
ciphertext is spooled (memory, then $TMPDIR) and nothing is released before
the tag verifies. A segmented object is released segment by segment as each
authenticates, so on stdout a failure can follow authenticated output.

` + readKeyHelp + `

` + urlHelp + `

Examples:
  s3envelope get --key backup.key --desc key=backup s3://bucket/db.dump db.dump
  s3envelope get --key team s3://bucket/report.pdf ./downloads/
  s3envelope get --key kms:alias/backup s3://bucket/db.dump - | pg_restore
  s3envelope get --key team --range bytes=0-1023 s3://bucket/big.seg head.bin
  s3envelope get --url "$url" --key team.key --desc key=team report.pdf`,
		register: func(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
			o := &getOptions{}
			o.register(fs)
			fs.BoolVar(&o.force, "force", false, "replace FILE if it exists")
			return o.run
		},
	})
	register(&command{
		name:    "cat",
		summary: "decrypt an object to stdout (get s3://bucket/key -)",
		usage:   "[flags] s3://bucket/key",
		help: `Cat writes an object's plaintext to stdout: 'get s3://bucket/key -'.
Nothing of a V2 or V3 object is written before its tag verifies (it is
spooled until then); a segmented object is written segment by segment as
each authenticates. --range as for get (segmented objects only).

` + readKeyHelp + `

Examples:
  s3envelope cat --key backup.key --desc key=backup s3://bucket/notes.txt
  s3envelope cat --key team --range bytes=-4096 s3://bucket/log.seg | tail`,
		register: func(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
			o := &getOptions{cat: true}
			o.register(fs)
			return o.run
		},
	})
}

type getOptions struct {
	cat       bool
	keys      keyFlags
	rng       string
	force     bool
	requireV3 bool

	url, instructionURL, headersFile string // --url: a shared object
}

func (o *getOptions) name() string {
	if o.cat {
		return "cat"
	}
	return "get"
}

func (o *getOptions) register(fs *flag.FlagSet) {
	o.keys.register(fs, "the master key to read with")
	fs.StringVar(&o.rng, "range", "", "read only bytes=FIRST-LAST (FIRST-, -SUFFIX) of the plaintext: segmented objects only")
	fs.BoolVar(&o.requireV3, "require-v3", false, "refuse V2 objects (no key commitment); by default V2 and V3 are read")
	fs.StringVar(&o.url, "url", "", "read the object shared at this presigned `URL` (from share) instead of s3://bucket/key")
	fs.StringVar(&o.instructionURL, "instruction-url", "", "with --url: the presigned `URL` of the object's instruction file (share's second line)")
	fs.StringVar(&o.headersFile, "headers-file", "", "with --url: the `file` of headers to send for a managed SSE-C object (from share --headers-out)")
}

// rangeSyntax is one byte range, as HTTP writes it.
var rangeSyntax = regexp.MustCompile(`^bytes=(\d+-\d*|-\d+)$`)

// getResult is get's summary.
type getResult struct {
	URI    string `json:"uri"`
	File   string `json:"file"`
	Size   int64  `json:"size"`
	Format string `json:"format"`
	Range  string `json:"range,omitempty"`
	ETag   string `json:"etag,omitempty"`
}

func (o *getOptions) run(ctx context.Context, g *globals, args []string) error {
	name, want := o.name(), 2
	if o.cat {
		want = 1
	}
	if o.url != "" {
		want-- // no s3://bucket/key
	} else if o.instructionURL != "" || o.headersFile != "" {
		return usageErr("--instruction-url and --headers-file go with --url")
	}
	if len(args) != want {
		return usageErr("want %d arguments, got %d", want, len(args))
	}
	if o.url != "" {
		return o.runURL(ctx, g, args)
	}
	u, err := parseURI(args[0], true)
	if err != nil {
		return err
	}
	if len(o.keys.specs) == 0 {
		return usageErr("give the master key with --key (a key file, env:NAME or kms:ID)")
	}
	if o.rng != "" && !rangeSyntax.MatchString(o.rng) {
		return usageErr("--range %q: want one range, bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX", o.rng)
	}
	dest := "-"
	if !o.cat {
		dest = args[1]
	}
	var out *outputFile
	if dest != "-" {
		if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
			dest = filepath.Join(dest, path.Base(u.Key))
		}
		if out, err = createOutput(dest, o.force); err != nil {
			return err
		}
		defer out.discard()
	}

	api, err := g.s3(ctx)
	if err != nil {
		return err
	}
	obj, err := headEnvelope(ctx, api, u)
	if err != nil {
		return err
	}
	cl, err := readClient(ctx, g, &o.keys, obj, o.requireV3)
	if err != nil {
		return err
	}
	total := aws.ToInt64(obj.head.ContentLength)
	if o.rng != "" {
		total = -1 // the stored bytes of the segments: known from the response
	}
	p := g.newProgress(name, u.String(), "bytes", total)
	cl.count(u, p, o.rng != "")
	// Pinned to the ETag whose envelope was read: the description used to
	// pick the key, and the sizes shown, are this object's.
	in := &s3.GetObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key), IfMatch: obj.head.ETag}
	var n int64
	switch {
	case out != nil && o.rng == "":
		n, err = s3crypto.NewDownloader(cl.Client).Download(ctx, out.f, in)
	case out != nil:
		n, err = o.stream(ctx, cl, in, out.f)
	default:
		n, err = o.stream(ctx, cl, in, g.con.stdout)
	}
	if err != nil {
		p.Stop()
		if errors.Is(err, s3crypto.ErrRange) {
			return fmt.Errorf("%s is a %s object: a byte range of it cannot be authenticated without reading all of it, so --range is for segmented objects only; get it whole", u, obj.env.Format)
		}
		return explain(u, err)
	}
	p.Finish()
	if out == nil {
		return nil // stdout holds the plaintext: no summary there
	}
	if err := out.commit(); err != nil {
		return err
	}
	res := getResult{URI: u.String(), File: dest, Size: n, Format: obj.env.Format.String(), Range: o.rng, ETag: aws.ToString(obj.head.ETag)}
	if g.json {
		return g.emit(res)
	}
	fmt.Fprintf(g.con.stdout, "get %s file=%s size=%d format=%s", res.URI, res.File, res.Size, res.Format)
	if res.Range != "" {
		fmt.Fprintf(g.con.stdout, " range=%s", res.Range[len("bytes="):])
	}
	fmt.Fprintln(g.con.stdout)
	return nil
}

// stream copies the object (or its range) through one GetObject.
func (o *getOptions) stream(ctx context.Context, cl *readerClient, in *s3.GetObjectInput, w io.Writer) (int64, error) {
	if o.rng != "" {
		in.Range = aws.String(o.rng)
	}
	out, err := cl.GetObject(ctx, in)
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	return io.Copy(w, out.Body)
}

// outputFile is a download's destination: a temporary file beside it,
// moved into place only once the whole object has authenticated, so that
// a failure leaves no partial plaintext under the name asked for.
type outputFile struct {
	path  string
	force bool
	f     *os.File
	done  bool
}

func createOutput(dest string, force bool) (*outputFile, error) {
	if !force {
		if err := refuseOutput(dest); err != nil {
			return nil, err
		}
	}
	// CreateTemp makes it 0600: it holds plaintext.
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.s3envelope-partial")
	if err != nil {
		return nil, setupErr(fmt.Errorf("cannot write beside %s: %w", dest, err))
	}
	return &outputFile{path: dest, force: force, f: f}, nil
}

func refuseOutput(dest string) error {
	if _, err := os.Lstat(dest); err == nil {
		return setupErr(fmt.Errorf("%s exists: give --force to replace it", dest))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return setupErr(err)
	}
	return nil
}

// commit moves the complete file into place: without --force by a hard
// link, which fails rather than replace a file that appeared meanwhile.
func (o *outputFile) commit() error {
	tmp := o.f.Name()
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	if !o.force {
		err = os.Link(tmp, o.path)
		if err == nil {
			o.done = true
			os.Remove(tmp)
			return nil
		}
		if errors.Is(err, fs.ErrExist) {
			return refuseOutput(o.path)
		}
		// No hard links here (some file systems): check, then rename.
		if err := refuseOutput(o.path); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, o.path); err != nil {
		return fmt.Errorf("moving the download into place: %w", err)
	}
	o.done = true
	return nil
}

// discard removes the temporary file unless it was committed.
func (o *outputFile) discard() {
	if !o.done {
		o.f.Close()
		os.Remove(o.f.Name())
	}
}

// readerClient is an s3crypto Client whose S3 client counts the stored
// bytes of one object's GETs into a progress.
type readerClient struct {
	*s3crypto.Client
	api *countingAPI
}

// count sends the stored bytes of u's GETs to p; with total, the first
// response's length becomes p's total.
func (r *readerClient) count(u objectURI, p *progress, total bool) {
	r.api.mu.Lock()
	r.api.u, r.api.p, r.api.total = u, p, total
	r.api.mu.Unlock()
}

// readClient makes the client that reads obj with the keys given. With one
// AES or RSA key and no --desc, the key is tried under the description
// stored with obj: a wrong key fails to unwrap (ErrAuthentication), and
// nothing but the choice of key to try is taken from the description.
func readClient(ctx context.Context, g *globals, keys *keyFlags, obj *storedObject, requireV3 bool) (*readerClient, error) {
	if len(keys.descs) == 0 && len(keys.specs) == 1 && nonKMS(keys.specs) == 1 {
		keys.descs = repeated{jsonString(obj.env.Key.Description)}
	}
	prov, loaded, err := keys.provider(ctx, g, forReading)
	if err != nil {
		return nil, err
	}
	// One key of another kind than the wrap's would fail as an
	// "unsupported algorithm": say what is wrong instead.
	if want, have := wrapKind(obj.env.Key.Algorithm), keyKind(loaded[0]); len(loaded) == 1 && want != "" && have != "" && want != have {
		return nil, fmt.Errorf("%s's data key is wrapped by %s key (%s), and --key %s is %s key: give the object's master key", obj.uri, want, obj.env.Key.Algorithm, keys.specs[0], have)
	}
	api, err := g.s3(ctx)
	if err != nil {
		return nil, err
	}
	capi := &countingAPI{Client: api}
	cl, err := s3crypto.New(capi, prov, func(o *s3crypto.Options) {
		o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
		if requireV3 {
			o.CommitmentPolicy = envelope.RequireEncryptRequireDecrypt
		}
	})
	if err != nil {
		return nil, setupErr(err)
	}
	return &readerClient{Client: cl, api: capi}, nil
}

// countingAPI is the S3 client with the bodies of one object's GETs
// counted: progress in bytes actually received, which for a V2 or V3
// object moves while the ciphertext is spooled, before any plaintext.
type countingAPI struct {
	*s3.Client

	mu    sync.Mutex
	u     objectURI
	p     *progress
	total bool // the first counted response's length is the total
}

func (c *countingAPI) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := c.Client.GetObject(ctx, in, optFns...)
	if err != nil {
		return out, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p == nil || aws.ToString(in.Bucket) != c.u.Bucket || aws.ToString(in.Key) != c.u.Key {
		return out, nil
	}
	if c.total && out.ContentLength != nil {
		c.p.SetTotal(*out.ContentLength)
		c.total = false
	}
	out.Body = struct {
		io.Reader
		io.Closer
	}{countingReader{r: out.Body, p: c.p}, out.Body}
	return out, nil
}

// keyKind and wrapKind name the kind of a master key, and the kind of key
// a wrap algorithm takes.
func keyKind(k keyring.Keyring) string {
	switch k.(type) {
	case *keyring.AES:
		return "an AES"
	case *keyring.RSA:
		return "an RSA"
	case *keyring.KMS:
		return "a KMS"
	}
	return ""
}

func wrapKind(alg string) string {
	switch {
	case isKMS(alg):
		return "a KMS"
	case strings.HasPrefix(alg, "RSA"):
		return "an RSA"
	case strings.HasPrefix(alg, "AES"):
		return "an AES"
	}
	return ""
}
