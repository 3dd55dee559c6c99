package s3crypto_test

// Tests of KMS master keys (kms+context) against real servers: versitygw for
// S3 and local-kms for KMS, both started by ./scripts/test on 127.0.0.1.
// They fail, never skip, without them. Every test makes its own KMS keys.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/s3envelope/s3envelope/internal/testenv"

	"github.com/s3envelope/s3envelope/internal/kmsctx"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// realKMS returns a KMS client for the test server (local-kms, which checks
// no signatures, so any static credentials do).
// localKMSAccount is the account local-kms names in its key ARNs
// (./scripts/test starts it with its default), for discovery keys.
var localKMSAccount = keyring.DiscoveryFilter{Partition: "aws", AccountIDs: []string{"111122223333"}}

func realKMS(t *testing.T) *kms.Client { return testenv.KMS(t) }

// newKMSKey creates a fresh symmetric KMS key and returns its ARN.
func newKMSKey(t *testing.T, c *kms.Client) string {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("s3envelope " + t.Name())})
	require.NoError(t, err, "KMS CreateKey on %s", os.Getenv("S3ENVELOPE_KMS_ENDPOINT"))
	require.NotNil(t, out.KeyMetadata)
	arn := aws.ToString(out.KeyMetadata.Arn)
	require.NotEmpty(t, arn)
	return arn
}

func newKMSKeyring(t *testing.T, c *kms.Client, keyID string, optFns ...func(*keyring.KMSOptions)) *keyring.KMS {
	t.Helper()
	kr, err := keyring.NewKMS(c, keyID, optFns...)
	require.NoError(t, err)
	return kr
}

// kmsWithEC returns ctx carrying ec as the request's encryption context, or
// ctx itself for a nil ec.
func kmsWithEC(ctx context.Context, ec map[string]string) context.Context {
	if ec == nil {
		return ctx
	}
	return keyring.WithEncryptionContext(ctx, ec)
}

func kmsPut(ctx context.Context, c *s3crypto.Client, bucket, key string, body []byte) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	return err
}

// kmsRawObject is an object as S3 holds it: ciphertext and user metadata.
type kmsRawObject struct {
	body []byte
	meta map[string]string
}

func kmsGetRaw(t *testing.T, api *s3.Client, bucket, key string) (kmsRawObject, bool) {
	t.Helper()
	out, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nk *s3types.NoSuchKey
		if errors.As(err, &nk) {
			return kmsRawObject{}, false
		}
		require.NoError(t, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return kmsRawObject{b, out.Metadata}, true
}

func kmsPutRaw(t *testing.T, api *s3.Client, bucket, key string, o kmsRawObject) {
	t.Helper()
	_, err := api.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(o.body), Metadata: o.meta,
	})
	require.NoError(t, err)
}

// kmsStoredEnvelope returns the envelope fields of an object as stored: its
// metadata's and its instruction file's, and which of them holds the
// context (x-amz-matdesc for V2, x-amz-t for V3).
func kmsStoredEnvelope(t *testing.T, api *s3.Client, bucket, key string, v variant) (fields map[string]string, contextField string) {
	t.Helper()
	obj, ok := kmsGetRaw(t, api, bucket, key)
	require.True(t, ok, "object %s missing", key)
	fields = map[string]string{}
	for k, val := range obj.meta {
		if format.IsEnvelopeKey(k) {
			fields[k] = val
		}
	}
	instr, hasInstr := kmsGetRaw(t, api, bucket, key+format.InstructionSuffix)
	require.Equal(t, v.instruction, hasInstr, "instruction file exists")
	if hasInstr {
		m, err := format.ParseInstruction(instr.body)
		require.NoError(t, err)
		for k, val := range m {
			_, dup := fields[k]
			require.False(t, dup, "%s both in metadata and in the instruction file", k)
			fields[k] = val
		}
	}
	if v.format == envelope.FormatV3 {
		return fields, "x-amz-t"
	}
	return fields, "x-amz-matdesc"
}

