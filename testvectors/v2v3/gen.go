// Package v2v3 builds named known-answer and negative test vectors for AWS's
// S3 Encryption Client formats V2 (AES/GCM/NoPadding content) and V3
// (algorithm suite 115, key-committing), with an AES/GCM-wrapped data key:
// each vector is a JSON header (vectors/<name>.json), the object's stored
// body (vectors/<name>.body) and, when the envelope is in an instruction
// file, that file (vectors/<name>.instruction).
//
// The vectors are built from the format's description
// (s3ec-format.md: V2 and V3 metadata, the V3 HKDF-SHA-512 key schedule,
// the AES/GCM key wrap) with the standard library alone, never with the
// library's sealer or its envelope codec, so that v2v3_test.go checks the
// library against the format and not against itself. Field names,
// algorithm names and sizes are written here as the format's literals.
// Everything is deterministic (fixed master key and data key, IVs,
// message IDs and plaintexts derived from each vector's name), so Generate
// always returns the same bytes. cmd/genv2v3 writes them:
//
//	cd testvectors && go run ./v2v3/cmd/genv2v3
package v2v3

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Dir is where the vectors live, relative to this package.
const Dir = "vectors"

// Outcomes: "ok", or the name of the envelope sentinel error expected.
const (
	OK                = "ok"
	ErrAuthentication = "ErrAuthentication"
	ErrMalformed      = "ErrMalformed"
	ErrUnsupported    = "ErrUnsupported"
	ErrDisallowed     = "ErrDisallowed"
	ErrPolicy         = "ErrPolicy"
	ErrTooLarge       = "ErrTooLarge"
	ErrNoEnvelope     = "ErrNoEnvelope"
)

// Stages at which a failure is expected.
const (
	// StageDecode: reading the envelope from the metadata and the
	// instruction file (envelope.Decode), before any key is used.
	StageDecode = "decode"
	// StageOpen: what the options allow, the key unwrap and (V3) the key
	// commitment, before any byte of the body is read.
	StageOpen = "open"
	// StageRead: the failure needs the body (its tag, its length). Nothing
	// is released: V2 and V3 bodies are one GCM message whose tag comes
	// last, so no plaintext may be released before it verifies. The
	// library reads and verifies the whole body inside envelope.Open and
	// reports the failure there, with no Plaintext; a reader that returns
	// a reader first reports it while it is read.
	StageRead = "read"
)

// Commitment policies a vector is read under, named as AWS's v4 clients
// name them. Legacy wrapping algorithms and legacy unauthenticated content
// are never enabled.
const (
	RequireEncryptRequireDecrypt = "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"
	RequireEncryptAllowDecrypt   = "REQUIRE_ENCRYPT_ALLOW_DECRYPT"
)

// Vector is one vector's JSON header.
type Vector struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// MasterKey (hex) and MasterKeyDescription make the keyring.NewAES that
	// unwraps the data key.
	MasterKey            string            `json:"masterKey"`
	MasterKeyDescription map[string]string `json:"masterKeyDescription"`
	// CommitmentPolicy is the policy the object is read under.
	CommitmentPolicy string `json:"commitmentPolicy"`
	// Metadata is the object's user metadata (without x-amz-meta-).
	Metadata map[string]string `json:"metadata"`
	// Instruction names the file beside this one that holds the object's
	// instruction file (<object key>.instruction), if it has one; an
	// instruction file may be empty, which is not the same as none.
	Instruction       string `json:"instruction,omitempty"`
	InstructionLength *int64 `json:"instructionLength,omitempty"`
	InstructionSHA256 string `json:"instructionSHA256,omitempty"`
	// Body names the file beside this one that holds the stored body.
	Body       string `json:"body"`
	BodyLength int64  `json:"bodyLength"`
	BodySHA256 string `json:"bodySHA256"`
	// Expect is the outcome of decoding the envelope, opening the object
	// and reading the whole plaintext: OK or a sentinel error name.
	Expect string `json:"expect"`
	// FailsAt is the stage at which Expect's error occurs (not for OK).
	FailsAt string `json:"failsAt,omitempty"`
	// Released is all the plaintext a read yields: nothing for a failure,
	// the whole plaintext for OK.
	ReleasedLength int64  `json:"releasedLength"`
	ReleasedSHA256 string `json:"releasedSHA256"`
	// PlaintextLength and PlaintextSHA256 are the object's plaintext, for
	// OK vectors.
	PlaintextLength *int64 `json:"plaintextLength,omitempty"`
	PlaintextSHA256 string `json:"plaintextSHA256,omitempty"`
}

