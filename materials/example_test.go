package materials_test

import (
	"errors"
	"fmt"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
)

// A keyring constructor's error must not be dropped: the nil keyring it
// leaves is refused.
func ExampleNewProvider() {
	master, err := keyring.NewAES([]byte("too short"), map[string]string{"kid": "2026"})
	fmt.Println(err)
	_, err = materials.NewProvider(master)
	fmt.Println(errors.Is(err, materials.ErrNilKeyring))
	// Output:
	// keyring: AES master key must be 16, 24 or 32 bytes, got 9
	// true
}
