package s3crypto

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/internal/inventory"
	"github.com/s3envelope/s3envelope/internal/walk"
)

// ErrTooManyFailures is returned by RewrapAll when more objects failed than
// RewrapAllInput.MaxFailures allows; it stopped early.
var ErrTooManyFailures = errors.New("s3crypto: RewrapAll stopped: too many objects failed")

// ErrCheckpointMismatch is returned by RewrapAll when RewrapAllInput.Resume
// is the checkpoint of another walk: another bucket, prefix, inventory or
// shard, or a dry run resumed as a real one (or the reverse).
var ErrCheckpointMismatch = errors.New("s3crypto: RewrapAll: the checkpoint is of another walk")

// ErrInventory is returned by RewrapAll when RewrapAllInput.Inventory is
// not a usable report of the bucket: a malformed manifest or data file, a
// data file whose MD5 is not the manifest's, another bucket's report, or a
// format other than CSV. Nothing has been rewrapped.
var ErrInventory = errors.New("s3crypto: RewrapAll: unusable S3 Inventory report")

// defaultRewrapConcurrency is how many objects RewrapAll rewraps at once
// when RewrapAllInput.Concurrency is zero.
const defaultRewrapConcurrency = 8

// RewrapAllInput says which objects RewrapAll rewraps, and how.
type RewrapAllInput struct {
	Bucket *string
	// ExpectedBucketOwner and RequestPayer go with every request of the
	// walk, as on S3's own inputs.
	ExpectedBucketOwner *string
	RequestPayer        types.RequestPayer
	// Prefix limits the walk to keys that start with it.
	Prefix *string
	// Inventory, if set, is the s3://bucket/key of the manifest.json of an
	// S3 Inventory report (CSV) of Bucket: the current objects it lists,
	// under Prefix, are walked instead of listing the bucket. The report's
	// files are read from the manifest's bucket (without
	// ExpectedBucketOwner and RequestPayer, which are Bucket's) and checked
	// against its MD5s before any object is rewrapped; the keys of the
	// walk's shard are held in memory meanwhile (about 16 bytes more than
	// each key's length). An object in the report but
	// deleted since counts as Gone; objects written after the report are
	// not in it, so follow with a listing walk (or the next report) when
	// the bucket is being written to.
	Inventory *string
	// Shard and ShardCount, when ShardCount is above 1, limit the walk to
	// shard Shard (0 ≤ Shard < ShardCount) of the keys: a key is in shard
	// i when the first 8 bytes of its SHA-256, big-endian, mod ShardCount
	// is i. ShardCount walks with Shard 0, 1, … of the same bucket (and
	// prefix, or inventory) rewrap every object once between them, with no
	// coordination, each keeping its own checkpoint.
	Shard, ShardCount int
	// Concurrency is how many objects are rewrapped at once
	// (8 when zero).
	Concurrency int
	// DryRun and EnforceRotation apply to every object (see RewrapInput).
	// With DryRun, Rewrapped counts the objects that would be rewrapped.
	DryRun          bool
	EnforceRotation bool
	// Rekey re-keys every SSE-C object as well (see RewrapInput.Rekey).
	Rekey bool
	// ReEncrypt applies to every object (see RewrapInput.ReEncrypt).
	ReEncrypt *bool
	// ObjectTimeout bounds each object's rewrap (zero: no bound). An object
	// that times out is a failure, retried on resume.
	ObjectTimeout time.Duration
	// MaxFailures stops the walk (ErrTooManyFailures) once more objects
	// than this have failed, as when the provider lacks the old master key
	// for all of them; zero means no limit.
	MaxFailures int
	// Resume continues an earlier walk of the same bucket, prefix and
	// DryRun from its checkpoint: the objects it lists as failed first,
	// then the keys after its After.
	Resume *RewrapCheckpoint
	// OnProgress, if set, is called after each object, with the counts so
	// far. Calls are serialized, from the goroutine that called RewrapAll;
	// a slow callback slows the walk.
	OnProgress func(RewrapProgress)
	// OnCheckpoint, if set, is called (serialized, like OnProgress) each
	// time the checkpoint advances, with a value that is safe to persist and
	// to Resume from after a crash. It is not called with DryRun.
	OnCheckpoint func(RewrapCheckpoint)
}

