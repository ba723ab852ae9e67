package cpu

import (
	"fmt"
	"runtime"
)

// Matrix is a weight matrix w[n×k] packed once, at load time, for repeated
// products out = x·wᵀ (see MulT). Packing lays w out in panels of 32 output
// columns, each k rows of 32 contiguous values, the order in which the
// micro-kernels read it.
//
// A Matrix is read-only after NewMatrix and safe for concurrent MulT calls.
type Matrix struct {
	n, k int
	// data holds ⌈n/32⌉ panels of k×32 values: w[32j+c][p] is at
	// data[(j·k+p)·32+c], and zero where 32j+c ≥ n.
	data []float32
}

// NewMatrix packs w, stored [n×k] row-major (the layout of a PyTorch Linear
// weight, n outputs by k inputs). The Matrix keeps no reference to w.
//
// Shapes are the caller's to check when it loads a model; NewMatrix panics,
// naming the shapes, if w holds fewer than n·k values.
func NewMatrix(w []float32, n, k int) *Matrix {
	if n < 0 || k < 0 || len(w) < n*k {
		panic(fmt.Sprintf("cpu.NewMatrix: %d values for a %d×%d matrix", len(w), n, k))
	}
	a := &Matrix{n: n, k: k, data: make([]float32, panelsOf(n)*k*panelWidth)}
	for j := range panelsOf(n) {
		packPanel(a.data[j*k*panelWidth:(j+1)*k*panelWidth], w, k, n, k, j)
	}
	return a
}

// Rows returns n, the number of output columns of MulT.
func (a *Matrix) Rows() int { return a.n }

// Cols returns k, the length of one input row of MulT.
func (a *Matrix) Cols() int { return a.k }

func panelsOf(n int) int { return (n + panelWidth - 1) / panelWidth }

// packPanel writes panel j of w[n×k] (row stride ldw) into dst[k×32]: the
// transpose of rows 32j..32j+31, padded with zeros past row n.
func packPanel(dst, w []float32, ldw, n, k, j int) {
	cols := min(panelWidth, n-j*panelWidth)
	for c := range cols {
		r := j*panelWidth + c
		row := w[r*ldw : r*ldw+k]
		for p, v := range row {
			dst[p*panelWidth+c] = v
		}
	}
	if cols < panelWidth {
		for p := range k {
			clear(dst[p*panelWidth+cols : (p+1)*panelWidth])
		}
	}
}

// MulT computes out[m×n] = x[m×k] · wᵀ for the w the Matrix was made from:
// the same result as MatMulT(out, x, w, m, k, n), up to rounding. out is
// overwritten and must not overlap x.
//
// MulT panics, naming the shapes, if out or x is too short.
func (a *Matrix) MulT(out, x []float32, m int) {
	checkShapes("Matrix.MulT", out, x, m, a.k, a.n)
	a.mulT(best, out, x, m)
}

// MulTAdd adds x[m×k] · wᵀ to out[m×n]: MulT and Add in one pass over out,
// for a residual connection.
func (a *Matrix) MulTAdd(out, x []float32, m int) {
	checkShapes("Matrix.MulTAdd", out, x, m, a.k, a.n)
	a.mulTAdd(best, out, x, m, true)
}

func (a *Matrix) mulT(kern *kernel, out, x []float32, m int) {
	a.mulTAdd(kern, out, x, m, false)
}

func (a *Matrix) mulTAdd(kern *kernel, out, x []float32, m int, acc bool) {
	if emptyProduct(out, m, a.n, a.k, acc) {
		return
	}
	j := mulFree.get()
	j.a, j.w, j.dots = a, nil, false
	j.out, j.x = out, x
	parts := j.plan(kern, m, a.n, a.k, true)
	j.acc = acc
	parallel(j, parts)
	j.a, j.out, j.x = nil, nil, nil
	mulFree.put(j)
}

