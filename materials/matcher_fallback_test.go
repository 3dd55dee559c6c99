package materials_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// anyWrap is an AES key that, like a KMS key, matches every wrap of its
// algorithm whatever the description (a Matches method).
type anyWrap struct{ *keyring.AES }

func (anyWrap) Matches(w *envelope.WrappedKey) bool { return w.Algorithm == format.WrapAESGCM }

// TestProviderTriesEveryMatcher: when keys match by more than the
// description (KMS keys match every KMS wrap), the first that matches may
// not be the one that wrapped the data key; Unwrap tries the others, in
// order, so that a provider holding a new and an old such key reads both.
func TestProviderTriesEveryMatcher(t *testing.T) {
	ctx := context.Background()
	cur, old, other := anyWrap{aesKey(t, "new")}, anyWrap{aesKey(t, "old")}, anyWrap{aesKey(t, "other")}
	p := provider(t, cur, old)
	for _, kr := range []anyWrap{cur, old} {
		w, dk := wrapped(t, kr)
		got, err := p.Unwrap(ctx, w, format.ContentAESGCMCommit)
		require.NoError(t, err)
		require.Equal(t, dk, got)
	}
	w, _ := wrapped(t, other)
	_, err := p.Unwrap(ctx, w, format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrAuthentication, "the first key's error")

	// Keys matched by description are not tried beyond the first match.
	a, b := aesKey(t, "same"), aesKey(t, "same")
	w, _ = wrapped(t, b)
	_, err = provider(t, a, b).Unwrap(ctx, w, format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrAuthentication)
}
