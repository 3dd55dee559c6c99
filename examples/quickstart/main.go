// Command quickstart is a guided tour of s3envelope: client-side envelope
// encryption of S3 objects, compatible with AWS's S3 Encryption Clients.
//
//	go run ./examples/quickstart                      # in-process S3 server, no setup
//	go run ./examples/quickstart -endpoint http://127.0.0.1:7070 -bucket my-bucket
//
// With -endpoint, credentials and region come from the usual AWS environment
// variables and config files, and the bucket must already exist.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3envelope/s3envelope/internal/s3mem"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// config says where to store objects: an in-process server when Endpoint is empty.
type config struct {
	Endpoint, Bucket, Region string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.Endpoint, "endpoint", "", "S3-compatible endpoint URL (default: an in-process S3 server)")
	flag.StringVar(&cfg.Bucket, "bucket", "", "existing bucket to use with -endpoint")
	flag.StringVar(&cfg.Region, "region", "", "region for -endpoint (default: from the AWS config, else us-east-1)")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart FAILED:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, cfg config) error {
	say := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	raw, bucket, stop, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()
	where := "an in-process S3, internal/s3mem"
	if cfg.Endpoint != "" {
		where = "-endpoint"
	}
	say("== 1. S3 at %s (%s), bucket %q, keys under quickstart/", aws.ToString(raw.Options().BaseEndpoint), where, bucket)
	ob := objects{ctx, raw, bucket}

	say("== 2. Encrypt under the 2025 master key")
	key2025, err1 := newMasterKey("2025")
	key2026, err2 := newMasterKey("2026")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	// The client has *s3.Client's methods, so code that calls PutObject and
	// GetObject keeps working, and every body is sealed before it leaves.
	c2025, err := newClient(raw, []keyring.Keyring{key2025})
	if err != nil {
		return err
	}
	secret := bytes.Repeat([]byte("Q3 revenue 4.2M: confidential, do not share.\n"), 100)
	if err := ob.roundTrip(c2025, "report-2025.txt", fixed(secret)); err != nil {
		return err
	}
	say("   PUT+GET report-2025.txt: %d bytes, decrypted intact (format %s)", len(secret), c2025.Options().Format)
	// What S3 holds, read with the raw client: ciphertext plus the envelope.
	stored, meta, err := ob.rawGet("report-2025.txt")
	if err != nil {
		return err
	}
	const gcmTag = 16 // bytes
	if bytes.Contains(stored, []byte("confidential")) || len(stored) != len(secret)+gcmTag {
		return errors.New("the stored object is not the expected ciphertext")
	}
	say("   stored: %d bytes of ciphertext (plaintext + %d-byte GCM tag), no plaintext in it", len(stored), gcmTag)
	// The envelope package reads it without any S3 client.
	env, err := envelope.Decode(meta, nil)
	if err != nil {
		return err
	}
	fields, err := env.Metadata()
	if err != nil {
		return err
	}
	say("   envelope, in the object's user metadata (x-amz-meta-*):")
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		say("     %-7s = %-42s %s", k, abbrev(meta[k]), fieldNames[k])
	}
	// A body of unknown length (a pipe, a generator) is encrypted into a
	// spool first (memory, then a temp file), so the SDK can sign and retry it.
	const bigSize = 10 << 20
	generate := func() io.Reader { return io.LimitReader(mrand.NewChaCha8([32]byte{42}), bigSize) }
	if err := ob.roundTrip(c2025, "big.bin", generate); err != nil {
		return err
	}
	say("   PUT+GET big.bin: %d MiB streamed from a non-seekable generator, decrypted intact", bigSize>>20)

	say("== 3. Rotate to the 2026 master key")
	// New objects use the first (current) key; older objects are opened with
	// whichever key their stored description {"kid":...} names.
	rotating, err1 := newClient(raw, []keyring.Keyring{key2026, key2025})
	only2026, err2 := newClient(raw, []keyring.Keyring{key2026})
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if err := ob.readBack(rotating, "report-2025.txt", fixed(secret)); err != nil {
		return err
	}
	say("   client [2026 current + 2025]: reads report-2025.txt (key found by its description)")
	fresh := fixed([]byte("written after the rotation\n"))
	if err := ob.roundTrip(rotating, "report-2026.txt", fresh); err != nil {
		return err
	}
	if _, meta, err = ob.rawGet("report-2026.txt"); err != nil {
		return err
	}
	say("   client [2026 current + 2025]: writes report-2026.txt, stored description %s", meta["x-amz-m"])
	if err := ob.readBack(only2026, "report-2026.txt", fresh); err != nil {
		return err
	}
	err = ob.readBack(only2026, "report-2025.txt", fixed(secret))
	if !errors.Is(err, envelope.ErrNoMasterKey) {
		return fmt.Errorf("reading a 2025 object with only the 2026 key: want ErrNoMasterKey, got %v", err)
	}
	say("   client [2026 only]: reads report-2026.txt; report-2025.txt fails with ErrNoMasterKey:\n     %v", err)

	// Rotation proper: rewrap every object's data key under 2026. Only the
	// envelopes are rewritten (a server-side self-copy, or the instruction
	// file); no body byte is downloaded or re-encrypted.
	res, err := rotating.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Prefix: aws.String("quickstart/")})
	if err != nil {
		return err
	}
	if res.Failed != 0 || res.Rewrapped == 0 {
		return fmt.Errorf("RewrapAll: %d rewrapped, %d failed: %v", res.Rewrapped, res.Failed, res.Failures)
	}
	say("   RewrapAll quickstart/: %d rewrapped, %d already under 2026, %d failed", res.Rewrapped, res.AlreadyCurrent, res.Failed)
	if err := ob.readBack(only2026, "report-2025.txt", fixed(secret)); err != nil {
		return fmt.Errorf("after the rewrap, 2026 alone must read report-2025.txt: %w", err)
	}
	if _, meta, err = ob.rawGet("report-2025.txt"); err != nil {
		return err
	}
	say("   client [2026 only]: now reads report-2025.txt; its description is %s — the 2025 key can be retired", meta["x-amz-m"])

	say("== 4. Format V2 with an instruction file, for readers that predate V3")
	v2, err := newClient(raw, []keyring.Keyring{key2026}, func(o *s3crypto.Options) {
		o.Format = envelope.FormatV2
		o.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt // V2 has no key commitment
		o.InstructionFile = true                                // envelope in <key>.instruction
	})
	if err != nil {
		return err
	}
	if err := ob.roundTrip(v2, "v2.txt", fixed([]byte("for an older S3 Encryption Client\n"))); err != nil {
		return err
	}
	ins, _, err := ob.rawGet("v2.txt.instruction")
	if err != nil {
		return err
	}
	var insFields map[string]string
	if err := json.Unmarshal(ins, &insFields); err != nil {
		return err
	}
	say("   PUT+GET v2.txt (format %s): decrypted intact; envelope in v2.txt.instruction (%d bytes of JSON):\n     %s",
		v2.Options().Format, len(ins), strings.Join(slices.Sorted(maps.Keys(insFields)), ", "))

	say("== 5. The segmented format: authenticated ranges and random access")
	seg, err := newClient(raw, []keyring.Keyring{key2026}, func(o *s3crypto.Options) {
		o.Format = envelope.FormatSegmented // this library's own format; AWS's clients cannot read it
	})
	if err != nil {
		return err
	}
	if err := ob.roundTrip(seg, "segmented.bin", generate); err != nil {
		return err
	}
	want, err := io.ReadAll(generate())
	if err != nil {
		return err
	}
	const off, n = 5<<20 + 123, 1000
	out, err := seg.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("quickstart/segmented.bin"),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))})
	if err != nil {
		return err
	}
	part, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(part, want[off:off+n]) {
		return fmt.Errorf("ranged GET of segmented.bin: %v", err)
	}
	say("   PUT+GET segmented.bin (%d MiB in 64 KiB segments); Range bytes=%d-%d: %s, each segment authenticated",
		bigSize>>20, off, off+n-1, aws.ToString(out.ContentRange))
	ra, err := seg.NewReaderAt(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("quickstart/segmented.bin")})
	if err != nil {
		return err
	}
	tail := make([]byte, 16)
	if _, err := ra.ReadAt(tail, ra.Size()-16); err != nil || !bytes.Equal(tail, want[len(want)-16:]) {
		return fmt.Errorf("ReadAt of segmented.bin: %v", err)
	}
	say("   NewReaderAt: Size %d (authenticated by the final segment), last 16 bytes read intact", ra.Size())

	// The encrypting client's DeleteObject also removes instruction files.
	for _, k := range []string{"report-2025.txt", "big.bin", "report-2026.txt", "v2.txt", "segmented.bin"} {
		if _, err := v2.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("quickstart/" + k)}); err != nil {
			return err
		}
	}
	say("== OK: every check passed; the example objects were deleted")
	return nil
}

