// Package spool holds a byte stream that must be read back after it has been
// written in full: ciphertext that may only be released once its tag has been
// verified. Bytes stay in memory up to a bound and go to a temporary file
// beyond it, so memory does not grow with the stream's size.
package spool

import (
	"errors"
	"io"
	"os"
	"sync"
)

// DefaultMemory is the in-memory bound used when New is given zero.
const DefaultMemory = 8 << 20

// chunkSize is the granularity of in-memory growth, so that a small object
// never allocates the whole bound.
const chunkSize = 64 << 10

// chunkPool recycles in-memory chunks across spools: a GET of a large
// object would otherwise spend a fifth of its time zeroing fresh memory.
// Chunks hold ciphertext only.
var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// Spool is written once, then read. Writes must not overlap reads; reads
// (ReadAt) may run concurrently. Close releases memory and removes any
// temporary file; it is safe to call more than once.
type Spool struct {
	dir    string
	limit  int64
	chunks [][]byte // in-memory part, each chunk chunkSize except the last
	mem    int64
	file   *os.File
	size   int64

	closed   bool
	unlinked bool // the file was removed from its directory at creation
}

// New returns an empty spool that keeps up to memory bytes in memory
// (DefaultMemory if memory is 0, none if it is negative) and writes the rest
// to a temporary file in dir ("" = os.TempDir()).
func New(dir string, memory int64) *Spool {
	switch {
	case memory == 0:
		memory = DefaultMemory
	case memory < 0:
		memory = 0
	}
	return &Spool{dir: dir, limit: memory}
}

// ErrClosed is returned by a spool used after Close.
var ErrClosed = errors.New("spool: closed")

// Write appends p. It fails once reading has begun.
func (s *Spool) Write(p []byte) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	n := 0
	for len(p) > 0 && s.mem < s.limit && s.file == nil {
		if len(s.chunks) == 0 || len(s.chunks[len(s.chunks)-1]) == cap(s.chunks[len(s.chunks)-1]) {
			c := int64(chunkSize)
			if rem := s.limit - s.mem; rem < c {
				c = rem
			}
			var b []byte
			if c == chunkSize {
				b = (*chunkPool.Get().(*[chunkSize]byte))[:0]
			} else {
				b = make([]byte, 0, c)
			}
			s.chunks = append(s.chunks, b)
		}
		last := &s.chunks[len(s.chunks)-1]
		k := copy((*last)[len(*last):cap(*last)], p)
		*last = (*last)[:len(*last)+k]
		s.mem += int64(k)
		n += k
		p = p[k:]
	}
	if len(p) > 0 {
		if s.file == nil {
			f, err := os.CreateTemp(s.dir, "s3envelope-spool-*")
			if err != nil {
				return n, err
			}
			// Unlink at once where the platform allows it, so that a crash
			// leaves no file behind; Close removes it otherwise.
			s.file = f
			s.unlinked = os.Remove(f.Name()) == nil
		}
		k, err := s.file.Write(p)
		n += k
		s.size += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.mem + s.size }

// ReadAt reads spooled bytes at offset off, as io.ReaderAt. Writing and
// reading must not overlap in time.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	n := 0
	for len(p) > 0 && off < s.mem {
		c := s.chunks[off/chunkSize]
		k := copy(p, c[off%chunkSize:])
		n += k
		p = p[k:]
		off += int64(k)
	}
	if len(p) == 0 {
		return n, nil
	}
	if s.file == nil || off >= s.Size() {
		return n, io.EOF
	}
	if rem := s.Size() - off; int64(len(p)) > rem {
		p = p[:rem]
		k, err := s.file.ReadAt(p, off-s.mem)
		if err == nil {
			err = io.EOF
		}
		return n + k, err
	}
	k, err := s.file.ReadAt(p, off-s.mem)
	return n + k, err
}

// Memory returns the spooled bytes held in memory from offset off to the
// end of their chunk, without copying, or nil when off is not in memory
// (it is in the file, or past the end). The slice is valid until Close.
func (s *Spool) Memory(off int64) []byte {
	if s.closed || off < 0 || off >= s.mem {
		return nil
	}
	c := s.chunks[off/chunkSize]
	return c[off%chunkSize:]
}

// MemorySize is how many leading bytes of the spool are held in memory.
func (s *Spool) MemorySize() int64 { return s.mem }

// Reader returns a reader of the whole spool from its start; many may be
// made, each with its own position.
func (s *Spool) Reader() *io.SectionReader { return io.NewSectionReader(s, 0, s.Size()) }

// Close releases memory and removes the temporary file, if any.
func (s *Spool) Close() error {
	s.closed = true
	for _, c := range s.chunks {
		if cap(c) == chunkSize {
			chunkPool.Put((*[chunkSize]byte)(c[:chunkSize]))
		}
	}
	s.chunks = nil
	return s.removeFile()
}

// InFile reports whether part of the stream went to a temporary file.
func (s *Spool) InFile() bool { return s.file != nil }

func (s *Spool) removeFile() error {
	if s.file == nil {
		return nil
	}
	name := s.file.Name()
	err := s.file.Close()
	if !s.unlinked {
		if rerr := os.Remove(name); err == nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}
	s.file = nil
	return err
}
