package testvectors

// Cross-client tests against AWS's S3 Encryption Client for Go
// (github.com/aws/amazon-s3-encryption-client-go, v3.2.0 and v4.0.0) with KMS
// keys (kms+context), over versitygw and local-kms (both started by
// ./scripts/test on 127.0.0.1), in both directions, for every commitment
// policy on each side and every object format.
//
// What AWS's Go clients do, read off their sources and observed here:
//
//   - They write only object metadata, never instruction files. They read
//     instruction files, but through an S3 client of their own made by
//     config.LoadDefaultConfig, not the one they were given (see
//     setAWSDefaultEnv).
//   - v3.2.0 writes V2 only (policy FORBID_ENCRYPT_ALLOW_DECRYPT, its
//     default); New accepts the REQUIRE_* policies, but then every PutObject
//     fails ("ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY is not supported for
//     encryption in S3EC V3"). It reads V2 and V3, or only V3 under
//     REQUIRE_ENCRYPT_REQUIRE_DECRYPT.
//   - v4.0.0 writes V3 under REQUIRE_* (default REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
//     and V2 under FORBID_ENCRYPT_ALLOW_DECRYPT; a suite that contradicts the
//     policy fails in New.
//   - V2 objects: x-amz-key-v2, x-amz-iv, x-amz-cek-alg, x-amz-wrap-alg
//     (kms+context), x-amz-tag-len, x-amz-matdesc (the encryption context,
//     with aws:x-amz-cek-alg = AES/GCM/NoPadding), and
//     x-amz-unencrypted-content-length.
//   - V3 objects (v4): x-amz-3, x-amz-c (115), x-amz-w (12), x-amz-t (the
//     context, with aws:x-amz-cek-alg = 115), x-amz-d, x-amz-i, and two EMPTY
//     values: x-amz-m = "" and x-amz-unencrypted-content-length = "".
//   - Per-request encryption context: the context.Context value under the
//     plain string key "EncryptionContext". On GetObject it must equal the
//     stored context less aws:x-amz-cek-alg and kms_cmk_id; without one,
//     nothing is compared (KMS still binds the stored context).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	v3algorithms "github.com/aws/amazon-s3-encryption-client-go/v3/algorithms"
	v3client "github.com/aws/amazon-s3-encryption-client-go/v3/client"
	v3commitment "github.com/aws/amazon-s3-encryption-client-go/v3/commitment"
	v3materials "github.com/aws/amazon-s3-encryption-client-go/v3/materials"
	v4algorithms "github.com/aws/amazon-s3-encryption-client-go/v4/algorithms"
	v4client "github.com/aws/amazon-s3-encryption-client-go/v4/client"
	v4commitment "github.com/aws/amazon-s3-encryption-client-go/v4/commitment"
	v4materials "github.com/aws/amazon-s3-encryption-client-go/v4/materials"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/internal/format"
	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// awsECKey is the context.Context key under which AWS's Go clients look up a
// per-request encryption context: the plain string "EncryptionContext".
const awsECKey = v4client.EncryptionContext

// awsWithEC returns ctx carrying ec for AWS's Go clients, or ctx for nil.
func awsWithEC(ctx context.Context, ec map[string]string) context.Context {
	if ec == nil {
		return ctx
	}
	//lint:ignore SA1029 AWS's clients look the context up under this plain string key.
	return context.WithValue(ctx, awsECKey, maps.Clone(ec))
}

// policyCase is one commitment policy, as each client names it.
type policyCase struct {
	name string
	aws3 v3commitment.CommitmentPolicy
	aws4 v4commitment.CommitmentPolicy
	lib  envelope.CommitmentPolicy
}

