package cpu

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// AMXMatrix is a weight matrix w[n×k] in bfloat16, packed for the tile
// unit of Intel's AMX (Sapphire Rapids and later Xeons): one TDPBF16PS
// multiplies 16 rows by 32 k values by 16 columns, 8192 multiply-adds, in
// about 16 cycles, some ten times a core's float32 FMA peak. The
// activations are rounded to bfloat16 too (as a Q8Matrix quantizes them
// to int8); products are summed in float32.
//
// Only where AMX reports true can one be made and used.
type AMXMatrix struct {
	n, k   int
	kb     int      // k in blocks of 32, the last zero-padded
	groups int      // n in groups of 64 columns, the last zero-padded
	data   []uint16 // see amxIndex
}

const (
	amxRows     = 16 // rows of a tile of A and C
	amxGroup    = 64 // columns of C one kernel step computes: 4 tiles
	amxKBlock   = 32 // k values of one tile of A
	amxBlockU16 = amxKBlock * 16
	// amxChunk is the k blocks of one kernel call: a group's B for them,
	// 32 KiB, stays in L1 while every row tile reads it.
	amxChunk = 8
	// amxParallelTDPs is the least work, in tile products, that is split
	// across cores, and amxPartsPerCore how finely. A product whose
	// weights are in L1/L2 takes 6–10 ns a tile product, and splitting 512
	// of them slows it (BenchmarkShapesAMX, 17 rows); but in a forward
	// pass the weights stream from memory at several times that, and the
	// default model's cached step ran 5–10% faster split at 512 than at
	// 2048 (BenchmarkForwardWindowAMX, two cores).
	amxParallelTDPs = 512
	amxPartsPerCore = 2
)

// amxIndex is where w[col][p] is packed: group g of 64 columns, then k
// block b, then one B tile (16 columns) after another, each the VNNI
// layout TDPBF16PS reads, 16 rows of k pairs: row r, column c holds
// w[c][2r] and w[c][2r+1]. A group's tiles are contiguous, read in order.
func (a *AMXMatrix) amxIndex(col, p int) int {
	g, q, c := col/amxGroup, col/16%4, col%16
	b, r, e := p/amxKBlock, p%amxKBlock/2, p%2
	return (((g*a.kb+b)*4+q)*16+r)*32 + c*2 + e
}

var (
	amxOnce sync.Once
	amxOK   bool
)

// AMX reports whether this machine has AMX tiles with bfloat16 products
// and the OS lets this process use them (on Linux it must ask first,
// which AMX does, once).
func AMX() bool {
	amxOnce.Do(func() { amxOK = amxAvailable() })
	return amxOK
}

func newAMXMatrix(fn string, n, k, have int) *AMXMatrix {
	if !AMX() {
		panic("cpu." + fn + ": this machine has no AMX")
	}
	if n < 0 || k < 0 || have < n*k {
		panic(fmt.Sprintf("cpu.%s: %d values for a %d×%d matrix", fn, have, n, k))
	}
	a := &AMXMatrix{n: n, k: k, kb: (k + amxKBlock - 1) / amxKBlock, groups: (n + amxGroup - 1) / amxGroup}
	a.data = make([]uint16, a.groups*a.kb*4*amxBlockU16)
	return a
}

// NewAMXMatrix packs w, float32 stored [n×k] row-major, rounding each
// weight to the nearest bfloat16. It panics where AMX is false.
func NewAMXMatrix(w []float32, n, k int) *AMXMatrix {
	a := newAMXMatrix("NewAMXMatrix", n, k, len(w))
	a.pack(func(i int) uint16 { return Float32ToBF16(w[i]) })
	return a
}

// NewAMXMatrixBF16 packs w, bfloat16 bit patterns stored [n×k] row-major.
// It panics where AMX is false.
func NewAMXMatrixBF16(w []uint16, n, k int) *AMXMatrix {
	a := newAMXMatrix("NewAMXMatrixBF16", n, k, len(w))
	a.pack(func(i int) uint16 { return w[i] })
	return a
}

