package s3crypto_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// population is a set of objects written for a test: key → plaintext
// (nil for an object stored unencrypted).
type population map[string][]byte

// populate writes n objects under prefix, cycling through the writers
// (concurrently), plus unencrypted ones every skipEvery (0: none).
func populate(t testing.TB, raw *s3.Client, bucket, prefix string, n int, writers []*s3crypto.Client, plainEvery int) population {
	t.Helper()
	pop := population{}
	for i := range n {
		key := fmt.Sprintf("%s%05d", prefix, i)
		if plainEvery > 0 && i%plainEvery == plainEvery-1 {
			pop[key] = nil
		} else {
			pop[key] = random(100 + i%900)
		}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range pop {
			if !yield(k) {
				return
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	sem := make(chan struct{}, 8)
	for i, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			if pop[k] == nil {
				_, err = raw.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: strings.NewReader("plain " + k)})
			} else {
				_, err = writers[i%len(writers)].PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: bytes.NewReader(pop[k])})
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return pop
}

func (p population) keys() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range p {
			if !yield(k) {
				return
			}
		}
	})
}

func (p population) encrypted() int {
	n := 0
	for _, v := range p {
		if v != nil {
			n++
		}
	}
	return n
}

// requireAllRead checks every object: the encrypted ones read with c, and
// fail with ErrNoMasterKey with each of refuse.
func requireAllRead(t testing.TB, bucket string, pop population, c *s3crypto.Client, refuse ...*s3crypto.Client) {
	t.Helper()
	for _, k := range pop.keys() {
		if pop[k] == nil {
			continue
		}
		readsAs(t, c, bucket, k, pop[k])
		for _, r := range refuse {
			_, err := get(r, bucket, k)
			require.ErrorIs(t, err, envelope.ErrNoMasterKey, k)
		}
	}
}

// writers returns encrypting clients over api for old master keys, in
// every format and storage.
func writers(t testing.TB, api s3crypto.S3API, olds ...keyring.Keyring) []*s3crypto.Client {
	var ws []*s3crypto.Client
	for _, k := range olds {
		for _, v := range variants {
			ws = append(ws, newClient(t, api, k, v.apply))
		}
	}
	return ws
}

// TestRewrapAll walks a bucket of mixed objects (V2 and V3, metadata and
// instruction files, two old keys, unencrypted objects, objects outside the
// prefix): a dry run writes nothing and predicts the counts; the real run
// rewraps exactly the encrypted objects under the prefix, reports progress
// for every object, and ends with a complete checkpoint; a second run finds
// everything current.
func TestRewrapAll(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	oldA, oldR, cur := newAES(t, "a-2025"), newRSA(t, 1, "r-2025"), newAES(t, "2026")
	pop := populate(t, raw, bucket, "in/", 80, writers(t, raw, oldA, oldR), 10)
	outside := populate(t, raw, bucket, "out/", 5, writers(t, raw, oldA), 0)
	instrFiles := 0
	for i, k := range pop.keys() {
		if pop[k] != nil && (i%8)%2 == 1 { // writers cycle V2/m, V2/i, V3/m, V3/i
			instrFiles++
		}
	}

	m := newMeter()
	c := clientFor(t, s3At(t, "", withTransport(m)), cur, []keyring.Keyring{oldA, oldR})
	in := &s3crypto.RewrapAllInput{Bucket: &bucket, Prefix: aws.String("in/"), Concurrency: 4, DryRun: true, EnforceRotation: true}
	dry, err := c.RewrapAll(ctx, in)
	require.NoError(t, err)
	require.Empty(t, writes(m.requests()), "a dry run wrote")
	require.Equal(t, pop.encrypted(), dry.Rewrapped)
	require.True(t, dry.Checkpoint.DryRun)

	var progress []s3crypto.RewrapProgress
	var checkpoints []s3crypto.RewrapCheckpoint
	in.DryRun = false
	in.OnProgress = func(p s3crypto.RewrapProgress) { progress = append(progress, p) }
	in.OnCheckpoint = func(cp s3crypto.RewrapCheckpoint) { checkpoints = append(checkpoints, cp) }
	out, err := c.RewrapAll(ctx, in)
	require.NoError(t, err)
	require.Equal(t, s3crypto.RewrapCounts{
		Rewrapped: pop.encrypted(), NotEncrypted: len(pop) - pop.encrypted(), EnvelopeObjects: instrFiles,
	}, out.RewrapCounts)
	require.Empty(t, out.Failures)
	require.True(t, out.Complete)
	require.Equal(t, s3crypto.RewrapCheckpoint{Bucket: bucket, Prefix: "in/", After: lastListed(t, raw, bucket, "in/")}, out.Checkpoint)

	require.Len(t, progress, out.Done())
	for i, p := range progress {
		require.Equal(t, i+1, p.Done())
		require.NoError(t, p.Err)
		require.NotEmpty(t, p.Key)
	}
	require.NotEmpty(t, checkpoints)
	for i := 1; i < len(checkpoints); i++ {
		require.LessOrEqual(t, checkpoints[i-1].After, checkpoints[i].After, "the checkpoint went back")
	}
	require.Equal(t, out.Checkpoint, checkpoints[len(checkpoints)-1])

	requireAllRead(t, bucket, pop, reader(t, raw, cur), reader(t, raw, oldA, oldR))
	requireAllRead(t, bucket, outside, reader(t, raw, oldA), reader(t, raw, cur))

	m.reset()
	again, err := c.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Prefix: aws.String("in/"), Concurrency: 16})
	require.NoError(t, err)
	require.Equal(t, pop.encrypted(), again.AlreadyCurrent)
	require.Zero(t, again.Rewrapped)
	require.Empty(t, writes(m.requests()), "a rewrap of current objects wrote")
}

