package s3crypto_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// viaProxy returns an S3 client that goes through p, with a per-request
// timeout (so that delayed requests fail) and the SDK's standard retryer
// making at most attempts attempts (0: its default, 3).
func viaProxy(t testing.TB, p *proxy, timeout time.Duration, attempts int) *s3.Client {
	return s3At(t, p.URL(), func(o *s3.Options) {
		o.HTTPClient = &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		if attempts > 0 {
			o.RetryMaxAttempts = attempts
		}
	})
}

// watcher reads every object in a loop, with a client that holds the old
// and the new master keys, and checks that each one always decrypts to its
// plaintext. A read that fails is read again for up to 2 s: versitygw's
// CopyObject onto itself deletes the metadata and then writes the new
// metadata (not atomically, unlike S3), so a reader can catch an object
// for a moment without metadata (ErrNoEnvelope). Such transient reads are
// counted and must be of that kind only; a read that does not recover is a
// lost object.
type watcher struct {
	reads, transient atomic.Int64
	mu               sync.Mutex
	lost             []string
	kinds            map[string]int
}

func watch(t testing.TB, c *s3crypto.Client, bucket string, pop population) (stop func() *watcher) {
	w := &watcher{kinds: map[string]int{}}
	done := make(chan struct{})
	finished := make(chan struct{})
	keys := pop.keys()
	go func() {
		defer close(finished)
		for {
			for _, k := range keys {
				select {
				case <-done:
					return
				default:
				}
				if pop[k] == nil {
					continue
				}
				w.reads.Add(1)
				got, err := get(c, bucket, k)
				if err == nil && bytes.Equal(got, pop[k]) {
					continue
				}
				w.transient.Add(1)
				w.mu.Lock()
				w.kinds[kindOf(err)]++
				w.mu.Unlock()
				ok := false
				for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if got, err := get(c, bucket, k); err == nil && bytes.Equal(got, pop[k]) {
						ok = true
						break
					}
				}
				if !ok {
					w.mu.Lock()
					w.lost = append(w.lost, fmt.Sprintf("%s: %v", k, err))
					w.mu.Unlock()
				}
			}
		}
	}()
	return func() *watcher {
		close(done)
		<-finished
		return w
	}
}

func kindOf(err error) string {
	switch {
	case err == nil:
		return "wrong plaintext"
	case errors.Is(err, envelope.ErrNoEnvelope):
		return "no envelope (metadata momentarily absent)"
	case errors.Is(err, envelope.ErrAuthentication):
		return "authentication"
	case errors.Is(err, envelope.ErrNoMasterKey):
		return "no master key"
	}
	return err.Error()
}

