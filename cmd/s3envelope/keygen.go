package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func init() {
	register(&command{
		name:    "keygen",
		summary: "make a master key: an AES-256 key file, or an RSA key pair",
		usage:   "--type aes|rsa [--bits 3072] --out NAME",
		help: `Keygen makes a new master key and writes it to files, never to the
screen. It refuses to overwrite a file that exists.

  --type aes   NAME holds a random 256-bit AES key in base64 (one line),
               mode 0600.
  --type rsa   NAME holds the private key (PKCS #8 PEM), mode 0600, and
               NAME.pub the public key (PKIX PEM), mode 0644 less the umask:
               it is not secret, and is meant to be handed to the writers,
               who can encrypt with it but not decrypt. --bits is 2048 to
               16384 (default 3072).

It prints the files written and a suggested --desc: the description that
is stored with every object the key encrypts and by which readers find the
key. Choose one that differs from your other keys' and keep it with the key.

Examples:
  s3envelope keygen --type aes --out backup.key
  s3envelope put --key backup.key --desc key=backup db.dump s3://bucket/db.dump

  s3envelope keygen --type rsa --out team
  s3envelope put --key team.pub --desc key=team report.pdf s3://bucket/report.pdf
  s3envelope get --key team --desc key=team s3://bucket/report.pdf report.pdf`,
		register: func(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
			var o keygenOptions
			fs.StringVar(&o.typ, "type", "", "the kind of key: aes (AES-256) or rsa (an RSA key pair)")
			fs.IntVar(&o.bits, "bits", 3072, "RSA modulus `size` in bits")
			fs.StringVar(&o.out, "out", "", "the key `file` to write (and NAME.pub for rsa)")
			return o.run
		},
	})
}

type keygenOptions struct {
	typ  string
	bits int
	out  string
}

// keygenResult is what keygen prints: it names files, never key bytes.
type keygenResult struct {
	Type  string       `json:"type"`
	Bits  int          `json:"bits"`
	Files []keygenFile `json:"files"`
	Desc  string       `json:"suggestedDesc"`
	Usage []string     `json:"usage"`
}

type keygenFile struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // "secret" (AES), "private", "public"
	Mode string `json:"mode"`
}

func (o *keygenOptions) run(ctx context.Context, g *globals, args []string) error {
	if len(args) > 0 {
		return usageErr("unexpected argument %q: keygen takes only flags", args[0])
	}
	switch {
	case o.out == "":
		return usageErr("give the key file to write with --out")
	case o.out == "-":
		return usageErr("--out -: keys are written to files, never to the screen")
	}
	res := keygenResult{Type: o.typ, Desc: suggestDesc(o.out)}
	switch o.typ {
	case "aes":
		if err := refuseExisting(o.out); err != nil {
			return err
		}
		res.Bits = 256
		key := make([]byte, 32)
		rand.Read(key) // never fails (crypto/rand)
		text := make([]byte, base64.StdEncoding.EncodedLen(len(key))+1)
		base64.StdEncoding.Encode(text, key)
		text[len(text)-1] = '\n'
		clear(key)
		err := writeNew(o.out, text, 0o600)
		clear(text)
		if err != nil {
			return err
		}
		res.Files = []keygenFile{fileEntry(o.out, "secret")}
		res.Usage = []string{
			fmt.Sprintf("s3envelope put --key %s --desc %s FILE s3://BUCKET/KEY", o.out, res.Desc),
			fmt.Sprintf("s3envelope get --key %s --desc %s s3://BUCKET/KEY FILE", o.out, res.Desc),
		}
	case "rsa":
		if o.bits < 2048 || o.bits > 16384 {
			return usageErr("--bits %d: want 2048 to 16384 (keys under 2048 bits wrap nothing)", o.bits)
		}
		pub := o.out + ".pub"
		for _, p := range []string{o.out, pub} {
			if err := refuseExisting(p); err != nil {
				return err
			}
		}
		res.Bits = o.bits
		if err := writeRSA(o.out, pub, o.bits); err != nil {
			return err
		}
		res.Files = []keygenFile{fileEntry(o.out, "private"), fileEntry(pub, "public")}
		res.Usage = []string{
			fmt.Sprintf("s3envelope put --key %s --desc %s FILE s3://BUCKET/KEY", pub, res.Desc),
			fmt.Sprintf("s3envelope get --key %s --desc %s s3://BUCKET/KEY FILE", o.out, res.Desc),
		}
	case "":
		return usageErr("give the kind of key with --type aes or --type rsa")
	default:
		return usageErr("--type %q: want aes or rsa", o.typ)
	}
	if g.json {
		return g.emit(res)
	}
	for _, f := range res.Files {
		fmt.Fprintf(g.con.stdout, "wrote %s (%s key, mode %s)\n", f.Path, f.Kind, f.Mode)
	}
	fmt.Fprintf(g.con.stdout, "suggested description: --desc %s\n", res.Desc)
	for _, u := range res.Usage {
		fmt.Fprintf(g.con.stdout, "  %s\n", u)
	}
	return nil
}

// writeRSA generates the key pair and writes the private key, then the
// public one; a failure removes what it wrote.
func writeRSA(privPath, pubPath string, bits int) error {
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return fmt.Errorf("generating the RSA key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encoding the RSA key: %w", err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	err = writeNew(privPath, privPEM, 0o600)
	clear(privPEM)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err == nil {
		err = writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	}
	if err != nil {
		os.Remove(privPath) // half a pair is no use, and we made it
		return err
	}
	return nil
}

// refuseExisting fails (exit 2) when path exists: a key file is never
// replaced, since the objects its old key encrypted would be lost with it.
func refuseExisting(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return setupErr(fmt.Errorf("%s exists: refusing to overwrite a key file (remove it, or choose another --out)", path))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return setupErr(err)
	}
	return nil
}

// writeNew creates path, which must not exist (O_EXCL: not even as a
// symlink), with mode perm less the umask, and writes b to it; a failed
// write removes it.
func writeNew(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return refuseExisting(path)
	}
	if err != nil {
		return setupErr(err) // *PathError: the path and the reason
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func fileEntry(path, kind string) keygenFile {
	mode := "?"
	if fi, err := os.Stat(path); err == nil {
		mode = fmt.Sprintf("%04o", fi.Mode().Perm())
	}
	return keygenFile{Path: path, Kind: kind, Mode: mode}
}

// suggestDesc names a key by its file name: descriptions are not secret,
// and a reader needs the same one.
func suggestDesc(out string) string {
	name := strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	name = strings.Map(func(r rune) rune {
		if r == ',' || r == '=' || r == ' ' || r < 0x20 {
			return '-'
		}
		return r
	}, name)
	if name == "" || name == "." {
		name = "master"
	}
	return "key=" + name
}
