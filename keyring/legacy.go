package keyring

// Legacy wrap algorithms: unwrap only. The caller decides whether they may be
// used at all; these functions only implement them.

import (
	"crypto"
	"crypto/aes"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// aesWrapIV is the default initial value of RFC 3394, section 2.2.3.1.
var aesWrapIV = [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

// unwrapAESWrap implements the RFC 3394 key unwrap (section 2.2.2, index
// based) with the default IV, for the "AESWrap" algorithm of the AWS Java SDK
// v1 (javax.crypto "AESWrap").
func (k *AES) unwrapAESWrap(ct []byte) ([]byte, error) {
	// n+1 64-bit blocks for n >= 2; the result must be an AES key.
	if len(ct)%8 != 0 || !validKeyLen(len(ct)-8) {
		return nil, unwrapError(format.WrapLegacyAESWrap, envelope.ErrAuthentication)
	}
	n := len(ct)/8 - 1
	a := binary.BigEndian.Uint64(ct[:8])
	r := make([]byte, n*8)
	copy(r, ct[8:])
	var b [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			ri := r[(i-1)*8 : i*8]
			binary.BigEndian.PutUint64(b[:8], a^uint64(n*j+i))
			copy(b[8:], ri)
			k.block.Decrypt(b[:], b[:])
			a = binary.BigEndian.Uint64(b[:8])
			copy(ri, b[8:])
		}
	}
	clear(b[:])
	var got [8]byte
	binary.BigEndian.PutUint64(got[:], a)
	if subtle.ConstantTimeCompare(got[:], aesWrapIV[:]) != 1 {
		clear(r)
		return nil, unwrapError(format.WrapLegacyAESWrap, envelope.ErrAuthentication)
	}
	return r, nil
}

// unwrapECB decrypts a data key wrapped with AES/ECB/PKCS5Padding (the "AES"
// algorithm of format V1: javax.crypto "AES" with the master key). The
// padding is checked strictly and without data-dependent branches; the
// result must be 16, 24 or 32 bytes.
func (k *AES) unwrapECB(ct []byte) ([]byte, error) {
	const bs = aes.BlockSize
	// A 16- or 24-byte key pads to 32 bytes, a 32-byte key to 48.
	if len(ct) != 2*bs && len(ct) != 3*bs {
		return nil, unwrapError(format.WrapLegacyAES, envelope.ErrAuthentication)
	}
	pt := make([]byte, len(ct))
	for off := 0; off < len(ct); off += bs {
		k.block.Decrypt(pt[off:off+bs], ct[off:off+bs])
	}
	last := pt[len(pt)-bs:]
	pad := int(last[bs-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, bs)
	for i := range bs {
		inPad := subtle.ConstantTimeLessOrEq(i+1, pad) // byte bs-1-i is padding
		eq := subtle.ConstantTimeByteEq(last[bs-1-i], byte(pad))
		good &= (1 ^ inPad) | eq
	}
	keyLen := len(pt) - pad
	if good != 1 || !validKeyLen(keyLen) {
		clear(pt)
		return nil, unwrapError(format.WrapLegacyAES, envelope.ErrAuthentication)
	}
	key := make([]byte, keyLen)
	copy(key, pt)
	clear(pt)
	return key, nil
}

// unwrapOAEPSHA256 decrypts a data key wrapped with the Java transformation
// "RSA/ECB/OAEPWithSHA-256AndMGF1Padding" (AWS Java SDK v1). The plaintext is
// the raw data key. Java's default provider (SunJCE) uses SHA-256 for the
// OAEP hash but SHA-1 for MGF1, while Bouncy Castle uses SHA-256 for both, and
// both have written such objects; so both are tried, always both, and the one
// whose padding checks is taken.
func (k *RSA) unwrapOAEPSHA256(ct []byte) ([]byte, error) {
	p1, err1 := k.priv.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1})
	p2, err2 := k.priv.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256})
	var key []byte
	switch {
	case err1 == nil:
		key = p1
		clear(p2)
	case err2 == nil:
		key = p2
	}
	if !validKeyLen(len(key)) {
		clear(key)
		return nil, unwrapError(format.WrapLegacyRSAOAEPSHA256, envelope.ErrAuthentication)
	}
	return key, nil
}

// unwrapPKCS1v15 decrypts a data key wrapped with RSA PKCS #1 v1.5 encryption
// (the "RSA" algorithm of format V1: javax.crypto "RSA" =
// RSA/ECB/PKCS1Padding). The plaintext is the raw data key.
//
// Because data keys of 16, 24 and 32 bytes all occur, the fixed-length,
// error-free rsa.DecryptPKCS1v15SessionKey cannot be used; a padding failure
// is reported, as ErrAuthentication with the same message as a key of the
// wrong size. This leaves a Bleichenbacher-style oracle to whoever can submit
// objects and observe the outcome, which is why the caller must gate legacy
// algorithms.
func (k *RSA) unwrapPKCS1v15(ct []byte) ([]byte, error) {
	//lint:ignore SA1019 format V1 objects are wrapped with PKCS #1 v1.5; decrypt only, opt-in.
	key, err := rsa.DecryptPKCS1v15(nil, k.priv, ct)
	if err != nil || !validKeyLen(len(key)) {
		clear(key)
		return nil, unwrapError(format.WrapLegacyRSA, envelope.ErrAuthentication)
	}
	return key, nil
}
