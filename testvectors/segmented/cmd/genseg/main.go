// Command genseg writes the segmented-format (SEG1) test vectors,
// segmented/vectors/<name>.json and <name>.body, from the specification (see
// package segmented). Its output is deterministic: running it again must
// leave the files unchanged, which segmented_test.go checks.
//
//	cd testvectors && go run ./segmented/cmd/genseg
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/s3envelope/s3envelope/testvectors/segmented"
)

func main() {
	dir := flag.String("dir", "segmented", "the testvectors/segmented directory")
	flag.Parse()
	files, err := segmented.Generate()
	if err != nil {
		log.Fatal(err)
	}
	out := filepath.Join(*dir, segmented.Dir)
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
