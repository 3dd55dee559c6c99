package s3crypto_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

func TestRoundTripInProcess(t *testing.T) {
	roundTrips(t, newMemS3(), "b")
}

func TestNewRejectsContradictions(t *testing.T) {
	kr := masterKeys(t)[0]
	for _, fn := range []func(*s3crypto.Options){
		func(o *s3crypto.Options) { o.Format = envelope.FormatV2 },
		func(o *s3crypto.Options) {
			o.Format = envelope.FormatV3
			o.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt
		},
	} {
		_, err := s3crypto.New(newMemS3(), provider(t, kr), fn)
		require.ErrorIs(t, err, envelope.ErrPolicy)
	}
	c, err := s3crypto.New(newMemS3(), provider(t, kr))
	require.NoError(t, err)
	require.Equal(t, envelope.FormatV3, c.Options().Format)
	_, err = s3crypto.New(nil, provider(t, kr))
	require.Error(t, err)
}

func TestInstructionFileLayout(t *testing.T) {
	api := newMemS3()
	kr := masterKeys(t)[0]
	c := newClient(t, api, kr, func(o *s3crypto.Options) { o.InstructionFile = true })
	put(t, c, "b", "k", bytes.NewReader([]byte("hello")))
	obj, ins := api.object("k"), api.object("k.instruction")
	// V3 keeps the suite, commitment and message ID on the object itself.
	require.ElementsMatch(t, []string{"x-amz-c", "x-amz-d", "x-amz-i"}, keysOf(obj.meta))
	require.Equal(t, map[string]string{"x-amz-crypto-instr-file": ""}, ins.meta)
	fields, err := format.ParseInstruction(ins.body)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"x-amz-3", "x-amz-w", "x-amz-m"}, keysOf(fields))

	// Delete removes both.
	_, err = c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	require.NoError(t, err)
	require.Empty(t, api.keys())
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMetadataPreservedAndReserved(t *testing.T) {
	api := newMemS3()
	c := newClient(t, api, masterKeys(t)[0])
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader([]byte("x")),
		Metadata: map[string]string{"owner": "alice"},
	})
	require.NoError(t, err)
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	require.NoError(t, err)
	out.Body.Close()
	require.Equal(t, "alice", out.Metadata["owner"])
	require.Nil(t, out.ChecksumCRC32, "ciphertext checksum must not describe the plaintext")

	for _, k := range []string{"x-amz-key-v2", "X-Amz-3", "x-amz-matdesc", "x-amz-crypto-instr-file"} {
		_, err = c.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String("b"), Key: aws.String("k2"), Body: bytes.NewReader(nil),
			Metadata: map[string]string{k: "forged"},
		})
		require.ErrorIs(t, err, envelope.ErrMalformed, k)
	}
	_, err = c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("b"), Key: aws.String("k3"), Body: bytes.NewReader(nil),
		Metadata: map[string]string{"big": string(bytes.Repeat([]byte("a"), 1900))},
	})
	require.ErrorIs(t, err, envelope.ErrTooLarge)
	require.ErrorContains(t, err, "InstructionFile")
}

func TestPlaintextChecksumsRefused(t *testing.T) {
	c := newClient(t, newMemS3(), masterKeys(t)[0])
	for _, in := range []*s3.PutObjectInput{
		{ContentMD5: aws.String("XrY7u+Ae7tCTyyK7j1rNww==")},
		{ChecksumSHA256: aws.String("x")},
		{ChecksumCRC32: aws.String("x")},
	} {
		in.Bucket, in.Key, in.Body = aws.String("b"), aws.String("k"), bytes.NewReader([]byte("hello world"))
		_, err := c.PutObject(context.Background(), in)
		require.ErrorIs(t, err, s3crypto.ErrPlaintextChecksum)
	}
}

func TestContentLength(t *testing.T) {
	api := newMemS3()
	c := newClient(t, api, masterKeys(t)[0])
	pt := random(1000)
	// Seekable: ContentLength may take a prefix.
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(pt), ContentLength: aws.Int64(600),
	})
	require.NoError(t, err)
	got, err := get(c, "b", "k")
	require.NoError(t, err)
	require.Equal(t, pt[:600], got)
	// Longer than the body: refused.
	_, err = c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(pt), ContentLength: aws.Int64(1001),
	})
	require.Error(t, err)
	_, err = c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("b"), Key: aws.String("k"), Body: io.MultiReader(bytes.NewReader(pt)), ContentLength: aws.Int64(1001),
	})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)

	h, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	require.NoError(t, err)
	require.Equal(t, int64(600), aws.ToInt64(h.ContentLength))
}

