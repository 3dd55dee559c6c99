package materials_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
)

// A provider holds the current master key and the older ones an
// application still reads; each stored data key names its master key by
// description.
func ExampleNewProvider() {
	ctx := context.Background()
	old, err := keyring.NewAES(bytes.Repeat([]byte{1}, 32), map[string]string{"kid": "2025"})
	if err != nil {
		log.Fatal(err)
	}
	cur, err := keyring.NewAES(bytes.Repeat([]byte{2}, 32), map[string]string{"kid": "2026"})
	if err != nil {
		log.Fatal(err)
	}
	// A data key wrapped last year, as an object stores it.
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	wrapped, err := old.Wrap(ctx, dataKey, "AES/GCM/NoPadding")
	if err != nil {
		log.Fatal(err)
	}

	p := materials.NewProvider(cur, old)
	k, err := p.Resolve(ctx, wrapped)
	if err != nil {
		log.Fatal(err)
	}
	got, err := p.Unwrap(ctx, wrapped, "AES/GCM/NoPadding")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("current:", p.Current().Description()["kid"])
	fmt.Println("resolved:", k.Description()["kid"], bytes.Equal(got, dataKey))
	// Output:
	// current: 2026
	// resolved: 2025 true
}

// A keyring constructor's error must not be dropped: the nil keyring it
// leaves gives a provider that fails every call with ErrNilKeyring (and
// that s3crypto.New refuses), never a panic.
func ExampleNewProvider_nilKeyring() {
	master, err := keyring.NewAES([]byte("too short"), map[string]string{"kid": "2026"})
	fmt.Println(err)
	p := materials.NewProvider(master)
	_, err = p.Current().Wrap(context.Background(), make([]byte, 32), "AES/GCM/NoPadding")
	fmt.Println(errors.Is(err, materials.ErrNilKeyring))
	// Output:
	// keyring: AES master key must be 16, 24 or 32 bytes, got 9
	// true
}
