package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/walk"
	"github.com/s3envelope/s3envelope/s3crypto"
)

func init() {
	register(&command{
		name:    "verify",
		summary: "authenticate every object under a bucket or prefix, writing no plaintext",
		usage:   "[flags] s3://bucket[/prefix] --key KEY [--desc D]...",
		help: `Verify walks a bucket or prefix and opens every object with the given master
keys, as a reader would: the data key is unwrapped and the whole body is
read through the decryption and authenticated (a V2 or V3 object's tag, a
segmented object's every segment), then discarded — no plaintext is written
anywhere. It reports each object that does not open, and why:
  authentication failed              the body, tag or envelope was changed, or
                                     S3 refused an SSE-C object's recorded key
  no master key for its description  none of the --key flags is the object's
  not encrypted                      the object has no envelope
  policy (legacy)                    a format or algorithm the flags do not allow
                                     (V2 with --require-v3, a legacy wrap without
                                     --legacy-wraps, V1, which cannot be authenticated)
  other                              anything else (S3 errors, a malformed envelope)
Instruction files (<key>.instruction) and SSE-C companions (<key>.ssec) are
checked with their objects, not on their own.

An object that is not encrypted is a failure, as in a bucket that should
hold only encrypted objects; --allow-unencrypted counts them apart instead.

With --resume FILE the walk's checkpoint is kept in FILE as it advances (and
written on Ctrl-C); a later run with the same --resume continues after it,
checking the objects that failed first. The file is removed once a walk
completes with every object opened.

With --sse-c the objects are managed SSE-C objects: S3 decrypts each with
its recorded data key (an https endpoint is required), and the body is read
to the end.

Progress (objects and bytes verified, rate) goes to stderr, with each
failure on a line of its own; the summary to stdout (--json: as JSON, with
every failure). Exit status 0 when every object opened, 1 when any did not
or the walk was interrupted, 2 for bad usage or setup.

Examples:
  # everything under data/, with this year's and last year's keys
  s3envelope verify s3://my-bucket/data/ --key new.key --desc kid=2026 \
      --key old.key --desc kid=2025

  # a large bucket: resumable, 16 objects at a time, a JSON report
  s3envelope verify s3://my-bucket --key kms:alias/data --concurrency 16 \
      --resume verify.checkpoint --json > report.json

  # managed SSE-C objects
  s3envelope verify --sse-c s3://my-bucket --key new.key --desc kid=2026`,
		register: func(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
			o := &verifyFlags{}
			o.keys.register(fs, "a master key to open objects with")
			fs.StringVar(&o.resume, "resume", "", "checkpoint `file`: continue from it if it exists, and keep it up to date")
			fs.BoolVar(&o.allowUnencrypted, "allow-unencrypted", false, "count objects that are not encrypted apart, not as failures")
			fs.BoolVar(&o.requireV3, "require-v3", false, "fail format V2 objects (policy): accept only key-committing formats")
			fs.BoolVar(&o.legacyWraps, "legacy-wraps", false, "accept data keys under legacy wrap algorithms (AESWrap, RSA-OAEP-SHA-256, kms)")
			fs.BoolVar(&o.sseC, "sse-c", false, "the objects are managed SSE-C objects (their keys in <key>.ssec)")
			fs.IntVar(&o.concurrency, "concurrency", 4, "objects verified at once (each V2 or V3 object holds up to 8 MiB of memory while it is checked)")
			fs.DurationVar(&o.objectTimeout, "object-timeout", 0, "give up on one object after this long (0: never; it is retried on resume)")
			fs.IntVar(&o.maxFailures, "max-failures", 0, "stop once more objects than this have failed (0: never)")
			return o.run
		},
	})
}

type verifyFlags struct {
	keys                                     keyFlags
	resume                                   string
	allowUnencrypted, requireV3, legacyWraps bool
	sseC                                     bool
	concurrency, maxFailures                 int
	objectTimeout                            time.Duration
}

// objectGetter is what *s3crypto.Client and *s3crypto.SSECClient share for
// a read.
type objectGetter interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// verifyCheckpoint is verify's --resume file. Its "command" field keeps it
// apart from a rewrap checkpoint: each command refuses the other's.
type verifyCheckpoint struct {
	Command string   `json:"command"`
	Bucket  string   `json:"bucket"`
	Prefix  string   `json:"prefix,omitempty"`
	After   string   `json:"after,omitempty"`
	Retry   []string `json:"retry,omitempty"`
}

// verifyStatus is what verify found of one object that did not fail.
type verifyStatus int

const (
	verified verifyStatus = iota + 1
	notEncrypted
	envelopeObject
	gone
)

