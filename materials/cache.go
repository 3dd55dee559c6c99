package materials

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/kmsctx"
	"github.com/s3envelope/s3envelope/internal/typednil"
	"github.com/s3envelope/s3envelope/keyring"
)

// The bounds a zero CacheOptions field stands for.
const (
	defaultCacheEntries = 1000
	defaultCacheAge     = time.Minute
)

// CacheOptions bound the data keys a cache made by NewCache holds. Zero
// fields take the defaults; negative ones make NewCache fail.
type CacheOptions struct {
	// MaxEntries is the most data keys held at once; past it the least
	// recently used is dropped. Zero means 1,000.
	MaxEntries int
	// MaxAge is how long a data key is held after it was unwrapped,
	// however often it is used. Zero means one minute.
	MaxAge time.Duration
	// MaxUses is how many unwraps one data key answers, the one that
	// unwrapped it included, before it is dropped. Zero means no bound but
	// MaxAge.
	MaxUses int

	clock clock // tests replace it to move time by hand
}

// clock is the time a cache reads and the timer that sweeps out expired
// data keys.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// NewCache returns a provider that is p with the data keys it unwraps kept
// for reuse (see "Caching data keys" in the package doc), and a function
// that clears every data key held and stops caching: call it once the
// provider is no longer used. Current and Resolve are p's. Invalid options
// or a nil p give a provider whose every call fails with the reason.
func NewCache(p Provider, optFns ...func(*CacheOptions)) (Provider, func()) {
	if typednil.Is(p) {
		return failed(errors.New("materials: NewCache needs a provider")), func() {}
	}
	if _, ok := p.(*invalid); ok {
		return p, func() {}
	}
	o := CacheOptions{clock: realClock{}}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.MaxEntries < 0 || o.MaxAge < 0 || o.MaxUses < 0 {
		return failed(fmt.Errorf("materials: NewCache: negative bound (MaxEntries %d, MaxAge %v, MaxUses %d)", o.MaxEntries, o.MaxAge, o.MaxUses)), func() {}
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = defaultCacheEntries
	}
	if o.MaxAge == 0 {
		o.MaxAge = defaultCacheAge
	}
	c := &cache{inner: p, opts: o, entries: map[cacheID]*cacheEntry{}, flights: map[cacheID]*flight{}}
	return c, c.close
}

// cacheID names what an unwrap's answer depends on: see cacheKey.
type cacheID [sha256.Size]byte

// cacheEntry is one data key held. Its fields are reached only under the
// cache's lock.
type cacheEntry struct {
	id       cacheID
	dataKey  []byte
	expires  time.Time
	uses     int
	lru, age *list.Element
}

// flight is an unwrap in progress, which later callers for the same
// cacheID wait for rather than unwrap again.
type flight struct {
	done chan struct{}
	err  error // the unwrap's failure, for the callers that waited
}

type cache struct {
	inner Provider
	opts  CacheOptions

	mu      sync.Mutex
	entries map[cacheID]*cacheEntry
	lru     list.List // of *cacheEntry, most recently used first
	age     list.List // of *cacheEntry, oldest first (all live MaxAge)
	flights map[cacheID]*flight
	stop    func() bool // the sweep timer's, when one is set
	closed  bool
}

// Format prints the cache as its type only, whatever the verb: fmt would
// otherwise walk its fields, down to the data keys for some verbs (%s).
func (c *cache) Format(f fmt.State, _ rune) { io.WriteString(f, "materials.cache") }

// Format prints no key material, as the cache's.
func (e *cacheEntry) Format(f fmt.State, _ rune) { io.WriteString(f, "materials.cacheEntry") }

func (c *cache) Current() keyring.Keyring { return c.inner.Current() }

func (c *cache) Resolve(ctx context.Context, w *envelope.WrappedKey) (keyring.Keyring, error) {
	return c.inner.Resolve(ctx, w)
}

// Err is the wrapped provider's, for s3crypto.New to report.
func (c *cache) Err() error {
	if e, ok := c.inner.(interface{ Err() error }); ok {
		return e.Err()
	}
	return nil
}

// ReEncrypt is the wrapped provider's (see provider.ReEncrypt), uncached:
// nothing of a data key comes out of KMS to keep.
func (c *cache) ReEncrypt(ctx context.Context, w *envelope.WrappedKey, contentAlg string, to *keyring.KMS) (*envelope.WrappedKey, error) {
	re, ok := c.inner.(interface {
		ReEncrypt(context.Context, *envelope.WrappedKey, string, *keyring.KMS) (*envelope.WrappedKey, error)
	})
	if !ok {
		return nil, fmt.Errorf("materials: the cached provider cannot re-encrypt in KMS: %w", errors.ErrUnsupported)
	}
	return re.ReEncrypt(ctx, w, contentAlg, to)
}

// Unwrap answers from the cache when an earlier unwrap of the same
// wrapped key, for the same content algorithm and the same expected
// encryption context, succeeded; otherwise it asks the wrapped provider
// (once for concurrent callers that ask the same) and keeps a copy of the
// data key. The caller gets its own copy, to clear.
func (c *cache) Unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
	return c.unwrap(ctx, w, contentAlg, c.inner.Unwrap)
}

// UnwrapSkippingCurrent is Unwrap for a caller that the current master key
// (Current, the wrapped provider's) already refused w with refused (see
// provider.UnwrapSkippingCurrent): a held data key answers as it does for
// Unwrap, since the refusal changes which keys are asked, not the answer;
// a miss asks the wrapped provider's UnwrapSkippingCurrent, or its Unwrap
// when it has none.
func (c *cache) UnwrapSkippingCurrent(ctx context.Context, w *envelope.WrappedKey, contentAlg string, refused error) ([]byte, error) {
	inner := c.inner.Unwrap
	if s, ok := c.inner.(currentSkipper); ok && refused != nil {
		inner = func(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
			return s.UnwrapSkippingCurrent(ctx, w, contentAlg, refused)
		}
	}
	return c.unwrap(ctx, w, contentAlg, inner)
}

