package format

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// Known answers for the V3 key schedule, from AWS's Go S3 Encryption Client
// v4.0.0 (internal/key_derivation_test.go).
func TestV3KeyScheduleKnownAnswers(t *testing.T) {
	for _, tc := range []struct{ dataKey, messageID, contentKey, commitment string }{
		{
			"80d90dc4cc7e77d8a6332efa44eba56230a7fe7b89af37d1e501ab2e07c0a163",
			"b8ea76bed24c7b85382a148cb9dcd1cfdfb765f55ded4dfa6e0c4c79",
			"6dd14f546cc006e639126e83f5d4d1b118576bb5df97f38c6fb3a1db87bbc338",
			"f89818bc0a346d3a3426b68e9509b6b2ae5fe1f904aa329fb73625db",
		},
		{
			"501afb8227d22e75e68010414b8abdaf3064c081e8e922dafef4992036394d60",
			"61a00b4981a5aacfd136c55cb726e32d2a547dc7600a7d4675c69127",
			"e14786a714748d1d2c3a4a6816dec56ddf1881bbeabb4f39420ffb9f63700b2f",
			"5c1e73e47f6fe3a70d6d094283aceaa76d2975feb829212d88f0afc1",
		},
	} {
		dk, _ := hex.DecodeString(tc.dataKey)
		id, _ := hex.DecodeString(tc.messageID)
		commitment, contentKey, err := deriveV3(dk, id)
		require.NoError(t, err)
		require.Equal(t, tc.commitment, hex.EncodeToString(commitment))
		require.Equal(t, tc.contentKey, hex.EncodeToString(contentKey))

		got, err := openV3Key(dk, id, commitment)
		require.NoError(t, err)
		require.Equal(t, contentKey, got)

		for i := range commitment {
			bad := append([]byte(nil), commitment...)
			bad[i] ^= 0x80
			_, err := openV3Key(dk, id, bad)
			require.True(t, errors.Is(err, ErrAuthentication), "commitment byte %d", i)
		}
	}
	_, _, err := deriveV3(make([]byte, 16), make([]byte, MessageIDSize))
	require.ErrorIs(t, err, ErrMalformed)
}

func TestCheckDataKey(t *testing.T) {
	dk, _ := hex.DecodeString("80d90dc4cc7e77d8a6332efa44eba56230a7fe7b89af37d1e501ab2e07c0a163")
	id, _ := hex.DecodeString("b8ea76bed24c7b85382a148cb9dcd1cfdfb765f55ded4dfa6e0c4c79")
	c, _ := hex.DecodeString("f89818bc0a346d3a3426b68e9509b6b2ae5fe1f904aa329fb73625db")
	e := &Envelope{Format: FormatV3, MessageID: id, Commitment: c}
	require.NoError(t, e.CheckDataKey(dk))
	other := append([]byte(nil), dk...)
	other[0] ^= 1
	require.ErrorIs(t, e.CheckDataKey(other), ErrAuthentication)
	require.NoError(t, (&Envelope{Format: FormatV2}).CheckDataKey(other))
}