// File is one generated file: its path relative to the package and its
// bytes.
type File struct {
	Path string
	Data []byte
}

// The format's names and sizes, as the specification writes them.
const (
	contentV2  = "AES/GCM/NoPadding" // x-amz-cek-alg; the V2 wrap's AAD
	contentV3  = "115"               // x-amz-c (suite 0x0073); the V3 wrap's AAD
	wrapAESGCM = "AES/GCM"           // x-amz-wrap-alg
	wrapV3AES  = "02"                // x-amz-w for AES/GCM
	ivSize     = 12                  // V2 x-amz-iv
	idSize     = 28                  // V3 x-amz-i
	commitSize = 28                  // V3 x-amz-d
)

// The V3 key schedule's inputs: HKDF-SHA-512 infos, the fixed GCM nonce
// and the AAD, all from the algorithm suite ID 0x0073.
var (
	suiteID    = []byte{0x00, 0x73}
	commitInfo = "\x00\x73COMMITKEY"
	deriveInfo = "\x00\x73DERIVEKEY"
	v3Nonce    = bytes.Repeat([]byte{0x01}, 12)
)

// Fixed inputs: the master key (ASCII "s3envelope V2/V3 vectors master!"),
// its description, and the one data key of every vector's object.
var (
	MasterKey            = []byte("s3envelope V2/V3 vectors master!")
	MasterKeyDescription = map[string]string{"kid": "v2v3-vectors"}
	dataKey              = mustHex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef")
)

// usual is the plaintext length of most vectors' objects: not a multiple
// of the AES block.
const usual = 1000

// large is past the library's 256 KiB read piece, so that a body longer
// than its stored plaintext length is refused before its tag is reached.
const large = 256<<10 + 100

// Generate returns every vector file, in a fixed order.
func Generate() ([]File, error) {
	if err := checkKeySchedule(); err != nil {
		return nil, err
	}
	var files []File
	names := map[string]bool{}
	for _, v := range vectors() {
		if names[v.Name] {
			return nil, fmt.Errorf("vector %s made twice", v.Name)
		}
		names[v.Name] = true
		h := v.Vector
		h.MasterKey = hex.EncodeToString(MasterKey)
		h.MasterKeyDescription = MasterKeyDescription
		if h.CommitmentPolicy == "" {
			return nil, fmt.Errorf("vector %s has no commitment policy", v.Name)
		}
		h.Body = h.Name + ".body"
		h.BodyLength = int64(len(v.body))
		h.BodySHA256 = sum(v.body)
		if v.instruction != nil {
			n := int64(len(v.instruction))
			h.Instruction = h.Name + ".instruction"
			h.InstructionLength = &n
			h.InstructionSHA256 = sum(v.instruction)
		}
		js, err := json.MarshalIndent(h, "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files,
			File{Dir + "/" + h.Name + ".json", append(js, '\n')},
			File{Dir + "/" + h.Name + ".body", v.body})
		if v.instruction != nil {
			files = append(files, File{Dir + "/" + h.Instruction, v.instruction})
		}
	}
	return files, nil
}

// object is one V2 or V3 object built from the specification.
type object struct {
	v3        bool
	iv        []byte // V2: x-amz-iv
	messageID []byte // V3: x-amz-i
	plaintext []byte
}

// v2 is a vector's V2 object: the data key, an IV of its own and n bytes
// of plaintext.
func v2(name string, n int) *object {
	return &object{iv: derive("IV", name, ivSize), plaintext: plaintext(name, n)}
}

// v3 is a vector's V3 object: the data key, a message ID of its own (so
// no two vectors share a content key under V3's fixed nonce) and n bytes
// of plaintext.
func v3(name string, n int) *object {
	return &object{v3: true, messageID: derive("message ID", name, idSize), plaintext: plaintext(name, n)}
}

// v3Keys is the V3 key schedule: PRK = HKDF-Extract(salt = message ID,
// IKM = data key); commitment and content key are HKDF-Expand of it.
func v3Keys(dataKey, messageID []byte) (commitment, contentKey []byte) {
	prk, err := hkdf.Extract(sha512.New, dataKey, messageID)
	check(err)
	commitment, err = hkdf.Expand(sha512.New, prk, commitInfo, commitSize)
	check(err)
	contentKey, err = hkdf.Expand(sha512.New, prk, deriveInfo, 32)
	check(err)
	return commitment, contentKey
}