// kmsCheckStoredEnvelope checks the stored envelope of a kms+context object:
// wrap algorithm, content algorithm, and an encryption context that is the
// caller's plus aws:x-amz-cek-alg bound to the content algorithm.
func kmsCheckStoredEnvelope(t *testing.T, api *s3.Client, bucket, key string, v variant, ec map[string]string) {
	t.Helper()
	f, field := kmsStoredEnvelope(t, api, bucket, key, v)
	want := maps.Clone(ec)
	if want == nil {
		want = map[string]string{}
	}
	if v.format == envelope.FormatV3 {
		require.Equal(t, "12", f["x-amz-w"], "V3 wrap code for kms+context")
		require.Equal(t, "115", f["x-amz-c"])
		require.NotContains(t, f, "x-amz-m", "a KMS V3 object stores its context in x-amz-t")
		want[kmsctx.ReservedKey] = "115"
	} else {
		require.Equal(t, "kms+context", f["x-amz-wrap-alg"])
		require.Equal(t, "AES/GCM/NoPadding", f["x-amz-cek-alg"])
		want[kmsctx.ReservedKey] = "AES/GCM/NoPadding"
	}
	raw, ok := f[field]
	require.True(t, ok, "%s is not stored", field)
	var got map[string]string
	require.NoError(t, json.Unmarshal([]byte(raw), &got), "%s = %q is not a JSON object of strings", field, raw)
	require.Equal(t, want, got, "stored encryption context (%s = %s)", field, raw)
	if v.instruction {
		obj, _ := kmsGetRaw(t, api, bucket, key)
		require.NotContains(t, obj.meta, field, "the context belongs in the instruction file")
	}
}

var kmsSizes = []int{0, 1, 17, 70000, 1<<20 + 3}

var kmsTestEC = map[string]string{"tenant": "acme", "purpose": "kms-test", "unicode": "héllo wörld"}

// TestKMSRoundTrips writes and reads every format × storage with and without
// a per-request encryption context, and checks what is stored.
func TestKMSRoundTrips(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	keyID := newKMSKey(t, kc)
	// Grant tokens are passed through (local-kms accepts and ignores them).
	kr := newKMSKeyring(t, kc, keyID, func(o *keyring.KMSOptions) { o.GrantTokens = []string{"test-grant-token"} })
	require.Equal(t, keyID, kr.KeyID())
	for _, v := range variants {
		c := newClient(t, api, kr, v.apply)
		for _, ec := range []map[string]string{nil, kmsTestEC} {
			ecName := "no-context"
			if ec != nil {
				ecName = "context"
			}
			for _, n := range kmsSizes {
				t.Run(fmt.Sprintf("%v/%s/%d", v, ecName, n), func(t *testing.T) {
					ctx := context.Background()
					key := fmt.Sprintf("kms-rt/%v/%s/%d", v, ecName, n)
					pt := random(n)
					require.NoError(t, kmsPut(kmsWithEC(ctx, ec), c, bucket, key, pt))
					kmsCheckStoredEnvelope(t, api, bucket, key, v, ec)

					// Expecting the stored context (or, for an object
					// without one, expecting the empty context).
					expect := ec
					if expect == nil {
						expect = map[string]string{}
					}
					got, err := getCtx(keyring.WithEncryptionContext(ctx, expect), c, bucket, key)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got), "plaintext differs")

					// Expecting nothing: KMS still binds the stored context.
					got, err = getCtx(ctx, c, bucket, key)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got), "plaintext differs (no expected context)")
				})
			}
		}
	}
}

// TestKMSContextMismatch: a GET that expects another encryption context than
// the stored one fails authentication and releases nothing.
func TestKMSContextMismatch(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	kr := newKMSKeyring(t, kc, newKMSKey(t, kc))
	ctx := context.Background()
	withExtra := maps.Clone(kmsTestEC)
	withExtra["extra"] = "1"
	subset := maps.Clone(kmsTestEC)
	delete(subset, "tenant")
	changed := maps.Clone(kmsTestEC)
	changed["tenant"] = "evil"
	withReserved := maps.Clone(kmsTestEC)
	withReserved[kmsctx.ReservedKey] = "AES/GCM/NoPadding"
	for _, v := range variants {
		c := newClient(t, api, kr, v.apply)
		key := "kms-mismatch/" + v.String()
		require.NoError(t, kmsPut(kmsWithEC(ctx, kmsTestEC), c, bucket, key, random(1000)))
		plainKey := key + "-no-context"
		require.NoError(t, kmsPut(ctx, c, bucket, plainKey, random(1000)))
		cases := []struct {
			name   string
			key    string
			expect map[string]string
		}{
			{"changed value", key, changed},
			{"extra key", key, withExtra},
			{"missing key", key, subset},
			{"empty", key, map[string]string{}},
			{"reserved key included", key, withReserved},
			{"object without context", plainKey, kmsTestEC},
		}
		for _, tc := range cases {
			t.Run(v.String()+"/"+tc.name, func(t *testing.T) {
				got, err := getCtx(keyring.WithEncryptionContext(ctx, tc.expect), c, bucket, tc.key)
				require.ErrorIs(t, err, envelope.ErrAuthentication)
				require.Empty(t, got)
			})
		}
	}
}

