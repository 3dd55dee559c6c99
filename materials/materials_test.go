package materials_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
)

func aesKey(t *testing.T, kid string) *keyring.AES {
	k := make([]byte, 32)
	rand.Read(k)
	kr, err := keyring.NewAES(k, map[string]string{"kid": kid})
	require.NoError(t, err)
	return kr
}

func provider(t *testing.T, cur keyring.Keyring, others ...keyring.Keyring) materials.Provider {
	t.Helper()
	p := materials.NewProvider(cur, others...)
	return p
}

func wrapped(t *testing.T, kr keyring.Keyring) (*envelope.WrappedKey, []byte) {
	dk := make([]byte, 32)
	rand.Read(dk)
	w, err := kr.Wrap(context.Background(), dk, format.ContentAESGCMCommit)
	require.NoError(t, err)
	return w, dk
}

func TestProviderResolvesByDescription(t *testing.T) {
	ctx := context.Background()
	a, b, c := aesKey(t, "a"), aesKey(t, "b"), aesKey(t, "c")
	p := provider(t, a, b)
	require.Same(t, a, p.Current())

	for _, kr := range []*keyring.AES{a, b} {
		w, dk := wrapped(t, kr)
		got, err := p.Unwrap(ctx, w, format.ContentAESGCMCommit)
		require.NoError(t, err)
		require.Equal(t, dk, got)
		k, err := p.Resolve(ctx, w)
		require.NoError(t, err)
		require.Same(t, kr, k)
	}
	w, _ := wrapped(t, c)
	_, err := p.Unwrap(ctx, w, format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrNoMasterKey)
	var nmk *materials.NoMasterKeyError
	require.True(t, errors.As(err, &nmk))
	require.Equal(t, map[string]string{"kid": "c"}, nmk.Description)

	// A reader-only provider.
	r := provider(t, nil, c)
	require.Nil(t, r.Current())
	_, err = r.Unwrap(ctx, w, format.ContentAESGCMCommit)
	require.NoError(t, err)
}

func TestEmptyDescriptionMatchesAbsent(t *testing.T) {
	k := make([]byte, 16)
	rand.Read(k)
	kr, err := keyring.NewAES(k, nil)
	require.NoError(t, err)
	w, _ := wrapped(t, kr)
	w.Description = nil
	_, err = provider(t, kr).Resolve(context.Background(), w)
	require.NoError(t, err)
}

func TestLookupProvider(t *testing.T) {
	ctx := context.Background()
	cur, old, wrong := aesKey(t, "2026"), aesKey(t, "2025"), aesKey(t, "other")
	calls := 0
	p := materials.NewLookupProvider(cur, func(ctx context.Context, desc map[string]string) (keyring.Keyring, error) {
		calls++
		switch desc["kid"] {
		case "2025":
			return old, nil
		case "liar":
			return wrong, nil
		case "broken":
			return nil, errors.New("vault unreachable")
		}
		return nil, nil
	})
	w, dk := wrapped(t, old)
	for range 3 {
		got, err := p.Unwrap(ctx, w, format.ContentAESGCMCommit)
		require.NoError(t, err)
		require.Equal(t, dk, got)
	}
	require.Equal(t, 1, calls)

	w2, _ := wrapped(t, cur)
	_, err := p.Resolve(ctx, w2)
	require.NoError(t, err)
	require.Equal(t, 1, calls, "current key needs no lookup")

	for kid, want := range map[string]error{"unknown": envelope.ErrNoMasterKey, "liar": envelope.ErrNoMasterKey} {
		_, err := p.Resolve(ctx, &envelope.WrappedKey{Algorithm: format.WrapAESGCM, Description: map[string]string{"kid": kid}})
		require.ErrorIs(t, err, want, kid)
	}
	_, err = p.Resolve(ctx, &envelope.WrappedKey{Description: map[string]string{"kid": "broken"}})
	require.ErrorContains(t, err, "vault unreachable")
	require.NotErrorIs(t, err, envelope.ErrNoMasterKey)
}

// Finding 10: a failed constructor's nil keyring (`master, _ :=
// keyring.NewAES(badKey, …)`) gives a provider whose every call fails with
// ErrNilKeyring (and that s3crypto.New refuses), instead of a nil-pointer
// panic on the first PutObject.
func TestFinding10TypedNilKeyringRefused(t *testing.T) {
	ctx := context.Background()
	master, err := keyring.NewAES(make([]byte, 7), nil) // a bad key: master is a nil *keyring.AES
	require.Error(t, err)
	good := aesKey(t, "good")
	lookup := func(context.Context, map[string]string) (keyring.Keyring, error) { return nil, nil }
	w, _ := wrapped(t, good)
	for name, p := range map[string]materials.Provider{
		"current":        materials.NewProvider(master),
		"other":          materials.NewProvider(good, master),
		"untyped other":  materials.NewProvider(good, nil),
		"no key at all":  materials.NewProvider(nil),
		"lookup current": materials.NewLookupProvider(master, lookup),
		"nil lookup":     materials.NewLookupProvider(good, nil),
	} {
		require.NotNil(t, p, name)
		_, err := p.Unwrap(ctx, w, format.ContentAESGCMCommit)
		require.Error(t, err, name)
		_, err = p.Resolve(ctx, w)
		require.Error(t, err, name)
		require.NotNil(t, p.Current(), name)
		_, err = p.Current().Wrap(ctx, make([]byte, 32), format.ContentAESGCMCommit)
		require.Error(t, err, name)
		if name != "nil lookup" {
			require.ErrorIs(t, err, materials.ErrNilKeyring, name)
		}
	}

	// A lookup that returns a typed nil finds no key; it does not panic.
	var none *keyring.AES
	p := materials.NewLookupProvider(good, func(context.Context, map[string]string) (keyring.Keyring, error) { return none, nil })
	w, _ = wrapped(t, aesKey(t, "elsewhere"))
	_, err = p.Unwrap(ctx, w, format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrNoMasterKey)
}

// Finding 5 (provider part): an expected encryption context is refused for
// every wrap that cannot bind one, whatever the master key's
// implementation: here a keyring that would ignore it.
func TestFinding05ProviderRefusesUnboundContext(t *testing.T) {
	kr := ignoresContext{aesKey(t, "a")}
	w, dk := wrapped(t, kr.AES)
	p := provider(t, kr)
	ctx := keyring.WithEncryptionContext(context.Background(), map[string]string{"tenant": "acme"})
	_, err := p.Unwrap(ctx, w, format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrDisallowed)
	got, err := p.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
	require.NoError(t, err)
	require.Equal(t, dk, got)
}

// ignoresContext unwraps whatever the context says.
type ignoresContext struct{ *keyring.AES }

func (k ignoresContext) Unwrap(_ context.Context, w *envelope.WrappedKey, alg string) ([]byte, error) {
	return k.AES.Unwrap(context.Background(), w, alg)
}
