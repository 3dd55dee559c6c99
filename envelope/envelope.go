package envelope

import (
	"context"
	"fmt"
	"io"

	"github.com/s3envelope/s3envelope/internal/format"
)

// Sentinel errors. Every failure of this module to decrypt an object, or to
// accept a format or an envelope, wraps exactly one of them, so callers can
// branch with errors.Is.
var (
	// ErrAuthentication: the object failed authentication — a tampered body,
	// tag, commitment, IV or message ID, or a wrapped key that does not
	// unwrap under the master key.
	ErrAuthentication = format.ErrAuthentication
	// ErrNoMasterKey: no master key at hand matches the stored description
	// (the error text names it; descriptions are not secret).
	ErrNoMasterKey = format.ErrNoMasterKey
	// ErrUnsupported: the envelope names a format or algorithm this library
	// does not implement.
	ErrUnsupported = format.ErrUnsupported
	// ErrDisallowed: the envelope names a legacy algorithm the Config does
	// not enable.
	ErrDisallowed = format.ErrDisallowed
	// ErrPolicy: the commitment policy forbids the format read or written.
	ErrPolicy = format.ErrPolicy
	// ErrMalformed: the stored envelope lacks a field, or has one of the
	// wrong size or encoding, or is inconsistent.
	ErrMalformed = format.ErrMalformed
	// ErrTooLarge: the object, or a stored field, exceeds its bound (a V2 or
	// V3 body holds at most 2^36-32 bytes of plaintext).
	ErrTooLarge = format.ErrTooLarge
	// ErrInvalidRange: a requested byte range lies outside the plaintext.
	ErrInvalidRange = format.ErrInvalidRange
	// ErrWrapOnly: the master key can wrap but not unwrap (an RSA public key).
	ErrWrapOnly = format.ErrWrapOnly
	// ErrNoEnvelope: the object has no envelope: it is not client-side
	// encrypted.
	ErrNoEnvelope = format.ErrNoEnvelope
)

// Format is a stored format.
type Format = format.Format

// The stored formats.
const (
	FormatV1        = format.FormatV1 // AWS's legacy AES-CBC: read only, unauthenticated
	FormatV2        = format.FormatV2 // AWS's AES-GCM
	FormatV3        = format.FormatV3 // AWS's AES-GCM with key commitment
	FormatSegmented = format.FormatSegmented
)

// CommitmentPolicy says whether objects must commit to their data key (only
// V3 and the segmented format do), as AWS's clients name it.
type CommitmentPolicy = format.CommitmentPolicy

// The commitment policies, strictest first.
const (
	RequireEncryptRequireDecrypt = format.RequireEncryptRequireDecrypt // write and read committing formats only
	RequireEncryptAllowDecrypt   = format.RequireEncryptAllowDecrypt   // write committing formats, also read V2 (migrations)
	ForbidEncryptAllowDecrypt    = format.ForbidEncryptAllowDecrypt    // write V2 for readers that predate V3
)

// Config is what a caller allows: the format written, and which stored
// formats and algorithms may be read. Stored metadata never widens it. The
// zero Config is the strictest: write V3, read only the committing formats
// (V3, segmented), no legacy algorithms.
type Config struct {
	// Format written for new objects: FormatV3, FormatV2 or FormatSegmented.
	// Zero picks the policy's format (V3, or V2 under
	// ForbidEncryptAllowDecrypt).
	Format Format
	// SegmentSize is the plaintext bytes per segment of new segmented
	// objects: a power of two from 4 KiB to 16 MiB; zero means 64 KiB.
	// Readers take the size from the object.
	SegmentSize int
	// SegmentWorkers bounds the goroutines that seal or open one segmented
	// object's segments; zero means GOMAXPROCS.
	SegmentWorkers int
	// CommitmentPolicy; the zero value is RequireEncryptRequireDecrypt.
	CommitmentPolicy CommitmentPolicy
	// EnableLegacyUnauthenticatedModes allows reading AES-CBC content
	// (FormatV1, CVE-2020-8911): plaintext nothing authenticates.
	EnableLegacyUnauthenticatedModes bool
	// EnableLegacyWrappingAlgorithms allows unwrapping data keys wrapped with
	// AESWrap, AES/ECB, RSA-OAEP-SHA-256, RSA PKCS#1 v1.5 or legacy kms, none
	// of which binds the content algorithm. Never used for writing.
	EnableLegacyWrappingAlgorithms bool
	// SpoolDir is where a V2 or V3 body's ciphertext beyond SpoolMemory
	// waits for its tag; "" is os.TempDir(). Spool files are removed when
	// the plaintext is closed.
	SpoolDir string
	// SpoolMemory bounds the ciphertext held in memory per open object; 0
	// means 8 MiB, negative means never in memory.
	SpoolMemory int64
	// SpoolLimit bounds the ciphertext spooled for a body whose length is
	// not known beforehand: past it, reading fails with ErrTooLarge. Zero
	// means 16 GiB; negative means the format's limit.
	SpoolLimit int64
}