// TestRewrapAllFaults: "nothing lost under faults". RewrapAll rewraps 520
// objects (V2 and V3, metadata and instruction files, AES and RSA old keys,
// and unencrypted objects) through a proxy on 127.0.0.1 that drops
// connections before and after the server executes a request, answers 500
// before and after executing it, and delays requests past the client's
// timeout (then executes them) — 15% of requests, at most 400 faults. A
// reader checks throughout that every object decrypts with the old or the
// new key. The walk is interrupted (ctx cancelled) halfway and resumed from
// the checkpoint it persisted, through the same faults, until it is
// complete with no failures; then every object reads with the new key only.
func TestRewrapAllFaults(t *testing.T) {
	raw, bucket := realS3(t)
	oldA, oldR, cur := newAES(t, "a-2025"), newRSA(t, 1, "r-2025"), newAES(t, "2026")
	pop := populate(t, raw, bucket, "f/", 520, writers(t, raw, oldA, oldR), 26)
	t.Logf("%d objects, %d encrypted", len(pop), pop.encrypted())

	p := newProxy(t)
	p.faults(0.15, 400, 1500*time.Millisecond)
	// Two attempts per request: the SDK's retries absorb most faults, and
	// the rest fail objects, which the resumes retry.
	c := clientFor(t, viaProxy(t, p, time.Second, 2), cur, []keyring.Keyring{oldA, oldR})
	stopWatch := watch(t, reader(t, raw, cur, oldA, oldR), bucket, pop)
	start := time.Now()

	// Run 1, interrupted once half the objects are done; the checkpoint is
	// persisted (JSON) as it advances.
	var saved []byte
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := &s3crypto.RewrapAllInput{
		Bucket: &bucket, Prefix: aws.String("f/"), Concurrency: 8, ObjectTimeout: 10 * time.Second,
		OnProgress: func(pr s3crypto.RewrapProgress) {
			if pr.Done() >= len(pop)/2 {
				cancel()
			}
		},
		OnCheckpoint: func(cp s3crypto.RewrapCheckpoint) {
			b, err := json.Marshal(cp)
			require.NoError(t, err)
			saved = b
		},
	}
	out, err := c.RewrapAll(ctx, in)
	// Cancelled — or, rarely, the listing itself failed through the faults.
	require.Error(t, err)
	require.False(t, out.Complete)
	t.Logf("run 1 (interrupted: %v): %+v, %d failures", err, out.RewrapCounts, len(out.Failures))
	logFailures(t, out.Failures)

	// Resume from what was persisted, through the same faults, until done.
	cp := s3crypto.RewrapCheckpoint{Bucket: bucket, Prefix: "f/"}
	if saved != nil {
		require.NoError(t, json.Unmarshal(saved, &cp))
	}
	requireCheckpointHolds(t, raw, bucket, pop, cp, cur)
	in.OnProgress = nil
	for round := 2; ; round++ {
		require.LessOrEqual(t, round, 12, "still not done after 10 resumes")
		in.Resume = &cp
		out, err = c.RewrapAll(context.Background(), in)
		t.Logf("run %d (resumed after %q, %d to retry): %+v, error %v", round, cp.After, len(cp.Retry), out.RewrapCounts, err)
		logFailures(t, out.Failures)
		for _, f := range out.Failures {
			// Faults fail objects; they never find the wrong key or data.
			require.NotErrorIs(t, f.Err, envelope.ErrAuthentication, f.Key)
			require.NotErrorIs(t, f.Err, envelope.ErrNoMasterKey, f.Key)
		}
		cp = out.Checkpoint
		if err == nil && out.Failed == 0 {
			require.True(t, out.Complete)
			break
		}
		if err != nil {
			require.ErrorContains(t, err, "listing", "the only walk error faults may cause")
		}
	}
	elapsed := time.Since(start)
	w := stopWatch()
	requests, injected := p.stats()
	p.faults(0, 0, 0)
	t.Logf("%d requests through the proxy, %d faults injected (%s), in %v", requests, sum(injected), formatFaults(injected), elapsed.Round(time.Millisecond))
	t.Logf("reader: %d reads, %d transient failures %v, %d lost", w.reads.Load(), w.transient.Load(), w.kinds, len(w.lost))
	require.Empty(t, w.lost, "objects that did not decrypt with the old or the new key")
	for kind := range w.kinds {
		require.Equal(t, "no envelope (metadata momentarily absent)", kind)
	}
	require.Greater(t, sum(injected), 50, "too few faults to mean anything")
	require.Greater(t, w.reads.Load(), int64(len(pop)), "the reader did not go round once")

	requireAllRead(t, bucket, pop, reader(t, raw, cur), reader(t, raw, oldA, oldR))
	requireNoUploads(t, raw, bucket)
	for _, k := range pop.keys() {
		if pop[k] == nil {
			g, err := raw.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(k)})
			require.NoError(t, err)
			var b bytes.Buffer
			_, err = b.ReadFrom(g.Body)
			g.Body.Close()
			require.NoError(t, err)
			require.Equal(t, "plain "+k, b.String())
		}
	}
}

