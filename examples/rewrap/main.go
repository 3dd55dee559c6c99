// Command rewrap rotates the master key of client-side encrypted S3 objects
// in place: it rewraps each object's data key under a new master key and
// rewrites only the envelope (the object's metadata, by a server-side copy,
// or its instruction file). Object bodies are never read or re-encrypted.
//
//	go run ./examples/rewrap -bucket B [-prefix P] [-endpoint URL] \
//	    -new-key new.key -new-desc kid=2026 \
//	    -old-key old.key -old-desc kid=2025 [-old-key old-rsa.pem -old-desc kid=rsa-2025] \
//	    [-concurrency 8] [-dry-run] [-resume rewrap.checkpoint] [-sse-c [-rekey]]
//
// Key sources (-new-key, -old-key; -old-key may be repeated, each with its
// -old-desc in the same order):
//   - a file holding an AES key (16, 24 or 32 bytes): hex, base64 or raw
//     (read by keyring.ParseAES, which says what it wants of a file it
//     refuses);
//   - a PEM file holding an RSA private key (PKCS #1 or PKCS #8), or, for
//     -new-key only, an RSA public key (PKIX or PKCS #1; the objects can then
//     be read only by the private key's holder: the rewrap cannot verify them
//     by unwrapping), read by keyring.ParseRSA;
//   - kms:<key ID, ARN or alias> for a KMS key (-kms-endpoint for a
//     KMS-compatible server). A KMS key takes no description: objects store
//     their encryption context, which a rewrap keeps. From one KMS key to
//     another, -re-encrypt says when KMS ReEncrypt moves the data key
//     without it leaving KMS (see s3crypto.RewrapInput.ReEncrypt).
//
// A description (-new-desc, -old-desc) is the JSON object stored with every
// object ({"kid":"2026"}) or the same as k=v[,k=v...]; it is how readers find
// the master key.
//
// Credentials and region come from the usual AWS environment and config
// files. With -resume FILE, the walk's checkpoint is saved to FILE as it
// advances (and on Ctrl-C); a later run with the same -resume continues where
// it stopped, retrying the objects that failed. The file is removed once a
// walk completes without failures. Progress goes to stderr (one updating line
// on a terminal), the summary to stdout. The exit status is 0 when every
// object was rewrapped (or needed nothing), 1 when anything failed or the walk
// was interrupted, 2 for bad usage.
//
// With -sse-c the objects are managed SSE-C objects (s3crypto.SSECClient):
// only their companions (<key>.ssec, counted with the instruction files as envelope objects) are
// rewritten, and with -rekey S3 also copies each object onto itself under a
// fresh data key, retiring the old one. The endpoint must be https.
//
// Read the limits in s3crypto.Client.Rewrap's documentation before running
// it on a versioned bucket (old versions keep their old envelopes) or on
// objects with ACLs (S3 does not copy them).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s3envelope/s3envelope/envelope"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// repeated is a flag that may be given more than once.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ", ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

type options struct {
	bucket, prefix, endpoint, region, kmsEndpoint string
	newKey, newDesc                               string
	oldKeys, oldDescs                             repeated
	concurrency, maxFailures                      int
	dryRun, enforce, requireV3, legacyWraps       bool
	sseC, rekey                                   bool
	resume, reEncrypt                             string
	objectTimeout, progressEvery                  time.Duration
}

// errUsage marks a usage error (exit status 2).
var errUsage = errors.New("usage")

