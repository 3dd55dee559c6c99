package keyring

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
)

// javaVectors is testdata/java_vectors.json: wraps made by the Java
// platform's JCE with the transformations the AWS Java clients use (see
// testdata/JavaVectors.java).
type javaVectors struct {
	AES256  string `json:"aes256"`
	AES128  string `json:"aes128"`
	RSA     string `json:"rsa"`
	RSA1024 string `json:"rsa1024"`
	Vectors []struct {
		Keyring    string `json:"keyring"`
		WrapAlg    string `json:"wrapAlg"`
		ContentAlg string `json:"contentAlg"`
		Wrapped    string `json:"wrapped"`
		DataKey    string `json:"dataKey"`
	} `json:"vectors"`
}

func loadJavaVectors(t testing.TB) (*javaVectors, map[string]Keyring, map[string]*rsa.PrivateKey) {
	t.Helper()
	raw, err := os.ReadFile("testdata/java_vectors.json")
	require.NoError(t, err)
	var v javaVectors
	require.NoError(t, json.Unmarshal(raw, &v))

	rings := map[string]Keyring{}
	privs := map[string]*rsa.PrivateKey{}
	rings["aes256"] = newAES(t, mustHex(t, v.AES256), nil)
	rings["aes128"] = newAES(t, mustHex(t, v.AES128), nil)
	for name, b64 := range map[string]string{"rsa": v.RSA, "rsa1024": v.RSA1024} {
		der, err := base64.StdEncoding.DecodeString(b64)
		require.NoError(t, err)
		k, err := x509.ParsePKCS8PrivateKey(der)
		require.NoError(t, err)
		priv := k.(*rsa.PrivateKey)
		privs[name] = priv
		rings[name] = newRSA(t, priv, nil)
	}
	return &v, rings, privs
}

// TestJavaVectors unwraps data keys wrapped by Java for every algorithm,
// content algorithm and data key size.
func TestJavaVectors(t *testing.T) {
	v, rings, privs := loadJavaVectors(t)
	require.Len(t, v.Vectors, 48)
	oaepMGF := map[string]int{}
	for i, vec := range v.Vectors {
		t.Run(fmt.Sprintf("%d/%s/%s/%s", i, vec.Keyring, vec.WrapAlg, vec.ContentAlg), func(t *testing.T) {
			wrapped, err := base64.StdEncoding.DecodeString(vec.Wrapped)
			require.NoError(t, err)
			want := mustHex(t, vec.DataKey)
			w := &envelope.WrappedKey{Algorithm: vec.WrapAlg, Ciphertext: wrapped}
			k := rings[vec.Keyring]

			got, err := k.Unwrap(ctx, w, vec.ContentAlg)
			require.NoError(t, err)
			require.Equal(t, want, got)

			switch vec.WrapAlg {
			case format.WrapAESGCM, format.WrapRSAOAEPSHA1:
				// Bound to the content algorithm.
				other := format.ContentAESGCM
				if vec.ContentAlg == other {
					other = format.ContentAESGCMCommit
				}
				_, err := k.Unwrap(ctx, w, other)
				requireSentinel(t, err, envelope.ErrAuthentication)
			case format.WrapLegacyRSAOAEPSHA256:
				// Record which MGF1 hash Java used.
				priv := privs[vec.Keyring]
				if _, err := rsa.DecryptOAEP(sha256.New(), nil, priv, wrapped, nil); err == nil {
					oaepMGF["sha256"]++
				}
				if _, err := priv.Decrypt(nil, wrapped, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1}); err == nil {
					oaepMGF["sha1"]++
				}
			}
		})
	}
	// The generator writes three SunJCE-default wraps (MGF1-SHA-1) and three
	// Bouncy Castle-style wraps (MGF1-SHA-256): both must be read.
	require.Equal(t, map[string]int{"sha1": 3, "sha256": 3}, oaepMGF)
}

// TestJavaReadsGoWraps has Java 17's own crypto (testdata/JavaVectors.java,
// run by the java launcher) unwrap data keys wrapped by this package. It
// needs a JDK; ./scripts/test installs one when it is missing.
func TestJavaReadsGoWraps(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatal("java is not installed: run ./scripts/test, which installs a JDK for this check")
	}
	path := filepath.Join(t.TempDir(), "go_vectors.txt")
	v, rings, _ := loadJavaVectors(t)
	var b strings.Builder
	write := func(k Keyring, keyLine string) {
		b.WriteString(keyLine + "\n")
		for _, size := range keySizes {
			for _, ca := range contentAlgs {
				dk := pattern(size, byte(0x30+size))
				w, err := k.Wrap(ctx, dk, ca)
				require.NoError(t, err)
				fmt.Fprintf(&b, "wrap %s %s %s %s\n", w.Algorithm, ca,
					base64.StdEncoding.EncodeToString(w.Ciphertext), hex.EncodeToString(dk))
			}
		}
	}
	write(rings["aes256"], "key aes "+v.AES256)
	write(rings["aes128"], "key aes "+v.AES128)
	write(rings["rsa"], "key rsa "+v.RSA)
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	out, err := exec.Command(java, "testdata/JavaVectors.java", "verify", path).CombinedOutput()
	require.NoError(t, err, "Java could not unwrap Go-made wraps:\n%s", out)
	t.Logf("java: %s", bytes.TrimSpace(out))
}
