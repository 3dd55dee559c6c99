// Package gcmstream produces and checks ONE standard AES-GCM message (12-byte
// nonce, optional additional data, 16-byte tag) in pieces, in constant memory,
// while every bulk byte still goes through the standard library's assembly
// AES-GCM and AES-CTR code.
//
// A message is cut into chunks whose lengths, except the last, are multiples
// of 16 bytes. Chunk j starting at block b is sealed by an AEAD built with
// cipher.NewGCMWithNonceSize(block, 16) under an IV solved so that its
// pre-counter block is nonce||uint32(1+b): its ciphertext is then exactly the
// message's ciphertext for that stretch, and its tag yields the chunk's GHASH
// contribution. Contributions are combined by Horner's rule in GF(2^128). For
// verification, the GHASH of a ciphertext chunk is obtained by passing it as
// additional data to the same AEAD (design note: streaming-gcm.md).
//
// Lengths, offsets and block counts are treated as public. The pure-Go
// GF(2^128) arithmetic on H and the accumulators is constant time, tags are
// compared with crypto/subtle, and the bulk work is crypto/cipher's, which is
// constant time where AES and carry-less multiply instructions exist.
package gcmstream

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

const (
	// BlockSize is the AES block size. Every chunk but the last of a message
	// must be a multiple of it.
	BlockSize = 16
	// TagSize is the length of the authentication tag that ends a message.
	TagSize = 16
	// NonceSize is the length of the nonce New accepts (the standard GCM IV).
	NonceSize = 12
	// MaxPlaintext is the largest number of bytes one GCM message may carry
	// (2^32-2 blocks, NIST SP 800-38D). Every method refuses to go past it.
	MaxPlaintext = 1<<36 - 32
)

var (
	// ErrAuthentication is returned by Opener.Verify when the tag does not
	// match the message (tampered ciphertext, tag, nonce, key or AAD).
	ErrAuthentication = errors.New("gcmstream: message authentication failed")
	// ErrTooLarge is returned (possibly wrapped) when a message would exceed
	// MaxPlaintext bytes, or its additional data would exceed 2^61-1 bytes.
	ErrTooLarge = errors.New("gcmstream: message exceeds the AES-GCM length limit")
	// ErrChunk reports misuse of the chunked API: a partial block that is not
	// the last chunk, a misaligned or non-contiguous Partial, or a call after
	// the message was finished. Errors wrapping it say which.
	ErrChunk = errors.New("gcmstream: only the last chunk may be a partial block") // misuse
)

const (
	// chunkBlocks is the common chunk size in blocks (64 KiB), whose power
	// of H New precomputes.
	chunkBlocks = 4096
	// maxAAD bounds the additional data so that its bit length fits 64 bits.
	maxAAD = 1<<61 - 1
)

// Stream is the key/nonce/AAD state of one AES-GCM message; safe for
// concurrent use by its methods that take offsets (SealChunk, HashChunk,
// XORKeyStreamAt), since parallel multipart encryption will call them from
// several goroutines. A Stream is never modified after New, so every one of
// its methods (including NewSealer, NewOpener and Tag) may run concurrently;
// the Sealer, Opener and SealReader it hands out are not safe for concurrent
// use themselves.
type Stream struct {
	block  cipher.Block // AES under the message key
	gcm16  cipher.AEAD  // GCM with 16-byte nonces (same assembly path)
	nonce  [NonceSize]byte
	aadLen uint64

	h        elem      // H = E_K(0^128)
	ekJ0     elem      // E_K(nonce||1), the tag mask
	acc0     elem      // GHASH contribution of the AAD (Horner seed)
	ivBase   elem      // (nonce||0 ⊕ L_iv·H)·H^-2
	ivTab    *mulTable // x^k·H^-2: IV for counter c is ivBase ⊕ (0^96||c)·H^-2
	hTab     *mulTable // x^k·H: products by H (length blocks, Horner steps)
	h2Tab    *mulTable // x^k·H^2
	chunkTab *mulTable // x^k·H^chunkBlocks
	hashIV   [16]byte  // 16-byte IV whose pre-counter block is 0^128, so E_K(J0) = H
}