// connect returns a plain *s3.Client for cfg, a bucket, and a cleanup func.
func connect(ctx context.Context, cfg config) (*s3.Client, string, func(), error) {
	if cfg.Endpoint != "" {
		if cfg.Bucket == "" {
			return nil, "", nil, errors.New("-bucket is required with -endpoint")
		}
		var opts []func(*awsconfig.LoadOptions) error
		if cfg.Region != "" {
			opts = append(opts, awsconfig.WithRegion(cfg.Region))
		}
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, "", nil, err
		}
		if awsCfg.Region == "" {
			awsCfg.Region = "us-east-1"
		}
		client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true // most S3-compatible servers have no per-bucket host names
		})
		return client, cfg.Bucket, func() {}, nil
	}
	// The library's in-memory S3: a real *s3.Client whose requests are
	// served in this process, nothing dialled.
	srv := s3mem.New()
	bucket := "quickstart"
	srv.CreateBucket(bucket)
	return srv.Client(), bucket, func() {}, nil
}

// newClient returns an encrypting client over raw whose provider holds
// keys: the first wraps new objects, and every one reads the objects whose
// description names it.
func newClient(raw *s3.Client, keys []keyring.Keyring, opts ...func(*s3crypto.Options)) (*s3crypto.Client, error) {
	p := materials.NewProvider(keys[0], keys[1:]...)
	return s3crypto.New(raw, p, opts...)
}

