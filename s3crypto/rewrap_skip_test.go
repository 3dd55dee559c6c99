package s3crypto_test

// A rewrap asks the current master key whether the object is already under
// it; when that key matches every wrap of its kind (a KMS key) and refused
// the data key, the unwrap that follows does not ask it again. These tests
// show that the skip loses no object and changes no error, against
// versitygw (and local-kms).

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/testenv"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// anyAES is an AES master key that, like a KMS key, matches every AES-GCM
// wrap whatever its description (a Matches method), and counts its
// unwraps.
type anyAES struct {
	*keyring.AES
	n *atomic.Int64
}

func newAnyAES(t testing.TB, kid string) anyAES {
	return anyAES{AES: newAES(t, kid), n: new(atomic.Int64)}
}

func (k anyAES) Matches(w *envelope.WrappedKey) bool { return w.Algorithm == format.WrapAESGCM }

func (k anyAES) Unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
	k.n.Add(1)
	return k.AES.Unwrap(ctx, w, contentAlg)
}

// plainProvider is a provider implemented outside materials: it has only
// Provider's methods, so a rewrap's unwrap asks the current key again, as
// every rewrap did before the skip.
type plainProvider struct{ materials.Provider }

// rewrapClient returns a client over api reading V2 and V3 with p.
func rewrapClient(t testing.TB, api s3crypto.S3API, p materials.Provider, opts ...func(*s3crypto.Options)) *s3crypto.Client {
	t.Helper()
	all := append([]func(*s3crypto.Options){func(o *s3crypto.Options) { o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt }}, opts...)
	c, err := s3crypto.New(api, p, all...)
	require.NoError(t, err)
	return c
}

// TestRewrapAsksCurrentOnce: with master keys that match every wrap of
// their kind, a rewrap from old to cur asks cur twice (is the object
// current? does the new wrap open?) and old once, in every format and
// storage, through a cache or not; a provider without the skip asks cur
// three times. The object then reads under cur alone and is found current.
func TestRewrapAsksCurrentOnce(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	for _, v := range append(variants, variant{format: envelope.FormatSegmented}) {
		for _, via := range []string{"provider", "cache", "plain provider"} {
			t.Run(v.String()+"/"+via, func(t *testing.T) {
				cur, old := newAnyAES(t, "cur"), newAnyAES(t, "old")
				key := fmt.Sprintf("asks-once/%v/%s", v, via)
				pt := random(1000)
				put(t, newClient(t, raw, old, v.apply), bucket, key, bytes.NewReader(pt))
				p := materials.NewProvider(cur, old)
				wantCur := 2
				switch via {
				case "cache":
					cached, closeCache := materials.NewCache(p)
					t.Cleanup(closeCache)
					p = cached
				case "plain provider":
					p, wantCur = plainProvider{p}, 3
				}
				c := rewrapClient(t, raw, p, v.apply)
				cur.n.Store(0)
				old.n.Store(0)
				out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				require.Equal(t, s3crypto.Rewrapped, out.Status)
				require.True(t, out.Written)
				require.True(t, out.Verified)
				require.EqualValues(t, wantCur, cur.n.Load(), "unwraps by the current key")
				require.EqualValues(t, 1, old.n.Load(), "unwraps by the old key")
				readsAs(t, reader(t, raw, cur), bucket, key, pt)

				cur.n.Store(0)
				old.n.Store(0)
				out, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				require.Equal(t, s3crypto.AlreadyCurrent, out.Status)
				require.EqualValues(t, 1, cur.n.Load())
				require.Zero(t, old.n.Load())
			})
		}
	}
}