// body is the stored body: AES-256-GCM ciphertext followed by the 16-byte
// tag. V2: the data key, x-amz-iv, no AAD. V3: the derived content key,
// twelve 0x01 bytes, AAD 0x00 0x73.
func (o *object) body() []byte {
	key, nonce, aad := dataKey, o.iv, []byte(nil)
	if o.v3 {
		_, key = v3Keys(dataKey, o.messageID)
		nonce, aad = v3Nonce, suiteID
	}
	block, err := aes.NewCipher(key)
	check(err)
	g, err := cipher.NewGCM(block)
	check(err)
	return g.Seal(nil, nonce, o.plaintext, aad)
}

// metadata is the object's whole envelope, as stored in its metadata: V2
// as AWS's Go clients write it (with x-amz-unencrypted-content-length),
// V3 with the material description in x-amz-m.
func (o *object) metadata() map[string]string {
	enc := base64.StdEncoding.EncodeToString
	if o.v3 {
		commitment, _ := v3Keys(dataKey, o.messageID)
		return map[string]string{
			"x-amz-c": contentV3,
			"x-amz-3": enc(wrap(dataKey, contentV3)),
			"x-amz-w": wrapV3AES,
			"x-amz-m": description(),
			"x-amz-d": enc(commitment),
			"x-amz-i": enc(o.messageID),
		}
	}
	return map[string]string{
		"x-amz-key-v2":                     enc(wrap(dataKey, contentV2)),
		"x-amz-iv":                         enc(o.iv),
		"x-amz-cek-alg":                    contentV2,
		"x-amz-wrap-alg":                   wrapAESGCM,
		"x-amz-tag-len":                    "128",
		"x-amz-matdesc":                    description(),
		"x-amz-unencrypted-content-length": strconv.Itoa(len(o.plaintext)),
	}
}

// split is the object's envelope stored in an instruction file: what stays
// in the object's metadata and the file's fields. V2 keeps only
// x-amz-unencrypted-content-length on the object (as AWS's Ruby client
// does); V3 keeps x-amz-c, x-amz-d and x-amz-i there, and the file holds
// x-amz-3, x-amz-w and x-amz-m.
func (o *object) split() (onObject, file map[string]string) {
	file = o.metadata()
	onObject = map[string]string{}
	keep := []string{"x-amz-unencrypted-content-length"}
	if o.v3 {
		keep = []string{"x-amz-c", "x-amz-d", "x-amz-i"}
	}
	for _, k := range keep {
		onObject[k] = file[k]
		delete(file, k)
	}
	return onObject, file
}

// instructionJSON renders instruction file fields as one flat JSON object
// of strings, keys sorted.
func instructionJSON(fields map[string]string) []byte {
	b, err := json.Marshal(fields)
	check(err)
	return b
}

// description is MasterKeyDescription as stored: compact JSON.
func description() string {
	b, err := json.Marshal(MasterKeyDescription)
	check(err)
	return string(b)
}

// wrap wraps a data key as keyring.AES does (IV(12) || AES-GCM(master key,
// data key, AAD = content algorithm) || tag: 60 bytes), but with an IV
// derived from the data key and content algorithm instead of a random one,
// so the vectors are reproducible. v2v3_test.go checks that keyring.AES
// unwraps it (every OK vector) and that keyring.AES.Wrap has its layout.
func wrap(key []byte, contentAlg string) []byte {
	block, err := aes.NewCipher(MasterKey)
	check(err)
	g, err := cipher.NewGCM(block)
	check(err)
	iv := derive("wrap IV", contentAlg+" "+string(key), 12)
	return g.Seal(slices.Clone(iv), iv, key, []byte(contentAlg))
}

// checkKeySchedule checks v3Keys against the first known answer of AWS's
// Go client v4.0.0 (internal/key_derivation_test.go,
// TestDeriveKeys_KnownAnswerTests, "Basic ... #1").
func checkKeySchedule() error {
	commitment, contentKey := v3Keys(
		mustHex("80d90dc4cc7e77d8a6332efa44eba56230a7fe7b89af37d1e501ab2e07c0a163"),
		mustHex("b8ea76bed24c7b85382a148cb9dcd1cfdfb765f55ded4dfa6e0c4c79"))
	if hex.EncodeToString(commitment) != "f89818bc0a346d3a3426b68e9509b6b2ae5fe1f904aa329fb73625db" ||
		hex.EncodeToString(contentKey) != "6dd14f546cc006e639126e83f5d4d1b118576bb5df97f38c6fb3a1db87bbc338" {
		return fmt.Errorf("the V3 key schedule does not give AWS's known answer")
	}
	return nil
}

