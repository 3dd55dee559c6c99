package s3crypto_test

// KMS → KMS rewraps by KMS ReEncrypt, against versitygw and local-kms.

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/kmsctx"
	"github.com/s3envelope/s3envelope/internal/testenv"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// countingKMS counts a KMS client's requests by operation. It has
// ReEncrypt, as *kms.Client does.
type countingKMS struct {
	c  *kms.Client
	mu sync.Mutex
	n  map[string]int
}

func newCountingKMS(c *kms.Client) *countingKMS { return &countingKMS{c: c, n: map[string]int{}} }

func (k *countingKMS) add(op string) {
	k.mu.Lock()
	k.n[op]++
	k.mu.Unlock()
}

// take returns the counts since the last take.
func (k *countingKMS) take() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.n
	k.n = map[string]int{}
	return n
}

func (k *countingKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	k.add("GenerateDataKey")
	return k.c.GenerateDataKey(ctx, in, optFns...)
}

func (k *countingKMS) Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	k.add("Encrypt")
	return k.c.Encrypt(ctx, in, optFns...)
}

func (k *countingKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	k.add("Decrypt")
	return k.c.Decrypt(ctx, in, optFns...)
}

func (k *countingKMS) ReEncrypt(ctx context.Context, in *kms.ReEncryptInput, optFns ...func(*kms.Options)) (*kms.ReEncryptOutput, error) {
	k.add("ReEncrypt")
	return k.c.ReEncrypt(ctx, in, optFns...)
}

// noReEncryptGrant is a KMS client whose role may Decrypt and Encrypt but
// not ReEncrypt.
type noReEncryptGrant struct{ *countingKMS }

func (k noReEncryptGrant) ReEncrypt(context.Context, *kms.ReEncryptInput, ...func(*kms.Options)) (*kms.ReEncryptOutput, error) {
	k.add("ReEncrypt")
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform kms:ReEncryptFrom"}
}

// plainKMSClient has only keyring.KMSClient's methods, as a user's own
// client may: no ReEncrypt.
type plainKMSClient struct{ keyring.KMSClient }

// countedKMSKey creates a KMS key and returns a master key for it that
// calls KMS through kc.
func countedKMSKey(t testing.TB, kc keyring.KMSClient) *keyring.KMS {
	t.Helper()
	out, err := testenv.KMS(t).CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("s3envelope " + t.Name())})
	require.NoError(t, err)
	kr, err := keyring.NewKMS(kc, aws.ToString(out.KeyMetadata.Arn))
	require.NoError(t, err)
	return kr
}

