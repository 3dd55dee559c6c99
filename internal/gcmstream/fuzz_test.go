package gcmstream

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// fit returns b cut or zero-padded to n bytes.
func fit(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// FuzzStream checks every path against crypto/cipher's one-shot AES-GCM for
// arbitrary key, nonce, AAD, plaintext and chunking (the chunk sizes are
// drawn from seed).
func FuzzStream(f *testing.F) {
	f.Add(uint8(0), []byte("0123456789abcdef"), []byte("nonce-12byte"), []byte(nil), []byte("hello, world"), uint64(1))
	f.Add(uint8(1), []byte("k"), []byte{}, []byte{0x00, 0x73}, bytes.Repeat([]byte{7}, 1000), uint64(2))
	f.Add(uint8(2), bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 12), bytes.Repeat([]byte{3}, 33), bytes.Repeat([]byte{4}, 4097), uint64(3))
	f.Fuzz(func(t *testing.T, keySel uint8, key, nonce, aad, pt []byte, seed uint64) {
		key = fit(key, []int{16, 24, 32}[keySel%3])
		nonce = fit(nonce, NonceSize)
		want := stdSeal(t, key, nonce, aad, pt)
		ct, tag := want[:len(pt)], want[len(pt):]
		s, err := New(key, nonce, aad)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, uint64(len(pt))))
		sizes := randomSizes(rng, len(pt))

		// Sealer.
		w := s.NewSealer()
		var out []byte
		pos := 0
		for _, c := range sizes {
			if out, err = w.Seal(out, pt[pos:pos+c]); err != nil {
				t.Fatal(err)
			}
			pos += c
		}
		if out = w.Finish(out); !bytes.Equal(out, want) {
			t.Fatal("Sealer differs from cipher.AEAD.Seal")
		}

		// Opener, genuine and altered.
		o := s.NewOpener()
		pos = 0
		for _, c := range randomSizes(rng, len(ct)) {
			if err := o.Hash(ct[pos : pos+c]); err != nil {
				t.Fatal(err)
			}
			pos += c
		}
		if err := o.Verify(tag); err != nil {
			t.Fatalf("Verify of a genuine tag: %v", err)
		}
		bad := append([]byte(nil), tag...)
		bad[seed%TagSize] ^= 1 << (seed / TagSize % 8)
		if err := o.Verify(bad); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("Verify of an altered tag: %v", err)
		}

		// SealChunk / HashChunk / Tag.
		var sealed, hashed []Partial
		buf := make([]byte, len(pt))
		pos = 0
		for _, c := range sizes {
			var p Partial
			_, p = s.SealChunk(buf[pos:pos], pt[pos:pos+c], uint64(pos))
			sealed = append(sealed, p)
			hashed = append(hashed, s.HashChunk(ct[pos:pos+c], uint64(pos)))
			pos += c
		}
		if !bytes.Equal(buf, ct) {
			t.Fatal("SealChunk ciphertext differs")
		}
		for _, parts := range [][]Partial{sealed, hashed} {
			if got, err := s.Tag(parts...); err != nil || !bytes.Equal(got, tag) {
				t.Fatalf("Tag: %x, %v; want %x", got, err, tag)
			}
		}
		// The same partials added to an Opener in order (as parallel
		// verification does).
		o = s.NewOpener()
		for _, p := range hashed {
			if err := o.Add(p); err != nil {
				t.Fatalf("Add: %v", err)
			}
		}
		if err := o.Verify(tag); err != nil {
			t.Fatalf("Verify after Add: %v", err)
		}
		if err := o.Verify(bad); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("Verify of an altered tag after Add: %v", err)
		}

		// XORKeyStreamAt from a random offset.
		off := 0
		if len(pt) > 0 {
			off = rng.IntN(len(pt) + 1)
		}
		dec := make([]byte, len(pt)-off)
		s.XORKeyStreamAt(dec, ct[off:], uint64(off))
		if !bytes.Equal(dec, pt[off:]) {
			t.Fatalf("XORKeyStreamAt(off=%d) wrong", off)
		}

		// SealReader.
		got, err := io.ReadAll(NewSealReader(s, iotest.HalfReader(bytes.NewReader(pt))))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("SealReader differs (err %v)", err)
		}
	})
}