// currentSkipper is a provider with UnwrapSkippingCurrent: this package's
// providers and caches.
type currentSkipper interface {
	UnwrapSkippingCurrent(ctx context.Context, w *envelope.WrappedKey, contentAlg string, refused error) ([]byte, error)
}

// unwrapFunc is the wrapped provider's unwrap a miss asks.
type unwrapFunc func(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error)

func (c *cache) unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string, inner unwrapFunc) ([]byte, error) {
	if w == nil {
		return inner(ctx, w, contentAlg)
	}
	id := cacheKey(ctx, w, contentAlg)
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return inner(ctx, w, contentAlg)
		}
		if dk := c.use(id); dk != nil {
			c.mu.Unlock()
			return dk, nil
		}
		if f := c.flights[id]; f != nil {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if f.err != nil {
				return nil, f.err
			}
			continue // its key is held now, or was used up: look again
		}
		f := &flight{done: make(chan struct{})}
		c.flights[id] = f
		c.mu.Unlock()
		return c.fill(ctx, id, f, w, contentAlg, inner)
	}
}

// fill unwraps with inner for the callers waiting on f, and holds the data
// key on success.
func (c *cache) fill(ctx context.Context, id cacheID, f *flight, w *envelope.WrappedKey, contentAlg string, inner unwrapFunc) (dk []byte, err error) {
	defer func() {
		c.mu.Lock()
		delete(c.flights, id)
		switch {
		case err == nil:
			c.store(id, dk)
		case ctx.Err() == nil:
			// The same question gets the same answer; a caller whose own
			// context ended leaves the question to the next.
			f.err = err
		}
		c.mu.Unlock()
		close(f.done)
	}()
	return inner(ctx, w, contentAlg)
}

// cacheKey hashes everything an unwrap's answer depends on besides the
// provider's master keys: the wrapped key, its wrap algorithm and stored
// description (or KMS encryption context), the content algorithm it is
// unwrapped for, and the encryption context the caller expects, if any
// (keyring.WithEncryptionContext). A request that differs in any of them
// is a miss, so the wrapped provider makes every check on it that it
// would make without the cache. Each field is length-prefixed, so no two
// requests hash the same input.
func cacheKey(ctx context.Context, w *envelope.WrappedKey, contentAlg string) cacheID {
	h := sha256.New()
	field(h, []byte(w.Algorithm))
	field(h, w.Ciphertext)
	field(h, []byte(format.EncodeDescription(w.Description)))
	field(h, []byte(contentAlg))
	if ec, ok := kmsctx.From(ctx); ok {
		field(h, []byte(format.EncodeDescription(ec)))
	} else {
		h.Write([]byte{0xff}) // no length prefix starts with it
	}
	var id cacheID
	h.Sum(id[:0])
	return id
}

func field(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// use returns a copy of the data key held for id, counting the use, or nil
// when none is held (or it has expired). c.mu is held.
func (c *cache) use(id cacheID) []byte {
	e := c.entries[id]
	if e == nil {
		return nil
	}
	if !c.opts.clock.Now().Before(e.expires) {
		c.remove(e)
		return nil
	}
	dk := append([]byte(nil), e.dataKey...)
	e.uses++
	if c.opts.MaxUses > 0 && e.uses >= c.opts.MaxUses {
		c.remove(e)
	} else {
		c.lru.MoveToFront(e.lru)
	}
	return dk
}

// store holds a copy of dataKey for id, its first use counted, dropping
// the least recently used key past MaxEntries. c.mu is held.
func (c *cache) store(id cacheID, dataKey []byte) {
	if c.closed || len(dataKey) == 0 || c.opts.MaxUses == 1 {
		return
	}
	if old := c.entries[id]; old != nil {
		c.remove(old)
	}
	e := &cacheEntry{
		id:      id,
		dataKey: append([]byte(nil), dataKey...),
		expires: c.opts.clock.Now().Add(c.opts.MaxAge),
		uses:    1,
	}
	e.lru = c.lru.PushFront(e)
	e.age = c.age.PushBack(e)
	c.entries[id] = e
	for len(c.entries) > c.opts.MaxEntries {
		c.remove(c.lru.Back().Value.(*cacheEntry))
	}
	if c.stop == nil {
		c.arm()
	}
}

// remove drops e and clears its data key. c.mu is held.
func (c *cache) remove(e *cacheEntry) {
	clear(e.dataKey)
	delete(c.entries, e.id)
	c.lru.Remove(e.lru)
	c.age.Remove(e.age)
}

// arm sets the timer that sweeps out the oldest data key when it expires,
// so that no key outlives MaxAge in memory for want of a later call.
// c.mu is held.
func (c *cache) arm() {
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	front := c.age.Front()
	if front == nil || c.closed {
		return
	}
	d := front.Value.(*cacheEntry).expires.Sub(c.opts.clock.Now())
	c.stop = c.opts.clock.AfterFunc(max(d, 0), c.sweep)
}

// sweep drops every expired data key and sets the timer for the next.
func (c *cache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.clock.Now()
	for f := c.age.Front(); f != nil; f = c.age.Front() {
		e := f.Value.(*cacheEntry)
		if now.Before(e.expires) {
			break
		}
		c.remove(e)
	}
	c.stop = nil
	c.arm()
}

// close clears every data key held; later unwraps go to the wrapped
// provider uncached.
func (c *cache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, e := range c.entries {
		c.remove(e)
	}
	c.arm() // stops the timer
}
