package format_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// The helpers here are the rewrap tests' own (prefixed rw), so that they
// do not depend on the other test files' helpers.

var (
	rwRSAOnce sync.Once
	rwRSAKeys [2]*rsa.PrivateKey
)

// rwKeys are the master keys the rewrap tests move data keys between.
type rwKeys struct {
	aesOld, aesNew, rsaOld, rsaNew keyring.Keyring
	rsaNewPublic                   keyring.Keyring // rsaNew's public half: wraps, cannot unwrap
}

func rwKeyrings(t testing.TB) rwKeys {
	t.Helper()
	rwRSAOnce.Do(func() {
		for i := range rwRSAKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rwRSAKeys[i] = k
		}
	})
	aes := func(kid string) keyring.Keyring {
		k, err := keyring.NewAES(rwRandom(32), map[string]string{"kid": kid})
		require.NoError(t, err)
		return k
	}
	rsaKey := func(priv *rsa.PrivateKey, kid string) keyring.Keyring {
		k, err := keyring.NewRSA(priv, map[string]string{"kid": kid})
		require.NoError(t, err)
		return k
	}
	pub, err := keyring.NewRSAPublic(&rwRSAKeys[1].PublicKey, map[string]string{"kid": "rsa-new"})
	require.NoError(t, err)
	return rwKeys{
		aesOld: aes("aes-old"), aesNew: aes("aes-new"),
		rsaOld: rsaKey(rwRSAKeys[0], "rsa-old"), rsaNew: rsaKey(rwRSAKeys[1], "rsa-new"),
		rsaNewPublic: pub,
	}
}

