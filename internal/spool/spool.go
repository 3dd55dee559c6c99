// Package spool holds a byte stream that must be read back after it has been
// written in full: ciphertext that may only be released once its tag has been
// verified. Bytes stay in memory up to a bound and go to temporary files
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

// stripeSize is the run of bytes past the memory bound that goes to one
// file before the next, when the spool has several.
const stripeSize = 512 << 10

// chunkPool recycles in-memory chunks across spools: a GET of a large
// object would otherwise spend a fifth of its time zeroing fresh memory.
// Chunks hold ciphertext only.
var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// Spool is written once, then read. Writes must not overlap reads; reads
// (ReadAt, Memory) may run concurrently, and so may WriteAt calls for
// disjoint ranges. Close releases memory and removes the temporary files;
// it is safe to call more than once.
type Spool struct {
	dir    string
	limit  int64 // the memory bound
	nfiles int   // files the bytes past limit are striped over

	mu     sync.Mutex // guards chunks, files and size while WriteAt calls run
	chunks [][]byte   // the in-memory part: chunk i holds [i·chunkSize, …)
	files  []*os.File // stripe i of the part past limit is in files[i%nfiles]
	size   int64      // the end of the furthest byte written

	closed   bool
	unlinked []bool // the file was removed from its directory at creation
}

// New returns an empty spool that keeps up to memory bytes in memory
// (DefaultMemory if memory is 0, none if it is negative) and writes the rest
// to a temporary file in dir ("" = os.TempDir()).
func New(dir string, memory int64) *Spool { return NewStriped(dir, memory, 1) }

// NewStriped is New with the bytes past the memory bound striped over up
// to files temporary files (in runs of 512 KiB), so that WriteAt calls on
// several goroutines write to several files at once: a file takes one
// write at a time (Linux's ext4 locks it per write), several files do not.
func NewStriped(dir string, memory int64, files int) *Spool {
	switch {
	case memory == 0:
		memory = DefaultMemory
	case memory < 0:
		memory = 0
	}
	return &Spool{dir: dir, limit: memory, nfiles: max(files, 1)}
}

// ErrClosed is returned by a spool used after Close.
var ErrClosed = errors.New("spool: closed")

// errNotWritten is a read of bytes below Size that were never written,
// where the spool can tell (a whole chunk or file missing).
var errNotWritten = errors.New("spool: read of bytes never written")

// Write appends p. It fails once the spool is closed.
func (s *Spool) Write(p []byte) (int, error) {
	return s.WriteAt(p, s.Size())
}

// WriteAt writes p at offset off, as io.WriterAt; the bytes before off
// need not have been written yet, but must be before they are read (what
// a read of a gap returns is unspecified: zeros, an error, or bytes of an
// earlier spool). Calls for disjoint ranges may run concurrently with each
// other, not with Write, reads or Close.
func (s *Spool) WriteAt(p []byte, off int64) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	n := 0
	for n < len(p) && off+int64(n) < s.limit {
		at := off + int64(n)
		c := s.chunk(at / chunkSize)
		n += copy(c[at%chunkSize:], p[n:])
	}
	for n < len(p) {
		at := off + int64(n) - s.limit
		stripe := at / stripeSize
		f, err := s.file(int(stripe % int64(s.nfiles)))
		if err != nil {
			s.grow(off + int64(n))
			return n, err
		}
		k := min(len(p)-n, int(stripeSize-at%stripeSize))
		fileOff := stripe/int64(s.nfiles)*stripeSize + at%stripeSize
		k, err = f.WriteAt(p[n:n+k], fileOff)
		n += k
		if err != nil {
			s.grow(off + int64(n))
			return n, err
		}
	}
	s.grow(off + int64(n))
	return n, nil
}

// chunk returns in-memory chunk i (its whole length), made on first use.
func (s *Spool) chunk(i int64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for int64(len(s.chunks)) <= i {
		s.chunks = append(s.chunks, nil)
	}
	if s.chunks[i] == nil {
		if size := min(chunkSize, s.limit-i*chunkSize); size == chunkSize {
			s.chunks[i] = chunkPool.Get().(*[chunkSize]byte)[:]
		} else {
			s.chunks[i] = make([]byte, size)
		}
	}
	return s.chunks[i]
}

