package materials

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// fakeClock moves only when told to, and runs the timers that fall due.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at   time.Time
	f    func()
	done bool // fired or stopped
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.done
		t.done = true
		return was
	}
}

// pending is the number of timers set and neither fired nor stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

// Advance moves the clock and runs the timers due, as time.AfterFunc would.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.done && !t.at.After(c.now) {
			t.done = true
			due = append(due, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// countingAES is an AES master key that counts its unwraps.
type countingAES struct {
	*keyring.AES
	mu    sync.Mutex
	calls int
}

func (k *countingAES) Unwrap(ctx context.Context, w *envelope.WrappedKey, alg string) ([]byte, error) {
	k.mu.Lock()
	k.calls++
	k.mu.Unlock()
	return k.AES.Unwrap(ctx, w, alg)
}

func (k *countingAES) unwraps() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls
}

func newCountingAES(t *testing.T) *countingAES {
	b := make([]byte, 32)
	rand.Read(b)
	k, err := keyring.NewAES(b, map[string]string{"kid": "a"})
	require.NoError(t, err)
	return &countingAES{AES: k}
}

func wrapNew(t *testing.T, k keyring.Keyring) (*envelope.WrappedKey, []byte) {
	dk := make([]byte, 32)
	rand.Read(dk)
	w, err := k.Wrap(context.Background(), dk, format.ContentAESGCMCommit)
	require.NoError(t, err)
	return w, dk
}

func newTestCache(t *testing.T, k keyring.Keyring, clk *fakeClock, optFns ...func(*CacheOptions)) (*cache, func()) {
	p, closeCache := NewCache(NewProvider(k), append([]func(*CacheOptions){func(o *CacheOptions) { o.clock = clk }}, optFns...)...)
	c, ok := p.(*cache)
	require.True(t, ok, "%T", p)
	t.Cleanup(closeCache)
	return c, closeCache
}

// held returns the cache's own slice for w's data key (nil when none is
// held), so that a test can see it cleared after the cache lets it go.
func (c *cache) held(w *envelope.WrappedKey) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[cacheKey(context.Background(), w, format.ContentAESGCMCommit)]; e != nil {
		return e.dataKey
	}
	return nil
}

func unwrapOK(t *testing.T, p Provider, w *envelope.WrappedKey, want []byte) {
	t.Helper()
	got, err := p.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// A data key is held for MaxAge from its unwrap, however often it is used,
// and cleared when it expires — by the sweep timer, without another call.
func TestCacheMaxAgeClearsKeys(t *testing.T) {
	k, clk := newCountingAES(t), newFakeClock()
	c, _ := newTestCache(t, k, clk, func(o *CacheOptions) { o.MaxAge = 10 * time.Second })
	w1, dk1 := wrapNew(t, k)
	unwrapOK(t, c, w1, dk1)
	held1 := c.held(w1)
	require.Equal(t, dk1, held1)
	clk.Advance(4 * time.Second)
	w2, dk2 := wrapNew(t, k)
	unwrapOK(t, c, w2, dk2)
	unwrapOK(t, c, w1, dk1)
	require.Equal(t, 2, k.unwraps(), "a hit within MaxAge")

	clk.Advance(6 * time.Second) // w1's 10 s are up, w2 has 4 s left
	require.Equal(t, make([]byte, 32), held1, "expired key cleared by the sweep")
	require.Nil(t, c.held(w1))
	require.NotNil(t, c.held(w2))
	require.Equal(t, 1, clk.pending(), "the timer is set for w2")
	unwrapOK(t, c, w1, dk1)
	require.Equal(t, 3, k.unwraps(), "an expired key is unwrapped again")

	held2 := c.held(w2)
	clk.Advance(4 * time.Second)
	require.Equal(t, make([]byte, 32), held2)
	unwrapOK(t, c, w2, dk2)
	require.Equal(t, 4, k.unwraps())
}

// An expired key that the timer has not swept yet is not served either.
func TestCacheExpiredBeforeSweep(t *testing.T) {
	k, clk := newCountingAES(t), newFakeClock()
	c, _ := newTestCache(t, k, clk, func(o *CacheOptions) { o.MaxAge = time.Second })
	w, dk := wrapNew(t, k)
	unwrapOK(t, c, w, dk)
	held := c.held(w)
	c.mu.Lock()
	c.opts.clock = &fakeClock{now: clk.Now().Add(time.Second)} // time moves, the timer does not fire
	c.mu.Unlock()
	unwrapOK(t, c, w, dk)
	require.Equal(t, 2, k.unwraps())
	require.Equal(t, make([]byte, 32), held)
}

// A key that reaches MaxUses is dropped and cleared; the next unwrap asks
// the master key again.
func TestCacheMaxUsesClearsKeys(t *testing.T) {
	k, clk := newCountingAES(t), newFakeClock()
	c, _ := newTestCache(t, k, clk, func(o *CacheOptions) { o.MaxUses = 3 })
	w, dk := wrapNew(t, k)
	unwrapOK(t, c, w, dk) // unwrapped: use 1
	held := c.held(w)
	unwrapOK(t, c, w, dk) // 2
	require.Equal(t, dk, held)
	unwrapOK(t, c, w, dk) // 3: dropped
	require.Equal(t, make([]byte, 32), held)
	require.Nil(t, c.held(w))
	require.Equal(t, 1, k.unwraps())
	for range 7 {
		unwrapOK(t, c, w, dk)
	}
	require.Equal(t, 4, k.unwraps(), "10 unwraps at 3 uses per key")

	// MaxUses 1 holds nothing.
	c1, _ := newTestCache(t, k, clk, func(o *CacheOptions) { o.MaxUses = 1 })
	unwrapOK(t, c1, w, dk)
	require.Nil(t, c1.held(w))
}

// Past MaxEntries the least recently used key is dropped and cleared.
func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	k, clk := newCountingAES(t), newFakeClock()
	c, _ := newTestCache(t, k, clk, func(o *CacheOptions) { o.MaxEntries = 2 })
	wa, dka := wrapNew(t, k)
	wb, dkb := wrapNew(t, k)
	wc, dkc := wrapNew(t, k)
	unwrapOK(t, c, wa, dka)
	unwrapOK(t, c, wb, dkb)
	heldA, heldB := c.held(wa), c.held(wb)
	unwrapOK(t, c, wa, dka) // a is now the most recent
	unwrapOK(t, c, wc, dkc) // b goes
	require.Equal(t, make([]byte, 32), heldB)
	require.Equal(t, dka, heldA)
	require.Nil(t, c.held(wb))
	require.Equal(t, 3, k.unwraps())
	unwrapOK(t, c, wa, dka)
	require.Equal(t, 3, k.unwraps())
}

