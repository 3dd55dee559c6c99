package format_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	envelope "github.com/s3envelope/s3envelope/internal/format"
)

// TestTamperMatrix (issue 8) tampers with stored objects in every way a
// bucket writer can, over
//
//	format   V2, V3, segmented (4 KiB segments)
//	× wrap   every keyring of testKeyrings (AES/GCM, RSA-OAEP-SHA1)
//	× storage envelope in the object's metadata, or in an instruction file
//
// each combination sealing one object of 2 segments + 5 bytes (8197 bytes of
// plaintext), plus a second object of the same format and master key (8292
// bytes) to take values from. The cases, per combination:
//
//   - single-bit flips of the body, sampled: the body is cut into units —
//     each stored segment, or for V2/V3 each 4 KiB of content and then the
//     tag — and every bit of the first and last 64 bytes of each unit is
//     flipped (so every bit of every tag and of units up to 128 bytes), and
//     in between one bit in every 13 bytes, the bit number cycling with the
//     offset;
//   - single-bit flips of the wrapped key (every bit of AES/GCM's 60 bytes;
//     of RSA's 256, every bit of the first and last 16 bytes and one bit in
//     every 5 bytes in between), and of every bit of the IV, message ID,
//     object ID and commitment; plus those fields emptied, not base64, and
//     one byte short or long;
//   - each envelope value removed, one at a time, wherever it is stored;
//   - each envelope value swapped in from the other object, one at a time;
//     the whole envelope, the instruction file and the body swapped too;
//   - algorithm names and parameters replaced (CVE-2020-8912 downgrades),
//     with and without the legacy switches;
//   - an envelope turned into another format's (V3 → V2 stripping under each
//     policy, and V2/V3/segmented into each other);
//   - the body truncated, extended, its segments or 4 KiB blocks reordered,
//     dropped, duplicated, or spliced from the other object;
//   - the instruction file and the metadata in conflict.
//
// Every case states its expected outcome: an error that wraps the expected
// sentinel (and no other), or — only where the change is semantically
// irrelevant — the exact plaintext. The rule behind each expected error is
// in a comment where the case is made. For every case: nothing is released
// for V2/V3 (Open itself must fail); a segmented object releases exactly the
// whole segments before the fault (those equal to the original's at the
// same index with the same final flag: tmSegOpened), then fails; and no
// spool file is left, in the directory or open (Config.SpoolDir is the
// test's own and SpoolMemory is -1, so every V2/V3 open spools to a file).
//
// The unwrapper memoizes the keyring (tmMemo): the keyrings are
// deterministic and do not consult the description, so the result for the
// same (algorithm, content algorithm, wrapped key) is the same; each distinct
// wrapped key still goes through the real keyring once. That keeps RSA off
// the critical path, and the runtime near 9 s (21 s with -race) on two busy cores.
func TestTamperMatrix(t *testing.T) {
	start := time.Now()
	spoolDir := t.TempDir()
	realSpool, err := filepath.EvalSymlinks(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	r := &tmRunner{spool: realSpool, counts: map[error]int{}}
	goroutines := runtime.NumGoroutine()

	krs := testKeyrings(t)
	wraps := slices.Sorted(maps.Keys(krs))
	for _, wrap := range wraps {
		kr := krs[wrap]
		r.memo = &tmMemo{u: kr, m: map[string]tmUnwrapped{}}
		objs := map[envelope.Format]*tmSealed{}
		others := map[envelope.Format]*tmSealed{}
		for _, f := range allFormats {
			objs[f] = tmSeal(t, kr, f, tmPlainLen)
			others[f] = tmSeal(t, kr, f, tmOtherLen)
		}
		for _, f := range allFormats {
			for _, instr := range []bool{false, true} {
				o := objs[f].object(wrap, instr)
				other := others[f].object(wrap, instr)
				g := &tmGen{t: t, o: o, other: other, objs: objs, cfg: tmConfig(f, spoolDir)}
				g.generate()
				for _, c := range g.cases {
					r.run(o, c, tmConfig(f, spoolDir))
				}
			}
		}
	}

	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		r.fail("goroutines: %d before the matrix, %d after", goroutines, n)
	}

	var per []string
	for _, e := range tmSentinels {
		if n := r.counts[e]; n > 0 {
			per = append(per, fmt.Sprintf("%s %d", tmErrName(e), n))
		}
	}
	verdict := "all rejected as expected"
	if len(r.failures) > 0 {
		verdict = fmt.Sprintf("%d MISBEHAVED", r.bad)
	}
	t.Logf("tamper matrix: %d cases (%d formats × %d wraps × 2 storages), %s (%s; %d opened to the exact plaintext: unchanged or semantically irrelevant), %d plaintext bytes released unauthenticated (%d bytes of verified segments released before a fault), %d spool files left, in %v",
		r.total, len(allFormats), len(wraps), verdict, strings.Join(per, ", "), r.opened, r.unauth, r.verified, r.leaks, time.Since(start).Round(10*time.Millisecond))
	for i, f := range r.failures {
		if i == 20 {
			t.Errorf("… and %d more", len(r.failures)-20)
			break
		}
		t.Error(f)
	}
}

const (
	tmPlainLen = 2*testSegment + 5
	tmOtherLen = 2*testSegment + 100
	tmStride   = testSegment + envelope.SegmentOverhead
)

// tmSentinels are every sentinel error of the package; a failure wraps
// exactly one.
var tmSentinels = []error{
	envelope.ErrAuthentication, envelope.ErrMalformed, envelope.ErrUnsupported, envelope.ErrDisallowed,
	envelope.ErrPolicy, envelope.ErrNoEnvelope, envelope.ErrNoMasterKey, envelope.ErrTooLarge,
	envelope.ErrInvalidRange, envelope.ErrWrapOnly,
}

func tmErrName(e error) string {
	switch e {
	case nil:
		return "success"
	case envelope.ErrAuthentication:
		return "ErrAuthentication"
	case envelope.ErrMalformed:
		return "ErrMalformed"
	case envelope.ErrUnsupported:
		return "ErrUnsupported"
	case envelope.ErrDisallowed:
		return "ErrDisallowed"
	case envelope.ErrPolicy:
		return "ErrPolicy"
	case envelope.ErrNoEnvelope:
		return "ErrNoEnvelope"
	case envelope.ErrNoMasterKey:
		return "ErrNoMasterKey"
	case envelope.ErrTooLarge:
		return "ErrTooLarge"
	case envelope.ErrInvalidRange:
		return "ErrInvalidRange"
	case envelope.ErrWrapOnly:
		return "ErrWrapOnly"
	}
	return e.Error()
}

