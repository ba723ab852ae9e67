//go:build amd64 && !purego

package cpu

// fmaPeakLoop runs n iterations of 12 AVX-512 FMAs (384 FLOP) when the CPU
// has AVX-512, else of 12 AVX2 FMAs (192 FLOP), and reports the FLOP count.
func fmaPeakLoop(n int) (flop float64) {
	switch best {
	case avx512:
		fmaPeak512(n)
		return float64(n) * 12 * 16 * 2
	case avx2:
		fmaPeak256(n)
		return float64(n) * 12 * 8 * 2
	}
	return 0
}