func TestHeadUnencryptedPassesThrough(t *testing.T) {
	api := newMemS3()
	api.set("plain", memObject{body: []byte("abc"), meta: map[string]string{"a": "b"}})
	c := newClient(t, api, masterKeys(t)[0])
	h, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("plain")})
	require.NoError(t, err)
	require.Equal(t, int64(3), aws.ToInt64(h.ContentLength))
	_, err = get(c, "b", "plain")
	require.ErrorIs(t, err, envelope.ErrNoEnvelope)
}

// TestRangeRefused: a range of a one-pass (V3) object cannot be
// authenticated, and a part GET of any object is refused.
func TestRangeRefused(t *testing.T) {
	api := newMemS3()
	c := newClient(t, api, masterKeys(t)[0])
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(random(100))})
	require.NoError(t, err)
	_, err = c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Range: aws.String("bytes=0-1")})
	require.ErrorIs(t, err, s3crypto.ErrRange)
	require.ErrorIs(t, err, envelope.ErrDisallowed)
	_, err = c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), PartNumber: aws.Int32(1)})
	require.ErrorIs(t, err, s3crypto.ErrRange)
}

// TestDescriptionResolution: objects written under an older master key are
// read by a client whose current key is newer, by stored description.
func TestDescriptionResolution(t *testing.T) {
	api := newMemS3()
	old, err := keyring.NewAES(random(32), map[string]string{"kid": "2025"})
	require.NoError(t, err)
	cur, err := keyring.NewAES(random(32), map[string]string{"kid": "2026"})
	require.NoError(t, err)
	put(t, newClient(t, api, old), "b", "old", bytes.NewReader([]byte("old data")))

	// Current key only: a typed error naming the description.
	_, err = get(newClient(t, api, cur), "b", "old")
	require.ErrorIs(t, err, envelope.ErrNoMasterKey)
	var nmk *materials.NoMasterKeyError
	require.True(t, errors.As(err, &nmk))
	require.Equal(t, map[string]string{"kid": "2025"}, nmk.Description)
	require.Contains(t, err.Error(), `{"kid":"2025"}`)

	both, err := s3crypto.New(api, provider(t, cur, old))
	require.NoError(t, err)
	got, err := get(both, "b", "old")
	require.NoError(t, err)
	require.Equal(t, "old data", string(got))

	lookups := 0
	lookup := materials.NewLookupProvider(cur, func(ctx context.Context, desc map[string]string) (keyring.Keyring, error) {
		lookups++
		if desc["kid"] == "2025" {
			return old, nil
		}
		return nil, nil
	})
	lp, err := s3crypto.New(api, lookup)
	require.NoError(t, err)
	for range 2 {
		got, err = get(lp, "b", "old")
		require.NoError(t, err)
		require.Equal(t, "old data", string(got))
	}
	require.Equal(t, 1, lookups, "a found key is remembered")
}

func TestWriteOnlyRSA(t *testing.T) {
	api := newMemS3()
	pub, err := keyring.NewRSAPublic(&testRSA().PublicKey, map[string]string{"kid": "rsa-test"})
	require.NoError(t, err)
	writer := newClient(t, api, pub)
	put(t, writer, "b", "k", bytes.NewReader([]byte("for the holder of the private key")))
	_, err = get(writer, "b", "k")
	require.ErrorIs(t, err, envelope.ErrWrapOnly)

	priv, err := keyring.NewRSA(testRSA(), map[string]string{"kid": "rsa-test"})
	require.NoError(t, err)
	got, err := get(newClient(t, api, priv), "b", "k")
	require.NoError(t, err)
	require.Equal(t, "for the holder of the private key", string(got))
}