// WrappedKey is a data key wrapped by a master key, with what is stored
// beside it to unwrap it again:
//
//	Algorithm   string            // the wrap algorithm, as stored ("AES/GCM", "RSA-OAEP-SHA1", "kms+context", …)
//	Ciphertext  []byte            // the wrapped data key
//	Description map[string]string // the master key's description, or the KMS encryption context
type WrappedKey = format.WrappedKey

// Wrapper wraps data keys under a master key. contentAlg is the object's
// content algorithm, as stored; the wrap binds it, so the wrapped key cannot
// be moved to an object of another format.
type Wrapper interface {
	Wrap(ctx context.Context, dataKey []byte, contentAlg string) (*WrappedKey, error)
}

// Unwrapper recovers a data key from a stored wrapped key. Its errors wrap
// ErrNoMasterKey when it holds no master key for w.Description,
// ErrAuthentication when the wrapped key does not unwrap, ErrUnsupported or
// ErrDisallowed for a wrap algorithm it cannot or may not use.
type Unwrapper interface {
	Unwrap(ctx context.Context, w *WrappedKey, contentAlg string) ([]byte, error)
}

// DataKeyGenerator is a master key that makes data keys itself (KMS
// GenerateDataKey); NewSealer uses it instead of a random key and Wrap.
type DataKeyGenerator interface {
	GenerateDataKey(ctx context.Context, contentAlg string) (dataKey []byte, w *WrappedKey, err error)
}

// Envelope is what an object stores beside its body to be opened again:
// the wrapped data key and the parameters of its format. Nothing in it is
// secret, and nothing in it is trusted before the body authenticates.
type Envelope struct {
	Format           Format
	ContentAlgorithm string     // as stored: "115" (V3), "AES/GCM/NoPadding" (V2), "S3ESEG1" (segmented)
	Key              WrappedKey // the wrapped data key and the master key's description
	IV               []byte     // V1, V2
	// MessageID and Commitment: V3's message ID and key commitment; the
	// segmented format's commitment.
	MessageID, Commitment []byte
	ObjectID              []byte // segmented
	SegmentSize           int    // segmented
	// PlaintextLength is the stored plaintext length, or -1 when none is
	// stored. It is not authenticated.
	PlaintextLength int64
}

func (e *Envelope) internal() *format.Envelope { return (*format.Envelope)(e) }

// checked is e as the formats take it, once its fixed-size fields are
// checked: an Envelope may be filled in by hand.
func (e *Envelope) checked() (*format.Envelope, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil envelope", ErrMalformed)
	}
	fe := e.internal()
	if err := fe.Valid(); err != nil {
		return nil, err
	}
	return fe, nil
}

// Decode reads an object's envelope from its user metadata (keys as the
// SDK's Metadata holds them: without the "x-amz-meta-" prefix, in any case)
// or, when the metadata holds no
// wrapped key, from its instruction file (nil when there is none). It fails
// with ErrNoEnvelope when there is no envelope at all, else ErrMalformed,
// ErrUnsupported or ErrTooLarge for one this package cannot use.
func Decode(metadata map[string]string, instruction []byte) (*Envelope, error) {
	e, err := format.Decode(metadata, instruction)
	if err != nil {
		return nil, err
	}
	return (*Envelope)(e), nil
}

