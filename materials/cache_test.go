package materials_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
)

// counted is a master key that counts its unwraps.
type counted struct {
	keyring.Keyring
	n atomic.Int64
}

func (k *counted) Unwrap(ctx context.Context, w *envelope.WrappedKey, alg string) ([]byte, error) {
	k.n.Add(1)
	return k.Keyring.Unwrap(ctx, w, alg)
}

func cached(t *testing.T, p materials.Provider, optFns ...func(*materials.CacheOptions)) materials.Provider {
	c, closeCache := materials.NewCache(p, optFns...)
	t.Cleanup(closeCache)
	return c
}

// A request that differs from a cached one in anything an unwrap depends
// on misses, and fails or succeeds as it would without the cache: a
// tampered envelope is never answered from the cache.
func TestCacheMissesOnAnyDifference(t *testing.T) {
	ctx := context.Background()
	k := &counted{Keyring: aesKey(t, "a")}
	c := cached(t, provider(t, k))
	w, dk := wrapped(t, k)
	got, err := c.Unwrap(ctx, w, format.ContentAESGCMCommit)
	require.NoError(t, err)
	require.Equal(t, dk, got)

	tamper := map[string]func(w *envelope.WrappedKey) (string, error){
		"ciphertext": func(w *envelope.WrappedKey) (string, error) {
			w.Ciphertext[len(w.Ciphertext)-1] ^= 1
			return format.ContentAESGCMCommit, envelope.ErrAuthentication
		},
		"description": func(w *envelope.WrappedKey) (string, error) {
			w.Description = map[string]string{"kid": "b"}
			return format.ContentAESGCMCommit, envelope.ErrNoMasterKey
		},
		"extra description key": func(w *envelope.WrappedKey) (string, error) {
			w.Description["x"] = "y"
			return format.ContentAESGCMCommit, envelope.ErrNoMasterKey
		},
		"wrap algorithm": func(w *envelope.WrappedKey) (string, error) {
			w.Algorithm = format.WrapRSAOAEPSHA1
			return format.ContentAESGCMCommit, envelope.ErrUnsupported
		},
		"content algorithm": func(*envelope.WrappedKey) (string, error) {
			return format.ContentAESGCM, envelope.ErrAuthentication
		},
	}
	for name, change := range tamper {
		tw := &envelope.WrappedKey{Algorithm: w.Algorithm, Ciphertext: append([]byte(nil), w.Ciphertext...), Description: maps.Clone(w.Description)}
		alg, want := change(tw)
		before := k.n.Load()
		for range 2 {
			_, err := c.Unwrap(ctx, tw, alg)
			require.ErrorIs(t, err, want, name)
			require.NotContains(t, err.Error(), hex.EncodeToString(dk), name)
		}
		if want != envelope.ErrNoMasterKey { // no master key matches: none is called
			require.Equal(t, before+2, k.n.Load(), "%s: both tries reach the master key (errors are not kept)", name)
		}
	}

	// An expected encryption context cannot be checked on an AES wrap: the
	// provider refuses it, although the same wrap without one is held.
	_, err = c.Unwrap(keyring.WithEncryptionContext(ctx, map[string]string{"tenant": "acme"}), w, format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrDisallowed)

	before := k.n.Load()
	got, err = c.Unwrap(ctx, w, format.ContentAESGCMCommit)
	require.NoError(t, err)
	require.Equal(t, dk, got)
	require.Equal(t, before, k.n.Load(), "the original still hits")
}

// fakeKMS binds the encryption context as KMS does, holds any number of
// keys (a blob knows its key), and counts requests by operation.
type fakeKMS struct {
	mu     sync.Mutex
	keyARN string // the key of requests that name none
	blobs  map[string]kmsBlob
	calls  map[string]int
}

type kmsBlob struct {
	arn       string
	plaintext []byte
	ec        map[string]string
}

func newFakeKMS(account string) *fakeKMS {
	return &fakeKMS{keyARN: "arn:aws:kms:us-east-1:" + account + ":key/k", blobs: map[string]kmsBlob{}, calls: map[string]int{}}
}

func (f *fakeKMS) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeKMS) seal(keyID *string, pt []byte, ec map[string]string) []byte {
	blob := make([]byte, 24)
	rand.Read(blob)
	arn := f.keyARN
	if keyID != nil {
		arn = *keyID
	}
	f.blobs[string(blob)] = kmsBlob{arn, append([]byte(nil), pt...), maps.Clone(ec)}
	return blob
}

func (f *fakeKMS) open(keyID *string, blob []byte, ec map[string]string) (kmsBlob, error) {
	b, ok := f.blobs[string(blob)]
	switch {
	case !ok || !maps.Equal(b.ec, ec):
		return b, &kmstypes.InvalidCiphertextException{Message: aws.String("no")}
	case keyID != nil && *keyID != b.arn:
		return b, &kmstypes.IncorrectKeyException{Message: aws.String("another key")}
	}
	return b, nil
}

