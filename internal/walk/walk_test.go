package walk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// lister serves keys in pages of two, as ListObjectsV2 does: StartAfter on
// the first request, a continuation token after.
type lister struct {
	keys []string
	err  error // returned for the second page
}

func (l *lister) list(ctx context.Context, in *s3.ListObjectsV2Input) (*s3.ListObjectsV2Output, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := 0
	switch {
	case in.ContinuationToken != nil:
		fmt.Sscan(*in.ContinuationToken, &start)
		if l.err != nil {
			return nil, l.err
		}
	case in.StartAfter != nil:
		start = sort.SearchStrings(l.keys, *in.StartAfter+"\x00")
	}
	end := min(start+2, len(l.keys))
	out := &s3.ListObjectsV2Output{}
	for _, k := range l.keys[start:end] {
		out.Contents = append(out.Contents, types.Object{Key: aws.String(k)})
	}
	if end < len(l.keys) {
		out.IsTruncated, out.NextContinuationToken = aws.Bool(true), aws.String(fmt.Sprint(end))
	}
	return out, nil
}

func keys(n int) []string {
	var ks []string
	for i := range n {
		ks = append(ks, fmt.Sprintf("k%03d", i))
	}
	return ks
}

// TestRunResume walks keys with failures, then resumes from the last
// checkpoint: the failures are retried first, and every key is done once
// per walk.
func TestRunResume(t *testing.T) {
	l := &lister{keys: keys(9)}
	bad := map[string]bool{"k002": true, "k005": true}
	var mu sync.Mutex
	done := map[string]int{}
	var cps []Checkpoint
	cfg := func(resume Checkpoint) *Config[int] {
		return &Config[int]{
			List: l.list, Bucket: aws.String("b"), Concurrency: 3, Resume: resume,
			Do: func(_ context.Context, key string) (int, error) {
				mu.Lock()
				done[key]++
				mu.Unlock()
				if bad[key] {
					return 0, errors.New("bad")
				}
				return len(key), nil
			},
			Finished:     func(r Result[int]) (bool, error) { return r.Err != nil, nil },
			Checkpointed: func(cp Checkpoint) { cps = append(cps, cp) },
		}
	}
	out, err := Run(context.Background(), cfg(Checkpoint{}))
	if err != nil || !out.Complete {
		t.Fatalf("Run: %v, complete %v", err, out.Complete)
	}
	if want := (Checkpoint{After: "k008", Retry: []string{"k002", "k005"}}); !slices.Equal(out.Checkpoint.Retry, want.Retry) || out.Checkpoint.After != want.After {
		t.Fatalf("checkpoint %+v, want %+v", out.Checkpoint, want)
	}
	for i := 1; i < len(cps); i++ {
		if cps[i].After < cps[i-1].After {
			t.Fatalf("the checkpoint went back: %+v after %+v", cps[i], cps[i-1])
		}
	}
	for _, k := range l.keys {
		if done[k] != 1 {
			t.Errorf("%s done %d times", k, done[k])
		}
	}

	delete(bad, "k005")
	l.keys = append(l.keys, "k100")
	clear(done)
	out, err = Run(context.Background(), cfg(out.Checkpoint))
	if err != nil || !out.Complete {
		t.Fatalf("resumed Run: %v, complete %v", err, out.Complete)
	}
	if !slices.Equal(out.Checkpoint.Retry, []string{"k002"}) || out.Checkpoint.After != "k100" {
		t.Fatalf("resumed checkpoint %+v", out.Checkpoint)
	}
	if want := map[string]int{"k002": 1, "k005": 1, "k100": 1}; len(done) != len(want) || done["k002"] != 1 || done["k005"] != 1 || done["k100"] != 1 {
		t.Fatalf("the resumed walk did %v, want %v", done, want)
	}
}

