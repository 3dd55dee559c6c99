// Package walk runs a function on every object under an S3 bucket and
// prefix (or of a sorted list of keys, as from an S3 Inventory report), a
// bounded number at a time, in ListObjectsV2 order, and keeps a
// checkpoint from which an interrupted walk resumes without skipping an
// object: it only advances past objects that have finished, together with
// every object listed before them, and it keeps the objects that failed to
// be retried. s3crypto's RewrapAll and the s3envelope command's verify walk
// with it.
package walk

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// DefaultWindow is how far the listing may run ahead of the checkpoint
// when Config.Window is zero.
const DefaultWindow = 10000

// Checkpoint is where a walk stands: every key up to and including After
// (in S3's listing order) has finished, except the keys in Retry, which
// failed (or were still being retried) and are done first on resume. Keys
// after After may have finished too; a resumed walk does them again.
type Checkpoint struct {
	After string
	Retry []string
}

// Config is one walk.
type Config[R any] struct {
	// List is ListObjectsV2 (with whatever the caller adds to each request).
	List func(context.Context, *s3.ListObjectsV2Input) (*s3.ListObjectsV2Output, error)
	// Bucket and Prefix are what is listed.
	Bucket, Prefix *string
	// Keys, if not nil, are walked instead of a listing (List is then not
	// called). They must be sorted and without duplicates, so that a
	// checkpoint's After means what it means for a listing.
	Keys []string
	// Shard, if its Count is above 1, keeps only its share of the keys.
	Shard Shard
	// Concurrency is how many objects are done at once (at least 1).
	Concurrency int
	// ObjectTimeout bounds each call of Do (zero: no bound).
	ObjectTimeout time.Duration
	// Window bounds how many objects may be listed but not yet behind the
	// checkpoint, so that one slow object does not let the listing run
	// ahead without limit (zero: DefaultWindow).
	Window int
	// Resume continues an earlier walk: its Retry keys first, then the keys
	// after its After.
	Resume Checkpoint
	// Do does one object. An error while the walk is stopping (its context
	// ended) is not the object's failure: the object stays ahead of the
	// checkpoint.
	Do func(ctx context.Context, key string) (R, error)
	// Finished is called for each object Do finished, serialized, on the
	// goroutine that called Run. It says whether the object failed (it is
	// then kept in the checkpoint's Retry); a non-nil stop stops the walk,
	// and Run returns it.
	Finished func(Result[R]) (failed bool, stop error)
	// Checkpointed, if set, is called after Finished each time the
	// checkpoint advances or a retried object finishes, with a checkpoint
	// that is safe to persist and to resume from after a crash.
	Checkpointed func(Checkpoint)
}

// Shard is one of Count disjoint shares of a walk's keys, Index counting
// from 0: a key is in shard hash(key) mod Count, where hash is the first 8
// bytes of the key's SHA-256, big-endian. The hash depends on nothing but
// the key's bytes, so Count processes, each walking with its own Index, on
// any machines and Go versions, split the keys between them with no
// coordination, each key to exactly one.
type Shard struct{ Index, Count int }

// Keeps says whether key is in the shard. A zero Shard keeps every key.
func (s Shard) Keeps(key string) bool {
	if s.Count <= 1 {
		return true
	}
	sum := sha256.Sum256([]byte(key))
	return binary.BigEndian.Uint64(sum[:8])%uint64(s.Count) == uint64(s.Index)
}

// Result is one finished object, passed to Config.Finished.
type Result[R any] struct {
	Key   string
	Retry bool // it came from Resume.Retry, not from the listing
	Value R
	Err   error
	// Listed is the number of keys listed (or taken from Resume.Retry) so
	// far; ListingDone says the listing has ended.
	Listed      int
	ListingDone bool
}

// Outcome is where a walk ended.
type Outcome struct {
	Checkpoint Checkpoint
	// Complete is true when every listed object finished.
	Complete bool
}

// ListError is Run's error when listing failed.
type ListError struct{ Err error }

func (e *ListError) Error() string { return "listing: " + e.Err.Error() }
func (e *ListError) Unwrap() error { return e.Err }

// Run walks. The error is nil when the listing was walked to its end, even
// if objects failed; otherwise it is a *ListError, the context's error, or
// the stop error of Finished. The outcome is returned in every case.
func Run[R any](ctx context.Context, cfg *Config[R]) (*Outcome, error) {
	w := &walker[R]{
		cfg:     cfg,
		cp:      Checkpoint{After: cfg.Resume.After},
		retry:   map[string]bool{},
		pending: map[int]*item{},
	}
	for _, k := range cfg.Resume.Retry {
		w.retry[k] = true
	}
	return w.run(ctx)
}

// walker is the state of one Run, owned by the goroutine that called it.
type walker[R any] struct {
	cfg      *Config[R]
	cp       Checkpoint
	retry    map[string]bool // keys <= cp.After still to be retried
	pending  map[int]*item
	frontier int // every item before it is finished
	listed   int
	listDone bool
	listErr  error
	stopped  bool // an item was interrupted (ctx ended): the walk is not complete
	window   chan struct{}
}

type item struct {
	key      string
	retry    bool // from the checkpoint's Retry, not from the listing
	finished bool
	failed   bool
}

