package keyring_test

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kms"

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