// run is the program: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("rewrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bucket, "bucket", "", "bucket to walk (required)")
	fs.StringVar(&o.prefix, "prefix", "", "only keys that start with this")
	fs.StringVar(&o.endpoint, "endpoint", "", "S3-compatible endpoint URL (path-style addressing); default: AWS")
	fs.StringVar(&o.region, "region", "", "region (default: from the AWS config, else us-east-1)")
	fs.StringVar(&o.kmsEndpoint, "kms-endpoint", "", "KMS-compatible endpoint URL for kms: keys; default: AWS")
	fs.StringVar(&o.newKey, "new-key", "", "the new master key: AES key file (hex, base64 or raw), RSA PEM file, or kms:<key-id> (required)")
	fs.StringVar(&o.newDesc, "new-desc", "", `the new key's description: {"kid":"2026"} or kid=2026 (required but for kms:)`)
	fs.Var(&o.oldKeys, "old-key", "an old master key, as -new-key (repeatable)")
	fs.Var(&o.oldDescs, "old-desc", "the description of the -old-key in the same position, kms: keys not counted (repeatable)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "objects rewrapped at once")
	fs.BoolVar(&o.dryRun, "dry-run", false, "read, rewrap and verify every envelope, but write nothing")
	fs.BoolVar(&o.enforce, "enforce-rotation", true, "refuse a new envelope that an old key can still unwrap")
	fs.BoolVar(&o.requireV3, "require-v3", false, "refuse format V2 objects (default: rewrap V2 and V3, keeping each format)")
	fs.BoolVar(&o.legacyWraps, "legacy-wraps", false, "also rewrap data keys under legacy wrap algorithms (AESWrap, RSA-OAEP-SHA-256, kms), upgrading them")
	fs.BoolVar(&o.sseC, "sse-c", false, "the objects are managed SSE-C objects: rewrap their companions (<key>.ssec)")
	fs.BoolVar(&o.rekey, "rekey", false, "with -sse-c: also copy each object onto itself under a fresh data key, retiring the old one")
	fs.StringVar(&o.reEncrypt, "re-encrypt", "auto", "KMS → KMS by KMS ReEncrypt (the data key stays in KMS): auto (V2 objects and SSE-C companions), always (V3 and segmented too: their key commitment is then not checked at rewrap time), never")
	fs.StringVar(&o.resume, "resume", "", "checkpoint `file`: continue from it if it exists, and keep it up to date")
	fs.DurationVar(&o.objectTimeout, "object-timeout", 2*time.Minute, "give up on one object after this long (it is retried on resume)")
	fs.IntVar(&o.maxFailures, "max-failures", 0, "stop once more objects than this have failed (0: never)")
	fs.DurationVar(&o.progressEvery, "progress-every", 10*time.Second, "how often to print a progress line when stderr is not a terminal")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	err := rewrap(ctx, o, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "rewrap: %v\n", err)
		fs.Usage()
		return 2
	}
	fmt.Fprintf(stderr, "rewrap: %v\n", err)
	return 1
}