var (
	policyForbid         = policyCase{"FORBID_ENCRYPT_ALLOW_DECRYPT", v3commitment.FORBID_ENCRYPT_ALLOW_DECRYPT, v4commitment.FORBID_ENCRYPT_ALLOW_DECRYPT, envelope.ForbidEncryptAllowDecrypt}
	policyRequireAllow   = policyCase{"REQUIRE_ENCRYPT_ALLOW_DECRYPT", v3commitment.REQUIRE_ENCRYPT_ALLOW_DECRYPT, v4commitment.REQUIRE_ENCRYPT_ALLOW_DECRYPT, envelope.RequireEncryptAllowDecrypt}
	policyRequireRequire = policyCase{"REQUIRE_ENCRYPT_REQUIRE_DECRYPT", v3commitment.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, v4commitment.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, envelope.RequireEncryptRequireDecrypt}
	allPolicies          = []policyCase{policyForbid, policyRequireAllow, policyRequireRequire}
)

// readsV2 is what every client's documentation says: only
// REQUIRE_ENCRYPT_REQUIRE_DECRYPT refuses non-committing (V2) objects.
func (p policyCase) readsV2() bool { return p.name != policyRequireRequire.name }

// peer is one client configuration, on either side.
type peer struct {
	name        string // "awsgo-v3", "awsgo-v4", "s3envelope"
	policy      policyCase
	instruction bool // this library only: writes instruction files
	put         func(ctx context.Context, bucket, key string, pt []byte, ec map[string]string) error
	get         func(ctx context.Context, bucket, key string, ec map[string]string) ([]byte, error)
	// policyRefusal reports whether err is this client's refusal of an
	// object's format under its commitment policy.
	policyRefusal func(err error) bool
	// contextRefusal reports whether err is this client's refusal of an
	// object whose stored context is not the expected one.
	contextRefusal func(err error) bool
}

func (p *peer) String() string {
	s := p.name + "/" + p.policy.name
	if p.instruction {
		s += "/instruction"
	}
	return s
}

// keyPart is the peer's name as one segment of an object key (a file
// system backed server cannot hold both "a" and "a/b").
func (p *peer) keyPart() string { return strings.ReplaceAll(p.String(), "/", "+") }

var quietLogger = log.New(io.Discard, "", 0)

func readBody(out *s3.GetObjectOutput, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func awsPolicyRefusal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "commitment policy")
}

func awsContextRefusal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Provided encryption context does not match")
}

// awsV3Peer is AWS's Go client v3.2.0 with KMS key keyID under policy p.
func awsV3Peer(t testing.TB, s3c *s3.Client, kc *kms.Client, keyID string, p policyCase) *peer {
	t.Helper()
	setAWSDefaultEnv(t)
	cmm, err := v3materials.NewCryptographicMaterialsManager(v3materials.NewKmsKeyring(kc, keyID))
	if err != nil {
		t.Fatalf("v3 NewCryptographicMaterialsManager: %v", err)
	}
	c, err := v3client.New(s3c, cmm, func(o *v3client.EncryptionClientOptions) {
		o.CommitmentPolicy = p.aws3
		o.Logger = quietLogger
	})
	if err != nil {
		t.Fatalf("v3 client.New with %s: %v", p.name, err)
	}
	return &peer{
		name: "awsgo-v3", policy: p,
		put: func(ctx context.Context, bucket, key string, pt []byte, ec map[string]string) error {
			_, err := c.PutObject(awsWithEC(ctx, ec), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(pt)})
			return err
		},
		get: func(ctx context.Context, bucket, key string, ec map[string]string) ([]byte, error) {
			return readBody(c.GetObject(awsWithEC(ctx, ec), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}))
		},
		policyRefusal:  awsPolicyRefusal,
		contextRefusal: awsContextRefusal,
	}
}