// pack stores every weight, at(col·k+p), in its place, splitting the rows
// over the cores: a large model packs at load.
func (a *AMXMatrix) pack(at func(i int) uint16) {
	var wg sync.WaitGroup
	parts := min(runtime.GOMAXPROCS(0), max(1, a.n*a.k>>20))
	for i := range parts {
		wg.Go(func() {
			for col := i * a.n / parts; col < (i+1)*a.n/parts; col++ {
				for p := range a.k {
					a.data[a.amxIndex(col, p)] = at(col*a.k + p)
				}
			}
		})
	}
	wg.Wait()
}

func (a *AMXMatrix) Rows() int  { return a.n }
func (a *AMXMatrix) Cols() int  { return a.k }
func (a *AMXMatrix) Bytes() int { return 2 * len(a.data) }

// Row writes row r of w, as float32, to dst.
func (a *AMXMatrix) Row(dst []float32, r int) {
	checkRow("AMXMatrix.Row", dst, r, a.n, a.k)
	for p := range a.k {
		dst[p] = math.Float32frombits(uint32(a.data[a.amxIndex(r, p)]) << 16)
	}
}

// MulT computes out[m×n] = x[m×k]·wᵀ.
func (a *AMXMatrix) MulT(out, x []float32, m int) {
	checkShapes("AMXMatrix.MulT", out, x, m, a.k, a.n)
	a.mul(out, x, m, false)
}

// MulTAdd adds x[m×k]·wᵀ to out[m×n].
func (a *AMXMatrix) MulTAdd(out, x []float32, m int) {
	checkShapes("AMXMatrix.MulTAdd", out, x, m, a.k, a.n)
	a.mul(out, x, m, true)
}

// amxJob is one product: x rounded to bfloat16 in tiles of 16 rows (the
// last padded with zero rows), and its parts, a grid of row tiles × column
// groups. Only whole tiles of C go straight to out; a last tile of fewer
// than 16 rows, or group of fewer than 64 columns, goes through scratch.
type amxJob struct {
	a                  *AMXMatrix
	out, x             []float32
	m                  int
	acc                bool
	xa                 []uint16 // tiles·16 rows of kb·32 values
	fullTiles, fullGps int
	grid               // row tiles × groups
}

var (
	amxFree    freeList[amxJob]
	amxScratch freeList[[]float32]
)

func (a *AMXMatrix) mul(out, x []float32, m int, acc bool) {
	n, k := a.n, a.k
	if emptyProduct(out, m, n, k, acc) {
		return
	}
	j := amxFree.get()
	j.a, j.out, j.x, j.m, j.acc = a, out, x, m, acc
	tiles := (m + amxRows - 1) / amxRows
	j.fullTiles, j.fullGps = m/amxRows, n/amxGroup
	lda := a.kb * amxKBlock
	if need := tiles * amxRows * lda; cap(j.xa) < need {
		j.xa = make([]uint16, need)
	}
	j.xa = j.xa[:tiles*amxRows*lda]
	ParallelRows((*amxConvert)(j), tiles*amxRows, lda)

	target := 1
	if workers := runtime.GOMAXPROCS(0); workers > 1 && tiles*a.groups*a.kb*4 >= amxParallelTDPs {
		target = amxPartsPerCore * workers
	}
	parallel(j, j.cut(tiles, a.groups, target, true))
	j.a, j.out, j.x = nil, nil, nil
	amxFree.put(j)
}

// amxConvert rounds rows of x to bfloat16 into xa, laid out as the kernel
// reads A: tile after tile of 16 rows, each k block after k block of 16
// rows × 32 values, 1 KiB. Rows past m, and values past k, are zero.
type amxConvert amxJob

func (c *amxConvert) Rows(i0, i1 int) {
	k, kb := c.a.k, c.a.kb
	for i := i0; i < i1; i++ {
		tile := c.xa[i/amxRows*kb*amxBlockU16:][:kb*amxBlockU16]
		at := i % amxRows * amxKBlock
		if i >= c.m {
			for b := range kb {
				clear(tile[b*amxBlockU16+at:][:amxKBlock])
			}
			continue
		}
		src := c.x[i*k : (i+1)*k]
		if whole := k / amxKBlock; whole > 0 {
			bf16Blocks(&tile[at], &src[0], whole)
		}
		if b := k / amxKBlock; b < kb { // the last block, part padding
			dst := tile[b*amxBlockU16+at:][:amxKBlock]
			for p := b * amxKBlock; p < k; p++ {
				dst[p-b*amxKBlock] = Float32ToBF16(src[p])
			}
			clear(dst[k-b*amxKBlock:])
		}
	}
}

