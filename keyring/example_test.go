package keyring_test

import (
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
