package format

// SetGCMTuning makes V2/V3 bodies verified and decrypted in pieces of
// piece bytes (a multiple of 16) on workers goroutines until restore is
// called, so that tests reach the parallel code with small bodies.
func SetGCMTuning(piece, workers int) (restore func()) {
	old := gcmTuning
	gcmTuning = gcmTune{piece: piece, workers: workers}
	return func() { gcmTuning = old }
}
