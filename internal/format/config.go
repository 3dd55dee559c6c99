package format

import (
	"fmt"
	"runtime"

	"github.com/s3envelope/s3envelope/internal/segment"
)

// Format is a stored object format.
type Format int

// The zero Format means "the default for the commitment policy": V3, or V2
// under ForbidEncryptAllowDecrypt.
const (
	// FormatV1 is AWS's legacy format: AES/CBC content, no authentication.
	// It is read only, and only with EnableLegacyUnauthenticatedModes.
	FormatV1 Format = 1
	// FormatV2 is AES-256-GCM content under a data key wrapped with the
	// content algorithm bound in. Written by AWS's v2/v3 clients.
	FormatV2 Format = 2
	// FormatV3 adds key commitment (algorithm suite 0x0073, HKDF-SHA-512):
	// a wrapped key cannot be swapped for another that also decrypts. Written
	// by AWS's v4 clients; the default.
	FormatV3 Format = 3
	// FormatSegmented is this library's own format (SEG1, see
	// docs/segmented-format.md): key-committing, sealed in fixed-size
	// segments, so plaintext is released as each segment verifies, any byte
	// range can be read with authentication, segments are sealed and opened
	// on several cores, and objects may exceed 64 GiB. AWS's clients cannot
	// read it.
	FormatSegmented Format = 4
)

