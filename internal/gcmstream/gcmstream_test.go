package gcmstream

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/iotest"
)

var (
	testLengths = []int{0, 1, 15, 16, 17, 31, 32, 33, 4095, 65535, 65536, 65537, 3*65536 + 7, 1<<20 + 5}
	testAADs    = map[string][]byte{"nilAAD": nil, "v3AAD": {0x00, 0x73}}
	testKeySize = []int{16, 24, 32}
)

// fixture is one message with its standard-library encryption.
type fixture struct {
	key, nonce, aad, pt []byte
	ct, tag             []byte // cipher.NewGCM Seal output, split
	s                   *Stream
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func stdSeal(t testing.TB, key, nonce, aad, pt []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return g.Seal(nil, nonce, pt, aad)
}

func newFixture(t testing.TB, rng *rand.Rand, keySize, n int, aad []byte) *fixture {
	t.Helper()
	f := &fixture{key: randBytes(rng, keySize), nonce: randBytes(rng, NonceSize), aad: aad, pt: randBytes(rng, n)}
	sealed := stdSeal(t, f.key, f.nonce, f.aad, f.pt)
	f.ct, f.tag = sealed[:n], sealed[n:]
	var err error
	if f.s, err = New(f.key, f.nonce, f.aad); err != nil {
		t.Fatal(err)
	}
	return f
}

// chunkings return the sizes of the pieces a message of n bytes is cut
// into: all but the last a multiple of 16, summing to n.
var chunkings = []struct {
	name  string
	sizes func(rng *rand.Rand, n int) []int
}{
	{"1block", fixedSizes(16)},
	{"16blocks", fixedSizes(256)},
	{"64KiB", fixedSizes(64 << 10)},
	{"random", randomSizes},
}

func fixedSizes(size int) func(*rand.Rand, int) []int {
	return func(_ *rand.Rand, n int) []int {
		var s []int
		for n > size {
			s = append(s, size)
			n -= size
		}
		return append(s, n)
	}
}

// randomSizes cuts n into random multiples of 16 (zero included), with a
// spread of scales so that both tiny and large pieces occur.
func randomSizes(rng *rand.Rand, n int) []int {
	var s []int
	for n > 0 {
		scale := []int{2, 20, 300, 6000}[rng.IntN(4)]
		c := 16 * rng.IntN(scale)
		if c >= n {
			break
		}
		s = append(s, c)
		n -= c
	}
	return append(s, n)
}

func TestSealerMatchesStdlib(t *testing.T) {
	forEachFixture(t, func(t *testing.T, rng *rand.Rand, f *fixture) {
		want := append(append([]byte(nil), f.ct...), f.tag...)
		for _, ch := range chunkings {
			sizes := ch.sizes(rng, len(f.pt))
			// Appending to a growing slice.
			w := f.s.NewSealer()
			var out []byte
			pos := 0
			for _, c := range sizes {
				var err error
				if out, err = w.Seal(out, f.pt[pos:pos+c]); err != nil {
					t.Fatalf("%s: Seal: %v", ch.name, err)
				}
				pos += c
			}
			out = w.Finish(out)
			if !bytes.Equal(out, want) {
				t.Fatalf("%s: Sealer output differs from cipher.AEAD.Seal", ch.name)
			}
			// In place, each chunk encrypted over its own plaintext.
			buf := append(make([]byte, 0, len(f.pt)+TagSize), f.pt...)
			w = f.s.NewSealer()
			pos = 0
			for _, c := range sizes {
				got, err := w.Seal(buf[pos:pos], buf[pos:pos+c])
				if err != nil || len(got) != c {
					t.Fatalf("%s: in-place Seal: %v, %d bytes", ch.name, err, len(got))
				}
				pos += c
			}
			buf = w.Finish(buf)
			if !bytes.Equal(buf, want) {
				t.Fatalf("%s: in-place Sealer output differs from cipher.AEAD.Seal", ch.name)
			}
		}
	})
}

func TestOpenerVerifiesStdlib(t *testing.T) {
	forEachFixture(t, func(t *testing.T, rng *rand.Rand, f *fixture) {
		for _, ch := range chunkings {
			o := f.s.NewOpener()
			pos := 0
			for _, c := range ch.sizes(rng, len(f.ct)) {
				if err := o.Hash(f.ct[pos : pos+c]); err != nil {
					t.Fatalf("%s: Hash: %v", ch.name, err)
				}
				pos += c
			}
			if err := o.Verify(f.tag); err != nil {
				t.Fatalf("%s: Verify of a genuine tag: %v", ch.name, err)
			}
			bad := append([]byte(nil), f.tag...)
			bad[rng.IntN(TagSize)] ^= 1 << rng.IntN(8)
			if err := o.Verify(bad); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("%s: Verify of a wrong tag: %v", ch.name, err)
			}
		}
	})
}

