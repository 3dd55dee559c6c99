package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/keyring"
	"github.com/s3envelope/s3envelope/materials"
	"github.com/s3envelope/s3envelope/s3crypto"
)

func init() {
	register(&command{
		name:    "share",
		summary: "make a presigned URL that fetches an encrypted object without AWS credentials",
		usage:   "[flags] s3://bucket/key",
		help: `Share presigns a GET of an encrypted object: anyone holding the URL can fetch
its bytes, until it expires (--expires, at most 7 days), with any HTTP client
and no AWS credentials. What they fetch is still ciphertext: to read it they
need the master key (or, for a KMS key, permission to use it), and open it
with 's3envelope get --url' or the library (s3crypto.Client.OpenResponse).

The URL is printed on stdout. When the object's envelope is in an instruction
file (<key>.instruction), its URL is printed too (the second line; the
recipient passes it as --instruction-url). Nothing here needs a master key:
the envelope is found by a HEAD, nothing is unwrapped.

With --sse-c the object is a managed SSE-C object: S3 decrypts it for whoever
sends the right headers, and those headers hold the object's data key. They
are never printed: --headers-out FILE writes them (mode 0600) for the
recipient's 'get --url ... --headers-file FILE'. Hand that file over as you
would a key, over an encrypted channel. SSE-C needs an https endpoint; --sse-c
needs the master key (--key) to find the object's data key.

A presigned PUT cannot encrypt: S3 stores the bytes its sender sends. To let
someone upload an encrypted object, they run the sealing (this command's put,
or the library) with a master key of their own or an RSA public key.

Examples:
  s3envelope share s3://my-bucket/report.pdf --expires 24h
  url=$(s3envelope share s3://my-bucket/report.pdf | head -n1)
  s3envelope get --url "$url" --key master.key --desc kid=2026 report.pdf

  s3envelope share --sse-c s3://my-bucket/scan.tiff --key master.key --desc kid=2026 \
      --headers-out scan.headers
  s3envelope get --url "$url" --headers-file scan.headers scan.tiff`,
		register: func(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
			var o shareOptions
			o.keys.register(fs, "with --sse-c, the master key that wraps the object's data key")
			fs.DurationVar(&o.expires, "expires", time.Hour, "how long the URL works (at most 168h)")
			fs.BoolVar(&o.sseC, "sse-c", false, "the object is a managed SSE-C object (its key in <key>.ssec)")
			fs.StringVar(&o.headersOut, "headers-out", "", "with --sse-c, the `file` to write the headers the recipient must send (created 0600, never overwritten)")
			return func(ctx context.Context, g *globals, args []string) error { return share(ctx, g, o, args) }
		},
	})
}

type shareOptions struct {
	keys       keyFlags
	expires    time.Duration
	sseC       bool
	headersOut string
}

// maxPresignExpiry is SigV4's limit for a presigned URL.
const maxPresignExpiry = 7 * 24 * time.Hour

func share(ctx context.Context, g *globals, o shareOptions, args []string) error {
	if len(args) != 1 {
		return usageErr("give one object: s3://bucket/key")
	}
	obj, err := parseURI(args[0], true)
	if err != nil {
		return err
	}
	switch {
	case o.expires <= 0 || o.expires > maxPresignExpiry:
		return usageErr("--expires must be more than 0 and at most 168h (S3's limit for a presigned URL)")
	case o.sseC && o.headersOut == "":
		return usageErr("--sse-c needs --headers-out FILE: the headers hold the object's data key and are never printed")
	case !o.sseC && o.headersOut != "":
		return usageErr("--headers-out is for --sse-c objects; a client-side encrypted object needs no headers")
	case !o.sseC && len(o.keys.specs) > 0:
		return usageErr("presigning a client-side encrypted object needs no --key (nothing is unwrapped)")
	}
	api, err := g.s3(ctx)
	if err != nil {
		return err
	}
	in := &s3.GetObjectInput{Bucket: &obj.Bucket, Key: &obj.Key}
	expiry := func(po *s3.PresignOptions) { po.Expires = o.expires }
	pc := s3.NewPresignClient(api)
	var p *s3crypto.PresignedObject
	if o.sseC {
		provider, _, err := o.keys.provider(ctx, g, forReading)
		if err != nil {
			return err
		}
		c, err := s3crypto.NewSSEC(api, provider)
		if err != nil {
			return setupErr(err)
		}
		// Refuse to overwrite before S3 is asked for anything.
		if _, err := os.Lstat(o.headersOut); err == nil {
			return setupErr(fmt.Errorf("--headers-out %s exists; not overwriting it", o.headersOut))
		}
		if p, err = c.PresignGetObject(ctx, pc, in, expiry); err != nil {
			if errors.Is(err, s3crypto.ErrInsecureEndpoint) {
				return setupErr(err)
			}
			return err
		}
		if err := writeHeaders(o.headersOut, p.Header()); err != nil {
			return setupErr(err)
		}
	} else {
		c, err := s3crypto.New(api, presignOnly())
		if err != nil {
			return setupErr(err)
		}
		if p, err = c.PresignGetObject(ctx, pc, in, expiry); err != nil {
			return err
		}
	}
	expires := time.Now().Add(o.expires).UTC().Truncate(time.Second)
	if g.json {
		return g.emit(map[string]any{
			"object": obj.String(), "url": p.URL, "instructionUrl": p.InstructionURL,
			"headersFile": o.headersOut, "expires": expires,
		})
	}
	fmt.Fprintln(g.con.stdout, p.URL)
	if p.InstructionURL != "" {
		fmt.Fprintln(g.con.stdout, p.InstructionURL)
	}
	what := "URL"
	if p.InstructionURL != "" {
		what = "URLs (the object, then its instruction file: pass it as --instruction-url)"
	}
	fmt.Fprintf(g.con.stderr, "%s: %s valid until %s\n", obj, what, expires.Format(time.RFC3339))
	if o.headersOut != "" {
		fmt.Fprintf(g.con.stderr, "%s: the headers to send are in %s — they hold the object's key: hand the file over as you would a key\n", obj, o.headersOut)
	}
	return nil
}

// presignOnly is the provider of a Client that only presigns: presigning
// unwraps nothing, and New needs a provider. Its one master key is random
// and forgotten, so it can neither read nor have written anything.
func presignOnly() materials.Provider {
	k := make([]byte, 32)
	rand.Read(k)
	defer clear(k)
	aes, err := keyring.NewAES(k, map[string]string{"s3envelope": "presign-only"})
	if err != nil {
		panic("s3envelope: a 32-byte AES key was refused: " + err.Error())
	}
	return materials.NewProvider(aes)
}

// writeHeaders writes h, one "Name: value" line each, to a new file only
// its owner can read.
func writeHeaders(path string, h http.Header) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--headers-out: %w", err)
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		for _, v := range h[name] {
			b.WriteString(name + ": " + v + "\n")
		}
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("--headers-out: %w", err)
	}
	return nil
}

// readHeaders reads a file written by writeHeaders.
func readHeaders(path string) (http.Header, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--headers-file: %w", err)
	}
	defer clear(b)
	h := http.Header{}
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "" {
			// The line may hold a key: say where, not what.
			return nil, fmt.Errorf("--headers-file %s: line %d is not \"Name: value\"", path, i+1)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return h, nil
}