func rwRandom(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func rwConfig(f envelope.Format) envelope.Config {
	switch f {
	case envelope.FormatV2:
		return envelope.Config{Format: f, CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}
	case envelope.FormatSegmented:
		return envelope.Config{Format: f, SegmentSize: envelope.MinSegmentSize}
	}
	return envelope.Config{Format: f}
}

// rwObject is a sealed object as stored: its user metadata (with a user
// key beside the envelope, in HTTP's canonical case as S3 returns it),
// its instruction file (nil when the envelope is in metadata) and body.
type rwObject struct {
	f        envelope.Format
	meta     map[string]string
	instr    []byte
	body     []byte
	plain    []byte
	cfg      envelope.Config
	instrDir bool
}

func rwSeal(t testing.TB, kr envelope.Wrapper, f envelope.Format, instruction bool) *rwObject {
	t.Helper()
	cfg := rwConfig(f)
	s, err := envelope.NewSealer(context.Background(), kr, cfg)
	require.NoError(t, err)
	plain := rwRandom(3*envelope.MinSegmentSize + 5)
	s.Envelope().PlaintextLength = int64(len(plain))
	body, err := io.ReadAll(s.Seal(bytes.NewReader(plain)))
	require.NoError(t, err)
	o := &rwObject{f: f, body: body, plain: plain, cfg: cfg, instrDir: instruction}
	var fields map[string]string
	if instruction {
		fields, o.instr, err = s.Envelope().Instruction()
	} else {
		fields, err = s.Envelope().Metadata()
	}
	require.NoError(t, err)
	o.meta = map[string]string{"Color": "blue", "X-Note": "kept as stored"}
	for k, v := range fields {
		o.meta[http.CanonicalHeaderKey(k)] = v
	}
	return o
}

func (o *rwObject) envelope(t testing.TB) *envelope.Envelope {
	t.Helper()
	e, err := envelope.Decode(o.meta, o.instr)
	require.NoError(t, err)
	return e
}

func (o *rwObject) options() envelope.RewrapOptions {
	return envelope.RewrapOptions{Metadata: o.meta, InstructionFile: o.instrDir}
}

// open reads the object's body with the envelope stored as meta and instr.
func (o *rwObject) open(t testing.TB, u envelope.Unwrapper, meta map[string]string, instr []byte) []byte {
	t.Helper()
	e, err := envelope.Decode(meta, instr)
	require.NoError(t, err)
	pt, err := envelope.Open(context.Background(), e, u, o.cfg, bytes.NewReader(o.body))
	require.NoError(t, err)
	defer pt.Close()
	b, err := io.ReadAll(pt)
	require.NoError(t, err)
	return b
}

func (o *rwObject) String() string {
	where := "metadata"
	if o.instrDir {
		where = "instruction"
	}
	return fmt.Sprintf("%v/%s", o.f, where)
}

var rwFormats = []envelope.Format{envelope.FormatV2, envelope.FormatV3, envelope.FormatSegmented}

// rwEqualButKey requires a and b to be the same envelope but for the key.
func rwEqualButKey(t testing.TB, a, b *envelope.Envelope) {
	t.Helper()
	ac, bc := *a, *b
	ac.Key, bc.Key = envelope.WrappedKey{}, envelope.WrappedKey{}
	require.Equal(t, ac, bc)
}

// TestRewrap: every format, in metadata and in an instruction file, moves
// from one master key to another of either kind; the new envelope, exactly
// as returned for storing, opens the body under the new key, and differs
// from the old only in its wrap.
func TestRewrap(t *testing.T) {
	ctx := context.Background()
	k := rwKeyrings(t)
	type pair struct {
		name     string
		old      keyring.Keyring
		wrap     keyring.Keyring
		open     keyring.Keyring // what opens the body afterwards
		verified bool
	}
	pairs := []pair{
		{"aes-aes", k.aesOld, k.aesNew, k.aesNew, true},
		{"aes-rsa", k.aesOld, k.rsaNew, k.rsaNew, true},
		{"rsa-aes", k.rsaOld, k.aesNew, k.aesNew, true},
		{"rsa-rsa", k.rsaOld, k.rsaNew, k.rsaNew, true},
		{"aes-rsapublic", k.aesOld, k.rsaNewPublic, k.rsaNew, false},
	}
	for _, f := range rwFormats {
		for _, instr := range []bool{false, true} {
			for _, p := range pairs {
				o := rwSeal(t, p.old, f, instr)
				t.Run(o.String()+"/"+p.name, func(t *testing.T) {
					old := o.envelope(t)
					oldCopy := *old
					r, err := envelope.Rewrap(ctx, old, p.old, p.wrap, p.wrap, o.options())
					require.NoError(t, err)
					defer r.Close()
					require.Equal(t, oldCopy, *old, "the old envelope is not changed")
					require.Equal(t, p.verified, r.Verified)
					require.Equal(t, p.wrap.Description(), r.Envelope.Key.Description)
					require.NotEqual(t, old.Key.Ciphertext, r.Envelope.Key.Ciphertext)
					rwEqualButKey(t, old, r.Envelope)

					var got []byte
					if instr {
						require.Nil(t, r.Metadata)
						require.NotNil(t, r.Instruction)
						decoded, err := envelope.Decode(o.meta, r.Instruction)
						require.NoError(t, err)
						require.Equal(t, r.Envelope, decoded)
						got = o.open(t, p.open, o.meta, r.Instruction)
					} else {
						require.Nil(t, r.Instruction)
						// The user's keys kept as stored, case and all; the
						// envelope's, but for the wrap's, with the same values
						// (written again, in lower case); none twice.
						lower := map[string]string{}
						for key, v := range r.Metadata {
							_, dup := lower[strings.ToLower(key)]
							require.False(t, dup, key)
							lower[strings.ToLower(key)] = v
						}
						for key, v := range o.meta {
							switch {
							case !envelope.IsEnvelopeKey(key):
								require.Equal(t, v, r.Metadata[key], key)
							case !rwWrapField(key):
								require.Equal(t, v, lower[strings.ToLower(key)], key)
							}
						}
						require.Equal(t, "blue", r.Metadata["Color"])
						decoded, err := envelope.Decode(r.Metadata, nil)
						require.NoError(t, err)
						require.Equal(t, r.Envelope, decoded)
						got = o.open(t, p.open, r.Metadata, nil)
					}
					require.Equal(t, o.plain, got)
					require.NoError(t, r.CheckDataKey(r.Envelope))
					require.NoError(t, r.CheckDataKey(old))
				})
			}
		}
	}
}

// rwWrapField: the fields that hold the wrapped key, its algorithm and the
// master key's description, which a rewrap replaces.
func rwWrapField(k string) bool {
	switch strings.ToLower(k) {
	case "x-amz-key-v2", "x-amz-wrap-alg", "x-amz-matdesc",
		"x-amz-3", "x-amz-w", "x-amz-m", "x-amz-t",
		"x-s3e-k", "x-s3e-w", "x-s3e-m":
		return true
	}
	return false
}

// countingWrapper counts the wraps asked of it.
type countingWrapper struct {
	envelope.Wrapper
	n int
}

func (w *countingWrapper) Wrap(ctx context.Context, dataKey []byte, contentAlg string) (*envelope.WrappedKey, error) {
	w.n++
	return w.Wrapper.Wrap(ctx, dataKey, contentAlg)
}

// TestRewrapWrongKey: a master key that does not unwrap the data key fails
// with ErrAuthentication, before anything is wrapped; nothing is returned.
func TestRewrapWrongKey(t *testing.T) {
	k := rwKeyrings(t)
	for _, f := range rwFormats {
		for _, instr := range []bool{false, true} {
			o := rwSeal(t, k.aesOld, f, instr)
			w := &countingWrapper{Wrapper: k.aesNew}
			wrong, err := keyring.NewAES(rwRandom(32), map[string]string{"kid": "aes-old"})
			require.NoError(t, err)
			r, err := envelope.Rewrap(context.Background(), o.envelope(t), wrong, w, k.aesNew, o.options())
			require.ErrorIs(t, err, envelope.ErrAuthentication, o)
			require.Nil(t, r)
			require.Zero(t, w.n, "nothing is wrapped")
		}
	}
}

// TestRewrapTamperedCommitment: a data key that fails the object's key
// commitment (V3 and the segmented format) is refused before it is
// wrapped: a rewrap never replaces an envelope with one whose key does not
// open the body.
func TestRewrapTamperedCommitment(t *testing.T) {
	k := rwKeyrings(t)
	for _, f := range []envelope.Format{envelope.FormatV3, envelope.FormatSegmented} {
		for _, instr := range []bool{false, true} {
			o := rwSeal(t, k.aesOld, f, instr)
			e := o.envelope(t)
			e.Commitment = bytes.Clone(e.Commitment)
			e.Commitment[0] ^= 1
			w := &countingWrapper{Wrapper: k.aesNew}
			r, err := envelope.Rewrap(context.Background(), e, k.aesOld, w, k.aesNew, o.options())
			require.ErrorIs(t, err, envelope.ErrAuthentication, o)
			require.Nil(t, r)
			require.Zero(t, w.n, "nothing is wrapped")
		}
	}
}

// TestRewrapObjectFieldsDiffer: an instruction file's format keeps fields
// on the object that a rewrap does not rewrite; when they are not what the
// envelope read holds, the rewrap is refused.
func TestRewrapObjectFieldsDiffer(t *testing.T) {
	k := rwKeyrings(t)
	for _, tc := range []struct {
		f     envelope.Format
		field string
		size  int
	}{{envelope.FormatV3, "X-Amz-I", envelope.MessageIDSize}, {envelope.FormatSegmented, "X-S3e-I", envelope.ObjectIDSize}} {
		o := rwSeal(t, k.aesOld, tc.f, true)
		e := o.envelope(t)
		opts := o.options()
		opts.Metadata = maps.Clone(o.meta)
		require.Contains(t, opts.Metadata, tc.field)
		opts.Metadata[tc.field] = base64.StdEncoding.EncodeToString(rwRandom(tc.size))
		r, err := envelope.Rewrap(context.Background(), e, k.aesOld, k.aesNew, k.aesNew, opts)
		require.ErrorIs(t, err, envelope.ErrMalformed, tc.f)
		require.Nil(t, r)
	}
}

// liarUnwrapper unwraps to a key of its own.
type liarUnwrapper struct{ err error }

func (l liarUnwrapper) Unwrap(context.Context, *envelope.WrappedKey, string) ([]byte, error) {
	if l.err != nil {
		return nil, l.err
	}
	return rwRandom(envelope.DataKeySize), nil
}

// TestRewrapCheck: a check master key that unwraps the new key to another
// data key fails with ErrAuthentication; one that fails passes its error
// on; one that can only wrap leaves the rewrap unverified; none at all too.
func TestRewrapCheck(t *testing.T) {
	k := rwKeyrings(t)
	o := rwSeal(t, k.aesOld, envelope.FormatV2, false)
	ctx := context.Background()
	r, err := envelope.Rewrap(ctx, o.envelope(t), k.aesOld, k.aesNew, liarUnwrapper{}, o.options())
	require.ErrorIs(t, err, envelope.ErrAuthentication)
	require.Nil(t, r)
	boom := errors.New("boom")
	r, err = envelope.Rewrap(ctx, o.envelope(t), k.aesOld, k.aesNew, liarUnwrapper{err: boom}, o.options())
	require.ErrorIs(t, err, boom)
	require.Nil(t, r)
	r, err = envelope.Rewrap(ctx, o.envelope(t), k.aesOld, k.aesNew, liarUnwrapper{err: envelope.ErrWrapOnly}, o.options())
	require.NoError(t, err)
	require.False(t, r.Verified)
	r.Close()
	r, err = envelope.Rewrap(ctx, o.envelope(t), k.aesOld, k.aesNew, nil, o.options())
	require.NoError(t, err)
	require.False(t, r.Verified)
	r.Close()
	var nilAES *keyring.AES
	_, err = envelope.Rewrap(ctx, o.envelope(t), nilAES, k.aesNew, k.aesNew, o.options())
	require.Error(t, err)
	_, err = envelope.Rewrap(ctx, o.envelope(t), k.aesOld, nilAES, k.aesNew, o.options())
	require.Error(t, err)
}

type ctxKey struct{}

// contextUnwrapper and contextWrapper record the context value they see.
type contextUnwrapper struct {
	envelope.Unwrapper
	saw *[]any
}

func (u contextUnwrapper) Unwrap(ctx context.Context, w *envelope.WrappedKey, alg string) ([]byte, error) {
	*u.saw = append(*u.saw, ctx.Value(ctxKey{}))
	return u.Unwrapper.Unwrap(ctx, w, alg)
}

type contextWrapper struct {
	envelope.Wrapper
	saw *[]any
}

func (w contextWrapper) Wrap(ctx context.Context, dataKey []byte, alg string) (*envelope.WrappedKey, error) {
	*w.saw = append(*w.saw, ctx.Value(ctxKey{}))
	return w.Wrapper.Wrap(ctx, dataKey, alg)
}

// TestRewrapContexts: the old key is unwrapped under UnwrapContext's
// context, and the new one wrapped and checked under WrapContext's, each
// given the old wrapped key.
func TestRewrapContexts(t *testing.T) {
	k := rwKeyrings(t)
	o := rwSeal(t, k.aesOld, envelope.FormatV3, false)
	e := o.envelope(t)
	var unwraps, wraps, checks []any
	opts := o.options()
	opts.UnwrapContext = func(ctx context.Context, old *envelope.WrappedKey) context.Context {
		require.Equal(t, e.Key, *old)
		return context.WithValue(ctx, ctxKey{}, "unwrap")
	}
	opts.WrapContext = func(ctx context.Context, old *envelope.WrappedKey) context.Context {
		require.Equal(t, e.Key, *old)
		return context.WithValue(ctx, ctxKey{}, "wrap")
	}
	r, err := envelope.Rewrap(context.Background(), e,
		contextUnwrapper{k.aesOld, &unwraps}, contextWrapper{k.aesNew, &wraps}, contextUnwrapper{k.aesNew, &checks}, opts)
	require.NoError(t, err)
	defer r.Close()
	require.Equal(t, []any{"unwrap"}, unwraps)
	require.Equal(t, []any{"wrap"}, wraps)
	require.Equal(t, []any{"wrap"}, checks)
}

// TestRewrapKeepsDataKey: the data key is nowhere in the result — no field,
// exported or not, holds it in any encoding — and after Close the result
// cannot check an envelope against it any more.
func TestRewrapKeepsDataKey(t *testing.T) {
	k := rwKeyrings(t)
	for _, f := range rwFormats {
		for _, instr := range []bool{false, true} {
			o := rwSeal(t, k.aesOld, f, instr)
			e := o.envelope(t)
			dataKey, err := k.aesOld.Unwrap(context.Background(), &e.Key, e.ContentAlgorithm)
			require.NoError(t, err)
			r, err := envelope.Rewrap(context.Background(), e, k.aesOld, k.aesNew, k.aesNew, o.options())
			require.NoError(t, err)
			rwNoKey(t, reflect.ValueOf(r), dataKey, o.String())
			require.NotContains(t, fmt.Sprintf("%#v %+v", *r, *r), hex.EncodeToString(dataKey))
			require.NoError(t, r.CheckDataKey(e))
			r.Close()
			r.Close()
			require.Error(t, r.CheckDataKey(e), "after Close")
		}
	}
}

// rwNoKey walks v (pointers, structs with unexported fields, slices, maps,
// strings; functions are opaque) and fails if any of it holds key, raw,
// base64 or hex.
func rwNoKey(t testing.TB, v reflect.Value, key []byte, path string) {
	t.Helper()
	encodings := []string{string(key), base64.StdEncoding.EncodeToString(key), hex.EncodeToString(key)}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			rwNoKey(t, v.Elem(), key, path)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			rwNoKey(t, v.Field(i), key, path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			for _, enc := range encodings {
				require.False(t, bytes.Contains(b, []byte(enc)), "%s holds the data key", path)
			}
			return
		}
		for i := range v.Len() {
			rwNoKey(t, v.Index(i), key, fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			rwNoKey(t, it.Key(), key, path+"{key}")
			rwNoKey(t, it.Value(), key, fmt.Sprintf("%s[%v]", path, it.Key()))
		}
	case reflect.String:
		for _, enc := range encodings {
			require.NotContains(t, v.String(), enc, "%s holds the data key", path)
		}
	}
}

// TestUnwrapsWith: the questions a rewrap asks of a master key, answered
// without the data key.
func TestUnwrapsWith(t *testing.T) {
	k := rwKeyrings(t)
	ctx := context.Background()
	o := rwSeal(t, k.aesOld, envelope.FormatV3, false)
	e := o.envelope(t)
	ok, err := e.UnwrapsWith(ctx, k.aesOld)
	require.True(t, ok)
	require.NoError(t, err)
	ok, err = e.UnwrapsWith(ctx, k.aesNew)
	require.False(t, ok)
	require.ErrorIs(t, err, envelope.ErrAuthentication)
	ok, err = e.UnwrapsWith(ctx, k.rsaNewPublic)
	require.False(t, ok)
	require.Error(t, err)
	e.Commitment[0] ^= 1
	ok, err = e.UnwrapsWith(ctx, k.aesOld)
	require.True(t, ok, "the key unwraps, but is not the body's")
	require.ErrorIs(t, err, envelope.ErrAuthentication)
	var nilAES *keyring.AES
	ok, err = e.UnwrapsWith(ctx, nilAES)
	require.False(t, ok)
	require.Error(t, err)
}

// rwCompanion returns a companion of n data keys wrapped by kr, and the
// data keys.
func rwCompanion(t testing.TB, kr envelope.Wrapper, n int) (*envelope.Companion, [][]byte) {
	t.Helper()
	c := &envelope.Companion{}
	var keys [][]byte
	for range n {
		dk, w, err := envelope.NewCustomerKey(context.Background(), kr)
		require.NoError(t, err)
		c.Keys = append(c.Keys, *w)
		keys = append(keys, dk)
	}
	return c, keys
}

// TestRewrapCompanion: every data key of an SSE-C companion moves to the
// new master key, in order, as parsed from the stored bytes.
func TestRewrapCompanion(t *testing.T) {
	k := rwKeyrings(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name           string
		old, wrap, use keyring.Keyring
		verified       bool
	}{
		{"aes-rsa", k.aesOld, k.rsaNew, k.rsaNew, true},
		{"rsa-aes", k.rsaOld, k.aesNew, k.aesNew, true},
		{"aes-rsapublic", k.aesOld, k.rsaNewPublic, k.rsaNew, false},
	} {
		for n := 1; n <= envelope.MaxCompanionKeys; n++ {
			comp, dataKeys := rwCompanion(t, tc.old, n)
			r, err := envelope.RewrapCompanion(ctx, comp, tc.old, tc.wrap, tc.wrap, envelope.RewrapOptions{})
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.verified, r.Verified, tc.name)
			require.Len(t, r.Companion.Keys, n)
			b, err := r.Companion.Marshal()
			require.NoError(t, err)
			parsed, err := envelope.ParseCompanion(b)
			require.NoError(t, err)
			require.Equal(t, r.Companion, parsed)
			for i := range n {
				require.Equal(t, tc.wrap.Description(), r.Companion.Keys[i].Description)
				got, err := envelope.OpenCustomerKey(ctx, tc.use, &r.Companion.Keys[i])
				require.NoError(t, err)
				require.Equal(t, dataKeys[i], got, "key %d", i)
			}
			rwNoKey(t, reflect.ValueOf(r), dataKeys[0], tc.name)
		}
	}

	// A key that does not unwrap: nothing returned, nothing wrapped.
	comp, _ := rwCompanion(t, k.aesOld, 2)
	w := &countingWrapper{Wrapper: k.aesNew}
	r, err := envelope.RewrapCompanion(ctx, comp, k.rsaOld, w, k.aesNew, envelope.RewrapOptions{})
	require.Error(t, err)
	require.Nil(t, r)
	require.Zero(t, w.n)
	// A check that unwraps to another key.
	r, err = envelope.RewrapCompanion(ctx, comp, k.aesOld, k.aesNew, liarUnwrapper{}, envelope.RewrapOptions{})
	require.ErrorIs(t, err, envelope.ErrAuthentication)
	require.Nil(t, r)
}

