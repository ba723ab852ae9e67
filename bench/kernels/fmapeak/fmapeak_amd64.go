//go:build amd64 && !purego

package fmapeak

import "golang.org/x/sys/cpu"

var (
	has512 = cpu.X86.HasAVX512F
	has256 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
)

// flopPerIter is the FLOP count of one iteration of loop: 12 FMAs of 16
// or 8 lanes.
func flopPerIter() float64 {
	switch {
	case has512:
		return 12 * 16 * 2
	case has256:
		return 12 * 8 * 2
	}
	return 0
}

func loop(n int) {
	if has512 {
		fma512(n)
	} else {
		fma256(n)
	}
}

// fma512 runs n iterations of 12 independent VFMADD231PS on ZMM registers.
//
//go:noescape
func fma512(n int)

// fma256 runs n iterations of 12 independent VFMADD231PS on YMM registers.
//
//go:noescape
func fma256(n int)
