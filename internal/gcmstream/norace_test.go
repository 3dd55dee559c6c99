//go:build !race

package gcmstream

const raceEnabled = false
