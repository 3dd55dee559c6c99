package keyring

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/internal/kmsctx"
	"github.com/s3envelope/s3envelope/internal/typednil"
)

// KMSClient is the part of *kms.Client that KMS master keys call.
type KMSClient interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ KMSClient = (*kms.Client)(nil)

// legacyKMSContextKey is the only context of legacy "kms" wraps: the key ARN.
const legacyKMSContextKey = kmsctx.LegacyKeyIDKey

// KMSOptions configure a KMS master key.
type KMSOptions struct {
	// GrantTokens are passed to every KMS call.
	GrantTokens []string
}

// KMS is a master key held in AWS KMS (or a KMS-compatible service). Data
// keys are made by GenerateDataKey and unwrapped by Decrypt, with the
// encryption context (the caller's, see WithEncryptionContext, plus the
// content algorithm under kmsctx.ReservedKey) stored as the object's
// description and bound by KMS: a changed context fails to decrypt.
type KMS struct {
	client KMSClient
	keyID  string // "" for a discovery key: decrypt only, with the key the blob names
	filter DiscoveryFilter
	opts   KMSOptions
}

// NewKMS returns a master key that wraps with KMS key keyID (an ID, ARN or
// alias) using wrap algorithm kms+context, and unwraps with the same key.
func NewKMS(client KMSClient, keyID string, optFns ...func(*KMSOptions)) (*KMS, error) {
	if typednil.Is(client) || keyID == "" {
		return nil, errors.New("keyring: NewKMS needs a KMS client and a key ID")
	}
	k := &KMS{client: client, keyID: keyID}
	for _, fn := range optFns {
		fn(&k.opts)
	}
	return k, nil
}

// DiscoveryFilter names the KMS keys a discovery master key accepts: those
// of Partition ("aws", "aws-cn", "aws-us-gov", …) that belong to one of
// AccountIDs (12 digits each), as AWS's discovery keyrings filter.
type DiscoveryFilter struct {
	Partition  string
	AccountIDs []string
}

// ErrOutsideDiscoveryFilter is returned (wrapped, with envelope.ErrNoMasterKey)
// by a discovery master key for a data key that KMS decrypted with a key
// outside its DiscoveryFilter; the data key is discarded.
var ErrOutsideDiscoveryFilter = errors.New("keyring: the KMS key is outside the discovery filter")

