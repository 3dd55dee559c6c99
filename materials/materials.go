// Package materials resolves master keys: the current one, which wraps the
// data keys of new objects, and, for reading, the one whose description
// matches the description stored with an object — which may be an older key
// than the current one.
//
// # Caching data keys
//
// Every read of an object unwraps its data key: a KMS Decrypt request, or
// an RSA private-key operation. NewCache wraps a provider so that an object
// read again soon after reuses the data key unwrapped the first time. It
// holds each data key (a copy; callers get copies of their own) under
// everything an unwrap's answer depends on: the wrapped key, its wrap
// algorithm, the stored description or KMS encryption context, the content
// algorithm, and the encryption context the caller expects
// (keyring.WithEncryptionContext). A request that differs in any of them —
// a tampered envelope, another expectation — misses and is checked by the
// wrapped provider as it would be without the cache; what the formats check
// after the unwrap (the key commitment, the body's tag) is checked on every
// read, hit or miss. Failed unwraps are not kept. Concurrent misses for the
// same key make one unwrap.
//
// It is bounded by entries (least recently used dropped first), by age
// (MaxAge from the unwrap, one minute by default) and optionally by uses per
// key; a data key dropped for any reason, or by the function NewCache
// returns, is cleared in memory. Writes never use it: every new object gets
// a fresh data key from Current.
//
// What it trades: plaintext data keys stay in the process's memory for up
// to MaxAge, and for that long a revoked KMS grant, a disabled KMS key or a
// master key removed from the provider still lets the process read the
// objects it read recently. It saves nothing when each object is read once
// (a RewrapAll, a backup); use it for objects read repeatedly, and not in a
// process whose memory is less trusted than its key service.
package materials

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/s3envelope/s3envelope/internal/kmsctx"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/typednil"
	"github.com/s3envelope/s3envelope/keyring"
)

// Provider supplies master keys. It unwraps a stored data key with the master
// key its description names (so it is an envelope.Unwrapper), and names the
// current master key for new objects and rewraps.
type Provider interface {
	envelope.Unwrapper
	// Current returns the master key that wraps data keys of new objects, or
	// nil for a provider that only reads.
	Current() keyring.Keyring
	// Resolve returns the master key for a stored wrapped key. It fails with
	// a *NoMasterKeyError (errors.Is envelope.ErrNoMasterKey) when none
	// matches.
	Resolve(ctx context.Context, w *envelope.WrappedKey) (keyring.Keyring, error)
}

// NoMasterKeyError reports that no master key matches a stored description.
// Descriptions are not secret, so it names it.
type NoMasterKeyError struct {
	Description map[string]string
}

func (e *NoMasterKeyError) Error() string {
	return fmt.Sprintf("%v: %s", envelope.ErrNoMasterKey, format.EncodeDescription(e.Description))
}

// Unwrap lets errors.Is match envelope.ErrNoMasterKey.
func (e *NoMasterKeyError) Unwrap() error { return envelope.ErrNoMasterKey }

// Matches reports whether master key k is the one that wrapped w: as k
// says, if it has a method Matches(*envelope.WrappedKey) bool (a KMS key
// matches every KMS wrap, and leaves the rest to KMS), else when their
// descriptions are equal (an absent description equals an empty one).
func Matches(k keyring.Keyring, w *envelope.WrappedKey) bool {
	if m, ok := k.(matcher); ok {
		return m.Matches(w)
	}
	return maps.Equal(k.Description(), w.Description)
}

// matcher is a master key that recognises the data keys it wrapped by more
// than the stored description.
type matcher interface {
	Matches(w *envelope.WrappedKey) bool
}

// ErrNilKeyring reports a master key that is nil or a nil pointer: what a
// failed constructor returns (`k, _ := keyring.NewAES(badKey, …)`). A
// provider built from one fails every call with it (and s3crypto.New refuses
// it) instead of panicking on first use.
var ErrNilKeyring = errors.New("materials: nil master key (did its constructor fail?)")

