package batchops_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/batchops"
	"github.com/s3envelope/s3envelope/internal/s3mem"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// A Batch Operations invocation (schema 2.0, the key URL-encoded as S3
// sends it) answered by a Handler rotating master key 2025 to 2026. In the
// function, batchops.FromEnv builds the Handler and lambda.Start serves it.
func ExampleHandler_Handle() {
	ctx := context.Background()
	srv := s3mem.New() // an in-process S3, for the example
	srv.CreateBucket("data")
	api := srv.Client()
	key := func(kid string) *keyring.AES {
		b := make([]byte, 32)
		rand.Read(b)
		k, _ := keyring.NewAES(b, map[string]string{"kid": kid})
		return k
	}
	k2025, k2026 := key("2025"), key("2026")

	old, _ := s3crypto.New(api, materials.NewProvider(k2025))
	old.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("reports/q1 2026.csv"), Body: strings.NewReader("a,b")})

	rotating, _ := s3crypto.New(api, materials.NewProvider(k2026, k2025))
	h, _ := batchops.New(rotating, api)
	event := `{"invocationSchemaVersion": "2.0", "invocationId": "inv", "job": {"id": "job", "userArguments": {"enforceRotation": "true"}},
		"tasks": [{"taskId": "t1", "s3Bucket": "data", "s3Key": "reports/q1+2026.csv"},
		          {"taskId": "t2", "s3Bucket": "data", "s3Key": "reports/q1+2026.csv"},
		          {"taskId": "t3", "s3Bucket": "data", "s3Key": "reports/q2+2026.csv"}]}`
	res, err := h.Handle(ctx, json.RawMessage(event))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res.Results {
		reason, _, _ := strings.Cut(r.ResultString, ":") // the rest is the detail
		fmt.Println(r.TaskID, r.ResultCode, reason)
	}
	// Output:
	// t1 Succeeded rewrapped AES/GCM to AES/GCM
	// t2 Succeeded already current
	// t3 PermanentFailure no such object or version
}
