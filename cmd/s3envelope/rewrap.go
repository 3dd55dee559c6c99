package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

func init() {
	register(&command{
		name:    "rewrap",
		summary: "rotate the master key of every object under a bucket or prefix, in place",
		usage:   "[flags] s3://bucket[/prefix] --new-key KEY [--new-desc D] --old-key KEY [--old-desc D]...",
		help: `Rewrap rotates the master key of client-side encrypted objects in place:
each object's data key is unwrapped with an old master key, wrapped again
under the new one, checked (the new key unwraps it back to the same data
key), and only the envelope is rewritten — the object's metadata by a
server-side copy onto itself, or its instruction file. Object bodies are
never downloaded or re-encrypted. Objects already under the new key, objects
that are not encrypted and instruction files are left as they are.

Keys: --new-key is the master key to rotate to (an RSA public key is
enough: the objects can then be read only by the private key's holder);
--old-key, repeatable, the keys the objects are under now. Each AES or RSA
key needs its description (--new-desc, --old-desc in the same order as the
--old-key flags, kms: keys not counted): it is how readers find the key. A
KMS key takes none. From one KMS key to another, --re-encrypt says when KMS
ReEncrypt moves the data key without it leaving KMS.

With --resume FILE the walk's checkpoint is kept in FILE as it advances
(and written on Ctrl-C); a later run with the same --resume continues after
it, retrying the objects that failed first. The file is removed once a walk
completes without failures. --dry-run does everything but the writes.

At scale: --inventory s3://dest/.../manifest.json walks the objects an S3
Inventory report (CSV) of the bucket lists instead of listing the bucket;
the report's files are checked against its MD5s first. Objects written
after the report are not in it: run a walk without --inventory afterwards,
or use the next report. --shard i/N (0 <= i < N) takes the objects whose
key hashes to i (the first 8 bytes of its SHA-256 mod N), so N processes,
each with its own --shard and --resume file, split the bucket with no
coordination; without --inventory each of them lists everything and keeps
its share. A checkpoint resumes only the walk it is of (same bucket,
prefix, inventory and shard).

With --sse-c the objects are managed SSE-C objects (written by this tool's
or the library's SSE-C client): their companions (<key>.ssec) are rewrapped,
and with --rekey S3 also copies each object onto itself under a fresh data
key, retiring the old one. SSE-C needs an https endpoint.

Before rewrapping a versioned bucket (old versions keep their old envelopes)
or objects with ACLs (a copy does not keep them), read the limits in the
documentation of s3crypto.Client.Rewrap.

Progress goes to stderr, with each failed object on a line of its own; the
summary to stdout (--json: as JSON). Exit status 0 when every object was
rewrapped or needed nothing, 1 when an object failed or the walk was
interrupted, 2 for bad usage or setup.

Examples:
  # rotate everything under data/ from the 2025 AES key to the 2026 one
  s3envelope rewrap s3://my-bucket/data/ --new-key new.key --new-desc kid=2026 \
      --old-key old.key --old-desc kid=2025 --resume rotate.checkpoint

  # see what would be rewrapped, writing nothing
  s3envelope rewrap --dry-run s3://my-bucket --new-key new.key --new-desc kid=2026 \
      --old-key old.key --old-desc kid=2025

  # from an AES key to a KMS key
  s3envelope rewrap s3://my-bucket --new-key kms:alias/data \
      --old-key old.key --old-desc kid=2025

  # a quarter of a big bucket, from its inventory: run i/4 for i = 0..3
  s3envelope rewrap s3://my-bucket --new-key kms:alias/data --old-key old.key --old-desc kid=2025 \
      --inventory s3://my-inventories/my-bucket/daily/2026-12-01T01-00Z/manifest.json \
      --shard 2/4 --resume rotate-2.checkpoint

  # managed SSE-C objects: rewrap the companions and give every object a new data key
  s3envelope rewrap --sse-c --rekey s3://my-bucket --new-key new.key --new-desc kid=2026 \
      --old-key old.key --old-desc kid=2025`,
		register: func(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
			o := &rewrapFlags{}
			fs.StringVar(&o.newKey, "new-key", "", "the master `key` to rotate to: an AES or RSA key file (an RSA public key is enough), env:NAME or kms:ID")
			fs.StringVar(&o.newDesc, "new-desc", "", "the `description` of an AES or RSA --new-key: k=v[,k=v...] or a JSON object")
			fs.Var(&o.oldKeys, "old-key", "a master `key` the objects are under now, as --new-key (repeatable; an RSA key must be the private key)")
			fs.Var(&o.oldDescs, "old-desc", "the `description` of each AES or RSA --old-key, in the same order")
			fs.BoolVar(&o.dryRun, "dry-run", false, "read, rewrap and check every envelope, but write nothing")
			fs.StringVar(&o.resume, "resume", "", "checkpoint `file`: continue from it if it exists, and keep it up to date")
			fs.BoolVar(&o.enforce, "enforce-rotation", true, "refuse a new envelope that an old key can still unwrap")
			fs.BoolVar(&o.requireV3, "require-v3", false, "refuse format V2 objects (default: rewrap V2 and V3, each keeping its format)")
			fs.BoolVar(&o.legacyWraps, "legacy-wraps", false, "also rewrap data keys under legacy wrap algorithms (AESWrap, RSA-OAEP-SHA-256, kms), upgrading them")
			fs.BoolVar(&o.sseC, "sse-c", false, "the objects are managed SSE-C objects: rewrap their companions (<key>.ssec)")
			fs.BoolVar(&o.rekey, "rekey", false, "with --sse-c: also copy each object onto itself under a fresh data key, retiring the old one")
			fs.StringVar(&o.reEncrypt, "re-encrypt", "auto", "KMS to KMS by KMS ReEncrypt (the data key stays in KMS): auto (V2 objects and SSE-C companions), always (V3 and segmented too; their key commitment is then not checked at rewrap time), never")
			fs.IntVar(&o.concurrency, "concurrency", 8, "objects rewrapped at once")
			fs.DurationVar(&o.objectTimeout, "object-timeout", 2*time.Minute, "give up on one object after this long (it is retried on resume)")
			fs.IntVar(&o.maxFailures, "max-failures", 0, "stop once more objects than this have failed (0: never)")
			fs.StringVar(&o.inventory, "inventory", "", "walk the objects of an S3 Inventory report, s3://`bucket/key` of its manifest.json (CSV), instead of listing")
			fs.StringVar(&o.shard, "shard", "", "rewrap only shard `i/N` of the objects (0 <= i < N), by a hash of each key")
			return o.run
		},
	})
}