// awsV4Peer is AWS's Go client v4.0.0 with KMS key keyID under policy p (and
// the suite the policy picks by default).
func awsV4Peer(t testing.TB, s3c *s3.Client, kc *kms.Client, keyID string, p policyCase) *peer {
	t.Helper()
	setAWSDefaultEnv(t)
	cmm, err := v4materials.NewCryptographicMaterialsManager(v4materials.NewKmsKeyring(kc, keyID))
	if err != nil {
		t.Fatalf("v4 NewCryptographicMaterialsManager: %v", err)
	}
	c, err := v4client.New(s3c, cmm, func(o *v4client.EncryptionClientOptions) {
		o.CommitmentPolicy = p.aws4
		o.Logger = quietLogger
	})
	if err != nil {
		t.Fatalf("v4 client.New with %s: %v", p.name, err)
	}
	return &peer{
		name: "awsgo-v4", policy: p,
		put: func(ctx context.Context, bucket, key string, pt []byte, ec map[string]string) error {
			_, err := c.PutObject(awsWithEC(ctx, ec), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(pt)})
			return err
		},
		get: func(ctx context.Context, bucket, key string, ec map[string]string) ([]byte, error) {
			return readBody(c.GetObject(awsWithEC(ctx, ec), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}))
		},
		policyRefusal:  awsPolicyRefusal,
		contextRefusal: awsContextRefusal,
	}
}

// libPeer is this library with KMS key keyID under policy p (format picked
// by the policy), writing instruction files if instruction.
func libPeer(t testing.TB, kc *kms.Client, keyID string, p policyCase, instruction bool) *peer {
	t.Helper()
	c := libKMSClient(t, kc, keyID, libPolicy(p.lib, instruction))
	return &peer{
		name: "s3envelope", policy: p, instruction: instruction,
		put: func(ctx context.Context, bucket, key string, pt []byte, ec map[string]string) error {
			_, err := c.PutObject(libWithEC(ctx, ec), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(pt)})
			return err
		},
		get: func(ctx context.Context, bucket, key string, ec map[string]string) ([]byte, error) {
			out, err := c.GetObject(libWithEC(ctx, ec), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			return readBody(out, err)
		},
		policyRefusal:  func(err error) bool { return errors.Is(err, envelope.ErrPolicy) },
		contextRefusal: func(err error) bool { return errors.Is(err, envelope.ErrAuthentication) },
	}
}

// storedObject describes what a writer stored, as read back with the plain
// S3 client: format, storage, the envelope fields, and the context.
type storedObject struct {
	format, storage string
	fields          map[string]string // metadata and instruction-file envelope fields
	meta            map[string]string // the object's own metadata
	context         map[string]string // the stored encryption context, parsed
}

func inspectObject(t testing.TB, s3c *s3.Client, bucket, key string) storedObject {
	t.Helper()
	meta, ok := headMetadata(t, s3c, bucket, key)
	if !ok {
		t.Fatalf("object %s does not exist", key)
	}
	so := storedObject{storage: "metadata", fields: map[string]string{}, meta: meta}
	for k, v := range meta {
		if format.IsEnvelopeKey(k) {
			so.fields[k] = v
		}
	}
	if _, ok := headMetadata(t, s3c, bucket, key+format.InstructionSuffix); ok {
		so.storage = "instruction"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b, err := readBody(s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key + format.InstructionSuffix)}))
		if err != nil {
			t.Fatalf("reading %s.instruction: %v", key, err)
		}
		m, err := format.ParseInstruction(b)
		if err != nil {
			t.Fatalf("parsing %s.instruction: %v", key, err)
		}
		maps.Copy(so.fields, m)
	}
	field := "x-amz-matdesc"
	so.format = "V2"
	if _, ok := so.fields["x-amz-3"]; ok {
		so.format = "V3"
		field = "x-amz-t"
	}
	if err := json.Unmarshal([]byte(so.fields[field]), &so.context); err != nil {
		t.Fatalf("%s: stored context %s = %q is not a JSON object of strings", key, field, so.fields[field])
	}
	return so
}