// TestKMSTamperedContext edits the stored encryption context behind the
// client's back (x-amz-matdesc for V2, x-amz-t for V3, in the metadata or
// the instruction file). KMS binds the context to the wrapped key, so every
// edit fails authentication and releases nothing.
func TestKMSTamperedContext(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	kr := newKMSKeyring(t, kc, newKMSKey(t, kc))
	ctx := context.Background()

	edit := func(f func(m map[string]string)) func(string) string {
		return func(s string) string {
			var m map[string]string
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				panic(err)
			}
			f(m)
			return format.EncodeDescription(m)
		}
	}
	type tamper struct {
		name string
		edit func(string) string
		// want is what the error wraps; ErrAuthentication unless the edit
		// makes the envelope unreadable.
		want error
	}
	tampers := []tamper{
		{"changed value", edit(func(m map[string]string) { m["tenant"] = "evil" }), envelope.ErrAuthentication},
		{"added key", edit(func(m map[string]string) { m["extra"] = "1" }), envelope.ErrAuthentication},
		{"removed key", edit(func(m map[string]string) { delete(m, "tenant") }), envelope.ErrAuthentication},
		{"content algorithm swapped", edit(func(m map[string]string) {
			if m[kmsctx.ReservedKey] == "115" {
				m[kmsctx.ReservedKey] = "AES/GCM/NoPadding"
			} else {
				m[kmsctx.ReservedKey] = "115"
			}
		}), envelope.ErrAuthentication},
		{"content algorithm removed", edit(func(m map[string]string) { delete(m, kmsctx.ReservedKey) }), envelope.ErrMalformed},
		{"emptied", func(string) string { return "{}" }, envelope.ErrMalformed},
		{"not JSON", func(string) string { return "tenant=acme" }, envelope.ErrMalformed},
	}
	for _, v := range variants {
		c := newClient(t, api, kr, v.apply)
		for _, tc := range tampers {
			t.Run(v.String()+"/"+tc.name, func(t *testing.T) {
				key := fmt.Sprintf("kms-tamper/%v/%s", v, tc.name)
				pt := bytes.Repeat([]byte("secret "), 200)
				require.NoError(t, kmsPut(kmsWithEC(ctx, kmsTestEC), c, bucket, key, pt))
				_, field := kmsStoredEnvelope(t, api, bucket, key, v)
				where := key
				if v.instruction {
					where = key + format.InstructionSuffix
				}
				obj, ok := kmsGetRaw(t, api, bucket, where)
				require.True(t, ok)
				if v.instruction {
					m, err := format.ParseInstruction(obj.body)
					require.NoError(t, err)
					m[field] = tc.edit(m[field])
					obj.body, err = json.Marshal(m)
					require.NoError(t, err)
				} else {
					obj.meta[field] = tc.edit(obj.meta[field])
				}
				kmsPutRaw(t, api, bucket, where, obj)

				// Expecting nothing: KMS (or the decoder) refuses.
				got, err := getCtx(ctx, c, bucket, key)
				require.ErrorIs(t, err, tc.want, "%v, %s edited: %v", v, field, err)
				require.Empty(t, got)
				require.NotContains(t, fmt.Sprint(err), "secret")
				// Expecting the original context: refused as well.
				got, err = getCtx(keyring.WithEncryptionContext(ctx, kmsTestEC), c, bucket, key)
				require.Error(t, err)
				require.Empty(t, got)
			})
		}
	}
}

// TestKMSLegacyWrapDowngrade relabels a kms+context V2 object as legacy
// "kms": refused unless legacy wrapping algorithms are enabled.
func TestKMSLegacyWrapDowngrade(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	kr := newKMSKeyring(t, kc, newKMSKey(t, kc))
	v := variant{envelope.FormatV2, false}
	c := newClient(t, api, kr, v.apply)
	pt := random(100)
	require.NoError(t, kmsPut(context.Background(), c, bucket, "k", pt))
	obj, _ := kmsGetRaw(t, api, bucket, "k")
	obj.meta["x-amz-wrap-alg"] = "kms"
	kmsPutRaw(t, api, bucket, "k", obj)
	got, err := get(c, bucket, "k")
	require.ErrorIs(t, err, envelope.ErrDisallowed)
	require.Empty(t, got)
}