// Metadata returns the envelope as user metadata, for an object that stores
// it there. Metadata is sent as HTTP headers: AWS limits it to 2 KiB per
// object, which an RSA-wrapped key or a long description may exceed.
func (e *Envelope) Metadata() (map[string]string, error) {
	fe, err := e.checked()
	if err != nil {
		return nil, err
	}
	return fe.Metadata()
}

// Instruction splits the envelope for an object that stores it in an
// instruction file (stored beside the object as its key + ".instruction"):
// what still goes in the object's metadata (V3 keeps three fields there;
// V2 none) and the instruction file's JSON.
func (e *Envelope) Instruction() (metadata map[string]string, instruction []byte, err error) {
	fe, err := e.checked()
	if err != nil {
		return nil, nil, err
	}
	return fe.Instruction()
}

// PlaintextSize is the plaintext size of an object whose stored body is
// ciphertext bytes long. Nothing authenticates it until the body is read.
func (e *Envelope) PlaintextSize(ciphertext int64) (int64, error) {
	fe, err := e.checked()
	if err != nil {
		return 0, err
	}
	return fe.PlaintextSize(ciphertext)
}

// Open authenticates and decrypts an object's body read from ciphertext,
// unwrapping its data key with u. The plaintext yields only authenticated
// bytes (see the package doc); it must be closed, which releases its spool
// and may be called from any goroutine to abort a read in progress. cfg
// decides what may be opened.
func Open(ctx context.Context, e *Envelope, u Unwrapper, cfg Config, ciphertext io.Reader) (io.ReadCloser, error) {
	fe, err := e.checked()
	if err != nil {
		return nil, err
	}
	p, err := format.Open(ctx, fe, u, format.Config(cfg), ciphertext)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// NewReaderAt returns the plaintext of a segmented object whose stored body
// of size bytes is read from ciphertext, for reads at random: every piece
// is authenticated before it is returned, and only the segments a read
// needs are fetched. The returned reader's Size is authenticated. Other
// formats fail with ErrUnsupported: their pieces cannot be authenticated
// alone.
func NewReaderAt(ctx context.Context, e *Envelope, u Unwrapper, cfg Config, ciphertext io.ReaderAt, size int64) (*io.SectionReader, error) {
	fe, err := e.checked()
	if err != nil {
		return nil, err
	}
	r, err := format.NewReaderAt(ctx, fe, u, format.Config(cfg), ciphertext, size)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(r, 0, r.Size()), nil
}

// Sealer encrypts the body of one new object under a fresh data key. It
// holds the data key: drop it once the object is stored.
type Sealer struct{ s *format.Sealer }

// NewSealer starts a new object in the format cfg writes: a fresh data key
// (from w, if it is a DataKeyGenerator), wrapped by w.
func NewSealer(ctx context.Context, w Wrapper, cfg Config) (*Sealer, error) {
	s, err := format.NewSealer(ctx, w, format.Config(cfg))
	if err != nil {
		return nil, err
	}
	return &Sealer{s}, nil
}

// Envelope returns the envelope to store with the object.
func (s *Sealer) Envelope() *Envelope { return (*Envelope)(s.s.Envelope()) }

// CiphertextSize is the stored body size for a plaintext of the given
// length (an error wrapping ErrTooLarge past the format's limit).
func (s *Sealer) CiphertextSize(plaintext int64) (int64, error) { return s.s.CiphertextSize(plaintext) }

// Seal returns the object's body, sealed from plaintext as it is read, in
// constant memory. Each call starts the same keystream again: call it more
// than once only to send the same plaintext again (a retried upload).
func (s *Sealer) Seal(plaintext io.Reader) io.Reader { return s.s.Seal(plaintext) }