func TestXORKeyStreamAt(t *testing.T) {
	forEachFixture(t, func(t *testing.T, rng *rand.Rand, f *fixture) {
		n := len(f.ct)
		got := make([]byte, n)
		f.s.XORKeyStreamAt(got, f.ct, 0)
		if !bytes.Equal(got, f.pt) {
			t.Fatal("whole-body decryption differs")
		}
		for i := 0; i < 40; i++ {
			off := rng.IntN(n + 1)
			l := rng.IntN(n - off + 1)
			if i%4 == 0 {
				l = min(l, rng.IntN(40)) // short, often inside one block
			}
			dst := make([]byte, l+3) // longer dst is allowed
			f.s.XORKeyStreamAt(dst, f.ct[off:off+l], uint64(off))
			if !bytes.Equal(dst[:l], f.pt[off:off+l]) || !bytes.Equal(dst[l:], []byte{0, 0, 0}) {
				t.Fatalf("XORKeyStreamAt(off=%d, len=%d) wrong", off, l)
			}
			// In place, and encrypting direction.
			buf := append([]byte(nil), f.pt[off:off+l]...)
			f.s.XORKeyStreamAt(buf, buf, uint64(off))
			if !bytes.Equal(buf, f.ct[off:off+l]) {
				t.Fatalf("in-place XORKeyStreamAt(off=%d, len=%d) wrong", off, l)
			}
		}
	})
}

// alignedRandomCuts cuts [0,n) at random multiples of 16.
func alignedRandomCuts(rng *rand.Rand, n int) [][2]int {
	var cuts [][2]int
	pos := 0
	for _, c := range randomSizes(rng, n) {
		cuts = append(cuts, [2]int{pos, pos + c})
		pos += c
	}
	return cuts
}

func TestSealChunkHashChunkTag(t *testing.T) {
	forEachFixture(t, func(t *testing.T, rng *rand.Rand, f *fixture) {
		n := len(f.pt)
		for round := 0; round < 3; round++ {
			cuts := alignedRandomCuts(rng, n)
			out := make([]byte, n)
			var parts []Partial
			for _, c := range cuts {
				got, p := f.s.SealChunk(out[c[0]:c[0]], f.pt[c[0]:c[1]], uint64(c[0]))
				if len(got) != c[1]-c[0] {
					t.Fatalf("SealChunk appended %d bytes, want %d", len(got), c[1]-c[0])
				}
				parts = append(parts, p)
			}
			if !bytes.Equal(out, f.ct) {
				t.Fatal("SealChunk ciphertext differs")
			}
			tag, err := f.s.Tag(parts...)
			if err != nil || !bytes.Equal(tag, f.tag) {
				t.Fatalf("Tag of SealChunk partials: %x, %v; want %x", tag, err, f.tag)
			}
			parts = parts[:0]
			for _, c := range alignedRandomCuts(rng, n) {
				parts = append(parts, f.s.HashChunk(f.ct[c[0]:c[1]], uint64(c[0])))
			}
			tag, err = f.s.Tag(parts...)
			if err != nil || !bytes.Equal(tag, f.tag) {
				t.Fatalf("Tag of HashChunk partials: %x, %v; want %x", tag, err, f.tag)
			}
		}
	})
}