// MatMulT computes out[m×n] = x[m×k] · wᵀ, with w stored [n×k] row-major
// (the layout of a PyTorch Linear weight). out is overwritten and must not
// overlap x. For a weight used more than once, NewMatrix and Matrix.MulT
// avoid repacking w on every call.
//
// MatMulT panics, naming the shapes, if a slice is too short.
func MatMulT(out, x, w []float32, m, k, n int) {
	checkShapes("MatMulT", out, x, m, k, n)
	if len(w) < n*k {
		panic(fmt.Sprintf("cpu.MatMulT: len(w) = %d, want %d×%d", len(w), n, k))
	}
	matMulT(best, out, x, w, m, k, n)
}

func matMulT(kern *kernel, out, x, w []float32, m, k, n int) {
	if emptyProduct(out, m, n, k, false) {
		return
	}
	j := mulFree.get()
	j.a, j.w = nil, w
	j.out, j.x = out, x
	// Each part packs its own panels, so rows are never split across
	// parts: that would pack the same panel twice. With few rows, packing
	// (a scalar transpose of w) would cost more than the product itself:
	// then each output is one vector dot product.
	j.dots = m <= dotRows
	parallel(j, j.plan(kern, m, n, k, false))
	j.w, j.out, j.x = nil, nil, nil
	mulFree.put(j)
}

// emptyProduct does the products with nothing to multiply, and reports
// whether this was one: m·n = 0 has no output, k = 0 a zero one.
func emptyProduct(out []float32, m, n, k int, acc bool) bool {
	if m*n == 0 {
		return true
	}
	if k == 0 {
		if !acc {
			clear(out[:m*n])
		}
		return true
	}
	return false
}

func checkShapes(fn string, out, x []float32, m, k, n int) {
	switch {
	case m < 0 || k < 0 || n < 0:
		panic(fmt.Sprintf("cpu.%s: negative shape m=%d k=%d n=%d", fn, m, k, n))
	case len(x) < m*k:
		panic(fmt.Sprintf("cpu.%s: len(x) = %d, want %d×%d", fn, len(x), m, k))
	case len(out) < m*n:
		panic(fmt.Sprintf("cpu.%s: len(out) = %d, want %d×%d", fn, len(out), m, n))
	}
}

const (
	// kcMax bounds the k extent of one kernel call, so that the slice of a
	// panel the kernel streams (kc×32 values, 32 KiB) stays in L1 while
	// every row tile reuses it.
	kcMax = 256
	// parallelFlops is the smallest product worth waking a helper for:
	// below it, the wake-up costs more than the helper saves.
	parallelFlops = 1 << 21
	// partsPerCore cuts the work finer than one part per core, so that a
	// core slowed by another process sheds its parts to the others.
	partsPerCore = 4
	// dotRows is the largest m for which MatMulT takes dot products
	// instead of packing w: measured faster up to m=16 (k=256), slower at
	// m=32.
	dotRows = 16
)

// gemm is one product out[m×n] = x[m×k] · B on a kernel, with B in packed
// panels (k rows of 32 columns each) supplied panel by panel, and x and out
// row-major with row strides lda and ldc. Rows are cut into tiles of at
// most kern.maxRows, balanced: tileRows or tileRows+1 rows, the first
// tileExtra taller.
type gemm struct {
	kern                       *kernel
	out, x                     []float32
	m, n, k, lda, ldc          int
	kc                         int  // k extent of one kernel call
	acc                        bool // add the product to out instead of writing it
	tiles, tileRows, tileExtra int
}

func (g *gemm) setup(kern *kernel, out, x []float32, m, n, k, lda, ldc int) {
	g.kern, g.out, g.x = kern, out, x
	g.m, g.n, g.k, g.lda, g.ldc = m, n, k, lda, ldc
	g.acc = false
	blocks := (k + kcMax - 1) / kcMax
	g.kc = (k + blocks - 1) / blocks
	g.tiles = (m + kern.maxRows - 1) / kern.maxRows
	g.tileRows, g.tileExtra = m/g.tiles, m%g.tiles
}