// TestRewrapReEncrypt: a KMS → KMS rewrap by ReEncrypt — by default for V2,
// on request for V3 and segmented objects — makes one ReEncrypt request
// (after the Decrypt that finds the object not current), keeps the object's
// encryption context, and leaves an object that the new key alone reads,
// with the context expected. Without ReEncrypt on the client, or with
// ReEncrypt false, it unwraps, wraps and verifies.
func TestRewrapReEncrypt(t *testing.T) {
	raw, bucket := realS3(t)
	kc := newCountingKMS(testenv.KMS(t))
	oldKey, newKey := countedKMSKey(t, kc), countedKMSKey(t, kc)
	tenant := map[string]string{"tenant": "acme"}
	ctx := context.Background()
	segmented := variant{format: envelope.FormatSegmented}
	for _, v := range append(variants, segmented) {
		for _, tc := range []struct {
			name      string
			reEncrypt *bool
			client    keyring.KMSClient // the new key's; nil: kc
			want      bool              // re-encrypted
		}{
			{"default", nil, nil, v.format == envelope.FormatV2},
			{"true", aws.Bool(true), nil, true},
			{"false", aws.Bool(false), nil, false},
			{"client without ReEncrypt", aws.Bool(true), plainKMSClient{kc}, false},
		} {
			t.Run(v.String()+"/"+tc.name, func(t *testing.T) {
				key := fmt.Sprintf("reencrypt/%v/%s", v, tc.name)
				pt := random(1000)
				_, err := newClient(t, raw, oldKey, v.apply).PutObject(keyring.WithEncryptionContext(ctx, tenant),
					&s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(pt)})
				require.NoError(t, err)
				to := newKey
				if tc.client != nil {
					to, err = keyring.NewKMS(tc.client, newKey.KeyID())
					require.NoError(t, err)
				}
				c := clientFor(t, raw, to, []keyring.Keyring{oldKey}, v.apply)
				kc.take()
				out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key, ReEncrypt: tc.reEncrypt})
				require.NoError(t, err)
				require.Equal(t, s3crypto.Rewrapped, out.Status)
				require.True(t, out.Written)
				require.Equal(t, tc.want, out.ReEncrypted)
				require.Equal(t, !tc.want, out.Verified)
				calls := kc.take()
				if tc.want {
					require.Equal(t, map[string]int{"Decrypt": 1, "ReEncrypt": 1}, calls)
				} else {
					// Decrypt under the new key (not current), under the
					// old one (the new key is not asked again), Encrypt,
					// and the Decrypt that verifies the new wrap.
					require.Equal(t, map[string]int{"Decrypt": 3, "Encrypt": 1}, calls)
				}
				want := maps.Clone(tenant)
				want[kmsctx.ReservedKey] = map[envelope.Format]string{envelope.FormatV2: format.ContentAESGCM, envelope.FormatV3: format.ContentAESGCMCommit, envelope.FormatSegmented: format.ContentSegmented}[v.format]
				require.Equal(t, want, out.NewDescription)
				got, err := getCtx(keyring.WithEncryptionContext(ctx, tenant), clientFor(t, raw, nil, []keyring.Keyring{newKey}, v.apply), bucket, key)
				require.NoError(t, err)
				require.Equal(t, pt, got)
				_, err = get(clientFor(t, raw, nil, []keyring.Keyring{oldKey}, v.apply), bucket, key)
				require.ErrorIs(t, err, envelope.ErrAuthentication, "the old key no longer reads it")

				out, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key, ReEncrypt: tc.reEncrypt})
				require.NoError(t, err)
				require.Equal(t, s3crypto.AlreadyCurrent, out.Status)
			})
		}
	}

	v2 := variants[0]
	put := func(t *testing.T, kr keyring.Keyring, key string, ec map[string]string) {
		_, err := newClient(t, raw, kr, v2.apply).PutObject(kmsWithEC(ctx, ec), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(random(10))})
		require.NoError(t, err)
	}
	// The caller's expected context is checked before anything is asked of
	// KMS, and nothing is written.
	t.Run("expected context differs", func(t *testing.T) {
		put(t, oldKey, "reencrypt/mismatch", tenant)
		before := snap(t, raw, bucket, "reencrypt/mismatch")
		c := clientFor(t, raw, newKey, []keyring.Keyring{oldKey}, v2.apply)
		kc.take()
		_, err := c.Rewrap(keyring.WithEncryptionContext(ctx, map[string]string{"tenant": "evil"}), &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("reencrypt/mismatch")})
		require.ErrorIs(t, err, envelope.ErrAuthentication)
		require.Zero(t, kc.take()["ReEncrypt"])
		require.Equal(t, before.head.ETag, snap(t, raw, bucket, "reencrypt/mismatch").head.ETag)
	})
	// An object planted under a KMS key the provider does not hold is not
	// laundered into one under the new key, although local-kms ignores
	// SourceKeyId (the source KMS reports is checked).
	t.Run("planted", func(t *testing.T) {
		planter := countedKMSKey(t, kc)
		put(t, planter, "reencrypt/planted", tenant)
		before := snap(t, raw, bucket, "reencrypt/planted")
		c := clientFor(t, raw, newKey, []keyring.Keyring{oldKey}, v2.apply)
		out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("reencrypt/planted")})
		require.ErrorIs(t, err, envelope.ErrAuthentication)
		require.False(t, out.Written)
		require.Equal(t, before.head.ETag, snap(t, raw, bucket, "reencrypt/planted").head.ETag)
	})
	// A discovery key as the old one: its filter holds the source.
	t.Run("discovery", func(t *testing.T) {
		put(t, oldKey, "reencrypt/discovery", tenant)
		for _, tc := range []struct {
			filter keyring.DiscoveryFilter
			want   error
		}{
			{keyring.DiscoveryFilter{Partition: "aws", AccountIDs: []string{"444455556666"}}, keyring.ErrOutsideDiscoveryFilter},
			{localKMSAccount, nil},
		} {
			d, err := keyring.NewKMSDiscovery(kc, tc.filter)
			require.NoError(t, err)
			c := clientFor(t, raw, newKey, []keyring.Keyring{d}, v2.apply)
			out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("reencrypt/discovery")})
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				require.False(t, out.Written)
				continue
			}
			require.NoError(t, err)
			require.True(t, out.ReEncrypted)
		}
		_, err := get(reader(t, raw, newKey), bucket, "reencrypt/discovery")
		require.NoError(t, err)
	})
	// DryRun re-encrypts (one request) and writes nothing.
	t.Run("dry run", func(t *testing.T) {
		put(t, oldKey, "reencrypt/dry", nil)
		before := snap(t, raw, bucket, "reencrypt/dry")
		c := clientFor(t, raw, newKey, []keyring.Keyring{oldKey}, v2.apply)
		kc.take()
		out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("reencrypt/dry"), DryRun: true})
		require.NoError(t, err)
		require.True(t, out.ReEncrypted)
		require.False(t, out.Written)
		require.Equal(t, 1, kc.take()["ReEncrypt"])
		require.Equal(t, before.head.ETag, snap(t, raw, bucket, "reencrypt/dry").head.ETag)
	})
	// KMS refusing ReEncrypt for want of permission: the default falls back
	// to unwrapping and wrapping (one refused request more); asked for
	// explicitly, it is the rewrap's error.
	t.Run("no ReEncrypt permission", func(t *testing.T) {
		denied, err := keyring.NewKMS(noReEncryptGrant{kc}, newKey.KeyID())
		require.NoError(t, err)
		c := clientFor(t, raw, denied, []keyring.Keyring{oldKey}, v2.apply)
		put(t, oldKey, "reencrypt/denied", tenant)
		_, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("reencrypt/denied"), ReEncrypt: aws.Bool(true)})
		require.ErrorContains(t, err, "kms:ReEncryptFrom")
		kc.take()
		out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("reencrypt/denied")})
		require.NoError(t, err)
		require.False(t, out.ReEncrypted)
		require.True(t, out.Verified)
		require.Equal(t, map[string]int{"Decrypt": 3, "Encrypt": 1, "ReEncrypt": 1}, kc.take())
	})
	// Through a cache, the provider's ReEncrypt is used as is.
	t.Run("cached provider", func(t *testing.T) {
		put(t, oldKey, "reencrypt/cached", tenant)
		p, closeCache := materials.NewCache(materials.NewProvider(newKey, oldKey))
		defer closeCache()
		c, err := s3crypto.New(raw, p, v2.apply)
		require.NoError(t, err)
		out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("reencrypt/cached")})
		require.NoError(t, err)
		require.True(t, out.ReEncrypted)
	})
}