// NewProvider returns a provider whose current master key is current and
// which also reads objects wrapped by any of others, each found by its
// description. Descriptions should be unique; the first match wins, current
// first. A provider that only reads has no current key: pass it among
// others, with a nil current. Invalid arguments (no key at all, a nil or
// nil-pointer key among others, a current key that is a nil pointer) give a
// provider whose every call fails with the reason (ErrNilKeyring).
func NewProvider(current keyring.Keyring, others ...keyring.Keyring) Provider {
	if current != nil && typednil.Is(current) {
		return failed(fmt.Errorf("%w: the current master key", ErrNilKeyring))
	}
	all := make([]keyring.Keyring, 0, 1+len(others))
	if current != nil {
		all = append(all, current)
	}
	for i, k := range others {
		if typednil.Is(k) {
			return failed(fmt.Errorf("%w: master key %d of others", ErrNilKeyring, i))
		}
		all = append(all, k)
	}
	if len(all) == 0 {
		return failed(fmt.Errorf("%w: NewProvider was given no master key", ErrNilKeyring))
	}
	return &provider{current: current, keys: all}
}

// NewLookupProvider returns a provider whose current master key is current
// (nil for a reader) and which, for a description that current does not
// match, asks lookup for the master key (from a vault, a file, a key
// service). A successful lookup is remembered for the provider's lifetime.
// lookup returning (nil, nil) means no such key; a key whose description
// differs from the one asked for is refused. A nil lookup, or a current key
// that is a nil pointer, gives a provider whose every call fails with the
// reason (ErrNilKeyring).
func NewLookupProvider(current keyring.Keyring, lookup func(ctx context.Context, desc map[string]string) (keyring.Keyring, error)) Provider {
	if current != nil && typednil.Is(current) {
		return failed(fmt.Errorf("%w: the current master key", ErrNilKeyring))
	}
	if lookup == nil {
		return failed(errors.New("materials: NewLookupProvider needs a lookup function"))
	}
	p := &provider{current: current, lookup: lookup}
	if current != nil {
		p.keys = []keyring.Keyring{current}
	}
	return p
}

// invalid is the provider of invalid arguments: every call fails with err,
// the writer's too (Current is a master key that refuses to wrap), so the
// mistake surfaces at the first operation, never as a panic. Err lets
// s3crypto.New report it at construction.
type invalid struct{ err error }

func failed(err error) Provider { return &invalid{err} }

func (p *invalid) Err() error               { return p.err }
func (p *invalid) Current() keyring.Keyring { return invalidKey(*p) }
func (p *invalid) Resolve(context.Context, *envelope.WrappedKey) (keyring.Keyring, error) {
	return nil, p.err
}
func (p *invalid) Unwrap(context.Context, *envelope.WrappedKey, string) ([]byte, error) {
	return nil, p.err
}
func (p *invalid) ReEncrypt(context.Context, *envelope.WrappedKey, string, *keyring.KMS) (*envelope.WrappedKey, error) {
	return nil, p.err
}

type invalidKey invalid

func (k invalidKey) Description() map[string]string { return nil }
func (k invalidKey) Wrap(context.Context, []byte, string) (*envelope.WrappedKey, error) {
	return nil, k.err
}
func (k invalidKey) Unwrap(context.Context, *envelope.WrappedKey, string) ([]byte, error) {
	return nil, k.err
}

type provider struct {
	current keyring.Keyring
	keys    []keyring.Keyring
	lookup  func(ctx context.Context, desc map[string]string) (keyring.Keyring, error)

	mu    sync.Mutex
	found map[string]keyring.Keyring // lookups by encoded description
}

func (p *provider) Current() keyring.Keyring { return p.current }

func (p *provider) Resolve(ctx context.Context, w *envelope.WrappedKey) (keyring.Keyring, error) {
	for _, k := range p.keys {
		if Matches(k, w) {
			return k, nil
		}
	}
	if p.lookup == nil {
		return nil, &NoMasterKeyError{Description: maps.Clone(w.Description)}
	}
	id := format.EncodeDescription(w.Description)
	p.mu.Lock()
	k, ok := p.found[id]
	p.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := p.lookup(ctx, maps.Clone(w.Description))
	if err != nil {
		return nil, fmt.Errorf("materials: looking up master key %s: %w", id, err)
	}
	if typednil.Is(k) {
		return nil, &NoMasterKeyError{Description: maps.Clone(w.Description)}
	}
	if !Matches(k, w) {
		return nil, fmt.Errorf("materials: lookup for %s returned master key %s: %w", id,
			format.EncodeDescription(k.Description()), &NoMasterKeyError{Description: maps.Clone(w.Description)})
	}
	p.mu.Lock()
	if p.found == nil {
		p.found = map[string]keyring.Keyring{}
	}
	p.found[id] = k
	p.mu.Unlock()
	return k, nil
}

