package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3envelope/s3envelope/envelope"
	"github.com/s3envelope/s3envelope/s3crypto"
)

// putThreshold is the file size from which put stores an object by a
// multipart upload (s3crypto.Uploader, parts of 8 MiB sent five at a
// time): below it one PutObject is as fast and makes one request.
const putThreshold = 16 << 20

func init() {
	register(&command{
		name:    "put",
		summary: "encrypt a file (or stdin) and upload it",
		usage:   "[flags] FILE|- s3://bucket/key",
		help: `Put encrypts FILE, or stdin for "-", under a fresh data key in this
process and stores it as s3://bucket/key: S3 receives only ciphertext and
the envelope (the data key wrapped by the master key, with its
description).

Master key (--key): an AES key file, an RSA key file (the public key is
enough: whoever holds the private key reads), env:NAME, or kms:ID (a KMS key
ID, ARN or alias). An AES or RSA key needs its --desc, stored with the
object: readers find their key by it. If several --key are given, the first
wraps.

--format v3 (the default: AWS's key-committing format, which AWS's S3
Encryption Client v4 reads), v2 (for readers that predate V3; no key
commitment), or segmented (this tool's own: authenticated byte ranges with
get --range, parallel parts, no 64 GiB limit; AWS's clients cannot read it).
--instruction-file stores the envelope in s3://bucket/key.instruction
instead of the object's metadata (which S3 limits to 2 KiB).

Files from 16 MiB, and stdin of any length past one part, are stored by a
multipart upload (parts of 8 MiB, five at a time; a V2/V3 object is still
one GCM stream); Ctrl-C aborts it, leaving no parts behind. Smaller files,
and a shorter stdin, take one PutObject. Progress goes to stderr; the
summary (key, size, format, parts, ETag) to stdout, as JSON with --json.

Examples:
  s3envelope put --key backup.key --desc key=backup db.dump s3://bucket/db.dump
  pg_dump mydb | s3envelope put --key kms:alias/backup - s3://bucket/mydb.sql
  s3envelope put --key team.pub --desc key=team --format segmented big.iso s3://bucket/big.iso
  s3envelope put --key env:MASTER_KEY --desc key=app --instruction-file \
      --content-type application/json --metadata team=ops data.json s3://bucket/data.json`,
		register: func(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
			o := &putOptions{}
			o.keys.register(fs, "the master key to encrypt with")
			fs.StringVar(&o.format, "format", "v3", "the stored format: v3, v2 or segmented")
			fs.BoolVar(&o.instructionFile, "instruction-file", false, "store the envelope in <key>.instruction, not in the object's metadata")
			fs.StringVar(&o.contentType, "content-type", "", "the object's Content-Type")
			fs.StringVar(&o.metadata, "metadata", "", "user metadata for the object: k=v[,k=v...] (stored in clear)")
			return o.run
		},
	})
}

type putOptions struct {
	keys            keyFlags
	format          string
	instructionFile bool
	contentType     string
	metadata        string
}

// putResult is put's summary.
type putResult struct {
	URI       string `json:"uri"`
	Size      int64  `json:"size"`
	Format    string `json:"format"`
	Envelope  string `json:"envelope"` // "metadata" or "instruction-file"
	Parts     int    `json:"parts"`
	MasterKey string `json:"masterKey"` // its description, or kms:ID
	ETag      string `json:"etag,omitempty"`
	VersionID string `json:"versionId,omitempty"`
}

func (o *putOptions) run(ctx context.Context, g *globals, args []string) error {
	if len(args) != 2 {
		return usageErr("want FILE (or - for stdin) and s3://bucket/key, got %d arguments", len(args))
	}
	u, err := parseURI(args[1], true)
	if err != nil {
		return err
	}
	opts := s3crypto.Options{InstructionFile: o.instructionFile}
	switch strings.ToLower(o.format) {
	case "v3":
		opts.Format = envelope.FormatV3
	case "v2":
		opts.Format, opts.CommitmentPolicy = envelope.FormatV2, envelope.ForbidEncryptAllowDecrypt
	case "segmented":
		opts.Format = envelope.FormatSegmented
	default:
		return usageErr("--format %q: want v3, v2 or segmented", o.format)
	}
	var meta map[string]string
	if o.metadata != "" {
		if meta, err = parseDesc(o.metadata); err != nil {
			return usageErr("--metadata %q: want k=v[,k=v...]", o.metadata)
		}
	}

	var body io.Reader
	size := int64(-1)
	if args[0] == "-" {
		body = g.con.stdin
	} else {
		f, err := os.Open(args[0])
		if err != nil {
			return setupErr(err) // names the file and why
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return setupErr(err)
		}
		if !fi.Mode().IsRegular() {
			return setupErr(fmt.Errorf("%s is not a regular file: for a stream, give - and pipe it to stdin", args[0]))
		}
		body, size = f, fi.Size()
	}

	prov, keys, err := o.keys.provider(ctx, g, forWriting)
	if err != nil {
		return err
	}
	api, err := g.s3(ctx)
	if err != nil {
		return err
	}
	cl, err := s3crypto.New(api, prov, func(co *s3crypto.Options) { *co = opts })
	if err != nil {
		return setupErr(err)
	}
	in := &s3.PutObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key), Body: body, Metadata: meta}
	if o.contentType != "" {
		in.ContentType = aws.String(o.contentType)
	}

	p := g.newProgress("put", u.String(), "bytes", size)
	res := putResult{URI: u.String(), Format: cl.Options().Format.String(), Envelope: "metadata", Parts: 1, MasterKey: describeKey(keys[0])}
	if o.instructionFile {
		res.Envelope = "instruction-file"
	}
	if size >= 0 && size < putThreshold {
		var out *s3.PutObjectOutput
		in.ContentLength = aws.Int64(size)
		out, err = cl.PutObject(ctx, in)
		if err == nil {
			p.Set(size, "")
			res.Size, res.ETag, res.VersionID = size, aws.ToString(out.ETag), aws.ToString(out.VersionId)
		}
	} else {
		up := s3crypto.NewUploader(cl, func(uo *s3crypto.UploaderOptions) {
			uo.Progress = func(done, total int64) {
				p.SetTotal(total)
				p.Set(done, "")
			}
		})
		var out *s3crypto.UploadOutput
		out, err = up.Upload(ctx, in)
		if err == nil {
			res.Size, res.Parts, res.ETag, res.VersionID = out.Size, out.Parts, aws.ToString(out.ETag), aws.ToString(out.VersionId)
		}
	}
	if err != nil {
		p.Stop()
		return explain(u, err) // after Ctrl-C: context.Canceled, the upload aborted (or the error names it)
	}
	p.Finish()
	if g.json {
		return g.emit(res)
	}
	fmt.Fprintf(g.con.stdout, "put %s size=%d format=%s envelope=%s parts=%d key=%s etag=%s\n",
		res.URI, res.Size, res.Format, res.Envelope, res.Parts, res.MasterKey, res.ETag)
	return nil
}
