package s3crypto_test

// KMS requests per object, counted against versitygw and local-kms: PUT,
// GET cold and warm (with and without materials.NewCache), and RewrapAll
// by Decrypt+Encrypt and by ReEncrypt. TestKMSRequests asserts the counts;
// BenchmarkKMSRequests reports them per 1,000 objects (BENCHMARKS.md).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/internal/testenv"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// kmsBench is a bucket of small objects and KMS keys whose requests are
// counted.
type kmsBench struct {
	api    *s3.Client
	bucket string
	kc     *countingKMS
	keys   []string
}

func newKMSBench(tb testing.TB, n int) *kmsBench {
	tb.Helper()
	api := testenv.S3(tb)
	b := &kmsBench{api: api, bucket: testenv.Bucket(tb, api, "s3env-kms-"), kc: newCountingKMS(testenv.KMS(tb))}
	for i := range n {
		b.keys = append(b.keys, fmt.Sprintf("obj/%05d", i))
	}
	return b
}

// each runs f for every object, 8 at a time, and fails tb on the first error.
func (b *kmsBench) each(tb testing.TB, f func(key string) error) {
	tb.Helper()
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, key := range b.keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(key); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s: %w", key, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(tb, first)
}

func (b *kmsBench) putAll(tb testing.TB, c *s3crypto.Client) {
	b.each(tb, func(key string) error {
		_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &b.bucket, Key: aws.String(key), Body: bytes.NewReader([]byte("a few bytes"))})
		return err
	})
}

func (b *kmsBench) getAll(tb testing.TB, c *s3crypto.Client) {
	b.each(tb, func(key string) error {
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &b.bucket, Key: aws.String(key)})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		got, err := io.ReadAll(out.Body)
		if err == nil && string(got) != "a few bytes" {
			err = fmt.Errorf("read %q", got)
		}
		return err
	})
}

func (b *kmsBench) rewrapAll(tb testing.TB, c *s3crypto.Client, reEncrypt *bool) {
	tb.Helper()
	out, err := c.RewrapAll(context.Background(), &s3crypto.RewrapAllInput{Bucket: &b.bucket, ReEncrypt: reEncrypt})
	require.NoError(tb, err)
	require.Empty(tb, out.Failures)
	require.Equal(tb, len(b.keys), out.Rewrapped)
}

func (b *kmsBench) client(tb testing.TB, p materials.Provider) *s3crypto.Client {
	tb.Helper()
	c, err := s3crypto.New(b.api, p)
	require.NoError(tb, err)
	return c
}

func (b *kmsBench) cache(tb testing.TB, p materials.Provider, optFns ...func(*materials.CacheOptions)) materials.Provider {
	// MaxAge is long enough that no key expires during a test on a slow
	// machine: only the bound under test drops keys.
	optFns = append([]func(*materials.CacheOptions){func(o *materials.CacheOptions) { o.MaxAge = time.Hour }}, optFns...)
	cached, closeCache := materials.NewCache(p, optFns...)
	tb.Cleanup(closeCache)
	return cached
}

// TestKMSRequests counts the KMS requests of 1,000 objects (V3, in
// metadata) per operation, each exactly as predicted.
func TestKMSRequests(t *testing.T) {
	const n = 1000
	b := newKMSBench(t, n)
	a, bKey, cKey := countedKMSKey(t, b.kc), countedKMSKey(t, b.kc), countedKMSKey(t, b.kc)
	cached := b.cache(t, materials.NewProvider(a))
	calls := func(want map[string]int, what string) {
		t.Helper()
		require.Equal(t, want, b.kc.take(), what)
	}
	b.kc.take()

	// Writes: one GenerateDataKey per object, cache or not.
	b.putAll(t, b.client(t, cached))
	calls(map[string]int{"GenerateDataKey": n}, "PUT, through the cache")

	// Reads: one Decrypt per object, unless the cache holds its key.
	withCache := b.client(t, cached)
	b.getAll(t, withCache)
	calls(map[string]int{"Decrypt": n}, "GET cold, with the cache")
	b.getAll(t, withCache)
	calls(map[string]int{}, "GET warm, with the cache")
	b.getAll(t, b.client(t, materials.NewProvider(a)))
	calls(map[string]int{"Decrypt": n}, "GET warm, without the cache")

	// The bounds: 2 uses per key (the unwrap's included) make every other
	// pass unwrap; 500 entries hold half the objects, and a scan in key
	// order evicts each before it is read again.
	twoUses := b.client(t, b.cache(t, materials.NewProvider(a), func(o *materials.CacheOptions) { o.MaxUses = 2 }))
	for pass, want := range []int{n, 0, n} {
		b.getAll(t, twoUses)
		if want == 0 {
			calls(map[string]int{}, fmt.Sprintf("MaxUses 2, pass %d", pass+1))
		} else {
			calls(map[string]int{"Decrypt": want}, fmt.Sprintf("MaxUses 2, pass %d", pass+1))
		}
	}

	// RewrapAll a → b by Decrypt + Encrypt (the V3 default): a Decrypt under
	// b (not current: KMS refuses a's blob), one under a (the provider's
	// unwrap does not ask b again), an Encrypt, and the Decrypt that
	// verifies the new wrap.
	b.rewrapAll(t, b.client(t, materials.NewProvider(bKey, a)), nil)
	calls(map[string]int{"Decrypt": 3 * n, "Encrypt": n}, "RewrapAll by Decrypt+Encrypt")
	// RewrapAll b → c by ReEncrypt: the Decrypt under c, one ReEncrypt.
	b.rewrapAll(t, b.client(t, materials.NewProvider(cKey, bKey)), aws.Bool(true))
	calls(map[string]int{"Decrypt": n, "ReEncrypt": n}, "RewrapAll by ReEncrypt")

	b.getAll(t, b.client(t, materials.NewProvider(nil, cKey)))
	calls(map[string]int{"Decrypt": n}, "every object reads under c")
}