func sum(m map[faultKind]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func logFailures(t testing.TB, fs []*s3crypto.ObjectError) {
	for i, f := range fs {
		if i == 5 {
			t.Logf("  ... %d more", len(fs)-5)
			return
		}
		t.Logf("  failed %s: %v", f.Key, f.Err)
	}
}

// TestRewrapRaces: an object overwritten by a normal PutObject between the
// rewrap's read and its write keeps the new writer's content, and the
// rewrap fails with ErrConcurrentModification, for each kind of write:
// CopyObject (metadata envelope), PutObject of the instruction file, and
// the multipart copy (overwritten between two UploadPartCopy calls; the
// upload is aborted). The overwrite is done by the proxy, just before it
// forwards the rewrap's write.
func TestRewrapRaces(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	old, cur, theirs := newAES(t, "old"), newAES(t, "new"), newRSA(t, 1, "other-writer")
	p := newProxy(t)
	c := clientFor(t, viaProxy(t, p, 30*time.Second, 0), cur, []keyring.Keyring{old})

	for _, tc := range []struct {
		name      string
		v         variant
		size      int
		multipart bool
		// trigger says whether r is the write to race with.
		trigger func(r *http.Request, key string) bool
	}{
		{"metadata/CopyObject", variant{envelope.FormatV3, false}, 1000, false,
			func(r *http.Request, key string) bool { return isCopy(r, bucket, key) }},
		{"V2-metadata/CopyObject", variant{envelope.FormatV2, false}, 1000, false,
			func(r *http.Request, key string) bool { return isCopy(r, bucket, key) }},
		{"instruction/PutObject", variant{envelope.FormatV3, true}, 1000, false,
			func(r *http.Request, key string) bool {
				return r.Method == http.MethodPut && objectKey(r, bucket) == key+format.InstructionSuffix
			}},
		{"multipart/UploadPartCopy", variant{envelope.FormatV3, false}, 12 << 20, true,
			func(r *http.Request, key string) bool {
				return isCopy(r, bucket, key) && r.URL.Query().Get("partNumber") == "2"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.multipart {
				defer s3crypto.SetMultipartCopyForTest(8<<20, 5<<20)()
			}
			key := "race/" + tc.name
			put(t, newClient(t, raw, old, tc.v.apply), bucket, key, bytes.NewReader(random(tc.size)))
			mine := random(tc.size)
			var fired atomic.Int32
			var overwrite error
			writer := newClient(t, raw, theirs, tc.v.apply)
			p.setHook(func(r *http.Request) {
				if tc.trigger(r, key) && fired.Add(1) == 1 {
					_, overwrite = writer.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(mine)})
				}
			})
			defer p.setHook(nil)
			out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
			require.ErrorIs(t, err, s3crypto.ErrConcurrentModification)
			require.Equal(t, int32(1), fired.Load(), "the overwrite did not happen")
			require.NoError(t, overwrite)
			require.False(t, out.Written)
			t.Logf("%v", err)
			readsAs(t, reader(t, raw, theirs), bucket, key, mine)
			requireNoUploads(t, raw, bucket)
		})
	}
}

// TestRewrapLostResponse: the proxy lets the rewrap's write reach the server
// and then drops the connection, so the SDK retries it. A retried CopyObject
// is harmless (same body, same new envelope); a retried If-Match PutObject
// or CompleteMultipartUpload is refused — and Rewrap, finding its own new
// envelope stored, reports success instead of a conflict.
func TestRewrapLostResponse(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	old, cur := newAES(t, "old"), newRSA(t, 2, "new")
	p := newProxy(t)
	c := clientFor(t, viaProxy(t, p, 30*time.Second, 0), cur, []keyring.Keyring{old})
	for _, tc := range []struct {
		name      string
		v         variant
		size      int
		multipart bool
		write     func(r *http.Request, key string) bool
	}{
		{"metadata/CopyObject", variant{envelope.FormatV3, false}, 100, false,
			func(r *http.Request, key string) bool { return isCopy(r, bucket, key) }},
		{"instruction/PutObject", variant{envelope.FormatV2, true}, 100, false,
			func(r *http.Request, key string) bool {
				return r.Method == http.MethodPut && objectKey(r, bucket) == key+format.InstructionSuffix
			}},
		{"multipart/Complete", variant{envelope.FormatV3, false}, 11 << 20, true,
			func(r *http.Request, key string) bool {
				return r.Method == http.MethodPost && objectKey(r, bucket) == key && r.URL.Query().Has("uploadId")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.multipart {
				defer s3crypto.SetMultipartCopyForTest(8<<20, 5<<20)()
			}
			key := "lost/" + tc.name
			pt := random(tc.size)
			put(t, newClient(t, raw, old, tc.v.apply), bucket, key, bytes.NewReader(pt))
			var sent atomic.Int32
			p.mu.Lock()
			p.after = func(r *http.Request) faultKind {
				if tc.write(r, key) && sent.Add(1) == 1 {
					return faultDropAfter
				}
				return faultNone
			}
			p.mu.Unlock()
			defer func() { p.mu.Lock(); p.after = nil; p.mu.Unlock() }()
			out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
			require.NoError(t, err)
			require.Equal(t, s3crypto.Rewrapped, out.Status)
			require.True(t, out.Written)
			require.Equal(t, int32(2), sent.Load(), "the write was not retried")
			readsAs(t, reader(t, raw, cur), bucket, key, pt)
			_, err = get(reader(t, raw, old), bucket, key)
			require.ErrorIs(t, err, envelope.ErrNoMasterKey)
			requireNoUploads(t, raw, bucket)
		})
	}
}
