package s3crypto_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/inventory/inventorytest"
	"github.com/s3envelope/s3envelope/internal/s3mem"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// exampleS3 returns an *s3.Client of an in-process S3 and a bucket on it;
// a program has s3.NewFromConfig(cfg) and a bucket of its own.
func exampleS3() (*s3.Client, string) {
	srv := s3mem.New()
	srv.CreateBucket("example")
	return srv.Client(), "example"
}

// exampleKey is an AES master key; a program reads its key from a file
// (keyring.ParseAES) or uses KMS (keyring.NewKMS).
func exampleKey(kid string) keyring.Keyring {
	k, err := keyring.NewAES(bytes.Repeat([]byte(kid[len(kid)-1:]), 32), map[string]string{"kid": kid})
	if err != nil {
		log.Fatal(err)
	}
	return k
}

func readAll(out *s3.GetObjectOutput, err error) string {
	if err != nil {
		log.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		log.Fatal(err)
	}
	return string(b)
}

// Swap one line: the Client has *s3.Client's PutObject and GetObject, and
// S3 stores only ciphertext and the envelope.
func Example() {
	ctx := context.Background()
	api, bucket := exampleS3()
	c, err := s3crypto.New(api, materials.NewProvider(exampleKey("2026")))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("report.txt"), Body: strings.NewReader("quarterly numbers")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(readAll(c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("report.txt")})))

	raw, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("report.txt")})
	stored := readAll(raw, err)
	fmt.Println(len(stored), strings.Contains(stored, "quarterly"), raw.Metadata["x-amz-m"])
	// Output:
	// quarterly numbers
	// 33 false {"kid":"2026"}
}

// An Uploader stores a body of any length, known or not, as a multipart
// upload of sealed parts; a Downloader reads it back with parallel ranged
// GETs, in constant memory.
func ExampleNewUploader() {
	ctx := context.Background()
	api, bucket := exampleS3()
	c, err := s3crypto.New(api, materials.NewProvider(exampleKey("2026")))
	if err != nil {
		log.Fatal(err)
	}
	body := io.LimitReader(bytes.NewReader(bytes.Repeat([]byte("0123456789abcdef"), 1<<20)), 12<<20) // 12 MiB, length unknown to the Uploader
	up := s3crypto.NewUploader(c, func(o *s3crypto.UploaderOptions) { o.PartSize = 5 << 20 })
	res, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("big.bin"), Body: body})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Parts, "parts,", res.Size, "bytes")

	h := sha256.New()
	n, err := s3crypto.NewDownloader(c).Download(ctx, h, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big.bin")})
	if err != nil {
		log.Fatal(err)
	}
	want := sha256.Sum256(bytes.Repeat([]byte("0123456789abcdef"), 12<<16))
	fmt.Println(n, "bytes read back, intact:", bytes.Equal(h.Sum(nil), want[:]))
	// Output:
	// 3 parts, 12582912 bytes
	// 12582912 bytes read back, intact: true
}

// Objects in the segmented format are read in ranges, each piece
// authenticated, fetching only the segments that hold it. A range of a V2
// or V3 object cannot be authenticated, and is refused.
func ExampleClient_GetObject_range() {
	ctx := context.Background()
	api, bucket := exampleS3()
	p := materials.NewProvider(exampleKey("2026"))
	seg, err := s3crypto.New(api, p, func(o *s3crypto.Options) { o.Format = envelope.FormatSegmented })
	if err != nil {
		log.Fatal(err)
	}
	_, err = seg.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("log"), Body: strings.NewReader(strings.Repeat("0123456789", 100_000))})
	if err != nil {
		log.Fatal(err)
	}
	out, err := seg.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("log"), Range: aws.String("bytes=654321-654330")})
	fmt.Println(aws.ToString(out.ContentRange), readAll(out, err))

	v3, err := s3crypto.New(api, p)
	if err != nil {
		log.Fatal(err)
	}
	_, err = v3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("v3"), Body: strings.NewReader("one GCM pass")})
	if err != nil {
		log.Fatal(err)
	}
	_, err = v3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("v3"), Range: aws.String("bytes=0-2")})
	fmt.Println(errors.Is(err, s3crypto.ErrRange))
	// Output:
	// bytes 654321-654330/1000000 1234567890
	// true
}

