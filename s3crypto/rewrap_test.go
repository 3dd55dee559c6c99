package s3crypto_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/s3envelope/s3envelope/internal/testenv"

	"github.com/s3envelope/s3envelope/internal/kmsctx"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// These tests run against versitygw (see s3_test.go); they fail, never
// skip, without it.

// wrapFields are the envelope fields a rewrap may change, by format: the
// wrapped key, its algorithm, and the description (x-amz-t for KMS).
var wrapFields = map[envelope.Format][]string{
	envelope.FormatV2: {"x-amz-key-v2", "x-amz-wrap-alg", "x-amz-matdesc"},
	envelope.FormatV3: {"x-amz-3", "x-amz-w", "x-amz-m", "x-amz-t"},
}

// requireOnlyWrapChanged checks that two envelopes (metadata or parsed
// instruction files) differ only in wrapFields, and that the wrapped key
// did change.
func requireOnlyWrapChanged(t testing.TB, f envelope.Format, before, after map[string]string) {
	t.Helper()
	b, a := maps.Clone(before), maps.Clone(after)
	require.NotEqual(t, b[wrapFields[f][0]], a[wrapFields[f][0]], "the wrapped key must change")
	for _, k := range wrapFields[f] {
		delete(b, k)
		delete(a, k)
	}
	require.Equal(t, b, a, "envelope fields other than the wrap changed")
	if f == envelope.FormatV3 {
		for _, k := range []string{"x-amz-c", "x-amz-d", "x-amz-i"} {
			_, inB := before[k]
			_, inA := after[k]
			require.Equal(t, inB, inA, k)
		}
	}
}

// putWithAttributes stores pt through c with every attribute a rewrap must
// keep.
func putWithAttributes(t testing.TB, c *s3crypto.Client, bucket, key string, pt []byte) {
	t.Helper()
	exp := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(pt),
		ContentType:             aws.String("text/csv; charset=utf-8"),
		ContentEncoding:         aws.String("x-test-encoding"),
		ContentDisposition:      aws.String(`attachment; filename="report.csv"`),
		ContentLanguage:         aws.String("de-CH"),
		CacheControl:            aws.String("private, max-age=60"),
		Expires:                 &exp,
		WebsiteRedirectLocation: aws.String("/elsewhere.html"),
		Tagging:                 aws.String("team=ops&class=secret%20stuff"),
		Metadata:                map[string]string{"owner": "alice", "project": "apollo"},
		ChecksumAlgorithm:       types.ChecksumAlgorithmSha256,
	})
	require.NoError(t, err)
}

// requireAttributesSet checks that putWithAttributes's attributes are all
// there, so that comparing them before and after a rewrap is not vacuous.
func requireAttributesSet(t testing.TB, h *s3.HeadObjectOutput) {
	t.Helper()
	for name, v := range map[string]*string{
		"ContentType": h.ContentType, "ContentEncoding": h.ContentEncoding, "ContentDisposition": h.ContentDisposition,
		"ContentLanguage": h.ContentLanguage, "CacheControl": h.CacheControl, "ExpiresString": h.ExpiresString,
		"WebsiteRedirectLocation": h.WebsiteRedirectLocation, "ChecksumSHA256": h.ChecksumSHA256, "ETag": h.ETag,
	} {
		require.NotEmpty(t, aws.ToString(v), name)
	}
	require.Equal(t, "alice", h.Metadata["owner"])
	require.Equal(t, int32(2), aws.ToInt32(h.TagCount))
}

