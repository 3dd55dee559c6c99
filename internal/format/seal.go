package format

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/s3envelope/s3envelope/internal/gcmstream"
	"github.com/s3envelope/s3envelope/internal/segment"
)

// MaxPlaintext is the largest object one AES-GCM pass may encrypt
// (2^36 - 32 bytes, about 64 GiB), and so the largest V2 or V3 object.
const MaxPlaintext = gcmstream.MaxPlaintext

// Sealer encrypts the body of one new object under a fresh data key. It
// holds the content key; drop it when the object is written.
type Sealer struct {
	env     *Envelope
	stream  *gcmstream.Stream // V2, V3
	seg     *segment.Cipher   // segmented
	workers int
	parts   partState // SealPart's record, for Tag
}

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
	contentAlg := ContentAESGCMCommit
	switch f {
	case FormatV2:
		contentAlg = ContentAESGCM
	case FormatSegmented:
		contentAlg = ContentSegmented
	}
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
	var stream *gcmstream.Stream
	switch f {
	case FormatV2:
		env.IV = make([]byte, IVSize)
		rand.Read(env.IV)
		stream, err = gcmstream.New(dataKey, env.IV, nil)
	case FormatV3:
		env.MessageID = newMessageID()
		var contentKey []byte
		env.Commitment, contentKey, err = deriveV3(dataKey, env.MessageID)
		if err != nil {
			return nil, err
		}
		stream, err = gcmstream.New(contentKey, v3Nonce, v3SuiteID)
		clear(contentKey)
	case FormatSegmented:
		var seg *segment.Cipher
		if seg, err = newSegmented(env, dataKey, cfg.segmentSize()); err != nil {
			return nil, err
		}
		return &Sealer{env: env, seg: seg, workers: cfg.workers()}, nil
	}
	if err != nil {
		return nil, err
	}
	return &Sealer{env: env, stream: stream}, nil
}

// newMessageID draws a V3 message ID, which must not be all zeros.
func newMessageID() []byte {
	id := make([]byte, MessageIDSize)
	for {
		rand.Read(id)
		for _, b := range id {
			if b != 0 {
				return id
			}
		}
	}
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
func (s *Sealer) Seal(plaintext io.Reader) io.Reader {
	if s.seg != nil {
		return segReader{s.seg.SealReader(plaintext, s.workers)}
	}
	return &sealReader{r: gcmstream.NewSealReader(s.stream, plaintext)}
}

type sealReader struct{ r *gcmstream.SealReader }

func (s *sealReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	return n, sealError(err)
}

// WriteTo lets io.Copy seal in large pieces, without a copy per piece.
func (s *sealReader) WriteTo(w io.Writer) (int64, error) {
	n, err := s.r.WriteTo(w)
	return n, sealError(err)
}

func sealError(err error) error {
	if errors.Is(err, gcmstream.ErrTooLarge) {
		return fmt.Errorf("%w: more than %d bytes of plaintext", ErrTooLarge, int64(MaxPlaintext))
	}
	return err
}

func cloneDescription(d map[string]string) map[string]string {
	out := make(map[string]string, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out
}