// TestKMSReservedContextKey: a caller's context may not set
// aws:x-amz-cek-alg; nothing is stored.
func TestKMSReservedContextKey(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	kr := newKMSKeyring(t, kc, newKMSKey(t, kc))
	for _, v := range variants {
		for _, val := range []string{"AES/GCM/NoPadding", "115", ""} {
			t.Run(fmt.Sprintf("%v/%q", v, val), func(t *testing.T) {
				c := newClient(t, api, kr, v.apply)
				key := fmt.Sprintf("kms-reserved/%v/%s", v, val)
				ec := map[string]string{"tenant": "acme", kmsctx.ReservedKey: val}
				err := kmsPut(keyring.WithEncryptionContext(context.Background(), ec), c, bucket, key, random(10))
				require.Error(t, err)
				require.Contains(t, err.Error(), kmsctx.ReservedKey)
				_, exists := kmsGetRaw(t, api, bucket, key)
				require.False(t, exists, "a refused PUT stored the object")
				_, exists = kmsGetRaw(t, api, bucket, key+format.InstructionSuffix)
				require.False(t, exists, "a refused PUT stored an instruction file")
			})
		}
	}
}

// TestKMSDiscovery: a discovery keyring (no key ID) reads objects wrapped
// under any KMS key, checks an expected context, and cannot write.
func TestKMSDiscovery(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	keyA, keyB := newKMSKey(t, kc), newKMSKey(t, kc)
	// One writer by alias, to show aliases work for writing.
	_, err := kc.CreateAlias(context.Background(), &kms.CreateAliasInput{
		AliasName: aws.String("alias/s3envelope-discovery-" + strings.ToLower(kmsRandomHex())), TargetKeyId: aws.String(keyB),
	})
	require.NoError(t, err)
	aliases, err := kc.ListAliases(context.Background(), &kms.ListAliasesInput{KeyId: aws.String(keyB)})
	require.NoError(t, err)
	require.Len(t, aliases.Aliases, 1)
	alias := aws.ToString(aliases.Aliases[0].AliasName)

	disc, err := keyring.NewKMSDiscovery(kc, localKMSAccount)
	require.NoError(t, err)
	require.Empty(t, disc.KeyID())
	// A discovery key that trusts another account reads none of them
	// (finding 12: a bucket writer's own KMS key is not trusted).
	elsewhere, err := keyring.NewKMSDiscovery(kc, keyring.DiscoveryFilter{Partition: "aws", AccountIDs: []string{"999988887777"}})
	require.NoError(t, err)
	ctx := context.Background()
	for _, v := range variants {
		dc := newClient(t, api, disc, func(o *s3crypto.Options) {
			o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt // reads V2 and V3
		})
		untrusting := newClient(t, api, elsewhere, func(o *s3crypto.Options) {
			o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
		})
		for _, writerKey := range []string{keyA, alias} {
			name := "key"
			if writerKey == alias {
				name = "alias"
			}
			t.Run(v.String()+"/"+name, func(t *testing.T) {
				w := newClient(t, api, newKMSKeyring(t, kc, writerKey), v.apply)
				for _, ec := range []map[string]string{nil, kmsTestEC} {
					key := fmt.Sprintf("kms-disc/%v/%s/%v", v, name, ec != nil)
					pt := random(5000)
					require.NoError(t, kmsPut(kmsWithEC(ctx, ec), w, bucket, key, pt))
					got, err := getCtx(ctx, dc, bucket, key)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got))
					got, err = getCtx(ctx, untrusting, bucket, key)
					require.ErrorIs(t, err, envelope.ErrNoMasterKey)
					require.ErrorIs(t, err, keyring.ErrOutsideDiscoveryFilter)
					require.Empty(t, got)
					if ec != nil {
						got, err = getCtx(keyring.WithEncryptionContext(ctx, ec), dc, bucket, key)
						require.NoError(t, err)
						require.True(t, bytes.Equal(pt, got))
						got, err = getCtx(keyring.WithEncryptionContext(ctx, map[string]string{"tenant": "other"}), dc, bucket, key)
						require.ErrorIs(t, err, envelope.ErrAuthentication)
						require.Empty(t, got)
					}
				}
			})
		}
		t.Run(v.String()+"/write", func(t *testing.T) {
			wc := newClient(t, api, disc, v.apply)
			err := kmsPut(ctx, wc, bucket, "kms-disc/write/"+v.String(), random(10))
			require.Error(t, err, "a discovery keyring wrote an object")
			_, exists := kmsGetRaw(t, api, bucket, "kms-disc/write/"+v.String())
			require.False(t, exists)
		})
	}
}

func kmsRandomHex() string { return fmt.Sprintf("%x", random(8)) }

