package s3mem_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/internal/s3mem"
)

// A real *s3.Client against an in-memory S3, for an example's setup.
func Example() {
	ctx := context.Background()
	srv := s3mem.New()
	srv.CreateBucket("example-bucket")
	client := srv.Client()

	_, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:   aws.String("example-bucket"),
		Key:      aws.String("greeting.txt"),
		Body:     strings.NewReader("hello"),
		Metadata: map[string]string{"Lang": "en"},
	})
	if err != nil {
		panic(err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("example-bucket"), Key: aws.String("greeting.txt")})
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	fmt.Println(string(body), out.Metadata["lang"], aws.ToString(out.ETag))

	_, err = client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("example-bucket"), Key: aws.String("absent")})
	var noKey *types.NoSuchKey
	fmt.Println(errors.As(err, &noKey))
	// Output:
	// hello en "5d41402abc4b2a76b9719d911017c592"
	// true
}