// tmConfig is what each format is read with; a case may change it.
func tmConfig(f envelope.Format, spool string) envelope.Config {
	c := configFor(f)
	if f == envelope.FormatSegmented {
		c = segConfig()
	}
	c.SpoolDir, c.SpoolMemory = spool, -1
	return c
}

// tmOnObject are the fields a format keeps in the object's metadata when
// the rest of its envelope is in an instruction file.
func tmOnObject(f envelope.Format) []string {
	switch f {
	case envelope.FormatV3:
		return []string{"x-amz-c", "x-amz-d", "x-amz-i"}
	case envelope.FormatSegmented:
		return []string{"x-s3e-v", "x-s3e-s", "x-s3e-i", "x-s3e-d"}
	}
	return nil
}

// tmFields names a format's envelope fields.
type tmFields struct {
	key, wrap, desc string
	nonces          []string // IV, message ID or object ID, and commitment
}

func tmFieldsOf(f envelope.Format) tmFields {
	switch f {
	case envelope.FormatV2:
		return tmFields{"x-amz-key-v2", "x-amz-wrap-alg", "x-amz-matdesc", []string{"x-amz-iv"}}
	case envelope.FormatV3:
		return tmFields{"x-amz-3", "x-amz-w", "x-amz-m", []string{"x-amz-i", "x-amz-d"}}
	}
	return tmFields{"x-s3e-k", "x-s3e-w", "x-s3e-m", []string{"x-s3e-i", "x-s3e-d"}}
}

// tmMemo memoizes an Unwrapper (see TestTamperMatrix). It returns a fresh
// copy of the data key each time, as Open clears it.
type tmMemo struct {
	u envelope.Unwrapper
	m map[string]tmUnwrapped
}

type tmUnwrapped struct {
	key []byte
	err error
}

func (m *tmMemo) Unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
	k := w.Algorithm + "\x00" + contentAlg + "\x00" + string(w.Ciphertext)
	r, ok := m.m[k]
	if !ok {
		key, err := m.u.Unwrap(ctx, w, contentAlg)
		r = tmUnwrapped{bytes.Clone(key), err}
		m.m[k] = r
	}
	if r.err != nil {
		return nil, r.err
	}
	return bytes.Clone(r.key), nil
}

// tmSealed is one sealed object in both storage forms, from one envelope.
type tmSealed struct {
	format    envelope.Format
	plain     []byte
	body      []byte
	metaForm  map[string]string // the whole envelope as metadata
	objForm   map[string]string // the object's metadata with an instruction file
	insForm   map[string]string // the instruction file's fields
	insRaw    []byte            // the instruction file as written
	keyBytes  []byte
	wrapAlg   string
	desc      string
	iv        []byte // V2
	messageID []byte // V3
	objectID  []byte // segmented
	commit    []byte // V3, segmented
}