// derive returns n bytes of SHA-256("s3envelope V2V3 test vector " ||
// what || " " || label): a vector's IV, message ID or wrap IV.
func derive(what, label string, n int) []byte {
	h := sha256.Sum256([]byte("s3envelope V2V3 test vector " + what + " " + label))
	return slices.Clone(h[:n])
}

// plaintext returns n deterministic bytes: SHA-256 in counter mode over a
// label.
func plaintext(label string, n int) []byte {
	out := make([]byte, 0, n+32)
	for i := uint64(0); len(out) < n; i++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("s3envelope V2V3 test vector plaintext "+label+" "), i))
		out = append(out, h[:]...)
	}
	return out[:n]
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

type built struct {
	Vector
	body        []byte
	instruction []byte // nil: no instruction file
}

func policy(o *object) string {
	if o.v3 {
		return RequireEncryptRequireDecrypt
	}
	return RequireEncryptAllowDecrypt
}

// ok is an honest object whose envelope is in its metadata.
func ok(name, desc string, o *object) built {
	n := int64(len(o.plaintext))
	return built{Vector: Vector{
		Name: name, Description: desc, CommitmentPolicy: policy(o), Metadata: o.metadata(), Expect: OK,
		ReleasedLength: n, ReleasedSHA256: sum(o.plaintext),
		PlaintextLength: &n, PlaintextSHA256: sum(o.plaintext),
	}, body: o.body()}
}

// bad is a vector that fails with err at stage, having released nothing.
// Its policy is o's: V3 vectors are read under the default
// REQUIRE_ENCRYPT_REQUIRE_DECRYPT, V2 ones under
// REQUIRE_ENCRYPT_ALLOW_DECRYPT.
func bad(name, desc string, o *object, meta map[string]string, instruction, body []byte, err, stage string) built {
	return built{Vector: Vector{
		Name: name, Description: desc, CommitmentPolicy: policy(o), Metadata: meta, Expect: err, FailsAt: stage,
		ReleasedLength: 0, ReleasedSHA256: sum(nil),
	}, body: body, instruction: instruction}
}

