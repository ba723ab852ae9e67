//go:build race

package cpu

// raceEnabled is set under the race detector, whose sync.Pool drops items
// on purpose, so that allocation counts mean nothing.
const raceEnabled = true