// listed is every key a listing of prefix returns, in order.
func listed(t testing.TB, raw *s3.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(raw, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// lastListed is the last key a listing of prefix returns.
func lastListed(t testing.TB, raw *s3.Client, bucket, prefix string) string {
	keys := listed(t, raw, bucket, prefix)
	return keys[len(keys)-1]
}

// TestRewrapAllFailuresAndResume: objects whose old key the provider lacks
// fail without stopping the walk; they are listed in the checkpoint's Retry,
// and a resume with the key retries exactly them. MaxFailures stops a walk
// that fails everywhere.
func TestRewrapAllFailuresAndResume(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	known, lost, cur := newAES(t, "known"), newAES(t, "lost"), newAES(t, "new")
	pop := populate(t, raw, bucket, "", 40, writers(t, raw, known, known, known, lost), 0)
	var lostKeys []string
	for i, k := range pop.keys() {
		if i%16 >= 12 {
			lostKeys = append(lostKeys, k)
		}
	}

	c := clientFor(t, raw, cur, []keyring.Keyring{known})
	out, err := c.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Concurrency: 3})
	require.NoError(t, err, "per-object failures are not a walk error")
	require.Equal(t, len(lostKeys), out.Failed)
	require.Equal(t, len(pop)-len(lostKeys), out.Rewrapped)
	require.True(t, out.Complete)
	var failed []string
	for _, f := range out.Failures {
		require.ErrorIs(t, f.Err, envelope.ErrNoMasterKey)
		failed = append(failed, f.Key)
	}
	require.ElementsMatch(t, lostKeys, failed)
	require.Equal(t, lostKeys, out.Checkpoint.Retry)

	// The checkpoint survives JSON, as in a file.
	b, err := json.Marshal(out.Checkpoint)
	require.NoError(t, err)
	var cp s3crypto.RewrapCheckpoint
	require.NoError(t, json.Unmarshal(b, &cp))

	m := newMeter()
	withLost := clientFor(t, s3At(t, "", withTransport(m)), cur, []keyring.Keyring{known, lost})
	res, err := withLost.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Concurrency: 3, Resume: &cp})
	require.NoError(t, err)
	require.Equal(t, len(lostKeys), res.Rewrapped)
	require.Equal(t, len(lostKeys), res.Done(), "the resume handled only the retries")
	require.Empty(t, res.Checkpoint.Retry)
	require.True(t, res.Complete)
	requireAllRead(t, bucket, pop, reader(t, raw, cur), reader(t, raw, known, lost))

	// A resume of another bucket or prefix is refused.
	_, err = withLost.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Prefix: aws.String("x"), Resume: &cp})
	require.Error(t, err)

	// MaxFailures: a provider that knows none of the keys stops early.
	clueless := clientFor(t, raw, newAES(t, "other"), nil)
	out, err = clueless.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Concurrency: 2, MaxFailures: 5})
	require.ErrorIs(t, err, s3crypto.ErrTooManyFailures)
	require.False(t, out.Complete)
	require.GreaterOrEqual(t, out.Failed, 6)
	require.Less(t, out.Done(), len(pop))
}

// TestRewrapAllCancel: a walk cancelled midway returns ctx's error and a
// checkpoint that only covers finished objects; resuming from it finishes
// the job and handles no object before the checkpoint again.
func TestRewrapAllCancel(t *testing.T) {
	raw, bucket := realS3(t)
	old, cur := newAES(t, "old"), newAES(t, "new")
	pop := populate(t, raw, bucket, "", 120, writers(t, raw, old), 0)
	c := clientFor(t, raw, cur, []keyring.Keyring{old})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var saved []byte
	out, err := c.RewrapAll(ctx, &s3crypto.RewrapAllInput{
		Bucket: &bucket, Concurrency: 6,
		OnProgress: func(p s3crypto.RewrapProgress) {
			if p.Done() == 50 {
				cancel()
			}
		},
		OnCheckpoint: func(cp s3crypto.RewrapCheckpoint) {
			b, err := json.Marshal(cp)
			require.NoError(t, err)
			saved = b
		},
	})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, out.Complete)
	var cp s3crypto.RewrapCheckpoint
	require.NoError(t, json.Unmarshal(saved, &cp))
	require.Equal(t, out.Checkpoint, cp)
	requireCheckpointHolds(t, raw, bucket, pop, cp, cur)

	res, err := c.RewrapAll(context.Background(), &s3crypto.RewrapAllInput{Bucket: &bucket, Concurrency: 6, Resume: &cp})
	require.NoError(t, err)
	require.True(t, res.Complete)
	after := 0
	for _, k := range listed(t, raw, bucket, "") {
		if k > cp.After {
			after++
		}
	}
	require.Equal(t, after, res.Done(), "the resume went over objects before the checkpoint")
	requireAllRead(t, bucket, pop, reader(t, raw, cur), reader(t, raw, old))
}

