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
	// The vocabulary statistics (expSums512) use AVX512DQ conversions;
	// every AVX-512 CPU since Skylake-X has it.
	if xcpu.X86.HasAVX512F && xcpu.X86.HasAVX512DQ {
		// Word shifts and widenings of Z vectors need AVX512BW.
		if xcpu.X86.HasAVX512BW {
			avx512.halfTile = [2]halfTile{tileBF16, tileF16}
			if xcpu.X86.HasAVX512VNNI {
				avx512.q8Tile, avx512.q4kTile, avx512.quantize = tileQ8, tileQ4K, quantizeAVX512
			}
		}
		ks = append(ks, avx512)
	}
	if xcpu.X86.HasAVX2 && xcpu.X86.HasFMA {
		avx2.halfTile[0] = tileBF16y
		if xcpu.X86.HasF16C {
			avx2.halfTile[1] = tileF16y
		}
		ks = append(ks, avx2)
	}
	return append(ks, portable)
}

func tile512(mr, k int, a []float32, lda int, b, c []float32, ldc int, accum bool) {
	gemm512[mr-1](k, &a[0], lda, &b[0], &c[0], ldc, accum)
}

// The generated low-precision kernels, indexed by row count minus one.
var (
	gemmBF16 = [...]func(k int, a *float32, lda int, b *uint16, c *float32, ldc int, accum bool){
		gemmbf16x1, gemmbf16x2, gemmbf16x3, gemmbf16x4, gemmbf16x5, gemmbf16x6,
		gemmbf16x7, gemmbf16x8, gemmbf16x9, gemmbf16x10, gemmbf16x11, gemmbf16x12,
	}
	gemmF16 = [...]func(k int, a *float32, lda int, b *uint16, c *float32, ldc int, accum bool){
		gemmf16x1, gemmf16x2, gemmf16x3, gemmf16x4, gemmf16x5, gemmf16x6,
		gemmf16x7, gemmf16x8, gemmf16x9, gemmf16x10, gemmf16x11, gemmf16x12,
	}
	gemmBF16y = [...]func(k int, a *float32, lda int, b *uint16, c *float32, ldc int, accum bool){
		gemmbf16y1, gemmbf16y2, gemmbf16y3,
	}
	gemmF16y = [...]func(k int, a *float32, lda int, b *uint16, c *float32, ldc int, accum bool){
		gemmf16y1, gemmf16y2, gemmf16y3,
	}
	gemmQ8 = [maxQRows]func(blocks int, w *byte, x *byte, ldx int, c *float32, ldc int, accum bool){
		gemmq8x1, gemmq8x2, gemmq8x3, gemmq8x4, gemmq8x5, gemmq8x6, gemmq8x7, gemmq8x8,
	}
	gemmQ4K = [maxQRows]func(blocks int, w *byte, x *byte, ldx int, c *float32, ldc int, accum bool){
		gemmq4kx1, gemmq4kx2, gemmq4kx3, gemmq4kx4, gemmq4kx5, gemmq4kx6, gemmq4kx7, gemmq4kx8,
	}
)

// The half-precision tiles have their family's float32 maxRows: the
// driver plans with it.

func tileBF16(mr, k int, a []float32, lda int, b []uint16, c []float32, ldc int, accum bool) {
	gemmBF16[mr-1](k, &a[0], lda, &b[0], &c[0], ldc, accum)
}

func tileF16(mr, k int, a []float32, lda int, b []uint16, c []float32, ldc int, accum bool) {
	gemmF16[mr-1](k, &a[0], lda, &b[0], &c[0], ldc, accum)
}

func tileBF16y(mr, k int, a []float32, lda int, b []uint16, c []float32, ldc int, accum bool) {
	gemmBF16y[mr-1](k, &a[0], lda, &b[0], &c[0], ldc, accum)
}

func tileF16y(mr, k int, a []float32, lda int, b []uint16, c []float32, ldc int, accum bool) {
	gemmF16y[mr-1](k, &a[0], lda, &b[0], &c[0], ldc, accum)
}

func tileQ8(mr, blocks int, w, x []byte, ldx int, c []float32, ldc int, accum bool) {
	gemmQ8[mr-1](blocks, &w[0], &x[0], ldx, &c[0], ldc, accum)
}

func tileQ4K(mr, blocks int, w, x []byte, ldx int, c []float32, ldc int, accum bool) {
	gemmQ4K[mr-1](blocks, &w[0], &x[0], ldx, &c[0], ldc, accum)
}

func quantizeAVX512(dst []byte, x []float32, blocks int, q8 bool) {
	_, _ = x[blocks*actBlock-1], dst[blocks*actBytes-1]
	quantizeQ512(&x[0], blocks, &dst[0], q8)
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
