// Package segmented builds the named known-answer and negative test vectors
// of the segmented format (SEG1, docs/segmented-format.md), in the style of
// age's CCTV vectors: each vector is a JSON header (vectors/<name>.json) and
// the object's stored body (vectors/<name>.body).
//
// The vectors are built from the specification with the standard library
// alone (HKDF-SHA-512 key schedule, AES-256-GCM segments), never with the
// library's sealer, so that segmented_test.go checks the library against the
// specification and not against itself. Everything is deterministic: fixed
// master key, data keys, object IDs, plaintexts and key-wrap IVs, so
// Generate always returns the same bytes. cmd/genseg writes them:
//
//	cd testvectors && go run ./segmented/cmd/genseg
package segmented

import (
	"bytes"
	"context"
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

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// Dir is where the vectors live, relative to this package.
const Dir = "vectors"

// Outcomes: "ok", or the name of the envelope sentinel error expected.
const (
	OK                = "ok"
	ErrAuthentication = "ErrAuthentication"
	ErrMalformed      = "ErrMalformed"
	ErrUnsupported    = "ErrUnsupported"
)

// Stages at which a failure is expected: envelope.Decode of the metadata,
// envelope.Open (key unwrap and commitment, before any body byte is read),
// or reading the plaintext. Every failure of the body is a read failure.
const (
	StageDecode = "decode"
	StageOpen   = "open"
	StageRead   = "read"
)

// Sources of ciphertext for a ranged read (Range.Source, ReaderAt.Source).
const (
	// SourceBody serves the stored body's bytes; a read past its end finds
	// nothing (the source ends early).
	SourceBody = "body"
	// SourceZeroPadded serves the body followed by zero bytes up to the
	// claimed size: a server that makes up the bytes it claims to have.
	SourceZeroPadded = "zero-padded"
)

// Vector is one vector's JSON header.
type Vector struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// MasterKey (hex) and MasterKeyDescription make the keyring.NewAES that
	// unwraps the data key.
	MasterKey            string            `json:"masterKey"`
	MasterKeyDescription map[string]string `json:"masterKeyDescription"`
	// Metadata is the object's user metadata (without x-amz-meta-).
	Metadata map[string]string `json:"metadata"`
	// Body names the file beside this one that holds the stored body.
	Body       string `json:"body"`
	BodyLength int64  `json:"bodyLength"`
	BodySHA256 string `json:"bodySHA256"`
	// Expect is the outcome of envelope.Decode, envelope.Open with a zero
	// Config and reading the whole plaintext: OK or a sentinel error name.
	Expect string `json:"expect"`
	// FailsAt is the stage at which Expect's error occurs (not for OK).
	FailsAt string `json:"failsAt,omitempty"`
	// Released is all the plaintext a streaming read yields before its
	// error: exactly that of the segments that authenticate before the
	// fault. For OK vectors it is the whole plaintext.
	ReleasedLength int64  `json:"releasedLength"`
	ReleasedSHA256 string `json:"releasedSHA256"`
	// PlaintextLength and PlaintextSHA256 are the object's plaintext, for
	// OK vectors.
	PlaintextLength *int64 `json:"plaintextLength,omitempty"`
	PlaintextSHA256 string `json:"plaintextSHA256,omitempty"`
	// Ranges and ReaderAt are reads through envelope.OpenRange and
	// envelope.NewReaderAt given a claimed body size (length_lies).
	Ranges   []Range    `json:"ranges,omitempty"`
	ReaderAt []ReaderAt `json:"readerAt,omitempty"`
}

// Range is a read of plaintext bytes [Offset, Offset+Length) through
// envelope.OpenRange when the body is claimed to be ClaimedSize bytes long.
// The ciphertext given is Source's bytes [start, end) as
// Envelope.CiphertextRange(ClaimedSize, Offset, Length) names them, as far
// as Source holds them.
type Range struct {
	Note           string `json:"note"`
	ClaimedSize    int64  `json:"claimedSize"`
	Source         string `json:"source"`
	Offset         int64  `json:"offset"`
	Length         int64  `json:"length"`
	Expect         string `json:"expect"`
	ReleasedLength int64  `json:"releasedLength"`
	ReleasedSHA256 string `json:"releasedSHA256"`
}

