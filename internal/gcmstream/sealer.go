package gcmstream

import (
	"crypto/subtle"
	"fmt"
)

// Sealer encrypts a message incrementally: output of all Seal calls followed
// by Finish == cipher.AEAD.Seal(nil, nonce, wholePlaintext, aad) byte for
// byte. It is not safe for concurrent use; obtain it from Stream.NewSealer.
type Sealer struct {
	s        *Stream
	acc      elem
	total    uint64 // plaintext bytes sealed so far
	partial  bool   // the last Seal ended in a partial block
	finished bool
	wk       work
}

// NewSealer returns a Sealer for the message, positioned at its first byte.
// Each call starts a new pass; since (key, nonce) must never encrypt two
// different messages, seal one message per Stream.
func (s *Stream) NewSealer() *Sealer {
	return &Sealer{s: s, acc: s.acc0}
}

// Seal appends to dst the ciphertext of plaintext, the next bytes of the
// message, and returns the extended slice. Every call but the last must
// carry a multiple of 16 bytes: a call after one that did not returns an
// error wrapping ErrChunk, as does a call after Finish. If the message would
// exceed MaxPlaintext it returns ErrTooLarge. On error nothing is appended
// and the Sealer is unchanged. Seal writes only the len(plaintext) bytes it
// appends; plaintext may be exactly that region (in place,
// Seal(buf[:0], buf)) but must not otherwise overlap it. Large calls are
// cheapest: the per-call overhead is two small AEAD calls and a few GF(2^128)
// multiplies, negligible from a few KiB up. Empty calls are no-ops.
func (w *Sealer) Seal(dst, plaintext []byte) ([]byte, error) {
	return w.seal(dst, plaintext, false)
}

// seal is Seal; spare is passed on to sealAt.
func (w *Sealer) seal(dst, plaintext []byte, spare bool) ([]byte, error) {
	if w.finished {
		return dst, fmt.Errorf("%w: Seal after Finish", ErrChunk)
	}
	n := uint64(len(plaintext))
	if n == 0 {
		return dst, nil
	}
	if w.partial {
		return dst, ErrChunk
	}
	if n > MaxPlaintext-w.total {
		return dst, ErrTooLarge
	}
	dst, q := w.s.sealAt(&w.wk, dst, plaintext, w.total/BlockSize, spare)
	w.acc = w.s.mulPowH(&w.wk.pc, w.acc, blocks(n)).xor(q)
	w.total += n
	w.partial = n%BlockSize != 0
	return dst, nil
}

// Add absorbs a chunk sealed elsewhere with SealChunk, as if Seal had
// sealed it: its Partial must start where the message sealed so far ends
// (chunks sealed on several goroutines are added in order). The errors are
// those of Seal, and Tag's for a Partial that does not fit; on error the
// Sealer is unchanged.
func (w *Sealer) Add(p Partial) error {
	switch {
	case w.finished:
		return fmt.Errorf("%w: Add after Finish", ErrChunk)
	case p.s != w.s:
		return fmt.Errorf("%w: partial does not belong to this Stream", ErrChunk)
	case p.err != nil:
		return p.err
	case p.n == 0:
		return nil
	case w.partial:
		return ErrChunk
	case p.off != w.total:
		return fmt.Errorf("%w: partial starts at %d, want %d (not contiguous)", ErrChunk, p.off, w.total)
	}
	w.acc = w.s.mulPowH(&w.wk.pc, w.acc, blocks(p.n)).xor(p.q)
	w.total += p.n
	w.partial = p.n%BlockSize != 0
	return nil
}

// Finish appends the 16-byte tag of the message sealed so far to dst and
// ends the message: later Seal calls fail. Calling Finish again appends the
// same tag.
func (w *Sealer) Finish(dst []byte) []byte {
	w.finished = true
	ret, out := sliceForAppend(dst, TagSize)
	w.s.finalTag(w.acc, w.total).put(out)
	return ret
}

// Opener verifies a message's tag incrementally (it does NOT decrypt). Feed
// it the whole ciphertext body with Hash, then call Verify; decrypt with
// Stream.XORKeyStreamAt, and release plaintext only once Verify returned nil.
// It is not safe for concurrent use; obtain it from Stream.NewOpener.
type Opener struct {
	s        *Stream
	acc      elem
	total    uint64
	partial  bool
	verified bool
	wk       work
}

// NewOpener returns an Opener for the message, positioned at its first byte.
func (s *Stream) NewOpener() *Opener {
	return &Opener{s: s, acc: s.acc0}
}

// Hash absorbs ciphertext (without tag); all calls but the last a multiple
// of 16 (ErrChunk); ErrTooLarge past MaxPlaintext. A call after Verify also
// fails with an error wrapping ErrChunk. On error the Opener is unchanged.
// Each call runs the assembly GHASH over the whole of ciphertext; pass large
// pieces. Empty calls are no-ops.
func (o *Opener) Hash(ciphertext []byte) error {
	if o.verified {
		return fmt.Errorf("%w: Hash after Verify", ErrChunk)
	}
	n := uint64(len(ciphertext))
	if n == 0 {
		return nil
	}
	if o.partial {
		return ErrChunk
	}
	if n > MaxPlaintext-o.total {
		return ErrTooLarge
	}
	q := o.s.hashPiece(o.wk.scratch[:0], ciphertext)
	o.absorb(q, n)
	return nil
}

// Add absorbs the Partial of the next chunk of ciphertext, as Hash would
// absorb the chunk itself: chunks hashed with HashChunk on several
// goroutines are combined here in order, one GF(2^128) multiply each, so
// the assembly GHASH can run on several cores. Partials must come in
// order, each starting where the last ended. It fails as Hash does, and
// also (ErrChunk) for a Partial of another Stream, a zero Partial, one out
// of order or one that carries an error from HashChunk; on error the
// Opener is unchanged.
func (o *Opener) Add(p Partial) error {
	switch {
	case o.verified:
		return fmt.Errorf("%w: Add after Verify", ErrChunk)
	case p.s != o.s:
		return fmt.Errorf("%w: partial does not belong to this Stream", ErrChunk)
	case p.err != nil:
		return p.err
	case p.off != o.total:
		return fmt.Errorf("%w: partial starts at %d, want %d (not contiguous)", ErrChunk, p.off, o.total)
	case p.n == 0:
		return nil
	case o.partial:
		return ErrChunk
	case p.n > MaxPlaintext-o.total:
		return ErrTooLarge
	}
	o.absorb(p.q, p.n)
	return nil
}

// absorb is one Horner step: the GHASH contribution q of the next n bytes.
func (o *Opener) absorb(q elem, n uint64) {
	o.acc = o.s.mulPowH(&o.wk.pc, o.acc, blocks(n)).xor(q)
	o.total += n
	o.partial = n%BlockSize != 0
}

// Verify compares tag with the tag of the ciphertext hashed so far, in
// constant time (crypto/subtle). It returns nil only if they are equal, and
// ErrAuthentication on mismatch or if tag is not TagSize bytes long. It ends
// the message: later Hash calls fail; Verify may be called again.
func (o *Opener) Verify(tag []byte) error {
	o.verified = true
	var want [TagSize]byte
	o.s.finalTag(o.acc, o.total).put(want[:])
	if subtle.ConstantTimeCompare(want[:], tag) != 1 {
		return ErrAuthentication
	}
	return nil
}