// TestRunStop: a stop error from Finished, and the context ending, stop the
// walk; the checkpoint never passes an object that did not finish.
func TestRunStop(t *testing.T) {
	l := &lister{keys: keys(50)}
	stop := errors.New("enough")
	var finished []string
	out, err := Run(context.Background(), &Config[int]{
		List: l.list, Bucket: aws.String("b"), Concurrency: 2,
		Do: func(context.Context, string) (int, error) { return 0, nil },
		Finished: func(r Result[int]) (bool, error) {
			finished = append(finished, r.Key)
			if r.Key == "k010" {
				return false, stop
			}
			return false, nil
		},
	})
	if !errors.Is(err, stop) || out.Complete {
		t.Fatalf("Run: %v, complete %v; want the stop error", err, out.Complete)
	}
	// Objects started before the stop may still finish; those not yet
	// started are skipped, and the checkpoint stays before them.
	if len(finished) == len(l.keys) {
		t.Errorf("every object finished after a stop at the 11th")
	}
	for _, k := range l.keys {
		if k <= out.Checkpoint.After && !slices.Contains(finished, k) {
			t.Errorf("%s is behind the checkpoint %+v but never finished", k, out.Checkpoint)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	finished = nil
	out, err = Run(ctx, &Config[int]{
		List: l.list, Bucket: aws.String("b"), Concurrency: 4,
		Do: func(ctx context.Context, key string) (int, error) {
			if key >= "k020" {
				cancel()
				<-ctx.Done()
				return 0, ctx.Err() // interrupted: not a failure
			}
			return 0, nil
		},
		Finished: func(r Result[int]) (bool, error) {
			finished = append(finished, r.Key)
			if r.Err != nil {
				t.Errorf("%s finished with %v", r.Key, r.Err)
			}
			return false, nil
		},
	})
	if !errors.Is(err, context.Canceled) || out.Complete {
		t.Fatalf("Run: %v, complete %v; want context.Canceled", err, out.Complete)
	}
	if out.Checkpoint.After >= "k020" || len(out.Checkpoint.Retry) != 0 {
		t.Errorf("checkpoint %+v passes an interrupted object", out.Checkpoint)
	}
	for _, k := range l.keys {
		if k <= out.Checkpoint.After && !slices.Contains(finished, k) {
			t.Errorf("%s is behind the checkpoint but never finished", k)
		}
	}
}

// TestRunListError: a failed listing ends the walk with a *ListError, after
// the objects already listed.
func TestRunListError(t *testing.T) {
	boom := errors.New("boom")
	l := &lister{keys: keys(6), err: boom}
	var n int
	out, err := Run(context.Background(), &Config[int]{
		List: l.list, Bucket: aws.String("b"), Concurrency: 1, ObjectTimeout: time.Minute,
		Do:       func(context.Context, string) (int, error) { return 0, nil },
		Finished: func(Result[int]) (bool, error) { n++; return false, nil },
	})
	var le *ListError
	if !errors.As(err, &le) || !errors.Is(err, boom) || out.Complete {
		t.Fatalf("Run: %v, complete %v; want a ListError", err, out.Complete)
	}
	if n != 2 || out.Checkpoint.After != "k001" {
		t.Errorf("%d objects done, checkpoint %+v; want the first page's two", n, out.Checkpoint)
	}
}

// TestRunWindow: the listing never runs more than Window objects ahead of
// the checkpoint.
func TestRunWindow(t *testing.T) {
	l := &lister{keys: keys(40)}
	release := make(chan struct{})
	var once sync.Once
	var maxAhead int
	firstDone := false
	_, err := Run(context.Background(), &Config[int]{
		List: l.list, Bucket: aws.String("b"), Concurrency: 2, Window: 5,
		Do: func(_ context.Context, key string) (int, error) {
			if key == "k000" {
				<-release // the first object is slow: the checkpoint stays before it
			}
			return 0, nil
		},
		Finished: func(r Result[int]) (bool, error) {
			firstDone = firstDone || r.Key == "k000"
			if !firstDone {
				maxAhead = max(maxAhead, r.Listed)
			}
			if r.Listed >= 5+2 {
				once.Do(func() { close(release) })
			}
			return false, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if maxAhead > 5+2 {
		t.Errorf("%d objects listed while the first was pending; window 5, concurrency 2", maxAhead)
	}
}

// TestShard: the hash is pinned (a change would split a bucket differently
// between processes of two versions), and Count shards split any keys
// into disjoint sets whose union is all of them, roughly evenly.
func TestShard(t *testing.T) {
	// The first 8 bytes of SHA-256, big-endian, mod 4 and mod 7 (computed
	// apart from Go, with Python's hashlib).
	for _, c := range []struct {
		key        string
		mod4, mod7 int
	}{{"k000", 1, 6}, {"k001", 2, 2}, {"a b", 2, 2}, {"日本", 3, 2}} {
		if !(Shard{c.mod4, 4}).Keeps(c.key) || !(Shard{c.mod7, 7}).Keeps(c.key) {
			t.Errorf("%q is not in shard %d/4 and %d/7", c.key, c.mod4, c.mod7)
		}
	}
	ks := keys(1000)
	for _, n := range []int{0, 1, 2, 3, 4, 16} {
		seen := map[string]int{}
		for i := range max(n, 1) {
			kept := 0
			for _, k := range ks {
				if (Shard{i, n}).Keeps(k) {
					seen[k]++
					kept++
				}
			}
			if n > 1 && (kept < len(ks)/n/2 || kept > 2*len(ks)/n) {
				t.Errorf("shard %d/%d keeps %d of %d keys", i, n, kept, len(ks))
			}
		}
		for _, k := range ks {
			if seen[k] != 1 {
				t.Fatalf("%d shards: %s kept %d times", n, k, seen[k])
			}
		}
	}
}

// TestRunKeysSharded: a walk of given keys (no listing) in shards, each
// stopped midway and resumed from its checkpoint, does every key of its
// shard exactly once, and the shards together every key.
func TestRunKeysSharded(t *testing.T) {
	ks := keys(300)
	const n = 3
	var mu sync.Mutex
	done := map[string]int{}
	for i := range n {
		shard := Shard{i, n}
		cfg := func(resume Checkpoint, stopAt int) *Config[int] {
			finished := 0
			return &Config[int]{
				List: func(context.Context, *s3.ListObjectsV2Input) (*s3.ListObjectsV2Output, error) {
					t.Fatal("a walk of keys listed")
					return nil, nil
				},
				Keys: ks, Shard: shard, Concurrency: 4, Resume: resume,
				Do: func(_ context.Context, key string) (int, error) {
					mu.Lock()
					done[key]++
					mu.Unlock()
					return 0, nil
				},
				Finished: func(r Result[int]) (bool, error) {
					if !shard.Keeps(r.Key) {
						t.Errorf("shard %d/%d did %s", i, n, r.Key)
					}
					if finished++; finished == stopAt {
						return false, errors.New("stop")
					}
					return false, nil
				},
			}
		}
		out, err := Run(context.Background(), cfg(Checkpoint{}, 40))
		if err == nil || out.Complete {
			t.Fatalf("shard %d: the first walk was not stopped", i)
		}
		// Objects that finished after the stop but ahead of the checkpoint
		// are done again on resume: forget them, as a crash would.
		mu.Lock()
		for k := range done {
			if k > out.Checkpoint.After && shard.Keeps(k) {
				delete(done, k)
			}
		}
		mu.Unlock()
		out, err = Run(context.Background(), cfg(out.Checkpoint, -1))
		if err != nil || !out.Complete {
			t.Fatalf("shard %d resumed: %v, complete %v", i, err, out.Complete)
		}
	}
	for _, k := range ks {
		if done[k] != 1 {
			t.Errorf("%s done %d times", k, done[k])
		}
	}
}
