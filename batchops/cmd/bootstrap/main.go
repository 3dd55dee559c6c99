// Command bootstrap is the S3 Batch Operations function that rotates
// master keys (package batchops), for Lambda's provided.al2023 runtime:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./cmd/bootstrap
//
// Its configuration is its environment (see batchops.FromEnv). A
// configuration it cannot use fails the function's init, so no task is
// answered by a half-configured function.
package main

import (
	"context"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/s3envelope/s3envelope/batchops"
)

func main() {
	h, err := batchops.FromEnv(context.Background(), os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(h.Handle)
}