type rewrapFlags struct {
	newKey, newDesc                         string
	oldKeys, oldDescs                       repeated
	dryRun, enforce, requireV3, legacyWraps bool
	sseC, rekey                             bool
	resume, reEncrypt, inventory, shard     string
	concurrency, maxFailures                int
	objectTimeout                           time.Duration
}

// bucketRewrapper is what *s3crypto.Client and *s3crypto.SSECClient share
// for a rewrap.
type bucketRewrapper interface {
	RewrapAll(context.Context, *s3crypto.RewrapAllInput, ...func(*s3.Options)) (*s3crypto.RewrapAllOutput, error)
}

func (o *rewrapFlags) run(ctx context.Context, g *globals, args []string) error {
	if len(args) != 1 {
		return usageErr("give one s3://bucket[/prefix] to rewrap")
	}
	target, err := parseURI(args[0], false)
	if err != nil {
		return err
	}
	reEncrypt, ok := map[string]*bool{"auto": nil, "always": aws.Bool(true), "never": aws.Bool(false)}[o.reEncrypt]
	switch {
	case strings.TrimSpace(o.newKey) == "":
		return usageErr("give the master key to rotate to with --new-key (a key file, env:NAME or kms:ID)")
	case len(o.oldKeys) == 0:
		return usageErr("give the master keys the objects are under now with --old-key (repeatable)")
	case nonKMS(o.oldKeys) != len(o.oldDescs):
		return usageErr("give one --old-desc per --old-key that is not kms: (%d keys, %d descriptions), in the same order", nonKMS(o.oldKeys), len(o.oldDescs))
	case strings.HasPrefix(o.newKey, "kms:") && o.newDesc != "":
		return usageErr("a kms: --new-key takes no --new-desc: KMS objects keep their encryption context")
	case o.concurrency < 1:
		return usageErr("--concurrency must be at least 1")
	case o.maxFailures < 0 || o.objectTimeout < 0:
		return usageErr("--max-failures and --object-timeout cannot be negative")
	case o.dryRun && o.resume != "":
		return usageErr("--dry-run writes no checkpoint; drop --resume")
	case o.rekey && !o.sseC:
		return usageErr("--rekey is for SSE-C objects (--sse-c); a client-side object's data key is replaced by reading it and putting it again")
	case !ok:
		return usageErr("--re-encrypt is auto, always or never, not %.20q", o.reEncrypt)
	case o.inventory != "" && !strings.HasPrefix(o.inventory, "s3://"):
		return usageErr("--inventory is the s3://bucket/key of an inventory report's manifest.json, not %.80q", o.inventory)
	}
	shard, shards, err := parseShard(o.shard)
	if err != nil {
		return err
	}
	if shards == 1 {
		shards = 0 // one shard is the whole walk, and its checkpoint says so
	}

	current, err := loadKey(ctx, g, o.newKey, o.newDesc, forWriting)
	if err != nil {
		return setupErr(fmt.Errorf("--new-key %s: %w", o.newKey, err))
	}
	var olds []keyring.Keyring
	descs := o.oldDescs
	for _, spec := range o.oldKeys {
		desc := ""
		if !strings.HasPrefix(spec, "kms:") {
			desc, descs = descs[0], descs[1:]
		}
		k, err := loadKey(ctx, g, spec, desc, forReading)
		if err != nil {
			return setupErr(fmt.Errorf("--old-key %s: %w", spec, err))
		}
		olds = append(olds, k)
	}
	api, err := g.s3(ctx)
	if err != nil {
		return err
	}
	client, err := o.client(g, api, materials.NewProvider(current, olds...))
	if err != nil {
		return err
	}

	in := &s3crypto.RewrapAllInput{
		Bucket:          aws.String(target.Bucket),
		Prefix:          aws.String(target.Key),
		Concurrency:     o.concurrency,
		DryRun:          o.dryRun,
		EnforceRotation: o.enforce,
		Rekey:           o.rekey,
		ReEncrypt:       reEncrypt,
		ObjectTimeout:   o.objectTimeout,
		MaxFailures:     o.maxFailures,
		Shard:           shard,
		ShardCount:      shards,
	}
	if o.inventory != "" {
		in.Inventory = aws.String(o.inventory)
	}
	var cpFile *checkpointFile
	if o.resume != "" {
		cpFile = newCheckpointFile(o.resume)
		var cp s3crypto.RewrapCheckpoint
		found, err := cpFile.load(&cp)
		if err != nil {
			return err
		}
		if found {
			if cp.Bucket != target.Bucket || cp.Prefix != target.Key {
				return setupErr(fmt.Errorf("--resume %s is the checkpoint of s3://%s/%s, not of %s", o.resume, cp.Bucket, cp.Prefix, target))
			}
			if cp.Inventory != o.inventory || cp.Shard != shard || cp.ShardCount != shards {
				return setupErr(fmt.Errorf("--resume %s is the checkpoint of %s, not of %s", o.resume, walkOf(cp.Inventory, cp.Shard, cp.ShardCount), walkOf(o.inventory, shard, shards)))
			}
			in.Resume = &cp
			if !g.quiet {
				fmt.Fprintf(g.con.stderr, "resuming from %s: after %q, %d object(s) to retry\n", o.resume, cp.After, len(cp.Retry))
			}
		}
		in.OnCheckpoint = func(cp s3crypto.RewrapCheckpoint) { cpFile.save(cp) }
	}

	prog := g.newProgress("rewrap", target.String(), "objects", -1)
	in.OnProgress = func(p s3crypto.RewrapProgress) {
		if p.Err != nil {
			prog.Printf("%s", failureLine(target.Bucket, newObjectFailure(p.Key, p.Err)))
		}
		if p.ListingDone {
			prog.SetTotal(int64(p.Listed))
		}
		prog.Set(int64(p.Done()), fmt.Sprintf("rewrapped=%d current=%d failed=%d", p.Rewrapped, p.AlreadyCurrent, p.Failed))
	}
	if !g.quiet {
		what := "rewrapping"
		if o.dryRun {
			what = "dry run: checking"
		}
		var from string
		if o.inventory != "" {
			from += " from inventory " + o.inventory
		}
		if shards > 1 {
			from += fmt.Sprintf(", shard %d/%d", shard, shards)
		}
		fmt.Fprintf(g.con.stderr, "%s %s%s to master key %s (concurrency %d)\n", what, target, from, describeKey(current), o.concurrency)
	}
	start := time.Now()
	out, walkErr := client.RewrapAll(ctx, in)
	prog.Finish()
	if out == nil {
		// Nothing was walked: the checkpoint is of another walk, or the
		// inventory report is unusable.
		if errors.Is(walkErr, s3crypto.ErrCheckpointMismatch) {
			return setupErr(fmt.Errorf("--resume %s: %w", o.resume, walkErr))
		}
		return setupErr(walkErr)
	}
	if cpFile != nil {
		if out.Complete && out.Failed == 0 {
			err = cpFile.remove()
		} else {
			err = cpFile.flush(out.Checkpoint)
		}
		if err != nil {
			return err
		}
	}
	sum := newRewrapSummary(target, o.dryRun, out, time.Since(start))
	if g.json {
		if err := g.emit(sum); err != nil {
			return err
		}
	} else {
		sum.print(g.con.stdout)
	}
	switch {
	case errors.Is(walkErr, context.Canceled):
		if o.resume != "" {
			return fmt.Errorf("interrupted; run again with --resume %s to continue", o.resume)
		}
		return fmt.Errorf("interrupted; %s", resumeHint(""))
	case walkErr != nil:
		return fmt.Errorf("%s; %s", oneLine(walkErr), resumeHint(o.resume))
	case out.Failed > 0:
		return fmt.Errorf("%d object(s) failed; %s", out.Failed, resumeHint(o.resume))
	}
	return nil
}

