package v2v3_test

// Each vector in vectors/ is checked twice: by the library (envelope.Decode,
// envelope.Open with keyring.NewAES, and the Plaintext read to its end),
// and by specOpen below, a decoder written from the format's description
// (s3ec-format.md) with the standard library alone. Both must reach the
// recorded outcome at the recorded stage and release exactly the recorded
// plaintext. A third test regenerates the vectors in process and requires
// the same bytes.
//
// Only envelope.Decode, envelope.Open, envelope.Config, Plaintext's Read,
// WriteTo and Close, and the sentinel errors are used: the format's names
// and sizes are the specification's literals, never envelope's constants.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/testvectors/v2v3"
)

var sentinels = map[string]error{
	v2v3.ErrAuthentication: envelope.ErrAuthentication,
	v2v3.ErrMalformed:      envelope.ErrMalformed,
	v2v3.ErrUnsupported:    envelope.ErrUnsupported,
	v2v3.ErrDisallowed:     envelope.ErrDisallowed,
	v2v3.ErrPolicy:         envelope.ErrPolicy,
	v2v3.ErrTooLarge:       envelope.ErrTooLarge,
	v2v3.ErrNoEnvelope:     envelope.ErrNoEnvelope,
}

// required are the cases the vectors were written to cover.
var required = []string{
	"v2_ok", "v2_ok_no_length", "v2_ok_empty", "v2_ok_instruction", "v2_metadata_wins_over_instruction",
	"v2_tag_flipped", "v2_body_truncated", "v2_body_extended", "v2_body_empty",
	"v2_iv_short", "v2_iv_altered", "v2_wrapped_key_altered", "v2_wrapped_key_bound_to_v3",
	"v2_wrap_alg_unknown", "v2_wrap_alg_legacy", "v2_cek_alg_ctr", "v2_cek_alg_cbc", "v2_tag_len_96",
	"v2_missing_iv", "v2_with_v3_field", "v2_matdesc_not_json", "v2_key_not_base64",
	"v2_length_short", "v2_length_long", "v2_length_too_large", "v2_policy_require_decrypt",
	"v2_instruction_on_v3_object",
	"v3_ok", "v3_ok_empty", "v3_ok_instruction", "v3_tag_flipped", "v3_body_truncated", "v3_body_extended",
	"v3_commitment_altered", "v3_message_id_altered", "v3_message_id_short", "v3_message_id_not_base64",
	"v3_commitment_not_base64", "v3_wrapped_key_altered", "v3_wrapped_key_bound_to_v2", "v3_wrap_v2_name",
	"v3_suite_unknown", "v3_missing_commitment", "v3_with_v2_field", "v3_matdesc_not_json",
	"v3_instruction_holds_commitment", "v3_instruction_object_has_v2_field", "v3_instruction_missing",
	"instruction_not_json", "instruction_empty", "instruction_too_large", "no_envelope",
}

type vector struct {
	v2v3.Vector
	body        []byte
	instruction []byte // nil: no instruction file
}

