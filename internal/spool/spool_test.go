package spool

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
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
	require.Equal(t, int64(100), s.mem)
}
