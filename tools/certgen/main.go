// Command certgen makes a fresh self-signed TLS certificate for a test server
// on the loopback interface, and checks that such a server is ready.
//
//	certgen -out DIR [-valid 24h]
//	certgen -probe https://127.0.0.1:PORT/path -ca DIR/public.crt
//
// With -out it writes DIR/public.crt (the certificate, PEM) and
// DIR/private.key (its ECDSA P-256 key, PKCS#8 PEM, mode 0600), the layout
// MinIO's --certs-dir expects. The certificate names 127.0.0.1, ::1 and
// localhost, is valid from an hour ago for -valid, and is its own CA: a
// client trusts it by putting public.crt, and only it, in its root pool.
//
// With -probe it makes one GET of the URL, trusting only the certificate in
// -ca (no system roots, no proxy), and exits 0 if the answer is 200 OK and 1
// otherwise; it needs no curl.
//
// It is a test tool, in the nested tools/ module; build it with GOWORK=off.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// sourceDigest is a digest of the tools module's sources, set at build time by
// scripts/test (-ldflags "-X main.sourceDigest=..."), which reads it back with
// go version -m to tell a stale binary.
var sourceDigest = "unset"

func main() {
	out := flag.String("out", "", "`directory` to write public.crt and private.key into (created if missing)")
	valid := flag.Duration("valid", 24*time.Hour, "how long the certificate stays valid from now")
	probe := flag.String("probe", "", "https `URL` to GET once; exit 0 if it answers 200 OK")
	ca := flag.String("ca", "", "PEM `file` of the only certificate -probe trusts")
	timeout := flag.Duration("timeout", 2*time.Second, "time limit of -probe")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(),
			"usage: certgen -out DIR [-valid 24h]\n       certgen -probe https://127.0.0.1:PORT/path -ca FILE\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 || (*out == "") == (*probe == "") {
		flag.Usage()
		os.Exit(2)
	}
	if *probe != "" {
		if err := probeURL(*probe, *ca, *timeout); err != nil {
			fmt.Fprintf(os.Stderr, "certgen: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := writeCert(*out, time.Now(), *valid); err != nil {
		fmt.Fprintf(os.Stderr, "certgen: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("certgen: wrote %s and %s (build %s)\n",
		filepath.Join(*out, "public.crt"), filepath.Join(*out, "private.key"), sourceDigest)
}

// newCert returns a self-signed certificate and its key, both PEM, for
// 127.0.0.1, ::1 and localhost, valid from an hour before now for valid.
func newCert(now time.Time, valid time.Duration) (certPEM, keyPEM []byte, err error) {
	if valid <= 0 {
		return nil, nil, errors.New("validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "s3envelope test server", Organization: []string{"s3envelope tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return certPEM, keyPEM, nil
}

// writeCert writes a new certificate and key as dir/public.crt and
// dir/private.key, replacing any there.
func writeCert(dir string, now time.Time, valid time.Duration) error {
	certPEM, keyPEM, err := newCert(now, valid)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The key first, so that a public.crt never sits beside an older key.
	if err := writeFile(filepath.Join(dir, "private.key"), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "public.crt"), certPEM, 0o644)
}

// writeFile writes data to name through a temporary file and a rename, so a
// reader sees either the old file or the whole new one.
func writeFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".certgen-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// probeURL GETs url once, trusting only the certificates in the PEM file ca,
// and returns nil if the answer is 200 OK.
func probeURL(url, ca string, timeout time.Duration) error {
	if !strings.HasPrefix(url, "https://") {
		return fmt.Errorf("-probe %q: not an https URL", url)
	}
	if ca == "" {
		return errors.New("-probe needs -ca")
	}
	pemData, err := os.ReadFile(ca)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return fmt.Errorf("%s holds no PEM certificate", ca)
	}
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:             nil, // never through a proxy from the environment
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