// ReaderAt is envelope.NewReaderAt over Source with a claimed body size:
// Expect is the outcome of making it (and, if OK, of reading all of it,
// which yields PlaintextLength bytes hashing to PlaintextSHA256).
type ReaderAt struct {
	Note            string `json:"note"`
	ClaimedSize     int64  `json:"claimedSize"`
	Source          string `json:"source"`
	Expect          string `json:"expect"`
	PlaintextLength int64  `json:"plaintextLength,omitempty"`
	PlaintextSHA256 string `json:"plaintextSHA256,omitempty"`
}

// Fixed inputs. The master key is the one every vector's data key is
// wrapped under; data key B seals only the foreign object whose segment
// segment_from_other_object splices in.
var (
	MasterKey            = mustHex("53454731207465737420766563746f7273206d6173746572206b65792121a1b2")
	MasterKeyDescription = map[string]string{"kid": "vectors"}
	dataKeyA             = mustHex("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf")
	dataKeyB             = mustHex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf")
)

// SegmentSize is the segment size of every vector: the smallest allowed.
const SegmentSize = 4096

const (
	s      = SegmentSize
	stride = s + 16
)

// File is one generated file: a path relative to this package, and its
// contents.
type File struct {
	Path string
	Data []byte
}

// Generate returns every vector file, in a fixed order.
func Generate() ([]File, error) {
	if err := checkWrap(); err != nil {
		return nil, err
	}
	var files []File
	for _, v := range vectors() {
		h := v.Vector
		h.Body = h.Name + ".body"
		h.BodyLength = int64(len(v.body))
		h.BodySHA256 = sum(v.body)
		h.MasterKey = hex.EncodeToString(MasterKey)
		h.MasterKeyDescription = MasterKeyDescription
		js, err := json.MarshalIndent(h, "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files,
			File{Dir + "/" + h.Name + ".json", append(js, '\n')},
			File{Dir + "/" + h.Name + ".body", v.body})
	}
	return files, nil
}

// object is one segmented object built from the specification.
type object struct {
	dataKey, objectID []byte
	size              int
	plaintext         []byte
	commitment        []byte
	aead              cipher.AEAD
}

// info is the key schedule's HKDF info: "s3envelope SEG1 " || label ||
// BE32(segment size).
func info(label string, size int) string {
	return "s3envelope SEG1 " + label + string(binary.BigEndian.AppendUint32(nil, uint32(size)))
}

func newObject(dataKey, objectID []byte, size int, plaintext []byte) *object {
	prk, err := hkdf.Extract(sha512.New, dataKey, objectID)
	check(err)
	commitment, err := hkdf.Expand(sha512.New, prk, info("commit", size), 32)
	check(err)
	contentKey, err := hkdf.Expand(sha512.New, prk, info("key", size), 32)
	check(err)
	block, err := aes.NewCipher(contentKey)
	check(err)
	aead, err := cipher.NewGCM(block)
	check(err)
	return &object{dataKey: dataKey, objectID: objectID, size: size, plaintext: plaintext, commitment: commitment, aead: aead}
}

// count is the number of segments: max(1, ceil(P/S)).
func (o *object) count() int {
	return max(1, (len(o.plaintext)+o.size-1)/o.size)
}

// plain is segment i's plaintext.
func (o *object) plain(i int) []byte {
	return o.plaintext[min(i*o.size, len(o.plaintext)):min((i+1)*o.size, len(o.plaintext))]
}

// seal seals plaintext p as segment i: nonce BE88(i) || flag.
func (o *object) seal(p []byte, i int, final bool) []byte {
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[3:11], uint64(i))
	if final {
		nonce[11] = 1
	}
	return o.aead.Seal(nil, nonce[:], p, nil)
}

// segments are the object's sealed segments, as an honest writer seals them.
func (o *object) segments() [][]byte {
	n := o.count()
	out := make([][]byte, n)
	for i := range n {
		out[i] = o.seal(o.plain(i), i, i == n-1)
	}
	return out
}

func (o *object) body() []byte { return bytes.Join(o.segments(), nil) }

// metadata is the object's stored envelope, the data key wrapped under the
// master key with AES/GCM binding content algorithm S3ESEG1.
func (o *object) metadata() map[string]string {
	enc := base64.StdEncoding.EncodeToString
	return map[string]string{
		"x-s3e-v": "1",
		"x-s3e-s": strconv.Itoa(o.size),
		"x-s3e-k": enc(wrap(o.dataKey, format.ContentSegmented)),
		"x-s3e-w": format.WrapAESGCM,
		"x-s3e-m": format.EncodeDescription(MasterKeyDescription),
		"x-s3e-i": enc(o.objectID),
		"x-s3e-d": enc(o.commitment),
	}
}

