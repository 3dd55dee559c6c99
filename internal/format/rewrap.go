package format

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"strings"
)

// A rewrap replaces an object's wrapped data key by one wrapped under
// another master key, leaving the body alone. What is cryptographic about
// it is here, so that the caller (s3crypto) does the I/O and the policy —
// which master keys, which KMS encryption contexts, whether the object is
// already current — and never holds the plaintext data key of a
// client-side object.

// RewrapOptions says where an envelope is stored and under which contexts
// its data key is unwrapped and wrapped again.
type RewrapOptions struct {
	// Metadata is the object's user metadata as stored (keys in any case).
	// For an envelope in metadata, the new metadata is this with the wrap
	// fields replaced and every other key kept. For an envelope in an
	// instruction file, the fields the format keeps on the object (V3's
	// x-amz-c/d/i, the segmented format's x-s3e-v/s/i/d) are not rewritten,
	// so they must be what the new envelope would put there.
	Metadata map[string]string
	// InstructionFile says the envelope is stored in an instruction file,
	// not in Metadata.
	InstructionFile bool
	// UnwrapContext returns the context to unwrap the old wrapped key old
	// with, and WrapContext the context to wrap its data key again with and
	// to check the new wrap with: they carry what the master keys bind (a
	// KMS encryption context). Nil means ctx itself.
	UnwrapContext func(ctx context.Context, old *WrappedKey) context.Context
	WrapContext   func(ctx context.Context, old *WrappedKey) context.Context
}

func (o *RewrapOptions) contexts(ctx context.Context, old *WrappedKey) (unwrapCtx, wrapCtx context.Context) {
	unwrapCtx, wrapCtx = ctx, ctx
	if o.UnwrapContext != nil {
		unwrapCtx = o.UnwrapContext(ctx, old)
	}
	if o.WrapContext != nil {
		wrapCtx = o.WrapContext(ctx, old)
	}
	return unwrapCtx, wrapCtx
}

// Rewrapped is a checked new envelope, ready to be stored. It holds the
// data key, out of reach, until Close: CheckDataKey uses it.
type Rewrapped struct {
	// Envelope is the new envelope as a reader will decode it from
	// Metadata (with the object's metadata given) or Instruction. It
	// differs from the old one only in its Key.
	Envelope *Envelope
	// Metadata is the object's complete new user metadata, for an envelope
	// stored in metadata; nil for an instruction file.
	Metadata map[string]string
	// Instruction is the new instruction file; nil for an envelope stored
	// in metadata.
	Instruction []byte
	// Verified is true when the check master key unwrapped Envelope's key
	// to the data key. False when it can only wrap (ErrWrapOnly, an RSA
	// public key), or there was none: then only the key commitment (V3
	// and the segmented format) ties the new envelope to the body.
	Verified bool

	// checkKey checks an envelope against the data key, which only this
	// closure holds; close clears it.
	checkKey func(*Envelope) error
	close    func()
}

// CheckDataKey checks e (for example the envelope read back after the new
// one was stored) against the rewrapped data key, as Envelope.CheckDataKey
// does, without handing the key out. After Close it fails.
func (r *Rewrapped) CheckDataKey(e *Envelope) error {
	if r.checkKey == nil {
		return errRewrapClosed
	}
	return r.checkKey(e)
}

// Close clears the data key. It may be called more than once.
func (r *Rewrapped) Close() {
	if r.close != nil {
		r.close()
	}
}

var errRewrapClosed = errors.New("envelope: the rewrap's data key was cleared (Close)")

