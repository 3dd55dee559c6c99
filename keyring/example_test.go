package keyring_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
)

// A KMS discovery key reads objects wrapped by any KMS key of the accounts
// it trusts; it cannot be made without naming them.
func ExampleNewKMSDiscovery() {
	client := kms.New(kms.Options{Region: "eu-west-1"}) // kms.NewFromConfig(cfg)
	_, err := keyring.NewKMSDiscovery(client, keyring.DiscoveryFilter{})
	fmt.Println(err)
	kr, err := keyring.NewKMSDiscovery(client, keyring.DiscoveryFilter{
		Partition:  "aws",
		AccountIDs: []string{"111122223333"}, // accounts whose key policies you control
	})
	fmt.Println(err, kr.KeyID() == "")
	// Output:
	// keyring: NewKMSDiscovery needs a discovery filter: the partition and the accounts whose KMS keys are trusted
	// <nil> true
}

// A key file made by `openssl rand -hex 32 > 2026.key` holds 64 hex digits
// and a newline. A key in another form, or of a length AES has not, is
// refused, and the error never shows the key.
func ExampleParseAES() {
	file := []byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n") // os.ReadFile("2026.key")
	kr, err := keyring.ParseAES(file, map[string]string{"kid": "2026"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("parsed", kr.Description())

	_, err = keyring.ParseAES([]byte("00112233445566778899aabbccddee\n"), nil) // 15 bytes
	fmt.Println(errors.Is(err, keyring.ErrKeyFormat))
	fmt.Println(err)
	// Output:
	// parsed map[kid:2026]
	// true
	// keyring: AES key not in an accepted format: want 16, 24 or 32 bytes raw, in hex or in base64; got 31 bytes, 30 before the final newline: not hex or base64 of 16, 24 or 32 bytes
}

// An AES master key wraps each object's data key; the wrapped key and the
// description are what the object stores.
func ExampleNewAES() {
	ctx := context.Background()
	master, err := keyring.NewAES(bytes.Repeat([]byte{7}, 32), map[string]string{"kid": "2026"})
	if err != nil {
		log.Fatal(err)
	}
	dataKey := bytes.Repeat([]byte{1}, 32) // one per object, random in practice
	wrapped, err := master.Wrap(ctx, dataKey, "115")
	if err != nil {
		log.Fatal(err)
	}
	got, err := master.Unwrap(ctx, wrapped, "115")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(wrapped.Algorithm, wrapped.Description, len(wrapped.Ciphertext), bytes.Equal(got, dataKey))

	// The wrap binds the content algorithm: the key cannot be moved to an
	// object of another format.
	_, err = master.Unwrap(ctx, wrapped, "AES/GCM/NoPadding")
	fmt.Println(errors.Is(err, envelope.ErrAuthentication))
	// Output:
	// AES/GCM map[kid:2026] 60 true
	// true
}

// A writer may hold only the public half of an RSA master key: it wraps
// data keys for new objects, and cannot unwrap any.
func ExampleNewRSAPublic() {
	ctx := context.Background()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	writer, err := keyring.NewRSAPublic(&priv.PublicKey, map[string]string{"kid": "backup"})
	if err != nil {
		log.Fatal(err)
	}
	wrapped, err := writer.Wrap(ctx, bytes.Repeat([]byte{1}, 32), "115")
	if err != nil {
		log.Fatal(err)
	}
	_, err = writer.Unwrap(ctx, wrapped, "115")
	fmt.Println(errors.Is(err, envelope.ErrWrapOnly))

	reader, err := keyring.NewRSA(priv, map[string]string{"kid": "backup"})
	if err != nil {
		log.Fatal(err)
	}
	dataKey, err := reader.Unwrap(ctx, wrapped, "115")
	fmt.Println(len(dataKey), err)
	// Output:
	// true
	// 32 <nil>
}

// A KMS master key has KMS make and wrap each data key (GenerateDataKey)
// and unwrap it (Decrypt); an encryption context set on the request's
// context is bound into the wrap and checked on reading.
func ExampleNewKMS() {
	client := kms.New(kms.Options{Region: "eu-west-1"}) // kms.NewFromConfig(cfg)
	master, err := keyring.NewKMS(client, "alias/s3-objects")
	if err != nil {
		log.Fatal(err)
	}
	// Per request, before PutObject or GetObject:
	//	ctx = keyring.WithEncryptionContext(ctx, map[string]string{"tenant": "acme"})
	fmt.Println(master.KeyID())
	// Output:
	// alias/s3-objects
}

// onlyKMSClient is a KMS client of the application's own, with
// KMSClient's methods only.
type onlyKMSClient struct{ keyring.KMSClient }

// ReEncrypt moves a data key from one KMS key to another in one request,
// without it leaving KMS (s3crypto's rewraps call it for KMS → KMS
// rotations). The checks of an unwrap come before any request.
func ExampleKMS_ReEncrypt() {
	client := kms.New(kms.Options{Region: "eu-west-1"}) // kms.NewFromConfig(cfg)
	oldKey, err := keyring.NewKMS(client, "alias/orders-2025")
	if err != nil {
		log.Fatal(err)
	}
	newKey, err := keyring.NewKMS(client, "alias/orders-2026")
	if err != nil {
		log.Fatal(err)
	}
	// An object's data key as its envelope stores it (the blob is made up).
	w := &envelope.WrappedKey{
		Algorithm:   "kms+context",
		Ciphertext:  []byte("a KMS ciphertext blob"),
		Description: map[string]string{"tenant": "acme", "aws:x-amz-cek-alg": "115"},
	}
	// In a rotation, newKey.ReEncrypt(ctx, w, "115", oldKey) returns the
	// data key wrapped under alias/orders-2026 with the same context.
	ctx := keyring.WithEncryptionContext(context.Background(), map[string]string{"tenant": "globex"})
	_, err = newKey.ReEncrypt(ctx, w, "115", oldKey)
	fmt.Println(errors.Is(err, envelope.ErrAuthentication)) // not the context expected: nothing sent

	// A client without a ReEncrypt method cannot; callers fall back to
	// Unwrap and Wrap.
	plain, err := keyring.NewKMS(onlyKMSClient{client}, "alias/orders-2026")
	if err != nil {
		log.Fatal(err)
	}
	_, err = plain.ReEncrypt(context.Background(), w, "115", oldKey)
	fmt.Println(errors.Is(err, errors.ErrUnsupported))
	// Output:
	// true
	// true
}