func (o *verifyFlags) run(ctx context.Context, g *globals, args []string) error {
	if len(args) != 1 {
		return usageErr("give one s3://bucket[/prefix] to verify")
	}
	target, err := parseURI(args[0], false)
	if err != nil {
		return err
	}
	switch {
	case o.concurrency < 1:
		return usageErr("--concurrency must be at least 1")
	case o.maxFailures < 0 || o.objectTimeout < 0:
		return usageErr("--max-failures and --object-timeout cannot be negative")
	}
	provider, _, err := o.keys.provider(ctx, g, forReading)
	if err != nil {
		return err
	}
	api, err := g.s3(ctx)
	if err != nil {
		return err
	}
	var client objectGetter
	if o.sseC {
		client, err = s3crypto.NewSSEC(api, provider)
		if err != nil {
			return sseCSetupErr(g, err)
		}
	} else {
		client, err = s3crypto.New(api, provider, func(so *s3crypto.Options) {
			so.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
			if o.requireV3 {
				so.CommitmentPolicy = envelope.RequireEncryptRequireDecrypt
			}
			so.EnableLegacyWrappingAlgorithms = o.legacyWraps
		})
		if err != nil {
			return setupErr(err)
		}
	}

	v := &verifier{flags: o, g: g, target: target, client: client}
	cfg := &walk.Config[verifyResult]{
		List: func(ctx context.Context, in *s3.ListObjectsV2Input) (*s3.ListObjectsV2Output, error) {
			return api.ListObjectsV2(ctx, in)
		},
		Bucket:        aws.String(target.Bucket),
		Prefix:        aws.String(target.Key),
		Concurrency:   o.concurrency,
		ObjectTimeout: o.objectTimeout,
		Do:            v.verify,
		Finished:      v.finished,
	}
	var cpFile *checkpointFile
	checkpoint := func(cp walk.Checkpoint) verifyCheckpoint {
		return verifyCheckpoint{Command: "verify", Bucket: target.Bucket, Prefix: target.Key, After: cp.After, Retry: cp.Retry}
	}
	if o.resume != "" {
		cpFile = newCheckpointFile(o.resume)
		var cp verifyCheckpoint
		found, err := cpFile.load(&cp)
		if err != nil {
			return err
		}
		if found {
			if cp.Command != "verify" {
				return setupErr(fmt.Errorf("--resume %s is not a verify checkpoint", o.resume))
			}
			if cp.Bucket != target.Bucket || cp.Prefix != target.Key {
				return setupErr(fmt.Errorf("--resume %s is the checkpoint of s3://%s/%s, not of %s", o.resume, cp.Bucket, cp.Prefix, target))
			}
			cfg.Resume = walk.Checkpoint{After: cp.After, Retry: cp.Retry}
			if !g.quiet {
				fmt.Fprintf(g.con.stderr, "resuming from %s: after %q, %d object(s) to retry\n", o.resume, cp.After, len(cp.Retry))
			}
		}
		cfg.Checkpointed = func(cp walk.Checkpoint) { cpFile.save(checkpoint(cp)) }
	}

	v.prog = g.newProgress("verify", target.String(), "bytes", -1)
	v.start = time.Now()
	res, walkErr := walk.Run(ctx, cfg)
	v.prog.Finish()
	if cpFile != nil {
		if res.Complete && v.sum.Failed == 0 {
			err = cpFile.remove()
		} else {
			err = cpFile.flush(checkpoint(res.Checkpoint))
		}
		if err != nil {
			return err
		}
	}
	sum := &v.sum
	sum.Target, sum.Complete = target.String(), res.Complete
	sum.elapsed = time.Since(v.start)
	sum.ElapsedSeconds = seconds(sum.elapsed)
	if sum.Failures == nil {
		sum.Failures = []objectFailure{}
	}
	if !res.Complete || sum.Failed > 0 {
		cp := checkpoint(res.Checkpoint)
		sum.Checkpoint = &cp
	}
	if g.json {
		if err := g.emit(sum); err != nil {
			return err
		}
	} else {
		sum.print(g.con.stdout)
	}
	var le *walk.ListError
	switch {
	case errors.Is(walkErr, context.Canceled):
		if o.resume != "" {
			return fmt.Errorf("interrupted; run again with --resume %s to continue", o.resume)
		}
		return fmt.Errorf("interrupted; %s", resumeHint(""))
	case errors.As(walkErr, &le):
		return fmt.Errorf("listing %s: %s; %s", target, oneLine(le.Err), resumeHint(o.resume))
	case walkErr != nil:
		return fmt.Errorf("%s; %s", oneLine(walkErr), resumeHint(o.resume))
	case sum.Failed > 0:
		return fmt.Errorf("%d object(s) did not open; %s", sum.Failed, resumeHint(o.resume))
	}
	return nil
}

