package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
)

func masterKey() *keyring.AES {
	k, err := keyring.NewAES(bytes.Repeat([]byte{7}, 32), map[string]string{"kid": "2026"})
	if err != nil {
		log.Fatal(err)
	}
	return k
}

// Seal an object's body and store its envelope as metadata; read both back
// and open the body. Any storage will do: here, two variables.
func Example() {
	ctx := context.Background()
	key := masterKey()

	s, err := envelope.NewSealer(ctx, key, envelope.Config{})
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(s.Seal(strings.NewReader("attack at dawn")))
	if err != nil {
		log.Fatal(err)
	}
	metadata, err := s.Envelope().Metadata()
	if err != nil {
		log.Fatal(err)
	}

	// Later, elsewhere: the stored metadata and body are all a reader needs,
	// with the master key its description names.
	e, err := envelope.Decode(metadata, nil)
	if err != nil {
		log.Fatal(err)
	}
	plaintext, err := envelope.Open(ctx, e, key, envelope.Config{}, bytes.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	defer plaintext.Close()
	got, err := io.ReadAll(plaintext)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%v, %d stored bytes, master key %s: %s\n", e.Format, len(body), metadata["x-amz-m"], got)
	// Output:
	// V3, 30 stored bytes, master key {"kid":"2026"}: attack at dawn
}

// A body altered in storage fails with ErrAuthentication — from Open, or
// from a read, depending on the format and on how much was read — and
// releases nothing unauthenticated.
func ExampleOpen_tampered() {
	ctx := context.Background()
	key := masterKey()
	s, err := envelope.NewSealer(ctx, key, envelope.Config{})
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(s.Seal(strings.NewReader("attack at dawn")))
	if err != nil {
		log.Fatal(err)
	}
	body[0] ^= 1

	var got []byte
	plaintext, err := envelope.Open(ctx, s.Envelope(), key, envelope.Config{}, bytes.NewReader(body))
	if err == nil {
		got, err = io.ReadAll(plaintext)
		plaintext.Close()
	}
	fmt.Println(len(got), errors.Is(err, envelope.ErrAuthentication))
	// Output:
	// 0 true
}

// An envelope too large for metadata (a long description, an RSA-wrapped
// key) goes into an instruction file stored beside the object; V3 keeps
// three fields on the object itself.
func ExampleEnvelope_Instruction() {
	ctx := context.Background()
	key := masterKey()
	s, err := envelope.NewSealer(ctx, key, envelope.Config{})
	if err != nil {
		log.Fatal(err)
	}
	metadata, instruction, err := s.Envelope().Instruction()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(metadata), "fields on the object")

	e, err := envelope.Decode(metadata, instruction)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Format, e.Key.Description["kid"])
	// Output:
	// 3 fields on the object
	// V3 2026
}

// The segmented format can be read at random: each piece is authenticated
// before it is returned, and only the segments a read needs are fetched.
func ExampleNewReaderAt() {
	ctx := context.Background()
	key := masterKey()
	cfg := envelope.Config{Format: envelope.FormatSegmented}
	s, err := envelope.NewSealer(ctx, key, cfg)
	if err != nil {
		log.Fatal(err)
	}
	plaintext := bytes.Repeat([]byte("0123456789"), 100_000) // 1,000,000 bytes
	body, err := io.ReadAll(s.Seal(bytes.NewReader(plaintext)))
	if err != nil {
		log.Fatal(err)
	}

	r, err := envelope.NewReaderAt(ctx, s.Envelope(), key, cfg, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := r.ReadAt(buf, 654_321); err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Size(), string(buf))
	// Output:
	// 1000000 1234567890
}

// The stored size is known before sealing: what a Content-Length needs.
// Here a segmented object of 1 MiB: 16 segments of 64 KiB, each with a
// 16-byte tag.
func ExampleSealer_CiphertextSize() {
	ctx := context.Background()
	s, err := envelope.NewSealer(ctx, masterKey(), envelope.Config{Format: envelope.FormatSegmented})
	if err != nil {
		log.Fatal(err)
	}
	n, err := s.CiphertextSize(1 << 20)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
	// Output:
	// 1048832
}