// Rewrap unwraps e's data key with unwrap, checks it against e's key
// commitment, wraps it with wrap, and serializes the new envelope exactly
// as it is to be stored (opts.Metadata merged, or an instruction file).
// It then decodes those bytes and checks that the result differs from e
// only in its wrapped key, that it passes the key commitment, and, when
// check is not nil, that check unwraps the new key to the same data key
// (Verified; a check that can only wrap leaves it false). The data key
// never leaves this package: the caller Closes the result when done with
// it. On any error nothing is returned and the data key is cleared.
//
// e is not changed. Errors are unwrap's, wrap's or check's, or wrap
// ErrAuthentication (a data key that fails e's commitment, or a new key
// that unwraps to another), ErrMalformed (the new envelope does not decode
// to e with the new key, or the object's metadata does not hold what an
// instruction file's format keeps there) or ErrUnsupported.
func Rewrap(ctx context.Context, e *Envelope, unwrap Unwrapper, wrap Wrapper, check Unwrapper, opts RewrapOptions) (*Rewrapped, error) {
	for _, k := range []any{unwrap, wrap} {
		if err := checkMasterKey(k); err != nil {
			return nil, err
		}
	}
	if check != nil {
		if err := checkMasterKey(check); err != nil {
			return nil, err
		}
	}
	unwrapCtx, wrapCtx := opts.contexts(ctx, &e.Key)
	dataKey, err := unwrap.Unwrap(unwrapCtx, &e.Key, e.ContentAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("unwrapping the data key: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			clear(dataKey)
		}
	}()
	if err := e.CheckDataKey(dataKey); err != nil {
		return nil, fmt.Errorf("the stored data key does not match the object's key commitment: %w", err)
	}
	newKey, err := wrap.Wrap(wrapCtx, dataKey, e.ContentAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("wrapping the data key with the new master key: %w", err)
	}
	r, err := stage(e, newKey, opts)
	if err != nil {
		return nil, err
	}
	decoded := r.Envelope
	if err := decoded.CheckDataKey(dataKey); err != nil {
		return nil, fmt.Errorf("the new envelope fails the key commitment: %w", err)
	}
	if check != nil {
		if r.Verified, err = verifyWrap(wrapCtx, check, &decoded.Key, decoded.ContentAlgorithm, dataKey); err != nil {
			return nil, err
		}
	}
	keep = true
	r.checkKey = func(e *Envelope) error { return e.CheckDataKey(dataKey) }
	r.close = func() {
		clear(dataKey)
		r.checkKey = nil
	}
	return r, nil
}

// ReplaceKey is Rewrap for a key service that rewrapped e's data key
// without handing it out (KMS ReEncrypt): newKey is e.Key rewrapped. The
// new envelope is serialized and decoded back as Rewrap does and must
// differ from e only in its key, but with no data key at hand neither e's
// key commitment nor the new wrap is checked (Verified is false; readers
// check the commitment on every read), and CheckDataKey checks only that
// an envelope is exactly the new one (ErrAuthentication otherwise).
func ReplaceKey(e *Envelope, newKey *WrappedKey, opts RewrapOptions) (*Rewrapped, error) {
	r, err := stage(e, newKey, opts)
	if err != nil {
		return nil, err
	}
	decoded := r.Envelope
	r.checkKey = func(e *Envelope) error {
		if sameButKey(decoded, e, &decoded.Key) != nil {
			return fmt.Errorf("%w: the envelope is not the one rewrapped", ErrAuthentication)
		}
		return nil
	}
	r.close = func() { r.checkKey = nil }
	return r, nil
}

// stage serializes e with newKey in place of its key exactly as it is to
// be stored (opts.Metadata merged, or an instruction file), decodes those
// bytes, and checks that the result differs from e only in its key.
func stage(e *Envelope, newKey *WrappedKey, opts RewrapOptions) (*Rewrapped, error) {
	next := *e
	next.Key = *newKey
	r := &Rewrapped{}
	var decoded *Envelope
	if !opts.InstructionFile {
		fields, err := next.Metadata()
		if err != nil {
			return nil, err
		}
		r.Metadata = replaceWrapFields(opts.Metadata, fields)
		if decoded, err = Decode(r.Metadata, nil); err != nil {
			return nil, fmt.Errorf("the new envelope does not decode: %w", err)
		}
	} else {
		onObject, instr, err := next.Instruction()
		if err != nil {
			return nil, err
		}
		stored := lower(opts.Metadata)
		for k, v := range onObject {
			if stored[k] != v {
				return nil, fmt.Errorf("%w: object metadata %s differs from the envelope read", ErrMalformed, k)
			}
		}
		r.Instruction = instr
		if decoded, err = Decode(opts.Metadata, instr); err != nil {
			return nil, fmt.Errorf("the new envelope does not decode: %w", err)
		}
	}
	if err := sameButKey(e, decoded, newKey); err != nil {
		return nil, err
	}
	r.Envelope = decoded
	return r, nil
}

// verifyWrap unwraps w with check and compares the result with dataKey in
// constant time: true when they are equal, false with no error when check
// can only wrap.
func verifyWrap(ctx context.Context, check Unwrapper, w *WrappedKey, contentAlg string, dataKey []byte) (bool, error) {
	got, err := check.Unwrap(ctx, w, contentAlg)
	switch {
	case errors.Is(err, ErrWrapOnly):
		// An RSA public key: nothing here can unwrap what it wrapped.
		return false, nil
	case err != nil:
		return false, fmt.Errorf("the new master key cannot unwrap the new envelope: %w", err)
	}
	same := subtle.ConstantTimeCompare(got, dataKey) == 1
	clear(got)
	if !same {
		return false, fmt.Errorf("%w: the new envelope unwraps to another data key", ErrAuthentication)
	}
	return true, nil
}