// TestRewrapMatrix rewraps objects of every format (V2, V3) × storage
// (metadata, instruction file) × rotation between wraps (AES/GCM and
// RSA-OAEP-SHA1, to and from each other) on versitygw, and checks: exactly
// one write, of the envelope's place; every HeadObject field and the tags
// unchanged (LastModified only for a metadata rewrap); only the wrap fields
// of the envelope changed; the new key alone reads the same plaintext and
// the old key alone fails with ErrNoMasterKey; a second rewrap finds the
// object current and writes nothing.
func TestRewrapMatrix(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	m := newMeter()
	rw := s3At(t, "", withTransport(m))
	aesOld, aesNew := newAES(t, "aes-old"), newAES(t, "aes-new")
	rsaOld, rsaNew := newRSA(t, 1, "rsa-old"), newRSA(t, 2, "rsa-new")
	for _, v := range variants {
		for _, p := range []rotation{{aesOld, aesNew}, {aesOld, rsaNew}, {rsaOld, aesNew}, {rsaOld, rsaNew}} {
			name := fmt.Sprintf("%v/%s-to-%s", v, wrapName(p.old), wrapName(p.new))
			t.Run(name, func(t *testing.T) {
				key := "matrix/" + name + "/q1 report+final%é.csv" // exercises copy-source encoding
				pt := random(3000)
				putWithAttributes(t, newClient(t, raw, p.old, v.apply), bucket, key, pt)
				before := snap(t, raw, bucket, key)
				require.Equal(t, v.instruction, before.instr != nil)
				requireAttributesSet(t, before.head)

				c := clientFor(t, rw, p.new, []keyring.Keyring{p.old})
				m.reset()
				out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key, EnforceRotation: true})
				require.NoError(t, err)
				require.Equal(t, s3crypto.Rewrapped, out.Status)
				require.True(t, out.Written)
				require.True(t, out.Verified)
				require.False(t, out.Multipart)
				require.Equal(t, v.format, out.Format)
				require.Equal(t, p.old.Description(), out.OldDescription)
				require.Equal(t, p.new.Description(), out.NewDescription)
				require.Equal(t, wrapName(p.old), strings.ReplaceAll(out.OldWrap, "/", "-"))
				require.Equal(t, wrapName(p.new), strings.ReplaceAll(out.NewWrap, "/", "-"))

				w := writes(m.requests())
				require.Len(t, w, 1, "one write")
				after := snap(t, raw, bucket, key)
				require.Equal(t, tagMap(before.tags), tagMap(after.tags), "tags")
				require.Len(t, tagMap(after.tags), 2)
				if v.instruction {
					require.True(t, out.InstructionFile)
					require.Contains(t, w[0], ".instruction?")
					require.True(t, strings.HasPrefix(w[0], "PUT "), w[0])
					// The object itself is untouched, to the second.
					requireSameAttributes(t, before.head, after.head)
					require.Equal(t, before.head.Metadata, after.head.Metadata)
					bi, err := format.ParseInstruction(before.instr)
					require.NoError(t, err)
					ai, err := format.ParseInstruction(after.instr)
					require.NoError(t, err)
					requireOnlyWrapChanged(t, v.format, bi, ai)
					require.Equal(t, before.instrHead.Metadata, after.instrHead.Metadata, "instruction file metadata")
				} else {
					require.False(t, out.InstructionFile)
					require.NotContains(t, w[0], ".instruction")
					requireSameAttributes(t, before.head, after.head, "LastModified")
					require.Nil(t, after.instr)
					requireOnlyWrapChanged(t, v.format, envelopeMetadata(before.head.Metadata), envelopeMetadata(after.head.Metadata))
				}

				readsAs(t, reader(t, raw, p.new), bucket, key, pt)
				_, err = get(reader(t, raw, p.old), bucket, key)
				require.ErrorIs(t, err, envelope.ErrNoMasterKey)

				// Again: already current, nothing written.
				m.reset()
				out, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				require.Equal(t, s3crypto.AlreadyCurrent, out.Status)
				require.False(t, out.Written)
				require.Empty(t, writes(m.requests()))
				again := snap(t, raw, bucket, key)
				require.Equal(t, after.head.LastModified, again.head.LastModified)
				require.Equal(t, after.instr, again.instr)
			})
		}
	}
}

