package overlap

import "sync"

// pools recycles the buffers of Pipelines and Pieces of one size across
// streams (a *sync.Pool of *[]byte per size): a GET verifies through a
// Pipeline, then decrypts through Pieces of the same size, and the next
// GET does the same, so without it each would zero several MiB of fresh
// memory. Buffers are put back only once nothing can use them, and
// Pieces wipe theirs first (they held plaintext).
var pools sync.Map

func getBuffer(size int) []byte {
	if p, ok := pools.Load(size); ok {
		if b, ok := p.(*sync.Pool).Get().(*[]byte); ok {
			return *b
		}
	}
	return make([]byte, size)
}

func putBuffer(b []byte) {
	b = b[:cap(b)]
	p, ok := pools.Load(len(b))
	if !ok {
		p, _ = pools.LoadOrStore(len(b), new(sync.Pool))
	}
	p.(*sync.Pool).Put(&b)
}
