package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/s3envelope/s3envelope/internal/kmsctx"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// fakeKMS binds the encryption context the way KMS does (as AAD), for fast
// unit tests. The tests against a real KMS-compatible server (local-kms) are
// in the testvectors module.
type fakeKMS struct {
	aead   cipher.AEAD
	keyID  string
	grants [][]string
	calls  []string
}

func newFakeKMS(t *testing.T) *fakeKMS {
	b, err := aes.NewCipher(random(32))
	require.NoError(t, err)
	g, err := cipher.NewGCM(b)
	require.NoError(t, err)
	return &fakeKMS{aead: g, keyID: "arn:aws:kms:us-east-1:111122223333:key/test"}
}

func aad(ec map[string]string) []byte { b, _ := json.Marshal(ec); return b }

func (f *fakeKMS) seal(pt []byte, ec map[string]string) []byte {
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return append([]byte(f.keyID+"|"), f.aead.Seal(nonce, nonce, pt, aad(ec))...)
}

func (f *fakeKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	f.calls = append(f.calls, "GenerateDataKey")
	f.grants = append(f.grants, in.GrantTokens)
	if in.KeySpec != types.DataKeySpecAes256 || aws.ToString(in.KeyId) != f.keyID {
		return nil, errors.New("bad request")
	}
	pt := random(32)
	return &kms.GenerateDataKeyOutput{Plaintext: pt, CiphertextBlob: f.seal(pt, in.EncryptionContext), KeyId: in.KeyId}, nil
}

func (f *fakeKMS) Encrypt(ctx context.Context, in *kms.EncryptInput, _ ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	f.calls = append(f.calls, "Encrypt")
	return &kms.EncryptOutput{CiphertextBlob: f.seal(in.Plaintext, in.EncryptionContext), KeyId: in.KeyId}, nil
}

func (f *fakeKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	f.calls = append(f.calls, "Decrypt")
	f.grants = append(f.grants, in.GrantTokens)
	blob, ok := strings.CutPrefix(string(in.CiphertextBlob), f.keyID+"|")
	if !ok || (in.KeyId != nil && *in.KeyId != f.keyID) || len(blob) < 12 {
		return nil, &types.InvalidCiphertextException{Message: aws.String("bad blob")}
	}
	pt, err := f.aead.Open(nil, []byte(blob[:12]), []byte(blob[12:]), aad(in.EncryptionContext))
	if err != nil {
		return nil, &types.InvalidCiphertextException{Message: aws.String("bad blob")}
	}
	return &kms.DecryptOutput{Plaintext: pt, KeyId: aws.String(f.keyID)}, nil
}

func TestKMSRoundTrip(t *testing.T) {
	f := newFakeKMS(t)
	k, err := NewKMS(f, f.keyID, func(o *KMSOptions) { o.GrantTokens = []string{"g1"} })
	require.NoError(t, err)
	var _ envelope.DataKeyGenerator = k
	var _ interface {
		Matches(*envelope.WrappedKey) bool
	} = k
	for _, ca := range []string{format.ContentAESGCM, format.ContentAESGCMCommit} {
		ctx := WithEncryptionContext(context.Background(), map[string]string{"tenant": "a"})
		dk, w, err := k.GenerateDataKey(ctx, ca)
		require.NoError(t, err)
		require.Equal(t, format.WrapKMSContext, w.Algorithm)
		require.Equal(t, map[string]string{"tenant": "a", kmsctx.ReservedKey: ca}, w.Description)
		require.True(t, k.Matches(w))

		got, err := k.Unwrap(context.Background(), w, ca)
		require.NoError(t, err)
		require.Equal(t, dk, got)
		got, err = k.Unwrap(ctx, w, ca) // the expected context matches
		require.NoError(t, err)
		require.Equal(t, dk, got)

		// An expected context that differs is refused before KMS is called.
		n := len(f.calls)
		_, err = k.Unwrap(WithEncryptionContext(context.Background(), map[string]string{"tenant": "b"}), w, ca)
		require.ErrorIs(t, err, envelope.ErrAuthentication)
		require.Len(t, f.calls, n)

		// The other content algorithm: refused (the context binds it).
		other := format.ContentAESGCM
		if ca == other {
			other = format.ContentAESGCMCommit
		}
		_, err = k.Unwrap(context.Background(), w, other)
		require.ErrorIs(t, err, envelope.ErrAuthentication)

		// A tampered stored context: KMS refuses, as authentication.
		t2 := *w
		t2.Description = map[string]string{"tenant": "evil", kmsctx.ReservedKey: ca}
		_, err = k.Unwrap(context.Background(), &t2, ca)
		require.ErrorIs(t, err, envelope.ErrAuthentication)
		delete(t2.Description, kmsctx.ReservedKey)
		_, err = k.Unwrap(context.Background(), &t2, ca)
		require.ErrorIs(t, err, envelope.ErrMalformed)

		// Rewrapping an existing data key uses Encrypt.
		w2, err := k.Wrap(context.Background(), dk, ca)
		require.NoError(t, err)
		got, err = k.Unwrap(context.Background(), w2, ca)
		require.NoError(t, err)
		require.Equal(t, dk, got)
	}
	for _, g := range f.grants {
		require.Equal(t, []string{"g1"}, g)
	}
}