// TestStageCustomerKey: a fresh SSE-C data key, recorded ahead of the key
// kept, as parsed from the stored bytes.
func TestStageCustomerKey(t *testing.T) {
	k := rwKeyrings(t)
	ctx := context.Background()
	comp, _ := rwCompanion(t, k.aesOld, 1)
	for _, tc := range []struct {
		wrap, use keyring.Keyring
		verified  bool
	}{{k.aesNew, k.aesNew, true}, {k.rsaNew, k.rsaNew, true}, {k.rsaNewPublic, k.rsaNew, false}} {
		s, err := envelope.StageCustomerKey(ctx, tc.wrap, tc.wrap, &comp.Keys[0])
		require.NoError(t, err)
		require.Equal(t, tc.verified, s.Verified)
		require.Len(t, s.DataKey, envelope.DataKeySize)
		require.Len(t, s.Companion.Keys, 2)
		require.Equal(t, comp.Keys[0], s.Companion.Keys[1], "the key kept, second")
		got, err := envelope.OpenCustomerKey(ctx, tc.use, &s.Companion.Keys[0])
		require.NoError(t, err)
		require.Equal(t, s.DataKey, got)
	}
	s, err := envelope.StageCustomerKey(ctx, k.aesNew, liarUnwrapper{}, &comp.Keys[0])
	require.ErrorIs(t, err, envelope.ErrAuthentication)
	require.Nil(t, s)
}