// TestRewrapNotEncryptedAndEnvelopeObjects: an object without an envelope
// and an instruction file itself are reported as such, and not written.
func TestRewrapNotEncryptedAndEnvelopeObjects(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	m := newMeter()
	c := clientFor(t, s3At(t, "", withTransport(m)), newAES(t, "new"), nil)
	_, err := raw.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("plain.txt"), Body: strings.NewReader("hello")})
	require.NoError(t, err)
	_, err = raw.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("odd.instruction"), Body: strings.NewReader("{}")})
	require.NoError(t, err)
	put(t, newClient(t, raw, newAES(t, "old"), func(o *s3crypto.Options) { o.InstructionFile = true }), bucket, "enc", strings.NewReader("x"))

	for key, want := range map[string]s3crypto.RewrapStatus{
		"plain.txt":       s3crypto.NotEncrypted,
		"enc.instruction": s3crypto.EnvelopeObject, // marked as such
		"odd.instruction": s3crypto.EnvelopeObject, // unmarked, no envelope
	} {
		out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String(key)})
		require.NoError(t, err, key)
		require.Equal(t, want, out.Status, key)
	}
	// enc's old key is unknown to c: a failure that names the description.
	_, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("enc")})
	require.ErrorIs(t, err, envelope.ErrNoMasterKey)
	require.ErrorContains(t, err, `{"kid":"old"}`)
	require.Empty(t, writes(m.requests()))

	_, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("missing")})
	require.Error(t, err)
}

// TestRewrapRefusals: what Rewrap refuses to do writes nothing.
func TestRewrapRefusals(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	m := newMeter()
	rw := s3At(t, "", withTransport(m))
	old := newAES(t, "2025")
	put(t, newClient(t, raw, old), bucket, "v3", strings.NewReader("three"))
	put(t, newClient(t, raw, old, variant{envelope.FormatV2, false}.apply), bucket, "v2", strings.NewReader("two"))
	before := snap(t, raw, bucket, "v3")

	t.Run("same key bytes under a new description (EnforceRotation)", func(t *testing.T) {
		k := random(32)
		a, err := keyring.NewAES(k, map[string]string{"kid": "a"})
		require.NoError(t, err)
		b, err := keyring.NewAES(k, map[string]string{"kid": "b"})
		require.NoError(t, err)
		put(t, newClient(t, raw, a), bucket, "same", strings.NewReader("same"))
		c := clientFor(t, rw, b, []keyring.Keyring{a})
		m.reset()
		_, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("same"), EnforceRotation: true})
		require.ErrorIs(t, err, s3crypto.ErrRotationNotEnforced)
		require.Empty(t, writes(m.requests()))
		out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("same")})
		require.NoError(t, err)
		require.Equal(t, s3crypto.Rewrapped, out.Status)
	})
	t.Run("V2 under a V3-only policy", func(t *testing.T) {
		c, err := s3crypto.New(rw, provider(t, newAES(t, "new"), old))
		require.NoError(t, err)
		m.reset()
		_, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("v2")})
		require.ErrorIs(t, err, envelope.ErrPolicy)
		require.Empty(t, writes(m.requests()))
	})
	t.Run("dry run", func(t *testing.T) {
		c := clientFor(t, rw, newAES(t, "new"), []keyring.Keyring{old})
		m.reset()
		out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("v3"), DryRun: true})
		require.NoError(t, err)
		require.Equal(t, s3crypto.Rewrapped, out.Status)
		require.False(t, out.Written)
		require.True(t, out.Verified)
		require.Empty(t, writes(m.requests()))
	})
	t.Run("wrong ETag", func(t *testing.T) {
		c := clientFor(t, rw, newAES(t, "new"), []keyring.Keyring{old})
		_, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("v3"), ETag: aws.String(`"0123"`)})
		require.ErrorIs(t, err, s3crypto.ErrConcurrentModification)
	})
	t.Run("metadata over S3's limit", func(t *testing.T) {
		big := newAES(t, strings.Repeat("k", 1900))
		c := clientFor(t, rw, big, []keyring.Keyring{old})
		m.reset()
		_, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("v3")})
		require.ErrorIs(t, err, envelope.ErrTooLarge)
		require.Empty(t, writes(m.requests()))
	})
	t.Run("description names the current key but it does not unwrap", func(t *testing.T) {
		impostor := newAES(t, "2025")
		c := clientFor(t, rw, impostor, nil)
		m.reset()
		_, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("v3")})
		require.ErrorIs(t, err, envelope.ErrAuthentication)
		require.Empty(t, writes(m.requests()))
	})
	t.Run("no current key", func(t *testing.T) {
		c := clientFor(t, rw, nil, []keyring.Keyring{old})
		_, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("v3")})
		require.ErrorIs(t, err, envelope.ErrNoMasterKey)
	})
	after := snap(t, raw, bucket, "v3")
	requireSameAttributes(t, before.head, after.head)
	require.Equal(t, before.head.Metadata, after.head.Metadata, "a refused rewrap changed the object")
}