func TestKMSReservedKeyRefused(t *testing.T) {
	f := newFakeKMS(t)
	k, err := NewKMS(f, f.keyID)
	require.NoError(t, err)
	ctx := WithEncryptionContext(context.Background(), map[string]string{kmsctx.ReservedKey: "AES/GCM/NoPadding"})
	_, _, err = k.GenerateDataKey(ctx, format.ContentAESGCMCommit)
	require.ErrorContains(t, err, "reserved")
	require.Empty(t, f.calls)
}

func TestKMSDiscoveryAndLegacy(t *testing.T) {
	f := newFakeKMS(t)
	k, err := NewKMS(f, f.keyID)
	require.NoError(t, err)
	dk, w, err := k.GenerateDataKey(context.Background(), format.ContentAESGCMCommit)
	require.NoError(t, err)

	d, err := NewKMSDiscovery(f, DiscoveryFilter{Partition: "aws", AccountIDs: []string{"111122223333"}})
	require.NoError(t, err)
	got, err := d.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
	require.NoError(t, err)
	require.Equal(t, dk, got)
	_, _, err = d.GenerateDataKey(context.Background(), format.ContentAESGCMCommit)
	require.Error(t, err)
	_, err = d.Wrap(context.Background(), dk, format.ContentAESGCMCommit)
	require.Error(t, err)

	// Legacy "kms": context {"kms_cmk_id": arn}, no content algorithm bound.
	legacyCtx := map[string]string{"kms_cmk_id": f.keyID}
	lw := &envelope.WrappedKey{Algorithm: format.WrapLegacyKMS, Ciphertext: f.seal(dk, legacyCtx), Description: legacyCtx}
	got, err = k.Unwrap(context.Background(), lw, format.ContentAESCBC)
	require.NoError(t, err)
	require.Equal(t, dk, got)

	_, err = k.Unwrap(context.Background(), &envelope.WrappedKey{Algorithm: format.WrapAESGCM}, format.ContentAESGCM)
	require.ErrorIs(t, err, envelope.ErrUnsupported)
}

func TestKMSErrorsNameKeyNotBytes(t *testing.T) {
	f := newFakeKMS(t)
	k, err := NewKMS(f, f.keyID)
	require.NoError(t, err)
	dk, w, err := k.GenerateDataKey(context.Background(), format.ContentAESGCM)
	require.NoError(t, err)
	w.Ciphertext[len(w.Ciphertext)-1] ^= 1
	_, err = k.Unwrap(context.Background(), w, format.ContentAESGCM)
	require.ErrorIs(t, err, envelope.ErrAuthentication)
	require.Contains(t, err.Error(), f.keyID)
	require.NotContains(t, err.Error(), string(dk))
	_, err = NewKMS(nil, "x")
	require.Error(t, err)
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// incorrectKeyKMS answers Decrypt as AWS KMS does for a blob of another key.
type incorrectKeyKMS struct{ *fakeKMS }

func (f incorrectKeyKMS) Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	return nil, &types.IncorrectKeyException{Message: aws.String("wrong key")}
}

func TestKMSIncorrectKeyIsAuthentication(t *testing.T) {
	f := newFakeKMS(t)
	k, err := NewKMS(f, f.keyID)
	require.NoError(t, err)
	_, w, err := k.GenerateDataKey(context.Background(), format.ContentAESGCMCommit)
	require.NoError(t, err)
	k2, err := NewKMS(incorrectKeyKMS{f}, "arn:aws:kms:us-east-1:111122223333:key/other")
	require.NoError(t, err)
	_, err = k2.Unwrap(context.Background(), w, format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrAuthentication)
}
