package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

func TestNewAESKeySizes(t *testing.T) {
	for _, n := range []int{0, 1, 15, 17, 23, 25, 31, 33, 64} {
		k, err := NewAES(pattern(n, 0x40), nil)
		require.Error(t, err, "size %d", n)
		require.Nil(t, k)
		require.Contains(t, err.Error(), fmt.Sprint(n))
	}
	for _, n := range keySizes {
		_, err := NewAES(pattern(n, 0x40), nil)
		require.NoError(t, err)
	}
}

func TestAESRoundTrip(t *testing.T) {
	desc := map[string]string{"kid": "alpha"}
	for _, mk := range keySizes {
		k := newAES(t, pattern(mk, 1), desc)
		for _, dk := range keySizes {
			for _, alg := range contentAlgs {
				t.Run(fmt.Sprintf("master%d/data%d/%s", mk, dk, alg), func(t *testing.T) {
					dataKey := pattern(dk, 0x80)
					w, err := k.Wrap(ctx, dataKey, alg)
					require.NoError(t, err)
					require.Equal(t, format.WrapAESGCM, w.Algorithm)
					require.Len(t, w.Ciphertext, gcmIVSize+dk+gcmTagSize)
					require.Equal(t, desc, w.Description)
					require.Equal(t, pattern(dk, 0x80), dataKey, "Wrap must not modify the data key")

					got, err := k.Unwrap(ctx, w, alg)
					require.NoError(t, err)
					require.Equal(t, dataKey, got)
				})
			}
		}
	}
}

func TestAESWrappedLength60(t *testing.T) {
	k := newAES(t, pattern(32, 1), nil)
	for _, alg := range contentAlgs {
		w, err := k.Wrap(ctx, pattern(format.DataKeySize, 9), alg)
		require.NoError(t, err)
		require.Len(t, w.Ciphertext, 60)
	}
}

func TestAESFreshIVPerWrap(t *testing.T) {
	k := newAES(t, pattern(32, 1), nil)
	seen := map[string]bool{}
	for range 64 {
		w, err := k.Wrap(ctx, pattern(32, 9), format.ContentAESGCM)
		require.NoError(t, err)
		iv := string(w.Ciphertext[:gcmIVSize])
		require.False(t, seen[iv], "IV repeated")
		seen[iv] = true
	}
}

// TestAESWireFormat checks the layout independently of the keyring: a wrap
// opens with plain crypto/cipher GCM (IV first, AAD = content algorithm), and
// a wrap built with plain GCM unwraps.
func TestAESWireFormat(t *testing.T) {
	master := pattern(32, 0x11)
	block, err := aes.NewCipher(master)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	k := newAES(t, master, nil)

	for _, alg := range contentAlgs {
		dataKey := pattern(32, 0xA0)
		w, err := k.Wrap(ctx, dataKey, alg)
		require.NoError(t, err)
		pt, err := gcm.Open(nil, w.Ciphertext[:12], w.Ciphertext[12:], []byte(alg))
		require.NoError(t, err)
		require.Equal(t, dataKey, pt)

		iv := pattern(12, 0x55)
		built := gcm.Seal(append([]byte(nil), iv...), iv, dataKey, []byte(alg))
		require.Len(t, built, 60)
		got, err := k.Unwrap(ctx, &envelope.WrappedKey{Algorithm: format.WrapAESGCM, Ciphertext: built}, alg)
		require.NoError(t, err)
		require.Equal(t, dataKey, got)
	}
}