// New returns the Stream of the AES-GCM message under key (16, 24 or 32
// bytes, selecting AES-128/192/256) and nonce (NonceSize bytes) with
// additional data aad (any length, nil allowed; New absorbs it into the
// GHASH seed and does not retain the slice). It costs about 50 µs (an
// inversion and tables in GF(2^128)), negligible per object.
func New(key, nonce, aad []byte) (*Stream, error) {
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("gcmstream: nonce is %d bytes, want %d", len(nonce), NonceSize)
	}
	if uint64(len(aad)) > maxAAD {
		return nil, fmt.Errorf("%w: additional data too long", ErrTooLarge)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("gcmstream: %w", err)
	}
	gcm16, err := cipher.NewGCMWithNonceSize(block, 16)
	if err != nil {
		return nil, fmt.Errorf("gcmstream: %w", err)
	}
	s := &Stream{block: block, gcm16: gcm16, aadLen: uint64(len(aad))}
	copy(s.nonce[:], nonce)

	var buf [32]byte
	block.Encrypt(buf[:16], buf[:16]) // H = E_K(0^128)
	s.h = loadElem(buf[:16])
	if s.h == (elem{}) {
		// Probability 2^-128: GHASH would be identically zero and no IV
		// could be solved for. Refuse the key rather than mis-encrypt.
		return nil, errors.New("gcmstream: degenerate key (E_K(0) = 0)")
	}
	h2 := gfMul(s.h, s.h)
	s.hTab = newMulTable(s.h)
	s.h2Tab = newMulTable(h2)
	s.chunkTab = newMulTable(gfPow(s.h, chunkBlocks))
	hInv2 := gfInv(h2)
	s.ivTab = newMulTable(hInv2)

	// A 16-byte IV V gives the pre-counter block J0 = V·H^2 ⊕ L_iv·H with
	// L_iv = [0]64||[128]64, so the IV for a wanted J0 = T is
	// (T ⊕ L_iv·H)·H^-2.
	livH := s.hTab.mul(elem{0, 128})
	n := elem{binary.BigEndian.Uint64(s.nonce[:8]), uint64(binary.BigEndian.Uint32(s.nonce[8:])) << 32}
	s.ivBase = gfMul(n.xor(livH), hInv2)
	gfMul(livH, hInv2).put(s.hashIV[:]) // J0 = 0^128

	s.counterBlock(buf[:16], 1)
	block.Encrypt(buf[:16], buf[:16])
	s.ekJ0 = loadElem(buf[:16])

	s.acc0 = s.hashPiece(buf[:0], aad)
	return s, nil
}

// counterBlock writes nonce||uint32(c) to b.
func (s *Stream) counterBlock(b []byte, c uint32) {
	copy(b[:NonceSize], s.nonce[:])
	binary.BigEndian.PutUint32(b[NonceSize:16], c)
}

// ivFor writes to iv the 16-byte IV whose GCM pre-counter block is
// nonce||uint32(c); its keystream then starts at counter c+1.
func (s *Stream) ivFor(iv []byte, c uint32) {
	s.ivBase.xor(s.ivTab.mul(elem{0, uint64(c)})).put(iv)
}

// lenH returns ([a]64||[c]64)·H for bit lengths a and c.
func (s *Stream) lenH(aBits, cBits uint64) elem { return s.hTab.mul(elem{aBits, cBits}) }

// mulPowH returns x·H^m in constant time with respect to x and H, using
// the precomputed tables when it can and the one-entry cache c otherwise.
func (s *Stream) mulPowH(c *powCache, x elem, m uint64) elem {
	var t *mulTable
	switch m {
	case 0:
		return x
	case 1:
		t = s.hTab
	case 2:
		t = s.h2Tab
	case chunkBlocks:
		t = s.chunkTab
	default:
		if !c.ok || c.m != m {
			c.tab.init(gfPow(s.h, m))
			c.m, c.ok = m, true
		}
		t = &c.tab
	}
	return t.mulCT(x)
}

// finalTag returns the message tag given the Horner accumulator over AAD and
// ciphertext and the ciphertext length.
func (s *Stream) finalTag(acc elem, total uint64) elem {
	return acc.xor(s.lenH(8*s.aadLen, 8*total)).xor(s.ekJ0)
}

// powCache holds the table of H^m for the last block count m not covered
// by the Stream's precomputed powers.
type powCache struct {
	m   uint64
	ok  bool
	tab mulTable
}

// work holds the scratch buffers of one sealing/hashing context. They live
// in the heap object of a Sealer/Opener so that the interface calls into
// crypto/cipher do not allocate on every chunk.
type work struct {
	iv      [16]byte
	ctr     [16]byte
	tail    [2 * BlockSize]byte
	scratch [2*BlockSize + TagSize]byte
	pc      powCache
}

func blocks(n uint64) uint64 { return (n + BlockSize - 1) / BlockSize }

// sliceForAppend extends in by n bytes, reallocating (with append's
// amortized growth) only if its capacity is short, and returns the whole and
// the n new bytes.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	head = slices.Grow(in, n)[:len(in)+n]
	return head, head[len(in):]
}