func rewrap(ctx context.Context, o options, stdout, stderr io.Writer) error {
	switch {
	case blank(o.bucket) || blank(o.newKey):
		return fmt.Errorf("%w: -bucket and -new-key are required", errUsage)
	case nonKMS(o.oldKeys) != len(o.oldDescs):
		return fmt.Errorf("%w: give one -old-desc per -old-key that is not kms:, in the same order", errUsage)
	case o.concurrency < 1:
		return fmt.Errorf("%w: -concurrency must be at least 1", errUsage)
	case o.dryRun && o.resume != "":
		return fmt.Errorf("%w: -dry-run writes no checkpoint; drop -resume", errUsage)
	case o.rekey && !o.sseC:
		return fmt.Errorf("%w: -rekey is for SSE-C objects (-sse-c); a client-side object's data key is replaced by reading and writing it", errUsage)
	}
	reEncrypt, ok := map[string]*bool{"auto": nil, "always": aws.Bool(true), "never": aws.Bool(false)}[o.reEncrypt]
	if !ok {
		return fmt.Errorf("%w: -re-encrypt is auto, always or never, not %.20q", errUsage, o.reEncrypt)
	}
	awsCfg, err := loadAWS(ctx, o.region)
	if err != nil {
		return err
	}
	var kmsClient *kms.Client
	kmsFor := func() *kms.Client {
		if kmsClient == nil {
			kmsClient = kms.NewFromConfig(awsCfg, func(ko *kms.Options) {
				if o.kmsEndpoint != "" {
					ko.BaseEndpoint = aws.String(o.kmsEndpoint)
				}
			})
		}
		return kmsClient
	}
	current, err := loadKey(o.newKey, o.newDesc, true, kmsFor)
	if err != nil {
		return fmt.Errorf("-new-key: %w", err)
	}
	var olds []keyring.Keyring
	descs := o.oldDescs
	for _, spec := range o.oldKeys {
		desc := ""
		if !strings.HasPrefix(spec, "kms:") {
			desc, descs = descs[0], descs[1:]
		}
		k, err := loadKey(spec, desc, false, kmsFor)
		if err != nil {
			return fmt.Errorf("-old-key %s: %w", spec, err)
		}
		olds = append(olds, k)
	}

	api := s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		if o.endpoint != "" {
			so.BaseEndpoint = aws.String(o.endpoint)
			so.UsePathStyle = true
		}
	})
	provider := materials.NewProvider(current, olds...)
	// Both kinds of client rewrap a bucket the same way.
	var client interface {
		RewrapAll(context.Context, *s3crypto.RewrapAllInput, ...func(*s3.Options)) (*s3crypto.RewrapAllOutput, error)
	}
	if o.sseC {
		client, err = s3crypto.NewSSEC(api, provider)
	} else {
		client, err = s3crypto.New(api, provider, func(so *s3crypto.Options) {
			so.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
			if o.requireV3 {
				so.CommitmentPolicy = envelope.RequireEncryptRequireDecrypt
			}
			so.EnableLegacyWrappingAlgorithms = o.legacyWraps
		})
	}
	if err != nil {
		return err
	}

	in := &s3crypto.RewrapAllInput{
		Bucket:          aws.String(o.bucket),
		Prefix:          aws.String(o.prefix),
		Concurrency:     o.concurrency,
		DryRun:          o.dryRun,
		EnforceRotation: o.enforce,
		Rekey:           o.rekey,
		ReEncrypt:       reEncrypt,
		ObjectTimeout:   o.objectTimeout,
		MaxFailures:     o.maxFailures,
	}
	var saver *checkpointSaver
	if o.resume != "" {
		cp, err := readCheckpoint(o.resume)
		if err != nil {
			return err
		}
		if cp != nil {
			in.Resume = cp
			fmt.Fprintf(stderr, "resuming from %s: after %q, %d object(s) to retry\n", o.resume, cp.After, len(cp.Retry))
		}
		saver = &checkpointSaver{path: o.resume, every: time.Second}
		in.OnCheckpoint = saver.save
	}
	prog := newProgress(stderr, o.progressEvery)
	in.OnProgress = prog.update

	what := "rewrapping"
	if o.dryRun {
		what = "dry run: checking"
	}
	fmt.Fprintf(stderr, "%s s3://%s/%s to master key %s (concurrency %d)\n", what, o.bucket, o.prefix, describe(current), o.concurrency)
	out, walkErr := client.RewrapAll(ctx, in)
	prog.done()
	if out == nil {
		return walkErr
	}
	if saver != nil {
		if out.Complete && out.Failed == 0 {
			if err := saver.remove(); err != nil {
				return err
			}
		} else if err := saver.flush(out.Checkpoint); err != nil {
			return err
		}
	}
	summarize(stdout, o, out, prog.elapsed())
	switch {
	case walkErr != nil && errors.Is(walkErr, context.Canceled):
		return fmt.Errorf("interrupted; %s", resumeHint(o))
	case walkErr != nil:
		return fmt.Errorf("%w; %s", walkErr, resumeHint(o))
	case out.Failed > 0:
		return fmt.Errorf("%d object(s) failed; %s", out.Failed, resumeHint(o))
	}
	return nil
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// nonKMS counts the key sources that need a description.
func nonKMS(specs []string) int {
	n := 0
	for _, s := range specs {
		if !strings.HasPrefix(s, "kms:") {
			n++
		}
	}
	return n
}

