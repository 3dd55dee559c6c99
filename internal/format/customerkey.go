package format

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Objects that S3 encrypts with a customer-provided key (SSE-C) whose data
// key this library manages: the data key is sent to S3 as the customer key
// and never stored; its wrapped form is kept in a companion object.
const (
	// ContentSSEC is the content algorithm of a data key used as an SSE-C
	// customer key (AES256, applied by S3). Every wrap binds it as it binds
	// the client-side formats' algorithms, so a data key wrapped for SSE-C
	// cannot be presented as a client-side content key, nor the reverse.
	ContentSSEC = "S3E-SSEC-AES256"

	// CompanionSuffix is appended to an SSE-C object's key to name its
	// companion object, which holds the object's wrapped data keys. S3
	// refuses to return an SSE-C object's metadata without its key, so the
	// envelope cannot live there.
	CompanionSuffix = ".ssec"

	// MaxCompanionKeys is the most wrapped data keys a companion holds: the
	// object's, and while an overwrite is in flight (or after it, until the
	// next write) the previous object's, so that a write interrupted at any
	// point leaves an object whose key is still at hand.
	MaxCompanionKeys = 2
)

// companionVersion is the companion format's version, stored as "v".
const companionVersion = "1"

// Companion is the stored envelope of an SSE-C object: its wrapped data
// keys, newest first, each with its wrap algorithm and master key
// description. It holds no nonce or commitment: S3 runs the cipher, and S3
// refuses (HTTP 403) a customer key other than the one the object was
// written with, so a reader tries the keys in order.
type Companion struct {
	Keys []WrappedKey
}

type companionJSON struct {
	Version string        `json:"v"`
	Keys    []companionKJ `json:"keys"`
}

type companionKJ struct {
	Key         string            `json:"k"`
	Wrap        string            `json:"w"`
	Description map[string]string `json:"m"`
}

// companionWrap reports whether alg may wrap an SSE-C data key: the
// algorithms this library writes, all of which bind ContentSSEC. Legacy
// wraps bind nothing and no writer of companions uses them.
func companionWrap(alg string) bool {
	switch alg {
	case WrapAESGCM, WrapRSAOAEPSHA1, WrapKMSContext:
		return true
	}
	return false
}

