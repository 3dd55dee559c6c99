package s3crypto_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/internal/inventory"
	"github.com/s3envelope/s3envelope/internal/inventory/inventorytest"
	"github.com/s3envelope/s3envelope/internal/testenv"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// writeInventory writes an inventory report of bucket's keys into a bucket
// of its own, as S3 would, and returns the manifest's s3:// URL and the
// destination bucket.
func writeInventory(t testing.TB, raw *s3.Client, bucket string, keys []string) (string, string) {
	t.Helper()
	dest := testenv.Bucket(t, raw, "s3env-inv-")
	m, err := inventorytest.Write(context.Background(), raw.PutObject, dest, "reports/", bucket, inventorytest.Rows(keys), 7)
	require.NoError(t, err)
	return "s3://" + dest + "/" + m, dest
}

// TestRewrapAllInventory: RewrapAll walks the keys of an inventory report —
// awkward ones, URL-encoded in the CSV — instead of listing: a key deleted
// since the report is Gone, an object written after it is left alone. A
// report that is corrupt, of another bucket or malformed is refused before
// anything is rewrapped.
func TestRewrapAllInventory(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	old, cur := newAES(t, "old"), newAES(t, "new")
	pop := population{}
	for i, k := range []string{"a b", "a+b", "a%20b", "100%", "日本/語 キー", "x?y&z=1", "tab\tkey", "quote\"d", "plain"} {
		pop[k] = random(50 + i)
	}
	for i := range 20 {
		pop[fmt.Sprintf("n/%03d", i)] = random(100)
	}
	writer := newClient(t, raw, old)
	for k, v := range pop {
		put(t, writer, bucket, k, bytes.NewReader(v))
	}
	url, dest := writeInventory(t, raw, bucket, append(pop.keys(), "deleted since"))
	put(t, writer, bucket, "written after", bytes.NewReader([]byte("late")))

	c := clientFor(t, raw, cur, []keyring.Keyring{old})
	out, err := c.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Inventory: &url, Concurrency: 4})
	require.NoError(t, err)
	require.True(t, out.Complete)
	require.Equal(t, len(pop), out.Rewrapped)
	require.Equal(t, 1, out.Gone, "the key deleted since the report")
	require.Zero(t, out.Failed)
	require.Equal(t, url, out.Checkpoint.Inventory)
	requireAllRead(t, bucket, pop, reader(t, raw, cur), reader(t, raw, old))
	readsAs(t, reader(t, raw, old), bucket, "written after", []byte("late"))

	// Prefix applies to the report's keys.
	out, err = c.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Prefix: aws.String("n/"), Inventory: &url, DryRun: true})
	require.NoError(t, err)
	require.Equal(t, 20, out.AlreadyCurrent)
	require.Equal(t, 20, out.Done())

	refused := func(in *s3crypto.RewrapAllInput, typed error) {
		t.Helper()
		out, err := c.RewrapAll(ctx, in)
		require.ErrorIs(t, err, s3crypto.ErrInventory)
		require.ErrorIs(t, err, typed)
		require.Nil(t, out)
	}
	// Another bucket's report.
	other := testenv.Bucket(t, raw, "s3env-")
	refused(&s3crypto.RewrapAllInput{Bucket: &other, Inventory: &url}, inventory.ErrSourceBucket)
	// Not a URL of a manifest.
	refused(&s3crypto.RewrapAllInput{Bucket: &bucket, Inventory: aws.String(dest + "/manifest.json")}, inventory.ErrMalformed)

	// A data file changed after the manifest was written.
	file := "reports/" + bucket + "/config/data/0001.csv.gz"
	_, err = raw.PutObject(ctx, &s3.PutObjectInput{Bucket: &dest, Key: &file,
		Body: bytes.NewReader(inventorytest.File(bucket, inventorytest.Rows([]string{"plain"})))})
	require.NoError(t, err)
	refused(&s3crypto.RewrapAllInput{Bucket: &bucket, Inventory: &url}, inventory.ErrChecksum)

	// A malformed CSV with a matching MD5: a row of another bucket.
	bad := inventorytest.File("elsewhere", inventorytest.Rows([]string{"plain"}))
	for k, body := range map[string][]byte{
		"bad/data.csv.gz":   bad,
		"bad/manifest.json": inventorytest.Manifest(bucket, dest, []string{"bad/data.csv.gz"}, [][]byte{bad}),
	} {
		_, err = raw.PutObject(ctx, &s3.PutObjectInput{Bucket: &dest, Key: aws.String(k), Body: bytes.NewReader(body)})
		require.NoError(t, err)
	}
	refused(&s3crypto.RewrapAllInput{Bucket: &bucket, Inventory: aws.String("s3://" + dest + "/bad/manifest.json")}, inventory.ErrMalformed)
	readsAs(t, reader(t, raw, old), bucket, "written after", []byte("late"))
}

