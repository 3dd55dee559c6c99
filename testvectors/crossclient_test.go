package testvectors

// Cross-client tests against a real peer: the Ruby aws-sdk-s3 gem's
// Aws::S3::EncryptionV2::Client and legacy Aws::S3::Encryption::Client
// (ruby/peer.rb), over a real S3 server (versitygw, started by
// ./scripts/test).
//
// What the Ruby clients (aws-sdk-s3 1.117) store, as read back from the server:
//
//	V2, metadata:    object metadata x-amz-key-v2, x-amz-iv (12 bytes),
//	                 x-amz-cek-alg=AES/GCM/NoPadding, x-amz-wrap-alg=AES/GCM|RSA-OAEP-SHA1,
//	                 x-amz-tag-len=128, x-amz-matdesc, x-amz-unencrypted-content-length
//	V2, instruction: object metadata x-amz-unencrypted-content-length only;
//	                 <key>.instruction = JSON {x-amz-key-v2, x-amz-iv, x-amz-cek-alg,
//	                 x-amz-wrap-alg, x-amz-tag-len, x-amz-matdesc}, with no metadata
//	V1, metadata:    x-amz-key (AES/ECB/PKCS5-wrapped data key, 48 bytes),
//	                 x-amz-iv (16 bytes), x-amz-matdesc, x-amz-unencrypted-content-length
//	V1, instruction: object metadata x-amz-unencrypted-content-length only;
//	                 <key>.instruction = JSON {x-amz-key, x-amz-iv, x-amz-matdesc}
//
// Body: V2 = AES-256-GCM ciphertext || 16-byte tag; V1 = AES-256-CBC, PKCS#7.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// The sizes every direction is tested with: empty, one byte, not a multiple
// of the AES block, more than Ruby's 64 KiB read chunks, and more than the
// 5 MiB multipart threshold of many clients and Ruby's 1 MiB tempfile switch.
var crossSizes = []int{0, 1, 17, 70000, 5<<20 + 3}

// The material description both sides store and match master keys by.
var testDescription = map[string]string{"purpose": "test"}

const testMatdesc = `{"purpose":"test"}`

const peerScript = "ruby/peer.rb"

// masterKeys are the test's master keys, made once per test binary.
type masterKeys struct {
	aes        []byte
	rsa        *rsa.PrivateKey
	rsaPEMFile string
}

var (
	keysOnce sync.Once
	keys     masterKeys
	keysErr  error
	keysDir  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "s3envelope-testvectors-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keysDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testKeys(t testing.TB) masterKeys {
	t.Helper()
	keysOnce.Do(func() {
		keys.aes = make([]byte, 32)
		if _, keysErr = rand.Read(keys.aes); keysErr != nil {
			return
		}
		if keys.rsa, keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
			return
		}
		block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keys.rsa)}
		keys.rsaPEMFile = filepath.Join(keysDir, "rsa.pem")
		keysErr = os.WriteFile(keys.rsaPEMFile, pem.EncodeToMemory(block), 0o600)
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keys
}

// wrapCase is one master-key type, as both sides configure it.
type wrapCase struct {
	name    string // for test names
	wrapAlg string // x-amz-wrap-alg
}

var v2Wraps = []wrapCase{{"AESGCM", "AES/GCM"}, {"RSAOAEPSHA1", "RSA-OAEP-SHA1"}}

var storages = []string{"metadata", "instruction"}

func (w wrapCase) rubyKeyArgs(t testing.TB) []string {
	k := testKeys(t)
	if w.wrapAlg == "RSA-OAEP-SHA1" {
		return []string{"--rsa-key-file", k.rsaPEMFile}
	}
	return []string{"--aes-key-hex", hex.EncodeToString(k.aes)}
}