func (j *amxJob) runPart(i int) {
	t0, t1, g0, g1 := j.part(i)
	fg1 := min(g1, j.fullGps)
	if g0 < fg1 {
		j.whole(t0, t1, g0, fg1)
	}
	if fg1 < g1 { // the last group, narrower than 64 columns
		buf, s := j.scratch(t1-t0, 1)
		j.tilesAt(t0, t1, fg1, g1, s, amxGroup, false, nil)
		j.copyOut(s, t0*amxRows, min(t1*amxRows, j.m), fg1, g1, j.acc)
		amxScratch.put(buf)
	}
}

// whole computes row tiles [t0, t1) × groups [g0, g1) of 64 columns
// each into out: a last tile of fewer than 16 rows through scratch.
func (j *amxJob) whole(t0, t1, g0, g1 int) {
	a := j.a
	c := j.out[t0*amxRows*a.n+g0*amxGroup:]
	if t1 < j.tiles || j.m%amxRows == 0 {
		j.tilesAt(t0, t1, g0, g1, c, a.n, j.acc, nil)
		return
	}
	buf, s := j.scratch(1, g1-g0)
	w, r0 := (g1-g0)*amxGroup, (t1-1)*amxRows
	if j.acc {
		for r := r0; r < j.m; r++ {
			copy(s[(r-r0)*w:][:w], j.out[r*a.n+g0*amxGroup:])
		}
	}
	j.tilesAt(t0, t1, g0, g1, c, a.n, j.acc, s)
	j.copyOut(s, r0, j.m, g0, g1, false) // added to out's rows already
	amxScratch.put(buf)
}

// tilesAt runs the kernel on row tiles [t0, t1) × groups [g0, g1) into c,
// whose rows are ldc values apart (the last tile into last, if not nil,
// rows 64·(g1-g0) apart), amxChunk k blocks at a time, so that the slice
// of B the row tiles share stays in L1.
func (j *amxJob) tilesAt(t0, t1, g0, g1 int, c []float32, ldc int, acc bool, last []float32) {
	a := j.a
	var lp *float32
	if last != nil {
		lp = &last[0]
	}
	for b0 := 0; b0 < a.kb; b0 += amxChunk {
		amxTiles(&amxConfig[0], &j.xa[(t0*a.kb+b0)*amxBlockU16], 2*a.kb*amxBlockU16, t1-t0,
			&a.data[(g0*a.kb+b0)*4*amxBlockU16], min(amxChunk, a.kb-b0), g1-g0, 2*a.kb*4*amxBlockU16,
			&c[0], 4*ldc, acc || b0 > 0, lp, 4*(g1-g0)*amxGroup)
	}
}

// scratch returns a pooled buffer of tiles row tiles × groups groups.
func (j *amxJob) scratch(tiles, groups int) (*[]float32, []float32) {
	buf := amxScratch.get()
	if need := tiles * amxRows * groups * amxGroup; cap(*buf) < need {
		*buf = make([]float32, need)
	}
	return buf, (*buf)[:tiles*amxRows*groups*amxGroup]
}

// copyOut writes rows [r0, r1) of s, which holds groups [g0, g1) of rows
// from r0 on, to out, or adds them, as far as out has columns.
func (j *amxJob) copyOut(s []float32, r0, r1, g0, g1 int, add bool) {
	n, w, col := j.a.n, (g1-g0)*amxGroup, g0*amxGroup
	cols := min(w, n-col)
	for r := r0; r < r1; r++ {
		src := s[(r-r0)*w:][:cols]
		dst := j.out[r*n+col:][:cols]
		if add {
			best.add(dst, src)
		} else {
			copy(dst, src)
		}
	}
}

// amxConfig is the tile configuration every kernel call loads: palette 1,
// eight tiles of 16 rows of 64 bytes.
var amxConfig = func() (c [64]byte) {
	c[0] = 1
	for t := range 8 {
		c[16+2*t] = 64
		c[48+t] = amxRows
	}
	return c
}()