// TestTamperReleasesNothing flips bits of the stored body and envelope: every
// GET fails with the authentication error and yields no plaintext.
func TestTamperReleasesNothing(t *testing.T) {
	for _, v := range variants {
		api := newMemS3()
		c := newClient(t, api, masterKeys(t)[0], v.apply)
		put(t, c, "b", "k", bytes.NewReader(random(100)))
		orig, origIns := api.object("k"), api.object("k.instruction")
		for i := 0; i < len(orig.body); i++ {
			o := memObject{body: bytes.Clone(orig.body), meta: orig.meta}
			o.body[i] ^= 0x01
			api.set("k", o)
			got, err := get(c, "b", "k")
			require.True(t, isAuth(err), "%v body byte %d: %v", v, i, err)
			require.Empty(t, got)
		}
		api.set("k", orig)
		fields := map[string]bool{"x-amz-key-v2": true, "x-amz-iv": true, "x-amz-3": true, "x-amz-i": true, "x-amz-d": true}
		tamper := func(m map[string]string) (map[string]string, bool) {
			n := 0
			for k := range m {
				if fields[k] {
					n++
				}
			}
			return m, n > 0
		}
		for _, where := range []string{"k", "k.instruction"} {
			src := orig
			if where == "k.instruction" {
				if !v.instruction {
					continue
				}
				src = origIns
			}
			m := src.meta
			if where == "k.instruction" {
				var err error
				m, err = format.ParseInstruction(src.body)
				require.NoError(t, err)
			}
			if _, ok := tamper(m); !ok {
				continue
			}
			for field := range fields {
				val, ok := m[field]
				if !ok {
					continue
				}
				raw, err := base64.StdEncoding.DecodeString(val)
				require.NoError(t, err)
				raw[len(raw)/2] ^= 0x10
				mm := map[string]string{}
				for k, v := range m {
					mm[k] = v
				}
				mm[field] = base64.StdEncoding.EncodeToString(raw)
				if where == "k" {
					api.set("k", memObject{body: orig.body, meta: mm})
				} else {
					api.set("k.instruction", memObject{body: mustJSON(mm), meta: origIns.meta})
				}
				got, err := get(c, "b", "k")
				require.True(t, isAuth(err), "%v %s %s: %v", v, where, field, err)
				require.Empty(t, got)
				api.set("k", orig)
				api.set("k.instruction", origIns)
			}
		}
	}
}

func mustJSON(m map[string]string) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func TestSpoolDirCleaned(t *testing.T) {
	dir := t.TempDir()
	api := newMemS3()
	c := newClient(t, api, masterKeys(t)[0], func(o *s3crypto.Options) { o.SpoolDir = dir; o.SpoolMemory = -1 })
	// Unknown length goes through the spool on PUT too.
	put(t, c, "b", "k", io.MultiReader(bytes.NewReader(random(200<<10))))
	got, err := get(c, "b", "k")
	require.NoError(t, err)
	require.Len(t, got, 200<<10)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestLargeStreamInProcess(t *testing.T) {
	largeRoundTrip(t, newClient(t, newMemS3(), masterKeys(t)[0]), "b", 20<<20+5)
}

// TestPipeBody: an *os.File is an io.Seeker that may not seek (a pipe, like
// os.Stdin in a shell pipeline); it is streamed as a body of unknown length.
func TestPipeBody(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	pt := random(100 << 10)
	go func() {
		w.Write(pt)
		w.Close()
	}()
	api := newMemS3()
	c := newClient(t, api, masterKeys(t)[0])
	put(t, c, "b", "k", r)
	got, err := get(c, "b", "k")
	require.NoError(t, err)
	require.True(t, bytes.Equal(pt, got))
}

// TestObjectError: every object operation's error is an *ObjectError
// naming the operation and the object, with the cause reachable through
// errors.Is (and S3's own errors through errors.As).
func TestObjectError(t *testing.T) {
	ctx := context.Background()
	api := newMemS3()
	c := newClient(t, api, masterKeys(t)[0])
	b, k := aws.String("b"), aws.String("missing")
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k})
	var oe *s3crypto.ObjectError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, s3crypto.ObjectError{Op: "GetObject", Bucket: "b", Key: "missing", Err: oe.Err}, *oe)
	var nsk *types.NoSuchKey
	require.ErrorAs(t, err, &nsk, "S3's error passes through")
	require.True(t, strings.HasPrefix(err.Error(), "s3crypto: GetObject s3://b/missing: "), err.Error())

	put(t, c, "b", "k", strings.NewReader("body"))
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("k"), Range: aws.String("bytes=0-1")})
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "GetObject", oe.Op)
	require.ErrorIs(t, err, s3crypto.ErrRange)
	require.ErrorIs(t, err, envelope.ErrDisallowed)

	_, err = c.PutObject(ctx, nil)
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "PutObject", oe.Op)

	// An Upload small enough for one PutObject reports itself, not the
	// PutObject inside it, and does not nest the two.
	_, err = s3crypto.NewUploader(c).Upload(ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"), ContentMD5: aws.String("AAAAAAAAAAAAAAAAAAAAAA==")})
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "Upload", oe.Op)
	require.ErrorIs(t, err, s3crypto.ErrPlaintextChecksum)
	require.NotContains(t, err.Error(), "PutObject s3://", "nested")
}
