package gcmstream

import (
	"encoding/binary"
	"math/bits"
)

// elem is an element of GF(2^128) in GCM's representation (NIST SP 800-38D,
// section 6.3): the 16 bytes are read big-endian into hi||lo, and the most
// significant bit of hi is the coefficient of x^0, the least significant bit
// of lo the coefficient of x^127. Multiplying by x is therefore a right shift.
type elem struct{ hi, lo uint64 }

// one is the multiplicative identity (the polynomial 1).
var one = elem{hi: 1 << 63}

func loadElem(b []byte) elem {
	_ = b[15]
	return elem{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
}

func (e elem) put(b []byte) {
	_ = b[15]
	binary.BigEndian.PutUint64(b, e.hi)
	binary.BigEndian.PutUint64(b[8:], e.lo)
}

func (e elem) xor(f elem) elem { return elem{e.hi ^ f.hi, e.lo ^ f.lo} }

// mulX returns v·x reduced modulo x^128 + x^7 + x^2 + x + 1, in constant time.
func mulX(v elem) elem {
	m := -(v.lo & 1) // all ones if the x^127 coefficient shifts out
	return elem{
		hi: v.hi>>1 ^ (0xe1<<56)&m,
		lo: v.lo>>1 | v.hi<<63,
	}
}

// gfMul returns x·y (SP 800-38D Algorithm 1), in constant time with respect
// to both operands: the key-dependent values H, H^n and H^-2 pass through it.
func gfMul(x, y elem) elem {
	var z elem
	v := y
	for i := 63; i >= 0; i-- {
		m := -(x.hi >> uint(i) & 1)
		z.hi ^= v.hi & m
		z.lo ^= v.lo & m
		v = mulX(v)
	}
	for i := 63; i >= 0; i-- {
		m := -(x.lo >> uint(i) & 1)
		z.hi ^= v.hi & m
		z.lo ^= v.lo & m
		v = mulX(v)
	}
	return z
}

// gfPow returns h^n. The exponent (a block count) is public; h is not, and
// only passes through the constant-time gfMul.
func gfPow(h elem, n uint64) elem {
	r := one
	for i := bits.Len64(n) - 1; i >= 0; i-- {
		r = gfMul(r, r)
		if n>>uint(i)&1 == 1 {
			r = gfMul(r, h)
		}
	}
	return r
}

// gfInv returns a^-1 = a^(2^128-2) for a != 0 (Itoh–Tsujii addition chain:
// beta_k = a^(2^k-1), beta_2k = beta_k^(2^k)·beta_k, beta_k+1 = beta_k^2·a).
func gfInv(a elem) elem {
	beta, k := a, 1
	for k < 127 { // 1 → 3 → 7 → 15 → 31 → 63 → 127
		t := beta
		for i := 0; i < k; i++ {
			t = gfMul(t, t)
		}
		beta = gfMul(t, beta)
		k *= 2
		beta = gfMul(gfMul(beta, beta), a)
		k++
	}
	return gfMul(beta, beta) // a^(2^128-2)
}

// mulTable holds t[k] = x^k·y, so that e·y for a PUBLIC e (a length or a
// counter) is the XOR of the entries for e's set bits.
type mulTable [128]elem

func newMulTable(y elem) *mulTable {
	t := new(mulTable)
	t.init(y)
	return t
}

func (t *mulTable) init(y elem) {
	v := y
	for k := range t {
		t[k] = v
		v = mulX(v)
	}
}

// mulCT returns x·y in constant time: every entry is read and x's bits
// only select through masks. With the table built, this is several times
// faster than gfMul, as the products are independent of each other.
func (t *mulTable) mulCT(x elem) elem {
	var z elem
	hi, lo := x.hi, x.lo
	for k := 0; k < 64; k++ {
		m := -(hi >> 63)
		hi <<= 1
		z.hi ^= t[k].hi & m
		z.lo ^= t[k].lo & m
	}
	for k := 64; k < 128; k++ {
		m := -(lo >> 63)
		lo <<= 1
		z.hi ^= t[k].hi & m
		z.lo ^= t[k].lo & m
	}
	return z
}

// mul returns e·y for a PUBLIC e. Its running time depends on e, not on y.
func (t *mulTable) mul(e elem) elem {
	var z elem
	for v := e.hi; v != 0; v &= v - 1 {
		z = z.xor(t[63-bits.TrailingZeros64(v)])
	}
	for v := e.lo; v != 0; v &= v - 1 {
		z = z.xor(t[127-bits.TrailingZeros64(v)])
	}
	return z
}
