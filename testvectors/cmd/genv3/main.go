// Command genv3 writes the V3 (key-committing) known-answer vectors in
// ../v3 with this library: AES/GCM and RSA-OAEP-SHA1 wraps, envelope in
// metadata or an instruction file, several sizes. No peer here writes V3 with
// raw master keys, so v3_test.go checks each vector against an independent
// decryption that uses only the standard library and the format's
// specification (s3ec-format.md), as well as with the library.
//
//	cd testvectors && go run ./cmd/genv3
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
)

type vector struct {
	Name             string            `json:"name"`
	Writer           string            `json:"writer"`
	Format           string            `json:"format"`
	Wrap             string            `json:"wrap"`
	Storage          string            `json:"storage"`
	AESKey           string            `json:"aesKey,omitempty"`
	RSAPrivateKeyPEM string            `json:"rsaPrivateKeyPEM,omitempty"`
	Description      map[string]string `json:"description"`
	Metadata         map[string]string `json:"metadata"`
	Instruction      map[string]string `json:"instruction,omitempty"`
	Ciphertext       string            `json:"ciphertext"`
	Plaintext        string            `json:"plaintext"`
}

func main() {
	aesKey := make([]byte, 32)
	rand.Read(aesKey)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	check(err)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)}))
	desc := map[string]string{"purpose": "test-vector"}
	a, err := keyring.NewAES(aesKey, desc)
	check(err)
	r, err := keyring.NewRSA(priv, desc)
	check(err)

	for _, w := range []struct {
		name string
		kr   keyring.Keyring
	}{{"aesgcm", a}, {"rsaoaepsha1", r}} {
		for _, storage := range []string{"metadata", "instruction"} {
			var out []vector
			for _, n := range []int{0, 1, 17, 300, 70000} {
				pt := make([]byte, n)
				rand.Read(pt)
				s, err := envelope.NewSealer(context.Background(), w.kr, envelope.Config{})
				check(err)
				ct, err := io.ReadAll(s.Seal(bytes.NewReader(pt)))
				check(err)
				v := vector{
					Name:        fmt.Sprintf("s3envelope-v3-%s-%s-%d", w.name, storage, n),
					Writer:      "s3envelope (testvectors/cmd/genv3)",
					Format:      "v3",
					Wrap:        s.Envelope().Key.Algorithm,
					Storage:     storage,
					Description: desc,
					Ciphertext:  base64.StdEncoding.EncodeToString(ct),
					Plaintext:   base64.StdEncoding.EncodeToString(pt),
				}
				if w.name == "aesgcm" {
					v.AESKey = hex.EncodeToString(aesKey)
				} else {
					v.RSAPrivateKeyPEM = pemKey
				}
				if storage == "metadata" {
					v.Metadata, err = s.Envelope().Metadata()
					check(err)
				} else {
					var ins []byte
					v.Metadata, ins, err = s.Envelope().Instruction()
					check(err)
					check(json.Unmarshal(ins, &v.Instruction))
				}
				out = append(out, v)
			}
			b, err := json.MarshalIndent(out, "", "  ")
			check(err)
			check(os.WriteFile(filepath.Join("v3", fmt.Sprintf("s3envelope-v3-%s-%s.json", w.name, storage)), append(b, '\n'), 0o644))
		}
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
