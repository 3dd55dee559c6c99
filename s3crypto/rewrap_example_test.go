package s3crypto_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/s3envelope/s3envelope/envelope"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// Rotate every object of a bucket from the 2025 master key to the 2026 one,
// keeping a checkpoint file so that an interrupted run can resume.
func ExampleClient_RewrapAll() {
	ctx := context.Background()
	var api *s3.Client          // s3.NewFromConfig(cfg)
	var key2025, key2026 []byte // from your key store
	old, err := keyring.NewAES(key2025, map[string]string{"kid": "2025"})
	if err != nil {
		log.Fatal(err)
	}
	cur, err := keyring.NewAES(key2026, map[string]string{"kid": "2026"})
	if err != nil {
		log.Fatal(err)
	}
	p := materials.NewProvider(cur, old)
	c, err := s3crypto.New(api, p, func(o *s3crypto.Options) {
		o.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt // rewrap V2 objects too
	})
	if err != nil {
		log.Fatal(err)
	}
	in := &s3crypto.RewrapAllInput{
		Bucket:          aws.String("my-bucket"),
		Concurrency:     16,
		EnforceRotation: true,
		OnCheckpoint: func(cp s3crypto.RewrapCheckpoint) {
			b, _ := json.Marshal(cp)
			os.WriteFile("rewrap.checkpoint", b, 0o600) // write-and-rename in real code
		},
	}
	if b, err := os.ReadFile("rewrap.checkpoint"); err == nil {
		var cp s3crypto.RewrapCheckpoint
		if json.Unmarshal(b, &cp) == nil {
			in.Resume = &cp
		}
	}
	out, err := c.RewrapAll(ctx, in)
	if err != nil {
		log.Fatal(err) // the checkpoint was saved: run again to resume
	}
	fmt.Printf("rewrapped %d, already current %d, not encrypted %d, failed %d\n",
		out.Rewrapped, out.AlreadyCurrent, out.NotEncrypted, out.Failed)
	for _, f := range out.Failures {
		fmt.Println(f.Key, f.Err) // retried first by the next run from the checkpoint
	}
}