func (w wrapCase) keyring(t testing.TB) keyring.Keyring {
	t.Helper()
	k := testKeys(t)
	if w.wrapAlg == "RSA-OAEP-SHA1" {
		kr, err := keyring.NewRSA(k.rsa, testDescription)
		if err != nil {
			t.Fatalf("keyring.NewRSA: %v", err)
		}
		return kr
	}
	kr, err := keyring.NewAES(k.aes, testDescription)
	if err != nil {
		t.Fatalf("keyring.NewAES: %v", err)
	}
	return kr
}

// newCryptoClient returns this library's client over the test server, with
// kr as its master key, configured by opts.
func newCryptoClient(t testing.TB, kr keyring.Keyring, opts ...func(*s3crypto.Options)) *s3crypto.Client {
	t.Helper()
	p := materials.NewProvider(kr)
	c, err := s3crypto.New(newS3Client(t), p, opts...)
	if err != nil {
		t.Fatalf("s3crypto.New: %v", err)
	}
	return c
}

// v2Options makes a client that writes V2 (and reads V2) objects.
func v2Options(storage string) func(*s3crypto.Options) {
	return func(o *s3crypto.Options) {
		o.Format = envelope.FormatV2
		o.CommitmentPolicy = envelope.ForbidEncryptAllowDecrypt
		o.InstructionFile = storage == "instruction"
	}
}

// runPeer runs ruby/peer.rb with args and fails the test if it fails.
func runPeer(t testing.TB, args ...string) {
	t.Helper()
	requireRuby(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ruby", append([]string{peerScript}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ruby %s %s: %v\n%s", peerScript, strings.Join(redactKeys(args), " "), err, out)
	}
}

// redactKeys hides the AES key in logged command lines (test keys, but the
// habit matters).
func redactKeys(args []string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if i > 0 && out[i-1] == "--aes-key-hex" {
			out[i] = "<redacted>"
		}
	}
	return out
}

// plaintext returns size random bytes.
func plaintext(t testing.TB, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTemp(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plaintext")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// getAll reads an object with the library, returning an error from the
// GetObject call or from reading (and authenticating) the body.
func getAll(c *s3crypto.Client, bucket, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func putObject(t testing.TB, c *s3crypto.Client, bucket, key string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
		Body:   bytes.NewReader(data),
	})
	if err != nil {
		t.Fatalf("library PutObject %s/%s (%d bytes): %v", bucket, key, len(data), err)
	}
}

func checkSame(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: plaintext differs: got %d bytes, want %d bytes", what, len(got), len(want))
	}
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// checkRubyMetadata pins what the real peer stores, so that a change on the
// Ruby side shows up here and not as a puzzling library failure.
func checkRubyMetadata(t testing.TB, s3c *s3.Client, bucket, key, format, storage string) {
	t.Helper()
	meta, ok := headMetadata(t, s3c, bucket, key)
	if !ok {
		t.Fatalf("Ruby's object %s/%s does not exist", bucket, key)
	}
	var want []string
	switch {
	case storage == "instruction":
		want = []string{"x-amz-unencrypted-content-length"}
	case format == "v1":
		want = []string{"x-amz-iv", "x-amz-key", "x-amz-matdesc", "x-amz-unencrypted-content-length"}
	default:
		want = []string{"x-amz-cek-alg", "x-amz-iv", "x-amz-key-v2", "x-amz-matdesc",
			"x-amz-tag-len", "x-amz-unencrypted-content-length", "x-amz-wrap-alg"}
	}
	if got := sortedKeys(meta); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Ruby %s/%s object metadata keys = %v, want %v", format, storage, got, want)
	}
	_, hasInstr := headMetadata(t, s3c, bucket, key+".instruction")
	if hasInstr != (storage == "instruction") {
		t.Errorf("Ruby %s/%s: instruction file exists = %v", format, storage, hasInstr)
	}
}