// verifier is one verify walk.
type verifier struct {
	flags  *verifyFlags
	g      *globals
	target objectURI
	client objectGetter
	prog   *progress
	start  time.Time

	sum verifySummary // owned by the walk's goroutine (finished)
}

type verifyResult struct {
	status verifyStatus
	bytes  int64
}

// verify opens one object and reads it to the end into io.Discard: every
// byte passes the authentication, none is kept.
func (v *verifier) verify(ctx context.Context, key string) (verifyResult, error) {
	out, err := v.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(v.target.Bucket), Key: aws.String(key)})
	if err == nil {
		var n int64
		n, err = io.Copy(countingWriter{w: io.Discard, p: v.prog}, out.Body)
		if cerr := out.Body.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			return verifyResult{status: verified, bytes: n}, nil
		}
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	switch {
	case errors.As(err, &nsk) || errors.As(err, &nf):
		return verifyResult{status: gone}, nil
	case errors.Is(err, envelope.ErrNoEnvelope) && isEnvelopeObjectName(key):
		// An instruction file or companion: it was checked with its object.
		return verifyResult{status: envelopeObject}, nil
	case errors.Is(err, envelope.ErrNoEnvelope) && v.flags.allowUnencrypted:
		return verifyResult{status: notEncrypted}, nil
	}
	return verifyResult{}, err
}

// isEnvelopeObjectName says whether key names another object's envelope:
// an instruction file or an SSE-C companion.
func isEnvelopeObjectName(key string) bool {
	return strings.HasSuffix(key, format.InstructionSuffix) || strings.HasSuffix(key, format.CompanionSuffix)
}

// finished counts one object and reports a failure; it runs on the walk's
// goroutine.
func (v *verifier) finished(r walk.Result[verifyResult]) (failed bool, stop error) {
	s := &v.sum
	s.Objects++
	defer func() { v.prog.SetDetail(fmt.Sprintf("objects=%d failed=%d", s.Objects, s.Failed)) }()
	if r.Err != nil {
		f := newObjectFailure(r.Key, r.Err)
		s.Failed++
		s.Failures = append(s.Failures, f)
		v.prog.Printf("%s", failureLine(v.target.Bucket, f))
		if m := v.flags.maxFailures; m > 0 && s.Failed > m {
			stop = fmt.Errorf("stopped: %d objects failed, more than --max-failures %d", s.Failed, m)
		}
		return true, stop
	}
	switch r.Value.status {
	case verified:
		s.Verified++
		s.Bytes += r.Value.bytes
	case notEncrypted:
		s.NotEncrypted++
	case envelopeObject:
		s.EnvelopeObjects++
	case gone:
		s.Gone++
	}
	return false, nil
}

// verifySummary is what a verify found: printed, or emitted with --json.
type verifySummary struct {
	Target          string            `json:"target"`
	Objects         int               `json:"objects"`
	Verified        int               `json:"verified"`
	Bytes           int64             `json:"bytes"`
	NotEncrypted    int               `json:"notEncrypted"`
	EnvelopeObjects int               `json:"envelopeObjects"`
	Gone            int               `json:"gone"`
	Failed          int               `json:"failed"`
	Failures        []objectFailure   `json:"failures"`
	Complete        bool              `json:"complete"`
	Checkpoint      *verifyCheckpoint `json:"checkpoint,omitempty"`
	ElapsedSeconds  float64           `json:"elapsedSeconds"`
	elapsed         time.Duration
}

func (s *verifySummary) print(w io.Writer) {
	fmt.Fprintf(w, "%s: %d objects in %v\n", s.Target, s.Objects, s.elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  %-22s %d (%s of plaintext authenticated and discarded)\n", "verified", s.Verified, humanBytes(s.Bytes))
	summaryRow(w, "unencrypted, allowed", s.NotEncrypted)
	summaryRow(w, "envelope objects", s.EnvelopeObjects)
	summaryRow(w, "gone since listed", s.Gone)
	summaryRow(w, "failed", s.Failed)
	printFailures(w, s.Failures)
	switch {
	case s.Complete && s.Failed == 0:
		fmt.Fprintln(w, "complete: every object opened")
	case s.Complete:
		fmt.Fprintf(w, "walked to the end; %d object(s) did not open\n", s.Failed)
	default:
		fmt.Fprintf(w, "stopped after %q; %d object(s) to retry\n", s.Checkpoint.After, len(s.Checkpoint.Retry))
	}
}
