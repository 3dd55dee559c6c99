package format

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/s3envelope/s3envelope/internal/spool"
)

// V1 is AWS's legacy format: AES/CBC/PKCS5Padding content under the data
// key and a 16-byte IV, which nothing authenticates (CVE-2020-8911). It is
// read only, and only with Config.EnableLegacyUnauthenticatedModes. Its
// envelope has V2's fields (see v2.go) but for the wrapped key's,
// x-amz-key, and may predate x-amz-cek-alg and x-amz-wrap-alg. AWS's
// clients also stored AES/CBC content under V2's fields: that body is read
// here too (see bodyFormatOf).
type v1Format struct{}

// CBCIVSize is the size of a V1 object's CBC IV.
const CBCIVSize = 16

var v1Layout = layout{key: keyV1, wrap: keyWrapAlg, all: v12Fields, name: "V1/V2"}

func (v1Format) format() Format   { return FormatV1 }
func (v1Format) content() string  { return ContentAESCBC }
func (v1Format) layout() *layout  { return &v1Layout }
func (v1Format) committing() bool { return false }

func (v1Format) decode(m map[string]string) (*Envelope, error) {
	return decodeV12(m, FormatV1, keyV1, v1Defaults)
}

// v1Defaults fills in what a V1 envelope may omit: the content algorithm
// (AES/CBC, the only one V1 has) and the wrap algorithm.
func v1Defaults(e *Envelope) error {
	switch {
	case e.ContentAlgorithm == "":
		e.ContentAlgorithm = ContentAESCBC
	case e.ContentAlgorithm != ContentAESCBC:
		return fmt.Errorf("%w: V1 envelope with content algorithm %q", ErrUnsupported, e.ContentAlgorithm)
	}
	if e.Key.Algorithm == "" {
		// V1 objects may predate x-amz-wrap-alg. As AWS's Java client does,
		// a key longer than an AES/ECB-wrapped 256-bit key (48 bytes) must
		// be RSA-wrapped.
		e.Key.Algorithm = WrapLegacyAES
		if len(e.Key.Ciphertext) > 48 {
			e.Key.Algorithm = WrapLegacyRSA
		}
	}
	return nil
}

// encode: V1 is never written.
func (v1Format) encode(e *Envelope) (map[string]string, error) {
	return nil, cannotWrite(e.Format)
}

// checkDataKey: V1 commits to nothing, so any key passes.
func (v1Format) checkDataKey(*Envelope, []byte) error { return nil }

func (v1Format) ciphertextSize(e *Envelope, _ int64) (int64, error) {
	return 0, cannotWrite(e.Format)
}

// plaintextSize is the stored x-amz-unencrypted-content-length: padding
// hides the length until the body is decrypted.
func (v1Format) plaintextSize(e *Envelope, _ int64) (int64, error) {
	if e.PlaintextLength >= 0 {
		return e.PlaintextLength, nil
	}
	return 0, fmt.Errorf("%w: an AES/CBC object's length is known only once it is decrypted", ErrUnsupported)
}

func (v1Format) ciphertextRange(*Envelope, int64, int64, int64) (int64, int64, error) {
	return 0, 0, errCBCRange
}

var errCBCRange = fmt.Errorf("%w: AES/CBC objects cannot be read by range", ErrUnsupported)

func (v1Format) newSealer(e *Envelope, _ []byte, _ Config) (bodySealer, error) {
	return nil, cannotWrite(e.Format)
}

func (v1Format) open(e *Envelope, dataKey []byte, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	return openCBC(dataKey, e, cfg, ciphertext)
}

func (v1Format) rangesAuthenticated() bool { return false }

// openRange is never called: ciphertextRange refuses every range.
func (v1Format) openRange(*Envelope, []byte, Config, io.Reader, int64, int64, int64) (*Plaintext, error) {
	return nil, errCBCRange
}

// cbcReader decrypts whole AES/CBC blocks read from a spool.
type cbcReader struct {
	src io.Reader
	dec cipher.BlockMode
	buf []byte
	out []byte
}

func (c *cbcReader) Read(b []byte) (int, error) {
	if len(c.out) == 0 {
		n, err := io.ReadFull(c.src, c.buf)
		n -= n % aes.BlockSize
		if n == 0 {
			if err == nil || err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return 0, err
		}
		c.dec.CryptBlocks(c.buf[:n], c.buf[:n])
		c.out = c.buf[:n]
	}
	n := copy(b, c.out)
	c.out = c.out[n:]
	return n, nil
}

// openCBC reads legacy AES/CBC/PKCS5Padding content. Nothing authenticates
// it; Config.checkRead has already required the caller's explicit consent.
// The padding is checked before anything is released so that a malformed
// body yields an error rather than a short read.
func openCBC(dataKey []byte, e *Envelope, cfg Config, ciphertext io.Reader) (*Plaintext, error) {
	block, err := aes.NewCipher(dataKey)
	if err != nil || len(e.IV) != aes.BlockSize {
		return nil, fmt.Errorf("%w: bad AES/CBC key or IV", ErrAuthentication)
	}
	sp := spool.New(cfg.SpoolDir, cfg.SpoolMemory)
	ok := false
	defer func() {
		if !ok {
			sp.Close()
		}
	}()
	// The final two ciphertext blocks; before any, the IV is the block that
	// precedes the first.
	var last [2 * aes.BlockSize]byte
	copy(last[aes.BlockSize:], e.IV)
	var total int64
	buf := make([]byte, chunk)
	for {
		n, err := io.ReadFull(ciphertext, buf)
		if n > 0 {
			// The body holds up to one block of padding past the plaintext.
			total += int64(n)
			if err := tooLong(e, cfg, total-aes.BlockSize); err != nil {
				return nil, err
			}
			if _, werr := sp.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			tail := append(last[:], buf[:n]...)
			copy(last[:], tail[len(tail)-len(last):])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if total == 0 || total%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: AES/CBC body is not whole blocks", ErrAuthentication)
	}
	var final [aes.BlockSize]byte
	block.Decrypt(final[:], last[aes.BlockSize:])
	subtle.XORBytes(final[:], final[:], last[:aes.BlockSize])
	pad := int(final[aes.BlockSize-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	for i := 0; i < aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(aes.BlockSize-pad, i)
		good &= subtle.ConstantTimeByteEq(final[i], byte(pad)) | (inPad ^ 1)
	}
	if good != 1 {
		return nil, fmt.Errorf("%w: AES/CBC padding", ErrAuthentication)
	}
	size := total - int64(pad)
	if e.PlaintextLength >= 0 && e.PlaintextLength != size {
		return nil, fmt.Errorf("%w: stored plaintext length %d, body holds %d", ErrMalformed, e.PlaintextLength, size)
	}
	ok = true
	dec := cipher.NewCBCDecrypter(block, e.IV)
	r := &cbcReader{src: sp.Reader(), dec: dec, buf: make([]byte, chunk)}
	return newPlaintext(io.LimitReader(r, size), size, sp.Close), nil
}