// NewKMSDiscovery returns a decrypt-only KMS master key: it unwraps with
// whichever KMS key the stored blob names, as long as KMS lets the caller
// use it and the key is in filter's partition and accounts — checked on the
// key ARN that KMS reports after Decrypt (an S3 envelope does not name its
// KMS key), so a key outside the filter is refused and its data key
// discarded. Without the filter, anyone who can write the bucket and owns a
// KMS key that grants the reader Decrypt could plant objects the reader
// accepts. It cannot wrap: Wrap and GenerateDataKey fail.
func NewKMSDiscovery(client KMSClient, filter DiscoveryFilter, optFns ...func(*KMSOptions)) (*KMS, error) {
	if typednil.Is(client) {
		return nil, errors.New("keyring: NewKMSDiscovery needs a KMS client")
	}
	if filter.Partition == "" || len(filter.AccountIDs) == 0 {
		return nil, errors.New("keyring: NewKMSDiscovery needs a discovery filter: the partition and the accounts whose KMS keys are trusted")
	}
	for _, id := range filter.AccountIDs {
		if !isAccountID(id) {
			return nil, fmt.Errorf("keyring: NewKMSDiscovery: account ID %.20q is not 12 digits", id)
		}
	}
	k := &KMS{client: client, filter: DiscoveryFilter{Partition: filter.Partition, AccountIDs: slices.Clone(filter.AccountIDs)}}
	for _, fn := range optFns {
		fn(&k.opts)
	}
	return k, nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkDiscovered refuses a key ARN outside the discovery filter.
func (k *KMS) checkDiscovered(op string, keyARN *string) error {
	arn := aws.ToString(keyARN)
	// arn:PARTITION:kms:REGION:ACCOUNT:key/ID
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" && parts[2] == "kms" &&
		parts[1] == k.filter.Partition && slices.Contains(k.filter.AccountIDs, parts[4]) {
		return nil
	}
	if len(arn) > 256 {
		arn = arn[:256] + "..."
	}
	return fmt.Errorf("keyring: KMS %s with key %q: %w (partition %s, accounts %s): %w",
		op, arn, ErrOutsideDiscoveryFilter, k.filter.Partition, strings.Join(k.filter.AccountIDs, ", "), envelope.ErrNoMasterKey)
}

// errDecryptOnly is returned by Wrap on a discovery KMS key.
var errDecryptOnly = errors.New("keyring: a KMS discovery key only unwraps; use NewKMS to write")

// WithEncryptionContext returns a context carrying a KMS encryption context
// for one request. On PutObject it is stored with the object and bound into
// the wrapped key; on GetObject it is what the caller expects: an object
// whose stored context (less aws:x-amz-cek-alg, which the wrap adds) differs
// fails with an error wrapping envelope.ErrAuthentication. Only KMS binds a
// context: AES and RSA master keys refuse a request that carries one (wrap:
// envelope.ErrUnsupported; unwrap: envelope.ErrDisallowed) rather than
// ignore it. A nil ec removes a context set before.
func WithEncryptionContext(ctx context.Context, ec map[string]string) context.Context {
	return kmsctx.With(ctx, ec)
}

// refuseContext fails, wrapping envelope.ErrUnsupported, when a master key
// that cannot bind an encryption context is asked to wrap under one.
func refuseContext(ctx context.Context, wrapAlg string) error {
	if _, ok := kmsctx.From(ctx); ok {
		return wrapError(wrapAlg, fmt.Errorf("%w: an encryption context is bound only by KMS master keys", envelope.ErrUnsupported))
	}
	return nil
}

// KeyID returns the KMS key this master key wraps with ("" for discovery).
func (k *KMS) KeyID() string { return k.keyID }

// Description identifies the KMS key, {"kms_cmk_id": keyID}. A KMS-wrapped
// object stores its encryption context instead, so KMS keys are matched to
// objects by Matches, not by description.
func (k *KMS) Description() map[string]string {
	return map[string]string{legacyKMSContextKey: k.keyID}
}

// Matches reports whether w was wrapped by KMS (kms+context or legacy kms):
// which KMS key is for KMS to decide on Decrypt.
func (k *KMS) Matches(w *envelope.WrappedKey) bool {
	return w.Algorithm == format.WrapKMSContext || w.Algorithm == format.WrapLegacyKMS
}

// context returns the encryption context for a new wrap.
func (k *KMS) wrapContext(ctx context.Context, contentAlg string) (map[string]string, error) {
	switch contentAlg {
	case format.ContentAESGCM, format.ContentAESGCMCommit, format.ContentSegmented, format.ContentSSEC:
	default:
		return nil, wrapError(format.WrapKMSContext, fmt.Errorf("content algorithm %s: %w", algName(contentAlg), envelope.ErrUnsupported))
	}
	ec, _ := kmsctx.From(ctx)
	if _, ok := ec[kmsctx.ReservedKey]; ok {
		return nil, wrapError(format.WrapKMSContext, fmt.Errorf("encryption context key %s is reserved", kmsctx.ReservedKey))
	}
	out := copyDesc(ec)
	out[kmsctx.ReservedKey] = contentAlg
	return out, nil
}

// GenerateDataKey makes a data key with KMS GenerateDataKey (AES_256), wrapped
// under the encryption context. It implements envelope.DataKeyGenerator.
func (k *KMS) GenerateDataKey(ctx context.Context, contentAlg string) ([]byte, *envelope.WrappedKey, error) {
	if k.keyID == "" {
		return nil, nil, errDecryptOnly
	}
	ec, err := k.wrapContext(ctx, contentAlg)
	if err != nil {
		return nil, nil, err
	}
	out, err := k.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(k.keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: ec,
		GrantTokens:       k.opts.GrantTokens,
	})
	if err != nil {
		return nil, nil, k.kmsError("GenerateDataKey", err)
	}
	if len(out.Plaintext) != format.DataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return nil, nil, fmt.Errorf("keyring: KMS GenerateDataKey with key %s returned a data key of %d bytes", k.keyID, len(out.Plaintext))
	}
	return out.Plaintext, &envelope.WrappedKey{Algorithm: format.WrapKMSContext, Ciphertext: out.CiphertextBlob, Description: ec}, nil
}

// Wrap wraps an existing data key with KMS Encrypt under the encryption
// context (used when an envelope is rewrapped to this key).
func (k *KMS) Wrap(ctx context.Context, dataKey []byte, contentAlg string) (*envelope.WrappedKey, error) {
	if k.keyID == "" {
		return nil, errDecryptOnly
	}
	if err := checkWrapInput(format.WrapKMSContext, dataKey, contentAlg); err != nil {
		return nil, err
	}
	ec, err := k.wrapContext(ctx, contentAlg)
	if err != nil {
		return nil, err
	}
	out, err := k.client.Encrypt(ctx, &kms.EncryptInput{
		KeyId:             aws.String(k.keyID),
		Plaintext:         dataKey,
		EncryptionContext: ec,
		GrantTokens:       k.opts.GrantTokens,
	})
	if err != nil {
		return nil, k.kmsError("Encrypt", err)
	}
	return &envelope.WrappedKey{Algorithm: format.WrapKMSContext, Ciphertext: out.CiphertextBlob, Description: ec}, nil
}