func TestSealReader(t *testing.T) {
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"OneByteReader", iotest.OneByteReader},
		{"HalfReader", iotest.HalfReader},
		{"DataErrReader", iotest.DataErrReader},
		{"DataErrReader(HalfReader)", func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.HalfReader(r)) }},
	}
	forEachFixture(t, func(t *testing.T, rng *rand.Rand, f *fixture) {
		want := append(append([]byte(nil), f.ct...), f.tag...)
		for _, rd := range readers {
			got, err := io.ReadAll(NewSealReader(f.s, rd.wrap(bytes.NewReader(f.pt))))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: SealReader output differs (err %v)", rd.name, err)
			}
		}
		// The consumer side: reads of many sizes, EOF handling.
		if len(f.pt) <= 65537 {
			if err := iotest.TestReader(NewSealReader(f.s, iotest.HalfReader(bytes.NewReader(f.pt))), want); err != nil {
				t.Fatal(err)
			}
		}
		got, err := io.ReadAll(iotest.OneByteReader(NewSealReader(f.s, bytes.NewReader(f.pt))))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("one-byte consumer: SealReader output differs (err %v)", err)
		}
		// Consumers with large buffers (sealed in place in p) and mixed sizes.
		n := len(f.pt)
		for _, sizes := range [][]int{
			{readerChunk}, {readerChunk + 15}, {readerChunk + 16}, {1 << 20},
			{n + TagSize}, {n + TagSize - 1}, {n + 1}, {max(n, readerChunk)},
			{100, readerChunk + 33, 7, 300000, 1},
		} {
			for _, rd := range readers {
				if rd.name == "OneByteReader" && n > 70000 {
					continue // slow, and covered above and by the shorter lengths
				}
				got, err := readWithSizes(NewSealReader(f.s, rd.wrap(bytes.NewReader(f.pt))), sizes, rng)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s, Read sizes %v: SealReader output differs (err %v)", rd.name, sizes, err)
				}
			}
		}
	})
}

// readWithSizes reads r to EOF with Read buffers whose sizes cycle through
// sizes (at least 1), checking the io.Reader contract on the way.
func readWithSizes(r io.Reader, sizes []int, rng *rand.Rand) ([]byte, error) {
	var out []byte
	buf := make([]byte, max(slices.Max(sizes), 1))
	for i := 0; ; i++ {
		size := max(sizes[i%len(sizes)], 1)
		p := buf[:size]
		g := byte(rng.Uint32())
		for j := range p {
			p[j] = g // garbage to be overwritten
		}
		n, err := r.Read(p)
		if n < 0 || n > size {
			return out, fmt.Errorf("Read returned %d for a buffer of %d", n, size)
		}
		out = append(out, p[:n]...)
		if err == io.EOF {
			if n, err := r.Read(p); n != 0 || err != io.EOF {
				return out, fmt.Errorf("Read after EOF: %d, %v", n, err)
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, errors.New("Read returned 0, nil")
		}
	}
}

// forEachFixture runs fn for every length, AAD and key size.
func forEachFixture(t *testing.T, fn func(t *testing.T, rng *rand.Rand, f *fixture)) {
	for _, ks := range testKeySize {
		for aadName, aad := range testAADs {
			for _, n := range testLengths {
				if testing.Short() && n > 70000 {
					continue
				}
				t.Run(fmt.Sprintf("AES%d/%s/%d", ks*8, aadName, n), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(ks), uint64(n)*2+uint64(len(aad))))
					fn(t, rng, newFixture(t, rng, ks, n, aad))
				})
			}
		}
	}
}

func TestSealReaderSourceErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	f := newFixture(t, rng, 32, 1000, nil)
	boom := errors.New("boom")
	r := NewSealReader(f.s, io.MultiReader(bytes.NewReader(f.pt[:100]), iotest.ErrReader(boom)))
	if _, err := io.ReadAll(r); !errors.Is(err, boom) {
		t.Fatalf("source error: got %v", err)
	}
	r = NewSealReader(f.s, io.MultiReader(bytes.NewReader(f.pt[:100]), iotest.ErrReader(boom)))
	big := make([]byte, readerChunk)
	if n, err := r.Read(big); n != 0 || !errors.Is(err, boom) || !bytes.Equal(big, make([]byte, len(big))) {
		t.Fatalf("source error, large p: %d, %v (or plaintext left in p)", n, err)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, boom) {
		t.Fatalf("source error is not sticky: %v", err)
	}
	// A source that never makes progress.
	r = NewSealReader(f.s, zeroProgress{})
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("no-progress source: got %v", err)
	}
	// Empty p.
	r = NewSealReader(f.s, bytes.NewReader(f.pt))
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
}

type zeroProgress struct{}

func (zeroProgress) Read([]byte) (int, error) { return 0, nil }