// ReEncrypt rewraps w under to inside KMS (keyring.KMS.ReEncrypt), from
// the first of the provider's KMS master keys that KMS accepts as w's: the
// keys Unwrap would try, in its order, less to itself (a data key already
// under to is not rewrapped; a rewrap checks that first). It is not part of
// Provider: s3crypto's rewraps find it by an interface of their own, and
// fall back to unwrapping and wrapping without it. Errors are the first
// master key's, or wrap errors.ErrUnsupported when to's client has no
// ReEncrypt.
func (p *provider) ReEncrypt(ctx context.Context, w *envelope.WrappedKey, contentAlg string, to *keyring.KMS) (*envelope.WrappedKey, error) {
	keys := p.matching(w)
	if len(keys) == 0 {
		k, err := p.Resolve(ctx, w)
		if err != nil {
			return nil, err
		}
		keys = []keyring.Keyring{k}
	}
	var first error
	for _, k := range keys {
		from, ok := k.(*keyring.KMS)
		if !ok || from == to || (from.KeyID() != "" && from.KeyID() == to.KeyID()) {
			continue
		}
		nw, err := to.ReEncrypt(ctx, w, contentAlg, from)
		if err == nil || errors.Is(err, errors.ErrUnsupported) {
			return nw, err
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%w: no KMS master key but the new one to re-encrypt from", &NoMasterKeyError{Description: maps.Clone(w.Description)})
	}
	return nil, first
}

// matching returns the provider's master keys that match w, in order.
func (p *provider) matching(w *envelope.WrappedKey) []keyring.Keyring {
	var keys []keyring.Keyring
	for _, k := range p.keys {
		if Matches(k, w) {
			keys = append(keys, k)
		}
	}
	return keys
}

func (p *provider) Unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
	return p.unwrap(ctx, w, contentAlg, nil)
}

// UnwrapSkippingCurrent is Unwrap for a caller that has just asked the
// current master key itself to unwrap w, with the same ctx and contentAlg,
// and was refused with refused: the current key is not asked again (the
// same question gets the same answer) but otherwise keeps its place, so
// the same keys are tried by the same rules, and refused is the error
// returned where Unwrap would return the current key's. A nil refused, or
// a current key that does not match w, is Unwrap. It is not part of
// Provider: s3crypto's rewraps, which ask the current key first (is the
// object already under it?), find it by an interface of their own.
func (p *provider) UnwrapSkippingCurrent(ctx context.Context, w *envelope.WrappedKey, contentAlg string, refused error) ([]byte, error) {
	return p.unwrap(ctx, w, contentAlg, refused)
}

// unwrap is Unwrap, with the current master key's answer given as
// currentErr when the caller already has it (nil: ask it).
func (p *provider) unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string, currentErr error) ([]byte, error) {
	// Whatever the master key's implementation: an expected encryption
	// context can only be checked where KMS binds one.
	if err := kmsctx.Check(ctx, w.Algorithm); err != nil {
		return nil, err
	}
	var k keyring.Keyring
	var dk []byte
	var err error
	if currentErr != nil && p.current != nil && Matches(p.current, w) {
		// The current key is the provider's first (Resolve's pick when it
		// matches), and its answer is known.
		k, err = p.current, currentErr
	} else {
		if k, err = p.Resolve(ctx, w); err != nil {
			return nil, err
		}
		dk, err = k.Unwrap(ctx, w, contentAlg)
	}
	if _, byMatcher := k.(matcher); err == nil || !byMatcher {
		return dk, err
	}
	// A key that matches by more than the description (a KMS key matches
	// every KMS wrap) may not be the one that wrapped w: try the provider's
	// other keys that match too, in order (the first error is returned).
	others := p.matching(w)
	if len(others) > 0 {
		others = others[1:] // the first is k, tried above
	}
	for _, other := range others {
		if dk, err2 := other.Unwrap(ctx, w, contentAlg); err2 == nil {
			return dk, nil
		}
	}
	return nil, err
}
