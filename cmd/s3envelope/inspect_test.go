package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
)

// storedEnvelope reads an object's envelope behind the command's back.
func (c *cli) storedEnvelope(key string) *envelope.Envelope {
	c.t.Helper()
	ctx := context.Background()
	head, err := c.admin.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil {
		c.t.Fatal(err)
	}
	var instr []byte
	if out, err := c.admin.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key + ".instruction")}); err == nil {
		instr, _ = io.ReadAll(out.Body)
		out.Body.Close()
	}
	e, err := envelope.Decode(head.Metadata, instr)
	if err != nil {
		c.t.Fatal(err)
	}
	return e
}

// TestInspect shows each format's envelope without a key: the fields a
// person needs, the same from head and inspect, and no wrapped key, IV or
// message ID (noise) — only the wrapped key's length.
func TestInspect(t *testing.T) {
	c := newS3CLI(t)
	k, team := c.aesKey("a.key"), c.rsaKey("team")
	data := randomBytes(t, 200<<10+3)
	for _, tc := range []struct {
		key        keyFile
		flags      []string
		format     string
		wrap       string
		wrapped    int // bytes
		envelope   string
		stored     int
		segmentLen int
		lines      []string
	}{
		{k, nil, "V3", "AES/GCM", 60, "metadata", len(data) + 16, 0,
			[]string{"format:            V3\n", "content algorithm: 115 (AES-256-GCM, committing to the data key (HKDF-SHA512))\n", "wrap algorithm:    AES/GCM (wrapped data key: 60 bytes)\n", `description:       {"key":"a.key"}` + "\n", "envelope:          in the object's metadata\n"}},
		{team, []string{"--format", "v2", "--instruction-file"}, "V2", "RSA-OAEP-SHA1", 256, "instruction-file", len(data) + 16, 0,
			[]string{"format:            V2\n", "content algorithm: AES/GCM/NoPadding (AES-256-GCM, no key commitment)\n", "wrap algorithm:    RSA-OAEP-SHA1 (wrapped data key: 256 bytes)\n", "envelope:          in the instruction file " + c.uri("V2") + ".instruction\n"}},
		{k, []string{"--format", "segmented"}, "segmented", "AES/GCM", 60, "metadata", 0, 64 << 10,
			[]string{"format:            segmented\n", "segment size:      65536 bytes (64.0 KiB)\n"}},
	} {
		c.put(tc.key, tc.format, data, tc.flags...)
		r := c.run(nil, "inspect", c.uri(tc.format))
		requireExit(t, r, exitOK)
		want := append(tc.lines, "object:            "+c.uri(tc.format)+"\n", fmt.Sprintf("plaintext size:    %d bytes (200.0 KiB)\n", len(data)), "etag:              \"", "last modified:     20")
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Fatalf("inspect of %s does not show %q:\n%s", tc.format, w, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "verified") {
			t.Fatalf("inspect without --verify says something about verification:\n%s", r.stdout)
		}
		// head is the same command.
		if h := c.run(nil, "head", c.uri(tc.format)); h.code != exitOK || h.stdout != r.stdout {
			t.Fatalf("head differs from inspect:\n%s\n%s", h.stdout, r.stdout)
		}
		j := c.run(nil, "inspect", "--json", c.uri(tc.format))
		requireExit(t, j, exitOK)
		res := decodeJSON[inspectResult](t, j)
		if res.Format != tc.format || res.WrapAlgorithm != tc.wrap || res.WrappedKeyBytes != tc.wrapped || res.Envelope != tc.envelope ||
			res.PlaintextSize == nil || *res.PlaintextSize != int64(len(data)) || res.SegmentSize != tc.segmentLen || res.ETag == "" || res.LastModified == nil ||
			res.Description["key"] != strings.TrimPrefix(tc.key.desc, "key=") || res.EncryptionContext != nil || (tc.stored != 0 && res.StoredSize != int64(tc.stored)) {
			t.Fatalf("inspect --json of %s: %+v", tc.format, res)
		}
		// Nothing of what is unwrapped, or of the IVs, in the output.
		e := c.storedEnvelope(tc.format)
		for _, b := range [][]byte{e.Key.Ciphertext, e.IV, e.MessageID, e.Commitment, e.ObjectID} {
			if len(b) == 0 {
				continue
			}
			for _, s := range []string{base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b), hex.EncodeToString(b)} {
				if strings.Contains(r.stdout, s) || strings.Contains(j.stdout, s) {
					t.Fatalf("inspect of %s prints a stored binary field in full", tc.format)
				}
			}
		}
	}
}

// TestInspectVerify: --verify unwraps and reads the whole object; it
// needs a key, and a wrong one fails (exit 1) with the envelope still
// shown.
func TestInspectVerify(t *testing.T) {
	c := newS3CLI(t)
	k, wrong := c.aesKey("a.key"), c.aesKey("b.key")
	c.put(k, "obj", randomBytes(t, 70<<10), "--format", "segmented")

	r := c.run(nil, "inspect", "--verify", "--key", k.path, c.uri("obj"))
	requireExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "verified:          OK: the data key unwrapped and every byte authenticated\n") {
		t.Fatalf("inspect --verify:\n%s", r.stdout)
	}
	r = c.run(nil, "head", "--json", "--verify", "--key", k.path, "--desc", k.desc, c.uri("obj"))
	requireExit(t, r, exitOK)
	if res := decodeJSON[inspectResult](t, r); res.Verified == nil || !*res.Verified || res.VerifyError != "" {
		t.Fatalf("head --json --verify: %+v", res)
	}

	r = c.run(nil, "inspect", "--verify", "--quiet", "--key", wrong.path, c.uri("obj"))
	requireExit(t, r, exitFailed, "s3envelope inspect: "+c.uri("obj")+" does not verify: ", "authentication failed")
	requireOneLineError(t, r)
	if !strings.Contains(r.stdout, "format:            segmented\n") || !strings.Contains(r.stdout, "verified:          FAILED: ") {
		t.Fatalf("a failed --verify does not show the envelope and the failure:\n%s", r.stdout)
	}
	requireNoSecrets(t, append(k.secrets, wrong.secrets...), r)

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--verify", c.uri("obj")}, exitUsage, "--verify needs the master key"},
		{[]string{"--key", k.path, c.uri("obj")}, exitUsage, "--key and --desc are for --verify"},
		{[]string{"--verify", "--key", "missing.key", c.uri("obj")}, exitUsage, "--key missing.key: open missing.key: no such file or directory"},
		{[]string{"s3://" + c.bucket + "/"}, exitUsage, "names no object"},
		{[]string{c.uri("obj"), c.uri("obj")}, exitUsage, "want one object"},
		{[]string{"obj"}, exitUsage, "is not an S3 URI"},
	} {
		r := c.run(nil, append([]string{"inspect"}, tc.args...)...)
		requireExit(t, r, tc.code, "s3envelope inspect: ", tc.want)
		if r.stdout != "" {
			t.Fatalf("inspect %v printed %q", tc.args, r.stdout)
		}
	}
}
