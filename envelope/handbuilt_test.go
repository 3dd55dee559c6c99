package envelope_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"
)

// FuzzHandBuiltEnvelope: an Envelope is a struct a program may fill in by
// hand; whatever it holds, the package's functions return errors, never
// panic.
func FuzzHandBuiltEnvelope(f *testing.F) {
	f.Add(4, "S3ESEG1", 0, 0, 0, 0, 0, int64(-1), []byte("body"))
	f.Add(3, "115", 12, 28, 28, 0, 0, int64(5), []byte("body"))
	f.Add(2, "AES/GCM/NoPadding", 11, 0, 0, 0, 0, int64(-1), []byte("body"))
	f.Add(1, "AES/CBC/PKCS5Padding", 3, 0, 0, 0, 0, int64(-1), make([]byte, 32))
	f.Add(4, "S3ESEG1", 0, 0, 32, 32, 65536, int64(-1), make([]byte, 100))
	f.Fuzz(func(t *testing.T, format int, content string, iv, msg, commit, obj, seg int, length int64, body []byte) {
		clamp := func(n int) int { return min(max(n, 0), 64) }
		e := &envelope.Envelope{
			Format: envelope.Format(format), ContentAlgorithm: content,
			Key:       envelope.WrappedKey{Algorithm: "AES/GCM", Ciphertext: make([]byte, 60)},
			IV:        make([]byte, clamp(iv)),
			MessageID: make([]byte, clamp(msg)), Commitment: make([]byte, clamp(commit)),
			ObjectID: make([]byte, clamp(obj)), SegmentSize: seg, PlaintextLength: length,
		}
		ctx := context.Background()
		cfg := envelope.Config{CommitmentPolicy: envelope.RequireEncryptAllowDecrypt, EnableLegacyUnauthenticatedModes: true}
		_, _ = e.PlaintextSize(int64(len(body)))
		_, _ = e.Metadata()
		_, _, _ = e.Instruction()
		if p, err := envelope.Open(ctx, e, masterKey(), cfg, bytes.NewReader(body)); err == nil {
			_, _ = io.Copy(io.Discard, p)
			p.Close()
		}
		if r, err := envelope.NewReaderAt(ctx, e, masterKey(), cfg, bytes.NewReader(body), int64(len(body))); err == nil {
			_, _ = r.ReadAt(make([]byte, 10), 0)
		}
		_ = fmt.Sprint(e.Format)
	})
}
