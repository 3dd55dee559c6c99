package materials_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/materials"
)

// currentSkipper is how s3crypto's rewraps find a provider's
// UnwrapSkippingCurrent.
type currentSkipper interface {
	UnwrapSkippingCurrent(ctx context.Context, w *envelope.WrappedKey, contentAlg string, refused error) ([]byte, error)
}

// A rewrap asks the current KMS key first (is the object already under
// it?); told that it refused, the provider tries its other keys as Unwrap
// does, in order, without asking it again — cached or not — and fails as
// Unwrap fails, with the current key's refusal.
func TestProviderUnwrapSkippingCurrent(t *testing.T) {
	ctx := context.Background()
	const alg = format.ContentAESGCMCommit
	f := newFakeKMS("111122223333")
	cur, old, older := kmsKey(t, f, "new"), kmsKey(t, f, "old"), kmsKey(t, f, "older")
	p := materials.NewProvider(cur, aesKey(t, "aes"), older, old)
	decrypts := func(do func()) int {
		before := f.count("Decrypt")
		do()
		return f.count("Decrypt") - before
	}

	dk, w, err := old.GenerateDataKey(ctx, alg)
	require.NoError(t, err)
	_, refused := cur.Unwrap(ctx, w, alg)
	require.ErrorIs(t, refused, envelope.ErrAuthentication)
	for _, prov := range []materials.Provider{p, cached(t, p), cached(t, cached(t, p))} {
		s, ok := prov.(currentSkipper)
		require.True(t, ok, "%T", prov)
		var got []byte
		require.Equal(t, 2, decrypts(func() { got, err = s.UnwrapSkippingCurrent(ctx, w, alg, refused) }), "%T: older refused, old accepted; new not asked", prov)
		require.NoError(t, err)
		require.Equal(t, dk, got)
		require.Equal(t, 3, decrypts(func() { _, err = p.Unwrap(ctx, w, alg) }), "Unwrap asks new, older, old")
		require.NoError(t, err)
		// No refusal given: Unwrap.
		require.Equal(t, 3, decrypts(func() {
			_, err = materials.NewProvider(cur, older, old).(currentSkipper).UnwrapSkippingCurrent(ctx, w, alg, nil)
		}))
		require.NoError(t, err)
	}
	// A held data key answers whatever the refusal.
	c := cached(t, p)
	_, err = c.Unwrap(ctx, w, alg)
	require.NoError(t, err)
	require.Zero(t, decrypts(func() { _, err = c.(currentSkipper).UnwrapSkippingCurrent(ctx, w, alg, refused) }))
	require.NoError(t, err)

	// Under a key the provider does not hold: Unwrap's error, the current
	// key's refusal, for one request less.
	_, w, err = kmsKey(t, f, "elsewhere").GenerateDataKey(ctx, alg)
	require.NoError(t, err)
	_, refused = cur.Unwrap(ctx, w, alg)
	var skipErr, plainErr error
	require.Equal(t, 2, decrypts(func() { _, skipErr = p.(currentSkipper).UnwrapSkippingCurrent(ctx, w, alg, refused) }))
	require.Equal(t, 3, decrypts(func() { _, plainErr = p.Unwrap(ctx, w, alg) }))
	require.ErrorIs(t, skipErr, envelope.ErrAuthentication)
	require.Equal(t, plainErr.Error(), skipErr.Error())
	require.Same(t, refused, skipErr)

	// A current key that does not match the wrap was not asked: the
	// refusal is someone else's, and the provider's keys are tried as by
	// Unwrap.
	_, w, err = old.GenerateDataKey(ctx, alg)
	require.NoError(t, err)
	aesCur := aesKey(t, "aes")
	require.Equal(t, 2, decrypts(func() {
		_, err = materials.NewProvider(aesCur, older, old).(currentSkipper).UnwrapSkippingCurrent(ctx, w, alg, refused)
	}))
	require.NoError(t, err)

	// A cache over a provider without the method asks it by Unwrap.
	require.Equal(t, 3, decrypts(func() {
		_, err = cached(t, userProvider{p}).(currentSkipper).UnwrapSkippingCurrent(ctx, w, alg, refused)
	}))
	require.NoError(t, err)
}

// Keys matched by description keep their rule when the current one is
// skipped: the first match wins, so its refusal is the answer, and no
// later key under the same description is tried; a current key under
// another description is no reason to skip the one that matches.
func TestProviderSkippingCurrentByDescription(t *testing.T) {
	ctx := context.Background()
	const alg = format.ContentAESGCMCommit
	a, b := &counted{Keyring: aesKey(t, "same")}, &counted{Keyring: aesKey(t, "same")}
	w, _ := wrapped(t, b)
	_, refused := a.Unwrap(ctx, w, alg)
	require.ErrorIs(t, refused, envelope.ErrAuthentication)
	a.n.Store(0)
	_, err := provider(t, a, b).(currentSkipper).UnwrapSkippingCurrent(ctx, w, alg, refused)
	require.Same(t, refused, err)
	require.Zero(t, a.n.Load())
	require.Zero(t, b.n.Load(), "not tried beyond the first match, as by Unwrap")
	_, err = provider(t, a, b).Unwrap(ctx, w, alg)
	require.Equal(t, refused.Error(), err.Error())

	c := &counted{Keyring: aesKey(t, "c")}
	got, err := provider(t, c, b).(currentSkipper).UnwrapSkippingCurrent(ctx, w, alg, refused)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	require.EqualValues(t, 1, b.n.Load())
	require.Zero(t, c.n.Load())

	// Under a description no key has: ErrNoMasterKey, as by Unwrap.
	w, _ = wrapped(t, aesKey(t, "nobody"))
	_, err = provider(t, a, b).(currentSkipper).UnwrapSkippingCurrent(ctx, w, alg, refused)
	var nmk *materials.NoMasterKeyError
	require.ErrorAs(t, err, &nmk)
	require.Equal(t, map[string]string{"kid": "nobody"}, nmk.Description)
}