func load(t *testing.T) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(v2v3.Dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s/*.json: %v", v2v3.Dir, err)
	}
	slices.Sort(files)
	var out []vector
	names := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v vector
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&v.Vector); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if v.Name+".json" != filepath.Base(f) {
			t.Fatalf("%s holds vector %q", f, v.Name)
		}
		if v.body, err = os.ReadFile(filepath.Join(v2v3.Dir, v.Body)); err != nil {
			t.Fatal(err)
		}
		if int64(len(v.body)) != v.BodyLength || hexSum(v.body) != v.BodySHA256 {
			t.Fatalf("%s: body does not match its length or SHA-256", v.Name)
		}
		if v.Instruction != "" {
			if v.instruction, err = os.ReadFile(filepath.Join(v2v3.Dir, v.Instruction)); err != nil {
				t.Fatal(err)
			}
			if v.InstructionLength == nil || int64(len(v.instruction)) != *v.InstructionLength || hexSum(v.instruction) != v.InstructionSHA256 {
				t.Fatalf("%s: instruction file does not match its length or SHA-256", v.Name)
			}
			if v.instruction == nil {
				v.instruction = []byte{} // an empty file, not none
			}
		}
		if v.Expect != v2v3.OK && v.ReleasedLength != 0 {
			t.Fatalf("%s: a V2 or V3 failure releases nothing, but %d bytes are recorded", v.Name, v.ReleasedLength)
		}
		names[v.Name] = true
		out = append(out, v)
	}
	for _, n := range required {
		if !names[n] {
			t.Errorf("vector %s is missing", n)
		}
	}
	return out
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (v *vector) masterKey(t *testing.T) []byte {
	t.Helper()
	key, err := hex.DecodeString(v.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func (v *vector) config(t *testing.T) envelope.Config {
	t.Helper()
	switch v.CommitmentPolicy {
	case v2v3.RequireEncryptRequireDecrypt:
		return envelope.Config{CommitmentPolicy: envelope.RequireEncryptRequireDecrypt}
	case v2v3.RequireEncryptAllowDecrypt:
		return envelope.Config{CommitmentPolicy: envelope.RequireEncryptAllowDecrypt}
	}
	t.Fatalf("unknown commitment policy %q", v.CommitmentPolicy)
	return envelope.Config{}
}

// checkOutcome compares an error with an expected outcome.
func checkOutcome(t *testing.T, what string, err error, expect string) {
	t.Helper()
	if expect == v2v3.OK {
		if err != nil {
			t.Errorf("%s: unexpected error %v", what, err)
		}
		return
	}
	want, ok := sentinels[expect]
	if !ok {
		t.Errorf("%s: unknown expected outcome %q", what, expect)
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %s", what, err, expect)
	}
}

// counter hashes and counts what it is given.
type counter struct {
	h hash.Hash
	n int64
}

func newCounter() *counter { return &counter{h: sha256.New()} }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *counter) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

func checkReleased(t *testing.T, what string, c *counter, n int64, sum string) {
	t.Helper()
	if c.n != n || c.sum() != sum {
		t.Errorf("%s: released %d bytes (SHA-256 %s), want %d (%s)", what, c.n, c.sum(), n, sum)
	}
}

// drain reads r with small Reads, hashing every byte released, including
// those returned beside an error.
func drain(r io.Reader) (*counter, error) {
	c := newCounter()
	buf := make([]byte, 100)
	for {
		n, err := r.Read(buf)
		c.Write(buf[:n])
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
	}
}

// copyOut reads r with io.Copy, so through Plaintext.WriteTo.
func copyOut(r io.Reader) (*counter, error) {
	c := newCounter()
	_, err := io.Copy(c, r)
	return c, err
}

// source is the body as a reader that counts the calls to Read and the
// bytes it hands out.
type source struct {
	r     *bytes.Reader
	calls int
	n     int64
}

func (s *source) Read(p []byte) (int, error) {
	s.calls++
	n, err := s.r.Read(p)
	s.n += int64(n)
	return n, err
}

// TestLibrary opens every vector with the library: Decode, Open with the
// vector's commitment policy and keyring.NewAES, and the whole plaintext
// read both with small Reads and with io.Copy (WriteTo).
func TestLibrary(t *testing.T) {
	for _, v := range load(t) {
		t.Run(v.Name, func(t *testing.T) {
			ctx := context.Background()
			kr, err := keyring.NewAES(v.masterKey(t), v.MasterKeyDescription)
			if err != nil {
				t.Fatal(err)
			}
			env, err := envelope.Decode(v.Metadata, v.instruction)
			if v.FailsAt == v2v3.StageDecode {
				checkOutcome(t, "Decode", err, v.Expect)
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			for _, mode := range []struct {
				name string
				read func(io.Reader) (*counter, error)
			}{{"Read", drain}, {"WriteTo", copyOut}} {
				src := &source{r: bytes.NewReader(v.body)}
				p, err := envelope.Open(ctx, env, kr, v.config(t), src)
				switch {
				case v.FailsAt == v2v3.StageOpen:
					checkOutcome(t, "Open", err, v.Expect)
					if err == nil {
						p.Close()
					}
					if src.calls != 0 {
						t.Errorf("Open read the body (%d bytes) before failing; a failure at open reads none of it", src.n)
					}
					continue
				case v.FailsAt == v2v3.StageRead && err != nil:
					// The library verifies the whole body inside Open, so
					// it finds a fault of the body there, having read it.
					checkOutcome(t, "Open", err, v.Expect)
					if src.calls == 0 {
						t.Error("Open failed without reading the body, but the failure needs the body")
					}
					if p != nil {
						t.Error("Open returned a Plaintext with its error")
					}
					continue
				case err != nil:
					t.Fatalf("Open: %v", err)
				}
				if v.Expect == v2v3.OK {
					if size, err := env.PlaintextSize(int64(len(v.body))); err != nil || size != *v.PlaintextLength {
						t.Errorf("PlaintextSize = %d, %v; want %d", size, err, *v.PlaintextLength)
					}
				}
				c, err := mode.read(p)
				p.Close()
				checkOutcome(t, mode.name, err, v.Expect)
				checkReleased(t, mode.name, c, v.ReleasedLength, v.ReleasedSHA256)
				if v.Expect == v2v3.OK {
					checkReleased(t, mode.name+" (plaintext)", c, *v.PlaintextLength, v.PlaintextSHA256)
				}
			}
		})
	}
}

// TestSpec checks every vector with specOpen, a decoder written from the
// specification with the standard library alone: the outcome, its stage
// and the plaintext released.
func TestSpec(t *testing.T) {
	for _, v := range load(t) {
		t.Run(v.Name, func(t *testing.T) {
			released, outcome, stage := specOpen(v.Metadata, v.instruction, v.masterKey(t), v.CommitmentPolicy, v.body)
			if outcome != v.Expect || (outcome != v2v3.OK && stage != v.FailsAt) {
				t.Errorf("spec decoder: %s at %s, want %s at %s", outcome, stage, v.Expect, v.FailsAt)
			}
			c := newCounter()
			c.Write(released)
			checkReleased(t, "spec decoder", c, v.ReleasedLength, v.ReleasedSHA256)
			if v.Expect == v2v3.OK {
				checkReleased(t, "spec decoder (plaintext)", c, *v.PlaintextLength, v.PlaintextSHA256)
			}
		})
	}
}

// TestReproducible regenerates the vectors in process: the files must be
// byte for byte those in vectors/, and vectors/ must hold nothing else.
func TestReproducible(t *testing.T) {
	files, err := v2v3.Generate()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	total := 0
	for _, f := range files {
		total += len(f.Data)
		want[filepath.FromSlash(f.Path)] = true
		got, err := os.ReadFile(filepath.FromSlash(f.Path))
		if err != nil {
			t.Errorf("%s: %v (run: cd testvectors && go run ./v2v3/cmd/genv2v3)", f.Path, err)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs from what the generator writes (run: cd testvectors && go run ./v2v3/cmd/genv2v3)", f.Path)
		}
	}
	all, err := filepath.Glob(filepath.Join(v2v3.Dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if !want[p] {
			t.Errorf("%s is not generated", p)
		}
	}
	again, err := v2v3.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(files) {
		t.Fatal("a second run makes another number of files")
	}
	for i := range files {
		if again[i].Path != files[i].Path || !bytes.Equal(again[i].Data, files[i].Data) {
			t.Fatalf("a second run differs at %s", files[i].Path)
		}
	}
	if total >= 1<<20 {
		t.Errorf("the vectors take %d bytes; keep them under 1 MiB", total)
	}
}

// TestWrapLayout checks that keyring.AES.Wrap makes what the generator's
// wrap makes, but for the random IV: IV(12) || AES-GCM(master key, data
// key, AAD = content algorithm) || tag, 60 bytes, named AES/GCM. (That
// keyring.AES unwraps the generator's wraps, every OK vector shows.)
func TestWrapLayout(t *testing.T) {
	masterKey := []byte(strings.Repeat("m", 32))
	kr, err := keyring.NewAES(masterKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	dataKey := []byte(strings.Repeat("d", 32))
	for _, alg := range []string{contentV2, contentV3} {
		w, err := kr.Wrap(context.Background(), dataKey, alg)
		if err != nil {
			t.Fatal(err)
		}
		c := w.Ciphertext
		if len(c) != 60 || w.Algorithm != "AES/GCM" {
			t.Fatalf("%s: keyring.AES.Wrap made %d bytes of %s, want 60 of AES/GCM", alg, len(c), w.Algorithm)
		}
		if k, err := gcm(masterKey).Open(nil, c[:12], c[12:], []byte(alg)); err != nil || !bytes.Equal(k, dataKey) {
			t.Fatalf("%s: keyring.AES.Wrap's output is not IV || GCM(data key, AAD %s) || tag: %v", alg, alg, err)
		}
	}
}

// ---- A decoder from s3ec-format.md, standard library only. ----
//
// It reads V2 and V3 objects whose data key is wrapped with AES/GCM under
// an AES master key, with legacy wrapping algorithms and legacy
// unauthenticated content never enabled. The failure classes are those of
// the envelope sentinels: a field missing, badly encoded, of the wrong
// size, or of another format is malformed; an algorithm outside the format
// is unsupported; a legacy algorithm is disallowed; a V2 object under
// REQUIRE_ENCRYPT_REQUIRE_DECRYPT is refused by the policy; anything that
// fails to authenticate (the wrap, the commitment, the tag) is an
// authentication failure.

const (
	keyV1      = "x-amz-key"
	keyV2      = "x-amz-key-v2"
	keyIV      = "x-amz-iv"
	keyMatDesc = "x-amz-matdesc"
	keyCEKAlg  = "x-amz-cek-alg"
	keyWrapAlg = "x-amz-wrap-alg"
	keyTagLen  = "x-amz-tag-len"
	keyLength  = "x-amz-unencrypted-content-length"
	keyV3C     = "x-amz-c"
	keyV3Key   = "x-amz-3"
	keyV3W     = "x-amz-w"
	keyV3M     = "x-amz-m"
	keyV3T     = "x-amz-t"
	keyV3D     = "x-amz-d"
	keyV3I     = "x-amz-i"

	maxInstruction = 64 << 10   // an instruction file's bound
	maxGCM         = 1<<36 - 32 // plaintext bytes one AES-GCM message holds
	tagSize        = 16         // the GCM tag ending a body
	contentV2      = "AES/GCM/NoPadding"
	contentCBC     = "AES/CBC/PKCS5Padding"
	contentV3      = "115"
)

// The fields of each format (x-amz-unencrypted-content-length is shared),
// and the wrapped key that marks each. This library's own segmented format
// (x-s3e-*) counts as another format.
var (
	v12Fields = []string{keyV1, keyV2, keyIV, keyMatDesc, keyCEKAlg, keyWrapAlg, keyTagLen}
	v3Fields  = []string{keyV3C, keyV3Key, keyV3W, keyV3M, keyV3T, keyV3D, keyV3I}
	segFields = []string{"x-s3e-v", "x-s3e-s", "x-s3e-k", "x-s3e-w", "x-s3e-m", "x-s3e-i", "x-s3e-d"}
	wrapped   = []string{keyV1, keyV2, keyV3Key, "x-s3e-k"}
)

func isEnvelopeField(k string) bool {
	return k == keyLength || slices.Contains(v12Fields, k) || slices.Contains(v3Fields, k) || slices.Contains(segFields, k)
}

func has(m map[string]string, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

func lowered(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// specEnvelope is a decoded V2 or V3 envelope.
type specEnvelope struct {
	v3         bool
	contentAlg string // x-amz-cek-alg, or "115"
	wrapAlg    string // x-amz-wrap-alg; V3's code translated
	wrapped    []byte
	iv         []byte // V2
	messageID  []byte // V3
	commitment []byte // V3
	length     int64  // -1: not stored
}

// specDecode finds the envelope ("Instruction files": in the metadata when
// it holds a wrapped key, else in the instruction file, with V3's x-amz-c,
// x-amz-d and x-amz-i from the metadata) and decodes it ("Format V2",
// "Format V3").
func specDecode(meta map[string]string, instruction []byte) (*specEnvelope, string) {
	m := lowered(meta)
	if !has(m, wrapped...) {
		if instruction == nil {
			for k := range m {
				if isEnvelopeField(k) {
					return nil, v2v3.ErrMalformed // an envelope whose file is gone
				}
			}
			return nil, v2v3.ErrNoEnvelope
		}
		if len(instruction) > maxInstruction {
			return nil, v2v3.ErrTooLarge
		}
		file, ok := parseInstruction(instruction)
		if !ok || !has(file, wrapped...) {
			return nil, v2v3.ErrMalformed
		}
		own := v12Fields
		if has(file, keyV3Key, keyV3W) {
			own = v3Fields
		} else if has(file, "x-s3e-k", "x-s3e-w") {
			own = segFields
		}
		for k := range m {
			if isEnvelopeField(k) && k != keyLength && !slices.Contains(own, k) {
				return nil, v2v3.ErrMalformed // the object's metadata is of another format
			}
		}
		if has(file, keyV3Key, keyV3W) {
			for _, k := range []string{keyV3C, keyV3D, keyV3I} {
				if _, ok := file[k]; ok {
					return nil, v2v3.ErrMalformed // V3 keeps these on the object
				}
				if v, ok := m[k]; ok {
					file[k] = v
				}
			}
		}
		m = file
	}
	n := 0
	for _, k := range wrapped {
		if has(m, k) {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, v2v3.ErrMalformed
	case has(m, keyV2):
		return specDecodeV2(m)
	case has(m, keyV3Key):
		return specDecodeV3(m)
	}
	// V1 (legacy, read only behind a switch) and the segmented format are
	// not this decoder's; no vector holds them.
	return nil, v2v3.ErrUnsupported
}

// parseInstruction parses one flat JSON object of strings (numbers allowed
// for the two numeric V2 fields), keys lower-cased.
func parseInstruction(b []byte) (map[string]string, bool) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return nil, false
	}
	out := map[string]string{}
	for k, v := range raw {
		k = strings.ToLower(k)
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			var n json.Number
			if (k != keyTagLen && k != keyLength) || json.Unmarshal(v, &n) != nil {
				return nil, false
			}
			s = n.String()
		}
		out[k] = s
	}
	return out, true
}

// b64 decodes a required standard-base64 field of n bytes (n = 0: any
// non-empty length).
func b64(m map[string]string, k string, n int) ([]byte, bool) {
	s, ok := m[k]
	if !ok {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || (n > 0 && len(b) != n) {
		return nil, false
	}
	return b, true
}

// jsonObject reports whether an optional description field is absent,
// empty, or a JSON object of strings.
func jsonObject(m map[string]string, k string) bool {
	s, ok := m[k]
	if !ok || s == "" {
		return true
	}
	var d map[string]string
	return json.Unmarshal([]byte(s), &d) == nil && d != nil
}

// length reads the optional x-amz-unencrypted-content-length.
func length(m map[string]string) (int64, string) {
	s := m[keyLength]
	if s == "" {
		return -1, v2v3.OK
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil || n < 0:
		return 0, v2v3.ErrMalformed
	case n > maxGCM:
		return 0, v2v3.ErrTooLarge
	}
	return n, v2v3.OK
}

func specDecodeV2(m map[string]string) (*specEnvelope, string) {
	if has(m, v3Fields...) || has(m, segFields...) {
		return nil, v2v3.ErrMalformed
	}
	e := &specEnvelope{contentAlg: m[keyCEKAlg], wrapAlg: m[keyWrapAlg]}
	var ok bool
	if e.wrapped, ok = b64(m, keyV2, 0); !ok {
		return nil, v2v3.ErrMalformed
	}
	if e.iv, ok = b64(m, keyIV, 0); !ok {
		return nil, v2v3.ErrMalformed
	}
	if e.contentAlg == "" || e.wrapAlg == "" || !jsonObject(m, keyMatDesc) {
		return nil, v2v3.ErrMalformed
	}
	switch e.wrapAlg {
	case "kms+context", "AES/GCM", "RSA-OAEP-SHA1", "kms", "AESWrap", "RSA/ECB/OAEPWithSHA-256AndMGF1Padding":
	default:
		return nil, v2v3.ErrUnsupported
	}
	switch e.contentAlg {
	case contentV2:
		if m[keyTagLen] != "128" || len(e.iv) != 12 {
			return nil, v2v3.ErrMalformed
		}
	case contentCBC:
		if len(e.iv) != 16 {
			return nil, v2v3.ErrMalformed
		}
	default:
		return nil, v2v3.ErrUnsupported
	}
	var outcome string
	if e.length, outcome = length(m); outcome != v2v3.OK {
		return nil, outcome
	}
	return e, v2v3.OK
}

func specDecodeV3(m map[string]string) (*specEnvelope, string) {
	if has(m, v12Fields...) || has(m, segFields...) {
		return nil, v2v3.ErrMalformed
	}
	e := &specEnvelope{v3: true, contentAlg: contentV3}
	switch c, ok := m[keyV3C]; {
	case !ok:
		return nil, v2v3.ErrMalformed
	case c != contentV3:
		return nil, v2v3.ErrUnsupported
	}
	desc := keyV3M
	switch w, ok := m[keyV3W]; {
	case !ok:
		return nil, v2v3.ErrMalformed
	case w == "02":
		e.wrapAlg = "AES/GCM"
	case w == "12":
		e.wrapAlg, desc = "kms+context", keyV3T
	case w == "22":
		e.wrapAlg = "RSA-OAEP-SHA1"
	default:
		return nil, v2v3.ErrUnsupported
	}
	var ok1, ok2, ok3 bool
	e.wrapped, ok1 = b64(m, keyV3Key, 0)
	e.messageID, ok2 = b64(m, keyV3I, 28)
	e.commitment, ok3 = b64(m, keyV3D, 28)
	if !ok1 || !ok2 || !ok3 || !jsonObject(m, desc) {
		return nil, v2v3.ErrMalformed
	}
	var outcome string
	if e.length, outcome = length(m); outcome != v2v3.OK {
		return nil, outcome
	}
	return e, v2v3.OK
}

func gcm(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

// specOpen decodes the envelope, checks what the options allow, unwraps the
// data key (AES/GCM: IV(12) || GCM(master key, AAD = content algorithm)),
// for V3 checks the commitment in constant time before deriving the
// content key, then opens the whole body, and only then releases its
// plaintext.
func specOpen(meta map[string]string, instruction, masterKey []byte, policy string, body []byte) (released []byte, outcome, stage string) {
	e, outcome := specDecode(meta, instruction)
	if outcome != v2v3.OK {
		return nil, outcome, v2v3.StageDecode
	}
	fail := func(o string) ([]byte, string, string) { return nil, o, v2v3.StageOpen }
	switch {
	case e.contentAlg == contentCBC:
		return fail(v2v3.ErrDisallowed) // unauthenticated (CVE-2020-8911)
	case e.wrapAlg == "kms" || e.wrapAlg == "AESWrap" || e.wrapAlg == "RSA/ECB/OAEPWithSHA-256AndMGF1Padding":
		return fail(v2v3.ErrDisallowed) // binds no content algorithm
	case !e.v3 && policy == v2v3.RequireEncryptRequireDecrypt:
		return fail(v2v3.ErrPolicy)
	case e.wrapAlg != "AES/GCM":
		return fail(v2v3.ErrUnsupported) // an RSA or KMS wrap: not an AES master key's
	}
	if n := len(e.wrapped) - 12 - 16; n != 16 && n != 24 && n != 32 {
		return fail(v2v3.ErrAuthentication)
	}
	dataKey, err := gcm(masterKey).Open(nil, e.wrapped[:12], e.wrapped[12:], []byte(e.contentAlg))
	if err != nil {
		return fail(v2v3.ErrAuthentication)
	}
	key, nonce, aad := dataKey, e.iv, []byte(nil)
	if e.v3 {
		if len(dataKey) != 32 {
			return fail(v2v3.ErrAuthentication)
		}
		prk, err := hkdf.Extract(sha512.New, dataKey, e.messageID)
		if err != nil {
			panic(err)
		}
		commitment, _ := hkdf.Expand(sha512.New, prk, "\x00\x73COMMITKEY", 28)
		if subtle.ConstantTimeCompare(commitment, e.commitment) != 1 {
			return fail(v2v3.ErrAuthentication)
		}
		key, _ = hkdf.Expand(sha512.New, prk, "\x00\x73DERIVEKEY", 32)
		nonce, aad = bytes.Repeat([]byte{0x01}, 12), []byte{0x00, 0x73}
	}
	if len(body) < tagSize {
		return nil, v2v3.ErrAuthentication, v2v3.StageRead
	}
	p, err := gcm(key).Open(nil, nonce, body, aad)
	if err != nil {
		return nil, v2v3.ErrAuthentication, v2v3.StageRead
	}
	if e.length >= 0 && e.length != int64(len(p)) {
		return nil, v2v3.ErrMalformed, v2v3.StageRead
	}
	return p, v2v3.OK, ""
}