func tmSeal(t *testing.T, kr envelope.Wrapper, f envelope.Format, n int) *tmSealed {
	t.Helper()
	cfg := tmConfig(f, "")
	plain := random(n)
	s, err := envelope.NewSealer(context.Background(), kr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Envelope()
	e.PlaintextLength = int64(n)
	body, err := io.ReadAll(s.Seal(bytes.NewReader(plain)))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := e.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	obj, raw, err := e.Instruction()
	if err != nil {
		t.Fatal(err)
	}
	ins, err := envelope.ParseInstruction(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &tmSealed{
		format: f, plain: plain, body: body, metaForm: meta, objForm: obj, insForm: ins, insRaw: raw,
		keyBytes: e.Key.Ciphertext, wrapAlg: e.Key.Algorithm, desc: envelope.EncodeDescription(e.Key.Description),
		iv: e.IV, messageID: e.MessageID, objectID: e.ObjectID, commit: e.Commitment,
	}
}

func (s *tmSealed) object(wrap string, instr bool) *tmObject {
	o := &tmObject{sealed: s, format: s.format, wrap: wrap, instr: instr, plain: s.plain, body: s.body}
	if instr {
		o.st = tmStored{meta: clone(s.objForm), ins: clone(s.insForm)}
	} else {
		o.st = tmStored{meta: clone(s.metaForm)}
	}
	return o
}

// tmObject is a sealed object in one storage form: what the matrix tampers
// with.
type tmObject struct {
	sealed *tmSealed
	format envelope.Format
	wrap   string
	instr  bool
	plain  []byte
	body   []byte
	st     tmStored
}

func (o *tmObject) String() string {
	s := "metadata"
	if o.instr {
		s = "instruction"
	}
	return fmt.Sprintf("%v/%s/%s", o.format, o.wrap, s)
}

// tmStored is an object's stored envelope: its metadata and its
// instruction file (nil: none).
type tmStored struct {
	meta map[string]string
	ins  map[string]string
	raw  []byte // the instruction file's bytes, verbatim, when set
}

func (s tmStored) clone() tmStored {
	c := tmStored{meta: clone(s.meta), raw: bytes.Clone(s.raw)}
	if s.ins != nil {
		c.ins = clone(s.ins)
	}
	return c
}

func (s tmStored) instruction() []byte {
	if s.raw != nil {
		return s.raw
	}
	if s.ins == nil {
		return nil
	}
	b, err := json.Marshal(s.ins)
	if err != nil {
		panic(err)
	}
	return b
}

func (s tmStored) get(k string) (string, bool) {
	if v, ok := s.meta[k]; ok {
		return v, true
	}
	v, ok := s.ins[k]
	return v, ok
}

// tmKey is a stored field and where it is.
type tmKey struct {
	name  string
	inIns bool
}

func (k tmKey) String() string {
	if k.inIns {
		return "instruction " + k.name
	}
	return "metadata " + k.name
}

func (s tmStored) keys() []tmKey {
	var out []tmKey
	for _, k := range slices.Sorted(maps.Keys(s.meta)) {
		out = append(out, tmKey{k, false})
	}
	for _, k := range slices.Sorted(maps.Keys(s.ins)) {
		out = append(out, tmKey{k, true})
	}
	return out
}

// set sets field k where it is stored; a new field goes where the format
// stores it (an instruction file holds all but tmOnObject).
func (o *tmObject) set(s tmStored, k, v string) tmStored {
	s = s.clone()
	_, inMeta := s.meta[k]
	_, inIns := s.ins[k]
	switch {
	case inMeta:
		s.meta[k] = v
	case inIns, s.ins != nil && !slices.Contains(tmOnObject(o.format), k):
		s.ins[k] = v
	default:
		s.meta[k] = v
	}
	return s
}

func (o *tmObject) del(s tmStored, k string) tmStored {
	s = s.clone()
	delete(s.meta, k)
	delete(s.ins, k)
	return s
}

// tmCase is one tampered object and what must come of it.
type tmCase struct {
	name  string
	st    tmStored
	body  []byte
	plain []byte           // the true plaintext of body (nil: the object's)
	cfg   *envelope.Config // nil: the format's
	want  error            // nil: opens to the exact plaintext
	// release is how many plaintext bytes a segmented object releases
	// before the fault: its whole segments that still open.
	release int
}

// tmSegOpened returns how many leading segments of body open under the
// original's key: those equal, byte for byte, to the original's segment at
// the same index with the same final flag (the nonce binds both), cut as a
// reader cuts them.
func tmSegOpened(orig, body []byte) int {
	split := func(b []byte) [][]byte {
		var s [][]byte
		for len(b) > tmStride {
			s = append(s, b[:tmStride])
			b = b[tmStride:]
		}
		return append(s, b)
	}
	so, sb := split(orig), split(body)
	n := 0
	for n < len(so) && n < len(sb) && bytes.Equal(so[n], sb[n]) && (n == len(so)-1) == (n == len(sb)-1) {
		n++
	}
	return n
}

// tmGen generates the cases of one combination.
type tmGen struct {
	t     *testing.T
	o     *tmObject
	other *tmObject
	objs  map[envelope.Format]*tmSealed
	cfg   envelope.Config
	cases []tmCase
}

// add adds an envelope case: the original body, nothing released.
func (g *tmGen) add(name string, st tmStored, want error) {
	g.cases = append(g.cases, tmCase{name: name, st: st, body: g.o.body, want: want})
}

func (g *tmGen) addCfg(name string, st tmStored, cfg envelope.Config, want error) {
	g.cases = append(g.cases, tmCase{name: name, st: st, body: g.o.body, cfg: &cfg, want: want})
}

// addBody adds a body case under the original envelope: every body that is
// not the original fails with ErrAuthentication (the tag, or for segmented
// objects the segment at the fault, does not open), after, for a segmented
// object, the whole segments before the fault.
func (g *tmGen) addBody(name string, body []byte) {
	if bytes.Equal(body, g.o.body) {
		g.t.Fatalf("%v: body case %s leaves the body unchanged", g.o, name)
	}
	c := tmCase{name: name, st: g.o.st, body: body, want: envelope.ErrAuthentication}
	if g.o.format == envelope.FormatSegmented {
		c.release = tmSegOpened(g.o.body, body) * testSegment
	}
	g.cases = append(g.cases, c)
}

func (g *tmGen) generate() {
	o := g.o
	g.add("unchanged", o.st, nil)
	if o.instr {
		st := o.st.clone()
		st.raw = o.sealed.insRaw
		g.add("unchanged, instruction file as written", st, nil)
	}
	g.bodyBits()
	g.fieldBits()
	g.removals()
	g.swaps()
	g.algorithms()
	g.crossFormat()
	g.bodies()
	g.conflicts()
}

// bodyBits flips sampled single bits of the body (see TestTamperMatrix).
func (g *tmGen) bodyBits() {
	body := g.o.body
	type unit struct{ a, b int }
	var units []unit
	if g.o.format == envelope.FormatSegmented {
		for a := 0; a < len(body); a += tmStride {
			units = append(units, unit{a, min(a+tmStride, len(body))})
		}
	} else {
		content := len(body) - envelope.TagSize
		for a := 0; a < content; a += testSegment {
			units = append(units, unit{a, min(a+testSegment, content)})
		}
		units = append(units, unit{content, len(body)})
	}
	for _, u := range units {
		for i := u.a; i < u.b; i++ {
			var bits []int
			switch {
			case i < u.a+64 || i >= u.b-64:
				bits = []int{0, 1, 2, 3, 4, 5, 6, 7}
			case (i-u.a)%13 == 0:
				bits = []int{i % 8}
			}
			for _, bit := range bits {
				b := bytes.Clone(body)
				b[i] ^= 1 << bit
				g.addBody(fmt.Sprintf("body byte %d bit %d", i, bit), b)
			}
		}
	}
}

// fieldBits flips single bits of the wrapped key, IV, message ID, object ID
// and commitment, and breaks their length and encoding.
func (g *tmGen) fieldBits() {
	o := g.o
	fs := tmFieldsOf(o.format)
	enc := base64.StdEncoding.EncodeToString
	for _, field := range append([]string{fs.key}, fs.nonces...) {
		v, _ := o.st.get(field)
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			g.t.Fatal(err)
		}
		for i := range raw {
			// Every bit, except in the middle of an RSA-wrapped key.
			if len(raw) > 64 && i >= 16 && i < len(raw)-16 && (i-16)%5 != 0 {
				continue
			}
			bits := []int{0, 1, 2, 3, 4, 5, 6, 7}
			if len(raw) > 64 && i >= 16 && i < len(raw)-16 {
				bits = []int{i % 8}
			}
			for _, bit := range bits {
				b := bytes.Clone(raw)
				b[i] ^= 1 << bit
				// A flipped wrapped key does not unwrap; a flipped IV
				// breaks the tag; a flipped message ID, object ID or
				// commitment breaks the key commitment.
				g.add(fmt.Sprintf("%s byte %d bit %d", field, i, bit), o.set(o.st, field, enc(b)), envelope.ErrAuthentication)
			}
		}
		// The wrapped key's length is the keyring's business: one byte off
		// does not unwrap (ErrAuthentication). The other fields have fixed
		// sizes that Decode checks (ErrMalformed).
		wantLen := envelope.ErrMalformed
		if field == fs.key {
			wantLen = envelope.ErrAuthentication
		}
		g.add(field+" one byte short", o.set(o.st, field, enc(raw[:len(raw)-1])), wantLen)
		g.add(field+" one byte long", o.set(o.st, field, enc(append(bytes.Clone(raw), 0))), wantLen)
		// Empty and non-base64 values are malformed whatever the field.
		g.add(field+" empty", o.set(o.st, field, ""), envelope.ErrMalformed)
		g.add(field+" not base64", o.set(o.st, field, "!"+v[1:]), envelope.ErrMalformed)
		g.add(field+" base64 cut", o.set(o.st, field, v[:len(v)-2]), envelope.ErrMalformed)
	}
}

// removals removes each stored field, one at a time.
//
// Rules: the description (x-amz-matdesc, x-amz-m, x-s3e-m) only selects
// the master key, and the keyrings do not consult it, so without it the
// object opens; x-amz-unencrypted-content-length is an unauthenticated
// hint, checked only when present, so without it the object opens. Every
// other field is required: ErrMalformed, and so is the wrapped key itself:
// metadata with envelope fields but no wrapped key (and no instruction
// file), or an instruction file without one, is a damaged envelope, never
// ErrNoEnvelope, which errors.go keeps for objects that carry no envelope
// field at all (a caller may serve those as they are).
func (g *tmGen) removals() {
	o := g.o
	fs := tmFieldsOf(o.format)
	for _, k := range o.st.keys() {
		want := envelope.ErrMalformed
		switch {
		case k.name == fs.desc, k.name == "x-amz-unencrypted-content-length":
			want = nil
		}
		g.add("without "+k.String(), o.del(o.st, k.name), want)
	}
	if o.instr {
		// The instruction file gone: V2 keeps nothing on the object, so it
		// is an object without an envelope; V3's x-amz-c and the segmented
		// x-s3e-v on the object say an instruction file is missing.
		st := o.st.clone()
		st.ins = nil
		want := envelope.ErrMalformed
		if o.format == envelope.FormatV2 {
			want = envelope.ErrNoEnvelope
		}
		g.add("instruction file deleted", st, want)
		// An instruction file that exists but holds no envelope, or is
		// not a JSON object of strings: malformed.
		st.ins = map[string]string{}
		g.add("instruction file emptied ({})", st, envelope.ErrMalformed)
		for _, raw := range []string{"", "{", "null", "[]", `{"` + fs.key + `":{}}`} {
			st := o.st.clone()
			st.raw = []byte(raw)
			g.add(fmt.Sprintf("instruction file %q", raw), st, envelope.ErrMalformed)
		}
	}
}

// swaps swaps in the other object's value of each field, one at a time, and
// then the whole envelope, instruction file and body.
//
// Rules: an identical value (algorithm names, the description, the segment
// size) changes nothing and the object opens. Another wrapped key unwraps
// (same master key) to another data key: for V2 the tag then fails, for V3
// and segmented objects the key commitment (ErrAuthentication); so do
// another IV, message ID, object ID or commitment. Another
// x-amz-unencrypted-content-length passes authentication but not the check
// against the body: ErrMalformed, still before anything is released.
func (g *tmGen) swaps() {
	o, other := g.o, g.other
	fs := tmFieldsOf(o.format)
	for _, k := range o.st.keys() {
		v, _ := o.st.get(k.name)
		ov, ok := other.st.get(k.name)
		if !ok {
			g.t.Fatalf("%v: the other object has no %s", o, k)
		}
		var want error
		switch {
		case ov == v:
			want = nil
		case k.name == fs.key || slices.Contains(fs.nonces, k.name):
			want = envelope.ErrAuthentication
		case k.name == "x-amz-unencrypted-content-length":
			want = envelope.ErrMalformed
		default:
			g.t.Fatalf("%v: %s differs between two objects: %q, %q", o, k, v, ov)
		}
		g.add("other object's "+k.String(), o.set(o.st, k.name, ov), want)
	}
	// The key schedule moved together: still the wrong key for this body.
	st := o.st
	for _, k := range append([]string{fs.key}, fs.nonces...) {
		ov, _ := other.st.get(k)
		st = o.set(st, k, ov)
	}
	g.add("other object's wrapped key and nonces", st, envelope.ErrAuthentication)
	g.add("other object's whole envelope", other.st.clone(), envelope.ErrAuthentication)
	if o.instr {
		st := o.st.clone()
		st.ins = clone(other.st.ins)
		g.add("other object's instruction file", st, envelope.ErrAuthentication)
	}
	// The other object's body under this envelope: the wrong key for it.
	// (Its true plaintext is the other object's, none of which may come
	// out; for a segmented object no segment opens.)
	g.cases = append(g.cases, tmCase{name: "other object's body", st: o.st, body: other.body, plain: other.plain, want: envelope.ErrAuthentication})
}

// algorithms replaces algorithm names and parameters (CVE-2020-8912).
func (g *tmGen) algorithms() {
	o := g.o
	legacyWrap := g.cfg
	legacyWrap.EnableLegacyWrappingAlgorithms = true
	legacyUnauth := g.cfg
	legacyUnauth.EnableLegacyUnauthenticatedModes = true
	otherWrap := envelope.WrapRSAOAEPSHA1
	otherCode := "22"
	if o.wrap == envelope.WrapRSAOAEPSHA1 {
		otherWrap, otherCode = envelope.WrapAESGCM, "02"
	}
	legacy := []string{envelope.WrapLegacyAESWrap, envelope.WrapLegacyKMS, envelope.WrapLegacyAES, envelope.WrapLegacyRSA, envelope.WrapLegacyRSAOAEPSHA256}
	// mine reports whether the test's keyring implements a legacy wrap.
	mine := func(alg string) bool {
		if o.wrap == envelope.WrapAESGCM {
			return alg == envelope.WrapLegacyAESWrap || alg == envelope.WrapLegacyAES
		}
		return alg == envelope.WrapLegacyRSA || alg == envelope.WrapLegacyRSAOAEPSHA256
	}
	set := func(k, v string) tmStored { return o.set(o.st, k, v) }
	switch o.format {
	case envelope.FormatV2:
		// A content algorithm other than AES/GCM/NoPadding and AES/CBC is
		// never accepted from storage: ErrUnsupported (AES/CTR is
		// CVE-2020-8912); an absent one is malformed.
		for _, v := range []string{"AES/CTR/NoPadding", "aes/gcm/nopadding", envelope.ContentAESGCMCommit, envelope.ContentSegmented, "AES/GCM/NoPadding "} {
			g.add("x-amz-cek-alg "+v, set("x-amz-cek-alg", v), envelope.ErrUnsupported)
		}
		g.add("x-amz-cek-alg empty", set("x-amz-cek-alg", ""), envelope.ErrMalformed)
		// AES/CBC needs a 16-byte IV: with the 12-byte GCM IV, malformed.
		g.add("x-amz-cek-alg AES/CBC/PKCS5Padding", set("x-amz-cek-alg", envelope.ContentAESCBC), envelope.ErrMalformed)
		g.addCfg("x-amz-cek-alg AES/CBC/PKCS5Padding, legacy modes on", set("x-amz-cek-alg", envelope.ContentAESCBC), legacyUnauth, envelope.ErrMalformed)
		// With a 16-byte IV it decodes; reading CBC needs the legacy
		// switch (ErrDisallowed), and with it the wrap, bound to
		// AES/GCM/NoPadding, refuses to unwrap for AES/CBC
		// (ErrAuthentication).
		cbc := set("x-amz-cek-alg", envelope.ContentAESCBC)
		cbc = o.set(cbc, "x-amz-iv", base64.StdEncoding.EncodeToString(append(bytes.Clone(o.sealed.iv), 0, 0, 0, 0)))
		g.add("AES/CBC with a 16-byte IV", cbc, envelope.ErrDisallowed)
		g.addCfg("AES/CBC with a 16-byte IV, legacy unauthenticated modes on", cbc, legacyUnauth, envelope.ErrAuthentication)
		// Legacy wraps are refused by default (ErrDisallowed). Allowed,
		// the keyring either does not implement them (ErrUnsupported) or
		// fails to unwrap this key with them (ErrAuthentication).
		for _, v := range legacy {
			g.add("x-amz-wrap-alg "+v, set("x-amz-wrap-alg", v), envelope.ErrDisallowed)
			want := envelope.ErrUnsupported
			if mine(v) {
				want = envelope.ErrAuthentication
			}
			g.addCfg("x-amz-wrap-alg "+v+", legacy wraps on", set("x-amz-wrap-alg", v), legacyWrap, want)
		}
		// Another current wrap: not the keyring's (ErrUnsupported).
		g.add("x-amz-wrap-alg "+otherWrap, set("x-amz-wrap-alg", otherWrap), envelope.ErrUnsupported)
		g.add("x-amz-wrap-alg kms+context", set("x-amz-wrap-alg", envelope.WrapKMSContext), envelope.ErrUnsupported)
		g.add("x-amz-wrap-alg ROT13", set("x-amz-wrap-alg", "ROT13"), envelope.ErrUnsupported)
		g.add("x-amz-wrap-alg empty", set("x-amz-wrap-alg", ""), envelope.ErrMalformed)
		// The tag length must be 128.
		for _, v := range []string{"96", "120", "0128", ""} {
			g.add(fmt.Sprintf("x-amz-tag-len %q", v), set("x-amz-tag-len", v), envelope.ErrMalformed)
		}
		// A wrong length fails the check against the authenticated body, a
		// non-length fails Decode: ErrMalformed. An empty one is absent
		// (as AWS's Go v4 client stores it), and the right length written
		// another way is the same number: both open.
		for _, v := range []string{fmt.Sprint(tmPlainLen - 1), fmt.Sprint(tmPlainLen + 1), "0", "-1", "x", "8197.0"} {
			g.add(fmt.Sprintf("x-amz-unencrypted-content-length %q", v), set("x-amz-unencrypted-content-length", v), envelope.ErrMalformed)
		}
		for _, v := range []string{"", "+8197", "08197"} {
			g.add(fmt.Sprintf("x-amz-unencrypted-content-length %q", v), set("x-amz-unencrypted-content-length", v), nil)
		}
	case envelope.FormatV3:
		// Only suite 115 exists: ErrUnsupported.
		for _, v := range []string{"114", "116", "0115", envelope.ContentAESGCM, envelope.ContentSegmented, ""} {
			g.add(fmt.Sprintf("x-amz-c %q", v), set("x-amz-c", v), envelope.ErrUnsupported)
		}
		// Unknown wrap codes: ErrUnsupported at Decode; known ones that
		// are not the keyring's: ErrUnsupported from the keyring.
		for _, v := range []string{"12", otherCode, "99", "2", ""} {
			g.add(fmt.Sprintf("x-amz-w %q", v), set("x-amz-w", v), envelope.ErrUnsupported)
		}
		g.addCfg("x-amz-w 12, legacy wraps on", set("x-amz-w", "12"), legacyWrap, envelope.ErrUnsupported)
		// A stored length that the body contradicts: ErrMalformed.
		g.add("x-amz-unencrypted-content-length wrong", set("x-amz-unencrypted-content-length", fmt.Sprint(tmPlainLen-1)), envelope.ErrMalformed)
	case envelope.FormatSegmented:
		// Legacy wraps bind no content algorithm and never go with this
		// format, whatever the switches: ErrUnsupported at Decode; so are
		// unknown ones; known wraps not the keyring's: from the keyring.
		for _, v := range append(legacy, "ROT13", "") {
			g.add(fmt.Sprintf("x-s3e-w %q", v), set("x-s3e-w", v), envelope.ErrUnsupported)
			g.addCfg(fmt.Sprintf("x-s3e-w %q, legacy wraps on", v), set("x-s3e-w", v), legacyWrap, envelope.ErrUnsupported)
		}
		g.add("x-s3e-w "+otherWrap, set("x-s3e-w", otherWrap), envelope.ErrUnsupported)
		g.add("x-s3e-w kms+context", set("x-s3e-w", envelope.WrapKMSContext), envelope.ErrUnsupported)
		// Only version 1 exists (a downgrade to a "2" is refused).
		for _, v := range []string{"2", "0", "01", ""} {
			g.add(fmt.Sprintf("x-s3e-v %q", v), set("x-s3e-v", v), envelope.ErrUnsupported)
		}
		// Another valid segment size decodes, but the commitment binds the
		// size (ErrAuthentication); an invalid one is malformed.
		for _, v := range []string{"8192", "16384", "16777216"} {
			g.add("x-s3e-s "+v, set("x-s3e-s", v), envelope.ErrAuthentication)
		}
		for _, v := range []string{"2048", "4097", "04096", "", "-4096", "33554432"} {
			g.add(fmt.Sprintf("x-s3e-s %q", v), set("x-s3e-s", v), envelope.ErrMalformed)
		}
	}
	// The description selects the master key only; the keyrings do not
	// consult it: another one changes nothing. One that is not a JSON
	// object of strings is malformed.
	fs := tmFieldsOf(o.format)
	g.add(fs.desc+" of another key", set(fs.desc, `{"kid":"someone else"}`), nil)
	g.add(fs.desc+" not JSON", set(fs.desc, "{"), envelope.ErrMalformed)
	g.add(fs.desc+" not strings", set(fs.desc, `{"kid":1}`), envelope.ErrMalformed)
	// Another format's fields beside the envelope: ErrMalformed (each
	// decoder refuses the others' fields; two wrapped keys are refused).
	foreign := map[envelope.Format][]string{
		envelope.FormatV2:        {"x-amz-c", "x-amz-w", "x-amz-d", "x-amz-i", "x-amz-3", "x-s3e-v", "x-s3e-k", "x-s3e-d"},
		envelope.FormatV3:        {"x-amz-iv", "x-amz-cek-alg", "x-amz-wrap-alg", "x-amz-tag-len", "x-amz-matdesc", "x-amz-key-v2", "x-s3e-v", "x-s3e-k"},
		envelope.FormatSegmented: {"x-amz-iv", "x-amz-c", "x-amz-d", "x-amz-matdesc", "x-amz-unencrypted-content-length", "x-amz-key-v2", "x-amz-3"},
	}[o.format]
	for _, k := range foreign {
		v := g.foreignValue(k)
		g.add("with another format's "+k, set(k, v), envelope.ErrMalformed)
	}
}

// foreignValue is a plausible value for field k, from this wrap's object of
// the format k belongs to.
func (g *tmGen) foreignValue(k string) string {
	for _, f := range allFormats {
		if v, ok := g.objs[f].metaForm[k]; ok {
			return v
		}
	}
	g.t.Fatalf("no format stores %s", k)
	return ""
}

// crossFormat rewrites the envelope as another format's, with the same
// wrapped key and what nonce material there is: V3 stripped to V2 (the
// issue's case), and every other pair.
//
// Rules: every wrap binds the content algorithm it was made for, so the
// data key does not unwrap for another format's (ErrAuthentication) — the
// only protection when the reader's policy allows V2. Under the default
// policy, RequireEncryptRequireDecrypt, V2-looking metadata is refused
// first (ErrPolicy). A V2 envelope that keeps V3's x-amz-c/d/i beside it —
// in metadata, or on an object whose instruction file is V2 — is malformed,
// before any key is unwrapped.
func (g *tmGen) crossFormat() {
	o := g.o
	s := o.sealed
	enc := base64.StdEncoding.EncodeToString
	pad := func(b []byte, n int) []byte {
		return append(bytes.Clone(b[:min(len(b), n)]), make([]byte, max(0, n-len(b)))...)
	}
	code := "02"
	if s.wrapAlg == envelope.WrapRSAOAEPSHA1 {
		code = "22"
	}
	// Nonce material of the source: 12, 28 and 32 bytes of it.
	var nonce, commit []byte
	switch o.format {
	case envelope.FormatV2:
		nonce, commit = s.iv, random(32)
	case envelope.FormatV3:
		nonce, commit = s.messageID, s.commit
	default:
		nonce, commit = s.objectID, s.commit
	}
	key := enc(s.keyBytes)
	asV2 := func(iv []byte) map[string]string {
		return map[string]string{"x-amz-key-v2": key, "x-amz-iv": enc(iv), "x-amz-cek-alg": envelope.ContentAESGCM,
			"x-amz-wrap-alg": s.wrapAlg, "x-amz-tag-len": "128", "x-amz-matdesc": s.desc}
	}
	asV3 := map[string]string{"x-amz-c": envelope.ContentAESGCMCommit, "x-amz-3": key, "x-amz-w": code, "x-amz-m": s.desc,
		"x-amz-i": enc(pad(nonce, envelope.MessageIDSize)), "x-amz-d": enc(pad(commit, envelope.CommitmentSize))}
	asSeg := map[string]string{"x-s3e-v": "1", "x-s3e-s": fmt.Sprint(testSegment), "x-s3e-k": key, "x-s3e-w": s.wrapAlg, "x-s3e-m": s.desc,
		"x-s3e-i": enc(pad(nonce, envelope.ObjectIDSize)), "x-s3e-d": enc(pad(commit, envelope.SegmentCommitmentSize))}
	// stored splits a target envelope as the target format stores it.
	stored := func(target envelope.Format, m map[string]string, onObject map[string]string) tmStored {
		if !o.instr {
			m = clone(m)
			maps.Copy(m, onObject)
			return tmStored{meta: m}
		}
		st := tmStored{meta: clone(onObject), ins: clone(m)}
		for _, k := range tmOnObject(target) {
			if v, ok := st.ins[k]; ok {
				st.meta[k] = v
				delete(st.ins, k)
			}
		}
		return st
	}
	policies := []envelope.CommitmentPolicy{envelope.RequireEncryptRequireDecrypt, envelope.RequireEncryptAllowDecrypt, envelope.ForbidEncryptAllowDecrypt}
	toV2 := func(name string, m map[string]string, onObject map[string]string, keptV3 bool) {
		for _, p := range policies {
			cfg := g.cfg
			cfg.CommitmentPolicy = p
			want := envelope.ErrAuthentication
			switch {
			case keptV3:
				want = envelope.ErrMalformed
			case p == envelope.RequireEncryptRequireDecrypt:
				want = envelope.ErrPolicy
			}
			g.addCfg(fmt.Sprintf("%s, %v", name, p), stored(envelope.FormatV2, m, onObject), cfg, want)
		}
	}
	switch o.format {
	case envelope.FormatV3:
		onV3 := map[string]string{"x-amz-c": s.metaForm["x-amz-c"], "x-amz-d": s.metaForm["x-amz-d"], "x-amz-i": s.metaForm["x-amz-i"]}
		toV2("stripped to V2, IV from the message ID's first 12 bytes", asV2(nonce[:12]), nil, false)
		toV2("stripped to V2, IV from the message ID's last 12 bytes", asV2(nonce[len(nonce)-12:]), nil, false)
		withLen := asV2(nonce[:12])
		withLen["x-amz-unencrypted-content-length"] = fmt.Sprint(tmPlainLen)
		toV2("stripped to V2 with a plaintext length", withLen, nil, false)
		toV2("stripped to V2, x-amz-c/d/i left on the object", asV2(nonce[:12]), onV3, true)
		g.add("turned segmented", stored(envelope.FormatSegmented, asSeg, nil), envelope.ErrAuthentication)
	case envelope.FormatSegmented:
		toV2("turned V2", asV2(nonce[:12]), nil, false)
		g.add("turned V3", stored(envelope.FormatV3, asV3, nil), envelope.ErrAuthentication)
	case envelope.FormatV2:
		// Dressed up as a committing format: the V2 wrap does not unwrap
		// for it.
		g.add("turned V3", stored(envelope.FormatV3, asV3, nil), envelope.ErrAuthentication)
		g.add("turned segmented", stored(envelope.FormatSegmented, asSeg, nil), envelope.ErrAuthentication)
	}
}

// bodies truncates, extends, reorders and splices the body.
func (g *tmGen) bodies() {
	o := g.o
	body := o.body
	n := len(body)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// The units reordered: segments, or 4 KiB blocks of V2/V3 content.
	unit := testSegment
	if o.format == envelope.FormatSegmented {
		unit = tmStride
	}
	u0, u1, rest := body[:unit], body[unit:2*unit], body[2*unit:]
	cuts := []int{0, 1, 15, 16, 17, n - 1, n - 15, n - 16, n - 17, unit, 2 * unit, unit + 1, 2*unit - 1}
	if o.format != envelope.FormatSegmented {
		cuts = append(cuts, n-envelope.TagSize) // the tag dropped
	}
	slices.Sort(cuts)
	for _, c := range slices.Compact(cuts) {
		g.addBody(fmt.Sprintf("body truncated to %d bytes (%d short)", c, n-c), body[:c])
	}
	g.addBody("body extended by a zero byte", cat(body, []byte{0}))
	g.addBody("body extended by 16 zero bytes", cat(body, make([]byte, 16)))
	g.addBody("body extended by a copy of its last 16 bytes", cat(body, body[n-16:]))
	last := body[n-envelope.TagSize-testSegment:]
	if o.format == envelope.FormatSegmented {
		last = rest // the final segment
	}
	g.addBody("body extended by a copy of its last segment", cat(body, last))
	g.addBody("body extended by a copy of its second segment", cat(body, u1))
	g.addBody("first two segments swapped", cat(u1, u0, rest))
	g.addBody("second segment dropped", cat(u0, rest))
	g.addBody("second segment duplicated", cat(u0, u1, u1, rest))
	g.addBody("first segment duplicated in place of the second", cat(u0, u0, rest))
	ob := g.other.body
	g.addBody("first segment from the other object", cat(ob[:unit], body[unit:]))
	g.addBody("second segment from the other object", cat(u0, ob[unit:2*unit], rest))
	g.addBody("final segment from the other object", cat(u0, u1, ob[2*unit:]))
	g.addBody("body from the other object, cut to this length", ob[:n])
}

// conflicts puts the metadata and an instruction file at odds.
//
// Rules (Decode): object metadata that holds a wrapped key holds the
// envelope, and always wins: an instruction file beside it is not even
// parsed, so the object opens whatever the instruction file says; and an
// instruction-file object whose metadata gains a wrapped key is read from
// its metadata alone (another object's: ErrAuthentication; one field: the
// rest is missing, ErrMalformed). Otherwise the envelope is the instruction
// file's, and the only metadata fields read are those the format keeps on
// the object (tmOnObject), which an instruction file must not hold
// (ErrMalformed, even with the right value); other envelope fields in such
// metadata are not read, and change nothing.
func (g *tmGen) conflicts() {
	o, other := g.o, g.other
	fs := tmFieldsOf(o.format)
	if !o.instr {
		for _, c := range []struct {
			name string
			ins  map[string]string
		}{
			{"the other object's instruction file beside the metadata", other.sealed.insForm},
			{"its own instruction file beside the metadata", o.sealed.insForm},
			{"the other object's wrapped key in an instruction file", map[string]string{fs.key: other.sealed.metaForm[fs.key]}},
		} {
			st := o.st.clone()
			st.ins = clone(c.ins)
			g.add(c.name, st, nil)
		}
		st := o.st.clone()
		st.raw = []byte("{not json")
		g.add("an unparseable instruction file beside the metadata", st, nil)
		return
	}
	// The object's metadata gains an envelope of its own.
	st := o.st.clone()
	maps.Copy(st.meta, other.sealed.metaForm)
	g.add("the other object's whole envelope in the metadata", st, envelope.ErrAuthentication)
	st = o.st.clone()
	maps.Copy(st.meta, o.sealed.metaForm)
	g.add("its own whole envelope in the metadata too", st, nil)
	st = o.st.clone()
	st.meta[fs.key] = other.sealed.metaForm[fs.key]
	g.add("the other object's wrapped key in the metadata", st, envelope.ErrMalformed)
	// The instruction file holds what the format keeps on the object.
	for _, k := range tmOnObject(o.format) {
		st := o.st.clone()
		st.ins[k] = st.meta[k]
		g.add("instruction file repeats the object's "+k, st, envelope.ErrMalformed)
		st = o.st.clone()
		st.ins[k] = other.st.meta[k]
		g.add("instruction file holds the other object's "+k, st, envelope.ErrMalformed)
		st = o.st.clone()
		st.ins[k] = st.meta[k]
		delete(st.meta, k)
		g.add("instruction file holds "+k+" instead of the object", st, envelope.ErrMalformed)
	}
	// Fields of the instruction file's own format in metadata, which the
	// file overrides: they change nothing.
	stray := map[envelope.Format]map[string]string{
		envelope.FormatV2:        {"x-amz-iv": other.st.ins["x-amz-iv"], "x-amz-cek-alg": "AES/CTR/NoPadding", "x-amz-wrap-alg": envelope.WrapLegacyAESWrap},
		envelope.FormatV3:        {"x-amz-w": "99", "x-amz-m": `{"kid":"someone else"}`},
		envelope.FormatSegmented: {"x-s3e-w": envelope.WrapLegacyAESWrap, "x-s3e-m": "{"},
	}[o.format]
	for _, k := range slices.Sorted(maps.Keys(stray)) {
		st := o.st.clone()
		st.meta[k] = stray[k]
		g.add(fmt.Sprintf("metadata holds a stray %s=%q beside the instruction file", k, stray[k]), st, nil)
	}
	// Fields of another format: the file must not stand in for the
	// object's own envelope (a downgrade that skips the commitment).
	foreign := map[envelope.Format]map[string]string{
		envelope.FormatV2:        {"x-amz-c": "115", "x-amz-d": "AAAA", "x-s3e-v": "1"},
		envelope.FormatV3:        {"x-amz-iv": "AAAAAAAAAAAAAAAA", "x-amz-cek-alg": "AES/CTR/NoPadding", "x-s3e-d": "AAAA"},
		envelope.FormatSegmented: {"x-amz-c": "114", "x-amz-iv": "AAAAAAAAAAAAAAAA", "x-amz-i": "AAAA"},
	}[o.format]
	for _, k := range slices.Sorted(maps.Keys(foreign)) {
		st := o.st.clone()
		st.meta[k] = foreign[k]
		g.add(fmt.Sprintf("metadata holds %s=%q of another format beside the instruction file", k, foreign[k]), st, envelope.ErrMalformed)
	}
}

// tmRunner runs cases and keeps the tally.
type tmRunner struct {
	spool    string
	memo     *tmMemo
	total    int
	opened   int
	bad      int
	counts   map[error]int
	unauth   int // plaintext bytes released that were not allowed
	verified int // bytes of verified segments released before a fault
	leaks    int
	failures []string
}

func (r *tmRunner) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// spoolLeft lists spool files in the directory or still open.
func (r *tmRunner) spoolLeft() []string {
	var left []string
	entries, err := os.ReadDir(r.spool)
	if err != nil {
		return []string{err.Error()}
	}
	for _, e := range entries {
		left = append(left, e.Name())
	}
	return append(left, r.spoolOpen()...)
}

// spoolOpen lists the open files under the spool directory (spool files are
// unlinked at creation, so only their descriptors show them). It finds none
// where /proc/self/fd does not exist.
func (r *tmRunner) spoolOpen() []string {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var open []string
	for _, fd := range fds {
		target, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(target, r.spool+string(filepath.Separator)) {
			open = append(open, target)
		}
	}
	return open
}

func (r *tmRunner) run(o *tmObject, c tmCase, cfg envelope.Config) {
	r.total++
	if c.cfg != nil {
		cfg = *c.cfg
	}
	plain := o.plain
	if c.plain != nil {
		plain = c.plain
	}
	label := fmt.Sprintf("%v: %s", o, c.name)
	segmented := o.format == envelope.FormatSegmented
	var problems []string
	var got []byte
	opened := false
	env, err := envelope.Decode(c.st.meta, c.st.instruction())
	if err == nil {
		var p *envelope.Plaintext
		p, err = envelope.Open(context.Background(), env, r.memo, cfg, bytes.NewReader(c.body))
		if err == nil {
			opened = true
			if !segmented && c.want == nil && len(r.spoolOpen()) == 0 {
				problems = append(problems, "no spool file open while the plaintext is (the leak check is blind)")
			}
			var buf bytes.Buffer
			if r.total%2 == 0 {
				_, err = io.Copy(&buf, p) // WriteTo
			} else {
				var b []byte
				b, err = io.ReadAll(struct{ io.Reader }{p}) // Read
				buf.Write(b)
			}
			got = buf.Bytes()
			if err != nil {
				// The error is sticky: nothing more comes out.
				if n, err2 := p.Read(make([]byte, 64)); n != 0 || err2 == nil {
					problems = append(problems, fmt.Sprintf("Read after the error returned %d bytes, %v", n, err2))
				}
			} else if size := p.Size(); size >= 0 && size != int64(len(got)) {
				problems = append(problems, fmt.Sprintf("Size %d, read %d bytes", size, len(got)))
			}
			if cerr := p.Close(); cerr != nil {
				problems = append(problems, fmt.Sprintf("Close: %v", cerr))
			}
			if cerr := p.Close(); cerr != nil {
				problems = append(problems, fmt.Sprintf("second Close: %v", cerr))
			}
		}
	}
	if left := r.spoolLeft(); len(left) > 0 {
		r.leaks += len(left)
		problems = append(problems, fmt.Sprintf("spool files left: %v", left))
	}
	if c.want == nil {
		r.opened++
		if err != nil || !bytes.Equal(got, plain) {
			problems = append(problems, fmt.Sprintf("want the exact plaintext (%d bytes), got %d bytes (equal: %v) and error %v", len(plain), len(got), bytes.Equal(got, plain), err))
		}
	} else {
		r.counts[c.want]++
		var matched []string
		for _, s := range tmSentinels {
			if errors.Is(err, s) {
				matched = append(matched, tmErrName(s))
			}
		}
		switch {
		case err == nil:
			problems = append(problems, fmt.Sprintf("opened (%d bytes, plaintext intact: %v), want %s", len(got), bytes.Equal(got, plain), tmErrName(c.want)))
		case !errors.Is(err, c.want):
			problems = append(problems, fmt.Sprintf("error %q wraps %v, want %s", err, matched, tmErrName(c.want)))
		case len(matched) != 1:
			problems = append(problems, fmt.Sprintf("error %q wraps %v, want only %s", err, matched, tmErrName(c.want)))
		}
		if !segmented && opened {
			problems = append(problems, "Open returned a plaintext for a tampered V2/V3 object")
		}
		// What may come out: nothing for V2/V3; the whole segments before
		// the fault for a segmented object.
		allowed := 0
		if segmented {
			allowed = c.release
		}
		ok := 0 // bytes released that were allowed: a prefix of the allowed plaintext
		for ok < len(got) && ok < allowed && got[ok] == plain[ok] {
			ok++
		}
		r.unauth += len(got) - ok
		r.verified += ok
		if len(got) != allowed || ok != allowed {
			problems = append(problems, fmt.Sprintf("released %d bytes (%d of them the verified prefix), want exactly the %d bytes of the segments before the fault", len(got), ok, allowed))
		}
	}
	if len(problems) > 0 {
		r.bad++
		r.fail("%s: %s", label, strings.Join(problems, "; "))
	}
}