// TestGHASHBitOrder checks the pure-Go field arithmetic against the
// assembly GHASH: for a 12-byte nonce, no plaintext and one AAD block A,
// the tag is A·H^2 ⊕ L·H ⊕ E_K(J0) with L = [128]64||[0]64.
func TestGHASHBitOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 50; i++ {
		key, nonce, a := randBytes(rng, 16), randBytes(rng, 12), randBytes(rng, 16)
		tag := stdSeal(t, key, nonce, a, nil)
		block, _ := aes.NewCipher(key)
		var hb, j0 [16]byte
		block.Encrypt(hb[:], hb[:])
		copy(j0[:], nonce)
		j0[15] = 1
		block.Encrypt(j0[:], j0[:])
		h := loadElem(hb[:])
		got := gfMul(loadElem(a), gfMul(h, h)).xor(gfMul(elem{128, 0}, h)).xor(loadElem(j0[:]))
		if got != loadElem(tag) {
			t.Fatalf("GF(2^128) arithmetic disagrees with crypto/cipher GHASH")
		}
	}
}

func TestGFAlgebra(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	r := func() elem { return elem{rng.Uint64(), rng.Uint64()} }
	for i := 0; i < 200; i++ {
		a, b, c := r(), r(), r()
		if gfMul(a, one) != a || gfMul(one, a) != a {
			t.Fatal("1 is not the identity")
		}
		if gfMul(a, b) != gfMul(b, a) {
			t.Fatal("not commutative")
		}
		if gfMul(a, b.xor(c)) != gfMul(a, b).xor(gfMul(a, c)) {
			t.Fatal("not distributive")
		}
		if gfMul(gfMul(a, b), c) != gfMul(a, gfMul(b, c)) {
			t.Fatal("not associative")
		}
		if gfMul(a, elem{1 << 62, 0}) != mulX(a) {
			t.Fatal("mulX is not multiplication by x")
		}
		if i < 20 {
			if a != (elem{}) && gfMul(a, gfInv(a)) != one {
				t.Fatal("gfInv is not the inverse")
			}
			e := uint64(rng.IntN(10000))
			want := one
			for j := uint64(0); j < e; j++ {
				want = gfMul(want, a)
			}
			if gfPow(a, e) != want {
				t.Fatalf("gfPow(a, %d) wrong", e)
			}
			tab := newMulTable(b)
			if tab.mul(a) != gfMul(a, b) || tab.mulCT(a) != gfMul(a, b) {
				t.Fatal("mulTable.mul/mulCT disagree with gfMul")
			}
		}
	}
}