// kmsForRewrap returns a client for the test KMS server (local-kms, started
// by ./scripts/test; it checks no signatures) and a function that creates a
// fresh KMS key and returns a keyring for it.
func kmsForRewrap(t *testing.T) func() *keyring.KMS {
	t.Helper()
	kc := testenv.KMS(t)
	return func() *keyring.KMS {
		out, err := kc.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("s3envelope " + t.Name())})
		require.NoError(t, err)
		kr, err := keyring.NewKMS(kc, aws.ToString(out.KeyMetadata.Arn))
		require.NoError(t, err)
		return kr
	}
}

// TestRewrapKMS rotates between KMS keys and raw keys, in every format and
// storage, against local-kms: AES → KMS (the encryption context on ctx is
// bound into the new wrap), KMS → KMS (the object's own encryption context
// is kept; the old key, which KMS binds each blob to, no longer decrypts),
// and KMS → AES. An object wrapped by the current KMS key is current (KMS
// decrypts it under that key ID) and is not written.
func TestRewrapKMS(t *testing.T) {
	raw, bucket := realS3(t)
	newKMS := kmsForRewrap(t)
	kmsA, kmsB := newKMS(), newKMS()
	aesOld, aesNew := newAES(t, "aes-old"), newAES(t, "aes-new")
	tenant := map[string]string{"tenant": "t1"}
	dept := map[string]string{"dept": "finance"}
	for _, v := range variants {
		for _, tc := range []struct {
			name        string
			old, new    keyring.Keyring
			putEC, rwEC map[string]string // contexts on ctx for the PUT and the rewrap
			wantEC      map[string]string // the encryption context stored after (nil: not KMS)
			oldFails    error             // how the old key alone fails afterwards
		}{
			{"AES-to-KMS", aesOld, kmsB, nil, dept, dept, envelope.ErrNoMasterKey},
			{"KMS-to-KMS", kmsA, kmsB, tenant, nil, tenant, envelope.ErrAuthentication},
			{"KMS-to-KMS-expected-ctx", kmsA, kmsB, tenant, tenant, tenant, envelope.ErrAuthentication},
			{"KMS-to-AES", kmsA, aesNew, tenant, nil, nil, envelope.ErrNoMasterKey},
		} {
			t.Run(v.String()+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				key := "kms/" + v.String() + "/" + tc.name
				pt := random(2000)
				pctx := ctx
				if tc.putEC != nil {
					pctx = keyring.WithEncryptionContext(ctx, tc.putEC)
				}
				_, err := newClient(t, raw, tc.old, v.apply).PutObject(pctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(pt)})
				require.NoError(t, err)
				before := snap(t, raw, bucket, key)

				m := newMeter()
				c := clientFor(t, s3At(t, "", withTransport(m)), tc.new, []keyring.Keyring{tc.old})
				rctx := ctx
				if tc.rwEC != nil {
					rctx = keyring.WithEncryptionContext(ctx, tc.rwEC)
				}
				out, err := c.Rewrap(rctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key, EnforceRotation: true})
				require.NoError(t, err)
				require.Equal(t, s3crypto.Rewrapped, out.Status)
				// KMS → KMS uses ReEncrypt by default for V2 (no key
				// commitment): then KMS, not the client, vouches for the
				// new wrap.
				reEncrypted := strings.HasPrefix(tc.name, "KMS-to-KMS") && v.format == envelope.FormatV2
				require.Equal(t, reEncrypted, out.ReEncrypted)
				require.Equal(t, !reEncrypted, out.Verified)
				require.True(t, out.Written)
				if tc.wantEC != nil {
					want := maps.Clone(tc.wantEC)
					want[kmsctx.ReservedKey] = map[envelope.Format]string{envelope.FormatV2: format.ContentAESGCM, envelope.FormatV3: format.ContentAESGCMCommit}[v.format]
					require.Equal(t, want, out.NewDescription)
					require.Equal(t, format.WrapKMSContext, out.NewWrap)
				}
				after := snap(t, raw, bucket, key)
				require.Equal(t, tagMap(before.tags), tagMap(after.tags))
				if v.instruction {
					requireSameAttributes(t, before.head, after.head)
				} else {
					requireSameAttributes(t, before.head, after.head, "LastModified")
				}

				readsAs(t, reader(t, raw, tc.new), bucket, key, pt)
				_, err = get(reader(t, raw, tc.old), bucket, key)
				require.ErrorIs(t, err, tc.oldFails)

				m.reset()
				out, err = c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: &key})
				require.NoError(t, err)
				require.Equal(t, s3crypto.AlreadyCurrent, out.Status)
				require.Empty(t, writes(m.requests()))
			})
		}
	}
	// For a KMS-wrapped object, a context on ctx is what the caller expects
	// of the object, as for GetObject: another one fails, writing nothing.
	t.Run("expected context differs", func(t *testing.T) {
		ctx := context.Background()
		_, err := newClient(t, raw, kmsA).PutObject(keyring.WithEncryptionContext(ctx, tenant),
			&s3.PutObjectInput{Bucket: &bucket, Key: aws.String("kms/mismatch"), Body: strings.NewReader("x")})
		require.NoError(t, err)
		m := newMeter()
		c := clientFor(t, s3At(t, "", withTransport(m)), kmsB, []keyring.Keyring{kmsA})
		_, err = c.Rewrap(keyring.WithEncryptionContext(ctx, dept), &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("kms/mismatch")})
		require.ErrorIs(t, err, envelope.ErrAuthentication)
		require.Empty(t, writes(m.requests()))
	})
}

