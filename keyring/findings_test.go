package keyring

// Regression tests for the findings of the outside security review
// (issue 13), named for them. Each failed before its fix.

import (
	"context"
	"testing"

	"github.com/s3envelope/s3envelope/internal/kmsctx"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// Finding 3: an SSE-C data key (a KMS blob whose context binds
// S3E-SSEC-AES256), relabelled as a legacy "kms" wrap of a V1/V2 object,
// must not unwrap: S3 receives that key on every SSE-C request, so whoever
// stored the body could have sealed it.
func TestFinding03LegacyKMSRefusesAnotherContentAlgorithm(t *testing.T) {
	f := newFakeKMS(t)
	k, err := NewKMS(f, f.keyID)
	require.NoError(t, err)
	for _, bound := range []string{format.ContentSSEC, format.ContentAESGCMCommit, format.ContentSegmented} {
		_, w, err := k.GenerateDataKey(ctx, bound)
		require.NoError(t, err)
		relabelled := &envelope.WrappedKey{Algorithm: format.WrapLegacyKMS, Ciphertext: w.Ciphertext, Description: w.Description}
		for _, content := range []string{format.ContentAESGCM, format.ContentAESCBC} {
			n := len(f.calls)
			_, err := k.Unwrap(ctx, relabelled, content)
			requireSentinel(t, err, envelope.ErrAuthentication)
			require.Len(t, f.calls, n, "KMS was asked to decrypt a %s key for %s content", bound, content)
		}
	}

	// A legacy wrap's own context (the key ARN, the writer's description)
	// still opens, and so does one that binds the object's own algorithm.
	dk := random(32)
	legacy := map[string]string{"kms_cmk_id": f.keyID, "team": "x"}
	got, err := k.Unwrap(ctx, &envelope.WrappedKey{Algorithm: format.WrapLegacyKMS, Ciphertext: f.seal(dk, legacy), Description: legacy}, format.ContentAESGCM)
	require.NoError(t, err)
	require.Equal(t, dk, got)
	same := map[string]string{"kms_cmk_id": f.keyID, kmsctx.ReservedKey: format.ContentAESGCM}
	got, err = k.Unwrap(ctx, &envelope.WrappedKey{Algorithm: format.WrapLegacyKMS, Ciphertext: f.seal(dk, same), Description: same}, format.ContentAESGCM)
	require.NoError(t, err)
	require.Equal(t, dk, got)
}

// Finding 5: an expected encryption context cannot be checked for AES and
// RSA wraps (their description is not authenticated: a holder of the RSA
// public key writes any). It is refused, never ignored — on unwrap
// (ErrDisallowed) and on wrap (ErrUnsupported, it would not be bound).
func TestFinding05AESAndRSARefuseAnEncryptionContext(t *testing.T) {
	a, _, _ := testRSAKeys(t)
	priv := newRSA(t, a, map[string]string{"kid": "r"})
	pub, err := NewRSAPublic(&a.PublicKey, map[string]string{"kid": "r"})
	require.NoError(t, err)
	aes := newAES(t, random(32), map[string]string{"kid": "a"})
	withCtx := WithEncryptionContext(ctx, map[string]string{"tenant": "acme"})
	empty := WithEncryptionContext(ctx, map[string]string{})
	for name, kr := range map[string]Keyring{"AES": aes, "RSA": priv} {
		t.Run(name, func(t *testing.T) {
			dk := random(32)
			w, err := kr.Wrap(ctx, dk, format.ContentAESGCMCommit)
			require.NoError(t, err)
			for _, c := range []context.Context{withCtx, empty} {
				_, err = kr.Unwrap(c, w, format.ContentAESGCMCommit)
				requireSentinel(t, err, envelope.ErrDisallowed)
				_, err = kr.Wrap(c, dk, format.ContentAESGCMCommit)
				requireSentinel(t, err, envelope.ErrUnsupported)
			}
			// Removing the context (a nil one) restores the plain behaviour.
			got, err := kr.Unwrap(WithEncryptionContext(withCtx, nil), w, format.ContentAESGCMCommit)
			require.NoError(t, err)
			require.Equal(t, dk, got)
		})
	}
	// The attack: the public key's holder swaps in a data key of its own.
	planted, err := pub.Wrap(ctx, random(32), format.ContentAESGCMCommit)
	require.NoError(t, err)
	_, err = priv.Unwrap(withCtx, planted, format.ContentAESGCMCommit)
	requireSentinel(t, err, envelope.ErrDisallowed)

	for _, alg := range []string{format.WrapAESGCM, format.WrapRSAOAEPSHA1, format.WrapLegacyAESWrap, format.WrapLegacyRSA} {
		requireSentinel(t, kmsctx.Check(withCtx, alg), envelope.ErrDisallowed)
		require.NoError(t, kmsctx.Check(ctx, alg))
	}
	for _, alg := range []string{format.WrapKMSContext, format.WrapLegacyKMS} {
		require.NoError(t, kmsctx.Check(withCtx, alg))
	}
}

// Finding 6: a writer's context that holds kms_cmk_id round-trips.
func TestFinding06WritersKMSCmkIDRoundTrips(t *testing.T) {
	f := newFakeKMS(t)
	k, err := NewKMS(f, f.keyID)
	require.NoError(t, err)
	ec := map[string]string{"tenant": "acme", "kms_cmk_id": "reports"}
	wctx := WithEncryptionContext(ctx, ec)
	dk, w, err := k.GenerateDataKey(wctx, format.ContentAESGCMCommit)
	require.NoError(t, err)
	got, err := k.Unwrap(wctx, w, format.ContentAESGCMCommit)
	require.NoError(t, err)
	require.Equal(t, dk, got)
	// Without kms_cmk_id the expectation is another context: refused.
	_, err = k.Unwrap(WithEncryptionContext(ctx, map[string]string{"tenant": "acme"}), w, format.ContentAESGCMCommit)
	requireSentinel(t, err, envelope.ErrAuthentication)

	// A legacy kms wrap's kms_cmk_id was added by its writer: expected or
	// not, the rest must match.
	legacy := map[string]string{"kms_cmk_id": f.keyID, "tenant": "acme"}
	lw := &envelope.WrappedKey{Algorithm: format.WrapLegacyKMS, Ciphertext: f.seal(dk, legacy), Description: legacy}
	for _, want := range []map[string]string{{"tenant": "acme"}, legacy} {
		got, err = k.Unwrap(WithEncryptionContext(ctx, want), lw, format.ContentAESGCM)
		require.NoError(t, err, "%v", want)
		require.Equal(t, dk, got)
	}
	for _, want := range []map[string]string{{"tenant": "other"}, {"kms_cmk_id": "other", "tenant": "acme"}} {
		_, err = k.Unwrap(WithEncryptionContext(ctx, want), lw, format.ContentAESGCM)
		requireSentinel(t, err, envelope.ErrAuthentication)
	}
}

// Finding 10 (keyring part): a nil or nil-pointer KMS client is refused.
func TestFinding10NilKMSClientRefused(t *testing.T) {
	var nilClient *kms.Client
	_, err := NewKMS(nilClient, "alias/x")
	require.Error(t, err)
	_, err = NewKMSDiscovery(nilClient, DiscoveryFilter{Partition: "aws", AccountIDs: []string{"111122223333"}})
	require.Error(t, err)
}

// arnKMS is fakeKMS reporting that another key decrypted the blob.
type arnKMS struct {
	*fakeKMS
	arn string
}

func (f arnKMS) Decrypt(c context.Context, in *kms.DecryptInput, o ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	out, err := f.fakeKMS.Decrypt(c, in, o...)
	if out != nil {
		out.KeyId = aws.String(f.arn)
	}
	return out, err
}

// Finding 12: a discovery key accepts only KMS keys of the partition and
// accounts it is given, checked on the ARN KMS reports; it cannot be made
// without them.
func TestFinding12DiscoveryFilter(t *testing.T) {
	f := newFakeKMS(t)
	k, err := NewKMS(f, f.keyID)
	require.NoError(t, err)
	dk, w, err := k.GenerateDataKey(ctx, format.ContentAESGCMCommit)
	require.NoError(t, err)

	for _, bad := range []DiscoveryFilter{{}, {Partition: "aws"}, {AccountIDs: []string{"111122223333"}}, {Partition: "aws", AccountIDs: []string{"1234"}}} {
		_, err := NewKMSDiscovery(f, bad)
		require.Error(t, err, "%+v", bad)
	}
	trusted := DiscoveryFilter{Partition: "aws", AccountIDs: []string{"444455556666", "111122223333"}}
	for _, tc := range []struct {
		arn string
		ok  bool
	}{
		{"arn:aws:kms:us-east-1:111122223333:key/test", true},
		{"arn:aws:kms:eu-west-1:444455556666:key/other", true},
		{"arn:aws:kms:us-east-1:999988887777:key/attacker", false}, // a bucket writer's own key
		{"arn:aws-cn:kms:cn-north-1:111122223333:key/test", false}, // another partition
		{"arn:aws:s3:us-east-1:111122223333:key/test", false},
		{"111122223333", false},
		{"", false}, // KMS named no key
	} {
		d, err := NewKMSDiscovery(arnKMS{f, tc.arn}, trusted)
		require.NoError(t, err)
		got, err := d.Unwrap(ctx, w, format.ContentAESGCMCommit)
		if tc.ok {
			require.NoError(t, err, tc.arn)
			require.Equal(t, dk, got)
			continue
		}
		requireSentinel(t, err, envelope.ErrNoMasterKey)
		require.ErrorIs(t, err, ErrOutsideDiscoveryFilter)
		require.Nil(t, got)
	}
}