// RewrapCheckpoint is where a RewrapAll walk stands: every key up to and
// including After (in S3's listing order) has been handled — rewrapped,
// found current, found not encrypted, gone — except the keys in Retry,
// which failed (or were still being retried) and are rewrapped first on
// resume. Keys after After may have been handled too; resuming handles them
// again, which costs one read each for those already rewrapped. It encodes
// to JSON for a checkpoint file.
type RewrapCheckpoint struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix,omitempty"`
	// Inventory, Shard and ShardCount are the walk's (see RewrapAllInput;
	// ShardCount is 0 when the walk is not sharded).
	Inventory  string   `json:"inventory,omitempty"`
	Shard      int      `json:"shard,omitempty"`
	ShardCount int      `json:"shardCount,omitempty"`
	After      string   `json:"after,omitempty"`
	Retry      []string `json:"retry,omitempty"`
	DryRun     bool     `json:"dryRun,omitempty"`
}

// RewrapCounts counts the objects a RewrapAll walk has finished, by outcome.
type RewrapCounts struct {
	Rewrapped       int // rewrapped (with DryRun: would be)
	AlreadyCurrent  int // already wrapped by the current master key
	NotEncrypted    int // no envelope: not client-side encrypted
	EnvelopeObjects int // instruction files, handled with their objects
	Gone            int // listed, but deleted before they were read
	Failed          int // failed; see Failures and the checkpoint's Retry
}

// Done is the number of objects finished, whatever the outcome.
func (c RewrapCounts) Done() int {
	return c.Rewrapped + c.AlreadyCurrent + c.NotEncrypted + c.EnvelopeObjects + c.Gone + c.Failed
}

// RewrapProgress is passed to RewrapAllInput.OnProgress after each object.
type RewrapProgress struct {
	RewrapCounts
	// Listed is the number of keys listed (or taken from the checkpoint's
	// Retry) so far; ListingDone says the listing has ended.
	Listed      int
	ListingDone bool
	// Key is the object just finished, with its status, or its error when
	// it failed.
	Key     string
	Status  RewrapStatus
	Err     error
	Elapsed time.Duration
}

// RewrapAllOutput is what a RewrapAll walk did.
type RewrapAllOutput struct {
	RewrapCounts
	// Failures lists every object that failed (Key) and why (Err), in the
	// order they finished.
	Failures []*ObjectError
	// Checkpoint is where the walk stands: resume from it to retry the
	// failures and continue after an interruption.
	Checkpoint RewrapCheckpoint
	// Complete is true when every listed object was handled or failed
	// (Failures then equals the checkpoint's Retry).
	Complete bool
}

// RewrapAll rewraps every object under a bucket and prefix (see Rewrap),
// Concurrency at a time, from ListObjectsV2 or an S3 Inventory report, all
// of them or one shard. A failed object is recorded
// (Failures, and the checkpoint's Retry) and the walk goes on. The
// checkpoint given to OnCheckpoint only ever advances past objects whose
// rewraps, and all before them, have finished, so a walk interrupted at any
// point resumes from it without skipping an object. The error is nil when
// the listing was walked to its end, even if objects failed; the output is
// returned in every case but invalid input.
func (c *Client) RewrapAll(ctx context.Context, in *RewrapAllInput, optFns ...func(*s3.Options)) (*RewrapAllOutput, error) {
	return rewrapAll(ctx, c.api, func(ctx context.Context, in *RewrapInput) (*RewrapOutput, error) {
		return c.Rewrap(ctx, in, optFns...)
	}, in, optFns)
}

// RewrapAll rewraps the companions of every SSE-C object under a bucket and
// prefix, as Client.RewrapAll rewraps envelopes (see there): the companions
// count as EnvelopeObjects, and every object without a companion,
// client-side encrypted or not, as NotEncrypted. With Rekey, every object
// also gets a new data key (see Rewrap).
func (c *SSECClient) RewrapAll(ctx context.Context, in *RewrapAllInput, optFns ...func(*s3.Options)) (*RewrapAllOutput, error) {
	return rewrapAll(ctx, c.api, func(ctx context.Context, in *RewrapInput) (*RewrapOutput, error) {
		return c.Rewrap(ctx, in, optFns...)
	}, in, optFns)
}

