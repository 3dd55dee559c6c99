package kmsctx

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/internal/format"
)

func TestCarried(t *testing.T) {
	stored := map[string]string{"tenant": "acme", ReservedKey: format.ContentAESGCM, LegacyKeyIDKey: "arn"}
	w := &format.WrappedKey{Algorithm: format.WrapKMSContext, Description: stored}
	// A kms+context writer's own kms_cmk_id is the caller's, and kept.
	require.Equal(t, map[string]string{"tenant": "acme", LegacyKeyIDKey: "arn"}, Carried(w))
	w.Algorithm = format.WrapLegacyKMS
	require.Equal(t, map[string]string{"tenant": "acme"}, Carried(w))
	require.Len(t, stored, 3, "the stored context is not changed")
	require.Equal(t, map[string]string{}, Carried(&format.WrappedKey{Algorithm: format.WrapLegacyKMS}))
}