func (f Format) String() string {
	switch f {
	case 0:
		return "default"
	case FormatV1:
		return "V1"
	case FormatV2:
		return "V2"
	case FormatV3:
		return "V3"
	case FormatSegmented:
		return "segmented"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// CommitmentPolicy says whether new objects are key-committing (V3) and
// whether non-committing objects (V1, V2) may be read. The names and meanings
// are those of AWS's v4 clients.
type CommitmentPolicy int

const (
	// RequireEncryptRequireDecrypt writes V3 and reads only V3. The default.
	RequireEncryptRequireDecrypt CommitmentPolicy = iota
	// RequireEncryptAllowDecrypt writes V3 and reads V2 and V3: the policy for
	// migrating a bucket of V2 objects.
	RequireEncryptAllowDecrypt
	// ForbidEncryptAllowDecrypt writes V2 (for readers that do not know V3)
	// and reads V2 and V3.
	ForbidEncryptAllowDecrypt
)

func (p CommitmentPolicy) String() string {
	switch p {
	case RequireEncryptRequireDecrypt:
		return "RequireEncryptRequireDecrypt"
	case RequireEncryptAllowDecrypt:
		return "RequireEncryptAllowDecrypt"
	case ForbidEncryptAllowDecrypt:
		return "ForbidEncryptAllowDecrypt"
	}
	return fmt.Sprintf("CommitmentPolicy(%d)", int(p))
}

// Config is what a caller allows: the format written, and which stored
// formats and algorithms may be read. Stored metadata never widens it.
// The zero Config is the strictest: write V3, read only V3, no legacy
// algorithms.
type Config struct {
	// Format written for new objects: FormatV3, FormatV2 or
	// FormatSegmented. Zero picks the policy's format (V3, or V2 under
	// ForbidEncryptAllowDecrypt).
	Format Format
	// SegmentSize is the plaintext bytes per segment of new segmented
	// objects: a power of two from MinSegmentSize to MaxSegmentSize; zero
	// means DefaultSegmentSize. Readers take the size from the object.
	SegmentSize int
	// SegmentWorkers bounds the goroutines that seal or open the segments
	// of one segmented object at once; zero means GOMAXPROCS. Objects under
	// about 1 MiB are always handled on the caller's goroutine, and however
	// many workers, at most 16 MiB of segments are in process at once (twice
	// that while the next ones are read ahead).
	SegmentWorkers int
	// CommitmentPolicy; the zero value is RequireEncryptRequireDecrypt.
	CommitmentPolicy CommitmentPolicy
	// EnableLegacyUnauthenticatedModes allows reading AES/CBC content (format
	// V1, CVE-2020-8911): plaintext that nothing authenticates. Off by default.
	EnableLegacyUnauthenticatedModes bool
	// EnableLegacyWrappingAlgorithms allows unwrapping data keys wrapped with
	// AESWrap, AES/ECB, RSA-OAEP-SHA-256, RSA PKCS#1 v1.5 or legacy kms, none of
	// which binds the content algorithm. Never used for writing. Off by default.
	EnableLegacyWrappingAlgorithms bool
	// SpoolDir is where ciphertext beyond SpoolMemory waits for its tag to be
	// verified before any plaintext is released; "" is os.TempDir(). Spool
	// files are removed when the plaintext is closed.
	SpoolDir string
	// SpoolMemory bounds the ciphertext held in memory per open object; 0
	// means the default (8 MiB), negative means never in memory.
	SpoolMemory int64
	// SpoolLimit bounds the ciphertext spooled for a V1, V2 or V3 body whose
	// length is not known beforehand (no stored plaintext length, and no
	// size from storage, as with a chunked response): past it, Open fails
	// with ErrTooLarge instead of spooling up to MaxPlaintext. A body whose
	// length is known is bounded by that length. Zero means 16 GiB;
	// negative means MaxPlaintext.
	SpoolLimit int64
}

// defaultSpoolLimit is the SpoolLimit when none is set: generous for any
// object whose length is unknown, and far below what a hostile endless
// body could otherwise fill on disk.
const defaultSpoolLimit = 16 << 30

// WriteFormat returns the format new objects are written in, or an error
// wrapping ErrPolicy when Format contradicts CommitmentPolicy (a segmented
// object is key-committing, so ForbidEncryptAllowDecrypt cannot write one),
// or ErrUnsupported for an unknown format or segment size.
func (c *Config) WriteFormat() (Format, error) {
	want := FormatV3
	if c.CommitmentPolicy == ForbidEncryptAllowDecrypt {
		want = FormatV2
	}
	switch {
	case c.CommitmentPolicy < RequireEncryptRequireDecrypt || c.CommitmentPolicy > ForbidEncryptAllowDecrypt:
		return 0, fmt.Errorf("%w: unknown %v", ErrPolicy, c.CommitmentPolicy)
	case c.SegmentSize != 0 && !segment.ValidSize(c.SegmentSize):
		return 0, fmt.Errorf("%w: segment size %d is not a power of two from %d to %d", ErrUnsupported, c.SegmentSize, MinSegmentSize, MaxSegmentSize)
	case c.Format == FormatSegmented && c.CommitmentPolicy == ForbidEncryptAllowDecrypt:
		return 0, fmt.Errorf("%w: the segmented format is key-committing and %v writes only V2", ErrPolicy, c.CommitmentPolicy)
	case c.Format == FormatSegmented:
		return FormatSegmented, nil
	case c.Format == 0 || c.Format == want:
		return want, nil
	case c.Format == FormatV2 || c.Format == FormatV3:
		return 0, fmt.Errorf("%w: format %v contradicts %v", ErrPolicy, c.Format, c.CommitmentPolicy)
	}
	return 0, fmt.Errorf("%w: cannot write format %v", ErrUnsupported, c.Format)
}

// checkRead refuses an envelope the configuration does not allow.
func (c *Config) checkRead(e *Envelope) error {
	// Legacy switches first: an unauthenticated or legacy object is refused for
	// what it is, whatever the policy.
	if e.ContentAlgorithm == ContentAESCBC && !c.EnableLegacyUnauthenticatedModes {
		return fmt.Errorf("%w: content algorithm %s is unauthenticated; enable legacy unauthenticated modes to read it", ErrDisallowed, ContentAESCBC)
	}
	if IsLegacyWrap(e.Key.Algorithm) && !c.EnableLegacyWrappingAlgorithms {
		return fmt.Errorf("%w: wrap algorithm %s is legacy; enable legacy wrapping algorithms to read it", ErrDisallowed, e.Key.Algorithm)
	}
	if !e.committing() && c.CommitmentPolicy == RequireEncryptRequireDecrypt {
		return fmt.Errorf("%w: %v object is not key-committing and %v reads only V3", ErrPolicy, e.Format, c.CommitmentPolicy)
	}
	return nil
}

// bodyLimit is the most ciphertext an object of e may hold, as far as can
// be told before its body is read: its stored length, or SpoolLimit.
func (c *Config) bodyLimit(e *Envelope) int64 {
	limit := int64(MaxPlaintext)
	switch {
	case e.PlaintextLength >= 0:
		limit = min(limit, e.PlaintextLength)
	case c.SpoolLimit == 0:
		limit = min(limit, defaultSpoolLimit)
	case c.SpoolLimit > 0:
		limit = min(limit, c.SpoolLimit)
	}
	return limit
}

// segmentSize is the segment size of new segmented objects.
func (c *Config) segmentSize() int {
	if c.SegmentSize == 0 {
		return DefaultSegmentSize
	}
	return c.SegmentSize
}

// workers is how many goroutines seal or open one segmented object.
func (c *Config) workers() int {
	if c.SegmentWorkers > 0 {
		return c.SegmentWorkers
	}
	return runtime.GOMAXPROCS(0)
}