// A segmented object can be read at random through an io.ReaderAt, each
// read authenticated.
func ExampleClient_NewReaderAt() {
	ctx := context.Background()
	api, bucket := exampleS3()
	c, err := s3crypto.New(api, materials.NewProvider(exampleKey("2026")), func(o *s3crypto.Options) { o.Format = envelope.FormatSegmented })
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("table"), Body: strings.NewReader(strings.Repeat("abcdefghij", 50_000))})
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.NewReaderAt(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("table")})
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := r.ReadAt(buf, 300_002); err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Size(), string(buf))
	// Output:
	// 500000 cdefg
}

// Rotating a bucket to a new master key rewraps each object's data key;
// the bodies are neither read nor rewritten. Afterwards the old key can be
// retired.
func ExampleClient_RewrapAll() {
	ctx := context.Background()
	api, bucket := exampleS3()
	old, cur := exampleKey("2025"), exampleKey("2026")
	writer, err := s3crypto.New(api, materials.NewProvider(old))
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		_, err := writer.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader("object " + k)})
		if err != nil {
			log.Fatal(err)
		}
	}

	rotator, err := s3crypto.New(api, materials.NewProvider(cur, old))
	if err != nil {
		log.Fatal(err)
	}
	res, err := rotator.RewrapAll(ctx, &s3crypto.RewrapAllInput{Bucket: &bucket})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Rewrapped, "rewrapped,", res.Failed, "failed")

	onlyNew, err := s3crypto.New(api, materials.NewProvider(cur))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(readAll(onlyNew.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("b")})))
	// Output:
	// 3 rewrapped, 0 failed
	// object b
}

// Rewrap rotates one object, and says what it found and did.
func ExampleClient_Rewrap() {
	ctx := context.Background()
	api, bucket := exampleS3()
	old, cur := exampleKey("2025"), exampleKey("2026")
	writer, err := s3crypto.New(api, materials.NewProvider(old))
	if err != nil {
		log.Fatal(err)
	}
	_, err = writer.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("body")})
	if err != nil {
		log.Fatal(err)
	}
	c, err := s3crypto.New(api, materials.NewProvider(cur, old))
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		out, err := c.Rewrap(ctx, &s3crypto.RewrapInput{Bucket: &bucket, Key: aws.String("k")})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(out.Status, out.OldDescription, "→", out.NewDescription, out.Verified)
	}
	// Output:
	// rewrapped map[kid:2025] → map[kid:2026] true
	// already current map[kid:2026] → map[] false
}

// An SSECClient sends each object's data key to S3 as an SSE-C key: never
// over plain HTTP, where a key on the wire is a lost key.
func ExampleNewSSEC() {
	api := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:9000")})
	_, err := s3crypto.NewSSEC(api, materials.NewProvider(exampleKey("2026")))
	fmt.Println(errors.Is(err, s3crypto.ErrInsecureEndpoint))
	// Output:
	// true
}

// Every error of an operation on an object is an *ObjectError, naming it;
// errors.Is finds the cause.
func ExampleObjectError() {
	ctx := context.Background()
	api, bucket := exampleS3()
	writer, err := s3crypto.New(api, materials.NewProvider(exampleKey("2025")))
	if err != nil {
		log.Fatal(err)
	}
	_, err = writer.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("body")})
	if err != nil {
		log.Fatal(err)
	}
	reader, err := s3crypto.New(api, materials.NewProvider(exampleKey("2026")))
	if err != nil {
		log.Fatal(err)
	}
	_, err = reader.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
	var oe *s3crypto.ObjectError
	fmt.Println(errors.As(err, &oe), oe.Op, oe.Key, errors.Is(err, envelope.ErrNoMasterKey))
	fmt.Println(err)
	// Output:
	// true GetObject k true
	// s3crypto: GetObject s3://example/k: s3envelope: no master key matches the description: {"kid":"2025"}
}