func resumeHint(o options) string {
	if o.resume == "" {
		return "run again to retry (objects already rewrapped are skipped after one read), or use -resume FILE"
	}
	return "run again with -resume " + o.resume + " to continue and retry the failures"
}

func loadAWS(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return cfg, nil
}

// loadKey builds a master key from a key source and a description.
func loadKey(spec, desc string, isNew bool, kmsFor func() *kms.Client) (keyring.Keyring, error) {
	if id, ok := strings.CutPrefix(spec, "kms:"); ok {
		if id == "" {
			return nil, fmt.Errorf("%w: kms: needs a key ID, ARN or alias", errUsage)
		}
		return keyring.NewKMS(kmsFor(), id)
	}
	d, err := parseDesc(desc)
	if err != nil {
		return nil, err
	}
	if len(d) == 0 {
		return nil, fmt.Errorf("%w: a description is required (readers find the key by it)", errUsage)
	}
	b, err := os.ReadFile(spec)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	// Anything PEM-like goes to ParseRSA, whose error then says what is
	// wrong with the PEM; a raw AES key holds "-----BEGIN" with probability
	// under 2^-75.
	if !bytes.Contains(b, []byte("-----BEGIN")) {
		k, err := keyring.ParseAES(b, d)
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	k, err := keyring.ParseRSA(b, d)
	if err != nil {
		return nil, err
	}
	if !isNew && wrapOnly(k) {
		return nil, errors.New("an old key must be able to unwrap: give the RSA private key")
	}
	return k, nil
}

// wrapOnly reports whether k can only wrap (an RSA public key): such a key's
// Unwrap fails with envelope.ErrWrapOnly whatever it is given.
func wrapOnly(k keyring.Keyring) bool {
	_, err := k.Unwrap(context.Background(), nil, "")
	return errors.Is(err, envelope.ErrWrapOnly)
}

// parseDesc reads {"k":"v",...} or k=v[,k=v...].
func parseDesc(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(s, "{") {
		var d map[string]string
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			return nil, fmt.Errorf("%w: description %s: %v", errUsage, s, err)
		}
		return d, nil
	}
	d := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%w: description %q: want k=v[,k=v...] or a JSON object", errUsage, s)
		}
		d[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return d, nil
}

func describe(k keyring.Keyring) string {
	if km, ok := k.(*keyring.KMS); ok {
		return "kms:" + km.KeyID()
	}
	b, err := json.Marshal(k.Description()) // keys sorted
	if err != nil {
		return fmt.Sprint(k.Description())
	}
	return string(b)
}

func readCheckpoint(path string) (*s3crypto.RewrapCheckpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cp s3crypto.RewrapCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return &cp, nil
}

// checkpointSaver writes the checkpoint to a file, atomically (a temporary
// file renamed over it), at most once per interval; flush writes the last.
type checkpointSaver struct {
	path  string
	every time.Duration
	last  time.Time
	err   error
}

func (s *checkpointSaver) save(cp s3crypto.RewrapCheckpoint) {
	if time.Since(s.last) < s.every {
		return
	}
	s.last = time.Now()
	if err := s.write(cp); err != nil && s.err == nil {
		s.err = err
	}
}

func (s *checkpointSaver) flush(cp s3crypto.RewrapCheckpoint) error {
	if err := s.write(cp); err != nil {
		return err
	}
	return s.err
}

func (s *checkpointSaver) remove() error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return s.err
}

func (s *checkpointSaver) write(cp s3crypto.RewrapCheckpoint) error {
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving the checkpoint: %w", err)
	}
	return nil
}