// TestSSECRewrapReEncrypt: an SSE-C companion has no key commitment, so a
// KMS → KMS rewrap re-encrypts its key by default (one ReEncrypt after the
// Decrypt that finds it not current); the object then opens under the new
// key alone. ReEncrypt false unwraps, wraps and verifies: three Decrypts
// (the new key refuses the old key's blob once, in the check that the
// companion is not current, and is not asked again) and an Encrypt.
func TestSSECRewrapReEncrypt(t *testing.T) {
	api, bucket := realSSEC(t)
	kc := newCountingKMS(testenv.KMS(t))
	oldKey, newKey := countedKMSKey(t, kc), countedKMSKey(t, kc)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		reEncrypt *bool
		want      bool
		calls     map[string]int
	}{
		{"default", nil, true, map[string]int{"Decrypt": 1, "ReEncrypt": 1}},
		{"false", aws.Bool(false), false, map[string]int{"Decrypt": 3, "Encrypt": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "ssec-reencrypt/" + tc.name
			body := random(1000)
			put(t, sseClient(t, api, oldKey), bucket, key, bytes.NewReader(body))
			c := sseClient(t, api, newKey, oldKey)
			kc.take()
			out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key, ReEncrypt: tc.reEncrypt})
			require.NoError(t, err)
			require.Equal(t, s3crypto.Rewrapped, out.Status)
			require.Equal(t, tc.want, out.ReEncrypted)
			require.Equal(t, !tc.want, out.Verified)
			require.Equal(t, tc.calls, kc.take())
			got, err := get(sseClient(t, api, nil, newKey), bucket, key)
			require.NoError(t, err)
			require.Equal(t, body, got)
			_, err = get(sseClient(t, api, nil, oldKey), bucket, key)
			require.ErrorIs(t, err, envelope.ErrAuthentication)
			comp, _ := companionOf(t, api, bucket, key)
			require.Equal(t, format.ContentSSEC, comp.Keys[0].Description[kmsctx.ReservedKey])
		})
	}
}