// TestRewrapThroughCache: a rewrap's unwrap of the old data key may come
// from the cache, but the check that the new wrap opens asks KMS; a read
// afterwards misses (a new wrapped key) and asks KMS too.
func TestRewrapThroughCache(t *testing.T) {
	b := newKMSBench(t, 1)
	a, bKey := countedKMSKey(t, b.kc), countedKMSKey(t, b.kc)
	b.putAll(t, b.client(t, materials.NewProvider(a)))
	c := b.client(t, b.cache(t, materials.NewProvider(bKey, a)))
	b.getAll(t, c)
	require.Equal(t, map[string]int{"GenerateDataKey": 1, "Decrypt": 2}, b.kc.take(), "PUT; GET tries b, then a")

	out, err := c.Rewrap(context.Background(), &s3crypto.RewrapInput{Bucket: &b.bucket, Key: aws.String(b.keys[0])})
	require.NoError(t, err)
	require.True(t, out.Verified)
	require.False(t, out.ReEncrypted)
	// Decrypt under b (is it current?), the old key from the cache, Encrypt,
	// and the verifying Decrypt under b.
	require.Equal(t, map[string]int{"Decrypt": 2, "Encrypt": 1}, b.kc.take())

	b.getAll(t, c)
	require.Equal(t, map[string]int{"Decrypt": 1}, b.kc.take(), "the new envelope misses the cache")
	b.getAll(t, c)
	require.Equal(t, map[string]int{}, b.kc.take())
}

// BenchmarkKMSRequests reports the KMS requests per 1,000 objects of each
// operation (100 objects per iteration, scaled), as metrics named
// <operation>/1000obj and their sum as kms-calls/1000obj. Run it with
// ./scripts/test -run '^$' -bench KMSRequests -benchtime 3x ./s3crypto/
func BenchmarkKMSRequests(b *testing.B) {
	const n = 100
	report := func(b *testing.B, kb *kmsBench, iters int) {
		total := 0.0
		counts := kb.kc.take()
		counts["Decrypt"] += 0 // reported even when none: the figure reads compare
		for op, c := range counts {
			per := float64(c) * 1000 / float64(n*iters)
			b.ReportMetric(per, op+"/1000obj")
			total += per
		}
		b.ReportMetric(total, "kms-calls/1000obj")
	}
	setup := func(b *testing.B) (*kmsBench, []*keyring.KMS) {
		kb := newKMSBench(b, n)
		keys := []*keyring.KMS{countedKMSKey(b, kb.kc), countedKMSKey(b, kb.kc)}
		kb.putAll(b, kb.client(b, materials.NewProvider(keys[0])))
		kb.kc.take()
		return kb, keys
	}
	b.Run("PUT", func(b *testing.B) {
		kb, keys := setup(b)
		c := kb.client(b, materials.NewProvider(keys[0]))
		iters := 0
		for b.Loop() {
			kb.putAll(b, c)
			iters++
		}
		report(b, kb, iters)
	})
	for _, tc := range []struct {
		name   string
		cached bool
		warm   bool
	}{{"GET-cold", false, false}, {"GET-warm-nocache", false, true}, {"GET-warm-cache", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			kb, keys := setup(b)
			p := materials.NewProvider(keys[0])
			iters := 0
			if !tc.warm { // a new cache every time: every read is its first
				for b.Loop() {
					kb.getAll(b, kb.client(b, kb.cache(b, p)))
					iters++
				}
				report(b, kb, iters)
				return
			}
			if tc.cached {
				p = kb.cache(b, p)
			}
			c := kb.client(b, p)
			kb.getAll(b, c) // warm up
			kb.kc.take()
			for b.Loop() {
				kb.getAll(b, c)
				iters++
			}
			report(b, kb, iters)
		})
	}
	for _, tc := range []struct {
		name      string
		reEncrypt bool
	}{{"RewrapAll-DecryptEncrypt", false}, {"RewrapAll-ReEncrypt", true}} {
		b.Run(tc.name, func(b *testing.B) {
			kb, keys := setup(b)
			iters := 0
			for b.Loop() { // back and forth between the two keys
				cur, old := keys[(iters+1)%2], keys[iters%2]
				kb.rewrapAll(b, kb.client(b, materials.NewProvider(cur, old)), aws.Bool(tc.reEncrypt))
				iters++
			}
			report(b, kb, iters)
		})
	}
}