// progress prints progress to stderr: one line rewritten in place (\r) on a
// terminal, at most ten times a second; plain lines every interval
// otherwise. Failures are printed as they happen (the first 20).
type progress struct {
	w        io.Writer
	tty      bool
	every    time.Duration
	start    time.Time
	mu       sync.Mutex
	last     time.Time
	latest   s3crypto.RewrapProgress
	shown    int  // Done() of the last line printed
	printed  bool // a terminal line is showing, not yet ended
	failures int
}

func newProgress(w io.Writer, every time.Duration) *progress {
	p := &progress{w: w, every: every, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
			p.every = 100 * time.Millisecond
		}
	}
	return p
}

func (p *progress) update(pr s3crypto.RewrapProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latest = pr
	if pr.Err != nil {
		p.failures++
		if p.failures <= 20 {
			p.clearLine()
			fmt.Fprintf(p.w, "FAILED %s: %v\n", pr.Key, pr.Err)
		}
	}
	if time.Since(p.last) < p.every {
		return
	}
	p.last = time.Now()
	p.print()
}

func (p *progress) clearLine() {
	if p.tty && p.printed {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.printed = false
	}
}

func (p *progress) print() {
	pr := p.latest
	p.shown = pr.Done()
	line := fmt.Sprintf("listed %d%s · done %d: %d rewrapped, %d current, %d not encrypted, %d envelope objects, %d gone, %d failed · %.0f objects/s",
		pr.Listed, map[bool]string{true: " (all)", false: ""}[pr.ListingDone], pr.Done(),
		pr.Rewrapped, pr.AlreadyCurrent, pr.NotEncrypted, pr.EnvelopeObjects, pr.Gone, pr.Failed,
		float64(pr.Done())/max(time.Since(p.start).Seconds(), 1e-3))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.printed = true
		return
	}
	fmt.Fprintf(p.w, "progress: %s\n", line)
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.latest.Done() != p.shown {
		p.print()
	}
	if p.tty && p.printed {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) elapsed() time.Duration { return time.Since(p.start) }

func summarize(w io.Writer, o options, out *s3crypto.RewrapAllOutput, took time.Duration) {
	verb := "rewrapped"
	if o.dryRun {
		verb = "to rewrap (dry run)"
	}
	fmt.Fprintf(w, "s3://%s/%s: %d objects in %v\n", o.bucket, o.prefix, out.Done(), took.Round(time.Millisecond))
	fmt.Fprintf(w, "  %-22s %d\n", verb, out.Rewrapped)
	fmt.Fprintf(w, "  %-22s %d\n", "already current", out.AlreadyCurrent)
	fmt.Fprintf(w, "  %-22s %d\n", "not encrypted", out.NotEncrypted)
	fmt.Fprintf(w, "  %-22s %d\n", "envelope objects", out.EnvelopeObjects)
	fmt.Fprintf(w, "  %-22s %d\n", "gone since listed", out.Gone)
	fmt.Fprintf(w, "  %-22s %d\n", "failed", out.Failed)
	for i, f := range out.Failures {
		if i == 100 {
			fmt.Fprintf(w, "  ... and %d more failures\n", len(out.Failures)-100)
			break
		}
		fmt.Fprintf(w, "  FAILED %s: %v\n", f.Key, f.Err)
	}
	switch {
	case out.Complete && out.Failed == 0 && o.dryRun:
		fmt.Fprintf(w, "dry run complete: %d object(s) would be rewrapped; nothing was written\n", out.Rewrapped)
	case out.Complete && out.Failed == 0:
		fmt.Fprintln(w, "complete: every object is under the new master key or needed nothing")
	case out.Complete:
		fmt.Fprintf(w, "walked to the end; %d object(s) to retry\n", len(out.Checkpoint.Retry))
	default:
		fmt.Fprintf(w, "stopped after %q; %d object(s) to retry\n", out.Checkpoint.After, len(out.Checkpoint.Retry))
	}
}
