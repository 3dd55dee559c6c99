package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// readCert writes a certificate into a temp dir and reads it back.
func readCert(t *testing.T, now time.Time, valid time.Duration) (dir string, cert *x509.Certificate) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "certs")
	if err := writeCert(dir, now, valid); err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "public.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("public.crt is not one PEM certificate: %q", certPEM)
	}
	cert, err = x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cert
}

func TestWriteCert(t *testing.T) {
	now := time.Now()
	dir, cert := readCert(t, now, 24*time.Hour)

	if !cert.IsCA || !cert.BasicConstraintsValid {
		t.Error("the certificate is not a CA")
	}
	if cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v", cert.KeyUsage)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage = %v, want ServerAuth only", cert.ExtKeyUsage)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", cert.PublicKey)
	}
	if !cert.NotBefore.Before(now) || !cert.NotAfter.After(now.Add(23*time.Hour)) ||
		cert.NotAfter.After(now.Add(25*time.Hour)) {
		t.Errorf("valid %v to %v, want about an hour ago to a day from now", cert.NotBefore, cert.NotAfter)
	}

	// Trusted as its own root, for each name a client may dial.
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := cert.Verify(x509.VerifyOptions{
			DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	for _, name := range []string{"10.0.0.1", "example.com"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err == nil {
			t.Errorf("verify for %s succeeded", name)
		}
	}
	// Not trusted without it.
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: x509.NewCertPool()}); err == nil {
		t.Error("verify with an empty root pool succeeded")
	}

	// The key matches, and is private to its owner.
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "public.crt"), filepath.Join(dir, "private.key")); err != nil {
		t.Errorf("LoadX509KeyPair: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "private.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("private.key mode %v, want 0600", fi.Mode().Perm())
	}
	// No temp file left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want public.crt and private.key", len(entries))
	}
}

func TestWriteCertFresh(t *testing.T) {
	_, a := readCert(t, time.Now(), time.Hour)
	_, b := readCert(t, time.Now(), time.Hour)
	if a.SerialNumber.Cmp(b.SerialNumber) == 0 || a.PublicKey.(*ecdsa.PublicKey).Equal(b.PublicKey) {
		t.Error("two certificates share a serial number or a key")
	}
	if err := writeCert(t.TempDir(), time.Now(), 0); err == nil {
		t.Error("writeCert with zero validity succeeded")
	}
}

// TestProbe serves TLS with a generated certificate and probes it.
func TestProbe(t *testing.T) {
	dir, _ := readCert(t, time.Now(), time.Hour)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "public.crt"), filepath.Join(dir, "private.key"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(dir, "public.crt")

	if err := probeURL(srv.URL+"/ready", ca, 2*time.Second); err != nil {
		t.Errorf("probe /ready: %v", err)
	}
	if err := probeURL(srv.URL+"/other", ca, 2*time.Second); err == nil {
		t.Error("probe of a 503 succeeded")
	}
	if err := probeURL(srv.URL+"/ready", "", 2*time.Second); err == nil {
		t.Error("probe without -ca succeeded")
	}
	// Another certificate as the only root: the server is not trusted.
	other, _ := readCert(t, time.Now(), time.Hour)
	if err := probeURL(srv.URL+"/ready", filepath.Join(other, "public.crt"), 2*time.Second); err == nil {
		t.Error("probe trusting another certificate succeeded")
	}
	// Plain HTTP is refused.
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer plain.Close()
	if err := probeURL(plain.URL, ca, 2*time.Second); err == nil {
		t.Error("probe of an http URL succeeded")
	}
	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := probeURL("https://"+addr+"/ready", ca, 2*time.Second); err == nil {
		t.Error("probe of a closed port succeeded")
	}
}