// (a) Ruby writes V2 (AES/GCM and RSA-OAEP-SHA1 wraps, envelope in metadata
// or in an instruction file); this library reads it back.
func TestRubyV2WritesLibraryReads(t *testing.T) {
	s3c := newS3Client(t)
	requireRuby(t)
	bucket := newBucket(t, s3c)
	for _, w := range v2Wraps {
		for _, storage := range storages {
			for _, size := range crossSizes {
				t.Run(fmt.Sprintf("%s/%s/%d", w.name, storage, size), func(t *testing.T) {
					t.Parallel()
					key := fmt.Sprintf("ruby-v2/%s/%s/%d", w.name, storage, size)
					pt := plaintext(t, size)
					args := append([]string{"put-v2", "--bucket", bucket, "--key", key,
						"--in", writeTemp(t, pt), "--storage", storage, "--matdesc", testMatdesc},
						w.rubyKeyArgs(t)...)
					runPeer(t, args...)
					checkRubyMetadata(t, s3c, bucket, key, "v2", storage)

					c := newCryptoClient(t, w.keyring(t), v2Options(storage))
					got, err := getAll(c, bucket, key)
					if err != nil {
						t.Fatalf("library GetObject of Ruby's V2 %s/%s object: %v", w.wrapAlg, storage, err)
					}
					checkSame(t, "library read of Ruby's V2 object", got, pt)
				})
			}
		}
	}
}

// A reader not configured for instruction files still finds Ruby's
// instruction file when the object's metadata holds no envelope (as the S3EC
// spec and the AWS clients do).
func TestRubyV2InstructionFileFoundWithoutOption(t *testing.T) {
	s3c := newS3Client(t)
	requireRuby(t)
	bucket := newBucket(t, s3c)
	for _, w := range v2Wraps {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			key := "ruby-v2-instr/" + w.name
			pt := plaintext(t, 300)
			runPeer(t, append([]string{"put-v2", "--bucket", bucket, "--key", key,
				"--in", writeTemp(t, pt), "--storage", "instruction", "--matdesc", testMatdesc},
				w.rubyKeyArgs(t)...)...)
			c := newCryptoClient(t, w.keyring(t), v2Options("metadata"))
			got, err := getAll(c, bucket, key)
			if err != nil {
				t.Fatalf("library GetObject (InstructionFile=false) of Ruby's instruction-file object: %v", err)
			}
			checkSame(t, "library read of Ruby's instruction-file object", got, pt)
		})
	}
}

// The library's default commitment policy (RequireEncryptRequireDecrypt)
// refuses Ruby's non-committing V2 objects, releasing no plaintext.
func TestRubyV2RefusedByDefaultPolicy(t *testing.T) {
	s3c := newS3Client(t)
	requireRuby(t)
	bucket := newBucket(t, s3c)
	w := v2Wraps[0]
	key := "ruby-v2-policy"
	pt := plaintext(t, 300)
	runPeer(t, append([]string{"put-v2", "--bucket", bucket, "--key", key,
		"--in", writeTemp(t, pt), "--storage", "metadata", "--matdesc", testMatdesc},
		w.rubyKeyArgs(t)...)...)
	c := newCryptoClient(t, w.keyring(t))
	got, err := getAll(c, bucket, key)
	if !errors.Is(err, envelope.ErrPolicy) {
		t.Fatalf("default client reading Ruby's V2 object: err = %v, want ErrPolicy", err)
	}
	if len(got) != 0 {
		t.Fatalf("default client released %d bytes of a refused object", len(got))
	}
}

