//go:build !race

package gcmstream

import (
	"io"
	"math/rand/v2"
	"testing"
)

// Allocation counts mean nothing under the race detector, so this file is
// built only without it; scripts/test runs it in a run of its own (the
// main test run uses -race).

func TestSteadyStateAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	f := newFixture(t, rng, 16, 1<<20, nil)
	pt := f.pt[:readerChunk]
	w := f.s.NewSealer()
	dst := make([]byte, 0, len(pt))
	if a := testing.AllocsPerRun(50, func() { _, _ = w.Seal(dst, pt) }); a != 0 {
		t.Errorf("Sealer.Seal (64 KiB): %v allocations per call", a)
	}
	odd := f.pt[:4000*16] // a chunk size without a precomputed power
	if a := testing.AllocsPerRun(50, func() { _, _ = w.Seal(dst, odd) }); a != 0 {
		t.Errorf("Sealer.Seal (repeated odd size): %v allocations per call", a)
	}
	o := f.s.NewOpener()
	if a := testing.AllocsPerRun(50, func() { _ = o.Hash(pt) }); a != 0 {
		t.Errorf("Opener.Hash: %v allocations per call", a)
	}
	r := NewSealReader(f.s, zeroSource{})
	p := make([]byte, 8192)
	if a := testing.AllocsPerRun(200, func() { _, _ = io.ReadFull(r, p) }); a != 0 {
		t.Errorf("SealReader.Read: %v allocations per call", a)
	}
	p = make([]byte, 1<<20)
	if a := testing.AllocsPerRun(50, func() { _, _ = io.ReadFull(r, p) }); a != 0 {
		t.Errorf("SealReader.Read (large p): %v allocations per call", a)
	}
}

type zeroSource struct{}

func (zeroSource) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
