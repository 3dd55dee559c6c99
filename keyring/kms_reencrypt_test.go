package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/kmsctx"
)

// multiKMS holds several KMS keys, binds the context as KMS does, and
// answers ReEncrypt; with ignoreSourceKey it ignores SourceKeyId, as
// local-kms does.
type multiKMS struct {
	keys            map[string]cipher.AEAD // by ARN
	ignoreSourceKey bool
	calls           []string
	reEncrypts      []*kms.ReEncryptInput
}

const kmsARN = "arn:aws:kms:us-east-1:111122223333:key/"

func newMultiKMS(t *testing.T, names ...string) *multiKMS {
	m := &multiKMS{keys: map[string]cipher.AEAD{}}
	for _, n := range names {
		b, err := aes.NewCipher(random(32))
		require.NoError(t, err)
		g, err := cipher.NewGCM(b)
		require.NoError(t, err)
		m.keys[kmsARN+n] = g
	}
	return m
}

func (m *multiKMS) seal(arn string, pt []byte, ec map[string]string) []byte {
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return append([]byte(arn+"|"), m.keys[arn].Seal(nonce, nonce, pt, aad(ec))...)
}

func (m *multiKMS) open(keyID *string, blob []byte, ec map[string]string) (string, []byte, error) {
	arn, rest, ok := strings.Cut(string(blob), "|")
	g := m.keys[arn]
	if !ok || g == nil || len(rest) < 12 {
		return "", nil, &types.InvalidCiphertextException{Message: aws.String("bad blob")}
	}
	if keyID != nil && *keyID != arn {
		return "", nil, &types.IncorrectKeyException{Message: aws.String("another key")}
	}
	pt, err := g.Open(nil, []byte(rest[:12]), []byte(rest[12:]), aad(ec))
	if err != nil {
		return "", nil, &types.InvalidCiphertextException{Message: aws.String("bad blob")}
	}
	return arn, pt, nil
}

func (m *multiKMS) GenerateDataKey(_ context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	m.calls = append(m.calls, "GenerateDataKey")
	pt := random(32)
	return &kms.GenerateDataKeyOutput{Plaintext: pt, CiphertextBlob: m.seal(*in.KeyId, pt, in.EncryptionContext), KeyId: in.KeyId}, nil
}

func (m *multiKMS) Encrypt(_ context.Context, in *kms.EncryptInput, _ ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	m.calls = append(m.calls, "Encrypt")
	return &kms.EncryptOutput{CiphertextBlob: m.seal(*in.KeyId, in.Plaintext, in.EncryptionContext), KeyId: in.KeyId}, nil
}