// rewrapAll walks a listing, rewrapping each object with rewrap.
func rewrapAll(ctx context.Context, api fullAPI, rewrap func(context.Context, *RewrapInput) (*RewrapOutput, error), in *RewrapAllInput, optFns []func(*s3.Options)) (*RewrapAllOutput, error) {
	if in == nil || aws.ToString(in.Bucket) == "" {
		return nil, errors.New("s3crypto: RewrapAll needs a bucket")
	}
	if in.Concurrency < 0 || in.MaxFailures < 0 || in.ObjectTimeout < 0 {
		return nil, errors.New("s3crypto: RewrapAll: negative Concurrency, MaxFailures or ObjectTimeout")
	}
	if in.ShardCount < 0 || in.Shard < 0 || (in.Shard > 0 && in.Shard >= in.ShardCount) {
		return nil, fmt.Errorf("s3crypto: RewrapAll: shard %d of %d: want 0 ≤ Shard < ShardCount", in.Shard, in.ShardCount)
	}
	bucket, prefix := aws.ToString(in.Bucket), aws.ToString(in.Prefix)
	base := RewrapCheckpoint{Bucket: bucket, Prefix: prefix, Inventory: aws.ToString(in.Inventory), DryRun: in.DryRun}
	if in.ShardCount > 1 {
		base.Shard, base.ShardCount = in.Shard, in.ShardCount
	}
	var resume walk.Checkpoint
	if r := in.Resume; r != nil {
		if r.Bucket != base.Bucket || r.Prefix != base.Prefix || r.Inventory != base.Inventory ||
			r.Shard != base.Shard || r.ShardCount != base.ShardCount || r.DryRun != base.DryRun {
			return nil, fmt.Errorf("%w: it is of %s, not of %s", ErrCheckpointMismatch, r.walkName(), base.walkName())
		}
		resume = walk.Checkpoint{After: r.After, Retry: r.Retry}
	}
	var keys []string
	if in.Inventory != nil {
		var err error
		shard := walk.Shard{Index: base.Shard, Count: base.ShardCount}
		keep := func(k string) bool { return strings.HasPrefix(k, prefix) && shard.Keeps(k) }
		if keys, err = inventoryKeys(ctx, api, *in.Inventory, bucket, keep, optFns); err != nil {
			return nil, err
		}
	}
	api = withRequest(api, in.ExpectedBucketOwner, in.RequestPayer, optFns)
	start := time.Now()
	var out RewrapAllOutput
	checkpoint := func(cp walk.Checkpoint) RewrapCheckpoint {
		c := base
		c.After, c.Retry = cp.After, cp.Retry
		return c
	}
	cfg := &walk.Config[*RewrapOutput]{
		List: func(ctx context.Context, li *s3.ListObjectsV2Input) (*s3.ListObjectsV2Output, error) {
			return api.ListObjectsV2(ctx, li)
		},
		Bucket:        in.Bucket,
		Prefix:        in.Prefix,
		Keys:          keys,
		Shard:         walk.Shard{Index: base.Shard, Count: base.ShardCount},
		Concurrency:   cmp.Or(in.Concurrency, defaultRewrapConcurrency),
		ObjectTimeout: in.ObjectTimeout,
		Window:        maxWindow,
		Resume:        resume,
		Do: func(ctx context.Context, key string) (*RewrapOutput, error) {
			return rewrap(ctx, &RewrapInput{
				Bucket:              in.Bucket,
				Key:                 aws.String(key),
				ExpectedBucketOwner: in.ExpectedBucketOwner,
				RequestPayer:        in.RequestPayer,
				DryRun:              in.DryRun,
				EnforceRotation:     in.EnforceRotation,
				Rekey:               in.Rekey,
				ReEncrypt:           in.ReEncrypt,
			})
		},
		Finished: func(r walk.Result[*RewrapOutput]) (failed bool, stop error) {
			failed, stop = out.record(bucket, r, in.MaxFailures)
			if in.OnProgress != nil {
				p := RewrapProgress{
					RewrapCounts: out.RewrapCounts,
					Listed:       r.Listed,
					ListingDone:  r.ListingDone,
					Key:          r.Key,
					Err:          r.Err,
					Elapsed:      time.Since(start),
				}
				if r.Err == nil {
					p.Status = r.Value.Status
				}
				in.OnProgress(p)
			}
			return failed, stop
		},
	}
	if in.OnCheckpoint != nil && !in.DryRun {
		cfg.Checkpointed = func(cp walk.Checkpoint) { in.OnCheckpoint(checkpoint(cp)) }
	}
	res, err := walk.Run(ctx, cfg)
	out.Checkpoint = checkpoint(res.Checkpoint)
	out.Complete = res.Complete
	var le *walk.ListError
	if errors.As(err, &le) {
		return &out, fmt.Errorf("s3crypto: RewrapAll s3://%s/%s: listing: %w", bucket, prefix, le.Err)
	}
	return &out, err
}

