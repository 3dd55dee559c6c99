// Package inventory reads the object list of an S3 Inventory report: its
// manifest.json and the gzip'd CSV files it names, as S3 writes them to the
// report's destination bucket. s3crypto's RewrapAll walks the keys it
// returns instead of listing a bucket, so that a bucket of millions of
// objects is not listed once per process.
//
// Each file is checked against the manifest's MD5 before a key of it is
// used, the manifest must be the inventory of the bucket being walked, and
// every malformed input is a typed error (errors.Is with the Err values
// below), never a panic. Only the CSV format is read.
package inventory

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var (
	// ErrMalformed: the manifest, a CSV file or the manifest's URL is not
	// what S3 writes.
	ErrMalformed = errors.New("inventory: malformed")
	// ErrUnsupportedFormat: the report is ORC or Parquet; only CSV is read.
	ErrUnsupportedFormat = errors.New("inventory: unsupported format (only CSV is read)")
	// ErrChecksum: a file's MD5 is not the one the manifest gives for it.
	ErrChecksum = errors.New("inventory: file checksum mismatch")
	// ErrSourceBucket: the manifest is the inventory of another bucket.
	ErrSourceBucket = errors.New("inventory: the manifest is another bucket's inventory")
)

// maxManifest bounds manifest.json: a report of a billion objects names a
// few thousand files, well under it.
const maxManifest = 64 << 20

// Manifest is a decoded manifest.json.
type Manifest struct {
	SourceBucket      string `json:"sourceBucket"`
	DestinationBucket string `json:"destinationBucket"`
	Version           string `json:"version"`
	CreationTimestamp string `json:"creationTimestamp"`
	FileFormat        string `json:"fileFormat"`
	FileSchema        string `json:"fileSchema"`
	Files             []File `json:"files"`

	// Column indexes in each CSV row, from FileSchema (-1: absent).
	columns                       int
	bucket, key, latest, isMarker int
}

// File is one data file of the report, in the destination bucket.
type File struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	MD5Checksum string `json:"MD5checksum"`
}

// ParseManifest decodes and checks manifest.json.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %v", ErrMalformed, err)
	}
	switch {
	case strings.EqualFold(m.FileFormat, "ORC") || strings.EqualFold(m.FileFormat, "Parquet"):
		return nil, fmt.Errorf("%w: the report is %s", ErrUnsupportedFormat, m.FileFormat)
	case m.FileFormat != "CSV":
		return nil, fmt.Errorf("%w: manifest.json: fileFormat %.40q", ErrMalformed, m.FileFormat)
	case m.SourceBucket == "":
		return nil, fmt.Errorf("%w: manifest.json has no sourceBucket", ErrMalformed)
	}
	m.bucket, m.key, m.latest, m.isMarker = -1, -1, -1, -1
	cols := strings.Split(m.FileSchema, ",")
	m.columns = len(cols)
	for i, c := range cols {
		idx := map[string]*int{"Bucket": &m.bucket, "Key": &m.key, "IsLatest": &m.latest, "IsDeleteMarker": &m.isMarker}[strings.TrimSpace(c)]
		if idx == nil {
			continue
		}
		if *idx >= 0 {
			return nil, fmt.Errorf("%w: manifest.json: fileSchema names %s twice", ErrMalformed, strings.TrimSpace(c))
		}
		*idx = i
	}
	if m.bucket < 0 || m.key < 0 {
		return nil, fmt.Errorf("%w: manifest.json: fileSchema %.200q lacks Bucket or Key", ErrMalformed, m.FileSchema)
	}
	for i, f := range m.Files {
		if f.Key == "" || f.Size < 0 || len(f.MD5Checksum) != 2*md5.Size {
			return nil, fmt.Errorf("%w: manifest.json: file %d has no key, a negative size or no MD5", ErrMalformed, i)
		}
		if _, err := hex.DecodeString(f.MD5Checksum); err != nil {
			return nil, fmt.Errorf("%w: manifest.json: file %d: MD5checksum is not hex", ErrMalformed, i)
		}
	}
	return &m, nil
}

