//go:build arm64 && !purego

package cpu

// gemmneon1 and gemmneon2 are in matmul_arm64.s.

//go:noescape
func gemmneon1(k int, a *float32, lda int, b *float32, c *float32, ldc int, accum bool)

//go:noescape
func gemmneon2(k int, a *float32, lda int, b *float32, c *float32, ldc int, accum bool)

// neon is the portable kernel with its matrix tile in NEON, which every
// arm64 CPU has: the products are nearly all of a forward pass's time.
var neon = func() *kernel {
	k := *portable
	k.name, k.maxRows, k.tile = "neon", 2, tileNEON
	return &k
}()

// available reports the kernels this CPU supports, fastest first.
func available() []*kernel { return []*kernel{neon, portable} }

func tileNEON(mr, k int, a []float32, lda int, b, c []float32, ldc int, accum bool) {
	if mr == 2 {
		gemmneon2(k, &a[0], lda, &b[0], &c[0], ldc, accum)
		return
	}
	gemmneon1(k, &a[0], lda, &b[0], &c[0], ldc, accum)
}