// wrap wraps a data key as keyring.AES does (IV(12) || AES-GCM(master key,
// data key, AAD = content algorithm) || tag), but with an IV derived from
// the data key instead of a random one, so the vectors are reproducible.
func wrap(dataKey []byte, contentAlg string) []byte {
	block, err := aes.NewCipher(MasterKey)
	check(err)
	g, err := cipher.NewGCM(block)
	check(err)
	iv := sha256.Sum256(append([]byte("s3envelope SEG1 test vector wrap IV "+contentAlg+" "), dataKey...))
	return g.Seal(slices.Clone(iv[:12]), iv[:12], dataKey, []byte(contentAlg))
}

// checkWrap shows that wrap and keyring.AES agree: keyring.AES unwraps
// what wrap makes, and keyring.AES.Wrap's output has wrap's layout.
func checkWrap() error {
	ctx := context.Background()
	kr, err := keyring.NewAES(MasterKey, MasterKeyDescription)
	if err != nil {
		return err
	}
	w := wrap(dataKeyA, format.ContentSegmented)
	got, err := kr.Unwrap(ctx, &envelope.WrappedKey{Algorithm: format.WrapAESGCM, Ciphertext: w}, format.ContentSegmented)
	if err != nil || !bytes.Equal(got, dataKeyA) {
		return fmt.Errorf("keyring.AES does not unwrap the generator's wrap: %v", err)
	}
	theirs, err := kr.Wrap(ctx, dataKeyA, format.ContentSegmented)
	if err != nil {
		return err
	}
	block, _ := aes.NewCipher(MasterKey)
	g, _ := cipher.NewGCM(block)
	c := theirs.Ciphertext
	if len(c) != len(w) || theirs.Algorithm != format.WrapAESGCM {
		return fmt.Errorf("keyring.AES.Wrap made %d bytes of %s, the generator %d", len(c), theirs.Algorithm, len(w))
	}
	if k, err := g.Open(nil, c[:12], c[12:], []byte(format.ContentSegmented)); err != nil || !bytes.Equal(k, dataKeyA) {
		return fmt.Errorf("keyring.AES.Wrap's output is not IV || GCM(data key, AAD S3ESEG1): %v", err)
	}
	return nil
}

// plaintext returns n deterministic bytes: SHA-256 in counter mode over a
// label.
func plaintext(label string, n int) []byte {
	out := make([]byte, 0, n+32)
	for i := uint64(0); len(out) < n; i++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("s3envelope SEG1 test vector plaintext "+label+" "), i))
		out = append(out, h[:]...)
	}
	return out[:n]
}

