package inventory_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3envelope/s3envelope/internal/inventory"
	"github.com/s3envelope/s3envelope/internal/inventory/inventorytest"
)

// store is an in-memory bucket ("dest") serving GetObject and PutObject.
type store map[string][]byte

func (s store) get(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	b, ok := s[*in.Key]
	if !ok || *in.Bucket != "dest" {
		return nil, &types.NoSuchKey{}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func (s store) put(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := io.ReadAll(in.Body)
	s[*in.Key] = b
	return &s3.PutObjectOutput{}, err
}

var awkward = []string{"a b", "a+b", "a%20b", "日本/語 キー", "z", "plain/key.txt", "100%", "tab\tkey", "quote\"key", "comma,key"}

func write(t *testing.T, rows []inventorytest.Row, perFile int) (store, string) {
	t.Helper()
	s := store{}
	m, err := inventorytest.Write(context.Background(), s.put, "dest", "inv/", "src", rows, perFile)
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

func TestKeys(t *testing.T) {
	rows := inventorytest.Rows(awkward)
	// Noncurrent versions and delete markers are not walked; a key listed
	// twice (two versions, current in one) is walked once.
	rows = append(rows,
		inventorytest.Row{Key: "old version", NotLatest: true},
		inventorytest.Row{Key: "deleted", IsDeleteMarker: true},
		inventorytest.Row{Key: "a b", NotLatest: true},
	)
	s, m := write(t, rows, 3)
	keys, man, err := inventory.Keys(context.Background(), s.get, "dest", m, "src", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(awkward))
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
	if len(man.Files) != 5 || man.SourceBucket != "src" {
		t.Fatalf("manifest %+v", man)
	}
	keys, _, err = inventory.Keys(context.Background(), s.get, "dest", m, "src", func(k string) bool { return strings.HasPrefix(k, "a") })
	if err != nil || !slices.Equal(keys, []string{"a b", "a%20b", "a+b"}) {
		t.Fatalf("prefix a: %q, %v", keys, err)
	}
}

func TestKeysErrors(t *testing.T) {
	ctx := context.Background()
	s, m := write(t, inventorytest.Rows(awkward), 4)
	if _, _, err := inventory.Keys(ctx, s.get, "dest", m, "other", nil); !errors.Is(err, inventory.ErrSourceBucket) {
		t.Errorf("another source bucket: %v", err)
	}
	if _, _, err := inventory.Keys(ctx, s.get, "dest", "nope/manifest.json", "src", nil); !errors.As(err, new(*types.NoSuchKey)) {
		t.Errorf("no manifest: %v", err)
	}

	// A data file changed after the manifest was written.
	bad := maps(s)
	f := "inv/src/config/data/0001.csv.gz"
	bad[f] = inventorytest.File("src", inventorytest.Rows([]string{"x"}))
	if _, _, err := inventory.Keys(ctx, bad.get, "dest", m, "src", nil); !errors.Is(err, inventory.ErrChecksum) {
		t.Errorf("changed file: %v", err)
	}
	// A truncated data file: reported as the checksum mismatch it is.
	bad = maps(s)
	bad[f] = bad[f][:len(bad[f])/2]
	if _, _, err := inventory.Keys(ctx, bad.get, "dest", m, "src", nil); !errors.Is(err, inventory.ErrChecksum) {
		t.Errorf("truncated file: %v", err)
	}

	// Files whose MD5 matches but whose content S3 would not write.
	for name, csv := range map[string]string{
		"short row":     `"src","k"` + "\n",
		"bad escape":    `"src","k%zz","v","true","false","1","d","e","S"` + "\n",
		"other bucket":  `"x","k","v","true","false","1","d","e","S"` + "\n",
		"empty key":     `"src","","v","true","false","1","d","e","S"` + "\n",
		"broken quotes": `"src","k"x,"v","true","false","1","d","e","S"` + "\n",
	} {
		var b bytes.Buffer
		gz := gzip.NewWriter(&b)
		gz.Write([]byte(csv))
		gz.Close()
		bad := store{"d.csv.gz": b.Bytes(), "m.json": inventorytest.Manifest("src", "dest", []string{"d.csv.gz"}, [][]byte{b.Bytes()})}
		if _, _, err := inventory.Keys(ctx, bad.get, "dest", "m.json", "src", nil); !errors.Is(err, inventory.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	notGzip := []byte("\"src\",\"k\"\n")
	bad = store{"d.csv.gz": notGzip, "m.json": inventorytest.Manifest("src", "dest", []string{"d.csv.gz"}, [][]byte{notGzip})}
	if _, _, err := inventory.Keys(ctx, bad.get, "dest", "m.json", "src", nil); !errors.Is(err, inventory.ErrMalformed) {
		t.Errorf("not gzip: %v", err)
	}
}

func maps(s store) store {
	c := store{}
	for k, v := range s {
		c[k] = v
	}
	return c
}

func TestParseManifest(t *testing.T) {
	good := string(inventorytest.Manifest("src", "dest", []string{"f"}, [][]byte{nil}))
	if _, err := inventory.ParseManifest([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"ORC", "Parquet"} {
		b := strings.Replace(good, `"CSV"`, `"`+format+`"`, 1)
		if _, err := inventory.ParseManifest([]byte(b)); !errors.Is(err, inventory.ErrUnsupportedFormat) {
			t.Errorf("%s: %v", format, err)
		}
	}
	for name, b := range map[string]string{
		"not JSON":      "{",
		"no source":     strings.Replace(good, `"sourceBucket": "src"`, `"sourceBucket": ""`, 1),
		"format":        strings.Replace(good, `"CSV"`, `"TSV"`, 1),
		"no Key column": strings.Replace(good, "Key,", "Name,", 1),
		"Key twice":     strings.Replace(good, "Bucket, Key", "Key, Key", 1),
		"bad MD5":       strings.Replace(good, `"MD5checksum": "d41d8cd98f00b204e9800998ecf8427e"`, `"MD5checksum": "zz1d8cd98f00b204e9800998ecf8427e"`, 1),
		"no file key":   strings.Replace(good, `"key": "f"`, `"key": ""`, 1),
	} {
		if b == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if _, err := inventory.ParseManifest([]byte(b)); !errors.Is(err, inventory.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseURL(t *testing.T) {
	b, k, err := inventory.ParseURL("s3://dest/inv/src/config/2026/manifest.json")
	if err != nil || b != "dest" || k != "inv/src/config/2026/manifest.json" {
		t.Fatalf("%q %q %v", b, k, err)
	}
	for _, s := range []string{"", "dest/m.json", "s3://dest", "s3://dest/", "s3:///m.json", "https://dest/m.json"} {
		if _, _, err := inventory.ParseURL(s); !errors.Is(err, inventory.ErrMalformed) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// FuzzDecode: any manifest and CSV decode to keys or a typed error, never
// a panic.
func FuzzDecode(f *testing.F) {
	good := inventorytest.Manifest("src", "dest", []string{"f"}, [][]byte{nil})
	f.Add(good, []byte(`"src","a+b%2B","v","true","false","1","d","e","S"`+"\n"))
	f.Add(good, []byte(`"src","k"`+"\n"))
	f.Add([]byte(`{"sourceBucket":"s","fileFormat":"CSV","fileSchema":"Key,Bucket","files":[]}`), []byte("k,s\nk%,s\n"))
	f.Fuzz(func(t *testing.T, manifest, csv []byte) {
		m, err := inventory.ParseManifest(manifest)
		if err != nil {
			if !errors.Is(err, inventory.ErrMalformed) && !errors.Is(err, inventory.ErrUnsupportedFormat) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		err = m.DecodeCSV(bytes.NewReader(csv), func(key string) {
			if key == "" {
				t.Fatal("empty key yielded")
			}
		})
		if err != nil && !errors.Is(err, inventory.ErrMalformed) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
