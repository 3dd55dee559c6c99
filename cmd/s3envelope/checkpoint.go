package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// checkpointFile keeps a bucket walk's checkpoint (--resume FILE): read
// when the walk starts, written as the walk advances (at most once a
// second, atomically: a temporary file renamed over it, so a crash leaves
// the old checkpoint or the new one, never half of one) and when it ends,
// and removed once a walk completes with nothing left to retry.
type checkpointFile struct {
	path  string
	every time.Duration
	last  time.Time
	err   error // the first failed background write
}

func newCheckpointFile(path string) *checkpointFile {
	return &checkpointFile{path: path, every: time.Second}
}

// load decodes the file into v, refusing fields v does not have (a
// checkpoint of another command, or not a checkpoint). It reports false
// when there is no file yet.
func (f *checkpointFile) load(v any) (bool, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, setupErr(fmt.Errorf("--resume: %w", err))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, setupErr(fmt.Errorf("--resume %s: not a checkpoint of this command: %v", f.path, err))
	}
	return true, nil
}

// save writes v unless it was written less than a second ago; a failure
// is kept for flush to return.
func (f *checkpointFile) save(v any) {
	if time.Since(f.last) < f.every {
		return
	}
	f.last = time.Now()
	if err := f.write(v); err != nil && f.err == nil {
		f.err = err
	}
}

// flush writes v now.
func (f *checkpointFile) flush(v any) error {
	if err := f.write(v); err != nil {
		return err
	}
	return f.err
}

// remove deletes the file: the walk has nothing left to do.
func (f *checkpointFile) remove() error {
	if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return f.err
}

func (f *checkpointFile) write(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), filepath.Base(f.path)+".*")
	if err != nil {
		return fmt.Errorf("saving the checkpoint: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving the checkpoint: %w", err)
	}
	return nil
}
