package testvectors

// Helpers shared by the KMS cross-client tests (awsgo_test.go, rubykms_test.go):
// the KMS-compatible server (local-kms, started by ./scripts/test on
// 127.0.0.1), fresh KMS keys, and this library's KMS clients.

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/s3envelope/s3envelope/envelope"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/s3crypto"
)

const kmsRunHint = "run ./scripts/test from the repository root: it builds and starts localkms (local-kms on 127.0.0.1) and sets S3ENVELOPE_KMS_ENDPOINT"

// kmsSizes are the plaintext sizes of the KMS cross-client tests: empty, one
// byte, not a block multiple, more than Ruby's 64 KiB chunks, and 1 MiB + 3.
var kmsSizes = []int{0, 1, 17, 70000, 1<<20 + 3}

// kmsTestContext is the per-request encryption context of the "with context"
// cases (ASCII only: S3 sends other characters double-encoded, and not every
// client decodes that).
var kmsTestContext = map[string]string{"tenant": "acme", "purpose": "cross-client"}

// kmsOtherContext is a context that no test object is stored with.
var kmsOtherContext = map[string]string{"tenant": "evil", "purpose": "cross-client"}

// contextCase names an encryption context for subtest names; nil is none.
type contextCase struct {
	name string
	ec   map[string]string
}

var contextCases = []contextCase{{"no-context", nil}, {"context", kmsTestContext}}

// kmsEnv is the KMS server the tests run against.
type kmsEnv struct{ Endpoint, Region string }

// requireKMS returns the KMS server's settings, failing (never skipping) the
// test when they are absent.
func requireKMS(t testing.TB) kmsEnv {
	t.Helper()
	e := kmsEnv{Endpoint: os.Getenv("S3ENVELOPE_KMS_ENDPOINT"), Region: os.Getenv("S3ENVELOPE_KMS_REGION")}
	if e.Endpoint == "" {
		t.Fatalf("S3ENVELOPE_KMS_ENDPOINT is not set; %s", kmsRunHint)
	}
	if e.Region == "" {
		e.Region = "us-east-1"
	}
	return e
}

// kmsAccessKey and kmsSecretKey sign KMS requests. local-kms checks no
// signatures, so any static credentials do.
const (
	kmsAccessKey = "AKIDLOCALKMS"
	kmsSecretKey = "local-kms-checks-no-signatures"
)

// newKMSClient returns a KMS client for the test server.
func newKMSClient(t testing.TB) *kms.Client {
	t.Helper()
	e := requireKMS(t)
	return kms.New(kms.Options{
		BaseEndpoint: aws.String(e.Endpoint),
		Region:       e.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(kmsAccessKey, kmsSecretKey, ""),
	})
}

// newKMSKey creates a fresh symmetric KMS key and returns its ARN.
func newKMSKey(t testing.TB, c *kms.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("s3envelope testvectors " + t.Name())})
	if err != nil {
		t.Fatalf("KMS CreateKey: %v; %s", err, kmsRunHint)
	}
	if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.Arn) == "" {
		t.Fatal("KMS CreateKey returned no key ARN")
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// localKMSAccount is the account local-kms names in its key ARNs
// (./scripts/test starts it with its default), trusted by discovery keys.
const localKMSAccount = "111122223333"

// libKMSClient returns this library's client with KMS key keyID (or, for "",
// a discovery keyring) as its master key, configured by opts.
func libKMSClient(t testing.TB, kc *kms.Client, keyID string, opts ...func(*s3crypto.Options)) *s3crypto.Client {
	t.Helper()
	var kr keyring.Keyring
	var err error
	if keyID == "" {
		kr, err = keyring.NewKMSDiscovery(kc, keyring.DiscoveryFilter{Partition: "aws", AccountIDs: []string{localKMSAccount}})
	} else {
		kr, err = keyring.NewKMS(kc, keyID)
	}
	if err != nil {
		t.Fatalf("keyring.NewKMS: %v", err)
	}
	return newCryptoClient(t, kr, opts...)
}

// libPolicy returns an option setting the library's commitment policy (and
// storage), leaving the format to the policy.
func libPolicy(p envelope.CommitmentPolicy, instruction bool) func(*s3crypto.Options) {
	return func(o *s3crypto.Options) {
		o.CommitmentPolicy = p
		o.InstructionFile = instruction
	}
}

// libWithEC returns ctx carrying ec for this library, or ctx for a nil ec.
func libWithEC(ctx context.Context, ec map[string]string) context.Context {
	if ec == nil {
		return ctx
	}
	return keyring.WithEncryptionContext(ctx, maps.Clone(ec))
}

var awsEnvOnce sync.Once

// setAWSDefaultEnv points the AWS SDK's default configuration at the test
// servers. AWS's Go S3 Encryption Clients (v3.2.0, v4.0.0) read an
// instruction file not through the S3 client they were given but through a
// new one made by config.LoadDefaultConfig (internal.DefaultLoadStrategy
// has no client), so reading instruction files needs the environment to say
// where S3 is. The machine's own AWS configuration files are kept out.
func setAWSDefaultEnv(t testing.TB) {
	t.Helper()
	e := requireS3(t)
	awsEnvOnce.Do(func() {
		none := filepath.Join(keysDir, "no-such-aws-config")
		for k, v := range map[string]string{
			"AWS_ENDPOINT_URL_S3":         e.Endpoint,
			"AWS_ACCESS_KEY_ID":           e.AccessKey,
			"AWS_SECRET_ACCESS_KEY":       e.SecretKey,
			"AWS_REGION":                  e.Region,
			"AWS_CONFIG_FILE":             none,
			"AWS_SHARED_CREDENTIALS_FILE": none,
			"AWS_EC2_METADATA_DISABLED":   "true",
		} {
			os.Setenv(k, v)
		}
		for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
			os.Unsetenv(k)
		}
	})
}

func getInput(bucket, key string) *s3.GetObjectInput {
	return &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
}

func putInput(bucket, key string, data []byte) *s3.PutObjectInput {
	return &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}
}
