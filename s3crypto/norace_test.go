//go:build !race

package s3crypto_test

const raceEnabled = false