func TestEveryBitFlipFails(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, aad := range [][]byte{nil, {0x00, 0x73}} {
		f := newFixture(t, rng, 32, 37, aad)
		msg := append(append([]byte(nil), f.ct...), f.tag...)
		check := func(m []byte) error {
			o := f.s.NewOpener()
			if err := o.Hash(m[:len(f.ct)]); err != nil {
				t.Fatal(err)
			}
			return o.Verify(m[len(f.ct):])
		}
		if err := check(msg); err != nil {
			t.Fatalf("genuine message rejected: %v", err)
		}
		for bit := 0; bit < 8*len(msg); bit++ {
			m := append([]byte(nil), msg...)
			m[bit/8] ^= 1 << (bit % 8)
			if err := check(m); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("flip of bit %d accepted (err %v)", bit, err)
			}
			// The parallel path must agree.
			tag, err := f.s.Tag(f.s.HashChunk(m[:32], 0), f.s.HashChunk(m[32:len(f.ct)], 32))
			if err != nil || bytes.Equal(tag, m[len(f.ct):]) {
				t.Fatalf("flip of bit %d accepted by HashChunk/Tag (err %v)", bit, err)
			}
		}
		// Wrong tag lengths, truncation, extension.
		o := f.s.NewOpener()
		_ = o.Hash(f.ct)
		for _, tag := range [][]byte{nil, f.tag[:12], f.tag[:15], append(append([]byte(nil), f.tag...), 0)} {
			if err := o.Verify(tag); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("tag of %d bytes: %v", len(tag), err)
			}
		}
		for _, body := range [][]byte{f.ct[:len(f.ct)-1], append(append([]byte(nil), f.ct...), 0)} {
			o := f.s.NewOpener()
			_ = o.Hash(body)
			if err := o.Verify(f.tag); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("body of %d bytes accepted: %v", len(body), err)
			}
		}
	}
	// Wrong AAD, nonce or key.
	f := newFixture(t, rng, 16, 50, []byte{0x00, 0x73})
	for _, alt := range []struct{ key, nonce, aad []byte }{
		{f.key, f.nonce, []byte{0x00, 0x72}},
		{f.key, f.nonce, nil},
		{f.key, append([]byte{f.nonce[0] ^ 1}, f.nonce[1:]...), f.aad},
		{append([]byte{f.key[0] ^ 0x80}, f.key[1:]...), f.nonce, f.aad},
	} {
		s, err := New(alt.key, alt.nonce, alt.aad)
		if err != nil {
			t.Fatal(err)
		}
		o := s.NewOpener()
		_ = o.Hash(f.ct)
		if err := o.Verify(f.tag); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("wrong key/nonce/AAD accepted: %v", err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, ks := range []int{0, 8, 15, 17, 31, 33} {
		if _, err := New(make([]byte, ks), make([]byte, 12), nil); err == nil {
			t.Fatalf("key of %d bytes accepted", ks)
		}
	}
	for _, ns := range []int{0, 8, 11, 13, 16} {
		if _, err := New(make([]byte, 16), make([]byte, ns), nil); err == nil {
			t.Fatalf("nonce of %d bytes accepted", ns)
		}
	}
}

func TestChunkMisuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	f := newFixture(t, rng, 16, 100, nil)

	w := f.s.NewSealer()
	out, err := w.Seal(nil, f.pt[:17])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := w.Seal(out, f.pt[17:33]); !errors.Is(err, ErrChunk) || len(got) != len(out) {
		t.Fatalf("Seal after a partial block: %v", err)
	}
	if _, err := w.Seal(out, nil); err != nil {
		t.Fatalf("empty Seal after a partial block: %v", err)
	}
	// The failed call left the Sealer intact.
	if got := w.Finish(out); !bytes.Equal(got, stdSeal(t, f.key, f.nonce, nil, f.pt[:17])) {
		t.Fatal("Sealer state changed by a refused call")
	}
	if _, err := w.Seal(nil, f.pt[:16]); !errors.Is(err, ErrChunk) {
		t.Fatalf("Seal after Finish: %v", err)
	}

	o := f.s.NewOpener()
	if err := o.Hash(f.ct[:1]); err != nil {
		t.Fatal(err)
	}
	if err := o.Hash(f.ct[1:17]); !errors.Is(err, ErrChunk) {
		t.Fatalf("Hash after a partial block: %v", err)
	}
	o = f.s.NewOpener()
	_ = o.Hash(f.ct)
	if err := o.Verify(f.tag); err != nil {
		t.Fatal(err)
	}
	if err := o.Hash(f.ct[:16]); !errors.Is(err, ErrChunk) {
		t.Fatalf("Hash after Verify: %v", err)
	}

	// Misaligned SealChunk / HashChunk: nothing appended, Tag fails.
	got, p := f.s.SealChunk(nil, f.pt[8:40], 8)
	if len(got) != 0 {
		t.Fatal("misaligned SealChunk appended data")
	}
	if _, err := f.s.Tag(p); !errors.Is(err, ErrChunk) {
		t.Fatalf("Tag of a misaligned SealChunk: %v", err)
	}
	if _, err := f.s.Tag(f.s.HashChunk(f.ct[:8], 0), f.s.HashChunk(f.ct[8:], 8)); !errors.Is(err, ErrChunk) {
		t.Fatalf("Tag of a misaligned HashChunk: %v", err)
	}

	h := func(a, b int) Partial { return f.s.HashChunk(f.ct[a:b], uint64(a)) }
	other, _ := New(f.key, f.nonce, nil)
	for name, parts := range map[string][]Partial{
		"gap":            {h(0, 32), h(48, 100)},
		"overlap":        {h(0, 48), h(32, 100)},
		"out of order":   {h(32, 100), h(0, 32)},
		"not from 0":     {h(16, 100)},
		"partial first":  {f.s.HashChunk(f.ct[:33], 0), h(33, 100)},
		"zero Partial":   {{}},
		"foreign Stream": {other.HashChunk(f.ct, 0)},
	} {
		if _, err := f.s.Tag(parts...); !errors.Is(err, ErrChunk) {
			t.Errorf("Tag with %s: %v", name, err)
		}
	}
	// Empty chunks are fine anywhere, and no parts is the empty message.
	if tag, err := f.s.Tag(h(0, 0), h(0, 48), h(48, 48), h(48, 100)); err != nil || !bytes.Equal(tag, f.tag) {
		t.Fatalf("Tag with empty chunks: %v", err)
	}
	if tag, err := f.s.Tag(); err != nil || !bytes.Equal(tag, stdSeal(t, f.key, f.nonce, nil, nil)) {
		t.Fatalf("Tag() of the empty message: %x, %v", tag, err)
	}
}

func TestTooLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	f := newFixture(t, rng, 16, 64, []byte{0x00, 0x73})
	pt := f.pt

	// The bound arithmetic itself.
	for _, c := range []struct {
		off, n uint64
		err    error
	}{
		{0, MaxPlaintext, nil},
		{MaxPlaintext - 16, 16, nil},
		{MaxPlaintext, 0, nil},
		{MaxPlaintext - 16, 17, ErrTooLarge},
		{MaxPlaintext, 1, ErrTooLarge},
		{0, MaxPlaintext + 1, ErrTooLarge},
		{MaxPlaintext + 16, 0, ErrTooLarge},
		{1<<64 - 16, 32, ErrTooLarge}, // would wrap uint64
		{MaxPlaintext - 8, 1, ErrChunk},
	} {
		if err := checkChunk(c.off, c.n); !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("checkChunk(%d, %d) = %v, want %v", c.off, c.n, err, c.err)
		}
	}

	// Sealer near the limit: the last blocks still match the keystream.
	w := f.s.NewSealer()
	w.total = MaxPlaintext - 48
	out, err := w.Seal(nil, pt[:32])
	if err != nil {
		t.Fatal(err)
	}
	ks := make([]byte, 32)
	f.s.XORKeyStreamAt(ks, pt[:32], MaxPlaintext-48)
	if !bytes.Equal(out, ks) {
		t.Fatal("ciphertext near MaxPlaintext disagrees with XORKeyStreamAt")
	}
	if got, err := w.Seal(out, pt[:17]); !errors.Is(err, ErrTooLarge) || len(got) != len(out) {
		t.Fatalf("Seal past MaxPlaintext: %v", err)
	}
	if out, err = w.Seal(out, pt[:16]); err != nil {
		t.Fatalf("Seal up to exactly MaxPlaintext: %v", err)
	}
	if _, err := w.Seal(out, pt[:1]); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Seal past MaxPlaintext: %v", err)
	}

	o := f.s.NewOpener()
	o.total = MaxPlaintext - 16
	if err := o.Hash(pt[:17]); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Hash past MaxPlaintext: %v", err)
	}
	if err := o.Hash(pt[:16]); err != nil {
		t.Fatalf("Hash up to exactly MaxPlaintext: %v", err)
	}

	// SealChunk / HashChunk near the limit.
	got, p := f.s.SealChunk(nil, pt[:33], MaxPlaintext-32)
	if len(got) != 0 {
		t.Fatal("SealChunk past MaxPlaintext appended data")
	}
	if _, err := f.s.Tag(p); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Tag of a SealChunk past MaxPlaintext: %v", err)
	}
	if got, p = f.s.SealChunk(nil, pt[:32], MaxPlaintext-32); p.err != nil || !bytes.Equal(got, func() []byte {
		b := make([]byte, 32)
		f.s.XORKeyStreamAt(b, pt[:32], MaxPlaintext-32)
		return b
	}()) {
		t.Fatalf("SealChunk ending at MaxPlaintext: %v", p.err)
	}
	if p := f.s.HashChunk(pt[:17], MaxPlaintext-16); !errors.Is(p.err, ErrTooLarge) {
		t.Fatalf("HashChunk past MaxPlaintext: %v", p.err)
	}

	// XORKeyStreamAt refuses to run past the limit.
	for _, c := range []struct{ off, n uint64 }{{MaxPlaintext - 5, 6}, {MaxPlaintext + 1, 0}, {1<<64 - 1, 2}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("XORKeyStreamAt(off=%d, len=%d) did not panic", c.off, c.n)
				}
			}()
			b := make([]byte, c.n)
			f.s.XORKeyStreamAt(b, b, c.off)
		}()
	}

	// SealReader: the source delivers more than the message may carry.
	r := NewSealReader(f.s, bytes.NewReader(pt[:64]))
	r.w.total = MaxPlaintext - 48
	if _, err := io.ReadAll(r); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SealReader past MaxPlaintext: %v", err)
	}
	r = NewSealReader(f.s, bytes.NewReader(pt[:48]))
	r.w.total = MaxPlaintext - 48
	if b, err := io.ReadAll(r); err != nil || len(b) != 48+TagSize {
		t.Fatalf("SealReader up to exactly MaxPlaintext: %d bytes, %v", len(b), err)
	}
	// The same with a large Read buffer (sealed in place in p): the refused
	// plaintext must not be left in p.
	r = NewSealReader(f.s, bytes.NewReader(pt[:64]))
	r.w.total = MaxPlaintext - 48
	big := make([]byte, readerChunk)
	if n, err := r.Read(big); n != 0 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SealReader (large p) past MaxPlaintext: %d, %v", n, err)
	}
	if !bytes.Equal(big, make([]byte, len(big))) {
		t.Fatal("refused plaintext left in the Read buffer")
	}
	r = NewSealReader(f.s, bytes.NewReader(pt[:48]))
	r.w.total = MaxPlaintext - 48
	if b, err := readWithSizes(r, []int{readerChunk}, rng); err != nil || len(b) != 48+TagSize {
		t.Fatalf("SealReader (large p) up to exactly MaxPlaintext: %d bytes, %v", len(b), err)
	}
}