// walkOf names a walk's source and shard, for an error.
func walkOf(inventory string, shard, shards int) string {
	s := "a listing"
	if inventory != "" {
		s = "inventory " + inventory
	}
	if shards > 1 {
		s += fmt.Sprintf(", shard %d/%d", shard, shards)
	}
	return s
}

// parseShard reads --shard i/N; empty is the whole walk (0, 0).
func parseShard(s string) (shard, shards int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	i, n, ok := strings.Cut(s, "/")
	shard, err1 := strconv.Atoi(i)
	shards, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || shards < 1 || shard < 0 || shard >= shards {
		return 0, 0, usageErr("--shard is i/N with 0 <= i < N (e.g. 0/4 … 3/4), not %.20q", s)
	}
	return shard, shards, nil
}

// client is the rewrapping client: SSE-C or client-side.
func (o *rewrapFlags) client(g *globals, api *s3.Client, p materials.Provider) (bucketRewrapper, error) {
	if o.sseC {
		c, err := s3crypto.NewSSEC(api, p)
		if err != nil {
			return nil, sseCSetupErr(g, err)
		}
		return c, nil
	}
	c, err := s3crypto.New(api, p, func(so *s3crypto.Options) {
		so.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
		if o.requireV3 {
			so.CommitmentPolicy = envelope.RequireEncryptRequireDecrypt
		}
		so.EnableLegacyWrappingAlgorithms = o.legacyWraps
	})
	if err != nil {
		return nil, setupErr(err)
	}
	return c, nil
}

