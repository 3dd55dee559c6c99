package batchops

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// SecretsManagerAPI is the Secrets Manager call that fetches AES or RSA key
// material; *secretsmanager.Client has it.
type SecretsManagerAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SSMAPI is the Systems Manager Parameter Store call that fetches AES or
// RSA key material (a SecureString, decrypted); *ssm.Client has it.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Sources are where master keys named in the function's environment come
// from. A nil source refuses the keys that need it.
type Sources struct {
	KMS            keyring.KMSClient
	SecretsManager SecretsManagerAPI
	SSM            SSMAPI
}

// Provider returns the materials provider of a rotation: newKey is the
// current master key (it wraps), oldKeys still unwrap. Each key is named
// as
//
//	kms:KEY          a KMS key ID, ARN or alias
//	aes:SOURCE?DESC  an AES key (raw, hex or base64, as keyring.ParseAES)
//	rsa:SOURCE?DESC  an RSA key in PEM (as keyring.ParseRSA)
//
// where SOURCE is secretsmanager:NAME, ssm:NAME (a SecureString) or
// file:PATH, and DESC the key's description as a URL query (kid=2026).
// Key bytes are never in an error.
func (s Sources) Provider(ctx context.Context, newKey string, oldKeys ...string) (materials.Provider, error) {
	current, err := s.key(ctx, newKey)
	if err != nil {
		return nil, fmt.Errorf("batchops: the new master key: %w", err)
	}
	var others []keyring.Keyring
	for _, spec := range oldKeys {
		k, err := s.key(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("batchops: an old master key: %w", err)
		}
		others = append(others, k)
	}
	return materials.NewProvider(current, others...), nil
}

func (s Sources) key(ctx context.Context, spec string) (keyring.Keyring, error) {
	kind, rest, _ := strings.Cut(strings.TrimSpace(spec), ":")
	if kind == "kms" {
		if s.KMS == nil {
			return nil, fmt.Errorf("%s: no KMS client", spec)
		}
		return keyring.NewKMS(s.KMS, rest)
	}
	if kind != "aes" && kind != "rsa" {
		return nil, fmt.Errorf("%q: a master key is kms:KEY, aes:SOURCE?DESC or rsa:SOURCE?DESC", spec)
	}
	source, query := rest, ""
	if i := strings.LastIndexByte(rest, '?'); i >= 0 {
		source, query = rest[:i], rest[i+1:]
	}
	q, err := url.ParseQuery(query)
	if err != nil || len(q) == 0 {
		return nil, fmt.Errorf("%s: the key's description (?kid=...) is missing or malformed; it is stored with every object", kind+":"+source)
	}
	desc := make(map[string]string, len(q))
	for k, v := range q {
		desc[k] = v[0]
	}
	b, err := s.material(ctx, source)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind+":"+source, err)
	}
	defer clear(b)
	if kind == "aes" {
		return keyring.ParseAES(b, desc)
	}
	return keyring.ParseRSA(b, desc)
}

// material fetches key bytes; the caller clears them.
func (s Sources) material(ctx context.Context, source string) ([]byte, error) {
	where, name, _ := strings.Cut(source, ":")
	if name == "" {
		return nil, errors.New("the key material's source is secretsmanager:NAME, ssm:NAME or file:PATH")
	}
	switch where {
	case "file":
		return os.ReadFile(name)
	case "secretsmanager":
		if s.SecretsManager == nil {
			return nil, errors.New("no Secrets Manager client")
		}
		out, err := s.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &name})
		if err != nil {
			return nil, err
		}
		if out.SecretBinary != nil {
			return out.SecretBinary, nil
		}
		return []byte(aws.ToString(out.SecretString)), nil
	case "ssm":
		if s.SSM == nil {
			return nil, errors.New("no SSM client")
		}
		out, err := s.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: &name, WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, err
		}
		if out.Parameter == nil {
			return nil, errors.New("SSM returned no parameter")
		}
		return []byte(aws.ToString(out.Parameter.Value)), nil
	}
	return nil, fmt.Errorf("unknown key material source %q (secretsmanager, ssm or file)", where)
}

// FromEnv returns the Handler the function is deployed as, configured by
// getenv (os.Getenv in the function):
//
//	BATCHOPS_NEW_KEY           the new master key (see Sources.Provider)
//	BATCHOPS_OLD_KEYS          the old ones, comma-separated
//	BATCHOPS_DRY_RUN           Options.DryRun (true/false; default false)
//	BATCHOPS_ENFORCE_ROTATION  Options.EnforceRotation (default false)
//	BATCHOPS_REENCRYPT         Options.ReEncrypt (default: the library's)
//	BATCHOPS_RESERVE           Options.Reserve (a Go duration)
//	BATCHOPS_S3_PATH_STYLE     true for an S3-compatible server
//
// Credentials, region and endpoints are the SDK's own settings
// (AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_KMS, ...).
func FromEnv(ctx context.Context, getenv func(string) string) (*Handler, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("batchops: AWS configuration: %w", err)
	}
	pathStyle, err := envBool(getenv, "BATCHOPS_S3_PATH_STYLE")
	if err != nil {
		return nil, err
	}
	api := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })
	src := Sources{
		KMS:            kms.NewFromConfig(cfg),
		SecretsManager: secretsmanager.NewFromConfig(cfg),
		SSM:            ssm.NewFromConfig(cfg),
	}
	newKey := getenv("BATCHOPS_NEW_KEY")
	if newKey == "" {
		return nil, errors.New("batchops: BATCHOPS_NEW_KEY is not set")
	}
	var old []string
	for spec := range strings.SplitSeq(getenv("BATCHOPS_OLD_KEYS"), ",") {
		if spec = strings.TrimSpace(spec); spec != "" {
			old = append(old, spec)
		}
	}
	p, err := src.Provider(ctx, newKey, old...)
	if err != nil {
		return nil, err
	}
	client, err := s3crypto.New(api, p)
	if err != nil {
		return nil, err
	}
	var opts Options
	if opts.DryRun, err = envBool(getenv, "BATCHOPS_DRY_RUN"); err != nil {
		return nil, err
	}
	if opts.EnforceRotation, err = envBool(getenv, "BATCHOPS_ENFORCE_ROTATION"); err != nil {
		return nil, err
	}
	if v := getenv("BATCHOPS_REENCRYPT"); v != "" {
		b, err := envBool(getenv, "BATCHOPS_REENCRYPT")
		if err != nil {
			return nil, err
		}
		opts.ReEncrypt = &b
	}
	if v := getenv("BATCHOPS_RESERVE"); v != "" {
		if opts.Reserve, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("batchops: BATCHOPS_RESERVE: %w", err)
		}
	}
	return New(client, api, func(o *Options) { *o = opts })
}

func envBool(getenv func(string) string, name string) (bool, error) {
	v := getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("batchops: %s=%q is not true or false", name, v)
	}
	return b, nil
}
