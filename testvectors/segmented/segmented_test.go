package segmented_test

// Each vector in vectors/ is checked twice: by the library (envelope.Decode,
// envelope.Open, OpenRange, NewReaderAt), and by specOpen and specRange
// below, a decoder written from docs/segmented-format.md with the standard
// library alone (it does not use internal/segment). Both must reach the
// recorded outcome and release exactly the recorded plaintext. A third test
// regenerates the vectors in process and requires the same bytes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/testvectors/segmented"
)

var sentinels = map[string]error{
	segmented.ErrAuthentication: envelope.ErrAuthentication,
	segmented.ErrMalformed:      envelope.ErrMalformed,
	segmented.ErrUnsupported:    envelope.ErrUnsupported,
}

// required are the vectors docs/segmented-format.md and the task name.
var required = []string{
	"ok_empty", "ok_one_byte", "ok_exact_segments", "ok_three_segments_plus_7",
	"no_final", "two_final", "trailing_data", "empty_final_after_data",
	"swapped_segments", "duplicated_segment", "segment_from_other_object",
	"wrong_commitment", "truncated_at_boundary", "truncated_mid_segment",
	"segment_size_changed", "object_id_changed", "wrong_version", "legacy_wrap",
	"bad_segment_size", "aws_fields_mixed", "length_lies",
}

type vector struct {
	segmented.Vector
	body []byte
}