// TestKMSWrongKey: an object wrapped under one KMS key, read by a client
// holding another (another test's key), fails cleanly: an error naming the
// key, no plaintext.
func TestKMSWrongKey(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	keyA, keyB := newKMSKey(t, kc), newKMSKey(t, kc)
	ctx := context.Background()
	for _, v := range variants {
		t.Run(v.String(), func(t *testing.T) {
			w := newClient(t, api, newKMSKeyring(t, kc, keyA), v.apply)
			r := newClient(t, api, newKMSKeyring(t, kc, keyB), v.apply)
			key := "kms-wrong/" + v.String()
			require.NoError(t, kmsPut(kmsWithEC(ctx, kmsTestEC), w, bucket, key, random(3000)))
			got, err := getCtx(ctx, r, bucket, key)
			require.Error(t, err)
			require.Empty(t, got)
			t.Logf("read under another KMS key: %v", err)
			require.Contains(t, err.Error(), keyB, "the error names the key used")
			// local-kms decrypts the blob's ciphertext with the key asked for,
			// which fails as InvalidCiphertextException (AWS KMS answers
			// IncorrectKeyException): authentication, not a service fault.
			require.ErrorIs(t, err, envelope.ErrAuthentication)
			var bad *kmstypes.InvalidCiphertextException
			require.ErrorAs(t, err, &bad)
		})
	}
}

// TestKMSDisabledKey: with the KMS key disabled, PUT and GET fail with the
// service's error (not an authentication failure: nothing was tampered
// with), and work again once it is enabled.
func TestKMSDisabledKey(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	keyID := newKMSKey(t, kc)
	ctx := context.Background()
	for _, v := range variants {
		t.Run(v.String(), func(t *testing.T) {
			c := newClient(t, api, newKMSKeyring(t, kc, keyID), v.apply)
			disc, err := keyring.NewKMSDiscovery(kc, localKMSAccount)
			require.NoError(t, err)
			dc := newClient(t, api, disc, func(o *s3crypto.Options) { o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt })
			key := "kms-disabled/" + v.String()
			pt := random(2000)
			require.NoError(t, kmsPut(ctx, c, bucket, key, pt))

			_, err = kc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)})
			require.NoError(t, err)
			enabled := false
			defer func() {
				if !enabled {
					_, _ = kc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyID)})
				}
			}()

			got, err := get(c, bucket, key)
			require.Error(t, err)
			require.Empty(t, got)
			t.Logf("GET with the key disabled: %v", err)
			var disabled *kmstypes.DisabledException
			require.ErrorAs(t, err, &disabled)
			require.Contains(t, err.Error(), "disabled")
			require.NotErrorIs(t, err, envelope.ErrAuthentication)

			// A discovery keyring names no key: local-kms answers
			// AccessDeniedException (as AWS KMS may for a key it cannot use).
			got, err = get(dc, bucket, key)
			require.Error(t, err)
			require.Empty(t, got)
			t.Logf("discovery GET with the key disabled: %v", err)
			require.NotErrorIs(t, err, envelope.ErrAuthentication)

			err = kmsPut(ctx, c, bucket, key+"-new", random(10))
			require.Error(t, err)
			t.Logf("PUT with the key disabled: %v", err)
			require.ErrorAs(t, err, &disabled)
			_, exists := kmsGetRaw(t, api, bucket, key+"-new")
			require.False(t, exists, "a PUT that failed to get a data key stored the object")

			_, err = kc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyID)})
			require.NoError(t, err)
			enabled = true
			got, err = get(c, bucket, key)
			require.NoError(t, err)
			require.True(t, bytes.Equal(pt, got))
		})
	}
}

// TestKMSPolicy: a KMS V2 object is refused by the default policy
// (RequireEncryptRequireDecrypt) with ErrPolicy, before any KMS call.
func TestKMSPolicy(t *testing.T) {
	api, bucket := realS3(t)
	kc := realKMS(t)
	kr := newKMSKeyring(t, kc, newKMSKey(t, kc))
	for _, instr := range []bool{false, true} {
		v := variant{envelope.FormatV2, instr}
		t.Run(v.String(), func(t *testing.T) {
			key := "kms-policy/" + v.String()
			pt := random(100)
			require.NoError(t, kmsPut(context.Background(), newClient(t, api, kr, v.apply), bucket, key, pt))
			got, err := get(newClient(t, api, kr), bucket, key)
			require.ErrorIs(t, err, envelope.ErrPolicy)
			require.Empty(t, got)
			got, err = get(newClient(t, api, kr, func(o *s3crypto.Options) { o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt }), bucket, key)
			require.NoError(t, err)
			require.True(t, bytes.Equal(pt, got))
		})
	}
}