// sameButKey checks that the decoded new envelope differs from the old
// only in its wrapped key, which must be key.
func sameButKey(old, decoded *Envelope, key *WrappedKey) error {
	switch {
	case decoded.Format != old.Format,
		decoded.ContentAlgorithm != old.ContentAlgorithm,
		!bytes.Equal(decoded.IV, old.IV),
		!bytes.Equal(decoded.MessageID, old.MessageID),
		!bytes.Equal(decoded.Commitment, old.Commitment),
		!bytes.Equal(decoded.ObjectID, old.ObjectID),
		decoded.SegmentSize != old.SegmentSize,
		decoded.PlaintextLength != old.PlaintextLength,
		!sameWrappedKey(&decoded.Key, key):
		return fmt.Errorf("%w: the new envelope does not decode to the old one with the new key", ErrMalformed)
	}
	return nil
}

func sameWrappedKey(a, b *WrappedKey) bool {
	return a.Algorithm == b.Algorithm && bytes.Equal(a.Ciphertext, b.Ciphertext) && maps.Equal(a.Description, b.Description)
}

// isWrapField reports whether k (lower case) is one of the envelope fields
// that hold the wrapped data key, its wrap algorithm and the master key's
// description (or KMS context), in any format: the only fields a rewrap
// replaces or removes.
func isWrapField(k string) bool {
	switch k {
	case keyV2, keyWrapAlg, keyMatDesc,
		keyV3Key, keyV3Wrap, keyV3MatDesc, keyV3Context,
		keySegKey, keySegWrap, keySegMatDesc:
		return true
	}
	return false
}

// replaceWrapFields returns meta with its wrap fields replaced by fields
// and every other key kept as stored (fields' other entries hold the same
// values, decoded and encoded again). A key of fields replaces meta's in
// any case.
func replaceWrapFields(meta, fields map[string]string) map[string]string {
	out := make(map[string]string, len(meta)+len(fields))
	for k, v := range meta {
		lk := strings.ToLower(k)
		if _, replaced := fields[lk]; replaced || isWrapField(lk) {
			continue
		}
		out[k] = v
	}
	maps.Copy(out, fields)
	return out
}

// UnwrapsWith unwraps e's data key with u and checks it against e's key
// commitment, then clears it: for the questions a rewrap asks of a master
// key (is the object already under it? can the old one still read the new
// envelope?) without handing the key out. unwrapped is false, with u's
// error, when u does not unwrap the key; true, with nil or the
// commitment's error (ErrAuthentication), when it does.
func (e *Envelope) UnwrapsWith(ctx context.Context, u Unwrapper) (unwrapped bool, err error) {
	if err := checkMasterKey(u); err != nil {
		return false, err
	}
	dataKey, err := u.Unwrap(ctx, &e.Key, e.ContentAlgorithm)
	if err != nil {
		return false, err
	}
	defer clear(dataKey)
	return true, e.CheckDataKey(dataKey)
}

// CustomerEnvelope presents an SSE-C data key's wrap as an envelope (with
// no format and no commitment), for the checks that rewraps of every kind
// share, such as UnwrapsWith.
func CustomerEnvelope(w *WrappedKey) *Envelope {
	return &Envelope{ContentAlgorithm: ContentSSEC, Key: *w}
}

// RewrappedCompanion is an SSE-C object's companion with every data key
// rewrapped, checked as Rewrap checks a new envelope.
type RewrappedCompanion struct {
	// Companion is the new companion as a reader will parse it from its
	// stored bytes (Companion.Marshal).
	Companion *Companion
	// Verified is true when the check master key unwrapped every new key
	// to its data key.
	Verified bool
}