// Unwrap decrypts a KMS-wrapped data key with KMS Decrypt and the stored
// encryption context. For kms+context the context must bind contentAlg, and
// must equal the caller's expected context (WithEncryptionContext) when one
// is given. Legacy "kms" wraps (unwrap only; the caller gates them) are
// decrypted with their stored context.
func (k *KMS) Unwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) ([]byte, error) {
	if err := checkUnwrap(ctx, w, contentAlg); err != nil {
		return nil, err
	}
	in := &kms.DecryptInput{
		CiphertextBlob:    w.Ciphertext,
		EncryptionContext: w.Description,
		GrantTokens:       k.opts.GrantTokens,
	}
	if k.keyID != "" {
		in.KeyId = aws.String(k.keyID)
	}
	out, err := k.client.Decrypt(ctx, in)
	if err != nil {
		return nil, k.callError("Decrypt", err)
	}
	if k.keyID == "" {
		if err := k.checkDiscovered("Decrypt", out.KeyId); err != nil {
			clear(out.Plaintext)
			return nil, err
		}
	}
	if !validKeyLen(len(out.Plaintext)) {
		clear(out.Plaintext)
		return nil, unwrapError(w.Algorithm, envelope.ErrAuthentication)
	}
	return out.Plaintext, nil
}

// callError types the error of a KMS call that takes a wrapped key.
func (k *KMS) callError(op string, err error) error {
	// A blob that is not KMS's, was altered, has another context, or
	// belongs to another key: the wrapped key does not unwrap.
	var bad *types.InvalidCiphertextException
	var wrongKey *types.IncorrectKeyException
	if errors.As(err, &bad) || errors.As(err, &wrongKey) {
		return fmt.Errorf("keyring: KMS %s with key %s: %w: %w", op, k.keyOrBlob(), envelope.ErrAuthentication, err)
	}
	return k.kmsError(op, err)
}

// checkUnwrap makes the checks of an unwrap that come before KMS is asked:
// a KMS wrap algorithm, a stored context that binds contentAlg, and the
// caller's expected context, if any.
func checkUnwrap(ctx context.Context, w *envelope.WrappedKey, contentAlg string) error {
	if w == nil {
		return unwrapError("", envelope.ErrMalformed)
	}
	switch w.Algorithm {
	case format.WrapKMSContext:
		alg, ok := w.Description[kmsctx.ReservedKey]
		if !ok {
			return fmt.Errorf("keyring: unwrap kms+context: %w: encryption context lacks %s", envelope.ErrMalformed, kmsctx.ReservedKey)
		}
		if alg != contentAlg {
			return fmt.Errorf("keyring: unwrap kms+context: %w: encryption context binds content algorithm %s, object uses %s",
				envelope.ErrAuthentication, algName(alg), algName(contentAlg))
		}
	case format.WrapLegacyKMS:
		// A legacy kms wrap binds no content algorithm, and its writers
		// never set aws:x-amz-cek-alg. A context that names another
		// algorithm is a blob made for something else — the data key of an
		// SSE-C object (which S3 receives on every request), of a V3 or
		// segmented object — relabelled to be opened as this object's key.
		if alg, ok := w.Description[kmsctx.ReservedKey]; ok && alg != contentAlg {
			return fmt.Errorf("keyring: unwrap kms: %w: encryption context binds content algorithm %s, object uses %s",
				envelope.ErrAuthentication, algName(alg), algName(contentAlg))
		}
	default:
		return unwrapError(w.Algorithm, envelope.ErrUnsupported)
	}
	if want, ok := kmsctx.From(ctx); ok && !contextMatches(w, want) {
		return fmt.Errorf("keyring: unwrap %s: %w: the stored encryption context is not the one expected", w.Algorithm, envelope.ErrAuthentication)
	}
	return nil
}

// reEncrypter is the optional part of a KMSClient that ReEncrypt calls
// (*kms.Client has it). KMSClient does not require it: adding a method to
// an interface that users implement would break their code.
type reEncrypter interface {
	ReEncrypt(ctx context.Context, in *kms.ReEncryptInput, optFns ...func(*kms.Options)) (*kms.ReEncryptOutput, error)
}

