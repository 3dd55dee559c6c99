package format_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

func customerKeyrings(t testing.TB) []keyring.Keyring {
	a, err := keyring.NewAES(bytes.Repeat([]byte{7}, 32), map[string]string{"kid": "a"})
	require.NoError(t, err)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	r, err := keyring.NewRSA(priv, map[string]string{"kid": "r"})
	require.NoError(t, err)
	return []keyring.Keyring{a, r}
}

// TestCustomerKeyRoundTrip: a fresh SSE-C data key survives the companion
// as stored, and its wrap binds ContentSSEC: it does not unwrap as the
// content key of any client-side format, nor does theirs as an SSE-C key.
func TestCustomerKeyRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, kr := range customerKeyrings(t) {
		dk, w, err := envelope.NewCustomerKey(ctx, kr)
		require.NoError(t, err)
		require.Len(t, dk, envelope.DataKeySize)
		b, err := (&envelope.Companion{Keys: []envelope.WrappedKey{*w}}).Marshal()
		require.NoError(t, err)
		require.False(t, bytes.Contains(b, dk))
		c, err := envelope.ParseCompanion(b)
		require.NoError(t, err)
		require.Len(t, c.Keys, 1)
		require.Equal(t, *w, c.Keys[0])
		got, err := envelope.OpenCustomerKey(ctx, kr, &c.Keys[0])
		require.NoError(t, err)
		require.Equal(t, dk, got)

		for _, alg := range []string{envelope.ContentAESGCM, envelope.ContentAESGCMCommit, envelope.ContentSegmented} {
			_, err := kr.Unwrap(ctx, w, alg)
			require.ErrorIs(t, err, envelope.ErrAuthentication, alg)
			other, err := kr.Wrap(ctx, dk, alg)
			require.NoError(t, err)
			_, err = envelope.OpenCustomerKey(ctx, kr, other)
			require.ErrorIs(t, err, envelope.ErrAuthentication, alg)
		}

		// Two fresh keys differ.
		dk2, _, err := envelope.NewCustomerKey(ctx, kr)
		require.NoError(t, err)
		require.NotEqual(t, dk, dk2)
	}
}

// companionVectors are malformed companions and the error each must give.
var companionVectors = []struct {
	name string
	json string
	want error
}{
	{"empty", ``, envelope.ErrMalformed},
	{"not an object", `[]`, envelope.ErrMalformed},
	{"no version", `{"keys":[{"k":"AAAA","w":"AES/GCM","m":{}}]}`, envelope.ErrMalformed},
	{"future version", `{"v":"2","keys":[{"k":"AAAA","w":"AES/GCM","m":{}}]}`, envelope.ErrUnsupported},
	{"no keys", `{"v":"1","keys":[]}`, envelope.ErrMalformed},
	{"null keys", `{"v":"1","keys":null}`, envelope.ErrMalformed},
	{"three keys", `{"v":"1","keys":[{"k":"AAAA","w":"AES/GCM"},{"k":"AAAA","w":"AES/GCM"},{"k":"AAAA","w":"AES/GCM"}]}`, envelope.ErrMalformed},
	{"legacy wrap", `{"v":"1","keys":[{"k":"AAAA","w":"AESWrap","m":{}}]}`, envelope.ErrUnsupported},
	{"legacy kms", `{"v":"1","keys":[{"k":"AAAA","w":"kms","m":{}}]}`, envelope.ErrUnsupported},
	{"no wrap", `{"v":"1","keys":[{"k":"AAAA","m":{}}]}`, envelope.ErrUnsupported},
	{"empty key", `{"v":"1","keys":[{"k":"","w":"AES/GCM","m":{}}]}`, envelope.ErrMalformed},
	{"not base64", `{"v":"1","keys":[{"k":"A*AA","w":"AES/GCM","m":{}}]}`, envelope.ErrMalformed},
	{"non-canonical base64", `{"v":"1","keys":[{"k":"AAB=","w":"AES/GCM","m":{}}]}`, envelope.ErrMalformed},
	{"unknown field", `{"v":"1","keys":[{"k":"AAAA","w":"AES/GCM","m":{}}],"x":"1"}`, envelope.ErrMalformed},
	{"unknown key field", `{"v":"1","keys":[{"k":"AAAA","w":"AES/GCM","m":{},"iv":"1"}]}`, envelope.ErrMalformed},
	{"description not strings", `{"v":"1","keys":[{"k":"AAAA","w":"AES/GCM","m":{"a":1}}]}`, envelope.ErrMalformed},
	{"trailing data", `{"v":"1","keys":[{"k":"AAAA","w":"AES/GCM","m":{}}]}{}`, envelope.ErrMalformed},
	{"truncated", `{"v":"1","keys":[{"k":"AAAA","w":"AES/GCM","m":{}}`, envelope.ErrMalformed},
	{"too large", `{"v":"1","keys":[{"k":"AAAA","w":"AES/GCM","m":{"a":"` + strings.Repeat("x", envelope.MaxInstructionSize) + `"}}]}`, envelope.ErrTooLarge},
}

