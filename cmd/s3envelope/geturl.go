package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// urlHelp is what get and cat say of --url.
const urlHelp = `--url URL reads an object shared with 'share': it is fetched with plain
HTTP(S), no AWS credentials, and opened with --key (and --desc: the URL
mode does not look at the object first) exactly as an object fetched with
credentials is — nothing released before it authenticates. Pass the second
URL 'share' printed, if any, as --instruction-url. For a managed SSE-C
object, --headers-file FILE (from 'share --headers-out') sends the headers
S3 decrypts with, and no --key is needed.`

// maxInstructionFile bounds what is read of an instruction file: an
// envelope is a few hundred bytes.
const maxInstructionFile = 1 << 20

// fetchURL runs get or cat for --url: the object at o.url, opened to w.
func (o *getOptions) fetchURL(ctx context.Context, g *globals, w io.Writer) (int64, error) {
	object, err := url.Parse(o.url)
	if err != nil || (object.Scheme != "https" && object.Scheme != "http") || object.Host == "" {
		return 0, usageErr("--url: want the http(s) URL that 'share' printed")
	}
	switch {
	case o.rng != "":
		return 0, usageErr("--range does not apply to --url: a shared object is opened whole")
	case o.headersFile != "" && (len(o.keys.specs) > 0 || o.instructionURL != ""):
		return 0, usageErr("--headers-file is for managed SSE-C objects, which S3 decrypts: no --key or --instruction-url")
	case o.headersFile == "" && len(o.keys.specs) == 0:
		return 0, usageErr("give the master key with --key (and its --desc), or --headers-file for an SSE-C object")
	case o.headersFile != "" && object.Scheme != "https":
		return 0, setupErr(fmt.Errorf("%w: the headers hold the object's key; the URL must be https", s3crypto.ErrInsecureEndpoint))
	}
	hc, err := g.httpClient()
	if err != nil {
		return 0, err
	}
	p := g.newProgress(o.name(), redact(object), "bytes", -1)
	n, err := o.openURL(ctx, g, hc, object, p, w)
	if err != nil {
		p.Stop()
		return n, err
	}
	p.Finish()
	return n, nil
}

func (o *getOptions) openURL(ctx context.Context, g *globals, hc *http.Client, object *url.URL, p *progress, w io.Writer) (int64, error) {
	var header http.Header
	var opener *s3crypto.Client
	var instruction []byte
	if o.headersFile != "" {
		h, err := readHeaders(o.headersFile)
		if err != nil {
			return 0, setupErr(err)
		}
		header = h
	} else {
		prov, _, err := o.keys.provider(ctx, g, forReading)
		if err != nil {
			return 0, err
		}
		// Opening makes no request: the S3 client is never called.
		opener, err = s3crypto.New(s3.New(s3.Options{}), prov, func(so *s3crypto.Options) {
			so.CommitmentPolicy = envelope.RequireEncryptAllowDecrypt
			if o.requireV3 {
				so.CommitmentPolicy = envelope.RequireEncryptRequireDecrypt
			}
		})
		if err != nil {
			return 0, setupErr(err)
		}
		if o.instructionURL != "" {
			if instruction, err = fetchInstruction(ctx, hc, o.instructionURL); err != nil {
				return 0, err
			}
		}
	}
	resp, err := get(ctx, hc, object.String(), header)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	p.SetTotal(resp.ContentLength)
	resp.Body = readCloser{countingReader{resp.Body, p}, resp.Body}
	if opener == nil {
		// SSE-C: S3 decrypted and checked the key; the body is the
		// plaintext, held to its length.
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: %s", redact(object), httpStatus(resp))
		}
		n, err := io.Copy(w, resp.Body)
		if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
			err = fmt.Errorf("%s: the response ended after %d of %d bytes", redact(object), n, resp.ContentLength)
		}
		return n, err
	}
	out, err := opener.OpenResponse(ctx, resp, instruction)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", redact(object), err)
	}
	defer out.Body.Close()
	return io.Copy(w, out.Body)
}

func fetchInstruction(ctx context.Context, hc *http.Client, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, usageErr("--instruction-url: want the second http(s) URL that 'share' printed")
	}
	resp, err := get(ctx, hc, raw, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the instruction file %s: %s", redact(u), httpStatus(resp))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxInstructionFile+1))
	if err == nil && len(b) > maxInstructionFile {
		err = fmt.Errorf("%w: over %d bytes", envelope.ErrMalformed, maxInstructionFile)
	}
	if err != nil {
		return nil, fmt.Errorf("the instruction file %s: %w", redact(u), err)
	}
	return b, nil
}

func get(ctx context.Context, hc *http.Client, raw string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, usageErr("--url: %v", err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	// A body stored gzip'd must not be decompressed on the way: it is
	// ciphertext, opened as stored.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, query and all
		}
		u, _ := url.Parse(raw)
		return nil, fmt.Errorf("fetching %s: %w", redact(u), err)
	}
	return resp, nil
}

// httpStatus says what a failed response was, with S3's error code when
// its body has one.
func httpStatus(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Code, Message string
	}
	if xmlErr := xml.Unmarshal(b, &e); xmlErr == nil && e.Code != "" {
		return fmt.Sprintf("%s: %s: %s", resp.Status, e.Code, e.Message)
	}
	return resp.Status
}

// redact is a URL without its query: a presigned URL's signature is a
// bearer credential, not for error messages and progress lines.
func redact(u *url.URL) string {
	if u == nil {
		return "the URL"
	}
	c := *u
	c.RawQuery, c.Fragment, c.User = "", "", nil
	return c.String()
}

type readCloser struct {
	io.Reader
	io.Closer
}

// httpClient is a plain HTTP client trusting what the AWS SDK would:
// --ca-bundle, else AWS_CA_BUNDLE, else the system's roots.
func (g *globals) httpClient() (*http.Client, error) {
	bundle := g.caBundle
	if bundle == "" {
		bundle = g.con.getenv("AWS_CA_BUNDLE")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	if bundle != "" {
		pem, err := os.ReadFile(bundle)
		if err != nil {
			return nil, setupErr(fmt.Errorf("the CA bundle: %w", err))
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, setupErr(fmt.Errorf("the CA bundle %s holds no PEM certificate", bundle))
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, CheckRedirect: refuseRedirect}, nil
}

// runURL is get (FILE or -) or cat for --url.
func (o *getOptions) runURL(ctx context.Context, g *globals, args []string) error {
	dest := "-"
	if !o.cat {
		dest = args[0]
	}
	if dest == "-" {
		_, err := o.fetchURL(ctx, g, g.con.stdout)
		return err
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		u, _ := url.Parse(o.url)
		dest = filepath.Join(dest, path.Base(u.Path))
	}
	out, err := createOutput(dest, o.force)
	if err != nil {
		return err
	}
	defer out.discard()
	n, err := o.fetchURL(ctx, g, out.f)
	if err != nil {
		return err
	}
	if err := out.commit(); err != nil {
		return err
	}
	if g.json {
		return g.emit(getResult{File: dest, Size: n})
	}
	fmt.Fprintf(g.con.stdout, "get file=%s size=%d\n", dest, n)
	return nil
}

// refuseRedirect refuses to follow a redirect: net/http would send the
// request's headers on to wherever it points — for an SSE-C share, the
// object's key — and S3 does not redirect a presigned GET it serves.
func refuseRedirect(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("refusing to follow a redirect to %s", redact(req.URL))
}
