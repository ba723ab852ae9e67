// Package cpu holds the CPU math kernels: plain Go references and the fast
// paths checked against them. It knows nothing about models.
//
// Matrix products go through a GotoBLAS-style driver (matrix.go) over
// micro-kernels chosen once, at start-up, for this CPU: generated AVX-512 or
// AVX2 assembly on amd64 (kernels gen/ writes), a portable Go kernel
// elsewhere or with the purego build tag. Weights are packed once with
// NewMatrix; Matrix.MulT is the hot path of a forward pass.
package cpu

// matMulTRef is the reference MatMulT: one dot product per output, no
// blocking, no packing. Every fast path is tested against it.
func matMulTRef(out, x, w []float32, m, k, n int) {
	for i := range m {
		xi := x[i*k : i*k+k]
		oi := out[i*n : i*n+n]
		for j := range oi {
			oi[j] = dotGo(xi, w[j*k:j*k+k])
		}
	}
}

// Dot returns Σ a[i]·b[i] over len(a) elements. It panics if b is
// shorter than a.
func Dot(a, b []float32) float32 {
	return best.dot(a, b[:len(a)])
}