func flipped(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	check(err)
	b[0] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func vectors() []built {
	var out []built
	add := func(b built) { out = append(out, b) }
	enc := base64.StdEncoding.EncodeToString

	// ---- V2 ----

	add(ok("v2_ok", "An honest V2 object of 1000 bytes, its envelope in its metadata as AWS's Go clients write it (with x-amz-unencrypted-content-length).", v2("v2_ok", usual)))
	{
		o := v2("v2_ok_no_length", usual)
		v := ok("v2_ok_no_length", "An honest V2 object of 1000 bytes without x-amz-unencrypted-content-length, as AWS's Java client writes it.", o)
		delete(v.Metadata, "x-amz-unencrypted-content-length")
		add(v)
	}
	add(ok("v2_ok_empty", "An honest V2 object of 0 bytes: the body is the 16-byte tag alone.", v2("v2_ok_empty", 0)))
	{
		o := v2("v2_ok_instruction", usual)
		onObject, file := o.split()
		v := ok("v2_ok_instruction", "An honest V2 object of 1000 bytes whose envelope is in its instruction file (x-amz-key-v2, x-amz-iv, x-amz-cek-alg, x-amz-wrap-alg, x-amz-tag-len, x-amz-matdesc); the object's metadata holds only x-amz-unencrypted-content-length, as AWS's Ruby client stores it.", o)
		v.Metadata, v.instruction = onObject, instructionJSON(file)
		add(v)
	}
	{
		o := v2("v2_metadata_wins_over_instruction", usual)
		v := ok("v2_metadata_wins_over_instruction", "An honest V2 object whose envelope is in its metadata, beside an instruction file that is not JSON: the object's metadata wins, and the file is not read.", o)
		v.instruction = []byte("this is not an instruction file")
		add(v)
	}

	// Body faults: the envelope is honest; the failure needs the body.
	body := func(name, desc string, o *object, edit func([]byte) []byte) {
		add(bad(name, desc, o, o.metadata(), nil, edit(o.body()), ErrAuthentication, StageRead))
	}
	body("v2_tag_flipped", "The V2 object's body with the first bit of its tag (the last 16 bytes) flipped.", v2("v2_tag_flipped", usual),
		func(b []byte) []byte { b[len(b)-16] ^= 0x01; return b })
	body("v2_ciphertext_flipped", "The V2 object's body with the first bit of its ciphertext flipped (the tag is intact).", v2("v2_ciphertext_flipped", usual),
		func(b []byte) []byte { b[0] ^= 0x01; return b })
	body("v2_body_truncated", "The V2 object's body without its last byte: the last 16 bytes read as the tag are not the tag.", v2("v2_body_truncated", usual),
		func(b []byte) []byte { return b[:len(b)-1] })
	body("v2_body_extended", "The V2 object's body followed by one more byte: the tag is not last.", v2("v2_body_extended", usual),
		func(b []byte) []byte { return append(b, 0x00) })
	{
		o := v2("v2_body_empty", 0)
		add(bad("v2_body_empty", "The metadata of an empty V2 object (x-amz-unencrypted-content-length 0) with a body of 0 bytes: not even the tag.", o, o.metadata(), nil, nil, ErrAuthentication, StageRead))
	}

	// Metadata faults over the usual honest V2 body.
	meta := func(name, desc string, o *object, edit func(m map[string]string), err, stage string) {
		m := o.metadata()
		edit(m)
		add(bad(name, desc, o, m, nil, o.body(), err, stage))
	}
	m2 := func(name, desc string, edit func(m map[string]string), err, stage string) {
		meta(name, desc, v2(name, usual), edit, err, stage)
	}
	m2("v2_iv_altered", "x-amz-iv with its first bit flipped (still 12 bytes): the body decrypts under another counter and its tag does not verify.",
		func(m map[string]string) { m["x-amz-iv"] = flipped(m["x-amz-iv"]) }, ErrAuthentication, StageRead)
	m2("v2_iv_short", "x-amz-iv of 11 bytes (the object's IV without its last byte); AES/GCM/NoPadding needs 12.",
		func(m map[string]string) {
			b, _ := base64.StdEncoding.DecodeString(m["x-amz-iv"])
			m["x-amz-iv"] = enc(b[:11])
		}, ErrMalformed, StageDecode)
	m2("v2_wrapped_key_altered", "x-amz-key-v2 with its first bit flipped (in the wrap's IV): the data key does not unwrap.",
		func(m map[string]string) { m["x-amz-key-v2"] = flipped(m["x-amz-key-v2"]) }, ErrAuthentication, StageOpen)
	m2("v2_wrapped_key_bound_to_v3", "x-amz-key-v2 is the same data key wrapped with AAD 115 (V3's content algorithm) instead of AES/GCM/NoPadding: a wrap binds its format, so it does not unwrap for V2.",
		func(m map[string]string) { m["x-amz-key-v2"] = enc(wrap(dataKey, contentV3)) }, ErrAuthentication, StageOpen)
	m2("v2_wrap_alg_unknown", "x-amz-wrap-alg is AES/KW, a name no S3 Encryption Client uses.",
		func(m map[string]string) { m["x-amz-wrap-alg"] = "AES/KW" }, ErrUnsupported, StageDecode)
	m2("v2_wrap_alg_legacy", "x-amz-wrap-alg is AESWrap (RFC 3394), a legacy wrap that binds no content algorithm: decrypt-only, and refused unless legacy wrapping algorithms are enabled (they are not).",
		func(m map[string]string) { m["x-amz-wrap-alg"] = "AESWrap" }, ErrDisallowed, StageOpen)
	m2("v2_cek_alg_ctr", "x-amz-cek-alg is AES/CTR/NoPadding: never accepted from storage (CVE-2020-8912: rewriting GCM to CTR leaks the GHASH key).",
		func(m map[string]string) { m["x-amz-cek-alg"] = "AES/CTR/NoPadding" }, ErrUnsupported, StageDecode)
	m2("v2_cek_alg_cbc", "x-amz-cek-alg is AES/CBC/PKCS5Padding with a 16-byte x-amz-iv: legacy unauthenticated content (CVE-2020-8911), refused unless legacy unauthenticated modes are enabled (they are not).",
		func(m map[string]string) {
			m["x-amz-cek-alg"] = "AES/CBC/PKCS5Padding"
			m["x-amz-iv"] = enc(derive("IV", "v2_cek_alg_cbc/cbc", 16))
		}, ErrDisallowed, StageOpen)
	m2("v2_tag_len_96", "x-amz-tag-len is 96: AES/GCM/NoPadding objects carry a 128-bit tag, and any other value is an error.",
		func(m map[string]string) { m["x-amz-tag-len"] = "96" }, ErrMalformed, StageDecode)
	m2("v2_missing_iv", "x-amz-iv is absent.",
		func(m map[string]string) { delete(m, "x-amz-iv") }, ErrMalformed, StageDecode)
	m2("v2_missing_cek_alg", "x-amz-cek-alg is absent (a V2 envelope must name its content algorithm; only V1 may omit it, and means CBC).",
		func(m map[string]string) { delete(m, "x-amz-cek-alg") }, ErrMalformed, StageDecode)
	m2("v2_key_not_base64", "x-amz-key-v2 followed by \"!\", which is outside the base64 alphabet.",
		func(m map[string]string) { m["x-amz-key-v2"] += "!" }, ErrMalformed, StageDecode)
	m2("v2_matdesc_not_json", "x-amz-matdesc is not JSON.",
		func(m map[string]string) { m["x-amz-matdesc"] = "kid=v2v3-vectors" }, ErrMalformed, StageDecode)
	m2("v2_with_v3_field", "A V3 field, x-amz-d (a 28-byte commitment), beside the V2 envelope: V2 and V3 fields mixed.",
		func(m map[string]string) { m["x-amz-d"] = enc(make([]byte, commitSize)) }, ErrMalformed, StageDecode)
	m2("v2_length_short", "x-amz-unencrypted-content-length is 999, one less than the body holds (which is otherwise honest and verifies): the stored length and the body disagree.",
		func(m map[string]string) { m["x-amz-unencrypted-content-length"] = "999" }, ErrMalformed, StageRead)
	m2("v2_length_long", "x-amz-unencrypted-content-length is 1001, one more than the body holds (which is otherwise honest and verifies): the stored length and the body disagree.",
		func(m map[string]string) { m["x-amz-unencrypted-content-length"] = "1001" }, ErrMalformed, StageRead)
	meta("v2_length_short_large_body", "An honest V2 object of 256 KiB + 100 bytes whose x-amz-unencrypted-content-length says 1000: a reader may refuse the body as soon as it holds more than the stored length, before its tag.",
		v2("v2_length_short_large_body", large),
		func(m map[string]string) { m["x-amz-unencrypted-content-length"] = "1000" }, ErrMalformed, StageRead)
	m2("v2_length_not_a_number", "x-amz-unencrypted-content-length is not a decimal number.",
		func(m map[string]string) { m["x-amz-unencrypted-content-length"] = "1000 bytes" }, ErrMalformed, StageDecode)
	m2("v2_length_too_large", "x-amz-unencrypted-content-length is 2^36-31, one byte more than one AES-GCM message may hold (2^36-32): refused before the body is read.",
		func(m map[string]string) { m["x-amz-unencrypted-content-length"] = strconv.FormatInt(1<<36-31, 10) }, ErrTooLarge, StageDecode)
	{
		o := v2("v2_policy_require_decrypt", usual)
		v := bad("v2_policy_require_decrypt", "An honest V2 object read under REQUIRE_ENCRYPT_REQUIRE_DECRYPT (the default of AWS's v4 clients and of this library), which reads only key-committing (V3) objects.", o, o.metadata(), nil, o.body(), ErrPolicy, StageOpen)
		v.CommitmentPolicy = RequireEncryptRequireDecrypt
		add(v)
	}
	{
		// Downgrade: a V3 object's own fields, with a V2 instruction file.
		o := v2("v2_instruction_on_v3_object", usual)
		_, file := o.split()
		onObject, _ := v3("v2_instruction_on_v3_object/v3", usual).split()
		add(bad("v2_instruction_on_v3_object", "The object's metadata holds a V3 object's x-amz-c, x-amz-d and x-amz-i, and its instruction file is a V2 envelope (with a V2 body): the file must not stand in for the V3 envelope and drop its key commitment.", o, onObject, instructionJSON(file), o.body(), ErrMalformed, StageDecode))
	}

	// ---- V3 ----

	add(ok("v3_ok", "An honest V3 object of 1000 bytes, its envelope in its metadata (x-amz-c, x-amz-3, x-amz-w, x-amz-m, x-amz-d, x-amz-i).", v3("v3_ok", usual)))
	add(ok("v3_ok_empty", "An honest V3 object of 0 bytes: the body is the 16-byte tag alone.", v3("v3_ok_empty", 0)))
	{
		o := v3("v3_ok_instruction", usual)
		onObject, file := o.split()
		v := ok("v3_ok_instruction", "An honest V3 object of 1000 bytes whose envelope is in its instruction file (x-amz-3, x-amz-w, x-amz-m); x-amz-c, x-amz-d and x-amz-i stay in the object's metadata.", o)
		v.Metadata, v.instruction = onObject, instructionJSON(file)
		add(v)
	}
	body("v3_tag_flipped", "The V3 object's body with the first bit of its tag (the last 16 bytes) flipped.", v3("v3_tag_flipped", usual),
		func(b []byte) []byte { b[len(b)-16] ^= 0x01; return b })
	body("v3_body_truncated", "The V3 object's body without its last byte.", v3("v3_body_truncated", usual),
		func(b []byte) []byte { return b[:len(b)-1] })
	body("v3_body_extended", "The V3 object's body followed by one more byte.", v3("v3_body_extended", usual),
		func(b []byte) []byte { return append(b, 0x00) })

	m3 := func(name, desc string, edit func(m map[string]string), err, stage string) {
		meta(name, desc, v3(name, usual), edit, err, stage)
	}
	m3("v3_commitment_altered", "x-amz-d with its first bit flipped: the derived commitment does not match, so opening fails before any content key is derived or any body byte read.",
		func(m map[string]string) { m["x-amz-d"] = flipped(m["x-amz-d"]) }, ErrAuthentication, StageOpen)
	m3("v3_message_id_altered", "x-amz-i with its first bit flipped: the message ID is the HKDF salt, so the derived commitment does not match x-amz-d.",
		func(m map[string]string) { m["x-amz-i"] = flipped(m["x-amz-i"]) }, ErrAuthentication, StageOpen)
	m3("v3_message_id_short", "x-amz-i of 27 bytes (the object's message ID without its last byte); V3 needs 28.",
		func(m map[string]string) {
			b, _ := base64.StdEncoding.DecodeString(m["x-amz-i"])
			m["x-amz-i"] = enc(b[:27])
		}, ErrMalformed, StageDecode)
	m3("v3_message_id_not_base64", "x-amz-i is not standard base64 (URL-safe alphabet and no padding).",
		func(m map[string]string) {
			b, _ := base64.StdEncoding.DecodeString(m["x-amz-i"])
			m["x-amz-i"] = base64.RawURLEncoding.EncodeToString(append([]byte{0xfb, 0xff}, b[2:]...))
		}, ErrMalformed, StageDecode)
	m3("v3_commitment_not_base64", "x-amz-d without its base64 padding (39 characters): standard base64 is padded.",
		func(m map[string]string) { m["x-amz-d"] = strings.TrimRight(m["x-amz-d"], "=") }, ErrMalformed, StageDecode)
	m3("v3_wrapped_key_altered", "x-amz-3 with its first bit flipped (in the wrap's IV): the data key does not unwrap.",
		func(m map[string]string) { m["x-amz-3"] = flipped(m["x-amz-3"]) }, ErrAuthentication, StageOpen)
	m3("v3_wrapped_key_bound_to_v2", "x-amz-3 is the same data key wrapped with AAD AES/GCM/NoPadding (V2's content algorithm) instead of 115: a V2 wrap does not unwrap for V3.",
		func(m map[string]string) { m["x-amz-3"] = enc(wrap(dataKey, contentV2)) }, ErrAuthentication, StageOpen)
	m3("v3_wrap_v2_name", "x-amz-w is AES/GCM, V2's name for the wrap, instead of V3's code 02.",
		func(m map[string]string) { m["x-amz-w"] = wrapAESGCM }, ErrUnsupported, StageDecode)
	m3("v3_wrap_rsa_code", "x-amz-w is 22 (RSA-OAEP-SHA1), a valid V3 wrap, over an AES/GCM-wrapped key: the AES master key cannot unwrap an RSA wrap.",
		func(m map[string]string) { m["x-amz-w"] = "22" }, ErrUnsupported, StageOpen)
	m3("v3_suite_unknown", "x-amz-c is 114, not the one algorithm suite V3 defines (115).",
		func(m map[string]string) { m["x-amz-c"] = "114" }, ErrUnsupported, StageDecode)
	m3("v3_missing_commitment", "x-amz-d is absent.",
		func(m map[string]string) { delete(m, "x-amz-d") }, ErrMalformed, StageDecode)
	m3("v3_with_v2_field", "A V2 field, x-amz-iv (12 bytes), beside the V3 envelope: V2 and V3 fields mixed.",
		func(m map[string]string) { m["x-amz-iv"] = enc(derive("IV", "v3_with_v2_field", ivSize)) }, ErrMalformed, StageDecode)
	m3("v3_with_v2_wrapped_key", "The V2 wrapped key x-amz-key-v2 (with AAD AES/GCM/NoPadding) beside the V3 envelope's x-amz-3: wrapped keys of two formats.",
		func(m map[string]string) { m["x-amz-key-v2"] = enc(wrap(dataKey, contentV2)) }, ErrMalformed, StageDecode)
	m3("v3_matdesc_not_json", "x-amz-m is not a JSON object (a JSON array).",
		func(m map[string]string) { m["x-amz-m"] = `["kid","v2v3-vectors"]` }, ErrMalformed, StageDecode)
	m3("v3_length_short", "x-amz-unencrypted-content-length (which V3 writers need not store) is 999, one less than the body holds (which is otherwise honest and verifies).",
		func(m map[string]string) { m["x-amz-unencrypted-content-length"] = "999" }, ErrMalformed, StageRead)
	{
		o := v3("v3_instruction_holds_commitment", usual)
		add(bad("v3_instruction_holds_commitment", "A V3 instruction file that holds x-amz-c, x-amz-d and x-amz-i itself (the object's metadata holds none): V3 keeps them in the object's metadata, so whoever can write the file cannot choose the commitment.", o, map[string]string{}, instructionJSON(o.metadata()), o.body(), ErrMalformed, StageDecode))
	}
	{
		o := v3("v3_instruction_object_has_v2_field", usual)
		onObject, file := o.split()
		onObject["x-amz-iv"] = enc(derive("IV", "v3_instruction_object_has_v2_field", ivSize))
		add(bad("v3_instruction_object_has_v2_field", "A V3 instruction file, and beside the V3 fields in the object's metadata a V2 field, x-amz-iv: the object's metadata holds fields of another format than its instruction file.", o, onObject, instructionJSON(file), o.body(), ErrMalformed, StageDecode))
	}
	{
		o := v3("v3_instruction_missing", usual)
		onObject, _ := o.split()
		add(bad("v3_instruction_missing", "The object's metadata holds x-amz-c, x-amz-d and x-amz-i, and there is no instruction file: an encrypted object whose envelope is gone, not an unencrypted one.", o, onObject, nil, o.body(), ErrMalformed, StageDecode))
	}

	// ---- Instruction files and no envelope ----

	{
		o := v2("instruction_not_json", usual)
		onObject, file := o.split()
		js := instructionJSON(file)
		add(bad("instruction_not_json", "The V2 object's instruction file cut in half: not JSON.", o, onObject, js[:len(js)/2], o.body(), ErrMalformed, StageDecode))
	}
	{
		o := v2("instruction_empty", usual)
		onObject, _ := o.split()
		add(bad("instruction_empty", "An instruction file of 0 bytes (it exists, but is empty), beside the V2 object's metadata without an envelope.", o, onObject, []byte{}, o.body(), ErrMalformed, StageDecode))
	}
	{
		o := v2("instruction_too_large", usual)
		onObject, file := o.split()
		file["x-pad"] = strings.Repeat("a", 64<<10)
		add(bad("instruction_too_large", "The V2 object's instruction file with an extra field of 64 KiB: longer than the 64 KiB an instruction file may be, so refused before it is parsed.", o, onObject, instructionJSON(file), o.body(), ErrTooLarge, StageDecode))
	}
	{
		o := v2("instruction_no_wrapped_key", usual)
		onObject, file := o.split()
		delete(file, "x-amz-key-v2")
		add(bad("instruction_no_wrapped_key", "The V2 object's instruction file without x-amz-key-v2: an instruction file with no wrapped key.", o, onObject, instructionJSON(file), o.body(), ErrMalformed, StageDecode))
	}
	{
		o := v2("instruction_field_not_string", usual)
		onObject, file := o.split()
		js := bytes.Replace(instructionJSON(file), []byte(`"x-amz-matdesc":"{\"kid\":\"v2v3-vectors\"}"`), []byte(`"x-amz-matdesc":{"kid":"v2v3-vectors"}`), 1)
		if bytes.Equal(js, instructionJSON(file)) {
			panic("instruction_field_not_string: no x-amz-matdesc to replace")
		}
		add(bad("instruction_field_not_string", "The V2 object's instruction file with x-amz-matdesc as a JSON object instead of a string holding one: an instruction file is one flat JSON object of strings.", o, onObject, js, o.body(), ErrMalformed, StageDecode))
	}
	{
		o := v2("no_envelope", usual)
		v := bad("no_envelope", "Metadata without any envelope field (only color: blue), and no instruction file: the object was not client-side encrypted (its body here is a V2 body, which nothing names).", o, map[string]string{"color": "blue"}, nil, o.body(), ErrNoEnvelope, StageDecode)
		add(v)
	}
	return out
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	check(err)
	return b
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
