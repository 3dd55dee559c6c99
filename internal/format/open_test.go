package format

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFormatTable: every stored format has code, found by its Format; no
// two share a Format or a wrapped-key field; and envelopes pick the code
// that reads their body as documented.
func TestFormatTable(t *testing.T) {
	seen := map[string]Format{}
	for _, f := range []Format{FormatV1, FormatV2, FormatV3, FormatSegmented} {
		sf := formatOf(f)
		require.NotNil(t, sf, "%v", f)
		require.Equal(t, f, sf.format())
		l := sf.layout()
		require.Contains(t, l.all, l.key, "%v", f)
		require.Contains(t, l.all, l.wrap, "%v", f)
		for _, k := range l.onObject {
			require.Contains(t, l.all, k, "%v", f)
		}
		_, dup := seen[l.key]
		require.False(t, dup, "%v shares its key field %s", f, l.key)
		seen[l.key] = f
	}
	require.Len(t, formats, len(seen))
	require.Nil(t, formatOf(0))
	require.Nil(t, formatOf(9))

	for _, tc := range []struct {
		e    Envelope
		want bodyFormat
	}{
		{Envelope{Format: FormatV1, ContentAlgorithm: ContentAESCBC}, v1Format{}},
		{Envelope{Format: FormatV2, ContentAlgorithm: ContentAESCBC}, v1Format{}},
		{Envelope{Format: FormatV2, ContentAlgorithm: ContentAESGCM}, v2Format{}},
		{Envelope{Format: FormatV3, ContentAlgorithm: ContentAESGCMCommit}, v3Format{}},
		{Envelope{Format: FormatSegmented, ContentAlgorithm: ContentSegmented}, segFormat{}},
		{Envelope{Format: FormatV1, ContentAlgorithm: ContentAESGCM}, noFormat{}},
		{Envelope{}, noFormat{}},
	} {
		require.Equal(t, tc.want, bodyFormatOf(&tc.e), "%v %q", tc.e.Format, tc.e.ContentAlgorithm)
	}
}
