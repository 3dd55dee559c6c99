package format_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	envelope "github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
)

// typed reports whether err wraps one of the package's sentinel errors.
func typed(err error) bool {
	for _, s := range []error{envelope.ErrAuthentication, envelope.ErrNoMasterKey, envelope.ErrUnsupported,
		envelope.ErrDisallowed, envelope.ErrPolicy, envelope.ErrMalformed, envelope.ErrTooLarge,
		envelope.ErrWrapOnly, envelope.ErrNoEnvelope, envelope.ErrInvalidRange} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzDecode feeds arbitrary metadata (as a JSON object) and instruction
// files to Decode: it must return an envelope or a typed error, never panic,
// and a decoded envelope must encode again.
func FuzzDecode(f *testing.F) {
	kr, err := keyring.NewAES(make([]byte, 32), map[string]string{"kid": "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	for _, cfg := range []envelope.Config{{}, {CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, segConfig()} {
		for _, ins := range []bool{false, true} {
			meta, instr, _ := seal(f, kr, cfg, []byte("seed"), ins)
			mj, _ := json.Marshal(meta)
			f.Add(mj, instr)
		}
	}
	f.Add([]byte(`{"x-amz-key":"AAAA","x-amz-iv":"AAAAAAAAAAAAAAAAAAAAAA==","x-amz-matdesc":"{}"}`), []byte(nil))
	f.Add([]byte(`{}`), []byte(`{"x-amz-key-v2":"AA==","x-amz-tag-len":128}`))
	f.Fuzz(func(t *testing.T, metaJSON, instruction []byte) {
		var meta map[string]string
		if json.Unmarshal(metaJSON, &meta) != nil {
			return
		}
		e, err := envelope.Decode(meta, instruction)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if e.Format != envelope.FormatV1 {
			if _, err := e.Metadata(); err != nil && !typed(err) {
				t.Fatalf("decoded envelope does not encode: %v", err)
			}
		}
	})
}

// FuzzOpen opens arbitrary bodies under a valid envelope, and valid bodies
// under fuzzed metadata: every outcome is the exact plaintext or a typed
// error with nothing released — except that a segmented object may release
// whole segments of the true plaintext before its error.
func FuzzOpen(f *testing.F) {
	kr, err := keyring.NewAES(make([]byte, 32), map[string]string{"kid": "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	plaintext := []byte("the plaintext that fuzzing must never see altered")
	cfg := envelope.Config{CommitmentPolicy: envelope.RequireEncryptAllowDecrypt}
	type stored struct {
		meta  map[string]string
		body  []byte
		plain []byte
	}
	var objs []stored
	segPlain := bytes.Repeat(plaintext, 2*testSegment/len(plaintext)+1) // 3 segments
	for _, c := range []envelope.Config{{}, {CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}, segConfig()} {
		p := plaintext
		if c.Format == envelope.FormatSegmented {
			p = segPlain
		}
		meta, _, body := seal(f, kr, c, p, false)
		objs = append(objs, stored{meta, body, p})
		f.Add(uint8(len(objs)-1), body, "", "")
	}
	f.Add(uint8(2), objs[2].body[:testSegment+envelope.SegmentOverhead], "", "")
	f.Add(uint8(2), objs[2].body, "x-s3e-s", "8192")
	f.Add(uint8(0), objs[0].body, "x-amz-c", "114")
	f.Add(uint8(1), objs[1].body, "x-amz-tag-len", "96")
	f.Fuzz(func(t *testing.T, which uint8, body []byte, key, value string) {
		o := objs[int(which)%len(objs)]
		meta := clone(o.meta)
		if key != "" {
			meta[key] = value
		}
		e, err := envelope.Decode(meta, nil)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped decode error: %v", err)
			}
			return
		}
		pt, err := envelope.Open(context.Background(), e, kr, cfg, bytes.NewReader(body))
		if err != nil {
			if pt != nil || !typed(err) {
				t.Fatalf("open failed with %v (plaintext returned: %v)", err, pt != nil)
			}
			return
		}
		got, err := io.ReadAll(pt)
		pt.Close()
		if err != nil && e.Format == envelope.FormatSegmented {
			if !typed(err) || len(got)%e.SegmentSize != 0 || !bytes.HasPrefix(o.plain, got) {
				t.Fatalf("segmented read failed with %v after %d bytes that are not whole segments of the plaintext", err, len(got))
			}
			return
		}
		if err != nil || !bytes.Equal(got, o.plain) {
			t.Fatalf("opened to %q, %v", got, err)
		}
	})
}

func FuzzParseDescription(f *testing.F) {
	f.Add(`{"kid":"1"}`)
	f.Add(`{}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := envelope.ParseDescription(s)
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("untyped: %v", err)
			}
			return
		}
		again, err := envelope.ParseDescription(envelope.EncodeDescription(d))
		if err != nil || len(again) != len(d) {
			t.Fatalf("description does not survive encoding: %v", err)
		}
		for k, v := range d {
			if again[k] != v {
				t.Fatalf("key %q changed", k)
			}
		}
	})
}
