package s3crypto

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ErrTooManyFailures is returned by RewrapAll when more objects failed than
// RewrapAllInput.MaxFailures allows; it stopped early.
var ErrTooManyFailures = errors.New("s3crypto: RewrapAll stopped: too many objects failed")

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
	Bucket string   `json:"bucket"`
	Prefix string   `json:"prefix,omitempty"`
	After  string   `json:"after,omitempty"`
	Retry  []string `json:"retry,omitempty"`
	DryRun bool     `json:"dryRun,omitempty"`
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
// Concurrency at a time, from ListObjectsV2. A failed object is recorded
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
	api = withRequest(api, in.ExpectedBucketOwner, in.RequestPayer, optFns)
	if in.Concurrency < 0 || in.MaxFailures < 0 || in.ObjectTimeout < 0 {
		return nil, errors.New("s3crypto: RewrapAll: negative Concurrency, MaxFailures or ObjectTimeout")
	}
	w := &walk{
		api:    api,
		rewrap: rewrap,
		in:     in,
		start:  time.Now(),
		cp: RewrapCheckpoint{
			Bucket: aws.ToString(in.Bucket),
			Prefix: aws.ToString(in.Prefix),
			DryRun: in.DryRun,
		},
		retry:   map[string]bool{},
		pending: map[int]*walkItem{},
	}
	if r := in.Resume; r != nil {
		if r.Bucket != w.cp.Bucket || r.Prefix != w.cp.Prefix || r.DryRun != in.DryRun {
			return nil, fmt.Errorf("s3crypto: RewrapAll: the checkpoint is for bucket %q, prefix %q, dry run %v, not bucket %q, prefix %q, dry run %v",
				r.Bucket, r.Prefix, r.DryRun, w.cp.Bucket, w.cp.Prefix, in.DryRun)
		}
		w.cp.After = r.After
		for _, k := range r.Retry {
			w.retry[k] = true
		}
	}
	return w.run(ctx)
}

// walk is the state of one RewrapAll, owned by the goroutine that called it.
type walk struct {
	api    fullAPI
	rewrap func(context.Context, *RewrapInput) (*RewrapOutput, error)
	in     *RewrapAllInput
	start  time.Time

	out      RewrapAllOutput
	cp       RewrapCheckpoint
	retry    map[string]bool // keys <= cp.After still to be retried
	pending  map[int]*walkItem
	frontier int // every item before it is finished
	listed   int
	listDone bool
	listErr  error
	stopped  bool // an item was interrupted (ctx ended): the walk is not complete
	// window bounds the items listed but not yet behind the frontier (one
	// slow object must not let the listing run ahead without limit).
	window chan struct{}
}

// maxWindow is how far the listing may run ahead of the checkpoint (a
// variable for tests).
var maxWindow = 10000

type walkItem struct {
	key      string
	retry    bool // from the checkpoint's Retry, not from the listing
	finished bool
	failed   bool
}

type walkEvent struct {
	seq      int
	listed   *walkItem // a new item, before it is dispatched
	listDone bool
	listErr  error
	res      *RewrapOutput
	err      error
	skipped  bool // not rewrapped: the walk was stopping
}

type walkJob struct {
	seq int
	key string
}

func (w *walk) run(ctx context.Context) (*RewrapAllOutput, error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := w.in.Concurrency
	if n == 0 {
		n = defaultRewrapConcurrency
	}
	events := make(chan walkEvent, 2*n+2)
	w.window = make(chan struct{}, maxWindow+n)
	jobs := make(chan walkJob)
	retries := slices.Sorted(maps.Keys(w.retry))
	go w.list(runCtx, retries, events, jobs)
	for range n {
		go w.work(runCtx, events, jobs)
	}

	outstanding := 0
	for !w.listDone || outstanding > 0 {
		ev := <-events
		switch {
		case ev.listed != nil:
			w.pending[ev.seq] = ev.listed
			w.listed++
			outstanding++
		case ev.listDone:
			w.listDone = true
			w.listErr = ev.listErr
		default:
			outstanding--
			w.finish(cancel, ev)
		}
	}

	w.out.Checkpoint = w.checkpoint()
	w.out.Complete = w.listErr == nil && !w.stopped && ctx.Err() == nil && context.Cause(runCtx) == nil
	switch {
	case w.listErr != nil:
		return &w.out, fmt.Errorf("s3crypto: RewrapAll s3://%s/%s: listing: %w", w.cp.Bucket, w.cp.Prefix, w.listErr)
	case ctx.Err() != nil:
		return &w.out, ctx.Err()
	case context.Cause(runCtx) != nil:
		return &w.out, context.Cause(runCtx)
	}
	return &w.out, nil
}