// sealAt appends to dst the ciphertext of pt, the message bytes starting at
// block b, and returns pt's GHASH contribution Q = Σ C_i·H^(m-i+2) (m =
// pt's block count). It writes nothing outside the appended len(pt) bytes.
// pt may be exactly the appended region (in place); the caller has checked
// the MaxPlaintext bound. If spare is set, the caller owns the TagSize bytes
// of capacity after the appended region and lets them be overwritten.
func (s *Stream) sealAt(wk *work, dst, pt []byte, b uint64, spare bool) ([]byte, elem) {
	n := len(pt)
	if n == 0 {
		return dst, elem{}
	}
	ret, out := sliceForAppend(dst, n)
	if spare && cap(out) >= n+TagSize {
		return ret, s.sealPiece(wk, out[:0], pt, b)
	}
	if n <= len(wk.tail) {
		q := s.sealPiece(wk, wk.scratch[:0], pt, b)
		copy(out, wk.scratch[:n])
		return ret, q
	}
	// The AEAD writes its tag right after the ciphertext. To keep that
	// inside the region we own, seal all but the last 1–2 blocks in place
	// (the tag lands where the last block goes) and those blocks apart.
	tail := BlockSize + n%BlockSize
	head := n - tail
	copy(wk.tail[:tail], pt[head:]) // pt may alias out: save before it is overwritten
	q1 := s.sealPiece(wk, out[:0], pt[:head], b)
	q2 := s.sealPiece(wk, wk.scratch[:0], wk.tail[:tail], b+uint64(head/BlockSize))
	copy(out[head:], wk.scratch[:tail])
	return ret, s.mulPowH(&wk.pc, q1, blocks(uint64(tail))).xor(q2)
}

// sealPiece seals pt (message bytes from block b) with the 16-byte-nonce
// AEAD into dst[:len(pt)+TagSize] and returns pt's GHASH contribution.
func (s *Stream) sealPiece(wk *work, dst, pt []byte, b uint64) elem {
	c := uint32(1 + b)
	s.ivFor(wk.iv[:], c)
	r := s.gcm16.Seal(dst, wk.iv[:], pt, nil)
	t := loadElem(r[len(pt):])
	// The piece's tag is GHASH_H(∅, C) ⊕ E_K(nonce||c), where GHASH ends with
	// the length block [0]64||[8·len]64 times H.
	s.counterBlock(wk.ctr[:], c)
	s.block.Encrypt(wk.ctr[:], wk.ctr[:])
	return t.xor(loadElem(wk.ctr[:])).xor(s.lenH(0, 8*uint64(len(pt))))
}

// hashPiece returns the GHASH contribution Σ X_i·H^(m-i+2) of data (its
// zero-padded blocks X_1..X_m), computed by the assembly GHASH: the AEAD's
// tag for AAD = data, no plaintext and pre-counter block 0^128 is
// GHASH_H(data, ∅) ⊕ H. scratch needs TagSize bytes of capacity.
func (s *Stream) hashPiece(scratch, data []byte) elem {
	if len(data) == 0 {
		return elem{}
	}
	r := s.gcm16.Seal(scratch[:0], s.hashIV[:], nil, data)
	return loadElem(r).xor(s.h).xor(s.lenH(8*uint64(len(data)), 0))
}

// XORKeyStreamAt writes to dst the GCM keystream XOR src for the message
// bytes starting at byte offset off (any offset, need not be block aligned)
// — decrypts (or encrypts) that stretch of the body. Uses cipher.NewCTR
// (assembly) internally. It does not authenticate anything: release the
// result only after Opener.Verify (or Tag) has accepted the message.
// dst must be at least as long as src, and dst and src must overlap entirely
// or not at all. It panics if the stretch extends past MaxPlaintext, where
// no GCM message has a keystream.
func (s *Stream) XORKeyStreamAt(dst, src []byte, off uint64) {
	if len(dst) < len(src) {
		panic("gcmstream: XORKeyStreamAt: output smaller than input")
	}
	if off > MaxPlaintext || uint64(len(src)) > MaxPlaintext-off {
		panic("gcmstream: XORKeyStreamAt: range beyond MaxPlaintext")
	}
	if len(src) == 0 {
		return
	}
	dst = dst[:len(src)]
	var ctr [16]byte
	b := off / BlockSize
	if skip := int(off % BlockSize); skip != 0 {
		var ks [16]byte
		s.counterBlock(ctr[:], uint32(2+b))
		s.block.Encrypt(ks[:], ctr[:])
		k := min(BlockSize-skip, len(src))
		for i := 0; i < k; i++ {
			dst[i] = src[i] ^ ks[skip+i]
		}
		dst, src = dst[k:], src[k:]
		b++
		if len(src) == 0 {
			return
		}
	}
	// Data block b uses counter nonce||2+b. cipher's CTR increments all 128
	// bits where GCM's inc32 wraps the low 32, but within MaxPlaintext the
	// low 32 bits never exceed 2^32-1, so the two agree.
	s.counterBlock(ctr[:], uint32(2+b))
	cipher.NewCTR(s.block, ctr[:]).XORKeyStream(dst, src)
}