// Marshal renders the companion as stored: compact JSON.
func (c *Companion) Marshal() ([]byte, error) {
	if len(c.Keys) == 0 || len(c.Keys) > MaxCompanionKeys {
		return nil, fmt.Errorf("%w: a companion holds 1 to %d keys, not %d", ErrMalformed, MaxCompanionKeys, len(c.Keys))
	}
	out := companionJSON{Version: companionVersion}
	for _, k := range c.Keys {
		if !companionWrap(k.Algorithm) || len(k.Ciphertext) == 0 {
			return nil, fmt.Errorf("%w: wrap %q with %d bytes cannot be stored in a companion", ErrMalformed, k.Algorithm, len(k.Ciphertext))
		}
		d := k.Description
		if d == nil {
			d = map[string]string{}
		}
		out.Keys = append(out.Keys, companionKJ{
			Key:         base64.StdEncoding.EncodeToString(k.Ciphertext),
			Wrap:        k.Algorithm,
			Description: d,
		})
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxInstructionSize {
		return nil, fmt.Errorf("%w: companion of %d bytes (at most %d)", ErrTooLarge, len(b), MaxInstructionSize)
	}
	return b, nil
}

// ParseCompanion parses a stored companion. It is strict: unknown fields,
// trailing data, more than MaxCompanionKeys keys, an empty or non-base64
// wrapped key and a wrap algorithm this library does not write for SSE-C
// are refused. Errors wrap ErrTooLarge (more than MaxInstructionSize
// bytes), ErrUnsupported (another version or wrap algorithm) or
// ErrMalformed.
func ParseCompanion(b []byte) (*Companion, error) {
	if len(b) > MaxInstructionSize {
		return nil, fmt.Errorf("%w: companion larger than %d bytes", ErrTooLarge, MaxInstructionSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var cj companionJSON
	if err := dec.Decode(&cj); err != nil {
		return nil, fmt.Errorf("%w: companion is not a JSON object of the expected fields", ErrMalformed)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the companion's JSON object", ErrMalformed)
	}
	if cj.Version != companionVersion {
		if cj.Version == "" {
			return nil, fmt.Errorf("%w: companion has no version", ErrMalformed)
		}
		return nil, fmt.Errorf("%w: companion version %.40q", ErrUnsupported, cj.Version)
	}
	if len(cj.Keys) == 0 || len(cj.Keys) > MaxCompanionKeys {
		return nil, fmt.Errorf("%w: companion holds %d keys (1 to %d)", ErrMalformed, len(cj.Keys), MaxCompanionKeys)
	}
	c := &Companion{}
	for i, k := range cj.Keys {
		if !companionWrap(k.Wrap) {
			return nil, fmt.Errorf("%w: companion key %d: wrap algorithm %.40q", ErrUnsupported, i, k.Wrap)
		}
		ct, err := base64.StdEncoding.Strict().DecodeString(k.Key)
		if err != nil || len(ct) == 0 {
			return nil, fmt.Errorf("%w: companion key %d: the wrapped key is not base64", ErrMalformed, i)
		}
		d := k.Description
		if d == nil {
			d = map[string]string{}
		}
		c.Keys = append(c.Keys, WrappedKey{Algorithm: k.Wrap, Ciphertext: ct, Description: d})
	}
	return c, nil
}

// NewCustomerKey makes a fresh 256-bit data key for an SSE-C object and
// wraps it with w, binding ContentSSEC: generated by w when it is a
// DataKeyGenerator (KMS GenerateDataKey), otherwise read from crypto/rand.
// The caller sends the data key to S3 as the customer key, stores the
// wrapped key in the object's companion, and clears the data key after.
func NewCustomerKey(ctx context.Context, w Wrapper) (dataKey []byte, wrapped *WrappedKey, err error) {
	if err := checkMasterKey(w); err != nil {
		return nil, nil, err
	}
	if g, ok := w.(DataKeyGenerator); ok {
		dataKey, wrapped, err = g.GenerateDataKey(ctx, ContentSSEC)
		if err != nil {
			return nil, nil, err
		}
		if len(dataKey) != DataKeySize {
			clear(dataKey)
			return nil, nil, fmt.Errorf("%w: generated data key is %d bytes, not %d", ErrMalformed, len(dataKey), DataKeySize)
		}
		return dataKey, wrapped, nil
	}
	dataKey = make([]byte, DataKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, nil, err
	}
	if wrapped, err = w.Wrap(ctx, dataKey, ContentSSEC); err != nil {
		clear(dataKey)
		return nil, nil, err
	}
	return dataKey, wrapped, nil
}

// OpenCustomerKey unwraps an SSE-C object's data key with u, binding
// ContentSSEC, and checks that it is a 256-bit key. Errors are u's, or wrap
// ErrAuthentication.
func OpenCustomerKey(ctx context.Context, u Unwrapper, w *WrappedKey) ([]byte, error) {
	if err := checkMasterKey(u); err != nil {
		return nil, err
	}
	if !companionWrap(w.Algorithm) {
		return nil, fmt.Errorf("%w: wrap algorithm %.40q for an SSE-C data key", ErrUnsupported, w.Algorithm)
	}
	k, err := u.Unwrap(ctx, w, ContentSSEC)
	if err != nil {
		return nil, err
	}
	if len(k) != DataKeySize {
		clear(k)
		return nil, fmt.Errorf("%w: the unwrapped SSE-C data key is not %d bytes", ErrAuthentication, DataKeySize)
	}
	return k, nil
}