// RewrapCompanion rewraps every data key of an SSE-C object's companion:
// each is unwrapped with unwrap (OpenCustomerKey), wrapped with wrap, and
// the new companion is marshalled and parsed again; each parsed key must be
// the new one and, when check is not nil, unwrap under check to its data
// key (Verified; a check that can only wrap leaves it false). The data
// keys are cleared before it returns. opts' contexts apply per key;
// opts.Metadata and InstructionFile are not used.
func RewrapCompanion(ctx context.Context, c *Companion, unwrap Unwrapper, wrap Wrapper, check Unwrapper, opts RewrapOptions) (*RewrappedCompanion, error) {
	if err := checkMasterKey(wrap); err != nil {
		return nil, err
	}
	if check != nil {
		if err := checkMasterKey(check); err != nil {
			return nil, err
		}
	}
	dataKeys := make([][]byte, len(c.Keys))
	defer func() {
		for _, k := range dataKeys {
			clear(k)
		}
	}()
	next := &Companion{}
	for i := range c.Keys {
		unwrapCtx, wrapCtx := opts.contexts(ctx, &c.Keys[i])
		var err error
		if dataKeys[i], err = OpenCustomerKey(unwrapCtx, unwrap, &c.Keys[i]); err != nil {
			return nil, fmt.Errorf("unwrapping data key %d of the companion: %w", i, err)
		}
		w, err := wrap.Wrap(wrapCtx, dataKeys[i], ContentSSEC)
		if err != nil {
			return nil, fmt.Errorf("wrapping the data key with the new master key: %w", err)
		}
		next.Keys = append(next.Keys, *w)
	}
	decoded, err := marshalParse(next)
	if err != nil {
		return nil, err
	}
	r := &RewrappedCompanion{Companion: decoded, Verified: check != nil}
	for i := range decoded.Keys {
		if !sameWrappedKey(&decoded.Keys[i], &next.Keys[i]) {
			return nil, fmt.Errorf("%w: the new companion does not parse to the keys wrapped", ErrMalformed)
		}
		if check == nil {
			continue
		}
		_, wrapCtx := opts.contexts(ctx, &c.Keys[i])
		verified, err := verifyWrap(wrapCtx, check, &decoded.Keys[i], ContentSSEC, dataKeys[i])
		if err != nil {
			return nil, err
		}
		r.Verified = r.Verified && verified
	}
	return r, nil
}

// ReplaceCompanionKeys is RewrapCompanion for a key service that rewrapped
// every data key of c without handing them out (KMS ReEncrypt): keys are
// c.Keys rewrapped, in order. The new companion is marshalled and parsed
// back, and each parsed key must be the new one; nothing unwraps them
// (Verified is false).
func ReplaceCompanionKeys(c *Companion, keys []WrappedKey) (*RewrappedCompanion, error) {
	if len(keys) != len(c.Keys) {
		return nil, fmt.Errorf("%w: %d keys to replace %d", ErrMalformed, len(keys), len(c.Keys))
	}
	decoded, err := marshalParse(&Companion{Keys: keys})
	if err != nil {
		return nil, err
	}
	for i := range decoded.Keys {
		if !sameWrappedKey(&decoded.Keys[i], &keys[i]) {
			return nil, fmt.Errorf("%w: the new companion does not parse to the keys wrapped", ErrMalformed)
		}
	}
	return &RewrappedCompanion{Companion: decoded}, nil
}

// marshalParse returns c as a reader will parse it from its stored bytes.
func marshalParse(c *Companion) (*Companion, error) {
	b, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	decoded, err := ParseCompanion(b)
	if err != nil {
		return nil, fmt.Errorf("the new companion does not decode: %w", err)
	}
	if len(decoded.Keys) != len(c.Keys) {
		return nil, fmt.Errorf("%w: the new companion does not parse to the keys wrapped", ErrMalformed)
	}
	return decoded, nil
}

// StagedCustomerKey is a fresh SSE-C data key and the companion that
// records it ahead of the object's current key.
type StagedCustomerKey struct {
	// DataKey is the new data key, for the caller to send to S3 as the
	// customer key and to clear when done.
	DataKey []byte
	// Companion holds the new wrapped key, then the key kept, as a reader
	// will parse it from its stored bytes.
	Companion *Companion
	// Verified is true when check unwrapped the new wrapped key to DataKey.
	Verified bool
}

// StageCustomerKey makes a fresh SSE-C data key wrapped with wrap
// (NewCustomerKey) for re-keying an object, and the companion that records
// it ahead of keep, the key that opens the object now, checked as stored:
// the companion's bytes parse to the same keys and, when check is not nil,
// check unwraps the new one to the data key (Verified; a check that can
// only wrap leaves it false). On error the data key is cleared.
func StageCustomerKey(ctx context.Context, wrap Wrapper, check Unwrapper, keep *WrappedKey) (*StagedCustomerKey, error) {
	if check != nil {
		if err := checkMasterKey(check); err != nil {
			return nil, err
		}
	}
	dataKey, wrapped, err := NewCustomerKey(ctx, wrap)
	if err != nil {
		return nil, fmt.Errorf("making a data key: %w", err)
	}
	staging := &Companion{Keys: []WrappedKey{*wrapped, *keep}}
	decoded, err := marshalParse(staging)
	if err == nil && (!sameWrappedKey(&decoded.Keys[0], wrapped) || !sameWrappedKey(&decoded.Keys[1], keep)) {
		err = fmt.Errorf("%w: the new companion does not parse to the keys wrapped", ErrMalformed)
	}
	s := &StagedCustomerKey{DataKey: dataKey, Companion: decoded}
	if err == nil && check != nil {
		s.Verified, err = verifyWrap(ctx, check, &decoded.Keys[0], ContentSSEC, dataKey)
	}
	if err != nil {
		clear(dataKey)
		return nil, err
	}
	return s, nil
}