func TestParseCompanionVectors(t *testing.T) {
	for _, v := range companionVectors {
		t.Run(v.name, func(t *testing.T) {
			c, err := envelope.ParseCompanion([]byte(v.json))
			require.ErrorIs(t, err, v.want)
			require.Nil(t, c)
		})
	}
	c, err := envelope.ParseCompanion([]byte(`{"v":"1","keys":[{"k":"AAAA","w":"AES/GCM","m":{"kid":"1"}},{"k":"AQ==","w":"kms+context"}]}`))
	require.NoError(t, err)
	require.Len(t, c.Keys, 2)
	require.Equal(t, []byte{1}, c.Keys[1].Ciphertext)
	require.NotNil(t, c.Keys[1].Description)

	_, err = (&envelope.Companion{}).Marshal()
	require.ErrorIs(t, err, envelope.ErrMalformed)
	_, err = (&envelope.Companion{Keys: []envelope.WrappedKey{{Algorithm: envelope.WrapLegacyRSA, Ciphertext: []byte{1}}}}).Marshal()
	require.ErrorIs(t, err, envelope.ErrMalformed)
}

// FuzzParseCompanion: any input parses to a companion that marshals and
// parses back to itself, or fails with a typed error.
func FuzzParseCompanion(f *testing.F) {
	for _, v := range companionVectors {
		if len(v.json) < 1000 {
			f.Add([]byte(v.json))
		}
	}
	kr := customerKeyrings(f)[0]
	_, w, err := envelope.NewCustomerKey(context.Background(), kr)
	if err != nil {
		f.Fatal(err)
	}
	b, err := (&envelope.Companion{Keys: []envelope.WrappedKey{*w, *w}}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := envelope.ParseCompanion(b)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if len(c.Keys) < 1 || len(c.Keys) > envelope.MaxCompanionKeys {
			t.Fatalf("%d keys accepted", len(c.Keys))
		}
		again, err := c.Marshal()
		if err != nil {
			t.Fatalf("a parsed companion does not marshal: %v", err)
		}
		c2, err := envelope.ParseCompanion(again)
		if err != nil {
			t.Fatalf("a marshalled companion does not parse: %v", err)
		}
		for i := range c.Keys {
			if c.Keys[i].Algorithm != c2.Keys[i].Algorithm || !bytes.Equal(c.Keys[i].Ciphertext, c2.Keys[i].Ciphertext) || len(c.Keys[i].Description) != len(c2.Keys[i].Description) {
				t.Fatalf("key %d changed through marshal", i)
			}
		}
		// Unwrapping a fuzzed key fails with a typed error or yields a
		// 32-byte key; it never panics.
		if k, err := envelope.OpenCustomerKey(context.Background(), kr, &c.Keys[0]); err == nil && len(k) != envelope.DataKeySize {
			t.Fatalf("a %d-byte data key", len(k))
		} else if err != nil && !typed(err) {
			t.Fatalf("untyped unwrap error: %v", err)
		}
	})
}
