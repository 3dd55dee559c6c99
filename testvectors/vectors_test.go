package testvectors

// Known-answer vectors written by a real peer (the Ruby aws-sdk-s3 encryption
// clients, see ruby/genvectors.rb), opened with the envelope package alone:
// no S3 server, no Ruby.

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
)

// vectorCase is one case of a vectors/*.json file (each file is an array).
type vectorCase struct {
	Name             string            `json:"name"`
	Writer           string            `json:"writer"`
	Format           string            `json:"format"`  // "v1" or "v2"
	Wrap             string            `json:"wrap"`    // as the writer names it
	Storage          string            `json:"storage"` // "metadata" or "instruction"
	AESKey           string            `json:"aesKey"`  // hex
	RSAPrivateKeyPEM string            `json:"rsaPrivateKeyPEM"`
	Description      map[string]string `json:"description"`
	Metadata         map[string]string `json:"metadata"`
	Instruction      map[string]string `json:"instruction"`
	Ciphertext       string            `json:"ciphertext"` // base64
	Plaintext        string            `json:"plaintext"`  // base64
}

func loadVectors(t *testing.T) map[string][]vectorCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("vectors", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no vectors/*.json files")
	}
	out := make(map[string][]vectorCase)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cases []vectorCase
		if err := json.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(cases) == 0 {
			t.Fatalf("%s: no cases", f)
		}
		out[filepath.Base(f)] = cases
	}
	return out
}

func (c *vectorCase) keyring(t *testing.T) keyring.Keyring {
	t.Helper()
	switch {
	case c.AESKey != "" && c.RSAPrivateKeyPEM != "":
		t.Fatal("vector has both aesKey and rsaPrivateKeyPEM")
	case c.AESKey != "":
		key, err := hex.DecodeString(c.AESKey)
		if err != nil {
			t.Fatalf("aesKey: %v", err)
		}
		kr, err := keyring.NewAES(key, c.Description)
		if err != nil {
			t.Fatalf("keyring.NewAES: %v", err)
		}
		return kr
	case c.RSAPrivateKeyPEM != "":
		block, _ := pem.Decode([]byte(c.RSAPrivateKeyPEM))
		if block == nil {
			t.Fatal("rsaPrivateKeyPEM: no PEM block")
		}
		var priv *rsa.PrivateKey
		if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			priv = k
		} else {
			k8, err8 := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err8 != nil {
				t.Fatalf("rsaPrivateKeyPEM: %v / %v", err, err8)
			}
			var ok bool
			if priv, ok = k8.(*rsa.PrivateKey); !ok {
				t.Fatalf("rsaPrivateKeyPEM holds a %T", k8)
			}
		}
		kr, err := keyring.NewRSA(priv, c.Description)
		if err != nil {
			t.Fatalf("keyring.NewRSA: %v", err)
		}
		return kr
	}
	t.Fatal("vector has neither aesKey nor rsaPrivateKeyPEM")
	return nil
}

func (c *vectorCase) decode(t *testing.T) *envelope.Envelope {
	t.Helper()
	var instr []byte
	if c.Instruction != nil {
		var err error
		if instr, err = json.Marshal(c.Instruction); err != nil {
			t.Fatal(err)
		}
	}
	env, err := envelope.Decode(c.Metadata, instr)
	if err != nil {
		t.Fatalf("envelope.Decode: %v", err)
	}
	want := map[string]envelope.Format{"v1": envelope.FormatV1, "v2": envelope.FormatV2}[c.Format]
	if want == 0 {
		t.Fatalf("vector format %q", c.Format)
	}
	if env.Format != want {
		t.Fatalf("decoded format %v, want %v", env.Format, want)
	}
	return env
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openAll opens ciphertext and reads all the plaintext.
func openAll(env *envelope.Envelope, u envelope.Unwrapper, cfg envelope.Config, ciphertext []byte) ([]byte, error) {
	p, err := envelope.Open(context.Background(), env, u, cfg, bytes.NewReader(ciphertext))
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return io.ReadAll(p)
}

func TestRubyVectors(t *testing.T) {
	for file, cases := range loadVectors(t) {
		for _, c := range cases {
			t.Run(file+"/"+c.Name, func(t *testing.T) {
				kr := c.keyring(t)
				env := c.decode(t)
				ciphertext, want := b64(t, c.Ciphertext), b64(t, c.Plaintext)

				cfg := envelope.Config{CommitmentPolicy: envelope.ForbidEncryptAllowDecrypt}
				if c.Format == "v1" {
					// Refused unless both legacy switches are on.
					if _, err := openAll(env, kr, cfg, ciphertext); !errors.Is(err, envelope.ErrDisallowed) {
						t.Fatalf("V1 vector without legacy switches: err = %v, want ErrDisallowed", err)
					}
					cfg.EnableLegacyUnauthenticatedModes = true
					cfg.EnableLegacyWrappingAlgorithms = true
				} else if _, err := openAll(env, kr, envelope.Config{}, ciphertext); !errors.Is(err, envelope.ErrPolicy) {
					// The default policy reads only V3.
					t.Fatalf("V2 vector under the default policy: err = %v, want ErrPolicy", err)
				}

				got, err := openAll(env, kr, cfg, ciphertext)
				if err != nil {
					t.Fatalf("envelope.Open: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("plaintext differs: got %d bytes, want %d", len(got), len(want))
				}

				if c.Format == "v2" {
					// Any flipped bit of the body or tag fails authentication
					// and releases nothing.
					for _, i := range []int{0, len(ciphertext) / 2, len(ciphertext) - 1} {
						bad := bytes.Clone(ciphertext)
						bad[i] ^= 0x01
						got, err := openAll(env, kr, cfg, bad)
						if !errors.Is(err, envelope.ErrAuthentication) {
							t.Fatalf("ciphertext with byte %d flipped: err = %v, want ErrAuthentication", i, err)
						}
						if len(got) != 0 {
							t.Fatalf("ciphertext with byte %d flipped released %d bytes", i, len(got))
						}
					}
				}
			})
		}
	}
}