// file returns file i, created on first use.
func (s *Spool) file(i int) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.files) <= i {
		s.files = append(s.files, nil)
		s.unlinked = append(s.unlinked, false)
	}
	if s.files[i] == nil {
		f, err := os.CreateTemp(s.dir, "s3envelope-spool-*")
		if err != nil {
			return nil, err
		}
		// Unlink at once where the platform allows it, so that a crash
		// leaves no file behind; Close removes it otherwise.
		s.files[i] = f
		s.unlinked[i] = os.Remove(f.Name()) == nil
	}
	return s.files[i], nil
}

func (s *Spool) grow(end int64) {
	s.mu.Lock()
	s.size = max(s.size, end)
	s.mu.Unlock()
}

// Size is the end of the furthest byte written: the number of bytes
// written, once no range before it is missing.
func (s *Spool) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// ReadAt reads spooled bytes at offset off, as io.ReaderAt. Writing and
// reading must not overlap in time.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	size := s.Size()
	if off >= size {
		return 0, io.EOF
	}
	var eof error
	if rem := size - off; int64(len(p)) > rem {
		p, eof = p[:rem], io.EOF
	}
	n := 0
	for n < len(p) && off+int64(n) < s.limit {
		m := s.Memory(off + int64(n))
		if m == nil {
			return n, errNotWritten
		}
		n += copy(p[n:], m)
	}
	for n < len(p) {
		at := off + int64(n) - s.limit
		stripe := at / stripeSize
		i := int(stripe % int64(s.nfiles))
		k := min(len(p)-n, int(stripeSize-at%stripeSize))
		if i >= len(s.files) || s.files[i] == nil {
			return n, errNotWritten
		}
		k, err := s.files[i].ReadAt(p[n:n+k], stripe/int64(s.nfiles)*stripeSize+at%stripeSize)
		n += k
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the size says the bytes are there
			}
			return n, err
		}
	}
	return n, eof
}

// Memory returns the spooled bytes held in memory from offset off to the
// end of their chunk (or of the bytes written), without copying, or nil
// when off is not in memory (it is in a file, or past the end). The slice
// is valid until Close.
func (s *Spool) Memory(off int64) []byte {
	if s.closed || off < 0 || off >= s.MemorySize() {
		return nil
	}
	c := s.chunks[off/chunkSize]
	if c == nil {
		return nil // not written yet: a read that overlaps the writes
	}
	start := off / chunkSize * chunkSize
	return c[off-start : min(int64(len(c)), s.Size()-start)]
}

// MemorySize is how many leading bytes of the spool are held in memory.
func (s *Spool) MemorySize() int64 { return min(s.limit, s.Size()) }

// Reader returns a reader of the whole spool from its start; many may be
// made, each with its own position.
func (s *Spool) Reader() *io.SectionReader { return io.NewSectionReader(s, 0, s.Size()) }

// Close releases memory and removes the temporary files, if any.
func (s *Spool) Close() error {
	s.closed = true
	for _, c := range s.chunks {
		if len(c) == chunkSize {
			chunkPool.Put((*[chunkSize]byte)(c))
		}
	}
	s.chunks = nil
	return s.removeFiles()
}

// InFile reports whether part of the stream went to a temporary file.
func (s *Spool) InFile() bool { return len(s.files) > 0 }

// removeFiles closes and removes the files, at once: closing the last
// descriptor of an unlinked file frees its pages, which takes as long as
// writing them did, and files free their pages in parallel.
func (s *Spool) removeFiles() error {
	errs := make([]error, len(s.files))
	var wg sync.WaitGroup
	for i, f := range s.files {
		if f == nil {
			continue
		}
		wg.Go(func() {
			name := f.Name()
			errs[i] = f.Close()
			if !s.unlinked[i] {
				if rerr := os.Remove(name); errs[i] == nil && !errors.Is(rerr, os.ErrNotExist) {
					errs[i] = rerr
				}
			}
		})
	}
	wg.Wait()
	s.files, s.unlinked = nil, nil
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