// TestRewrapKeepsOtherEnvelopeFields: envelope fields that are not the wrap
// are kept as stored, even those this library would not write (AWS's Go v4
// client stores an empty x-amz-unencrypted-content-length on V3 objects).
func TestRewrapKeepsOtherEnvelopeFields(t *testing.T) {
	raw, bucket := realS3(t)
	ctx := context.Background()
	old, cur := newAES(t, "old"), newAES(t, "new")
	pt := []byte("as AWS's Go v4 client stores it")
	put(t, newClient(t, raw, old), bucket, "v4", bytes.NewReader(pt))
	h, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("v4")})
	require.NoError(t, err)
	meta := maps.Clone(h.Metadata)
	meta["x-amz-unencrypted-content-length"] = ""
	_, err = raw.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("v4"), CopySource: aws.String(bucket + "/v4"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: meta})
	require.NoError(t, err)
	before := snap(t, raw, bucket, "v4")
	require.Contains(t, before.head.Metadata, "x-amz-unencrypted-content-length")

	out, err := clientFor(t, raw, cur, []keyring.Keyring{old}).Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("v4")})
	require.NoError(t, err)
	require.True(t, out.Written)
	after := snap(t, raw, bucket, "v4")
	requireOnlyWrapChanged(t, envelope.FormatV3, envelopeMetadata(before.head.Metadata), envelopeMetadata(after.head.Metadata))
	readsAs(t, reader(t, raw, cur), bucket, "v4", pt)
}