// objectID is a vector's own object ID, so no two vectors share a content
// key (and no (key, nonce) pair seals two plaintexts).
func objectID(name string) []byte {
	h := sha256.Sum256([]byte("s3envelope SEG1 test vector object ID " + name))
	return h[:]
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

type built struct {
	Vector
	body []byte
}

// std is a vector's object: data key A, its own object ID, segment size
// 4096 and p bytes of plaintext.
func std(name string, p int) *object {
	return newObject(dataKeyA, objectID(name), s, plaintext(name, p))
}

func ok(name, desc string, o *object) built {
	n := int64(len(o.plaintext))
	return built{Vector{
		Name: name, Description: desc, Metadata: o.metadata(), Expect: OK,
		ReleasedLength: n, ReleasedSHA256: sum(o.plaintext),
		PlaintextLength: &n, PlaintextSHA256: sum(o.plaintext),
	}, o.body()}
}

// bad is a vector that fails with err at stage, having released the first
// released bytes of o's plaintext.
func bad(name, desc string, o *object, meta map[string]string, body []byte, err, stage string, released int) built {
	return built{Vector{
		Name: name, Description: desc, Metadata: meta, Expect: err, FailsAt: stage,
		ReleasedLength: int64(released), ReleasedSHA256: sum(o.plaintext[:released]),
	}, body}
}

func vectors() []built {
	var out []built
	add := func(b built) { out = append(out, b) }

	// Positive vectors.
	add(ok("ok_empty", "An empty object: one empty final segment (16 bytes of body).", std("ok_empty", 0)))
	add(ok("ok_one_byte", "One byte of plaintext: one final segment of 1 byte.", std("ok_one_byte", 1)))
	add(ok("ok_exact_segments", "Exactly 2*S bytes: two full segments, the second final; no empty segment follows.", std("ok_exact_segments", 2*s)))
	add(ok("ok_three_segments_plus_7", "3*S+7 bytes: three full segments and a final one of 7 bytes.", std("ok_three_segments_plus_7", 3*s+7)))

	// Body faults. The usual object: 3*S+7 bytes, segments 0..3, 3 final.
	{
		o := std("no_final", 2*s)
		body := append(o.seal(o.plain(0), 0, false), o.seal(o.plain(1), 1, false)...)
		add(bad("no_final", "2*S bytes whose writer sealed both segments non-final and never sealed a final one: the body ends at a segment boundary after a non-final segment. Segment 1, which ends the body, does not open as final.", o, o.metadata(), body, ErrAuthentication, StageRead, s))
	}
	{
		o := std("no_final_short", 3*s+7)
		var body []byte
		for i := range 4 {
			body = append(body, o.seal(o.plain(i), i, false)...)
		}
		add(bad("no_final_short", "3*S+7 bytes with every segment sealed non-final, including the short last one (a canonical length, but no final flag anywhere). The short segment 3 ends the body and does not open as final.", o, o.metadata(), body, ErrAuthentication, StageRead, 3*s))
	}
	{
		o := std("two_final", 3*s+7)
		seg := o.segments()
		seg[2] = o.seal(o.plain(2), 2, true)
		add(bad("two_final", "3*S+7 bytes where segment 2 was also sealed final (two final segments, 2 and 3). Segment 2 is followed by data, so it must open non-final, and does not.", o, o.metadata(), bytes.Join(seg, nil), ErrAuthentication, StageRead, 2*s))
	}
	{
		o := std("trailing_data", 2*s)
		body := append(o.body(), []byte("TRAILER")...)
		add(bad("trailing_data", "The honest 2*S-byte object followed by 7 extra bytes. The full final segment 1 is followed by data, so it must open non-final, and does not; the 7 bytes are no segment.", o, o.metadata(), body, ErrAuthentication, StageRead, s))
	}
	{
		o := std("trailing_data_after_short_final", 3*s+7)
		body := append(o.body(), []byte("TRAILER")...)
		add(bad("trailing_data_after_short_final", "The honest 3*S+7-byte object followed by 7 extra bytes: the short final segment 3 (23 bytes) and the extra bytes read as one 30-byte final segment, which does not open.", o, o.metadata(), body, ErrAuthentication, StageRead, 3*s))
	}
	{
		o := std("empty_final_after_data", 2*s)
		body := bytes.Join([][]byte{o.seal(o.plain(0), 0, false), o.seal(o.plain(1), 1, false), o.seal(nil, 2, true)}, nil)
		add(bad("empty_final_after_data", "2*S bytes sealed as two full non-final segments and an empty final segment 2 (16 bytes), all under the object's key: a non-canonical encoding (only an empty object ends in an empty segment, at index 0). Segments 0 and 1 open; the empty final segment is refused although it opens.", o, o.metadata(), body, ErrAuthentication, StageRead, 2*s))
	}
	{
		o := std("swapped_segments", 3*s+7)
		seg := o.segments()
		seg[1], seg[2] = seg[2], seg[1]
		add(bad("swapped_segments", "3*S+7 bytes with segments 1 and 2 swapped. Segment 2 does not open at position 1 (its index is in the nonce).", o, o.metadata(), bytes.Join(seg, nil), ErrAuthentication, StageRead, s))
	}
	{
		o := std("duplicated_segment", 3*s+7)
		seg := o.segments()
		seg = slices.Insert(seg, 2, seg[1])
		add(bad("duplicated_segment", "3*S+7 bytes with segment 1 repeated (0, 1, 1, 2, 3). The copy of segment 1 does not open at position 2.", o, o.metadata(), bytes.Join(seg, nil), ErrAuthentication, StageRead, 2*s))
	}
	{
		o := std("segment_from_other_object", 3*s+7)
		other := newObject(dataKeyB, objectID("segment_from_other_object/other"), s, plaintext("segment_from_other_object/other", 3*s+7))
		seg := o.segments()
		seg[2] = other.segments()[2]
		add(bad("segment_from_other_object", "3*S+7 bytes whose segment 2 is segment 2 of another object of the same length under the same master key (other data key and object ID). It does not open under this object's content key.", o, o.metadata(), bytes.Join(seg, nil), ErrAuthentication, StageRead, 2*s))
	}
	{
		o := std("truncated_at_boundary", 3*s+7)
		body := o.body()[:2*stride]
		add(bad("truncated_at_boundary", "The honest 3*S+7-byte object cut after segment 1 (at a segment boundary, 2*(S+16) bytes). Segment 1, sealed non-final, ends the body and does not open as final.", o, o.metadata(), body, ErrAuthentication, StageRead, s))
	}
	{
		o := std("truncated_mid_segment", 3*s+7)
		body := o.body()[:2*stride+100]
		add(bad("truncated_mid_segment", "The honest 3*S+7-byte object cut 100 bytes into segment 2. The 100 bytes read as a final segment, which does not open.", o, o.metadata(), body, ErrAuthentication, StageRead, 2*s))
	}
	{
		o := std("empty_body", 0)
		add(bad("empty_body", "The empty object's metadata with no body at all (0 bytes): not even the one empty final segment.", o, o.metadata(), nil, ErrAuthentication, StageRead, 0))
	}

	// Metadata faults over an honest body of 3*S+7 bytes.
	meta := func(name, desc string, edit func(m map[string]string), err, stage string) {
		o := std(name, 3*s+7)
		m := o.metadata()
		edit(m)
		add(bad(name, desc, o, m, o.body(), err, stage, 0))
	}
	flip := func(m map[string]string, k string) {
		b, err := base64.StdEncoding.DecodeString(m[k])
		check(err)
		b[0] ^= 0x01
		m[k] = base64.StdEncoding.EncodeToString(b)
	}
	meta("wrong_commitment", "x-s3e-d with its first bit flipped: the derived commitment does not match, so Open fails before any content key is derived.",
		func(m map[string]string) { flip(m, "x-s3e-d") }, ErrAuthentication, StageOpen)
	meta("segment_size_changed", "x-s3e-s changed from 4096 to 8192 (a valid size): the segment size is in both HKDF infos, so the derived commitment does not match.",
		func(m map[string]string) { m["x-s3e-s"] = "8192" }, ErrAuthentication, StageOpen)
	meta("object_id_changed", "x-s3e-i with its first bit flipped: the object ID is the HKDF salt, so the derived commitment does not match.",
		func(m map[string]string) { flip(m, "x-s3e-i") }, ErrAuthentication, StageOpen)
	meta("wrap_other_content_algorithm", "x-s3e-k is the data key wrapped with AES/GCM binding content algorithm AES/GCM/NoPadding (V2's) instead of S3ESEG1: the wrap does not open for S3ESEG1.",
		func(m map[string]string) {
			m["x-s3e-k"] = base64.StdEncoding.EncodeToString(wrap(dataKeyA, format.ContentAESGCM))
		}, ErrAuthentication, StageOpen)
	meta("wrong_version", "x-s3e-v is \"2\": a version of the format this reader does not know.",
		func(m map[string]string) { m["x-s3e-v"] = "2" }, ErrUnsupported, StageDecode)
	meta("legacy_wrap", "x-s3e-w is \"AESWrap\" (RFC 3394), a legacy wrap that binds no content algorithm: never allowed with this format, whatever the options.",
		func(m map[string]string) { m["x-s3e-w"] = format.WrapLegacyAESWrap }, ErrUnsupported, StageDecode)
	meta("bad_segment_size", "x-s3e-s is 5000, not a power of two.",
		func(m map[string]string) { m["x-s3e-s"] = "5000" }, ErrMalformed, StageDecode)
	meta("aws_fields_mixed", "An AWS envelope field, x-amz-iv (12 bytes), beside the segmented envelope.",
		func(m map[string]string) { m["x-amz-iv"] = base64.StdEncoding.EncodeToString(make([]byte, 12)) }, ErrMalformed, StageDecode)

	add(lengthLies())
	return out
}

// lengthLies is an honest 3*S+7-byte object read by range and at random
// with body sizes that lie: too small (hiding that the object goes on) and
// too large (claiming more than it holds).
func lengthLies() built {
	const name = "length_lies"
	o := std(name, 3*s+7)
	v := ok(name, "An honest 3*S+7-byte object (4 segments, body C = 3*(S+16)+23 = 12359 bytes) read through envelope.OpenRange and envelope.NewReaderAt with body sizes that lie. Read whole it is fine. A range that stays inside segments the lie does not touch reads fine; a range that reaches the claimed end fails, because the segment claimed to be last was not sealed as the last (or is not whole); NewReaderAt opens the claimed last segment first and so fails when it is made.", o)
	pt := o.plaintext
	c := int64(len(v.body))
	rng := func(note string, claimed int64, source string, off, n int64, expect string, released []byte) Range {
		return Range{Note: note, ClaimedSize: claimed, Source: source, Offset: off, Length: n, Expect: expect, ReleasedLength: int64(len(released)), ReleasedSHA256: sum(released)}
	}
	const (
		small    = 2 * stride             // 2 full segments: hides segments 2 and 3
		smallMid = 2*stride + 100         // 3 segments, the last of 84 bytes
		smallEnd = 3*stride + 18          // C-5: 4 segments, the last of 2 bytes
		invalid  = stride + 10            // no writer makes a body this long
		large    = 3*stride + 23 + stride // one more segment of 7 bytes: 5 segments
		largeEnd = 3*stride + 23 + 100    // C+100: 4 segments, the last of 107 bytes
	)
	v.Ranges = []Range{
		rng("too small (2 segments): a range inside segment 0 does not depend on the size", small, SourceBody, 0, 100, OK, pt[:100]),
		rng("too small (2 segments): segment 1, claimed last, was sealed non-final", small, SourceBody, s, s, ErrAuthentication, nil),
		rng("too small (2 segments): from inside segment 0 to the claimed end; segment 0 is released, segment 1 fails", small, SourceBody, 100, 2*s-100, ErrAuthentication, pt[100:s]),
		rng("too small (3 segments, the last of 84 bytes): the first 100 bytes of segment 2 do not open as a final segment", smallMid, SourceBody, 2*s, 84, ErrAuthentication, nil),
		rng("too small by 5 bytes (same segment count, last segment of 2 bytes): 18 bytes of segment 3 do not open", smallEnd, SourceBody, 3*s, 2, ErrAuthentication, nil),
		rng("a size no writer produces (S+26): refused before anything is read", invalid, SourceBody, 0, 1, ErrAuthentication, nil),
		rng("too large (5 segments): a range inside segment 0 does not depend on the size", large, SourceBody, 0, 100, OK, pt[:100]),
		rng("too large (5 segments): segment 3, the true final one, is not claimed last and is short", large, SourceBody, 3*s, 7, ErrAuthentication, nil),
		rng("too large (5 segments), zero-padded: segment 3 padded to a full segment does not open", large, SourceZeroPadded, 3*s, 7, ErrAuthentication, nil),
		rng("too large (5 segments): the claimed last segment 4 is missing", large, SourceBody, 4*s, 7, ErrAuthentication, nil),
		rng("too large (5 segments), zero-padded: the claimed last segment 4 is zeros", large, SourceZeroPadded, 4*s, 7, ErrAuthentication, nil),
		rng("too large by 100 bytes (same segment count, last segment of 107 bytes): the source holds only 23 bytes of segment 3, not the 123 claimed", largeEnd, SourceBody, 3*s, 107, ErrAuthentication, nil),
		rng("too large by 100 bytes, zero-padded: segment 3 with 100 zeros appended does not open", largeEnd, SourceZeroPadded, 3*s, 107, ErrAuthentication, nil),
		rng("too large by 100 bytes: the whole claimed plaintext; segments 0-2 are released, segment 3 is short", largeEnd, SourceBody, 0, 3*s+107, ErrAuthentication, pt[:3*s]),
		rng("the true size: the whole plaintext", c, SourceBody, 0, 3*s+7, OK, pt),
		rng("the true size: a range across segments 1-3", c, SourceBody, s+5, 2*s, OK, pt[s+5:3*s+5]),
	}
	ra := func(note string, claimed int64, source, expect string) ReaderAt {
		return ReaderAt{Note: note, ClaimedSize: claimed, Source: source, Expect: expect}
	}
	v.ReaderAt = []ReaderAt{
		ra("too small (2 segments): segment 1 does not open as final", small, SourceBody, ErrAuthentication),
		ra("too small (3 segments, the last of 84 bytes)", smallMid, SourceBody, ErrAuthentication),
		ra("too small by 5 bytes", smallEnd, SourceBody, ErrAuthentication),
		ra("a size no writer produces", invalid, SourceBody, ErrAuthentication),
		ra("too large (5 segments): the claimed last segment is missing", large, SourceBody, ErrAuthentication),
		ra("too large (5 segments), zero-padded", large, SourceZeroPadded, ErrAuthentication),
		ra("too large by 100 bytes: segment 3 is short", largeEnd, SourceBody, ErrAuthentication),
		ra("too large by 100 bytes, zero-padded", largeEnd, SourceZeroPadded, ErrAuthentication),
		{Note: "the true size", ClaimedSize: c, Source: SourceBody, Expect: OK, PlaintextLength: int64(len(pt)), PlaintextSHA256: sum(pt)},
	}
	return v
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
