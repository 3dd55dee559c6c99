package testvectors

// V3 known-answer vectors (v3/*.json, written by cmd/genv3). Each is opened
// twice: by an independent decryption built from the standard library and
// the format's specification alone — unwrap, HKDF-SHA-512 key schedule,
// commitment, AES-GCM — and by the library. Both must yield the plaintext.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"
)

// specOpenV3 decrypts a V3 object from its flat envelope fields using only
// the standard library, following s3ec-format.md step by step.
func specOpenV3(t *testing.T, c *vectorCase, fields map[string]string, ciphertext []byte) []byte {
	t.Helper()
	if fields["x-amz-c"] != "115" {
		t.Fatalf("x-amz-c = %q", fields["x-amz-c"])
	}
	wrapped := b64(t, fields["x-amz-3"])
	var dataKey []byte
	switch fields["x-amz-w"] {
	case "02": // AES/GCM: IV(12) || GCM(master, IV, AAD="115")
		mb, err := aes.NewCipher(mustHexKey(t, c.AESKey))
		if err != nil {
			t.Fatal(err)
		}
		g, _ := cipher.NewGCM(mb)
		if dataKey, err = g.Open(nil, wrapped[:12], wrapped[12:], []byte("115")); err != nil {
			t.Fatalf("spec AES/GCM unwrap: %v", err)
		}
	case "22": // RSA-OAEP-SHA1 over len(1) || key || "115"
		block, _ := pem.Decode([]byte(c.RSAPrivateKeyPEM))
		if block == nil {
			t.Fatal("no PEM block")
		}
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		packed, err := rsa.DecryptOAEP(sha1.New(), nil, key, wrapped, nil)
		if err != nil {
			t.Fatalf("spec RSA-OAEP unwrap: %v", err)
		}
		n := int(packed[0])
		if n != 32 || string(packed[1+n:]) != "115" {
			t.Fatalf("spec RSA-OAEP packing: len %d, suffix %q", n, packed[1+n:])
		}
		dataKey = packed[1 : 1+n]
	default:
		t.Fatalf("x-amz-w = %q", fields["x-amz-w"])
	}
	messageID := b64(t, fields["x-amz-i"])
	prk, err := hkdf.Extract(sha512.New, dataKey, messageID)
	if err != nil {
		t.Fatal(err)
	}
	commit, _ := hkdf.Expand(sha512.New, prk, "\x00\x73COMMITKEY", 28)
	if !bytes.Equal(commit, b64(t, fields["x-amz-d"])) {
		t.Fatal("spec commitment differs from x-amz-d")
	}
	dek, _ := hkdf.Expand(sha512.New, prk, "\x00\x73DERIVEKEY", 32)
	block, _ := aes.NewCipher(dek)
	g, _ := cipher.NewGCM(block)
	pt, err := g.Open(nil, bytes.Repeat([]byte{1}, 12), ciphertext, []byte{0x00, 0x73})
	if err != nil {
		t.Fatalf("spec AES-GCM open: %v", err)
	}
	return pt
}

func TestV3Vectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("v3", "*.json"))
	if err != nil || len(files) != 4 {
		t.Fatalf("want 4 v3/*.json files, got %v (%v)", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cases []vectorCase
		if err := json.Unmarshal(b, &cases); err != nil || len(cases) == 0 {
			t.Fatalf("%s: %v", f, err)
		}
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				ciphertext, want := b64(t, c.Ciphertext), b64(t, c.Plaintext)
				fields := map[string]string{}
				for k, v := range c.Metadata {
					fields[k] = v
				}
				for k, v := range c.Instruction {
					fields[k] = v
				}
				if c.Storage == "instruction" {
					for _, k := range []string{"x-amz-c", "x-amz-d", "x-amz-i"} {
						if _, ok := c.Instruction[k]; ok {
							t.Fatalf("%s in the instruction file", k)
						}
						if _, ok := c.Metadata[k]; !ok {
							t.Fatalf("%s missing from the object's metadata", k)
						}
					}
				}
				if got := specOpenV3(t, &c, fields, ciphertext); !bytes.Equal(got, want) {
					t.Fatal("spec decryption differs from the plaintext")
				}

				var instr []byte
				if c.Instruction != nil {
					instr, _ = json.Marshal(c.Instruction)
				}
				env, err := envelope.Decode(c.Metadata, instr)
				if err != nil {
					t.Fatal(err)
				}
				if env.Format != envelope.FormatV3 {
					t.Fatalf("decoded %v", env.Format)
				}
				got, err := openAll(env, c.keyring(t), envelope.Config{}, ciphertext)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("library open: %v", err)
				}
				// The commitment is checked before decryption: a wrong one
				// fails authentication with nothing released.
				bad := *env
				bad.Commitment = bytes.Clone(env.Commitment)
				bad.Commitment[0] ^= 1
				got, err = openAll(&bad, c.keyring(t), envelope.Config{}, ciphertext)
				if !errors.Is(err, envelope.ErrAuthentication) || len(got) != 0 {
					t.Fatalf("wrong commitment: %v, %d bytes", err, len(got))
				}
			})
		}
	}
}

func mustHexKey(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