// TestRewrapSkipKeepsErrors: where a rewrap cannot unwrap, it fails with
// the error it failed with before the skip (a provider without it gives
// that), and writes nothing — a current key under the stored description
// that does not open the data key, a data key under a key the provider does
// not hold, matched by no key or by every one.
func TestRewrapSkipKeepsErrors(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	anyCur, anyOld := newAnyAES(t, "cur"), newAnyAES(t, "old")
	sameA, sameB := newAES(t, "same"), newAES(t, "same")
	for _, tc := range []struct {
		name     string
		writer   keyring.Keyring
		p        materials.Provider
		want     error
		curAsked int64 // unwraps by anyCur with the skip, and one more without
	}{
		{"current by description does not open", sameB, materials.NewProvider(sameA, anyOld), envelope.ErrAuthentication, 0},
		{"another key matched by none", newAES(t, "third"), materials.NewProvider(newAES(t, "cur"), sameA), envelope.ErrNoMasterKey, 0},
		{"another key matched by every one", newAES(t, "third"), materials.NewProvider(anyCur, anyOld), envelope.ErrAuthentication, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "skip-errors/" + tc.name
			put(t, newClient(t, raw, tc.writer), bucket, key, bytes.NewReader(random(100)))
			before := snap(t, raw, bucket, key)
			var errs [2]error
			for i, p := range []materials.Provider{tc.p, plainProvider{tc.p}} {
				anyCur.n.Store(0)
				out, err := rewrapClient(t, raw, p).Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
				require.ErrorIs(t, err, tc.want)
				require.False(t, out != nil && out.Written)
				if _, asks := tc.p.Current().(anyAES); asks {
					require.Equal(t, tc.curAsked+int64(i), anyCur.n.Load(), "unwraps by the current key")
				}
				errs[i] = err
			}
			require.Equal(t, errs[1].Error(), errs[0].Error(), "the same error with the skip as without")
			require.Equal(t, before.head.ETag, snap(t, raw, bucket, key).head.ETag)
		})
	}
}

// TestRewrapKMSAsksCurrentOnce: KMS → KMS by Decrypt + Encrypt costs three
// Decrypts (is it current? the old key, the check of the new wrap) and an
// Encrypt (TestSSECRewrapReEncrypt counts the same for a companion), and
// the object is then found current by one Decrypt; an object under a KMS
// key the provider does not hold fails as before, with the current key's
// refusal, after two refused Decrypts, and is not written.
func TestRewrapKMSAsksCurrentOnce(t *testing.T) {
	raw, bucket := realS3(t)
	kc := newCountingKMS(testenv.KMS(t))
	a, b, planter := countedKMSKey(t, kc), countedKMSKey(t, kc), countedKMSKey(t, kc)
	ctx := context.Background()
	noReEncrypt := aws.Bool(false)

	put(t, newClient(t, raw, a), bucket, "kms-once", bytes.NewReader(random(100)))
	c := rewrapClient(t, raw, materials.NewProvider(b, a))
	kc.take()
	out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("kms-once"), ReEncrypt: noReEncrypt})
	require.NoError(t, err)
	require.Equal(t, s3crypto.Rewrapped, out.Status)
	require.True(t, out.Verified)
	require.Equal(t, map[string]int{"Decrypt": 3, "Encrypt": 1}, kc.take())
	out, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("kms-once"), ReEncrypt: noReEncrypt})
	require.NoError(t, err)
	require.Equal(t, s3crypto.AlreadyCurrent, out.Status)
	require.Equal(t, map[string]int{"Decrypt": 1}, kc.take())

	put(t, newClient(t, raw, planter), bucket, "kms-planted", bytes.NewReader(random(100)))
	before := snap(t, raw, bucket, "kms-planted")
	for _, tc := range []struct {
		p        materials.Provider
		decrypts int
	}{{materials.NewProvider(b, a), 2}, {plainProvider{materials.NewProvider(b, a)}, 3}} {
		kc.take()
		out, err := rewrapClient(t, raw, tc.p).Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("kms-planted"), ReEncrypt: noReEncrypt})
		require.ErrorIs(t, err, envelope.ErrAuthentication)
		require.ErrorContains(t, err, "KMS Decrypt with key "+b.KeyID(), "the current key's refusal, as before")
		require.False(t, out.Written)
		require.Equal(t, map[string]int{"Decrypt": tc.decrypts}, kc.take())
	}
	require.Equal(t, before.head.ETag, snap(t, raw, bucket, "kms-planted").head.ETag)
}
