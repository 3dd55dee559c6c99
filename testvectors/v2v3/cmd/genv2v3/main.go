// Command genv2v3 writes the V2 and V3 test vectors,
// v2v3/vectors/<name>.json, <name>.body and <name>.instruction, from the
// format's description (see package v2v3). Its output is deterministic:
// running it again must leave the files unchanged, which v2v3_test.go
// checks.
//
//	cd testvectors && go run ./v2v3/cmd/genv2v3
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/s3envelope/s3envelope/testvectors/v2v3"
)

func main() {
	dir := flag.String("dir", "v2v3", "the testvectors/v2v3 directory")
	flag.Parse()
	files, err := v2v3.Generate()
	if err != nil {
		log.Fatal(err)
	}
	out := filepath.Join(*dir, v2v3.Dir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		log.Fatal(err)
	}
	want := map[string]bool{}
	for _, f := range files {
		p := filepath.Join(*dir, filepath.FromSlash(f.Path))
		want[p] = true
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	// Remove vectors that are no longer generated.
	old, err := filepath.Glob(filepath.Join(out, "*"))
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range old {
		if !want[p] {
			if err := os.Remove(p); err != nil {
				log.Fatal(err)
			}
		}
	}
	log.Printf("wrote %d files to %s", len(files), out)
}
