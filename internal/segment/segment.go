// Package segment seals and opens the body of the segmented format (SEG1):
// fixed-size segments, each sealed with AES-256-GCM under one content key
// with a nonce that binds the segment's index and whether it is the last.
// The format is specified in docs/segmented-format.md.
package segment

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

const (
	// Overhead is what sealing adds to each segment: its GCM tag.
	Overhead = 16
	// NonceSize is the GCM nonce: an 11-byte big-endian index and a flag.
	NonceSize = 12
	// MinSize and MaxSize bound the plaintext bytes per segment; sizes are
	// powers of two.
	MinSize = 4 << 10
	MaxSize = 16 << 20
	// DefaultSize keeps GCM's per-call cost near 0.3% and the storage
	// overhead at 0.024%, while a ranged read fetches at most two segments
	// more than it needs.
	DefaultSize = 64 << 10
	// KeySize is the content key: AES-256.
	KeySize = 32
)

// ErrAuthentication means a segment did not open, or the segments do not
// form a complete object: truncated, extended, reordered, or cut at a
// length no sealer produces.
var ErrAuthentication = errors.New("segment: authentication failed")

// ValidSize reports whether s is a segment size the format allows.
func ValidSize(s int) bool { return s >= MinSize && s <= MaxSize && s&(s-1) == 0 }

// Cipher seals and opens the segments of one object.
type Cipher struct {
	aead cipher.AEAD
	size int
}

// New returns the Cipher for a content key and segment size.
func New(key []byte, size int) (*Cipher, error) {
	if !ValidSize(size) {
		return nil, fmt.Errorf("segment: size %d is not a power of two in [%d, %d]", size, MinSize, MaxSize)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("segment: content key of %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Cipher{aead: aead, size: size}, nil
}

// Size is the plaintext bytes per segment.
func (c *Cipher) Size() int { return c.size }

func nonce(i int64, final bool) [NonceSize]byte {
	var n [NonceSize]byte
	binary.BigEndian.PutUint64(n[3:11], uint64(i))
	if final {
		n[11] = 1
	}
	return n
}

// Seal appends segment i, sealed, to dst. To seal in place use
// plaintext[:0] as dst.
func (c *Cipher) Seal(dst, plaintext []byte, i int64, final bool) []byte {
	n := nonce(i, final)
	return c.aead.Seal(dst, n[:], plaintext, nil)
}

// Open appends the plaintext of sealed segment i to dst. To open in place
// use ciphertext[:0] as dst. A segment that does not open as index i with
// that final flag fails with an error wrapping ErrAuthentication.
func (c *Cipher) Open(dst, ciphertext []byte, i int64, final bool) ([]byte, error) {
	n := nonce(i, final)
	out, err := c.aead.Open(dst, n[:], ciphertext, nil)
	if err != nil {
		kind := "segment"
		if final {
			kind = "final segment"
		}
		return nil, fmt.Errorf("%w: %s %d does not open", ErrAuthentication, kind, i)
	}
	return out, nil
}

// Count is the number of segments of a plaintext of p bytes: an empty
// object still has one (empty, final) segment.
func Count(p int64, size int) int64 {
	if p <= 0 {
		return 1
	}
	return (p-1)/int64(size) + 1
}

// CiphertextSize is the body size of a plaintext of p bytes, or false if it
// does not fit an int64.
func CiphertextSize(p int64, size int) (int64, bool) {
	if p < 0 {
		return 0, false
	}
	n := Count(p, size)
	if p > math.MaxInt64-Overhead*n {
		return 0, false
	}
	return p + Overhead*n, true
}

// PlaintextSize is the plaintext size and segment count of a body of c
// bytes, or ok false when no sealer produces a body of that length.
func PlaintextSize(c int64, size int) (p, n int64, ok bool) {
	if c < Overhead {
		return 0, 0, false
	}
	stride := int64(size) + Overhead
	n = (c-1)/stride + 1
	p = c - Overhead*n
	if p == 0 && n == 1 {
		return 0, 1, true
	}
	if p-(n-1)*int64(size) < 1 {
		return 0, 0, false
	}
	return p, n, true
}

// Span returns the segments first…last that hold plaintext bytes
// [off, end), end > off, and the ciphertext bytes [start, stop) that hold
// them in an object of plaintext size p.
func Span(size int, p, off, end int64) (first, last, start, stop int64) {
	s := int64(size)
	stride := s + Overhead
	first, last = off/s, (end-1)/s
	start = first * stride
	stop = (last + 1) * stride
	if n := Count(p, size); last == n-1 {
		stop = p + Overhead*n
	}
	return first, last, start, stop
}
