package format

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/s3envelope/s3envelope/internal/gcmstream"
	"github.com/s3envelope/s3envelope/internal/overlap"
)

// Sealer encrypts the body of one new object under a fresh data key. It
// holds the content key; drop it when the object is written.
type Sealer struct {
	env  *Envelope
	body bodySealer
}

// bodySealer seals the body of one object in its format (gcm.go for V2
// and V3, segmented.go); the Sealer's methods say what each does.
type bodySealer interface {
	seal(plaintext io.Reader) io.Reader
	partAlign() int
	partSize(n int) int
	// sealPart is called with arguments SealPart has checked.
	sealPart(buf []byte, n int, off int64, last bool) ([]byte, error)
	tag() ([]byte, error)
	// pieces starts one pass of SealAhead, on up to workers goroutines.
	pieces() (ps pieceSealer, workers int)
}

// pieceSealer seals one pass of a body in pieces: seal runs on each piece
// concurrently with the others, emit on each in order before it is sent.
type pieceSealer interface {
	seal(p *piece) error
	emit(p *piece) error
	// fingerprint is a sealed piece's: see SealAhead.
	fingerprint(p *piece) [16]byte
}

// piece is a piece of plaintext that SealAhead seals, with the GCM partial
// of its ciphertext (V2, V3).
type piece = overlap.Piece[gcmstream.Partial]

// aheadPiece is about how much plaintext SealAhead seals at a time; a
// piece holds whole segments.
const aheadPiece = 1 << 20

// NewSealer starts a new object in the format cfg writes: it makes a fresh
// data key (or has w generate one, if w is a DataKeyGenerator), wraps it with
// w, and draws a fresh IV (V2), message ID (V3) or object ID (segmented).
// The returned sealer's Envelope is what must be stored with the object.
func NewSealer(ctx context.Context, w Wrapper, cfg Config) (*Sealer, error) {
	if err := checkMasterKey(w); err != nil {
		return nil, err
	}
	f, err := cfg.WriteFormat()
	if err != nil {
		return nil, err
	}
	sf := formatOf(f)
	if sf == nil {
		return nil, cannotWrite(f)
	}
	contentAlg := sf.content()
	var dataKey []byte
	var wk *WrappedKey
	if g, ok := w.(DataKeyGenerator); ok {
		dataKey, wk, err = g.GenerateDataKey(ctx, contentAlg)
	} else {
		dataKey = make([]byte, DataKeySize)
		rand.Read(dataKey)
		wk, err = w.Wrap(ctx, dataKey, contentAlg)
	}
	defer clear(dataKey)
	if err != nil {
		return nil, err
	}
	if wk == nil || len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("%w: master key returned no wrapped key or a data key that is not %d bytes", ErrUnsupported, DataKeySize)
	}
	if IsLegacyWrap(wk.Algorithm) {
		return nil, fmt.Errorf("%w: wrap algorithm %s is never written", ErrDisallowed, wk.Algorithm)
	}
	env := &Envelope{
		Format:           f,
		ContentAlgorithm: contentAlg,
		Key: WrappedKey{
			Algorithm:   wk.Algorithm,
			Ciphertext:  wk.Ciphertext,
			Description: cloneDescription(wk.Description),
		},
		PlaintextLength: -1,
	}
	body, err := sf.newSealer(env, dataKey, cfg)
	if err != nil {
		return nil, err
	}
	return &Sealer{env: env, body: body}, nil
}

// Envelope returns the envelope to store with the object. The caller may set
// its PlaintextLength before storing it.
func (s *Sealer) Envelope() *Envelope { return s.env }

// CiphertextSize is the stored body size of the object for a plaintext of
// the given length, or an error wrapping ErrTooLarge past the format's
// limit.
func (s *Sealer) CiphertextSize(plaintext int64) (int64, error) {
	return s.env.CiphertextSize(plaintext)
}

// Seal returns the object's body, streamed in constant memory: for V2 and
// V3 the ciphertext of everything read from plaintext, then the 16-byte
// tag; for the segmented format its segments, sealed on up to
// Config.SegmentWorkers goroutines. CiphertextSize gives its length.
// Reading past MaxPlaintext of a V2 or V3 object fails with an error
// wrapping ErrTooLarge.
//
// Each call starts the same keystream again, so call it more than once only
// to re-send the same plaintext (a retried upload): two different plaintexts
// sealed by one Sealer would share nonces.
func (s *Sealer) Seal(plaintext io.Reader) io.Reader { return s.body.seal(plaintext) }

// SealAhead is Seal for a plaintext of length n (CiphertextSize(n) bytes
// come out; a plaintext that ends early is an error wrapping
// io.ErrUnexpectedEOF) or, if n is negative, for the plaintext to its
// end. It reads the plaintext on a goroutine of its own, a piece ahead, and
// seals pieces on up to one goroutine per core (Config.SegmentWorkers for
// the segmented format), so that a consumer reading small buffers — an
// HTTP transport — gets the body at about the speed of one Seal call.
// Close stops the goroutines and wipes the buffers; the plaintext is not
// read after it returns.
//
// If check is not nil, it is called in order with each sealed piece's
// index and a fingerprint of its ciphertext, before any of the piece is
// handed out; an error from it ends the stream, the piece unreleased.
// Fingerprints of the same piece sealed by the same Sealer are equal only
// if the piece's plaintext is (but for a chance of about 2^-112 per
// piece): a caller that seals a body again (a retried upload) makes sure
// with them that no different plaintext goes out under the same nonces.
// They are secret, like the data key.
func (s *Sealer) SealAhead(plaintext io.Reader, n int64, check func(piece int64, fingerprint [16]byte) error) io.ReadCloser {
	align := s.body.partAlign()
	size := max(align, aheadPiece/align*align)
	ps, workers := s.body.pieces()
	emit := ps.emit
	if check != nil {
		emit = func(pc *piece) error {
			if err := check(pc.Off/int64(size), ps.fingerprint(pc)); err != nil {
				return err
			}
			return ps.emit(pc)
		}
	}
	return overlap.NewTransform(plaintext, n, size, s.body.partSize(size)-size+TagSize, workers+2, ps.seal, emit)
}

func cloneDescription(d map[string]string) map[string]string {
	out := make(map[string]string, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out
}