// list sends the retries, then every listed key, as items and then jobs.
func (w *walk) list(ctx context.Context, retries []string, events chan<- walkEvent, jobs chan<- walkJob) {
	defer close(jobs)
	seq := 0
	send := func(key string, retry bool) bool {
		select {
		case w.window <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		events <- walkEvent{seq: seq, listed: &walkItem{key: key, retry: retry}}
		select {
		case jobs <- walkJob{seq: seq, key: key}:
			seq++
			return true
		case <-ctx.Done():
			// Registered but never dispatched: report it skipped.
			events <- walkEvent{seq: seq, skipped: true}
			return false
		}
	}
	for _, k := range retries {
		if !send(k, true) {
			events <- walkEvent{listDone: true}
			return
		}
	}
	var token *string
	for {
		page, err := w.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket:            w.in.Bucket,
			Prefix:            w.in.Prefix,
			StartAfter:        startAfter(token, w.cp.After),
			ContinuationToken: token,
		})
		if err != nil {
			if ctx.Err() != nil {
				err = nil // the walk is stopping; not a listing failure
			}
			events <- walkEvent{listDone: true, listErr: err}
			return
		}
		for _, o := range page.Contents {
			if !send(aws.ToString(o.Key), false) {
				events <- walkEvent{listDone: true}
				return
			}
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
			events <- walkEvent{listDone: true}
			return
		}
		token = page.NextContinuationToken
	}
}

func startAfter(token *string, after string) *string {
	if token != nil || after == "" {
		return nil
	}
	return aws.String(after)
}

func (w *walk) work(ctx context.Context, events chan<- walkEvent, jobs <-chan walkJob) {
	for j := range jobs {
		if ctx.Err() != nil {
			events <- walkEvent{seq: j.seq, skipped: true}
			continue
		}
		octx, cancel := ctx, context.CancelFunc(func() {})
		if w.in.ObjectTimeout > 0 {
			octx, cancel = context.WithTimeout(ctx, w.in.ObjectTimeout)
		}
		res, err := w.rewrap(octx, &RewrapInput{
			Bucket:              w.in.Bucket,
			Key:                 aws.String(j.key),
			ExpectedBucketOwner: w.in.ExpectedBucketOwner,
			RequestPayer:        w.in.RequestPayer,
			DryRun:              w.in.DryRun,
			EnforceRotation:     w.in.EnforceRotation,
			Rekey:               w.in.Rekey,
			ReEncrypt:           w.in.ReEncrypt,
		})
		cancel()
		if err != nil && ctx.Err() != nil {
			// Interrupted by the walk stopping, not a failure of the object.
			events <- walkEvent{seq: j.seq, skipped: true}
			continue
		}
		events <- walkEvent{seq: j.seq, res: res, err: err}
	}
}

// finish records one finished (or skipped) item, advances the checkpoint,
// and reports progress.
func (w *walk) finish(cancel context.CancelCauseFunc, ev walkEvent) {
	it := w.pending[ev.seq]
	if ev.skipped {
		w.stopped = true
		return // stays pending: the checkpoint never passes it
	}
	it.finished = true
	p := RewrapProgress{Key: it.key, Err: ev.err}
	var nf *types.NotFound
	var nsk *types.NoSuchKey
	switch {
	case ev.err != nil && (errors.As(ev.err, &nf) || errors.As(ev.err, &nsk)):
		w.out.Gone++
	case ev.err != nil:
		it.failed = true
		w.out.Failed++
		oe, ok := ev.err.(*ObjectError)
		if !ok {
			oe = &ObjectError{Op: "Rewrap", Bucket: aws.ToString(w.in.Bucket), Key: it.key, Err: ev.err}
		}
		w.out.Failures = append(w.out.Failures, oe)
		if w.in.MaxFailures > 0 && w.out.Failed > w.in.MaxFailures {
			cancel(fmt.Errorf("%w (%d, MaxFailures %d)", ErrTooManyFailures, w.out.Failed, w.in.MaxFailures))
		}
	default:
		p.Status = ev.res.Status
		switch ev.res.Status {
		case Rewrapped:
			w.out.Rewrapped++
		case AlreadyCurrent:
			w.out.AlreadyCurrent++
		case NotEncrypted:
			w.out.NotEncrypted++
		case EnvelopeObject:
			w.out.EnvelopeObjects++
		}
	}
	if it.retry && !it.failed {
		delete(w.retry, it.key)
	}
	advanced := w.advance()
	if w.in.OnProgress != nil {
		p.RewrapCounts = w.out.RewrapCounts
		p.Listed = w.listed
		p.ListingDone = w.listDone
		p.Elapsed = time.Since(w.start)
		w.in.OnProgress(p)
	}
	if (advanced || it.retry) && w.in.OnCheckpoint != nil && !w.in.DryRun {
		w.in.OnCheckpoint(w.checkpoint())
	}
}

// advance moves the frontier past finished items, and After with it.
func (w *walk) advance() bool {
	moved := false
	for {
		it, ok := w.pending[w.frontier]
		if !ok || !it.finished {
			return moved
		}
		delete(w.pending, w.frontier)
		w.frontier++
		<-w.window
		if it.retry {
			continue
		}
		w.cp.After = it.key
		if it.failed {
			w.retry[it.key] = true
		}
		moved = true
	}
}

func (w *walk) checkpoint() RewrapCheckpoint {
	cp := w.cp
	cp.Retry = slices.Sorted(maps.Keys(w.retry))
	return cp
}