// ReEncrypt rewraps w, a data key that from unwraps, under k with one KMS
// ReEncrypt request, so that the data key never leaves KMS. It stands for
// from.Unwrap followed by k.Wrap: the same checks come first (see Unwrap;
// ctx's encryption context is the one expected), the object's encryption
// context is kept (less what wraps add themselves), and the source is held
// to what from accepts — its key (a source key KMS reports as another is
// refused, as KMS itself refuses it) or, for a discovery key, its filter
// (the new wrap is discarded otherwise). Nothing checks that the new wrap
// opens to the same data key: KMS guarantees it.
//
// The request goes through k's client, in k's region, and needs
// kms:ReEncryptFrom on the source key and kms:ReEncryptTo on k's. A client
// without a ReEncrypt method (KMSClient does not require one) fails with an
// error wrapping errors.ErrUnsupported before any request is made.
func (k *KMS) ReEncrypt(ctx context.Context, w *envelope.WrappedKey, contentAlg string, from *KMS) (*envelope.WrappedKey, error) {
	if k.keyID == "" {
		return nil, errDecryptOnly
	}
	if from == nil {
		return nil, errors.New("keyring: KMS ReEncrypt needs the master key that unwraps the data key")
	}
	re, ok := k.client.(reEncrypter)
	if !ok {
		return nil, fmt.Errorf("keyring: KMS ReEncrypt: the KMS client has no ReEncrypt method: %w", errors.ErrUnsupported)
	}
	if err := checkUnwrap(ctx, w, contentAlg); err != nil {
		return nil, err
	}
	dest, err := k.wrapContext(kmsctx.With(ctx, kmsctx.Carried(w)), contentAlg)
	if err != nil {
		return nil, err
	}
	in := &kms.ReEncryptInput{
		CiphertextBlob:               w.Ciphertext,
		SourceEncryptionContext:      w.Description,
		DestinationKeyId:             aws.String(k.keyID),
		DestinationEncryptionContext: dest,
		GrantTokens:                  slices.Concat(from.opts.GrantTokens, k.opts.GrantTokens),
	}
	if from.keyID != "" {
		in.SourceKeyId = aws.String(from.keyID)
	}
	out, err := re.ReEncrypt(ctx, in)
	if err != nil {
		return nil, from.callError("ReEncrypt", err)
	}
	if from.keyID == "" {
		if err := from.checkDiscovered("ReEncrypt", out.SourceKeyId); err != nil {
			return nil, err
		}
	} else if !sameKey(from.keyID, aws.ToString(out.SourceKeyId)) {
		return nil, fmt.Errorf("keyring: KMS ReEncrypt with key %s: %w: KMS reports the data key was under key %.256q",
			from.keyID, envelope.ErrAuthentication, aws.ToString(out.SourceKeyId))
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("keyring: KMS ReEncrypt to key %s returned no ciphertext", k.keyID)
	}
	return &envelope.WrappedKey{Algorithm: format.WrapKMSContext, Ciphertext: out.CiphertextBlob, Description: dest}, nil
}

// sameKey reports whether KMS key keyID (as a master key names it) may be
// the key whose ARN is arn. Only an ARN or a bare key ID can be compared;
// an alias, or a response that names no key, is left to KMS, which refuses
// a blob of another key than SourceKeyId (a server that does not — like
// local-kms — is caught here when the key is named by ARN or ID).
func sameKey(keyID, arn string) bool {
	switch {
	case arn == "", strings.HasPrefix(keyID, "alias/"), strings.Contains(keyID, ":alias/"):
		return true
	case strings.HasPrefix(keyID, "arn:"):
		return keyID == arn
	}
	return strings.HasSuffix(arn, ":key/"+keyID)
}

// contextMatches reports whether w's stored context is the expected one,
// less aws:x-amz-cek-alg, which every kms+context wrap adds. A legacy kms
// wrap's writer added the key ARN under kms_cmk_id itself, so it is ignored
// unless the caller expects it too. A kms+context writer's own kms_cmk_id is
// part of its context like any other key.
func contextMatches(w *envelope.WrappedKey, want map[string]string) bool {
	stored := maps.Clone(w.Description)
	delete(stored, kmsctx.ReservedKey)
	if maps.Equal(stored, want) {
		return true
	}
	if _, expected := want[legacyKMSContextKey]; w.Algorithm == format.WrapLegacyKMS && !expected {
		delete(stored, legacyKMSContextKey)
		return maps.Equal(stored, want)
	}
	return false
}

func (k *KMS) keyOrBlob() string {
	if k.keyID == "" {
		return "(named by the blob)"
	}
	return k.keyID
}

func (k *KMS) kmsError(op string, err error) error {
	return fmt.Errorf("keyring: KMS %s with key %s: %w", op, k.keyOrBlob(), err)
}