// TestAESGCMKnownAnswer pins wraps made outside Go (Python "cryptography"
// AESGCM): master key 00..1f, IV 00..0b, data key 20..3f, AAD the content
// algorithm.
func TestAESGCMKnownAnswer(t *testing.T) {
	k := newAES(t, pattern(32, 0x00), nil)
	dataKey := pattern(32, 0x20)
	vectors := map[string]string{
		format.ContentAESGCM: "000102030405060708090a0b6723f438e1c0e43ca568bda09dc45642b3e7b507" +
			"c44e694b005edfbe21543e8d2a76668116dd3bca655ab3bd576dc3aa",
		format.ContentAESGCMCommit: "000102030405060708090a0b6723f438e1c0e43ca568bda09dc45642b3e7b507" +
			"c44e694b005edfbe21543e8d551af3363c530dcadfb9c5d6756527ea",
	}
	for alg, h := range vectors {
		w := &envelope.WrappedKey{Algorithm: format.WrapAESGCM, Ciphertext: mustHex(t, h)}
		require.Len(t, w.Ciphertext, 60)
		got, err := k.Unwrap(ctx, w, alg)
		require.NoError(t, err)
		require.Equal(t, dataKey, got)
	}
	w := &envelope.WrappedKey{Algorithm: format.WrapAESGCM, Ciphertext: mustHex(t, vectors[format.ContentAESGCM])}
	_, err := k.Unwrap(ctx, w, format.ContentAESGCMCommit)
	requireSentinel(t, err, envelope.ErrAuthentication)
}

func TestAESContentAlgBinding(t *testing.T) {
	k := newAES(t, pattern(32, 1), nil)
	pairs := [][2]string{
		{format.ContentAESGCM, format.ContentAESGCMCommit},
		{format.ContentAESGCMCommit, format.ContentAESGCM},
		{format.ContentAESGCM, format.ContentAESCBC},
		{format.ContentAESGCM, "AES/GCM/NoPaddinG"},
	}
	for _, p := range pairs {
		w, err := k.Wrap(ctx, pattern(32, 2), p[0])
		require.NoError(t, err)
		got, err := k.Unwrap(ctx, w, p[1])
		require.Nil(t, got)
		requireSentinel(t, err, envelope.ErrAuthentication)
		require.Equal(t, "keyring: unwrap AES/GCM: s3envelope: authentication failed: the master key described {} does not open this data key (another key under that description, or a damaged wrapped key)", err.Error())
	}
}

func TestAESEveryBitFlipFails(t *testing.T) {
	k := newAES(t, pattern(32, 1), nil)
	for _, alg := range contentAlgs {
		w, err := k.Wrap(ctx, pattern(32, 2), alg)
		require.NoError(t, err)
		flipEveryBit(w.Ciphertext, func(name string, c []byte) {
			got, err := k.Unwrap(ctx, &envelope.WrappedKey{Algorithm: w.Algorithm, Ciphertext: c}, alg)
			require.Nil(t, got, name)
			requireSentinel(t, err, envelope.ErrAuthentication)
		})
	}
}

func TestAESBadLengths(t *testing.T) {
	k := newAES(t, pattern(32, 1), nil)
	w, err := k.Wrap(ctx, pattern(32, 2), format.ContentAESGCM)
	require.NoError(t, err)
	cases := [][]byte{
		nil, {}, w.Ciphertext[:12], w.Ciphertext[:28], w.Ciphertext[:59],
		append(append([]byte(nil), w.Ciphertext...), 0),
		make([]byte, 44), make([]byte, 52), make([]byte, 60), make([]byte, 1000),
	}
	for i, c := range cases {
		got, err := k.Unwrap(ctx, &envelope.WrappedKey{Algorithm: format.WrapAESGCM, Ciphertext: c}, format.ContentAESGCM)
		require.Nil(t, got, "case %d", i)
		requireSentinel(t, err, envelope.ErrAuthentication)
	}
}

func TestAESWrongMasterKey(t *testing.T) {
	k1 := newAES(t, pattern(32, 1), nil)
	k2 := newAES(t, pattern(32, 2), nil)
	k3 := newAES(t, pattern(16, 1), nil) // same prefix, other size
	w, err := k1.Wrap(ctx, pattern(32, 3), format.ContentAESGCM)
	require.NoError(t, err)
	for _, other := range []*AES{k2, k3} {
		got, err := other.Unwrap(ctx, w, format.ContentAESGCM)
		require.Nil(t, got)
		requireSentinel(t, err, envelope.ErrAuthentication)
	}
}

