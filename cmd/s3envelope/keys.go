package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
)

// repeated is a flag that may be given more than once.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ", ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// keyFlags are the master keys a command is given: --key, repeatable, each
// AES or RSA key with its --desc in the same order.
type keyFlags struct {
	specs, descs repeated
}

func (k *keyFlags) register(fs *flag.FlagSet, what string) {
	fs.Var(&k.specs, "key", what+": an AES or RSA key `file`, env:NAME or kms:ID (repeatable; the first is the current key)")
	fs.Var(&k.descs, "desc", "the `description` of each AES or RSA --key, in the same order: k=v[,k=v...] or a JSON object")
}

// keyRole says what a command does with its keys: a key that only wraps
// (an RSA public key) cannot read.
type keyRole int

const (
	forWriting keyRole = iota
	forReading
)

// load builds the master keys. It needs at least one.
func (k *keyFlags) load(ctx context.Context, g *globals, role keyRole) ([]keyring.Keyring, error) {
	if len(k.specs) == 0 {
		return nil, usageErr("give a master key with --key (a key file, env:NAME or kms:ID)")
	}
	if n := nonKMS(k.specs); n != len(k.descs) {
		return nil, usageErr("give one --desc per --key that is not kms: (%d keys, %d descriptions), in the same order", n, len(k.descs))
	}
	descs := k.descs
	var keys []keyring.Keyring
	for _, spec := range k.specs {
		desc := ""
		if !strings.HasPrefix(spec, "kms:") {
			desc, descs = descs[0], descs[1:]
		}
		key, err := loadKey(ctx, g, spec, desc, role)
		if err != nil {
			return nil, setupErr(fmt.Errorf("--key %s: %w", spec, err))
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// provider builds the materials provider of the keys: the first is
// current (it wraps new data keys), every one reads.
func (k *keyFlags) provider(ctx context.Context, g *globals, role keyRole) (materials.Provider, []keyring.Keyring, error) {
	keys, err := k.load(ctx, g, role)
	if err != nil {
		return nil, nil, err
	}
	return materials.NewProvider(keys[0], keys[1:]...), keys, nil
}

// nonKMS counts the key sources that need a description.
func nonKMS(specs []string) int {
	n := 0
	for _, s := range specs {
		if !strings.HasPrefix(s, "kms:") {
			n++
		}
	}
	return n
}

// loadKey builds one master key from its source and description. Errors
// name the source, never its bytes.
func loadKey(ctx context.Context, g *globals, spec, desc string, role keyRole) (keyring.Keyring, error) {
	if id, ok := strings.CutPrefix(spec, "kms:"); ok {
		if id == "" {
			return nil, usageErr("kms: needs a key ID, ARN or alias")
		}
		c, err := g.kms(ctx)
		if err != nil {
			return nil, err
		}
		key, err := keyring.NewKMS(c, id)
		if err != nil {
			return nil, err
		}
		return key, nil
	}
	d, err := parseDesc(desc)
	if err != nil {
		return nil, err
	}
	// Readers take an empty description ({}): AWS's clients store one for
	// a key given none, and such objects must stay readable.
	if len(d) == 0 && role == forWriting {
		return nil, usageErr("an AES or RSA key needs a --desc (readers find the key by it)")
	}
	var b []byte
	if name, ok := strings.CutPrefix(spec, "env:"); ok {
		v := g.con.getenv(name)
		if v == "" {
			return nil, fmt.Errorf("the environment variable %s is not set or empty", name)
		}
		b = []byte(v)
	} else {
		b, err = os.ReadFile(spec)
		if err != nil {
			return nil, err // *PathError: names the file, holds no key bytes
		}
	}
	defer clear(b)
	// Anything PEM-like goes to ParseRSA, whose error then says what is
	// wrong with the PEM; a raw AES key holds "-----BEGIN" with
	// probability under 2^-75.
	if !bytes.Contains(b, []byte("-----BEGIN")) {
		key, err := keyring.ParseAES(b, d)
		if err != nil {
			return nil, err // not a nil *AES in a non-nil Keyring
		}
		return key, nil
	}
	key, err := keyring.ParseRSA(b, d)
	if err != nil {
		return nil, err
	}
	if role == forReading && wrapOnly(key) {
		return nil, errors.New("this is an RSA public key, which can only encrypt: give the private key to read")
	}
	return key, nil
}

// wrapOnly reports whether k can only wrap (an RSA public key).
func wrapOnly(k keyring.Keyring) bool {
	_, err := k.Unwrap(context.Background(), nil, "")
	return errors.Is(err, envelope.ErrWrapOnly)
}

// parseDesc reads {"k":"v",...} or k=v[,k=v...].
func parseDesc(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(s, "{") {
		var d map[string]string
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			return nil, usageErr("description %s: %v", s, err)
		}
		return d, nil
	}
	d := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageErr("description %q: want k=v[,k=v...] or a JSON object", s)
		}
		d[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return d, nil
}

// describeKey names a master key for people: its description, or its KMS
// key ID. Never its bytes.
func describeKey(k keyring.Keyring) string {
	if km, ok := k.(*keyring.KMS); ok {
		return "kms:" + km.KeyID()
	}
	b, err := json.Marshal(k.Description()) // keys sorted
	if err != nil {
		return fmt.Sprint(k.Description())
	}
	return string(b)
}
