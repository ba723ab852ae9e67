package cpu

//go:generate go run -C gen . -out ../matmul_amd64.s -stubs ../matmul_stubs_amd64.go -pkg cpu

// A kernel computes tiles of C (+)= A·B for the GEMM driver in matrix.go.
//
// One call handles mr ≤ maxRows rows and one packed panel of B (panelWidth
// columns): C[i][j] (+)= Σ_p A[i·lda+p] · B[p·panelWidth+j] for i < mr,
// j < panelWidth, p < k, writing C[i·ldc+j]. With accum the tile is added to
// C, otherwise C is overwritten. k ≥ 1; a holds (mr-1)·lda+k elements, b
// k·panelWidth and c (mr-1)·ldc+panelWidth.
//
// dot is the same kernel family's dot product, for Dot and for products
// too short in m to be worth packing w (see MatMulT); softmax replaces x by
// softmax(scale·x), for Attention. The rest are the elementwise operations
// of ops.go and the row scan of RowStats, each on slices of equal length
// (the exported functions check).
type kernel struct {
	name    string
	maxRows int
	tile    func(mr, k int, a []float32, lda int, b, c []float32, ldc int, accum bool)
	dot     func(a, b []float32) float32
	softmax func(x []float32, scale float32)

	sumSq    func(x []float32) float64                    // Σ x²
	scaleMul func(out, x, w []float32, s float32)         // out = w·(x·s)
	add      func(dst, src []float32)                     // dst += src
	swiGLU   func(out, gate, up []float32)                // out = silu(gate)·up
	rope     func(x, cos, sin []float32)                  // one head; len(x) = 2·len(cos)
	argmax   func(x []float32) (float32, int)             // the maximum and its first index
	expSums  func(x []float32, m float32) (z, zl float64) // Σ e^d, Σ e^d·d, d = max(x−m, −104)

	// Low-precision weights (lowp.go), nil where the kernel family has no
	// such code: products then widen each panel to float32 and use tile.
	halfTile [2]halfTile // bf16, f16
	q8Tile   qTile
	q4kTile  qTile
	// quantize writes blocks whole blocks of x as lowpJob.quantize does;
	// nil on kernels without q8Tile.
	quantize func(dst []byte, x []float32, blocks int, q8 bool)
}

// A halfTile is tile with b a panel of bfloat16 or IEEE half values.
type halfTile func(mr, k int, a []float32, lda int, b []uint16, c []float32, ldc int, accum bool)

// A qTile computes an mr×16 tile of C (+)= X·Wᵀ over blocks quantized
// blocks of one 16-column strip w, x being mr rows (ldx bytes apart) of
// quantized activations (see lowpJob.quantize).
type qTile func(mr, blocks int, w, x []byte, ldx int, c []float32, ldc int, accum bool)

// panelWidth is the number of output columns in one packed panel of a
// Matrix and in one micro-kernel tile: two AVX-512 or four AVX2 vectors.
const panelWidth = 32

// maxTileRows bounds every kernel's maxRows, so that a tile fits a
// fixed-size scratch array on the stack.
const maxTileRows = 16

// portable is the pure Go kernel: the fallback on every architecture, and
// the driver's own test double on machines with vector kernels.
var portable = &kernel{name: "go", maxRows: 4, tile: tileGo, dot: dotGo, softmax: softmaxGo,
	sumSq: sumSqGo, scaleMul: scaleMulGo, add: addGo, swiGLU: swiGLUGo, rope: ropeGo,
	argmax: argmaxGo, expSums: expSumsGo}

// kernels lists the implementations this machine can run, fastest first;
// best is the one the package uses.
var (
	kernels = available()
	best    = kernels[0]
)

// tileGo is the portable micro-kernel: 2×4 blocks of scalar accumulators,
// the largest block that stays in registers on amd64 and arm64.
func tileGo(mr, k int, a []float32, lda int, b, c []float32, ldc int, accum bool) {
	i := 0
	for ; i+2 <= mr; i += 2 {
		a0 := a[i*lda : i*lda+k]
		a1 := a[(i+1)*lda : (i+1)*lda+k]
		c0 := c[i*ldc : i*ldc+panelWidth]
		c1 := c[(i+1)*ldc : (i+1)*ldc+panelWidth]
		for j := 0; j < panelWidth; j += 4 {
			var s00, s01, s02, s03, s10, s11, s12, s13 float32
			for p := range a0 {
				bp := b[p*panelWidth+j : p*panelWidth+j+4]
				x0, x1 := a0[p], a1[p]
				s00 += x0 * bp[0]
				s01 += x0 * bp[1]
				s02 += x0 * bp[2]
				s03 += x0 * bp[3]
				s10 += x1 * bp[0]
				s11 += x1 * bp[1]
				s12 += x1 * bp[2]
				s13 += x1 * bp[3]
			}
			if accum {
				s00 += c0[j]
				s01 += c0[j+1]
				s02 += c0[j+2]
				s03 += c0[j+3]
				s10 += c1[j]
				s11 += c1[j+1]
				s12 += c1[j+2]
				s13 += c1[j+3]
			}
			c0[j], c0[j+1], c0[j+2], c0[j+3] = s00, s01, s02, s03
			c1[j], c1[j+1], c1[j+2], c1[j+3] = s10, s11, s12, s13
		}
	}
	if i < mr {
		a0 := a[i*lda : i*lda+k]
		c0 := c[i*ldc : i*ldc+panelWidth]
		for j := 0; j < panelWidth; j += 4 {
			var s0, s1, s2, s3 float32
			for p, x := range a0 {
				bp := b[p*panelWidth+j : p*panelWidth+j+4]
				s0 += x * bp[0]
				s1 += x * bp[1]
				s2 += x * bp[2]
				s3 += x * bp[3]
			}
			if accum {
				s0 += c0[j]
				s1 += c0[j+1]
				s2 += c0[j+2]
				s3 += c0[j+3]
			}
			c0[j], c0[j+1], c0[j+2], c0[j+3] = s0, s1, s2, s3
		}
	}
}

// dotGo is the portable dot product over len(a) elements; b is at least as
// long. Four accumulators hide the latency of the floating-point adds.
func dotGo(a, b []float32) float32 {
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

// softmaxGo replaces x by softmax(scale·x) with the package's elementwise
// operations.
func softmaxGo(x []float32, scale float32) {
	Scale(x, scale)
	Softmax(x)
}

// KernelName names the kernel family this machine runs: "avx512", "avx2"
// or "go" (the portable fallback).
func KernelName() string { return best.name }