func load(t *testing.T) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(segmented.Dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s/*.json: %v", segmented.Dir, err)
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
		if v.body, err = os.ReadFile(filepath.Join(segmented.Dir, v.Body)); err != nil {
			t.Fatal(err)
		}
		if int64(len(v.body)) != v.BodyLength || hexSum(v.body) != v.BodySHA256 {
			t.Fatalf("%s: body does not match its length or SHA-256", v.Name)
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

func (v *vector) keyring(t *testing.T) *keyring.AES {
	t.Helper()
	key, err := hex.DecodeString(v.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.NewAES(key, v.MasterKeyDescription)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// reporter is what the checks need of a test.
type reporter = testing.TB

// subtest runs check as the subtest name.
func subtest(t *testing.T, name string, check func(r reporter)) {
	t.Helper()
	t.Run(name, func(t *testing.T) { check(t) })
}

// checkOutcome compares an error with an expected outcome.
func checkOutcome(t reporter, what string, err error, expect string) {
	t.Helper()
	if expect == segmented.OK {
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

// drain reads r as io.ReadAll does, with small reads, hashing every byte
// released, including those returned beside an error.
func drain(r io.Reader) (*counter, error) {
	c := newCounter()
	buf := make([]byte, 1000)
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

func checkReleased(t reporter, what string, c *counter, n int64, sum string) {
	t.Helper()
	if c.n != n || c.sum() != sum {
		t.Errorf("%s: released %d bytes (SHA-256 %s), want %d (%s)", what, c.n, c.sum(), n, sum)
	}
}

// TestLibrary opens every vector with the library: Decode, Open with a zero
// Config, and the whole plaintext read both with small Reads and with
// io.Copy (WriteTo).
func TestLibrary(t *testing.T) {
	for _, v := range load(t) {
		t.Run(v.Name, func(t *testing.T) {
			ctx := context.Background()
			kr := v.keyring(t)
			env, err := format.Decode(v.Metadata, nil)
			if v.FailsAt == segmented.StageDecode {
				checkOutcome(t, "Decode", err, v.Expect)
				if v.ReleasedLength != 0 {
					t.Fatal("a decode failure releases nothing")
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if env.Format != envelope.FormatSegmented || env.SegmentSize <= 0 {
				t.Fatalf("decoded format %v, segment size %d", env.Format, env.SegmentSize)
			}
			for _, mode := range []struct {
				name string
				read func(io.Reader) (*counter, error)
			}{{"Read", drain}, {"WriteTo", copyOut}} {
				p, err := format.Open(ctx, env, kr, format.Config{}, bytes.NewReader(v.body))
				if v.FailsAt == segmented.StageOpen {
					checkOutcome(t, "Open", err, v.Expect)
					if p != nil {
						p.Close()
					}
					return
				}
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if p.Size() != -1 {
					t.Errorf("Size() = %d before the body is read, want -1", p.Size())
				}
				c, err := mode.read(p)
				p.Close()
				checkOutcome(t, mode.name, err, v.Expect)
				checkReleased(t, mode.name, c, v.ReleasedLength, v.ReleasedSHA256)
				if v.Expect == segmented.OK {
					checkReleased(t, mode.name+" (plaintext)", c, *v.PlaintextLength, v.PlaintextSHA256)
				}
			}
			if v.Expect == segmented.OK {
				checkReaderAtTrueSize(t, env, kr, &v)
			}
			checkRanges(t, env, kr, &v)
		})
	}
}

// checkReaderAtTrueSize reads an OK vector at random with its true size.
func checkReaderAtTrueSize(t *testing.T, env *format.Envelope, kr *keyring.AES, v *vector) {
	t.Helper()
	ra, err := format.NewReaderAt(context.Background(), env, kr, format.Config{}, bytes.NewReader(v.body), int64(len(v.body)))
	if err != nil {
		t.Fatalf("NewReaderAt: %v", err)
	}
	if ra.Size() != *v.PlaintextLength {
		t.Fatalf("ReaderAt.Size() = %d, want %d", ra.Size(), *v.PlaintextLength)
	}
	buf := make([]byte, ra.Size())
	if n, err := ra.ReadAt(buf, 0); n != len(buf) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if hexSum(buf) != v.PlaintextSHA256 {
		t.Fatal("ReadAt: plaintext differs")
	}
}

// source is what a server serves for a claimed body size.
func source(body []byte, mode string, claimed int64) []byte {
	switch mode {
	case segmented.SourceBody:
		return body
	case segmented.SourceZeroPadded:
		if claimed > int64(len(body)) {
			return append(slices.Clone(body), make([]byte, claimed-int64(len(body)))...)
		}
		return body
	}
	panic("unknown source " + mode)
}

// section is src's bytes [start, end), as far as src holds them.
func section(src []byte, start, end int64) []byte {
	l := int64(len(src))
	return src[min(start, l):min(end, l)]
}

// checkRanges reads a vector's Ranges through OpenRange and its ReaderAt
// cases through NewReaderAt.
func checkRanges(t *testing.T, env *format.Envelope, kr *keyring.AES, v *vector) {
	t.Helper()
	for i, r := range v.Ranges {
		subtest(t, fmt.Sprintf("ranges[%d]", i), func(t reporter) {
			checkRange(t, env, kr, v, r)
		})
	}
	for i, r := range v.ReaderAt {
		subtest(t, fmt.Sprintf("readerAt[%d]", i), func(t reporter) {
			checkReaderAt(t, env, kr, v, r)
		})
	}
}

// checkRange reads a range through OpenRange from the bytes a server holds
// for the claimed size.
func checkRange(t reporter, env *format.Envelope, kr *keyring.AES, v *vector, r segmented.Range) {
	ctx := context.Background()
	what := r.Note
	src := source(v.body, r.Source, r.ClaimedSize)
	start, end, err := env.CiphertextRange(r.ClaimedSize, r.Offset, r.Length)
	if err != nil {
		// Only a size no writer produces is refused before reading.
		checkOutcome(t, what+": CiphertextRange", err, r.Expect)
		p, err := format.OpenRange(ctx, env, kr, format.Config{}, bytes.NewReader(src), r.ClaimedSize, r.Offset, r.Length)
		checkOutcome(t, what+": OpenRange", err, r.Expect)
		if p != nil {
			p.Close()
		}
		if r.ReleasedLength != 0 {
			t.Errorf("%s: refused before reading, but %d bytes are expected", what, r.ReleasedLength)
		}
		return
	}
	if ss, se, ok := specSpan(env.SegmentSize, r.ClaimedSize, r.Offset, r.Length); !ok || ss != start || se != end {
		t.Errorf("%s: CiphertextRange = [%d, %d), the spec's is [%d, %d) (%v)", what, start, end, ss, se, ok)
	}
	for _, mode := range []struct {
		name string
		read func(io.Reader) (*counter, error)
	}{{"Read", drain}, {"WriteTo", copyOut}} {
		p, err := format.OpenRange(ctx, env, kr, format.Config{}, bytes.NewReader(section(src, start, end)), r.ClaimedSize, r.Offset, r.Length)
		if err != nil {
			t.Errorf("%s: OpenRange: %v", what, err)
			return
		}
		if p.Size() != r.Length {
			t.Errorf("%s: Size() = %d, want %d", what, p.Size(), r.Length)
		}
		c, err := mode.read(p)
		p.Close()
		checkOutcome(t, what+": "+mode.name, err, r.Expect)
		checkReleased(t, what+": "+mode.name, c, r.ReleasedLength, r.ReleasedSHA256)
	}
}

// checkReaderAt makes a NewReaderAt over the bytes a server holds for the
// claimed size.
func checkReaderAt(t reporter, env *format.Envelope, kr *keyring.AES, v *vector, r segmented.ReaderAt) {
	what := r.Note
	src := source(v.body, r.Source, r.ClaimedSize)
	ra, err := format.NewReaderAt(context.Background(), env, kr, format.Config{}, bytes.NewReader(src), r.ClaimedSize)
	checkOutcome(t, what+": NewReaderAt", err, r.Expect)
	if err != nil || r.Expect != segmented.OK {
		return
	}
	if ra.Size() != r.PlaintextLength {
		t.Errorf("%s: Size() = %d, want %d", what, ra.Size(), r.PlaintextLength)
	}
	buf := make([]byte, ra.Size())
	if n, err := ra.ReadAt(buf, 0); int64(n) != r.PlaintextLength || (err != nil && err != io.EOF) || hexSum(buf) != r.PlaintextSHA256 {
		t.Errorf("%s: ReadAt: %d bytes, %v", what, n, err)
	}
}

// TestSpec checks every vector with specOpen and specRange, decoders
// written from the specification with the standard library alone: the OK
// vectors' plaintext, and every vector's outcome, stage and released bytes.
func TestSpec(t *testing.T) {
	for _, v := range load(t) {
		t.Run(v.Name, func(t *testing.T) {
			key, _ := hex.DecodeString(v.MasterKey)
			released, outcome, stage := specOpen(v.Metadata, key, bytes.NewReader(v.body))
			if outcome != v.Expect || (outcome != segmented.OK && stage != v.FailsAt) {
				t.Errorf("spec decoder: %s at %s, want %s at %s", outcome, stage, v.Expect, v.FailsAt)
			}
			c := newCounter()
			c.Write(released)
			checkReleased(t, "spec decoder", c, v.ReleasedLength, v.ReleasedSHA256)
			if v.Expect == segmented.OK {
				checkReleased(t, "spec decoder (plaintext)", c, *v.PlaintextLength, v.PlaintextSHA256)
			}
			for i, r := range v.Ranges {
				what := fmt.Sprintf("range %d (%s)", i, r.Note)
				released, outcome := specRange(v.Metadata, key, source(v.body, r.Source, r.ClaimedSize), r.ClaimedSize, r.Offset, r.Length)
				if outcome != r.Expect {
					t.Errorf("%s: spec decoder: %s, want %s", what, outcome, r.Expect)
				}
				c := newCounter()
				c.Write(released)
				checkReleased(t, what+": spec decoder", c, r.ReleasedLength, r.ReleasedSHA256)
			}
			for i, r := range v.ReaderAt {
				what := fmt.Sprintf("readerAt %d (%s)", i, r.Note)
				p, outcome := specReaderAt(v.Metadata, key, source(v.body, r.Source, r.ClaimedSize), r.ClaimedSize)
				if outcome != r.Expect {
					t.Errorf("%s: spec decoder: %s, want %s", what, outcome, r.Expect)
				}
				if outcome == segmented.OK && (int64(len(p)) != r.PlaintextLength || hexSum(p) != r.PlaintextSHA256) {
					t.Errorf("%s: spec decoder: plaintext differs", what)
				}
			}
		})
	}
}

// TestReproducible regenerates the vectors in process: the files must be
// byte for byte those in vectors/, and vectors/ must hold nothing else.
func TestReproducible(t *testing.T) {
	files, err := segmented.Generate()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, f := range files {
		want[filepath.FromSlash(f.Path)] = true
		got, err := os.ReadFile(filepath.FromSlash(f.Path))
		if err != nil {
			t.Errorf("%s: %v (run: cd testvectors && go run ./segmented/cmd/genseg)", f.Path, err)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs from what the generator writes (run: cd testvectors && go run ./segmented/cmd/genseg)", f.Path)
		}
	}
	all, err := filepath.Glob(filepath.Join(segmented.Dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if !want[p] {
			t.Errorf("%s is not generated", p)
		}
	}
	// A second run in the same process makes the same bytes.
	again, err := segmented.Generate()
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
	if total := func() (n int) {
		for _, f := range files {
			n += len(f.Data)
		}
		return n
	}(); total >= 1<<20 {
		t.Errorf("the vectors take %d bytes; keep them under 1 MiB", total)
	}
}

// ---- A decoder from docs/segmented-format.md, standard library only. ----

const overhead = 16

// awsEnvelopeKeys are AWS's V1/V2/V3 envelope names, which a segmented
// envelope never holds.
var awsEnvelopeKeys = []string{
	"x-amz-key", "x-amz-key-v2", "x-amz-iv", "x-amz-matdesc", "x-amz-cek-alg",
	"x-amz-wrap-alg", "x-amz-tag-len", "x-amz-unencrypted-content-length",
	"x-amz-c", "x-amz-3", "x-amz-w", "x-amz-m", "x-amz-t", "x-amz-d", "x-amz-i",
}

// specKeys decodes and checks the metadata ("Stored metadata"), unwraps the
// data key (AES/GCM, binding S3ESEG1), checks the commitment ("Key
// schedule") and returns the segment size and content AEAD; on failure the
// outcome and stage.
func specKeys(meta map[string]string, masterKey []byte) (size int, aead cipher.AEAD, outcome, stage string) {
	m := map[string]string{}
	for k, v := range meta {
		m[strings.ToLower(k)] = v
	}
	dec := func(o string) (int, cipher.AEAD, string, string) { return 0, nil, o, segmented.StageDecode }
	for _, k := range awsEnvelopeKeys {
		if _, ok := m[k]; ok {
			return dec(segmented.ErrMalformed)
		}
	}
	switch v, ok := m["x-s3e-v"]; {
	case !ok:
		return dec(segmented.ErrMalformed)
	case v != "1":
		return dec(segmented.ErrUnsupported)
	}
	size, err := strconv.Atoi(m["x-s3e-s"])
	if err != nil || strconv.Itoa(size) != m["x-s3e-s"] || size < 4<<10 || size > 16<<20 || size&(size-1) != 0 {
		return dec(segmented.ErrMalformed)
	}
	if m["x-s3e-w"] != "AES/GCM" {
		// RSA-OAEP-SHA1 and kms+context are valid, but need other keys;
		// anything else is not a wrap of this format.
		return dec(segmented.ErrUnsupported)
	}
	b64 := func(k string, n int) []byte {
		b, err := base64.StdEncoding.DecodeString(m[k])
		if err != nil || (n > 0 && len(b) != n) || len(b) == 0 {
			return nil
		}
		return b
	}
	wrapped, objectID, commitment := b64("x-s3e-k", 0), b64("x-s3e-i", 32), b64("x-s3e-d", 32)
	if wrapped == nil || objectID == nil || commitment == nil || len(wrapped) < 12 {
		return dec(segmented.ErrMalformed)
	}
	fail := func() (int, cipher.AEAD, string, string) {
		return 0, nil, segmented.ErrAuthentication, segmented.StageOpen
	}
	mb, err := aes.NewCipher(masterKey)
	if err != nil {
		panic(err)
	}
	mg, _ := cipher.NewGCM(mb)
	dataKey, err := mg.Open(nil, wrapped[:12], wrapped[12:], []byte("S3ESEG1"))
	if err != nil || len(dataKey) != 32 {
		return fail()
	}
	prk, err := hkdf.Extract(sha512.New, dataKey, objectID)
	if err != nil {
		panic(err)
	}
	info := func(label string) string {
		return "s3envelope SEG1 " + label + string(binary.BigEndian.AppendUint32(nil, uint32(size)))
	}
	derived, _ := hkdf.Expand(sha512.New, prk, info("commit"), 32)
	if subtle.ConstantTimeCompare(derived, commitment) != 1 {
		return fail()
	}
	contentKey, _ := hkdf.Expand(sha512.New, prk, info("key"), 32)
	block, _ := aes.NewCipher(contentKey)
	aead, _ = cipher.NewGCM(block)
	return size, aead, segmented.OK, ""
}

// specSegment opens sealed segment i: nonce = BE88(i) || flag, empty AAD.
func specSegment(aead cipher.AEAD, sealed []byte, i int64, final bool) ([]byte, bool) {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce[3:11], uint64(i))
	if final {
		nonce[11] = 1
	}
	p, err := aead.Open(nil, nonce, sealed, nil)
	return p, err == nil
}

// specOpen reads a whole object as a stream ("Reading", whole object): it
// does not know the body's length, opens each segment in order as final
// iff it ends the body, releases each segment's plaintext once it opens,
// and refuses a final segment that is empty unless it is the only one.
func specOpen(meta map[string]string, masterKey []byte, body io.Reader) (released []byte, outcome, stage string) {
	size, aead, outcome, stage := specKeys(meta, masterKey)
	if outcome != segmented.OK {
		return nil, outcome, stage
	}
	br := bufio.NewReader(body)
	buf := make([]byte, size+overhead)
	for i := int64(0); ; i++ {
		n, err := io.ReadFull(br, buf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			panic(err)
		}
		last := n < len(buf)
		if !last {
			_, err := br.Peek(1)
			last = err == io.EOF
		}
		if last && (n < overhead || (n == overhead && i != 0)) {
			return released, segmented.ErrAuthentication, segmented.StageRead
		}
		p, ok := specSegment(aead, buf[:n], i, last)
		if !ok {
			return released, segmented.ErrAuthentication, segmented.StageRead
		}
		released = append(released, p...)
		if last {
			return released, segmented.OK, ""
		}
	}
}

// specSize is "Body"'s inverse: the segment count and plaintext size of a
// body of c bytes, or false for a length no writer produces.
func specSize(size int, c int64) (n, p int64, ok bool) {
	s := int64(size)
	n = (c + s + overhead - 1) / (s + overhead) // ceil(C / (S+16))
	p = c - overhead*n
	if n < 1 || p < 0 {
		return 0, 0, false
	}
	lastLen := p - (n-1)*s
	return n, p, (lastLen >= 1 && lastLen <= s) || (n == 1 && p == 0)
}

// specSpan is "Reading", range [a, b]: ciphertext bytes
// [⌊a/S⌋·(S+16), min((⌊b/S⌋+1)·(S+16), C)).
func specSpan(size int, c, off, length int64) (start, end int64, ok bool) {
	if _, p, ok := specSize(size, c); !ok || off < 0 || length <= 0 || off+length > p {
		return 0, 0, false
	}
	s := int64(size)
	a, b := off, off+length-1
	return a / s * (s + overhead), min((b/s+1)*(s+overhead), c), true
}

// specRange reads plaintext [off, off+length) of a body claimed to be c
// bytes long from src (what the server holds): it fetches the span, opens
// each segment i in it with the final flag iff i = n-1, each with exactly
// the length the claimed size gives it, and releases the requested part of
// each segment that opens.
func specRange(meta map[string]string, masterKey, src []byte, c, off, length int64) (released []byte, outcome string) {
	size, aead, outcome, _ := specKeys(meta, masterKey)
	if outcome != segmented.OK {
		return nil, outcome
	}
	n, _, ok := specSize(size, c)
	start, end, ok2 := specSpan(size, c, off, length)
	if !ok || !ok2 {
		return nil, segmented.ErrAuthentication
	}
	fetched := section(src, start, end)
	s, stride := int64(size), int64(size)+overhead
	for i := off / s; i <= (off+length-1)/s; i++ {
		segStart, segEnd := i*stride-start, min((i+1)*stride, c)-start
		if segEnd > int64(len(fetched)) {
			return released, segmented.ErrAuthentication // the source ends early
		}
		p, ok := specSegment(aead, fetched[segStart:segEnd], i, i == n-1)
		if !ok {
			return released, segmented.ErrAuthentication
		}
		lo, hi := max(off-i*s, 0), min(off+length-i*s, int64(len(p)))
		released = append(released, p[lo:hi]...)
	}
	return released, segmented.OK
}

// specReaderAt is "Reading", io.ReaderAt: the last segment by the claimed
// size is opened as final first; then the whole plaintext is read.
func specReaderAt(meta map[string]string, masterKey, src []byte, c int64) ([]byte, string) {
	size, aead, outcome, _ := specKeys(meta, masterKey)
	if outcome != segmented.OK {
		return nil, outcome
	}
	n, p, ok := specSize(size, c)
	if !ok {
		return nil, segmented.ErrAuthentication
	}
	stride := int64(size) + overhead
	last := section(src, (n-1)*stride, c)
	if int64(len(last)) != c-(n-1)*stride {
		return nil, segmented.ErrAuthentication
	}
	if _, ok := specSegment(aead, last, n-1, true); !ok {
		return nil, segmented.ErrAuthentication
	}
	if p == 0 {
		return []byte{}, segmented.OK
	}
	out, outcome := specRange(meta, masterKey, src, c, 0, p)
	return out, outcome
}
