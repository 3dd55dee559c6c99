package materials_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/s3envelope/s3envelope/envelope"
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

// A lookup provider finds older master keys by the description stored
// with each object — in a vault, a directory of key files, a key service —
// and remembers what it found.
func ExampleNewLookupProvider() {
	ctx := context.Background()
	keyFor := func(kid string) keyring.Keyring {
		k, err := keyring.NewAES(bytes.Repeat([]byte(kid[3:]), 32), map[string]string{"kid": kid})
		if err != nil {
			log.Fatal(err)
		}
		return k
	}
	lookups := 0
	p := materials.NewLookupProvider(keyFor("2026"), func(ctx context.Context, desc map[string]string) (keyring.Keyring, error) {
		lookups++
		if desc["kid"] == "2024" || desc["kid"] == "2025" {
			return keyFor(desc["kid"]), nil
		}
		return nil, nil // no such key
	})
	for _, kid := range []string{"2025", "2025", "2024", "2019"} {
		w, err := keyFor(kid).Wrap(ctx, bytes.Repeat([]byte{1}, 32), "115")
		if err != nil {
			log.Fatal(err)
		}
		_, err = p.Unwrap(ctx, w, "115")
		fmt.Println(kid, err == nil, errors.Is(err, envelope.ErrNoMasterKey))
	}
	fmt.Println("lookups:", lookups)
	// Output:
	// 2025 true false
	// 2025 true false
	// 2024 true false
	// 2019 false true
	// lookups: 3
}

// countingKey counts the unwraps that reach its master key.
type countingKey struct {
	keyring.Keyring
	unwraps int
}

func (k *countingKey) Unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
	k.unwraps++
	return k.Keyring.Unwrap(ctx, w, contentAlg)
}

// A cache in front of a provider answers repeated reads of one object
// without asking the master key again (for KMS, a Decrypt request; for RSA,
// a private-key operation). Pass it to s3crypto.New as any provider.
func ExampleNewCache() {
	ctx := context.Background()
	aes, err := keyring.NewAES(bytes.Repeat([]byte{1}, 32), map[string]string{"kid": "2026"})
	if err != nil {
		log.Fatal(err)
	}
	master := &countingKey{Keyring: aes}
	p, closeCache := materials.NewCache(materials.NewProvider(master), func(o *materials.CacheOptions) {
		o.MaxAge = 5 * time.Minute // how long a data key stays in memory
		o.MaxUses = 1000           // and how many reads it answers
	})
	defer closeCache() // clears the data keys held

	// An object's data key, as its envelope stores it.
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	wrapped, err := master.Wrap(ctx, dataKey, "115")
	if err != nil {
		log.Fatal(err)
	}
	for range 3 {
		got, err := p.Unwrap(ctx, wrapped, "115")
		fmt.Println(err == nil && bytes.Equal(got, dataKey))
	}
	fmt.Println("master key unwraps:", master.unwraps)

	// An envelope that differs in anything is not answered from the cache.
	wrapped.Description = map[string]string{"kid": "2025"}
	_, err = p.Unwrap(ctx, wrapped, "115")
	fmt.Println(errors.Is(err, envelope.ErrNoMasterKey))
	// Output:
	// true
	// true
	// true
	// master key unwraps: 1
	// true
}