// Partial is the GHASH contribution of one chunk of a message and the
// chunk's position (offset and length), as returned by SealChunk and
// HashChunk. Partials of consecutive chunks are combined by Stream.Tag. A
// Partial returned for a misused call (misaligned offset, past
// MaxPlaintext) carries that error and makes Tag fail. The zero Partial is
// invalid.
type Partial struct {
	s   *Stream
	off uint64
	n   uint64
	q   elem
	err error
}

// Fingerprint is the chunk's GHASH contribution: the same for the same
// ciphertext at the same place, and, for a change of the chunk made
// without knowledge of the key, different but with probability at most
// (chunk blocks)/2^128. It lets a caller check that a chunk sealed again
// is the one sealed before without hashing the plaintext once more. Keep
// it secret like the key: it is a polynomial in H.
func (p Partial) Fingerprint() [16]byte {
	var b [16]byte
	p.q.put(b[:])
	return b
}

// checkChunk validates a chunk of n bytes at byte offset off.
func checkChunk(off, n uint64) error {
	if off%BlockSize != 0 {
		return fmt.Errorf("%w: chunk offset %d is not a multiple of %d", ErrChunk, off, BlockSize)
	}
	if off > MaxPlaintext || n > MaxPlaintext-off {
		return ErrTooLarge
	}
	return nil
}

// SealChunk appends to dst the ciphertext of plaintext, the message bytes
// starting at byte offset off, and returns dst and the chunk's Partial. off
// must be a multiple of 16; only the chunk that ends the message may have a
// length that is not. It writes nothing beyond the len(plaintext) bytes it
// appends, so concurrent calls may fill disjoint parts of one buffer;
// plaintext may be exactly the appended region (in place) but must not
// otherwise overlap it. If off is misaligned or the chunk ends past
// MaxPlaintext, nothing is appended and the Partial makes Tag fail with
// ErrChunk or ErrTooLarge.
func (s *Stream) SealChunk(dst, plaintext []byte, off uint64) ([]byte, Partial) {
	p := Partial{s: s, off: off, n: uint64(len(plaintext))}
	if p.err = checkChunk(off, p.n); p.err != nil {
		return dst, p
	}
	wk := new(work)
	dst, p.q = s.sealAt(wk, dst, plaintext, off/BlockSize, false)
	return dst, p
}

// HashChunk returns the Partial of ciphertext, the message body bytes
// (without tag) starting at byte offset off, for verification with Tag and
// a constant-time comparison against the received tag. The rules on off are
// those of SealChunk; a misused call yields a Partial that makes Tag fail.
func (s *Stream) HashChunk(ciphertext []byte, off uint64) Partial {
	p := Partial{s: s, off: off, n: uint64(len(ciphertext))}
	if p.err = checkChunk(off, p.n); p.err != nil {
		return p
	}
	p.q = s.hashPiece(make([]byte, 0, TagSize), ciphertext)
	return p
}

// Tag combines the partials of consecutive chunks covering [0, total) in
// order; errors if they are not contiguous or a non-last chunk is not block
// aligned. It returns the 16-byte tag of the message whose body is those
// chunks. The errors wrap ErrChunk (including a Partial of another Stream
// or a zero Partial) or ErrTooLarge. With no partials it returns the tag of
// the empty message. To verify a received tag, compare with
// crypto/subtle.ConstantTimeCompare.
func (s *Stream) Tag(parts ...Partial) ([]byte, error) {
	acc := s.acc0
	var next uint64
	var pc powCache
	for i, p := range parts {
		switch {
		case p.s != s:
			return nil, fmt.Errorf("%w: partial %d does not belong to this Stream", ErrChunk, i)
		case p.err != nil:
			return nil, p.err
		case p.off != next:
			return nil, fmt.Errorf("%w: partial %d starts at %d, want %d (not contiguous)", ErrChunk, i, p.off, next)
		case i < len(parts)-1 && p.n%BlockSize != 0:
			return nil, fmt.Errorf("%w: partial %d of %d bytes is not the last", ErrChunk, i, p.n)
		case p.n > MaxPlaintext-next:
			return nil, ErrTooLarge
		}
		acc = s.mulPowH(&pc, acc, blocks(p.n)).xor(p.q)
		next += p.n
	}
	tag := make([]byte, TagSize)
	s.finalTag(acc, next).put(tag)
	return tag, nil
}
