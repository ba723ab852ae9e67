//go:build amd64 && !purego

package cpu

import xcpu "golang.org/x/sys/cpu"

// The generated kernels, indexed by row count minus one.
var (
	gemm512 = [...]func(k int, a *float32, lda int, b, c *float32, ldc int, accum bool){
		gemm512x1, gemm512x2, gemm512x3, gemm512x4, gemm512x5, gemm512x6,
		gemm512x7, gemm512x8, gemm512x9, gemm512x10, gemm512x11, gemm512x12,
	}
	gemm256 = [...]func(k int, a *float32, lda int, b, c *float32, ldc int, accum bool){
		gemm256x1, gemm256x2, gemm256x3,
	}
)

var (
	avx512 = &kernel{name: "avx512", maxRows: len(gemm512), tile: tile512, dot: dotAVX512, softmax: softmaxAVX512,
		sumSq: sumSqAVX512, scaleMul: scaleMulAVX512, add: addAVX512, swiGLU: swiGLUAVX512, rope: ropeAVX512,
		argmax: argmaxAVX512, expSums: expSumsAVX512}
	avx2 = &kernel{name: "avx2", maxRows: len(gemm256), tile: tile256, dot: dotAVX2, softmax: softmaxGo,
		sumSq: sumSqGo, scaleMul: scaleMulGo, add: addGo, swiGLU: swiGLUGo, rope: ropeGo,
		argmax: argmaxGo, expSums: expSumsGo}
)

// available reports the kernels this CPU and OS support, fastest first.
// x/sys/cpu checks both the CPUID bits and that the OS saves the vector
// state (XGETBV), so a kernel listed here cannot fault.
func available() []*kernel {
	var ks []*kernel
	if xcpu.X86.HasAVX512F {
		ks = append(ks, avx512)
	}
	if xcpu.X86.HasAVX2 && xcpu.X86.HasFMA {
		ks = append(ks, avx2)
	}
	return append(ks, portable)
}

func tile512(mr, k int, a []float32, lda int, b, c []float32, ldc int, accum bool) {
	gemm512[mr-1](k, &a[0], lda, &b[0], &c[0], ldc, accum)
}

func tile256(mr, k int, a []float32, lda int, b, c []float32, ldc int, accum bool) {
	gemm256[mr-1](k, &a[0], lda, &b[0], &c[0], ldc, accum)
}

func dotAVX512(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 15
	if n == 0 {
		return dotGo(a, b)
	}
	return dot512(&a[0], &b[0], n) + dotGo(a[n:], b[n:])
}

func dotAVX2(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 7
	if n == 0 {
		return dotGo(a, b)
	}
	return dot256(&a[0], &b[0], n) + dotGo(a[n:], b[n:])
}

func softmaxAVX512(x []float32, scale float32) {
	if len(x) == 0 {
		return
	}
	n := len(x) &^ 15
	softmax512(&x[0], n, uint16(1)<<(len(x)-n)-1, scale)
}

// The elementwise wrappers run the vector kernel over the largest multiple
// of 16 elements and the portable code over the rest.

func sumSqAVX512(x []float32) float64 {
	n := len(x) &^ 15
	if n == 0 {
		return sumSqGo(x)
	}
	return float64(dot512(&x[0], &x[0], n)) + sumSqGo(x[n:])
}

func scaleMulAVX512(out, x, w []float32, s float32) {
	out, w = out[:len(x)], w[:len(x)]
	n := len(x) &^ 15
	if n > 0 {
		scaleMul512(&out[0], &x[0], &w[0], s, n)
	}
	scaleMulGo(out[n:], x[n:], w[n:], s)
}

func addAVX512(dst, src []float32) {
	src = src[:len(dst)]
	n := len(dst) &^ 15
	if n > 0 {
		add512(&dst[0], &src[0], n)
	}
	addGo(dst[n:], src[n:])
}

func swiGLUAVX512(out, gate, up []float32) {
	gate, up = gate[:len(out)], up[:len(out)]
	n := len(out) &^ 15
	if n > 0 {
		siluMul512(&out[0], &gate[0], &up[0], n)
	}
	swiGLUGo(out[n:], gate[n:], up[n:])
}

func ropeAVX512(x, cos, sin []float32) {
	half := len(cos)
	if half&15 != 0 {
		ropeGo(x, cos, sin)
		return
	}
	if half > 0 {
		rope512(&x[:2*half][0], &cos[0], &sin[:half][0], half)
	}
}

func argmaxAVX512(x []float32) (float32, int) {
	n := len(x) &^ 15
	if n == 0 {
		return argmaxGo(x)
	}
	var vals [16]float32
	var idxs [16]int32
	argmax512(&x[0], n, &vals[0], &idxs[0])
	m, at := vals[0], int(idxs[0])
	for l := 1; l < 16; l++ {
		if v, i := vals[l], int(idxs[l]); v > m || (v == m && i < at) {
			m, at = v, i
		}
	}
	if tm, ti := argmaxGo(x[n:]); tm > m {
		m, at = tm, n+ti
	}
	return m, at
}

func expSumsAVX512(x []float32, m float32) (z, zl float64) {
	n := len(x) &^ 15
	if n > 0 {
		var sums [2]float64
		expSums512(&x[0], n, m, &sums[0])
		z, zl = sums[0], sums[1]
	}
	tz, tzl := expSumsGo(x[n:], m)
	return z + tz, zl + tzl
}