// TestReplaceKey: a key rewrapped by a key service (KMS ReEncrypt, played
// here by unwrapping and wrapping outside) goes into the envelope as Rewrap
// puts its own, serialized and decoded back; with no data key at hand
// nothing is Verified, and CheckDataKey accepts exactly the new envelope.
func TestReplaceKey(t *testing.T) {
	ctx := context.Background()
	k := rwKeyrings(t)
	for _, f := range rwFormats {
		for _, instr := range []bool{false, true} {
			o := rwSeal(t, k.aesOld, f, instr)
			t.Run(o.String(), func(t *testing.T) {
				old := o.envelope(t)
				dk, err := k.aesOld.Unwrap(ctx, &old.Key, old.ContentAlgorithm)
				require.NoError(t, err)
				newKey, err := k.aesNew.Wrap(ctx, dk, old.ContentAlgorithm)
				require.NoError(t, err)
				oldCopy := *old
				r, err := envelope.ReplaceKey(old, newKey, o.options())
				require.NoError(t, err)
				require.Equal(t, oldCopy, *old)
				require.False(t, r.Verified)
				require.Equal(t, *newKey, r.Envelope.Key)
				rwEqualButKey(t, old, r.Envelope)
				if instr {
					require.Nil(t, r.Metadata)
					require.Equal(t, o.plain, o.open(t, k.aesNew, o.meta, r.Instruction))
				} else {
					require.Nil(t, r.Instruction)
					require.Equal(t, "blue", r.Metadata["Color"])
					require.Equal(t, o.plain, o.open(t, k.aesNew, r.Metadata, nil))
				}

				require.NoError(t, r.CheckDataKey(r.Envelope))
				require.ErrorIs(t, r.CheckDataKey(old), envelope.ErrAuthentication, "the old key")
				other := *r.Envelope
				other.Commitment = rwRandom(len(other.Commitment))
				other.IV = rwRandom(len(other.IV))
				require.ErrorIs(t, r.CheckDataKey(&other), envelope.ErrAuthentication)
				r.Close()
				require.Error(t, r.CheckDataKey(r.Envelope), "after Close")
			})
		}
	}

	// An instruction file's object fields that differ are refused, as by
	// Rewrap.
	o := rwSeal(t, k.aesOld, envelope.FormatV3, true)
	opts := o.options()
	opts.Metadata = maps.Clone(o.meta)
	opts.Metadata["X-Amz-I"] = base64.StdEncoding.EncodeToString(rwRandom(envelope.MessageIDSize))
	w, err := k.aesNew.Wrap(ctx, rwRandom(32), envelope.ContentAESGCMCommit)
	require.NoError(t, err)
	r, err := envelope.ReplaceKey(o.envelope(t), w, opts)
	require.ErrorIs(t, err, envelope.ErrMalformed)
	require.Nil(t, r)
}

// TestReplaceCompanionKeys: keys rewrapped by a key service replace a
// companion's, in order, as parsed from the stored bytes; nothing is
// Verified, and a count that does not match is refused.
func TestReplaceCompanionKeys(t *testing.T) {
	ctx := context.Background()
	k := rwKeyrings(t)
	c, dks := rwCompanion(t, k.aesOld, 2)
	var keys []envelope.WrappedKey
	for i := range c.Keys {
		w, err := k.aesNew.Wrap(ctx, dks[i], envelope.ContentSSEC)
		require.NoError(t, err)
		keys = append(keys, *w)
	}
	r, err := envelope.ReplaceCompanionKeys(c, keys)
	require.NoError(t, err)
	require.False(t, r.Verified)
	require.Equal(t, keys, r.Companion.Keys)
	for i := range keys {
		got, err := envelope.OpenCustomerKey(ctx, k.aesNew, &r.Companion.Keys[i])
		require.NoError(t, err)
		require.Equal(t, dks[i], got)
	}
	_, err = envelope.ReplaceCompanionKeys(c, keys[:1])
	require.ErrorIs(t, err, envelope.ErrMalformed)
}
