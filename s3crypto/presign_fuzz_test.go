package s3crypto_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// headerText renders h one "Name: value" line per value, as they came.
func headerText(h http.Header) string {
	var b strings.Builder
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return b.String()
}

// parseHeaderText is headerText's inverse, for any text: names are kept
// as written (net/http would canonicalise them; a hand-built header need
// not), so the decoder meets every spelling.
func parseHeaderText(s string) http.Header {
	h := http.Header{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, _ := strings.Cut(line, ":")
		h[k] = append(h[k], strings.TrimPrefix(v, " "))
	}
	return h
}

// FuzzOpenObject opens any response headers, body and instruction file
// bytes: no panic; either a typed error (an envelope sentinel, when
// opening or when reading), or the plaintext of an object this key sealed.
// The seeds are real responses, of every format, with the envelope in
// metadata and in an instruction file, fetched by net/http through
// presigned URLs.
func FuzzOpenObject(f *testing.F) {
	ctx := context.Background()
	kr, err := keyring.NewAES(bytes.Repeat([]byte{7}, 32), map[string]string{"kid": "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	api, bucket := memShared(f)
	pc := s3.NewPresignClient(api)
	sealed := map[[32]byte]bool{}
	type seed struct {
		header      string
		body, instr []byte
	}
	var seedArgs []seed
	for i, tc := range presignCases {
		w, err := s3crypto.New(api, provider(f, kr), tc.apply)
		if err != nil {
			f.Fatal(err)
		}
		pt := bytes.Repeat([]byte{byte(i)}, 5000+i)
		sealed[sha256.Sum256(pt)] = true
		key := tc.String()
		if _, err := w.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(pt)}); err != nil {
			f.Fatal(err)
		}
		p, err := w.PresignGetObject(ctx, pc, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			f.Fatal(err)
		}
		instr := fetchInstruction(f, http.DefaultClient, p)
		resp := httpGet(f, http.DefaultClient, p.URL, nil)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			f.Fatal(err)
		}
		seedArgs = append(seedArgs, seed{headerText(resp.Header), body, instr})
	}
	f.Add("X-Amz-Meta-X-Amz-3: \nContent-Length: -1\nContent-Range: bytes 0-0/1", []byte{}, []byte("{}"))
	f.Add("x-amz-meta-x-amz-key-v2: AAAA\nX-Amz-Meta-X-Amz-Key-v2: AAAA", []byte{}, []byte(nil))

	// Every authenticated format is read (V2, V3, segmented), so the
	// decoder's output reaches each; the legacy modes stay off, as nothing
	// authenticates what they release.
	r, err := s3crypto.New(noS3{f}, provider(f, kr), func(o *s3crypto.Options) {
		o.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt
		o.SpoolLimit = 1 << 20
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seedArgs {
		// A seed that does not open would leave the fuzzer outside the
		// formats.
		out, err := r.OpenObject(ctx, parseHeaderText(s.header), io.NopCloser(bytes.NewReader(s.body)), s.instr)
		if err != nil {
			f.Fatalf("seed does not open: %v", err)
		}
		out.Body.Close()
		f.Add(s.header, s.body, s.instr)
	}
	sentinels := []error{envelope.ErrAuthentication, envelope.ErrMalformed, envelope.ErrNoEnvelope, envelope.ErrUnsupported,
		envelope.ErrTooLarge, envelope.ErrDisallowed, envelope.ErrPolicy, envelope.ErrNoMasterKey, envelope.ErrInvalidRange}
	typed := func(err error) bool {
		return slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) })
	}
	f.Fuzz(func(t *testing.T, header string, body, instruction []byte) {
		out, err := r.OpenObject(ctx, parseHeaderText(header), io.NopCloser(bytes.NewReader(body)), instruction)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		defer out.Body.Close()
		got, err := io.ReadAll(out.Body)
		switch {
		case err != nil && !typed(err):
			t.Fatalf("untyped read error: %v", err)
		case err == nil && !sealed[sha256.Sum256(got)]:
			t.Fatalf("opened %d bytes that no seed sealed", len(got))
		case err == nil && out.ContentLength != nil && *out.ContentLength != int64(len(got)):
			t.Fatalf("ContentLength %d, read %d", *out.ContentLength, len(got))
		}
	})
}