// newMasterKey makes a random AES-256 master key. Its description is stored
// with every object it wraps and is how a reader finds the key again. In
// production the key bytes come from a vault or a file (keyring.ParseAES),
// never from the code.
func newMasterKey(kid string) (*keyring.AES, error) {
	b := make([]byte, 32)
	rand.Read(b)
	return keyring.NewAES(b, map[string]string{"kid": kid})
}

// objects does the plumbing for keys under quickstart/ in one bucket.
type objects struct {
	ctx    context.Context
	raw    *s3.Client
	bucket string
}

// roundTrip PUTs body() through c, then GETs it back and compares.
func (o objects) roundTrip(c *s3crypto.Client, name string, body func() io.Reader) error {
	key := "quickstart/" + name
	if _, err := c.PutObject(o.ctx, &s3.PutObjectInput{Bucket: &o.bucket, Key: &key, Body: body()}); err != nil {
		return err // s3crypto's errors name the object
	}
	return o.readBack(c, name, body)
}

// readBack GETs an object through c and checks that it decrypts to want().
func (o objects) readBack(c *s3crypto.Client, name string, want func() io.Reader) error {
	out, err := c.GetObject(o.ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: aws.String("quickstart/" + name)})
	if err != nil {
		return err
	}
	defer out.Body.Close() // releases the spool that held the ciphertext
	got, exp := sha256.New(), sha256.New()
	_, err1 := io.Copy(got, out.Body)
	_, err2 := io.Copy(exp, want())
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if !bytes.Equal(got.Sum(nil), exp.Sum(nil)) {
		return fmt.Errorf("%s: decrypted bytes differ from what was written", name)
	}
	return nil
}

// rawGet reads what S3 actually stores, without decrypting.
func (o objects) rawGet(name string) ([]byte, map[string]string, error) {
	out, err := o.raw.GetObject(o.ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: aws.String("quickstart/" + name)})
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out.Metadata, err
}

func fixed(b []byte) func() io.Reader { return func() io.Reader { return bytes.NewReader(b) } }

func abbrev(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// fieldNames explains the V3 envelope's terse metadata keys.
var fieldNames = map[string]string{
	"x-amz-c": "content cipher: 115 = AES-256-GCM, key-committing",
	"x-amz-3": "the data key, wrapped by the master key",
	"x-amz-w": "wrap algorithm: 02 = AES/GCM",
	"x-amz-m": "master key description",
	"x-amz-d": "key commitment",
	"x-amz-i": "message ID",
}