// walkName says which walk a checkpoint is of, for an error.
func (c *RewrapCheckpoint) walkName() string {
	s := fmt.Sprintf("s3://%s/%s", c.Bucket, c.Prefix)
	if c.Inventory != "" {
		s += " from inventory " + c.Inventory
	}
	if c.ShardCount > 1 {
		s += fmt.Sprintf(" shard %d/%d", c.Shard, c.ShardCount)
	}
	if c.DryRun {
		s += " (dry run)"
	}
	return s
}

// inventoryKeys reads the keys of the report whose manifest is at manifest.
// The report lives in its own bucket, often another account's, so the
// walked bucket's ExpectedBucketOwner and RequestPayer do not go with its
// requests.
func inventoryKeys(ctx context.Context, api fullAPI, manifest, bucket string, keep func(string) bool, optFns []func(*s3.Options)) ([]string, error) {
	mb, mk, err := inventory.ParseURL(manifest)
	if err == nil {
		api = withRequest(api, nil, "", optFns)
		var keys []string
		if keys, _, err = inventory.Keys(ctx, api.GetObject, mb, mk, bucket, keep); err == nil {
			return keys, nil
		}
	}
	for _, typed := range []error{inventory.ErrMalformed, inventory.ErrUnsupportedFormat, inventory.ErrChecksum, inventory.ErrSourceBucket} {
		if errors.Is(err, typed) {
			return nil, fmt.Errorf("%w: %w", ErrInventory, err)
		}
	}
	return nil, fmt.Errorf("s3crypto: RewrapAll: %w", err)
}

// maxWindow is how far the listing may run ahead of the checkpoint (a
// variable for tests).
var maxWindow = walk.DefaultWindow

// record counts one finished object, and says whether it failed and whether
// the walk must stop (more than maxFailures failed, when that is not zero).
func (out *RewrapAllOutput) record(bucket string, r walk.Result[*RewrapOutput], maxFailures int) (failed bool, stop error) {
	var nf *types.NotFound
	var nsk *types.NoSuchKey
	switch {
	case r.Err != nil && (errors.As(r.Err, &nf) || errors.As(r.Err, &nsk)):
		out.Gone++
	case r.Err != nil:
		out.Failed++
		oe, ok := r.Err.(*ObjectError)
		if !ok {
			oe = &ObjectError{Op: "Rewrap", Bucket: bucket, Key: r.Key, Err: r.Err}
		}
		out.Failures = append(out.Failures, oe)
		if maxFailures > 0 && out.Failed > maxFailures {
			stop = fmt.Errorf("%w (%d, MaxFailures %d)", ErrTooManyFailures, out.Failed, maxFailures)
		}
		return true, stop
	default:
		switch r.Value.Status {
		case Rewrapped:
			out.Rewrapped++
		case AlreadyCurrent:
			out.AlreadyCurrent++
		case NotEncrypted:
			out.NotEncrypted++
		case EnvelopeObject:
			out.EnvelopeObjects++
		}
	}
	return false, nil
}