func (m *multiKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	m.calls = append(m.calls, "Decrypt")
	arn, pt, err := m.open(in.KeyId, in.CiphertextBlob, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return &kms.DecryptOutput{Plaintext: pt, KeyId: aws.String(arn)}, nil
}

func (m *multiKMS) ReEncrypt(_ context.Context, in *kms.ReEncryptInput, _ ...func(*kms.Options)) (*kms.ReEncryptOutput, error) {
	m.calls = append(m.calls, "ReEncrypt")
	m.reEncrypts = append(m.reEncrypts, in)
	src := in.SourceKeyId
	if m.ignoreSourceKey {
		src = nil
	}
	arn, pt, err := m.open(src, in.CiphertextBlob, in.SourceEncryptionContext)
	if err != nil {
		return nil, err
	}
	dst := aws.ToString(in.DestinationKeyId)
	if m.keys[dst] == nil {
		return nil, &types.NotFoundException{Message: aws.String("no such key")}
	}
	return &kms.ReEncryptOutput{CiphertextBlob: m.seal(dst, pt, in.DestinationEncryptionContext), KeyId: aws.String(dst), SourceKeyId: aws.String(arn)}, nil
}

// onlyKMSClient hides every method but KMSClient's, as a user's client may.
type onlyKMSClient struct{ KMSClient }

func TestKMSReEncrypt(t *testing.T) {
	m := newMultiKMS(t, "old", "new")
	old, err := NewKMS(m, kmsARN+"old", func(o *KMSOptions) { o.GrantTokens = []string{"g-old"} })
	require.NoError(t, err)
	cur, err := NewKMS(m, kmsARN+"new", func(o *KMSOptions) { o.GrantTokens = []string{"g-new"} })
	require.NoError(t, err)
	acme := WithEncryptionContext(context.Background(), map[string]string{"tenant": "acme"})
	dk, w, err := old.GenerateDataKey(acme, format.ContentAESGCMCommit)
	require.NoError(t, err)
	m.calls = nil

	nw, err := cur.ReEncrypt(acme, w, format.ContentAESGCMCommit, old)
	require.NoError(t, err)
	require.Equal(t, []string{"ReEncrypt"}, m.calls, "one request; the data key never comes out")
	in := m.reEncrypts[0]
	require.Equal(t, kmsARN+"old", aws.ToString(in.SourceKeyId))
	require.Equal(t, kmsARN+"new", aws.ToString(in.DestinationKeyId))
	require.Equal(t, w.Description, in.SourceEncryptionContext)
	require.Equal(t, []string{"g-old", "g-new"}, in.GrantTokens)
	require.Equal(t, format.WrapKMSContext, nw.Algorithm)
	require.Equal(t, w.Description, nw.Description, "the object's context is kept")
	got, err := cur.Unwrap(acme, nw, format.ContentAESGCMCommit)
	require.NoError(t, err)
	require.Equal(t, dk, got)
	_, err = old.Unwrap(acme, nw, format.ContentAESGCMCommit)
	require.ErrorIs(t, err, envelope.ErrAuthentication, "the new wrap is under the new key only")

	// Without an expectation on ctx the stored context is still the one kept.
	nw, err = cur.ReEncrypt(context.Background(), w, format.ContentAESGCMCommit, old)
	require.NoError(t, err)
	require.Equal(t, w.Description, nw.Description)

	// The checks of an unwrap come first; nothing is sent.
	m.calls = nil
	for name, tc := range map[string]struct {
		ctx  context.Context
		alg  string
		want error
	}{
		"other expected context":  {WithEncryptionContext(context.Background(), map[string]string{"tenant": "evil"}), format.ContentAESGCMCommit, envelope.ErrAuthentication},
		"other content algorithm": {acme, format.ContentAESGCM, envelope.ErrAuthentication},
	} {
		_, err := cur.ReEncrypt(tc.ctx, w, tc.alg, old)
		require.ErrorIs(t, err, tc.want, name)
		require.NotContains(t, err.Error(), string(dk), name)
	}
	_, err = cur.ReEncrypt(acme, &envelope.WrappedKey{Algorithm: format.WrapAESGCM, Ciphertext: w.Ciphertext}, format.ContentAESGCMCommit, old)
	require.ErrorIs(t, err, envelope.ErrUnsupported)
	require.Empty(t, m.calls)

	// A changed stored context: KMS refuses the blob under it.
	tw := *w
	tw.Description = maps.Clone(w.Description)
	tw.Description["tenant"] = "evil"
	_, err = cur.ReEncrypt(context.Background(), &tw, format.ContentAESGCMCommit, old)
	require.ErrorIs(t, err, envelope.ErrAuthentication)

	// A client without ReEncrypt: errors.ErrUnsupported, nothing sent.
	m.calls = nil
	plain, err := NewKMS(onlyKMSClient{m}, kmsARN+"new")
	require.NoError(t, err)
	_, err = plain.ReEncrypt(acme, w, format.ContentAESGCMCommit, old)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	require.Empty(t, m.calls)

	// A discovery key cannot be the destination; the source is needed.
	d, err := NewKMSDiscovery(m, DiscoveryFilter{Partition: "aws", AccountIDs: []string{"111122223333"}})
	require.NoError(t, err)
	_, err = d.ReEncrypt(acme, w, format.ContentAESGCMCommit, old)
	require.Error(t, err)
	_, err = cur.ReEncrypt(acme, w, format.ContentAESGCMCommit, nil)
	require.Error(t, err)
}

// The source is held to what the old master key accepts: its own key (even
// when the server ignores SourceKeyId, as local-kms does), or a discovery
// key's filter.
func TestKMSReEncryptSource(t *testing.T) {
	m := newMultiKMS(t, "old", "new", "planted")
	cur, err := NewKMS(m, kmsARN+"new")
	require.NoError(t, err)
	planter, err := NewKMS(m, kmsARN+"planted")
	require.NoError(t, err)
	_, w, err := planter.GenerateDataKey(context.Background(), format.ContentAESGCMCommit)
	require.NoError(t, err)

	for _, ignore := range []bool{false, true} {
		m.ignoreSourceKey = ignore
		for _, id := range []string{kmsARN + "old", "old"} {
			old, err := NewKMS(m, id)
			require.NoError(t, err)
			_, err = cur.ReEncrypt(context.Background(), w, format.ContentAESGCMCommit, old)
			require.ErrorIs(t, err, envelope.ErrAuthentication, "server ignores SourceKeyId: %v, key %s", ignore, id)
		}
	}
	// The bare key ID of the right key passes the check.
	old, err := NewKMS(m, "planted")
	require.NoError(t, err)
	_, err = cur.ReEncrypt(context.Background(), w, format.ContentAESGCMCommit, old)
	require.NoError(t, err)

	for accounts, want := range map[string]error{"111122223333": nil, "444455556666": ErrOutsideDiscoveryFilter} {
		d, err := NewKMSDiscovery(m, DiscoveryFilter{Partition: "aws", AccountIDs: []string{accounts}})
		require.NoError(t, err)
		m.reEncrypts = nil
		nw, err := cur.ReEncrypt(context.Background(), w, format.ContentAESGCMCommit, d)
		require.Nil(t, m.reEncrypts[0].SourceKeyId)
		if want == nil {
			require.NoError(t, err)
			require.NotNil(t, nw)
		} else {
			require.ErrorIs(t, err, want)
			require.ErrorIs(t, err, envelope.ErrNoMasterKey)
			require.Nil(t, nw)
		}
	}
}

// A legacy kms wrap becomes kms+context, its writer's key ID dropped from
// the context and the content algorithm bound.
func TestKMSReEncryptLegacy(t *testing.T) {
	m := newMultiKMS(t, "old", "new")
	old, err := NewKMS(m, kmsARN+"old")
	require.NoError(t, err)
	cur, err := NewKMS(m, kmsARN+"new")
	require.NoError(t, err)
	dk := random(32)
	legacyCtx := map[string]string{kmsctx.LegacyKeyIDKey: kmsARN + "old", "app": "x"}
	lw := &envelope.WrappedKey{Algorithm: format.WrapLegacyKMS, Ciphertext: m.seal(kmsARN+"old", dk, legacyCtx), Description: legacyCtx}
	nw, err := cur.ReEncrypt(context.Background(), lw, format.ContentAESGCM, old)
	require.NoError(t, err)
	require.Equal(t, format.WrapKMSContext, nw.Algorithm)
	require.Equal(t, map[string]string{"app": "x", kmsctx.ReservedKey: format.ContentAESGCM}, nw.Description)
	got, err := cur.Unwrap(context.Background(), nw, format.ContentAESGCM)
	require.NoError(t, err)
	require.Equal(t, dk, got)
}

func TestSameKey(t *testing.T) {
	arn := kmsARN + "1234"
	for keyID, want := range map[string]bool{
		arn:             true,
		"1234":          true,
		kmsARN + "5678": false,
		"5678":          false,
		"234":           false,
		"alias/orders":  true, // left to KMS
		"arn:aws:kms:us-east-1:111122223333:alias/orders": true,
	} {
		require.Equal(t, want, sameKey(keyID, arn), keyID)
	}
	require.True(t, sameKey(arn, ""), "no source reported: left to KMS")
}
