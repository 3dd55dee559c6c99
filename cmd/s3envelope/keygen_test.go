package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
)

// keyFile is a master key made by keygen, with the strings that must
// never appear in any output.
type keyFile struct {
	path, pub string // pub: the RSA public key file
	desc      string
	secrets   []string
}

// aesKey makes an AES key with keygen.
func (c *cli) aesKey(name string) keyFile {
	c.t.Helper()
	r := c.run(nil, "keygen", "--type", "aes", "--out", name)
	requireExit(c.t, r, exitOK)
	p := filepath.Join(c.dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		c.t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		c.t.Fatalf("keygen's AES key file holds %d bytes of base64 (%v), want 32", len(raw), err)
	}
	k := keyFile{path: p, desc: "key=" + name, secrets: secretForms(raw)}
	requireNoSecrets(c.t, k.secrets, r)
	return k
}

// rsaKey makes an RSA key pair with keygen (2048 bits, for speed).
func (c *cli) rsaKey(name string) keyFile {
	c.t.Helper()
	r := c.run(nil, "keygen", "--type", "rsa", "--bits", "2048", "--out", name)
	requireExit(c.t, r, exitOK)
	p := filepath.Join(c.dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		c.t.Fatal(err)
	}
	k := keyFile{path: p, pub: p + ".pub", desc: "key=" + name}
	// The private key's PEM body lines: any of them on screen is a leak.
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
			k.secrets = append(k.secrets, line)
		}
	}
	if len(k.secrets) < 10 {
		c.t.Fatalf("the private key file holds %d PEM lines", len(k.secrets))
	}
	requireNoSecrets(c.t, k.secrets, r)
	return k
}

// secretForms are the ways a key's bytes could be printed.
func secretForms(raw []byte) []string {
	return []string{
		base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw),
		hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)),
	}
}

// requireNoSecrets fails if any output of results holds a secret.
func requireNoSecrets(t *testing.T, secrets []string, results ...result) {
	t.Helper()
	for _, r := range results {
		for _, s := range secrets {
			if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
				t.Fatalf("key material in the command's output: %.12q…", s)
			}
		}
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestKeygenAES(t *testing.T) {
	c := newCLI(t)
	k := c.aesKey("a.key")
	if m := mode(t, k.path); m != 0o600 {
		t.Fatalf("AES key file mode %04o, want 0600", m)
	}
	b, _ := os.ReadFile(k.path)
	if _, err := keyring.ParseAES(b, map[string]string{"key": "a"}); err != nil {
		t.Fatalf("keyring.ParseAES does not read keygen's file: %v", err)
	}

	// A second key over the first is refused, and the first is intact.
	r := c.run(nil, "keygen", "--type", "aes", "--out", "a.key")
	requireExit(t, r, exitUsage, "a.key exists", "refusing to overwrite")
	requireOneLineError(t, r)
	if after, _ := os.ReadFile(k.path); !bytes.Equal(after, b) {
		t.Fatal("the refused keygen changed the key file")
	}
	// So is a symlink in the way (O_EXCL does not follow it).
	if err := os.Symlink(filepath.Join(c.dir, "elsewhere"), filepath.Join(c.dir, "link.key")); err != nil {
		t.Fatal(err)
	}
	requireExit(t, c.run(nil, "keygen", "--type", "aes", "--out", "link.key"), exitUsage, "exists")
	if _, err := os.Lstat(filepath.Join(c.dir, "elsewhere")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("keygen wrote through a symlink")
	}

	// Two keys differ.
	k2 := c.aesKey("b.key")
	b2, _ := os.ReadFile(k2.path)
	if bytes.Equal(b, b2) {
		t.Fatal("two keygens made the same key")
	}
}

func TestKeygenRSA(t *testing.T) {
	c := newCLI(t)
	r := c.run(nil, "keygen", "--json", "--type", "rsa", "--bits", "2048", "--out", "team")
	requireExit(t, r, exitOK)
	var res keygenResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	if res.Type != "rsa" || res.Bits != 2048 || len(res.Files) != 2 || res.Desc != "key=team" {
		t.Fatalf("keygen --json: %+v", res)
	}
	priv, pub := filepath.Join(c.dir, "team"), filepath.Join(c.dir, "team.pub")
	if m := mode(t, priv); m != 0o600 {
		t.Fatalf("private key mode %04o, want 0600", m)
	}
	// The public key is 0644 less the umask: readable by its owner, never
	// writable by others.
	if m := mode(t, pub); m&0o400 == 0 || m&0o022 != 0 || m&0o111 != 0 {
		t.Fatalf("public key mode %04o, want 0644 less the umask", m)
	}
	if res.Files[0].Mode != "0600" || res.Files[0].Kind != "private" || res.Files[1].Kind != "public" {
		t.Fatalf("files reported: %+v", res.Files)
	}
	b, _ := os.ReadFile(priv)
	full, err := keyring.ParseRSA(b, map[string]string{"key": "team"})
	if err != nil {
		t.Fatalf("ParseRSA of the private key: %v", err)
	}
	pb, _ := os.ReadFile(pub)
	wrapOnlyKey, err := keyring.ParseRSA(pb, map[string]string{"key": "team"})
	if err != nil {
		t.Fatalf("ParseRSA of the public key: %v", err)
	}
	// The public key wraps what the private key unwraps: they are a pair.
	w, err := wrapOnlyKey.Wrap(context.Background(), make([]byte, 32), "115")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := full.Unwrap(context.Background(), w, "115"); err != nil {
		t.Fatalf("the private key does not unwrap what the public key wrapped: %v", err)
	}
	if _, err := wrapOnlyKey.Unwrap(context.Background(), w, "115"); !errors.Is(err, envelope.ErrWrapOnly) {
		t.Fatalf("the .pub file unwraps (%v): it holds more than the public key", err)
	}
	var secrets []string
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
			secrets = append(secrets, line)
		}
	}
	requireNoSecrets(t, secrets, r)

	// Only NAME.pub in the way: refused before anything is written.
	c.file("solo.pub", []byte("someone else's"))
	requireExit(t, c.run(nil, "keygen", "--type", "rsa", "--bits", "2048", "--out", "solo"), exitUsage, "solo.pub exists")
	if _, err := os.Stat(filepath.Join(c.dir, "solo")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused keygen left a private key behind")
	}
}

func TestKeygenUsage(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keygen", "--out", "k"}, "--type aes or --type rsa"},
		{[]string{"keygen", "--type", "des", "--out", "k"}, `--type "des"`},
		{[]string{"keygen", "--type", "aes"}, "--out"},
		{[]string{"keygen", "--type", "aes", "--out", "-"}, "never to the screen"},
		{[]string{"keygen", "--type", "rsa", "--bits", "1024", "--out", "k"}, "2048"},
		{[]string{"keygen", "--type", "aes", "--out", "k", "extra"}, "unexpected argument"},
		{[]string{"keygen", "--type", "aes", "--out", filepath.Join("no", "such", "dir", "k")}, "no such file or directory"},
	} {
		r := c.run(nil, tc.args...)
		requireExit(t, r, exitUsage, tc.want)
		if !strings.HasPrefix(r.stderr, "s3envelope keygen: ") {
			t.Errorf("%v: error %q", tc.args, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(c.dir); len(entries) != 0 {
		t.Fatalf("failed keygens left files: %v", entries)
	}
}