func (f *fakeKMS) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["GenerateDataKey"]++
	pt := make([]byte, 32)
	rand.Read(pt)
	return &kms.GenerateDataKeyOutput{Plaintext: pt, CiphertextBlob: f.seal(in.KeyId, pt, in.EncryptionContext), KeyId: in.KeyId}, nil
}

func (f *fakeKMS) Encrypt(_ context.Context, in *kms.EncryptInput, _ ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Encrypt"]++
	return &kms.EncryptOutput{CiphertextBlob: f.seal(in.KeyId, in.Plaintext, in.EncryptionContext), KeyId: in.KeyId}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Decrypt"]++
	b, err := f.open(in.KeyId, in.CiphertextBlob, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return &kms.DecryptOutput{Plaintext: append([]byte(nil), b.plaintext...), KeyId: aws.String(b.arn)}, nil
}

func (f *fakeKMS) ReEncrypt(_ context.Context, in *kms.ReEncryptInput, _ ...func(*kms.Options)) (*kms.ReEncryptOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["ReEncrypt"]++
	b, err := f.open(in.SourceKeyId, in.CiphertextBlob, in.SourceEncryptionContext)
	if err != nil {
		return nil, err
	}
	return &kms.ReEncryptOutput{
		CiphertextBlob: f.seal(in.DestinationKeyId, b.plaintext, in.DestinationEncryptionContext),
		KeyId:          in.DestinationKeyId,
		SourceKeyId:    aws.String(b.arn),
	}, nil
}

// The encryption context a caller expects is checked on a hit as on a
// miss: a cached data key is never handed to a request that expects
// another context, and a changed stored context misses (and KMS refuses it).
func TestCacheEnforcesExpectedContext(t *testing.T) {
	f := newFakeKMS("111122223333")
	k, err := keyring.NewKMS(f, f.keyARN)
	require.NoError(t, err)
	c := cached(t, provider(t, k))
	acme := keyring.WithEncryptionContext(context.Background(), map[string]string{"tenant": "acme"})
	dk, w, err := k.GenerateDataKey(acme, format.ContentAESGCMCommit)
	require.NoError(t, err)

	for range 3 {
		got, err := c.Unwrap(acme, w, format.ContentAESGCMCommit)
		require.NoError(t, err)
		require.Equal(t, dk, got)
	}
	require.EqualValues(t, 1, int64(f.count("Decrypt")))

	for name, ec := range map[string]map[string]string{
		"other tenant":  {"tenant": "evil"},
		"more keys":     {"tenant": "acme", "x": "y"},
		"empty context": {},
	} {
		ctx := keyring.WithEncryptionContext(context.Background(), ec)
		_, err := c.Unwrap(ctx, w, format.ContentAESGCMCommit)
		require.ErrorIs(t, err, envelope.ErrAuthentication, name)
	}
	require.EqualValues(t, 1, int64(f.count("Decrypt")), "refused before KMS, as without the cache")

	// No expectation: a request of its own (KMS decrypts it under the
	// stored context), then held.
	for range 2 {
		_, err = c.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
		require.NoError(t, err)
	}
	require.EqualValues(t, 2, int64(f.count("Decrypt")))

	// A stored context changed to match another expectation misses, and
	// KMS refuses the blob under it.
	tw := *w
	tw.Description = maps.Clone(w.Description)
	tw.Description["tenant"] = "evil"
	evil := keyring.WithEncryptionContext(context.Background(), map[string]string{"tenant": "evil"})
	_, err = c.Unwrap(evil, &tw, format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrAuthentication)
	require.EqualValues(t, 3, int64(f.count("Decrypt")))
}

// A discovery key's filter is applied on every unwrap: a key outside it is
// refused each time (KMS asked each time: failures are not kept).
func TestCacheKeepsDiscoveryFilter(t *testing.T) {
	f := newFakeKMS("999999999999")
	writer, err := keyring.NewKMS(f, f.keyARN)
	require.NoError(t, err)
	_, w, err := writer.GenerateDataKey(context.Background(), format.ContentAESGCMCommit)
	require.NoError(t, err)
	d, err := keyring.NewKMSDiscovery(f, keyring.DiscoveryFilter{Partition: "aws", AccountIDs: []string{"111122223333"}})
	require.NoError(t, err)
	c := cached(t, materials.NewProvider(nil, d))
	for i := range 3 {
		_, err := c.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
		require.ErrorIs(t, err, keyring.ErrOutsideDiscoveryFilter)
		require.EqualValues(t, i+1, int64(f.count("Decrypt")))
	}
}

// flaky fails its first unwraps, then works.
type flaky struct {
	keyring.Keyring
	fails atomic.Int64
	calls atomic.Int64
}

func (k *flaky) Unwrap(ctx context.Context, w *envelope.WrappedKey, alg string) ([]byte, error) {
	k.calls.Add(1)
	if k.fails.Add(-1) >= 0 {
		return nil, errors.New("throttled")
	}
	return k.Keyring.Unwrap(ctx, w, alg)
}

func TestCacheDoesNotKeepErrors(t *testing.T) {
	k := &flaky{Keyring: aesKey(t, "a")}
	k.fails.Store(2)
	c := cached(t, provider(t, k))
	w, dk := wrapped(t, k)
	for range 2 {
		_, err := c.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
		require.ErrorContains(t, err, "throttled")
	}
	for range 3 {
		got, err := c.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
		require.NoError(t, err)
		require.Equal(t, dk, got)
	}
	require.EqualValues(t, 3, k.calls.Load())
}

// gated blocks every unwrap until released, counting them.
type gated struct {
	keyring.Keyring
	release chan struct{}
	calls   atomic.Int64
	fail    error
}

func (k *gated) Unwrap(ctx context.Context, w *envelope.WrappedKey, alg string) ([]byte, error) {
	k.calls.Add(1)
	select {
	case <-k.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if k.fail != nil {
		return nil, k.fail
	}
	return k.Keyring.Unwrap(ctx, w, alg)
}

// Concurrent misses for one data key make one unwrap; every caller gets
// the key (run under -race).
func TestCacheConcurrentMissesUnwrapOnce(t *testing.T) {
	k := &gated{Keyring: aesKey(t, "a"), release: make(chan struct{})}
	c := cached(t, provider(t, k))
	w, dk := wrapped(t, k)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			got, err := c.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
			if err == nil && string(got) != string(dk) {
				err = errors.New("wrong key")
			}
			errs <- err
		})
	}
	time.Sleep(20 * time.Millisecond) // let them queue; late ones hit the cache
	close(k.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, k.calls.Load())

	// A failure is shared by the callers that waited for it, not kept.
	k2 := &gated{Keyring: aesKey(t, "a"), release: make(chan struct{}), fail: errors.New("throttled")}
	c2 := cached(t, provider(t, k2))
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			if _, err := c2.Unwrap(context.Background(), w, format.ContentAESGCMCommit); err != nil && strings.Contains(err.Error(), "throttled") {
				failed.Add(1)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(k2.release)
	wg.Wait()
	require.EqualValues(t, 8, failed.Load())
	calls := k2.calls.Load()
	require.GreaterOrEqual(t, calls, int64(1))
	_, err := c2.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
	require.ErrorContains(t, err, "throttled")
	require.Equal(t, calls+1, k2.calls.Load(), "the failure was not kept")
}

