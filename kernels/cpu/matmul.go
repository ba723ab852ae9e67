// Package cpu holds the CPU math kernels: plain Go references and the fast
// paths checked against them. It knows nothing about models.
package cpu

import (
	"runtime"
	"sync"
)

// MatMulT computes out[m×n] = x[m×k] · wᵀ, with w stored [n×k] row-major
// (the layout of a PyTorch Linear weight). out is overwritten.
func MatMulT(out, x, w []float32, m, k, n int) {
	if m*n == 0 {
		return
	}
	_ = out[m*n-1]
	_ = x[m*k-1]
	_ = w[n*k-1]
	parallelFor(n, 64, func(j0, j1 int) {
		matMulTGeneric(out, x, w, m, k, n, j0, j1)
	})
}

// matMulTGeneric is the reference: output columns [j0,j1) of MatMulT.
func matMulTGeneric(out, x, w []float32, m, k, n, j0, j1 int) {
	for i := 0; i < m; i++ {
		xi := x[i*k : i*k+k]
		oi := out[i*n : i*n+n]
		for j := j0; j < j1; j++ {
			oi[j] = Dot(xi, w[j*k:j*k+k])
		}
	}
}

// Dot returns Σ a[i]·b[i] over len(a) elements.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// parallelFor splits [0,n) into chunks of at least grain and runs body on
// each, using every core. It returns when all chunks are done.
func parallelFor(n, grain int, body func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers <= 1 || n < 2*grain {
		body(0, n)
		return
	}
	if max := n / grain; workers > max {
		workers = max
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(lo, hi)
		}()
	}
	wg.Wait()
}
