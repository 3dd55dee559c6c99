package keyring

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
)

// ErrKeyFormat is wrapped by the errors of ParseAES and ParseRSA for input
// that is not a key in a form they accept. Their messages say what was
// expected and give lengths and PEM block types, never any other part of the
// input.
var ErrKeyFormat = errors.New("key not in an accepted format")

// ParseAES returns an AES keyring, as NewAES, for an AES key (128, 192 or
// 256 bits: old master keys must stay readable) as key files hold one:
//
//   - raw: exactly 16, 24 or 32 bytes;
//   - hex: 32, 48 or 64 hex digits, in either case;
//   - base64 of 16, 24 or 32 bytes, padded or not, in the standard or the
//     URL alphabet (not a mix).
//
// One final "\n" or "\r\n" after hex or base64 is dropped; no other
// whitespace is accepted. Text is read as hex when it is all hex digits,
// else as base64; a raw key is never trimmed (its last byte may be '\n'),
// and raw bytes that are all hex or base64 characters are refused: that is
// text of another length (or a password), which taken raw would make a
// keyring that silently opens nothing — a random key looks like that with
// probability under 2^-32. Other input is an error wrapping ErrKeyFormat.
// b is neither modified nor retained, and desc is copied.
func ParseAES(b []byte, desc map[string]string) (*AES, error) {
	text := b
	if bytes.HasSuffix(text, []byte("\r\n")) {
		text = text[:len(text)-2]
	} else if bytes.HasSuffix(text, []byte("\n")) {
		text = text[:len(text)-1]
	}
	got := fmt.Sprintf("got %d bytes", len(b))
	if len(text) != len(b) {
		got += fmt.Sprintf(", %d before the final newline", len(text))
	}
	if len(text) > 0 && allBase64Chars(text) {
		var buf [64]byte // the longest text accepted decodes to at most 48 bytes
		defer clear(buf[:])
		n, ok := 0, false
		if len(text) <= 2*32 && allHexDigits(text) {
			n, _ = hex.Decode(buf[:], text)
			ok = validKeyLen(n) && 2*n == len(text)
		} else if len(text) <= 44 {
			n, ok = decodeBase64(buf[:], text)
			ok = ok && validKeyLen(n)
		}
		if !ok {
			return nil, aesFormatError(got + ": not hex or base64 of 16, 24 or 32 bytes")
		}
		return NewAES(buf[:n], desc)
	}
	if !validKeyLen(len(b)) {
		if bytes.ContainsAny(text, " \t\r\n\v\f") {
			got += ": whitespace other than one final newline"
		}
		return nil, aesFormatError(got)
	}
	return NewAES(b, desc)
}

// decodeBase64 decodes text, padded if its length is a multiple of 4 and
// unpadded otherwise, in the standard or else the URL alphabet. Text valid
// in both alphabets uses neither's two special characters and decodes the
// same in each; text that mixes them is valid in neither. Strict decoding
// refuses nonzero padding bits, so each key has one encoding per alphabet.
func decodeBase64(dst, text []byte) (int, bool) {
	std, url := base64.RawStdEncoding, base64.RawURLEncoding
	if len(text)%4 == 0 {
		std, url = base64.StdEncoding, base64.URLEncoding
	}
	for _, enc := range []*base64.Encoding{std.Strict(), url.Strict()} {
		if enc.DecodedLen(len(text)) > len(dst) {
			return 0, false
		}
		if n, err := enc.Decode(dst, text); err == nil {
			return n, true
		}
	}
	return 0, false
}

// allBase64Chars reports whether b holds only characters of the base64
// alphabets (standard and URL) and padding; hex digits are among them.
func allBase64Chars(b []byte) bool {
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '+', c == '/', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return true
}

