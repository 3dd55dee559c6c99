// Package inventorytest writes S3 Inventory reports as S3 does — a
// manifest.json and gzip'd CSV files with quoted, form-encoded keys — for
// tests of code that reads them.
package inventorytest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Schema is the fileSchema of the reports Write writes: a versioned
// bucket's columns, as S3 names them.
const Schema = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass"

// PutFunc is S3's PutObject.
type PutFunc func(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)

// Row is one CSV line of a report.
type Row struct {
	Key            string
	NotLatest      bool // a noncurrent version
	IsDeleteMarker bool
}

// Rows are current versions of keys.
func Rows(keys []string) []Row {
	rows := make([]Row, len(keys))
	for i, k := range keys {
		rows[i] = Row{Key: k}
	}
	return rows
}

// File is one gzip'd CSV data file of source's rows.
func File(source string, rows []Row) []byte {
	var csv strings.Builder
	for i, r := range rows {
		// S3 quotes every field and form-encodes the key.
		fmt.Fprintf(&csv, "%q,%q,\"v%d\",\"%t\",\"%t\",\"%d\",\"2026-12-03T10:00:00.000Z\",\"etag%d\",\"STANDARD\"\n",
			source, url.QueryEscape(r.Key), i, !r.NotLatest, r.IsDeleteMarker, 100+i, i)
	}
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	gz.Write([]byte(csv.String()))
	gz.Close()
	return b.Bytes()
}

// Manifest is a manifest.json naming files (key → content) in dest.
func Manifest(source, dest string, keys []string, contents [][]byte) []byte {
	type file struct {
		Key  string `json:"key"`
		Size int    `json:"size"`
		MD5  string `json:"MD5checksum"`
	}
	m := struct {
		SourceBucket      string `json:"sourceBucket"`
		DestinationBucket string `json:"destinationBucket"`
		Version           string `json:"version"`
		CreationTimestamp string `json:"creationTimestamp"`
		FileFormat        string `json:"fileFormat"`
		FileSchema        string `json:"fileSchema"`
		Files             []file `json:"files"`
	}{source, "arn:aws:s3:::" + dest, "2016-11-30", "1796292000000", "CSV", Schema, nil}
	for i, k := range keys {
		sum := md5.Sum(contents[i])
		m.Files = append(m.Files, file{k, len(contents[i]), hex.EncodeToString(sum[:])})
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return b
}

// Write puts an inventory report of source's rows into dest under prefix,
// perFile rows to a file, in S3's layout, and returns the manifest's key.
func Write(ctx context.Context, put PutFunc, dest, prefix, source string, rows []Row, perFile int) (string, error) {
	base := prefix + source + "/config/"
	var keys []string
	var contents [][]byte
	for i := 0; i < len(rows) || i == 0; i += perFile {
		k := fmt.Sprintf("%sdata/%04d.csv.gz", base, i/perFile)
		keys = append(keys, k)
		contents = append(contents, File(source, rows[i:min(i+perFile, len(rows))]))
	}
	manifest := base + "2026-12-03T00-00Z/manifest.json"
	for i, k := range append(keys, manifest) {
		body := Manifest(source, dest, keys, contents)
		if i < len(keys) {
			body = contents[i]
		}
		if _, err := put(ctx, &s3.PutObjectInput{Bucket: aws.String(dest), Key: aws.String(k), Body: bytes.NewReader(body)}); err != nil {
			return "", err
		}
	}
	return manifest, nil
}
