package materials_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
)

// reEncrypter is how s3crypto's rewraps find a provider's ReEncrypt.
type reEncrypter interface {
	ReEncrypt(ctx context.Context, w *envelope.WrappedKey, contentAlg string, to *keyring.KMS) (*envelope.WrappedKey, error)
}

func kmsKey(t *testing.T, f *fakeKMS, name string) *keyring.KMS {
	k, err := keyring.NewKMS(f, "arn:aws:kms:us-east-1:111122223333:key/"+name)
	require.NoError(t, err)
	return k
}

// A provider re-encrypts from the KMS master keys Unwrap would try, in its
// order, never from the destination itself: for a rotation from old to
// new, one ReEncrypt request per object.
func TestProviderReEncrypt(t *testing.T) {
	ctx := context.Background()
	f := newFakeKMS("111122223333")
	cur, old, older := kmsKey(t, f, "new"), kmsKey(t, f, "old"), kmsKey(t, f, "older")
	p := materials.NewProvider(cur, aesKey(t, "aes"), older, old)
	for _, prov := range []materials.Provider{p, cached(t, p)} {
		re, ok := prov.(reEncrypter)
		require.True(t, ok, "%T", prov)
		dk, w, err := old.GenerateDataKey(ctx, format.ContentAESGCMCommit)
		require.NoError(t, err)
		before := f.count("ReEncrypt")
		nw, err := re.ReEncrypt(ctx, w, format.ContentAESGCMCommit, cur)
		require.NoError(t, err)
		require.Equal(t, before+2, f.count("ReEncrypt"), "older refused, old accepted; new not tried")
		got, err := cur.Unwrap(ctx, nw, format.ContentAESGCMCommit)
		require.NoError(t, err)
		require.Equal(t, dk, got)
	}

	// A data key under no key of the provider but the new one: nothing to
	// re-encrypt from.
	_, w, err := cur.GenerateDataKey(ctx, format.ContentAESGCMCommit)
	require.NoError(t, err)
	_, err = materials.NewProvider(cur).(reEncrypter).ReEncrypt(ctx, w, format.ContentAESGCMCommit, cur)
	require.ErrorIs(t, err, envelope.ErrNoMasterKey)
	// Under a key the provider does not hold: the first key's refusal.
	_, w, err = kmsKey(t, f, "elsewhere").GenerateDataKey(ctx, format.ContentAESGCMCommit)
	require.NoError(t, err)
	_, err = p.(reEncrypter).ReEncrypt(ctx, w, format.ContentAESGCMCommit, cur)
	require.ErrorIs(t, err, envelope.ErrAuthentication)

	// A destination whose client cannot ReEncrypt: errors.ErrUnsupported,
	// for the caller to fall back on; nothing sent.
	plain, err := keyring.NewKMS(onlyKMS{f}, "arn:aws:kms:us-east-1:111122223333:key/new")
	require.NoError(t, err)
	before := f.count("ReEncrypt")
	_, err = p.(reEncrypter).ReEncrypt(ctx, w, format.ContentAESGCMCommit, plain)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	require.Equal(t, before, f.count("ReEncrypt"))

	// A cache over a provider without it says so; an invalid provider
	// fails with its reason.
	_, err = cached(t, userProvider{p}).(reEncrypter).ReEncrypt(ctx, w, format.ContentAESGCMCommit, cur)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	_, err = materials.NewProvider(nil).(reEncrypter).ReEncrypt(ctx, w, format.ContentAESGCMCommit, cur)
	require.ErrorIs(t, err, materials.ErrNilKeyring)
}

// onlyKMS is a KMS client with KMSClient's methods only.
type onlyKMS struct{ keyring.KMSClient }

// userProvider is a Provider implemented outside the package.
type userProvider struct{ materials.Provider }
