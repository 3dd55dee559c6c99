package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime/debug"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// globals are the flags every command takes, and what they set up.
type globals struct {
	con *console

	endpointURL    string // S3-compatible endpoint (path-style addressing)
	kmsEndpointURL string
	profile        string
	region         string
	caBundle       string
	json           bool
	quiet          bool

	cfg       *aws.Config
	s3Client  *s3.Client
	kmsClient *kms.Client
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.endpointURL, "endpoint-url", "", "S3-compatible endpoint `URL` (path-style addressing); default: AWS")
	fs.StringVar(&g.kmsEndpointURL, "kms-endpoint-url", "", "KMS-compatible endpoint `URL` for kms: keys; default: AWS")
	fs.StringVar(&g.profile, "profile", "", "AWS profile from the shared config and credentials files")
	fs.StringVar(&g.region, "region", "", "AWS region (default: from the AWS config, else us-east-1)")
	fs.StringVar(&g.caBundle, "ca-bundle", "", "PEM `file` of the certificate authorities to trust for TLS (as AWS_CA_BUNDLE)")
	fs.BoolVar(&g.json, "json", false, "write the result to stdout as JSON")
	fs.BoolVar(&g.quiet, "quiet", false, "no progress output")
}

// awsConfig loads the AWS SDK's configuration once, the way the AWS CLI
// does: environment, shared files, --profile, --region.
func (g *globals) awsConfig(ctx context.Context) (aws.Config, error) {
	if g.cfg != nil {
		return *g.cfg, nil
	}
	var opts []func(*awsconfig.LoadOptions) error
	if g.profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(g.profile))
	}
	if g.region != "" {
		opts = append(opts, awsconfig.WithRegion(g.region))
	}
	if g.caBundle != "" {
		f, err := os.Open(g.caBundle)
		if err != nil {
			return aws.Config{}, setupErr(fmt.Errorf("--ca-bundle: %w", err))
		}
		defer f.Close()
		opts = append(opts, awsconfig.WithCustomCABundle(f))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, setupErr(fmt.Errorf("loading the AWS configuration: %w", err))
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	g.cfg = &cfg
	return cfg, nil
}

// s3 returns the S3 client (plain: the commands wrap it).
func (g *globals) s3(ctx context.Context) (*s3.Client, error) {
	if g.s3Client != nil {
		return g.s3Client, nil
	}
	if err := checkEndpoint("--endpoint-url", g.endpointURL); err != nil {
		return nil, err
	}
	cfg, err := g.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	g.s3Client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		if g.endpointURL != "" {
			o.BaseEndpoint = aws.String(g.endpointURL)
			o.UsePathStyle = true
		}
	})
	return g.s3Client, nil
}

// kms returns the KMS client for kms: keys.
func (g *globals) kms(ctx context.Context) (*kms.Client, error) {
	if g.kmsClient != nil {
		return g.kmsClient, nil
	}
	if err := checkEndpoint("--kms-endpoint-url", g.kmsEndpointURL); err != nil {
		return nil, err
	}
	cfg, err := g.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	g.kmsClient = kms.NewFromConfig(cfg, func(o *kms.Options) {
		if g.kmsEndpointURL != "" {
			o.BaseEndpoint = aws.String(g.kmsEndpointURL)
		}
	})
	return g.kmsClient, nil
}

func checkEndpoint(flagName, u string) error {
	if u == "" {
		return nil
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return usageErr("%s %q: want http(s)://host[:port]", flagName, u)
	}
	return nil
}

// emit writes v to stdout as one JSON document (--json).
func (g *globals) emit(v any) error {
	enc := json.NewEncoder(g.con.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// objectURI is an s3://bucket/key argument; key may be empty (a bucket)
// or a prefix, as the command allows.
type objectURI struct {
	Bucket, Key string
}

func (u objectURI) String() string { return "s3://" + u.Bucket + "/" + u.Key }

// parseURI reads s3://bucket[/key]. needKey says whether a key is required.
func parseURI(arg string, needKey bool) (objectURI, error) {
	rest, ok := strings.CutPrefix(arg, "s3://")
	if !ok {
		return objectURI{}, usageErr("%q is not an S3 URI: want s3://bucket/key", arg)
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return objectURI{}, usageErr("%q names no bucket: want s3://bucket/key", arg)
	}
	if needKey && key == "" {
		return objectURI{}, usageErr("%q names no object: want s3://bucket/key", arg)
	}
	return objectURI{Bucket: bucket, Key: key}, nil
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