// sseCSetupErr explains the library's refusal of an SSE-C client: a
// plain-HTTP endpoint would carry the object's key in clear text.
func sseCSetupErr(g *globals, err error) error {
	if errors.Is(err, s3crypto.ErrInsecureEndpoint) {
		return setupErr(fmt.Errorf("--sse-c needs an https endpoint, and %s is not: SSE-C sends each object's key with every request, so it travels only over HTTPS", g.endpointURL))
	}
	return setupErr(err)
}

// rewrapSummary is what a rewrap did: printed, or emitted with --json.
type rewrapSummary struct {
	Target          string                     `json:"target"`
	DryRun          bool                       `json:"dryRun,omitempty"`
	Objects         int                        `json:"objects"`
	Rewrapped       int                        `json:"rewrapped"`
	AlreadyCurrent  int                        `json:"alreadyCurrent"`
	NotEncrypted    int                        `json:"notEncrypted"`
	EnvelopeObjects int                        `json:"envelopeObjects"`
	Gone            int                        `json:"gone"`
	Failed          int                        `json:"failed"`
	Failures        []objectFailure            `json:"failures"`
	Complete        bool                       `json:"complete"`
	Checkpoint      *s3crypto.RewrapCheckpoint `json:"checkpoint,omitempty"`
	ElapsedSeconds  float64                    `json:"elapsedSeconds"`
	elapsed         time.Duration
}