// checkKMSObject checks a stored kms+context object: the format the writer
// should have written, and a stored context that is the caller's plus
// aws:x-amz-cek-alg bound to the content algorithm.
func checkKMSObject(t testing.TB, so storedObject, wantFormat, wantStorage string, ec map[string]string) {
	t.Helper()
	if so.format != wantFormat || so.storage != wantStorage {
		t.Fatalf("stored %s/%s, want %s/%s (fields %v)", so.format, so.storage, wantFormat, wantStorage, sortedKeys(so.fields))
	}
	want := maps.Clone(ec)
	if want == nil {
		want = map[string]string{}
	}
	if so.format == "V3" {
		want["aws:x-amz-cek-alg"] = "115"
		if so.fields["x-amz-c"] != "115" || so.fields["x-amz-w"] != "12" {
			t.Errorf("V3 x-amz-c = %q, x-amz-w = %q; want 115, 12", so.fields["x-amz-c"], so.fields["x-amz-w"])
		}
	} else {
		want["aws:x-amz-cek-alg"] = "AES/GCM/NoPadding"
		if so.fields["x-amz-cek-alg"] != "AES/GCM/NoPadding" || so.fields["x-amz-wrap-alg"] != "kms+context" {
			t.Errorf("V2 x-amz-cek-alg = %q, x-amz-wrap-alg = %q", so.fields["x-amz-cek-alg"], so.fields["x-amz-wrap-alg"])
		}
	}
	if !maps.Equal(so.context, want) {
		t.Errorf("stored encryption context = %v, want %v", so.context, want)
	}
}

// checkAWSMetadata pins the metadata keys AWS's Go clients store, so a change
// on their side shows up here and not as a puzzling failure elsewhere.
func checkAWSMetadata(t testing.TB, so storedObject) {
	t.Helper()
	var want []string
	if so.format == "V3" {
		want = []string{"x-amz-3", "x-amz-c", "x-amz-d", "x-amz-i", "x-amz-m", "x-amz-t",
			"x-amz-unencrypted-content-length", "x-amz-w"}
		// v4.0.0 stores these two empty for a KMS V3 object.
		if so.meta["x-amz-m"] != "" || so.meta["x-amz-unencrypted-content-length"] != "" {
			t.Errorf("v4 V3: x-amz-m = %q, x-amz-unencrypted-content-length = %q; AWS v4.0.0 stores both empty",
				so.meta["x-amz-m"], so.meta["x-amz-unencrypted-content-length"])
		}
	} else {
		want = []string{"x-amz-cek-alg", "x-amz-iv", "x-amz-key-v2", "x-amz-matdesc",
			"x-amz-tag-len", "x-amz-unencrypted-content-length", "x-amz-wrap-alg"}
	}
	if got := sortedKeys(so.meta); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("AWS Go %s object metadata keys = %v, want %v", so.format, got, want)
	}
}

