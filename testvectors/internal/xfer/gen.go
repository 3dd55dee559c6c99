package xfer

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	mrand "math/rand/v2"
)

// genBlock is the unit in which the body is generated: block i is the
// ChaCha8 stream seeded with (seed, i), so any offset can be reached without
// generating what comes before it.
const genBlock = 64 << 10

// Gen is size deterministic pseudo-random bytes, readable and seekable. It is
// seekable because AWS's PutObject learns a body's length by seeking (it
// panics on a body it cannot seek), and the Uploaders learn it the same way.
type Gen struct {
	seed      uint64
	size, off int64
	blk       int64 // the block in buf, or -1
	buf       []byte
}

// NewGen returns the body of size bytes for seed, at offset 0.
func NewGen(seed uint64, size int64) *Gen {
	return &Gen{seed: seed, size: size, blk: -1, buf: make([]byte, genBlock)}
}

func (g *Gen) fill(blk int64) {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[0:], g.seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(blk))
	c := mrand.NewChaCha8(s)
	c.Read(g.buf)
	g.blk = blk
}

func (g *Gen) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.off < g.size {
		if blk := g.off / genBlock; blk != g.blk {
			g.fill(blk)
		}
		i := int(g.off % genBlock)
		end := genBlock
		if left := g.size - g.off; left < int64(genBlock-i) {
			end = i + int(left)
		}
		k := copy(p[n:], g.buf[i:end])
		n += k
		g.off += int64(k)
	}
	return n, nil
}

func (g *Gen) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = g.off + offset
	case io.SeekEnd:
		abs = g.size + offset
	default:
		return 0, errors.New("gen: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("gen: negative offset")
	}
	g.off = abs
	return abs, nil
}

// NewCRC returns the digest the downloads are checked with: CRC-32C,
// hardware-assisted and cheap, so that the clients dominate the time.
func NewCRC() hash.Hash32 { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }

// Digest returns the hex CRC-32C of NewGen(seed, size), what a download of
// that body must produce.
func Digest(seed uint64, size int64) (string, error) {
	h := NewCRC()
	if _, err := io.Copy(h, NewGen(seed, size)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