// TestRewrapAllShards: N walks, each of its own shard, together handle
// every object once: a sharded listing walk (a dry run) and a sharded
// inventory walk, one of whose shards is interrupted and resumed from its
// checkpoint. Every object is rewrapped exactly once (counted from the
// walks' progress) and reads under the new key only. A shard's checkpoint
// does not resume another shard, or another source.
func TestRewrapAllShards(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	old, cur := newAES(t, "old"), newAES(t, "new")
	pop := populate(t, raw, bucket, "s/", 120, writers(t, raw, old), 0)
	// As S3's would, the report lists instruction files too.
	all := listed(t, raw, bucket, "")
	url, _ := writeInventory(t, raw, bucket, all)
	c := clientFor(t, raw, cur, []keyring.Keyring{old})
	const n = 4

	// The listing walk: every process lists everything, and keeps its share.
	seen := map[string]int{}
	for i := range n {
		out, err := c.RewrapAll(ctx, &s3crypto.RewrapAllInput{
			Bucket: &bucket, DryRun: true, Shard: i, ShardCount: n,
			OnProgress: func(p s3crypto.RewrapProgress) { seen[p.Key]++ },
		})
		require.NoError(t, err)
		require.Equal(t, i, out.Checkpoint.Shard)
		require.Less(t, out.Rewrapped, len(pop), "shard %d did everything", i)
		require.NotZero(t, out.Rewrapped, "shard %d did nothing", i)
	}
	require.Equal(t, all, slices.Sorted(maps.Keys(seen)))
	for k, v := range seen {
		require.Equal(t, 1, v, "%s seen by %d shards", k, v)
	}

	// The inventory walk, concurrently, shard 1 interrupted after 10 objects.
	var mu sync.Mutex
	rewrapped := map[string]int{}
	shardOf := map[string]int{}
	count := func(i int) func(p s3crypto.RewrapProgress) {
		return func(p s3crypto.RewrapProgress) {
			mu.Lock()
			defer mu.Unlock()
			if s, ok := shardOf[p.Key]; ok && s != i {
				t.Errorf("%s handled by shards %d and %d", p.Key, s, i)
			}
			shardOf[p.Key] = i
			if p.Status == s3crypto.Rewrapped {
				rewrapped[p.Key]++
			}
		}
	}
	var cp1 []byte
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			in := &s3crypto.RewrapAllInput{Bucket: &bucket, Inventory: &url, Shard: i, ShardCount: n, Concurrency: 3, OnProgress: count(i)}
			if i == 1 {
				in.OnProgress = func(p s3crypto.RewrapProgress) {
					count(i)(p)
					if p.Done() == 10 {
						cancel()
					}
				}
				in.OnCheckpoint = func(cp s3crypto.RewrapCheckpoint) {
					b, err := json.Marshal(cp)
					if err == nil {
						cp1 = b
					}
				}
			}
			out, err := c.RewrapAll(wctx, in)
			if i == 1 {
				assert.ErrorIs(t, err, context.Canceled)
				assert.False(t, out.Complete)
				return
			}
			assert.NoError(t, err)
			assert.True(t, out.Complete)
		}()
	}
	wg.Wait()
	var cp s3crypto.RewrapCheckpoint
	require.NoError(t, json.Unmarshal(cp1, &cp))
	require.Equal(t, 1, cp.Shard)
	require.Equal(t, n, cp.ShardCount)
	require.Equal(t, url, cp.Inventory)
	require.NotEmpty(t, cp.After)

	// Shard 1's checkpoint resumes shard 1 of that report only.
	for name, in := range map[string]*s3crypto.RewrapAllInput{
		"shard 2":         {Bucket: &bucket, Inventory: &url, Shard: 2, ShardCount: n},
		"of 2 shards":     {Bucket: &bucket, Inventory: &url, Shard: 1, ShardCount: 2},
		"unsharded":       {Bucket: &bucket, Inventory: &url},
		"listing":         {Bucket: &bucket, Shard: 1, ShardCount: n},
		"another report":  {Bucket: &bucket, Inventory: aws.String(url + "x"), Shard: 1, ShardCount: n},
		"another prefix":  {Bucket: &bucket, Prefix: aws.String("s/"), Inventory: &url, Shard: 1, ShardCount: n},
		"dry run of that": {Bucket: &bucket, Inventory: &url, Shard: 1, ShardCount: n, DryRun: true},
	} {
		in.Resume = &cp
		_, err := c.RewrapAll(ctx, in)
		require.ErrorIs(t, err, s3crypto.ErrCheckpointMismatch, name)
	}
	_, err := c.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket, Shard: 4, ShardCount: n})
	require.Error(t, err, "shard 4 of 4")

	// An object whose rewrap was written when the interruption came, but
	// not reported, is ahead of the checkpoint and found current on resume.
	current := map[string]bool{}
	out, err := c.RewrapAll(ctx, &s3crypto.RewrapAllInput{
		Bucket: &bucket, Inventory: &url, Shard: 1, ShardCount: n, Resume: &cp,
		OnProgress: func(p s3crypto.RewrapProgress) {
			count(1)(p)
			if p.Status == s3crypto.AlreadyCurrent {
				current[p.Key] = true
			}
		},
	})
	require.NoError(t, err)
	require.True(t, out.Complete)

	unreported := 0
	for _, k := range pop.keys() {
		switch rewrapped[k] {
		case 1:
		case 0:
			require.True(t, current[k] && k > cp.After && shardOf[k] == 1, "%s never rewrapped", k)
			unreported++
		default:
			t.Errorf("%s rewrapped %d times", k, rewrapped[k])
		}
	}
	require.LessOrEqual(t, unreported, 3, "more objects in flight than shard 1's concurrency")
	t.Logf("%d objects rewrapped, %d of them by shard 1 when it was interrupted (found current on resume)", len(pop), unreported)
	requireAllRead(t, bucket, pop, reader(t, raw, cur), reader(t, raw, old))
}