func TestAESWrapRejects(t *testing.T) {
	k := newAES(t, pattern(32, 1), nil)
	for _, n := range []int{0, 1, 8, 15, 17, 31, 33, 64} {
		w, err := k.Wrap(ctx, pattern(n, 7), format.ContentAESGCM)
		require.Nil(t, w)
		require.ErrorIs(t, err, errDataKeySize, "size %d", n)
		require.False(t, isSentinelError(err))
		require.Contains(t, err.Error(), "keyring: wrap AES/GCM")
	}
	for _, alg := range []string{"", format.ContentAESCBC, "AES/CTR/NoPadding", "114", "aes/gcm/nopadding"} {
		w, err := k.Wrap(ctx, pattern(32, 7), alg)
		require.Nil(t, w)
		requireSentinel(t, err, envelope.ErrUnsupported)
	}
}

func TestAESUnwrapUnsupported(t *testing.T) {
	k := newAES(t, pattern(32, 1), nil)
	w, err := k.Wrap(ctx, pattern(32, 7), format.ContentAESGCM)
	require.NoError(t, err)
	for _, alg := range []string{
		format.WrapRSAOAEPSHA1, format.WrapKMSContext, format.WrapLegacyKMS,
		format.WrapLegacyRSA, format.WrapLegacyRSAOAEPSHA256,
		"", "aes/gcm", "AES/GCM ", "AES/GCM/NoPadding", strings.Repeat("x", 500),
	} {
		got, err := k.Unwrap(ctx, &envelope.WrappedKey{Algorithm: alg, Ciphertext: w.Ciphertext}, format.ContentAESGCM)
		require.Nil(t, got)
		requireSentinel(t, err, envelope.ErrUnsupported)
		require.Less(t, len(err.Error()), 200, "long algorithm names are truncated")
	}
	got, err := k.Unwrap(ctx, w, "")
	require.Nil(t, got)
	requireSentinel(t, err, envelope.ErrUnsupported)
	got, err = k.Unwrap(ctx, nil, format.ContentAESGCM)
	require.Nil(t, got)
	requireSentinel(t, err, envelope.ErrMalformed)
}

func TestAESDescriptionIsCopied(t *testing.T) {
	desc := map[string]string{"kid": "one"}
	master := pattern(32, 1)
	k := newAES(t, master, desc)
	desc["kid"] = "changed"
	desc["extra"] = "x"
	require.Equal(t, map[string]string{"kid": "one"}, k.Description())

	d := k.Description()
	d["kid"] = "mutated"
	require.Equal(t, map[string]string{"kid": "one"}, k.Description())

	w, err := k.Wrap(ctx, pattern(32, 2), format.ContentAESGCM)
	require.NoError(t, err)
	w.Description["kid"] = "mutated"
	require.Equal(t, map[string]string{"kid": "one"}, k.Description())

	// The master key is copied too.
	master[0] ^= 0xFF
	_, err = k.Unwrap(ctx, w, format.ContentAESGCM)
	require.NoError(t, err)

	empty := newAES(t, pattern(16, 1), nil)
	require.NotNil(t, empty.Description())
	require.Empty(t, empty.Description())
	w, err = empty.Wrap(ctx, pattern(32, 2), format.ContentAESGCM)
	require.NoError(t, err)
	require.NotNil(t, w.Description)
	require.Empty(t, w.Description)
}

func TestAESPrintsNoKey(t *testing.T) {
	master := pattern(32, 0xC0)
	k := newAES(t, master, map[string]string{"kid": "p"})
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		s := fmt.Sprintf(f, k)
		require.NotContains(t, strings.ToLower(s), hex.EncodeToString(master[:8]), f)
		require.NotContains(t, s, string(master[:8]), f)
	}
}

func TestAESConcurrentUse(t *testing.T) {
	k := newAES(t, pattern(32, 1), nil)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 50 {
				dk := pattern(32, byte(i*50+j))
				w, err := k.Wrap(ctx, dk, contentAlgs[j%2])
				if err != nil {
					t.Error(err)
					return
				}
				got, err := k.Unwrap(ctx, w, contentAlgs[j%2])
				if err != nil || string(got) != string(dk) {
					t.Error("round trip failed", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
