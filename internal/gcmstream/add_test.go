package gcmstream

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestOpenerAdd: partials hashed on several goroutines and added in order
// verify exactly the tags crypto/cipher made, for every test length and
// chunking, and refuse every altered tag.
func TestOpenerAdd(t *testing.T) {
	forEachFixture(t, func(t *testing.T, rng *rand.Rand, f *fixture) {
		for _, ch := range chunkings {
			sizes := ch.sizes(rng, len(f.ct))
			parts := make([]Partial, len(sizes))
			var wg sync.WaitGroup
			pos := 0
			for i, c := range sizes {
				a := pos
				wg.Go(func() { parts[i] = f.s.HashChunk(f.ct[a:a+c], uint64(a)) })
				pos += c
			}
			wg.Wait()
			o := f.s.NewOpener()
			for i, p := range parts {
				if err := o.Add(p); err != nil {
					t.Fatalf("%s: Add of partial %d: %v", ch.name, i, err)
				}
			}
			if err := o.Verify(f.tag); err != nil {
				t.Fatalf("%s: Verify of a genuine tag after Add: %v", ch.name, err)
			}
			bad := append([]byte(nil), f.tag...)
			bad[rng.IntN(TagSize)] ^= 1 << rng.IntN(8)
			if err := o.Verify(bad); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("%s: Verify of a wrong tag: %v", ch.name, err)
			}
		}
	})
}

// TestOpenerAddMixed: Hash and Add interleave on one Opener.
func TestOpenerAddMixed(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	f := newFixture(t, rng, 32, 3*65536+7, []byte{0x00, 0x73})
	o := f.s.NewOpener()
	pos := 0
	for i, c := range randomSizes(rng, len(f.ct)) {
		var err error
		if i%2 == 0 {
			err = o.Hash(f.ct[pos : pos+c])
		} else {
			err = o.Add(f.s.HashChunk(f.ct[pos:pos+c], uint64(pos)))
		}
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		pos += c
	}
	if err := o.Verify(f.tag); err != nil {
		t.Fatal(err)
	}
}

// TestOpenerAddMisuse: every Partial that Tag refuses, Add refuses too,
// with ErrChunk, and leaves the Opener as it was.
func TestOpenerAddMisuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	f := newFixture(t, rng, 16, 100, nil)
	other, err := New(f.key, f.nonce, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := func(a, b int) Partial { return f.s.HashChunk(f.ct[a:b], uint64(a)) }
	for name, tc := range map[string]struct {
		before []Partial
		bad    Partial
	}{
		"gap":               {[]Partial{h(0, 32)}, h(48, 100)},
		"overlap":           {[]Partial{h(0, 48)}, h(32, 100)},
		"repeated":          {[]Partial{h(0, 32)}, h(0, 32)},
		"not from 0":        {nil, h(16, 100)},
		"after a partial":   {[]Partial{f.s.HashChunk(f.ct[:33], 0)}, h(33, 100)},
		"zero Partial":      {nil, Partial{}},
		"foreign Stream":    {nil, other.HashChunk(f.ct, 0)},
		"misaligned":        {nil, f.s.HashChunk(f.ct[8:], 8)},
		"misaligned at end": {[]Partial{h(0, 32)}, f.s.HashChunk(f.ct[40:], 40)},
	} {
		o := f.s.NewOpener()
		for _, p := range tc.before {
			if err := o.Add(p); err != nil {
				t.Fatalf("%s: Add before: %v", name, err)
			}
		}
		if err := o.Add(tc.bad); !errors.Is(err, ErrChunk) {
			t.Errorf("%s: Add: %v, want ErrChunk", name, err)
		}
		// Unchanged: the rest of the message still verifies.
		var end uint64
		for _, p := range tc.before {
			end = p.off + p.n
		}
		if end%BlockSize != 0 {
			continue // nothing may follow a partial block
		}
		if err := o.Add(h(int(end), len(f.ct))); err != nil {
			t.Fatalf("%s: Add of the genuine rest: %v", name, err)
		}
		if err := o.Verify(f.tag); err != nil {
			t.Errorf("%s: the refused Add changed the Opener: %v", name, err)
		}
	}

	o := f.s.NewOpener()
	if err := o.Add(h(0, 100)); err != nil {
		t.Fatal(err)
	}
	if err := o.Verify(f.tag); err != nil {
		t.Fatal(err)
	}
	if err := o.Add(h(100, 100)); !errors.Is(err, ErrChunk) {
		t.Fatalf("Add after Verify: %v", err)
	}
	// Empty partials in order are no-ops.
	o = f.s.NewOpener()
	for _, p := range []Partial{h(0, 0), h(0, 48), h(48, 48), h(48, 100)} {
		if err := o.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Verify(f.tag); err != nil {
		t.Fatal(err)
	}
}

// TestOpenerAddTooLarge: a Partial that would take the message past
// MaxPlaintext is refused with ErrTooLarge, whichever way it was made.
func TestOpenerAddTooLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	f := newFixture(t, rng, 16, 64, nil)
	// HashChunk refuses a chunk ending past MaxPlaintext; Add passes its
	// error on.
	if err := f.s.NewOpener().Add(f.s.HashChunk(f.ct[:32], MaxPlaintext-16)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add of a partial past MaxPlaintext: %v", err)
	}
	// An Opener at MaxPlaintext-16 takes 16 bytes more and no more.
	o := f.s.NewOpener()
	o.total = MaxPlaintext - 16
	if err := o.Add(f.s.HashChunk(f.ct[:16], MaxPlaintext-16)); err != nil {
		t.Fatalf("Add of the last 16 bytes: %v", err)
	}
	// Add's own bound, for a Partial that got past HashChunk's.
	o = f.s.NewOpener()
	o.total = MaxPlaintext - 16
	if err := o.Add(Partial{s: f.s, off: MaxPlaintext - 16, n: 32}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add past MaxPlaintext: %v", err)
	}
}
