package spool

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSpool(t *testing.T) {
	for _, mem := range []int64{-1, 1, 100, chunkSize, chunkSize + 1, 3 * chunkSize, 0} {
		for _, n := range []int{0, 1, 100, chunkSize - 1, chunkSize, 2*chunkSize + 7, 3 * chunkSize} {
			dir := t.TempDir()
			data := make([]byte, n)
			rand.Read(data)
			s := New(dir, mem)
			// Write in odd pieces.
			for p := data; len(p) > 0; {
				k := min(len(p), 1000+len(p)%777)
				w, err := s.Write(p[:k])
				require.NoError(t, err)
				require.Equal(t, k, w)
				p = p[k:]
			}
			require.Equal(t, int64(n), s.Size())
			got, err := io.ReadAll(s.Reader())
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got), "mem %d size %d", mem, n)
			// Random access across the memory/file boundary.
			if n > 10 {
				b := make([]byte, n/2)
				k, err := s.ReadAt(b, int64(n/3))
				require.True(t, err == nil || err == io.EOF)
				require.Equal(t, data[n/3:n/3+k], b[:k])
			}
			entries, _ := os.ReadDir(dir)
			require.Empty(t, entries, "the temporary file is unlinked at creation")
			require.NoError(t, s.Close())
			require.NoError(t, s.Close())
			_, err = s.ReadAt(make([]byte, 1), 0)
			require.ErrorIs(t, err, ErrClosed)
			_, err = s.Write([]byte{1})
			require.ErrorIs(t, err, ErrClosed)
		}
	}
}

func TestSpoolMemoryBound(t *testing.T) {
	s := New(t.TempDir(), 100)
	defer s.Close()
	_, err := s.Write(make([]byte, 1000))
	require.NoError(t, err)
	require.True(t, s.InFile())
	require.Equal(t, int64(100), s.MemorySize())
}

// TestSpoolWriteAt: pieces written with WriteAt on several goroutines at
// once, in any order, read back as one stream, whatever the memory bound
// and the number of files, across the memory/file and stripe boundaries.
func TestSpoolWriteAt(t *testing.T) {
	for _, files := range []int{1, 2, 3} {
		for _, mem := range []int64{-1, 100, chunkSize + 1, stripeSize + 7, 0} {
			for _, n := range []int{0, 1, chunkSize, 3*stripeSize + 11, 5 * stripeSize} {
				for _, piece := range []int{1000, stripeSize} {
					dir := t.TempDir()
					data := make([]byte, n)
					rand.Read(data)
					s := NewStriped(dir, mem, files)
					var wg sync.WaitGroup
					// Pieces in reverse order, four goroutines at a time.
					sem := make(chan struct{}, 4)
					for off := (n - 1) / piece * piece; off >= 0 && n > 0; off -= piece {
						sem <- struct{}{}
						wg.Go(func() {
							defer func() { <-sem }()
							end := min(off+piece, n)
							k, err := s.WriteAt(data[off:end], int64(off))
							if err != nil || k != end-off {
								t.Errorf("WriteAt(%d bytes at %d): %d, %v", end-off, off, k, err)
							}
						})
					}
					wg.Wait()
					label := fmt.Sprintf("files %d mem %d size %d piece %d", files, mem, n, piece)
					require.Equal(t, int64(n), s.Size(), label)
					got, err := io.ReadAll(s.Reader())
					require.NoError(t, err, label)
					require.True(t, bytes.Equal(data, got), label)
					// What Memory hands out is the stream's start.
					var head []byte
					for m := s.Memory(0); m != nil; m = s.Memory(int64(len(head))) {
						head = append(head, m...)
					}
					require.Equal(t, s.MemorySize(), int64(len(head)), label)
					require.True(t, bytes.Equal(data[:len(head)], head), label)
					if n > 0 {
						b := make([]byte, n)
						k, err := s.ReadAt(b, 1)
						require.ErrorIs(t, err, io.EOF, label)
						require.True(t, bytes.Equal(data[1:], b[:k]), label)
					}
					entries, _ := os.ReadDir(dir)
					require.Empty(t, entries, "the temporary files are unlinked at creation")
					require.NoError(t, s.Close())
				}
			}
		}
	}
}