// A caller whose context ends while it unwraps for others does not fail
// them: the next one unwraps.
func TestCacheLeaderCancelled(t *testing.T) {
	k := &gated{Keyring: aesKey(t, "a"), release: make(chan struct{})}
	c := cached(t, provider(t, k))
	w, dk := wrapped(t, k)
	ctx, cancel := context.WithCancel(context.Background())
	leaderDone := make(chan error)
	go func() {
		_, err := c.Unwrap(ctx, w, format.ContentAESGCMCommit)
		leaderDone <- err
	}()
	for k.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	waiter := make(chan error)
	go func() {
		got, err := c.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
		if err == nil && string(got) != string(dk) {
			err = errors.New("wrong key")
		}
		waiter <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	require.ErrorIs(t, <-leaderDone, context.Canceled)
	close(k.release)
	require.NoError(t, <-waiter)
	require.EqualValues(t, 2, k.calls.Load())
}

func TestCacheInvalid(t *testing.T) {
	for name, p := range map[string]materials.Provider{
		"nil provider":      cached(t, nil),
		"invalid provider":  cached(t, materials.NewProvider(nil)),
		"negative uses":     cached(t, provider(t, aesKey(t, "a")), func(o *materials.CacheOptions) { o.MaxUses = -1 }),
		"negative age":      cached(t, provider(t, aesKey(t, "a")), func(o *materials.CacheOptions) { o.MaxAge = -time.Second }),
		"negative capacity": cached(t, provider(t, aesKey(t, "a")), func(o *materials.CacheOptions) { o.MaxEntries = -1 }),
	} {
		_, err := p.Unwrap(context.Background(), &envelope.WrappedKey{}, format.ContentAESGCMCommit)
		require.Error(t, err, name)
		e, ok := p.(interface{ Err() error })
		require.True(t, ok, name)
		require.Error(t, e.Err(), name)
	}
	// A valid cache reports no error, and is its provider for writes.
	cur := aesKey(t, "a")
	p := cached(t, provider(t, cur))
	require.NoError(t, p.(interface{ Err() error }).Err())
	require.Same(t, cur, p.Current())
	w, _ := wrapped(t, cur)
	k, err := p.Resolve(context.Background(), w)
	require.NoError(t, err)
	require.Same(t, cur, k)
}