// tile returns the first row and the row count of row tile t.
func (g *gemm) tile(t int) (i0, mr int) {
	i0 = t*g.tileRows + min(t, g.tileExtra)
	mr = g.tileRows
	if t < g.tileExtra {
		mr++
	}
	return i0, mr
}

// panel computes output columns [32p, 32p+32) ∩ [0, n) for row tiles
// [t0, t1) from panel p of B, b[k×32].
func (g *gemm) panel(b []float32, p, t0, t1 int) {
	k, kc, lda, ldc, tile := g.k, g.kc, g.lda, g.ldc, g.kern.tile
	col := p * panelWidth
	if cols := g.n - col; cols < panelWidth {
		// The last, partial panel: compute each tile whole into scratch
		// and copy out the columns that exist. The scratch is pooled, not
		// on the stack: it escapes through the indirect kernel call.
		buf := tileFree.get()
		defer tileFree.put(buf)
		tmp := buf[:]
		for t := t0; t < t1; t++ {
			i0, mr := g.tile(t)
			for pc := 0; pc < k; pc += kc {
				tile(mr, min(kc, k-pc), g.x[i0*lda+pc:], lda, b[pc*panelWidth:], tmp, panelWidth, pc > 0)
			}
			for r := range mr {
				o := (i0+r)*ldc + col
				if g.acc {
					g.kern.add(g.out[o:o+cols], tmp[r*panelWidth:r*panelWidth+cols])
				} else {
					copy(g.out[o:o+cols], tmp[r*panelWidth:])
				}
			}
		}
		return
	}
	// k outermost: the kc×32 slice of the panel stays in L1 across the
	// row tiles, which stream from L2.
	for pc := 0; pc < k; pc += kc {
		kb := min(kc, k-pc)
		for t := t0; t < t1; t++ {
			i0, mr := g.tile(t)
			tile(mr, kb, g.x[i0*lda+pc:], lda, b[pc*panelWidth:], g.out[i0*ldc+col:], ldc, g.acc || pc > 0)
		}
	}
}

// mulJob is the state of one MulT or MatMulT call, pooled so that calls
// allocate nothing. Its parts are a grid of row groups × panel groups.
type mulJob struct {
	gemm
	a    *Matrix   // packed weights, or nil for MatMulT
	w    []float32 // MatMulT's unpacked weights, packed panel by panel
	dots bool      // MatMulT without packing: one dot product per output

	grid // row tiles × panels
}

var (
	mulFree   freeList[mulJob]
	panelFree freeList[[]float32]
	tileFree  freeList[[maxTileRows * panelWidth]float32]
)

// plan sets the blocking of out[m×n] = x[m×k]·wᵀ on kern and returns the
// number of parts.
func (j *mulJob) plan(kern *kernel, m, n, k int, splitRows bool) int {
	j.setup(kern, j.out, j.x, m, n, k, k, n)
	target := 1
	if workers := runtime.GOMAXPROCS(0); workers > 1 && 2*m*n*k >= parallelFlops {
		target = partsPerCore * workers
	}
	return j.cut(j.gemm.tiles, panelsOf(n), target, splitRows)
}

func (j *mulJob) runPart(i int) {
	t0, t1, p0, p1 := j.part(i)
	if j.dots {
		k, n := j.k, j.n
		for c := p0 * panelWidth; c < min(p1*panelWidth, n); c++ {
			wc := j.w[c*k : c*k+k]
			for i := range j.m {
				j.out[i*n+c] = j.kern.dot(j.x[i*k:i*k+k], wc)
			}
		}
		return
	}
	size := j.k * panelWidth
	if j.a != nil {
		for p := p0; p < p1; p++ {
			j.panel(j.a.data[p*size:(p+1)*size], p, t0, t1)
		}
		return
	}
	buf := panelFree.get()
	if cap(*buf) < size {
		*buf = make([]float32, size)
	}
	panel := (*buf)[:size]
	for p := p0; p < p1; p++ {
		packPanel(panel, j.w, j.k, j.n, j.k, p)
		j.panel(panel, p, t0, t1)
	}
	panelFree.put(buf)
}