// TestNoWritesOutsideAppended checks that Seal and SealChunk touch only the
// bytes they append, so parallel chunks may share one output buffer.
func TestNoWritesOutsideAppended(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	f := newFixture(t, rng, 32, 3000, nil)
	for n := 0; n <= 300; n++ {
		if n > 100 && n%16 != 0 && n%16 != 1 && n%16 != 15 {
			continue
		}
		for _, off := range []int{0, 16, 1024} {
			buf := bytes.Repeat([]byte{0xa5}, 8+n+64)
			dst := buf[8 : 8 : len(buf)-1] // room to spare after
			got, p := f.s.SealChunk(dst, f.pt[off:off+n], uint64(off))
			if !bytes.Equal(got, f.ct[off:off+n]) {
				t.Fatalf("SealChunk(%d bytes at %d): wrong ciphertext", n, off)
			}
			for i, c := range buf {
				if (i < 8 || i >= 8+n) && c != 0xa5 {
					t.Fatalf("SealChunk(%d bytes at %d) wrote byte %d outside its region", n, off, i-8)
				}
			}
			if tag, err := f.s.Tag(p); off == 0 && (err != nil || !bytes.Equal(tag, stdSeal(t, f.key, f.nonce, nil, f.pt[:n])[n:])) {
				t.Fatalf("Tag of one chunk of %d bytes: %v", n, err)
			}
		}
		buf := bytes.Repeat([]byte{0xa5}, 8+n+64)
		w := f.s.NewSealer()
		got, err := w.Seal(buf[8:8], f.pt[:n])
		if err != nil || !bytes.Equal(got, f.ct[:n]) {
			t.Fatalf("Seal(%d bytes): %v", n, err)
		}
		for i, c := range buf {
			if (i < 8 || i >= 8+n) && c != 0xa5 {
				t.Fatalf("Seal(%d bytes) wrote byte %d outside its region", n, i-8)
			}
		}
	}
}

// TestParallelChunks seals and hashes parts of one message from several
// goroutines into one shared buffer, as a multipart upload would.
func TestParallelChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	f := newFixture(t, rng, 32, 5<<20+11, []byte{0x00, 0x73})
	const part = 1 << 20
	nparts := (len(f.pt) + part - 1) / part
	out := make([]byte, len(f.pt))
	sealed := make([]Partial, nparts)
	hashed := make([]Partial, nparts)
	var wg sync.WaitGroup
	for i := 0; i < nparts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, b := i*part, min((i+1)*part, len(f.pt))
			_, sealed[i] = f.s.SealChunk(out[a:a], f.pt[a:b], uint64(a))
			hashed[i] = f.s.HashChunk(f.ct[a:b], uint64(a))
			dec := make([]byte, b-a)
			f.s.XORKeyStreamAt(dec, f.ct[a:b], uint64(a))
			if !bytes.Equal(dec, f.pt[a:b]) {
				t.Errorf("part %d: XORKeyStreamAt wrong", i)
			}
		}()
	}
	wg.Wait()
	if !bytes.Equal(out, f.ct) {
		t.Fatal("parallel SealChunk ciphertext differs")
	}
	for _, parts := range [][]Partial{sealed, hashed} {
		if tag, err := f.s.Tag(parts...); err != nil || !bytes.Equal(tag, f.tag) {
			t.Fatalf("Tag of parallel partials: %v", err)
		}
	}
}