// TestAWSGoKMSWritePolicies: which format each client writes under each
// commitment policy, and which configurations are refused. Every client
// refuses to write under a policy it contradicts.
func TestAWSGoKMSWritePolicies(t *testing.T) {
	s3c := newS3Client(t)
	kc := newKMSClient(t)
	bucket := newBucket(t, s3c)
	keyID := newKMSKey(t, kc)
	ctx := context.Background()

	type want struct {
		p      *peer
		format string // "" = PutObject must fail
	}
	var cases []want
	for _, p := range allPolicies {
		v3format := ""
		if p == policyForbid {
			v3format = "V2"
		}
		v4format := "V3"
		if p == policyForbid {
			v4format = "V2"
		}
		cases = append(cases,
			want{awsV3Peer(t, s3c, kc, keyID, p), v3format},
			want{awsV4Peer(t, s3c, kc, keyID, p), v4format},
			want{libPeer(t, kc, keyID, p, false), v4format},
			want{libPeer(t, kc, keyID, p, true), v4format})
	}
	for _, c := range cases {
		t.Run(c.p.String(), func(t *testing.T) {
			key := "write-policy/" + c.p.keyPart()
			pt := plaintext(t, 100)
			err := c.p.put(ctx, bucket, key, pt, kmsTestContext)
			if c.format == "" {
				if err == nil {
					t.Fatalf("%v wrote an object; its documentation says it cannot write under %s", c.p, c.p.policy.name)
				}
				t.Logf("%v PutObject refused: %v", c.p, err)
				if _, exists := headMetadata(t, s3c, bucket, key); exists {
					t.Fatal("a refused PutObject stored an object")
				}
				return
			}
			if err != nil {
				t.Fatalf("%v PutObject: %v", c.p, err)
			}
			storage := "metadata"
			if c.p.instruction {
				storage = "instruction"
			}
			checkKMSObject(t, inspectObject(t, s3c, bucket, key), c.format, storage, kmsTestContext)
		})
	}

	// A suite or format that contradicts the policy fails at construction.
	cmm3, err := v3materials.NewCryptographicMaterialsManager(v3materials.NewKmsKeyring(kc, keyID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v3client.New(s3c, cmm3, func(o *v3client.EncryptionClientOptions) {
		o.EncryptionAlgorithmSuite = v3algorithms.AlgAES256GCMHkdfSha512CommitKey
	}); err == nil {
		t.Error("v3 New with FORBID_ENCRYPT_ALLOW_DECRYPT and the committing suite succeeded")
	}
	cmm4, err := v4materials.NewCryptographicMaterialsManager(v4materials.NewKmsKeyring(kc, keyID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v4client.New(s3c, cmm4, func(o *v4client.EncryptionClientOptions) {
		o.CommitmentPolicy = v4commitment.FORBID_ENCRYPT_ALLOW_DECRYPT
		o.EncryptionAlgorithmSuite = v4algorithms.AlgAES256GCMHkdfSha512CommitKey
	}); err == nil {
		t.Error("v4 New with FORBID_ENCRYPT_ALLOW_DECRYPT and the committing suite succeeded")
	}
	if _, err := v4client.New(s3c, cmm4, func(o *v4client.EncryptionClientOptions) {
		o.EncryptionAlgorithmSuite = v4algorithms.AlgAES256GCMIV12Tag16NoKDF
	}); err == nil {
		t.Error("v4 New with REQUIRE_ENCRYPT_REQUIRE_DECRYPT and the non-committing suite succeeded")
	}
	for _, bad := range []struct {
		p envelope.CommitmentPolicy
		f envelope.Format
	}{{envelope.ForbidEncryptAllowDecrypt, envelope.FormatV3}, {envelope.RequireEncryptAllowDecrypt, envelope.FormatV2}, {envelope.RequireEncryptRequireDecrypt, envelope.FormatV2}} {
		kr, err := keyring.NewKMS(kc, keyID)
		if err != nil {
			t.Fatal(err)
		}
		p := materials.NewProvider(kr)
		_, err = s3crypto.New(s3c, p, func(o *s3crypto.Options) { o.CommitmentPolicy = bad.p; o.Format = bad.f })
		if !errors.Is(err, envelope.ErrPolicy) {
			t.Errorf("s3crypto.New with %v and %v: err = %v, want ErrPolicy", bad.p, bad.f, err)
		}
	}
}

// matrixResult records one observed cell of the policy × format matrix.
type matrixResult struct {
	writer, format, reader, outcome string
}

// TestAWSGoKMSMatrix: objects written by each client under each policy that
// can write (AWS Go v3 → V2; v4 → V2 or V3; this library → V2 or V3, in
// metadata or an instruction file), with and without an encryption context,
// in every size, are read by each client under each of the three policies.
// Each read is accepted or refused (as a commitment-policy refusal, with no
// plaintext) exactly as the clients' documentation says.
func TestAWSGoKMSMatrix(t *testing.T) {
	s3c := newS3Client(t)
	kc := newKMSClient(t)
	bucket := newBucket(t, s3c)
	keyID := newKMSKey(t, kc)

	writers := []*peer{
		awsV3Peer(t, s3c, kc, keyID, policyForbid),
		awsV4Peer(t, s3c, kc, keyID, policyForbid),
		awsV4Peer(t, s3c, kc, keyID, policyRequireAllow),
		awsV4Peer(t, s3c, kc, keyID, policyRequireRequire),
		libPeer(t, kc, keyID, policyForbid, false),
		libPeer(t, kc, keyID, policyForbid, true),
		libPeer(t, kc, keyID, policyRequireAllow, false),
		libPeer(t, kc, keyID, policyRequireRequire, false),
		libPeer(t, kc, keyID, policyRequireRequire, true),
	}
	var readers []*peer
	for _, p := range allPolicies {
		readers = append(readers, awsV3Peer(t, s3c, kc, keyID, p), awsV4Peer(t, s3c, kc, keyID, p), libPeer(t, kc, keyID, p, false))
	}

	var (
		mu      sync.Mutex
		results = map[matrixResult]bool{}
	)
	record := func(r matrixResult) {
		mu.Lock()
		results[r] = true
		mu.Unlock()
	}
	t.Cleanup(func() { logMatrix(t, results) })

	for _, w := range writers {
		t.Run("writer="+w.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			wantFormat := "V3"
			if w.policy == policyForbid {
				wantFormat = "V2"
			}
			wantStorage := "metadata"
			if w.instruction {
				wantStorage = "instruction"
			}
			// Failures are gathered per reader and outcome, so that one
			// incompatibility is one error, not one per size and context.
			type failure struct {
				n     int
				first string
			}
			failures := map[string]*failure{}
			fail := func(r *peer, what, detail string) {
				k := r.String() + ": " + what
				if failures[k] == nil {
					failures[k] = &failure{first: detail}
				}
				failures[k].n++
			}
			reads := 0
			for _, cc := range contextCases {
				for _, size := range kmsSizes {
					key := fmt.Sprintf("matrix/%s/%s/%d", w.keyPart(), cc.name, size)
					pt := plaintext(t, size)
					if err := w.put(ctx, bucket, key, pt, cc.ec); err != nil {
						t.Fatalf("%v PutObject %s (%d bytes, %s): %v", w, key, size, cc.name, err)
					}
					so := inspectObject(t, s3c, bucket, key)
					checkKMSObject(t, so, wantFormat, wantStorage, cc.ec)
					if w.name != "s3envelope" {
						checkAWSMetadata(t, so)
					}
					for _, r := range readers {
						reads++
						accept := wantFormat == "V3" || r.policy.readsV2()
						got, err := r.get(ctx, bucket, key, cc.ec)
						cell := matrixResult{w.String(), wantFormat + "/" + wantStorage, r.String(), "accept"}
						detail := fmt.Sprintf("%s (%s, %d bytes)", key, cc.name, size)
						switch {
						case err == nil && accept:
							if !bytes.Equal(got, pt) {
								cell.outcome = "WRONG PLAINTEXT"
								fail(r, "plaintext differs", detail)
							}
						case err == nil:
							cell.outcome = "ACCEPTED (should refuse)"
							fail(r, "read an object its policy forbids", detail)
						case accept:
							cell.outcome = "FAILED: " + firstLine(err, bucket, key)
							fail(r, "could not read", detail+": "+err.Error())
						default:
							cell.outcome = "refuse"
							if !r.policyRefusal(err) {
								cell.outcome = "refused for another reason: " + firstLine(err, bucket, key)
								fail(r, "refused, but not as a commitment-policy refusal", detail+": "+err.Error())
							}
							if len(got) != 0 {
								fail(r, "released plaintext of a refused object", detail)
							}
						}
						record(cell)
					}
				}
			}
			for _, k := range slices.Sorted(maps.Keys(failures)) {
				f := failures[k]
				t.Errorf("reading %v's %s/%s objects: %s, %d of %d reads; first: %s",
					w, wantFormat, wantStorage, k, f.n, reads/len(readers), f.first)
			}
		})
	}
}

// firstLine is err's first line, with the bucket and object key elided so
// that the same failure on different objects reads the same.
func firstLine(err error, bucket, key string) string {
	s := strings.NewReplacer(bucket, "<bucket>", key, "<key>").Replace(err.Error())
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// logMatrix logs the observed matrix, one line per writer × reader.
func logMatrix(t testing.TB, results map[matrixResult]bool) {
	cells := map[[3]string][]string{}
	for r := range results {
		k := [3]string{r.writer, r.format, r.reader}
		cells[k] = append(cells[k], r.outcome)
	}
	keys := make([][3]string, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		return a[2] < b[2]
	})
	var b strings.Builder
	b.WriteString("observed policy × format matrix (writer | stored | reader | outcome):\n")
	for _, k := range keys {
		outs := cells[k]
		sort.Strings(outs)
		fmt.Fprintf(&b, "  %-52s | %-14s | %-44s | %s\n", k[0], k[1], k[2], strings.Join(outs, "; "))
	}
	t.Log(b.String())
}

// TestAWSGoKMSContexts: the per-request encryption context, in both
// directions. A reader that expects the stored context reads; one that
// expects another context, or a context from an object stored without one,
// is refused with no plaintext; one that expects nothing reads. A context
// that sets aws:x-amz-cek-alg is refused by every writer.
func TestAWSGoKMSContexts(t *testing.T) {
	s3c := newS3Client(t)
	kc := newKMSClient(t)
	bucket := newBucket(t, s3c)
	keyID := newKMSKey(t, kc)
	ctx := context.Background()

	writers := []*peer{
		awsV3Peer(t, s3c, kc, keyID, policyForbid),
		awsV4Peer(t, s3c, kc, keyID, policyRequireRequire),
		libPeer(t, kc, keyID, policyForbid, false),
		libPeer(t, kc, keyID, policyForbid, true),
		libPeer(t, kc, keyID, policyRequireRequire, false),
		libPeer(t, kc, keyID, policyRequireRequire, true),
	}
	readers := []*peer{
		awsV3Peer(t, s3c, kc, keyID, policyForbid),
		awsV4Peer(t, s3c, kc, keyID, policyRequireAllow),
		libPeer(t, kc, keyID, policyRequireAllow, false),
	}
	for _, w := range writers {
		t.Run(w.String(), func(t *testing.T) {
			withKey, withoutKey := "ctx/"+w.keyPart()+"/with", "ctx/"+w.keyPart()+"/without"
			pt := plaintext(t, 4097)
			if err := w.put(ctx, bucket, withKey, pt, kmsTestContext); err != nil {
				t.Fatalf("%v PutObject with context: %v", w, err)
			}
			if err := w.put(ctx, bucket, withoutKey, pt, nil); err != nil {
				t.Fatalf("%v PutObject without context: %v", w, err)
			}
			reserved := maps.Clone(kmsTestContext)
			reserved["aws:x-amz-cek-alg"] = "AES/GCM/NoPadding"
			if err := w.put(ctx, bucket, "ctx/"+w.keyPart()+"/reserved", pt, reserved); err == nil {
				t.Errorf("%v wrote an object whose context sets aws:x-amz-cek-alg", w)
			}
			for _, r := range readers {
				for _, rc := range []struct {
					name   string
					key    string
					expect map[string]string
					ok     bool
				}{
					{"same context", withKey, kmsTestContext, true},
					{"no expectation", withKey, nil, true},
					{"other context", withKey, kmsOtherContext, false},
					{"context expected, none stored", withoutKey, kmsTestContext, false},
					{"none stored, none expected", withoutKey, nil, true},
				} {
					got, err := r.get(ctx, bucket, rc.key, rc.expect)
					switch {
					case rc.ok && err != nil:
						t.Errorf("%v reading %v's object (%s): %v", r, w, rc.name, err)
					case rc.ok && !bytes.Equal(got, pt):
						t.Errorf("%v reading %v's object (%s): plaintext differs", r, w, rc.name)
					case !rc.ok && err == nil:
						t.Errorf("%v read %v's object (%s); it must refuse", r, w, rc.name)
					case !rc.ok:
						if !r.contextRefusal(err) {
							t.Errorf("%v refused %v's object (%s) for another reason: %v", r, w, rc.name, err)
						}
						if len(got) != 0 {
							t.Errorf("%v released %d bytes of a refused object", r, len(got))
						}
					}
				}
			}
		})
	}
}

// TestAWSGoKMSDiscovery: each side's decrypt-only "any key" KMS keyring
// reads the other's objects (AWS's NewKmsDecryptOnlyAnyKeyKeyring, this
// library's NewKMSDiscovery).
func TestAWSGoKMSDiscovery(t *testing.T) {
	s3c := newS3Client(t)
	kc := newKMSClient(t)
	bucket := newBucket(t, s3c)
	keyID := newKMSKey(t, kc)
	setAWSDefaultEnv(t)
	ctx := context.Background()

	cmm, err := v4materials.NewCryptographicMaterialsManager(v4materials.NewKmsDecryptOnlyAnyKeyKeyring(kc))
	if err != nil {
		t.Fatal(err)
	}
	awsAny, err := v4client.New(s3c, cmm, func(o *v4client.EncryptionClientOptions) {
		o.CommitmentPolicy = v4commitment.REQUIRE_ENCRYPT_ALLOW_DECRYPT
		o.Logger = quietLogger
	})
	if err != nil {
		t.Fatal(err)
	}
	libAny := libKMSClient(t, kc, "", libPolicy(envelope.RequireEncryptAllowDecrypt, false))

	writers := []*peer{
		awsV3Peer(t, s3c, kc, keyID, policyForbid),
		awsV4Peer(t, s3c, kc, keyID, policyRequireRequire),
		libPeer(t, kc, keyID, policyForbid, false),
		libPeer(t, kc, keyID, policyRequireRequire, true),
	}
	for _, w := range writers {
		t.Run(w.String(), func(t *testing.T) {
			key := "discovery/" + w.keyPart()
			pt := plaintext(t, 1000)
			if err := w.put(ctx, bucket, key, pt, kmsTestContext); err != nil {
				t.Fatalf("%v PutObject: %v", w, err)
			}
			if w.name == "s3envelope" {
				got, err := readBody(awsAny.GetObject(awsWithEC(ctx, kmsTestContext), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}))
				if err != nil {
					t.Fatalf("AWS v4 any-key keyring reading %v's object: %v", w, err)
				}
				checkSame(t, "AWS any-key read", got, pt)
				return
			}
			out, err := libAny.GetObject(libWithEC(ctx, kmsTestContext), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			got, err := readBody(out, err)
			if err != nil {
				t.Fatalf("library discovery keyring reading %v's object: %v", w, err)
			}
			checkSame(t, "library discovery read", got, pt)
		})
	}
}

// TestAWSGoKMSHeadObject: this library's HeadObject on AWS's objects reports
// the plaintext length.
func TestAWSGoKMSHeadObject(t *testing.T) {
	s3c := newS3Client(t)
	kc := newKMSClient(t)
	bucket := newBucket(t, s3c)
	keyID := newKMSKey(t, kc)
	lib := libKMSClient(t, kc, keyID, libPolicy(envelope.RequireEncryptAllowDecrypt, false))
	for _, w := range []*peer{
		awsV3Peer(t, s3c, kc, keyID, policyForbid),
		awsV4Peer(t, s3c, kc, keyID, policyForbid),
		awsV4Peer(t, s3c, kc, keyID, policyRequireRequire),
	} {
		t.Run(w.String(), func(t *testing.T) {
			for _, size := range []int{0, 17, 70000} {
				key := fmt.Sprintf("head/%s/%d", w.keyPart(), size)
				if err := w.put(context.Background(), bucket, key, plaintext(t, size), nil); err != nil {
					t.Fatalf("%v PutObject: %v", w, err)
				}
				out, err := lib.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil {
					t.Fatalf("library HeadObject of %v's object: %v", w, err)
				}
				if got := aws.ToInt64(out.ContentLength); got != int64(size) {
					t.Errorf("library HeadObject of %v's %d-byte object: ContentLength %d", w, size, got)
				}
			}
		})
	}
}
