//go:build !amd64 || purego

package cpu

// fmaPeakLoop has no probe to run without the generated assembly.
func fmaPeakLoop(n int) (flop float64) { return 0 }
