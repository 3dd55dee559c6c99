package format

import "fmt"

// PartAlign is what every part's offset, and the length of every part but
// the last, must be a multiple of: the AES block (16 bytes) for V2 and V3,
// the segment size for the segmented format.
func (s *Sealer) PartAlign() int { return s.body.partAlign() }

// PartSize is the size of the sealed form of a part of n plaintext bytes
// (without the V2/V3 tag, which Tag returns).
func (s *Sealer) PartSize(n int) int { return s.body.partSize(n) }

// SealPart seals, in place, one part of the object's plaintext for an
// upload in parts: buf[:n] holds the plaintext that starts at byte off of
// the object, and len(buf) must be at least PartSize(n). It returns the
// part's ciphertext, in buf. Parts may be sealed in any order and
// concurrently, and sealed again to retry an upload (the same bytes result:
// re-seal only the same plaintext). off must be a multiple of PartAlign, and
// so must n unless last, which marks the part that ends the object (the only
// part that may be empty: the empty object). A V2/V3 object's body is its
// parts' ciphertexts in order, then Tag; a segmented part is its segments,
// numbered object-wide, the object's final segment ending the last part.
func (s *Sealer) SealPart(buf []byte, n int, off int64, last bool) ([]byte, error) {
	align := int64(s.PartAlign())
	switch {
	case n < 0 || n > len(buf) || len(buf) < s.PartSize(n):
		return nil, fmt.Errorf("%w: a part of %d bytes needs a buffer of %d", ErrMalformed, n, s.PartSize(n))
	case off < 0 || off%align != 0:
		return nil, fmt.Errorf("%w: part offset %d is not a multiple of %d", ErrMalformed, off, align)
	case !last && (n == 0 || int64(n)%align != 0):
		return nil, fmt.Errorf("%w: a part of %d bytes that does not end the object must be a positive multiple of %d", ErrMalformed, n, align)
	case last && n == 0 && off != 0:
		return nil, fmt.Errorf("%w: an empty last part after %d bytes; the part before it ends the object", ErrMalformed, off)
	}
	return s.body.sealPart(buf, n, off, last)
}

// Tag returns what follows the last part of an object uploaded in parts:
// for V2 and V3 the GCM tag, once parts covering the plaintext from byte 0
// to the end of the last part have been sealed; for the segmented format
// nothing.
func (s *Sealer) Tag() ([]byte, error) { return s.body.tag() }