// Share an encrypted object through a presigned URL: the recipient fetches
// it with any HTTP client, without the SDK or AWS credentials, and opens
// it with the master key — authenticated as GetObject would.
func ExampleClient_PresignGetObject() {
	ctx := context.Background()
	// An in-process S3 on a loopback listener, which net/http can reach.
	srv := s3mem.New()
	srv.CreateBucket("example")
	ts := httptest.NewServer(srv)
	defer ts.Close()
	api, bucket := srv.Client(func(o *s3.Options) { o.BaseEndpoint = aws.String(ts.URL) }), "example"

	owner, err := s3crypto.New(api, materials.NewProvider(exampleKey("2026")))
	if err != nil {
		log.Fatal(err)
	}
	_, err = owner.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("report.txt"), Body: strings.NewReader("quarterly numbers")})
	if err != nil {
		log.Fatal(err)
	}
	p, err := owner.PresignGetObject(ctx, s3.NewPresignClient(api),
		&s3.GetObjectInput{Bucket: &bucket, Key: aws.String("report.txt")}, s3.WithPresignExpires(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.InstructionURL == "", p.Header() == nil) // one URL, no headers to send

	// The recipient holds the URL and the master key, and no S3 client:
	// OpenResponse sends no request, so an unconfigured one will do.
	resp, err := http.Get(p.URL)
	if err != nil {
		log.Fatal(err)
	}
	recipient, err := s3crypto.New(s3.New(s3.Options{}), materials.NewProvider(exampleKey("2026")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(readAll(recipient.OpenResponse(ctx, resp, nil)))
	// Output:
	// true true
	// quarterly numbers
}

// Two processes rotate a bucket between them, each its own shard of the
// keys an S3 Inventory report lists, with no listing and no coordination.
func ExampleClient_RewrapAll_inventoryShards() {
	ctx := context.Background()
	srv := s3mem.New()
	srv.CreateBucket("example")
	srv.CreateBucket("inventories")
	api, bucket := srv.Client(), "example"
	old, cur := exampleKey("2025"), exampleKey("2026")
	writer, err := s3crypto.New(api, materials.NewProvider(old))
	if err != nil {
		log.Fatal(err)
	}
	var keys []string
	for i := range 10 {
		k := fmt.Sprintf("photos/%03d.jpg", i)
		keys = append(keys, k)
		_, err := writer.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: strings.NewReader("object " + k)})
		if err != nil {
			log.Fatal(err)
		}
	}
	// S3 writes the report daily or weekly; here, a stand-in.
	manifest, err := inventorytest.Write(ctx, api.PutObject, "inventories", "", bucket, inventorytest.Rows(keys), 1000)
	if err != nil {
		log.Fatal(err)
	}

	rotator, err := s3crypto.New(api, materials.NewProvider(cur, old))
	if err != nil {
		log.Fatal(err)
	}
	total := 0
	for shard := range 2 { // in two processes, each with its own --resume checkpoint
		res, err := rotator.RewrapAll(ctx, &s3crypto.RewrapAllInput{
			Bucket:    &bucket,
			Inventory: aws.String("s3://inventories/" + manifest),
			Shard:     shard, ShardCount: 2,
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("shard %d/2: %d rewrapped\n", shard, res.Rewrapped)
		total += res.Rewrapped
	}
	fmt.Println(total, "rewrapped in all")
	// Output:
	// shard 0/2: 4 rewrapped
	// shard 1/2: 6 rewrapped
	// 10 rewrapped in all
}