type event[R any] struct {
	seq      int
	listed   *item // a new item, before it is dispatched
	listDone bool
	listErr  error
	value    R
	err      error
	skipped  bool // not done: the walk was stopping
}

type job struct {
	seq int
	key string
}

func (w *walker[R]) run(ctx context.Context) (*Outcome, error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := max(w.cfg.Concurrency, 1)
	window := w.cfg.Window
	if window <= 0 {
		window = DefaultWindow
	}
	events := make(chan event[R], 2*n+2)
	w.window = make(chan struct{}, window+n)
	jobs := make(chan job)
	retries := slices.Sorted(maps.Keys(w.retry))
	go w.list(runCtx, w.cp.After, retries, events, jobs)
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

	out := &Outcome{Checkpoint: w.checkpoint()}
	out.Complete = w.listErr == nil && !w.stopped && ctx.Err() == nil && context.Cause(runCtx) == nil
	switch {
	case w.listErr != nil:
		return out, &ListError{Err: w.listErr}
	case ctx.Err() != nil:
		return out, ctx.Err()
	case context.Cause(runCtx) != nil:
		return out, context.Cause(runCtx)
	}
	return out, nil
}

// list sends the retries, then every key listed after after (and in the
// shard), as items and then jobs. (It must not read w.cp, which finish
// moves meanwhile.)
func (w *walker[R]) list(ctx context.Context, after string, retries []string, events chan<- event[R], jobs chan<- job) {
	defer close(jobs)
	seq := 0
	send := func(key string, retry bool) bool {
		select {
		case w.window <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		events <- event[R]{seq: seq, listed: &item{key: key, retry: retry}}
		select {
		case jobs <- job{seq: seq, key: key}:
			seq++
			return true
		case <-ctx.Done():
			// Registered but never dispatched: report it skipped.
			events <- event[R]{seq: seq, skipped: true}
			return false
		}
	}
	for _, k := range retries {
		if !send(k, true) {
			events <- event[R]{listDone: true}
			return
		}
	}
	if w.cfg.Keys != nil {
		start := sort.Search(len(w.cfg.Keys), func(i int) bool { return w.cfg.Keys[i] > after })
		for _, k := range w.cfg.Keys[start:] {
			if w.cfg.Shard.Keeps(k) && !send(k, false) {
				break
			}
		}
		events <- event[R]{listDone: true}
		return
	}
	var token *string
	for {
		page, err := w.cfg.List(ctx, &s3.ListObjectsV2Input{
			Bucket:            w.cfg.Bucket,
			Prefix:            w.cfg.Prefix,
			StartAfter:        startAfter(token, after),
			ContinuationToken: token,
		})
		if err != nil {
			if ctx.Err() != nil {
				err = nil // the walk is stopping; not a listing failure
			}
			events <- event[R]{listDone: true, listErr: err}
			return
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); w.cfg.Shard.Keeps(k) && !send(k, false) {
				events <- event[R]{listDone: true}
				return
			}
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
			events <- event[R]{listDone: true}
			return
		}
		token = page.NextContinuationToken
	}
}

// startAfter is the resumed listing's start: only on its first page (the
// continuation token carries it after).
func startAfter(token *string, after string) *string {
	if token != nil || after == "" {
		return nil
	}
	return aws.String(after)
}

func (w *walker[R]) work(ctx context.Context, events chan<- event[R], jobs <-chan job) {
	for j := range jobs {
		if ctx.Err() != nil {
			events <- event[R]{seq: j.seq, skipped: true}
			continue
		}
		octx, cancel := ctx, context.CancelFunc(func() {})
		if w.cfg.ObjectTimeout > 0 {
			octx, cancel = context.WithTimeout(ctx, w.cfg.ObjectTimeout)
		}
		v, err := w.cfg.Do(octx, j.key)
		cancel()
		if err != nil && ctx.Err() != nil {
			// Interrupted by the walk stopping, not a failure of the object.
			events <- event[R]{seq: j.seq, skipped: true}
			continue
		}
		events <- event[R]{seq: j.seq, value: v, err: err}
	}
}

// finish records one finished (or skipped) item, advances the checkpoint,
// and reports it.
func (w *walker[R]) finish(cancel context.CancelCauseFunc, ev event[R]) {
	it := w.pending[ev.seq]
	if ev.skipped {
		w.stopped = true
		return // stays pending: the checkpoint never passes it
	}
	it.finished = true
	failed, stop := w.cfg.Finished(Result[R]{
		Key: it.key, Retry: it.retry, Value: ev.value, Err: ev.err,
		Listed: w.listed, ListingDone: w.listDone,
	})
	it.failed = failed
	if stop != nil {
		cancel(stop)
	}
	if it.retry && !it.failed {
		delete(w.retry, it.key)
	}
	advanced := w.advance()
	if (advanced || it.retry) && w.cfg.Checkpointed != nil {
		w.cfg.Checkpointed(w.checkpoint())
	}
}

// advance moves the frontier past finished items, and After with it.
func (w *walker[R]) advance() bool {
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

func (w *walker[R]) checkpoint() Checkpoint {
	cp := w.cp
	cp.Retry = slices.Sorted(maps.Keys(w.retry))
	return cp
}
