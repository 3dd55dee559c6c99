//go:build race

package s3crypto_test

// raceEnabled: the race detector slows encryption ~10x, so the memory test
// uses a smaller (still far larger than its bound) object under it.
const raceEnabled = true