// (b) This library writes V2 (FormatV2, ForbidEncryptAllowDecrypt) with both
// wraps and both storages; Ruby reads it back.
func TestLibraryV2WritesRubyReads(t *testing.T) {
	s3c := newS3Client(t)
	requireRuby(t)
	bucket := newBucket(t, s3c)
	for _, w := range v2Wraps {
		for _, storage := range storages {
			for _, size := range crossSizes {
				t.Run(fmt.Sprintf("%s/%s/%d", w.name, storage, size), func(t *testing.T) {
					t.Parallel()
					key := fmt.Sprintf("lib-v2/%s/%s/%d", w.name, storage, size)
					pt := plaintext(t, size)
					c := newCryptoClient(t, w.keyring(t), v2Options(storage))
					putObject(t, c, bucket, key, pt)

					meta, _ := headMetadata(t, s3c, bucket, key)
					_, hasInstr := headMetadata(t, s3c, bucket, key+".instruction")
					if hasInstr != (storage == "instruction") {
						t.Errorf("library %s write: instruction file exists = %v", storage, hasInstr)
					}
					if _, inMeta := meta["x-amz-key-v2"]; inMeta != (storage == "metadata") {
						t.Errorf("library %s write: x-amz-key-v2 in object metadata = %v (metadata keys %v)",
							storage, inMeta, sortedKeys(meta))
					}

					out := filepath.Join(t.TempDir(), "out")
					runPeer(t, append([]string{"get-v2", "--bucket", bucket, "--key", key,
						"--out", out, "--storage", storage}, w.rubyKeyArgs(t)...)...)
					got, err := os.ReadFile(out)
					if err != nil {
						t.Fatal(err)
					}
					checkSame(t, "Ruby read of the library's V2 object", got, pt)
				})
			}
		}
	}
}

// (c) A Ruby V1 object (AES/CBC content, AES/ECB key wrap) is refused unless
// both legacy switches are on, and read when they are.
func TestRubyV1LegacyRead(t *testing.T) {
	s3c := newS3Client(t)
	requireRuby(t)
	bucket := newBucket(t, s3c)
	w := wrapCase{"AES", "AES/GCM"} // the V1 peer takes the same AES key
	for _, storage := range storages {
		for _, size := range crossSizes {
			t.Run(fmt.Sprintf("%s/%d", storage, size), func(t *testing.T) {
				t.Parallel()
				key := fmt.Sprintf("ruby-v1/%s/%d", storage, size)
				pt := plaintext(t, size)
				runPeer(t, append([]string{"put-v1", "--bucket", bucket, "--key", key,
					"--in", writeTemp(t, pt), "--storage", storage, "--matdesc", testMatdesc},
					w.rubyKeyArgs(t)...)...)
				checkRubyMetadata(t, s3c, bucket, key, "v1", storage)
				kr := w.keyring(t)

				refusals := []struct {
					name string
					opts func(*s3crypto.Options)
					want []error
				}{
					{"default options", func(*s3crypto.Options) {}, []error{envelope.ErrDisallowed, envelope.ErrPolicy}},
					{"V2 reader", v2Options(storage), []error{envelope.ErrDisallowed}},
					{"unauthenticated modes only", func(o *s3crypto.Options) {
						v2Options(storage)(o)
						o.EnableLegacyUnauthenticatedModes = true
					}, []error{envelope.ErrDisallowed}},
					{"legacy wraps only", func(o *s3crypto.Options) {
						v2Options(storage)(o)
						o.EnableLegacyWrappingAlgorithms = true
					}, []error{envelope.ErrDisallowed}},
				}
				for _, r := range refusals {
					got, err := getAll(newCryptoClient(t, kr, r.opts), bucket, key)
					ok := false
					for _, want := range r.want {
						ok = ok || errors.Is(err, want)
					}
					if !ok {
						t.Errorf("%s reading Ruby's V1 object: err = %v, want one of %v", r.name, err, r.want)
					}
					if len(got) != 0 {
						t.Errorf("%s released %d bytes of a refused V1 object", r.name, len(got))
					}
				}

				c := newCryptoClient(t, kr, func(o *s3crypto.Options) {
					v2Options(storage)(o)
					o.EnableLegacyUnauthenticatedModes = true
					o.EnableLegacyWrappingAlgorithms = true
				})
				got, err := getAll(c, bucket, key)
				if err != nil {
					t.Fatalf("legacy-enabled GetObject of Ruby's V1 object: %v", err)
				}
				checkSame(t, "library legacy read of Ruby's V1 object", got, pt)
			})
		}
	}
}