func allHexDigits(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func aesFormatError(detail string) error {
	return fmt.Errorf("keyring: AES %w: want 16, 24 or 32 bytes raw, in hex or in base64; %s", ErrKeyFormat, detail)
}

// pemBegin opens every PEM block.
var pemBegin = []byte("-----BEGIN ")

// ParseRSA returns an RSA keyring for the one PEM block that b holds,
// followed by nothing but whitespace:
//
//   - "RSA PRIVATE KEY" (PKCS #1) or "PRIVATE KEY" (PKCS #8, of an RSA key):
//     a keyring that wraps and unwraps, as NewRSA;
//   - "RSA PUBLIC KEY" (PKCS #1) or "PUBLIC KEY" (PKIX, of an RSA key): a
//     wrap-only keyring, as NewRSAPublic.
//
// Encrypted PEM (a Proc-Type header, or "ENCRYPTED PRIVATE KEY") is refused:
// the key must be decrypted first; so is a block with any other header.
// Input that is not one such block is an
// error wrapping ErrKeyFormat. A key that decodes meets the checks of NewRSA
// or NewRSAPublic and gets their errors: a public key under 2048 bits is
// refused with ErrWeakKey, while a private one is accepted, to unwrap old
// objects, and its Wrap refuses. b is neither modified nor retained, and desc
// is copied.
func ParseRSA(b []byte, desc map[string]string) (*RSA, error) {
	// pem.Decode skips any text before a block, and a malformed block, to
	// the next one: with a single "-----BEGIN " at the start, the block it
	// returns is the input's first byte on.
	if !bytes.HasPrefix(b, pemBegin) {
		return nil, rsaFormatError("got %d bytes that do not start with one", len(b))
	}
	if n := bytes.Count(b, pemBegin); n > 1 {
		return nil, rsaFormatError("got %d PEM blocks", n)
	}
	blk, rest := pem.Decode(b)
	if blk == nil {
		return nil, rsaFormatError("got a malformed PEM block")
	}
	defer clear(blk.Bytes)
	typ := quotePEMType(blk.Type)
	if len(bytes.Trim(rest, " \t\r\n")) > 0 {
		return nil, rsaFormatError("got data after the PEM block %s", typ)
	}
	if _, ok := blk.Headers["Proc-Type"]; ok || blk.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, rsaFormatError("got the encrypted PEM block %s: decrypt the key first", typ)
	}
	if len(blk.Headers) > 0 {
		return nil, rsaFormatError("got the PEM block %s with headers", typ)
	}
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		if err != nil {
			return nil, rsaFormatError("got the PEM block %s with no valid PKCS #1 RSA private key", typ)
		}
		return NewRSA(k, desc)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, rsaFormatError("got the PEM block %s with no valid PKCS #8 private key", typ)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, rsaFormatError("got the PEM block %s with %s key", typ, keyKind(k))
		}
		return NewRSA(rk, desc)
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
		if err != nil {
			return nil, rsaFormatError("got the PEM block %s with no valid PKCS #1 RSA public key", typ)
		}
		return NewRSAPublic(k, desc)
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, rsaFormatError("got the PEM block %s with no valid PKIX public key", typ)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, rsaFormatError("got the PEM block %s with %s key", typ, keyKind(k))
		}
		return NewRSAPublic(rk, desc)
	}
	return nil, rsaFormatError("got the PEM block %s", typ)
}

// rsaFormatError's detail must name no input bytes: x509's errors are not
// passed on, since ASN.1 errors may quote what they failed to parse.
func rsaFormatError(format string, args ...any) error {
	return fmt.Errorf("keyring: RSA %w: want one PEM block, "+
		`"RSA PRIVATE KEY", "PRIVATE KEY", "RSA PUBLIC KEY" or "PUBLIC KEY" of an RSA key; `+format,
		append([]any{ErrKeyFormat}, args...)...)
}

// quotePEMType renders a PEM block type for an error message. It is the
// input's, so it is quoted and truncated.
func quotePEMType(t string) string {
	if len(t) > 64 {
		t = t[:64] + "..."
	}
	return strconv.Quote(t)
}

// keyKind names the algorithm of a key that is not RSA, with its article.
func keyKind(k any) string {
	switch k.(type) {
	case *ecdsa.PrivateKey, *ecdsa.PublicKey:
		return "an ECDSA"
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "an Ed25519"
	case *ecdh.PrivateKey, *ecdh.PublicKey:
		return "an X25519 (ECDH)"
	}
	return "a non-RSA"
}