// DecodeCSV calls yield with the decoded key of each row of one (gunzipped)
// data file, skipping noncurrent versions and delete markers. Every row
// must be of the manifest's source bucket and have the schema's columns.
func (m *Manifest) DecodeCSV(r io.Reader, yield func(key string)) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = m.columns
	cr.ReuseRecord = true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: CSV: %v", ErrMalformed, err)
		}
		line, _ := cr.FieldPos(0)
		if rec[m.bucket] != m.SourceBucket {
			return fmt.Errorf("%w: CSV line %d: bucket %.80q, not the manifest's %q", ErrMalformed, line, rec[m.bucket], m.SourceBucket)
		}
		if (m.latest >= 0 && rec[m.latest] == "false") || (m.isMarker >= 0 && rec[m.isMarker] == "true") {
			continue
		}
		// S3 writes keys form-encoded: a space as '+', a '+' as %2B.
		key, err := url.QueryUnescape(rec[m.key])
		if err != nil || key == "" {
			return fmt.Errorf("%w: CSV line %d: key %.80q is not URL-encoded", ErrMalformed, line, rec[m.key])
		}
		yield(key)
	}
}

// ParseURL splits s3://bucket/key.
func ParseURL(s string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("%w: %.200q is not s3://bucket/key of a manifest.json", ErrMalformed, s)
	}
	return bucket, key, nil
}

// GetFunc is S3's GetObject.
type GetFunc func(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)

// Keys reads the manifest at bucket/key and every data file it names (from
// the same bucket), checking each file's MD5, and returns the keys of the
// source bucket's current objects that keep accepts (all, when it is nil),
// sorted in S3's listing order (bytewise) without duplicates, so that a
// walk of them can keep a checkpoint as a listing walk does. They are held
// in memory: each key costs its length plus a 16-byte string header (about
// 70 MB for a million 50-byte keys; a shard of N keeps about 1/N of them).
func Keys(ctx context.Context, get GetFunc, bucket, key, source string, keep func(string) bool) ([]string, *Manifest, error) {
	b, err := read(ctx, get, bucket, key)
	if err != nil {
		return nil, nil, err
	}
	if len(b) > maxManifest {
		return nil, nil, fmt.Errorf("%w: manifest.json is over %d bytes", ErrMalformed, maxManifest)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, nil, err
	}
	if m.SourceBucket != source {
		return nil, nil, fmt.Errorf("%w: s3://%s/%s lists bucket %q, not %q", ErrSourceBucket, bucket, key, m.SourceBucket, source)
	}
	var keys []string
	for _, f := range m.Files {
		err := m.readFile(ctx, get, bucket, f, func(k string) {
			if keep == nil || keep(k) {
				keys = append(keys, k)
			}
		})
		if err != nil {
			return nil, nil, err
		}
	}
	slices.Sort(keys)
	return slices.Clip(slices.Compact(keys)), m, nil
}

func read(ctx context.Context, get GetFunc, bucket, key string) ([]byte, error) {
	out, err := get(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("inventory: reading s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("inventory: reading s3://%s/%s: %w", bucket, key, err)
	}
	return b, nil
}

// readFile streams one data file through its MD5 and the CSV decoder. A
// file that fails both is reported as a checksum mismatch: its bytes are
// not the ones S3 wrote, which is the likelier cause.
func (m *Manifest) readFile(ctx context.Context, get GetFunc, bucket string, f File, yield func(string)) error {
	out, err := get(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(f.Key)})
	if err != nil {
		return fmt.Errorf("inventory: reading s3://%s/%s: %w", bucket, f.Key, err)
	}
	defer out.Body.Close()
	h := md5.New()
	body := io.TeeReader(out.Body, h)
	var decodeErr error
	gz, err := gzip.NewReader(body)
	if err != nil {
		decodeErr = fmt.Errorf("%w: %v", ErrMalformed, err)
	} else {
		decodeErr = m.DecodeCSV(gz, yield)
	}
	// Hash what the decoder left unread (trailing bytes, or all after an
	// error) so the checksum covers the whole object.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return fmt.Errorf("inventory: reading s3://%s/%s: %w", bucket, f.Key, err)
	}
	want, _ := hex.DecodeString(f.MD5Checksum)
	if !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("%w: s3://%s/%s", ErrChecksum, bucket, f.Key)
	}
	if decodeErr != nil {
		return fmt.Errorf("s3://%s/%s: %w", bucket, f.Key, decodeErr)
	}
	return nil
}
