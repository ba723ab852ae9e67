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
	avx512 = &kernel{name: "avx512", maxRows: len(gemm512), tile: tile512, dot: dotAVX512, softmax: softmaxAVX512}
	avx2   = &kernel{name: "avx2", maxRows: len(gemm256), tile: tile256, dot: dotAVX2, softmax: softmaxGo}
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