// Closing clears every key and stops caching (and the timer); the provider
// keeps working, uncached.
func TestCacheCloseClearsKeys(t *testing.T) {
	k, clk := newCountingAES(t), newFakeClock()
	c, closeCache := newTestCache(t, k, clk)
	wa, dka := wrapNew(t, k)
	wb, dkb := wrapNew(t, k)
	unwrapOK(t, c, wa, dka)
	unwrapOK(t, c, wb, dkb)
	heldA, heldB := c.held(wa), c.held(wb)
	require.Equal(t, 1, clk.pending())
	closeCache()
	closeCache()
	require.Equal(t, make([]byte, 32), heldA)
	require.Equal(t, make([]byte, 32), heldB)
	require.Zero(t, clk.pending(), "timer stopped")
	unwrapOK(t, c, wa, dka)
	unwrapOK(t, c, wa, dka)
	require.Equal(t, 4, k.unwraps())
	require.Nil(t, c.held(wa))
}

// Callers get copies: clearing what Unwrap returned (as the formats do)
// leaves the cache's key whole, and the cache keeps its own copy of what
// the master key returned.
func TestCacheHandsOutCopies(t *testing.T) {
	k, clk := newCountingAES(t), newFakeClock()
	c, _ := newTestCache(t, k, clk)
	w, dk := wrapNew(t, k)
	for range 3 {
		got, err := c.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
		require.NoError(t, err)
		require.Equal(t, dk, got)
		require.False(t, &got[0] == &c.held(w)[0])
		clear(got)
	}
	require.Equal(t, dk, c.held(w))
	require.Equal(t, 1, k.unwraps())
}

// The cache's fields print no key material (fmt walks a struct value, not
// what its pointers point to).
func TestCachePrintsNoKey(t *testing.T) {
	k, clk := newCountingAES(t), newFakeClock()
	c, _ := newTestCache(t, k, clk)
	w, dk := wrapNew(t, k)
	unwrapOK(t, c, w, dk)
	var p Provider = c
	for _, s := range []string{
		fmt.Sprintf("%v", p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p), fmt.Sprintf("%x", p), fmt.Sprintf("%s", p),
	} {
		require.False(t, bytes.Contains([]byte(s), dk), "raw key in %q", s)
		require.NotContains(t, s, hex.EncodeToString(dk))
		require.NotContains(t, s, strings.Trim(fmt.Sprint(dk), "[]"))
	}
}