func TestSealReaderWriteTo(t *testing.T) {
	for _, n := range []int{0, 1, 17, readerChunk + 3, writeToChunk + 5, 3*writeToChunk + 16} {
		key, nonce := make([]byte, 32), make([]byte, 12)
		pt := make([]byte, n)
		for i := range pt {
			pt[i] = byte(i * 13)
		}
		s, err := New(key, nonce, []byte{0, 0x73})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		// A first small Read, then WriteTo for the rest.
		r := NewSealReader(s, bytes.NewReader(pt))
		first := make([]byte, 5)
		k, err := r.Read(first)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		out.Write(first[:k])
		if _, err := io.Copy(&out, r); err != nil {
			t.Fatal(err)
		}
		block, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCM(block)
		if want := g.Seal(nil, nonce, pt, []byte{0, 0x73}); !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("size %d: WriteTo output differs from Seal", n)
		}
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after < len(p) {
		n := f.after
		f.after = 0
		return n, errors.New("disk full")
	}
	f.after -= len(p)
	return len(p), nil
}

// TestSealReaderWriteToErrors: a source error or a writer error ends
// WriteTo with that error, stops its reader goroutine, and is final.
func TestSealReaderWriteToErrors(t *testing.T) {
	s, err := New(make([]byte, 32), make([]byte, 12), nil)
	if err != nil {
		t.Fatal(err)
	}
	src := io.MultiReader(bytes.NewReader(make([]byte, 3*writeToChunk+5)), iotest.ErrReader(errors.New("network down")))
	r := NewSealReader(s, src)
	n, err := io.Copy(io.Discard, r)
	if err == nil || err.Error() != "network down" {
		t.Fatalf("source error: got %v", err)
	}
	if n%writeToChunk != 0 || n > 3*writeToChunk {
		t.Fatalf("wrote %d bytes: only whole sealed pieces may leave", n)
	}
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Fatal("error not final")
	}

	r = NewSealReader(s, bytes.NewReader(make([]byte, 5*writeToChunk)))
	if _, err := r.WriteTo(&failingWriter{after: writeToChunk + 7}); err == nil || err.Error() != "disk full" {
		t.Fatalf("writer error: got %v", err)
	}
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Fatal("writer error not final")
	}
}

// TestSealerAdd: chunks sealed with SealChunk and added to a Sealer in
// order (mixed with chunks sealed by the Sealer itself) give the message's
// ciphertext and tag.
func TestSealerAdd(t *testing.T) {
	forEachFixture(t, func(t *testing.T, rng *rand.Rand, f *fixture) {
		n := len(f.pt)
		cuts := alignedRandomCuts(rng, n)
		out := make([]byte, n)
		w := f.s.NewSealer()
		for i, c := range cuts {
			if i%3 == 1 {
				if _, err := w.Seal(out[c[0]:c[0]], f.pt[c[0]:c[1]]); err != nil {
					t.Fatal(err)
				}
				continue
			}
			_, p := f.s.SealChunk(out[c[0]:c[0]], f.pt[c[0]:c[1]], uint64(c[0]))
			if err := w.Add(p); err != nil {
				t.Fatalf("Add of chunk %d: %v", i, err)
			}
		}
		if !bytes.Equal(out, f.ct) {
			t.Fatal("ciphertext differs")
		}
		if tag := w.Finish(nil); !bytes.Equal(tag, f.tag) {
			t.Fatalf("tag %x, want %x", tag, f.tag)
		}
	})
}

func TestSealerAddMisuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	f := newFixture(t, rng, 32, 100, nil)
	other := newFixture(t, rng, 32, 100, nil)
	pt := f.pt
	_, p0 := f.s.SealChunk(nil, pt[:32], 0)
	_, p1 := f.s.SealChunk(nil, pt[32:64], 32)
	_, odd := f.s.SealChunk(nil, pt[:17], 0)
	_, foreign := other.s.SealChunk(nil, pt[:32], 0)
	_, misaligned := f.s.SealChunk(nil, pt[:32], 8)
	for _, tc := range []struct {
		name  string
		steps []Partial
	}{
		{"gap", []Partial{p1}},
		{"repeat", []Partial{p0, p0}},
		{"after partial block", []Partial{odd, p1}},
		{"other stream", []Partial{foreign}},
		{"misaligned", []Partial{misaligned}},
		{"zero", []Partial{{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := f.s.NewSealer()
			var err error
			for _, p := range tc.steps {
				if err = w.Add(p); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrChunk) {
				t.Fatalf("got %v, want ErrChunk", err)
			}
		})
	}
	w := f.s.NewSealer()
	w.Finish(nil)
	if err := w.Add(p0); !errors.Is(err, ErrChunk) {
		t.Fatalf("Add after Finish: %v", err)
	}
}