// TestRewrapAllWindow: with the listing allowed only one key ahead of the
// checkpoint (beyond the objects in flight), the walk still completes.
func TestRewrapAllWindow(t *testing.T) {
	defer s3crypto.SetRewrapWindowForTest(0)()
	raw, bucket := realS3(t)
	old, cur := newAES(t, "old"), newAES(t, "new")
	pop := populate(t, raw, bucket, "", 40, writers(t, raw, old), 0)
	c := clientFor(t, raw, cur, []keyring.Keyring{old})
	out, err := c.RewrapAll(context.Background(), &s3crypto.RewrapAllInput{Bucket: &bucket, Concurrency: 4})
	require.NoError(t, err)
	require.True(t, out.Complete)
	require.Equal(t, len(pop), out.Rewrapped)
	requireAllRead(t, bucket, pop, reader(t, raw, cur), reader(t, raw, old))
}

// requireCheckpointHolds checks a checkpoint's promise: every encrypted
// object up to After, but those in Retry, has cur's envelope.
func requireCheckpointHolds(t testing.TB, raw *s3.Client, bucket string, pop population, cp s3crypto.RewrapCheckpoint, cur keyring.Keyring) {
	t.Helper()
	checked := 0
	for _, k := range pop.keys() {
		if k > cp.After || slices.Contains(cp.Retry, k) || pop[k] == nil {
			continue
		}
		h, err := reader(t, raw, cur).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(k)})
		require.NoError(t, err)
		env, err := storedEnvelope(raw, bucket, k, h.Metadata)
		require.NoError(t, err)
		require.Equal(t, cur.Description(), env.Key.Description, "%s is before the checkpoint (%s) but not rewrapped", k, cp.After)
		checked++
	}
	t.Logf("checkpoint after %q (%d to retry): %d objects before it verified rewrapped", cp.After, len(cp.Retry), checked)
}

// storedEnvelope decodes an object's envelope as stored.
func storedEnvelope(raw *s3.Client, bucket, key string, meta map[string]string) (*format.Envelope, error) {
	if format.HasEnvelope(meta) {
		return format.Decode(meta, nil)
	}
	g, err := raw.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key + format.InstructionSuffix)})
	if err != nil {
		return nil, err
	}
	defer g.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(g.Body); err != nil {
		return nil, err
	}
	return format.Decode(meta, b.Bytes())
}

// TestRewrapThroughput measures objects rewrapped per second at concurrency
// 1, 8 and 32 (small V3 objects, envelope in metadata, AES master keys), and
// at 8 with envelopes in instruction files, and logs the figures; it asserts
// no timing.
func TestRewrapThroughput(t *testing.T) {
	raw, bucket := realS3(t)
	const n = 300
	keys := []keyring.Keyring{newAES(t, "k0"), newAES(t, "k1"), newAES(t, "k2"), newAES(t, "k3")}
	pop := populate(t, raw, bucket, "", n, []*s3crypto.Client{newClient(t, raw, keys[0])}, 0)
	var report []string
	for i, conc := range []int{1, 8, 32} {
		c := clientFor(t, raw, keys[i+1], keys[:i+1])
		start := time.Now()
		out, err := c.RewrapAll(context.Background(), &s3crypto.RewrapAllInput{Bucket: &bucket, Concurrency: conc})
		took := time.Since(start)
		require.NoError(t, err)
		require.Equal(t, n, out.Rewrapped)
		report = append(report, fmt.Sprintf("concurrency %2d: %d objects in %v = %.0f objects/s", conc, n, took.Round(time.Millisecond), float64(n)/took.Seconds()))
	}
	requireAllRead(t, bucket, pop, reader(t, raw, keys[3]))

	// Envelopes in instruction files: each rewrap also confirms the object
	// beside the file it rewrote (one HEAD more).
	instr := populate(t, raw, bucket, "instr/", n, []*s3crypto.Client{newClient(t, raw, keys[0], func(o *s3crypto.Options) { o.InstructionFile = true })}, 0)
	c := clientFor(t, raw, keys[1], keys[:1])
	start := time.Now()
	out, err := c.RewrapAll(context.Background(), &s3crypto.RewrapAllInput{Bucket: &bucket, Prefix: aws.String("instr/"), Concurrency: 8})
	took := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, n, out.Rewrapped)
	report = append(report, fmt.Sprintf("instruction files, concurrency 8: %d objects in %v = %.0f objects/s", n, took.Round(time.Millisecond), float64(n)/took.Seconds()))
	t.Logf("rewrap throughput against versitygw on 127.0.0.1 (race detector: %v):\n%s", raceEnabled, strings.Join(report, "\n"))
	requireAllRead(t, bucket, instr, reader(t, raw, keys[1]))
}