func newRewrapSummary(target objectURI, dryRun bool, out *s3crypto.RewrapAllOutput, elapsed time.Duration) *rewrapSummary {
	s := &rewrapSummary{
		Target: target.String(), DryRun: dryRun, Objects: out.Done(),
		Rewrapped: out.Rewrapped, AlreadyCurrent: out.AlreadyCurrent, NotEncrypted: out.NotEncrypted,
		EnvelopeObjects: out.EnvelopeObjects, Gone: out.Gone, Failed: out.Failed,
		Failures: []objectFailure{}, Complete: out.Complete,
		ElapsedSeconds: seconds(elapsed), elapsed: elapsed,
	}
	for _, f := range out.Failures {
		s.Failures = append(s.Failures, newObjectFailure(f.Key, f))
	}
	if !out.Complete || out.Failed > 0 {
		cp := out.Checkpoint
		s.Checkpoint = &cp
	}
	return s
}

func (s *rewrapSummary) print(w io.Writer) {
	verb := "rewrapped"
	if s.DryRun {
		verb = "to rewrap (dry run)"
	}
	fmt.Fprintf(w, "%s: %d objects in %v\n", s.Target, s.Objects, s.elapsed.Round(time.Millisecond))
	summaryRow(w, verb, s.Rewrapped)
	summaryRow(w, "already current", s.AlreadyCurrent)
	summaryRow(w, "not encrypted", s.NotEncrypted)
	summaryRow(w, "envelope objects", s.EnvelopeObjects)
	summaryRow(w, "gone since listed", s.Gone)
	summaryRow(w, "failed", s.Failed)
	printFailures(w, s.Failures)
	switch {
	case s.Complete && s.Failed == 0 && s.DryRun:
		fmt.Fprintf(w, "dry run complete: %d object(s) would be rewrapped; nothing was written\n", s.Rewrapped)
	case s.Complete && s.Failed == 0:
		fmt.Fprintln(w, "complete: every object is under the new master key or needed nothing")
	case s.Complete:
		fmt.Fprintf(w, "walked to the end; %d object(s) to retry\n", len(s.Checkpoint.Retry))
	default:
		fmt.Fprintf(w, "stopped after %q; %d object(s) to retry\n", s.Checkpoint.After, len(s.Checkpoint.Retry))
	}
}
