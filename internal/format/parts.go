package format

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/s3envelope/s3envelope/internal/gcmstream"
	"github.com/s3envelope/s3envelope/internal/segment"
)

// partState records the GCM partials of the parts sealed so far.
type partState struct {
	mu    sync.Mutex
	parts map[int64]sealedPart // by offset
	end   int64                // plaintext end of the last part, or -1
}

type sealedPart struct {
	p gcmstream.Partial
	n int64
}

// PartAlign is what every part's offset, and the length of every part but
// the last, must be a multiple of: the AES block (16 bytes) for V2 and V3,
// the segment size for the segmented format.
func (s *Sealer) PartAlign() int {
	if s.seg != nil {
		return s.seg.Size()
	}
	return gcmstream.BlockSize
}

// PartSize is the size of the sealed form of a part of n plaintext bytes
// (without the V2/V3 tag, which Tag returns).
func (s *Sealer) PartSize(n int) int {
	if s.seg != nil {
		return n + segment.Overhead*int(segment.Count(int64(n), s.seg.Size()))
	}
	return n
}

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
	if s.seg != nil {
		return sealSegments(s.seg, buf, n, off, last), nil
	}
	if _, err := s.CiphertextSize(off + int64(n)); err != nil {
		return nil, err
	}
	ct, p := s.stream.SealChunk(buf[:0], buf[:n], uint64(off))
	s.parts.mu.Lock()
	defer s.parts.mu.Unlock()
	if s.parts.parts == nil {
		s.parts.parts, s.parts.end = map[int64]sealedPart{}, -1
	}
	s.parts.parts[off] = sealedPart{p, int64(n)}
	if last {
		s.parts.end = off + int64(n)
	}
	return ct, nil
}

// sealSegments seals the segments of a part in place: from the last one
// back, each segment's plaintext moves to its slot (16 bytes further per
// segment before it) and is sealed there.
func sealSegments(c *segment.Cipher, buf []byte, n int, off int64, last bool) []byte {
	size := c.Size()
	stride := size + segment.Overhead
	count := int(segment.Count(int64(n), size))
	first := off / int64(size)
	for k := count - 1; k >= 0; k-- {
		from, to := k*size, min((k+1)*size, n)
		slot := buf[k*stride : k*stride+(to-from)]
		copy(slot, buf[from:to]) // memmove: slot starts at or after from
		c.Seal(slot[:0], slot, first+int64(k), last && k == count-1)
	}
	return buf[:(count-1)*stride+(n-(count-1)*size)+segment.Overhead]
}

// errPartsMissing means Tag was asked for before the parts covering the
// object were sealed.
var errPartsMissing = errors.New("the sealed parts do not cover the object from its start to its last part")

// Tag returns what follows the last part of an object uploaded in parts:
// for V2 and V3 the GCM tag, once parts covering the plaintext from byte 0
// to the end of the last part have been sealed; for the segmented format
// nothing.
func (s *Sealer) Tag() ([]byte, error) {
	if s.seg != nil {
		return nil, nil
	}
	s.parts.mu.Lock()
	defer s.parts.mu.Unlock()
	if s.parts.parts == nil || s.parts.end < 0 {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, errPartsMissing)
	}
	offs := make([]int64, 0, len(s.parts.parts))
	for off := range s.parts.parts {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	ps := make([]gcmstream.Partial, len(offs))
	for i, off := range offs {
		ps[i] = s.parts.parts[off].p
	}
	last := offs[len(offs)-1]
	tag, err := s.stream.Tag(ps...)
	if err != nil || last+s.parts.parts[last].n != s.parts.end {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, errPartsMissing)
	}
	return tag, nil
}
