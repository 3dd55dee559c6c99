package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	localkms "github.com/nsmithuk/local-kms/src"
	"github.com/nsmithuk/local-kms/src/config"
)

func TestCheckLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.1:4599", "127.1.2.3:80", "[::1]:4599"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("checkLoopback(%q) = %v, want nil", addr, err)
		}
	}
	for _, addr := range []string{
		"", ":4599", "0.0.0.0:4599", "[::]:4599", "localhost:4599", "10.0.0.1:4599",
		"192.168.1.1:80", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1",
		"[fe80::1%lo]:80", "[::ffff:10.0.0.1]:80", "example.com:80",
	} {
		if err := checkLoopback(addr); err == nil {
			t.Errorf("checkLoopback(%q) = nil, want an error", addr)
		}
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	err := run("0.0.0.0:0", t.TempDir(), "us-east-1", "111122223333")
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("run on 0.0.0.0 = %v, want a loopback error", err)
	}
}

// TestHandler drives local-kms's handler as main serves it: CreateKey, then
// GenerateDataKey and Decrypt bound to an encryption context.
func TestHandler(t *testing.T) {
	config.AWSRegion = "us-east-1"
	config.AWSAccountId = "111122223333"
	db, err := openDatabase(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		localkms.HandleRequest(w, r, db)
	}))
	defer srv.Close()

	call := func(op string, in any, out any) int {
		t.Helper()
		body, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "TrentService."+op)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s: %v in %s", op, err, b)
			}
		}
		return resp.StatusCode
	}

	var created struct{ KeyMetadata struct{ Arn string } }
	if code := call("CreateKey", map[string]any{}, &created); code != http.StatusOK {
		t.Fatalf("CreateKey: HTTP %d", code)
	}
	if !strings.HasPrefix(created.KeyMetadata.Arn, "arn:aws:kms:us-east-1:111122223333:key/") {
		t.Fatalf("CreateKey: ARN %q", created.KeyMetadata.Arn)
	}
	ec := map[string]string{"purpose": "test"}
	var dk struct {
		Plaintext, CiphertextBlob []byte
	}
	if code := call("GenerateDataKey", map[string]any{
		"KeyId": created.KeyMetadata.Arn, "KeySpec": "AES_256", "EncryptionContext": ec,
	}, &dk); code != http.StatusOK || len(dk.Plaintext) != 32 {
		t.Fatalf("GenerateDataKey: HTTP %d, %d-byte key", code, len(dk.Plaintext))
	}
	var dec struct{ Plaintext []byte }
	if code := call("Decrypt", map[string]any{
		"CiphertextBlob": dk.CiphertextBlob, "EncryptionContext": ec,
	}, &dec); code != http.StatusOK || !bytes.Equal(dec.Plaintext, dk.Plaintext) {
		t.Fatalf("Decrypt: HTTP %d, plaintext equal = %v", code, bytes.Equal(dec.Plaintext, dk.Plaintext))
	}
	if code := call("Decrypt", map[string]any{
		"CiphertextBlob": dk.CiphertextBlob, "EncryptionContext": map[string]string{"purpose": "other"},
	}, &dec); code == http.StatusOK {
		t.Fatal("Decrypt with another encryption context succeeded")
	}
}
