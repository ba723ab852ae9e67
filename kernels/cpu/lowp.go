package cpu

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Linear is a weight matrix w[n×k] packed for repeated products
// out = x·wᵀ. Matrix holds float32; BF16Matrix, F16Matrix, Q8Matrix and
// Q4KMatrix keep the weights in their stored type and widen or dequantize
// them a block at a time inside the product, so that a model takes the
// memory of its stored type rather than float32's, and the time: a product
// of few rows is bound by the bytes of weights it reads, and with
// AVX512_VNNI an int8 product of many rows retires twice the
// multiply-adds of a float32 one.
type Linear interface {
	// MulT computes out[m×n] = x[m×k]·wᵀ, overwriting out.
	MulT(out, x []float32, m int)
	// MulTAdd adds x[m×k]·wᵀ to out[m×n].
	MulTAdd(out, x []float32, m int)
	// Rows returns n, the number of outputs.
	Rows() int
	// Cols returns k, the length of an input row.
	Cols() int
	// Bytes returns the size of the packed weights.
	Bytes() int
	// Row writes row r of w (the weights of output r), k values, to dst.
	Row(dst []float32, r int)
}

var (
	_ Linear = (*Matrix)(nil)
	_ Linear = (*BF16Matrix)(nil)
	_ Linear = (*F16Matrix)(nil)
	_ Linear = (*Q8Matrix)(nil)
	_ Linear = (*Q4KMatrix)(nil)
	_ Linear = (*AMXMatrix)(nil)
)

// Bytes returns the size of the packed float32 weights.
func (a *Matrix) Bytes() int { return 4 * len(a.data) }

// Block sizes of the ggml formats Q8Matrix and Q4KMatrix read.
const (
	// Q8BlockBytes is one ggml block_q8_0: an f16 scale d, then 32 int8
	// q; value = d·q.
	Q8BlockBytes = 2 + 32
	// Q4KBlockBytes is one ggml block_q4_K of 256 values: f16 d and dmin,
	// 12 bytes of 6-bit sub-block scales and mins, 128 bytes of nibbles;
	// value = d·sc·q − dmin·m per 32-value sub-block.
	Q4KBlockBytes = 2 + 2 + 12 + 128
)

// Packed layouts, read by the generated kernels (gen/quant.go) and by
// column below. Quantized weights are cut into strips of 16 columns, one
// Z vector of int32 lanes; lane c of quant vector j holds 4 consecutive k
// values of column c, the operand order of VPDPBUSD.
const (
	stripWidth   = 16
	q8StripBytes = 32 + 512 // 16 f16 d, 16×32 biased u8 weights
	q4kSubBytes  = 32 + 256 // 16 scales, 16 mins, 16×32 nibbles
	q4kHeadBytes = 64       // 16 f16 d, 16 f16 dmin
	q4kSupBytes  = q4kHeadBytes + 8*q4kSubBytes
	actBlock     = 32               // activation values per quantized block
	actBytes     = actBlock + 4 + 4 // int8 values, f32 scale, offset term
	q4kValues    = 256              // values in one Q4_K super-block
	maxQRows     = 8                // tallest quantized tile (gen's maxRowsQ)
)

// BF16Matrix is a Matrix of bfloat16 weights: the same 32-column panels,
// half the bytes, widened to float32 in registers as the kernel loads them.
type BF16Matrix struct{ halfMatrix }

// F16Matrix is a Matrix of IEEE half-precision weights, like BF16Matrix.
type F16Matrix struct{ halfMatrix }

// halfMatrix holds the panels of a BF16Matrix or F16Matrix.
type halfMatrix struct {
	n, k int
	f16  bool     // IEEE half, not bfloat16
	data []uint16 // w[32j+c][p] at data[(j·k+p)·32+c]
}

// NewBF16Matrix packs w, bfloat16 bit patterns stored [n×k] row-major.
func NewBF16Matrix(w []uint16, n, k int) *BF16Matrix {
	return &BF16Matrix{newHalf("NewBF16Matrix", w, n, k, false)}
}

// NewF16Matrix packs w, IEEE half-precision bit patterns stored [n×k]
// row-major.
func NewF16Matrix(w []uint16, n, k int) *F16Matrix {
	return &F16Matrix{newHalf("NewF16Matrix", w, n, k, true)}
}

func newHalf(fn string, w []uint16, n, k int, f16 bool) halfMatrix {
	if n < 0 || k < 0 || len(w) < n*k {
		panic(fmt.Sprintf("cpu.%s: %d values for a %d×%d matrix", fn, len(w), n, k))
	}
	a := halfMatrix{n: n, k: k, f16: f16, data: make([]uint16, panelsOf(n)*k*panelWidth)}
	for j := range panelsOf(n) {
		dst := a.data[j*k*panelWidth : (j+1)*k*panelWidth]
		for c := range min(panelWidth, n-j*panelWidth) {
			row := w[(j*panelWidth+c)*k:][:k]
			for p, v := range row {
				dst[p*panelWidth+c] = v
			}
		}
	}
	return a
}

func (a *halfMatrix) Rows() int  { return a.n }
func (a *halfMatrix) Cols() int  { return a.k }
func (a *halfMatrix) Bytes() int { return 2 * len(a.data) }

func (a *halfMatrix) MulT(out, x []float32, m int) {
	checkShapes("MulT", out, x, m, a.k, a.n)
	lowpMul(best, a, out, x, m, false)
}

func (a *halfMatrix) MulTAdd(out, x []float32, m int) {
	checkShapes("MulTAdd", out, x, m, a.k, a.n)
	lowpMul(best, a, out, x, m, true)
}

// Q8Matrix holds Q8_0 weights: per 32 values of a row, one f16 scale and
// 32 int8.
type Q8Matrix struct {
	n, k, blocks int
	// data holds ⌈n/16⌉ strips of blocks q8StripBytes each: 16 f16 d, then
	// byte 64j+4c+t = q[16s+c][32b+4j+t] + 128 (zero d past column n).
	data []byte
}

// NewQ8Matrix packs raw, n rows of ⌈k/32⌉ ggml block_q8_0 each (the
// layout of a GGUF Q8_0 tensor); values past k in the last block are
// ignored.
func NewQ8Matrix(raw []byte, n, k int) *Q8Matrix {
	blocks := (k + actBlock - 1) / actBlock
	if n < 0 || k < 0 || len(raw) < n*blocks*Q8BlockBytes {
		panic(fmt.Sprintf("cpu.NewQ8Matrix: %d bytes for a %d×%d matrix", len(raw), n, k))
	}
	strips := (n + stripWidth - 1) / stripWidth
	a := &Q8Matrix{n: n, k: k, blocks: blocks, data: make([]byte, strips*blocks*q8StripBytes)}
	for r := range n {
		s, c := r/stripWidth, r%stripWidth
		for b := range blocks {
			src := raw[(r*blocks+b)*Q8BlockBytes:][:Q8BlockBytes]
			dst := a.data[(s*blocks+b)*q8StripBytes:][:q8StripBytes]
			dst[2*c], dst[2*c+1] = src[0], src[1]
			for v := range actBlock {
				q := src[2+v]
				if b*actBlock+v >= k {
					q = 0
				}
				dst[32+v/4*64+c*4+v%4] = q ^ 0x80
			}
		}
	}
	// Padding columns: d = 0 makes them zero whatever their quants.
	for r := n; r < strips*stripWidth; r++ {
		s, c := r/stripWidth, r%stripWidth
		for b := range blocks {
			dst := a.data[(s*blocks+b)*q8StripBytes:]
			for v := range actBlock {
				dst[32+v/4*64+c*4+v%4] = 0x80
			}
		}
	}
	return a
}

func (a *Q8Matrix) Rows() int  { return a.n }
func (a *Q8Matrix) Cols() int  { return a.k }
func (a *Q8Matrix) Bytes() int { return len(a.data) }

func (a *Q8Matrix) MulT(out, x []float32, m int) {
	checkShapes("Q8Matrix.MulT", out, x, m, a.k, a.n)
	lowpMul(best, a, out, x, m, false)
}

func (a *Q8Matrix) MulTAdd(out, x []float32, m int) {
	checkShapes("Q8Matrix.MulTAdd", out, x, m, a.k, a.n)
	lowpMul(best, a, out, x, m, true)
}

// Q4KMatrix holds Q4_K weights: per 256 values of a row, f16 d and dmin,
// and per 32 values a 6-bit scale and min and 32 4-bit quants.
type Q4KMatrix struct {
	n, k, supers int
	// data holds ⌈n/16⌉ strips of supers q4kSupBytes each: 16 f16 d, 16
	// f16 dmin, then per sub-block u 16 scales, 16 mins and 256 bytes whose
	// byte 64j+4c+t holds q[16s+c][32u+4j+t] in its low nibble and
	// q[16s+c][32u+16+4j+t] in its high one.
	data []byte
}

// NewQ4KMatrix packs raw, n rows of ⌈k/256⌉ ggml block_q4_K each (the
// layout of a GGUF Q4_K tensor); values past k must be zero-weighted, as
// QuantizeQ4K leaves them.
func NewQ4KMatrix(raw []byte, n, k int) *Q4KMatrix {
	supers := (k + q4kValues - 1) / q4kValues
	if n < 0 || k < 0 || len(raw) < n*supers*Q4KBlockBytes {
		panic(fmt.Sprintf("cpu.NewQ4KMatrix: %d bytes for a %d×%d matrix", len(raw), n, k))
	}
	strips := (n + stripWidth - 1) / stripWidth
	a := &Q4KMatrix{n: n, k: k, supers: supers, data: make([]byte, strips*supers*q4kSupBytes)}
	for r := range n {
		s, c := r/stripWidth, r%stripWidth
		for u := range supers {
			src := raw[(r*supers+u)*Q4KBlockBytes:][:Q4KBlockBytes]
			dst := a.data[(s*supers+u)*q4kSupBytes:][:q4kSupBytes]
			dst[2*c], dst[2*c+1] = src[0], src[1]
			dst[32+2*c], dst[33+2*c] = src[2], src[3]
			for sb := range 8 {
				sc, mn := q4kScaleMin(src[4:16], sb)
				sub := dst[q4kHeadBytes+sb*q4kSubBytes:][:q4kSubBytes]
				sub[c], sub[16+c] = sc, mn
				for v := range actBlock {
					q := q4kQuant(src[16:], sb, v)
					at := 32 + v%16/4*64 + c*4 + v%4
					sub[at] |= q << (4 * (v / 16))
				}
			}
		}
	}
	return a
}

// q4kScaleMin decodes the 6-bit scale and min of sub-block j from the 12
// packed bytes of a block_q4_K (ggml's get_scale_min_k4).
func q4kScaleMin(q []byte, j int) (sc, mn byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | q[j-4]>>6<<4, q[j+4]>>4 | q[j]>>6<<4
}

// q4kQuant returns quant v of sub-block sb from the 128 nibble bytes of a
// block_q4_K: sub-blocks 2i and 2i+1 share bytes 32i..32i+31, low and high
// nibbles.
func q4kQuant(qs []byte, sb, v int) byte {
	return qs[sb/2*32+v] >> (4 * (sb % 2)) & 0xf
}

func (a *Q4KMatrix) Rows() int  { return a.n }
func (a *Q4KMatrix) Cols() int  { return a.k }
func (a *Q4KMatrix) Bytes() int { return len(a.data) }

func (a *Q4KMatrix) MulT(out, x []float32, m int) {
	checkShapes("Q4KMatrix.MulT", out, x, m, a.k, a.n)
	lowpMul(best, a, out, x, m, false)
}

func (a *Q4KMatrix) MulTAdd(out, x []float32, m int) {
	checkShapes("Q4KMatrix.MulTAdd", out, x, m, a.k, a.n)
	lowpMul(best, a, out, x, m, true)
}

// lowp is what the product driver needs of a packed low-precision matrix.
type lowp interface {
	Linear
	// column writes w[r][p] to dst[p·stride] for p < k.
	column(dst []float32, stride, r int)
}

// decode writes columns [32p, 32p+32) of a, k values each, into dst in
// Matrix panel layout (zero past column n): the portable path.
func decode(a lowp, dst []float32, p int) {
	n, k := a.Rows(), a.Cols()
	for c := range panelWidth {
		if r := p*panelWidth + c; r < n {
			a.column(dst[c:], panelWidth, r)
			continue
		}
		for q := range k {
			dst[q*panelWidth+c] = 0
		}
	}
}

// Row writes row r of w, k values, to dst: an embedding lookup from the
// packed weights.
func (a *Matrix) Row(dst []float32, r int) {
	checkRow("Matrix.Row", dst, r, a.n, a.k)
	src := a.data[r/panelWidth*a.k*panelWidth+r%panelWidth:]
	for p := range dst[:a.k] {
		dst[p] = src[p*panelWidth]
	}
}

func checkRow(fn string, dst []float32, r, n, k int) {
	if r < 0 || r >= n || len(dst) < k {
		panic(fmt.Sprintf("cpu.%s: row %d of %d into %d values, want %d", fn, r, n, len(dst), k))
	}
}

func (a *halfMatrix) Row(dst []float32, r int) {
	checkRow("Row", dst, r, a.n, a.k)
	a.column(dst, 1, r)
}

func (a *halfMatrix) column(dst []float32, stride, r int) {
	src := a.data[r/panelWidth*a.k*panelWidth+r%panelWidth:]
	for p := range a.k {
		v := src[p*panelWidth]
		if a.f16 {
			dst[p*stride] = F16ToFloat32(v)
		} else {
			dst[p*stride] = math.Float32frombits(uint32(v) << 16)
		}
	}
}

func (a *Q8Matrix) Row(dst []float32, r int) {
	checkRow("Q8Matrix.Row", dst, r, a.n, a.k)
	a.column(dst, 1, r)
}

func (a *Q8Matrix) column(dst []float32, stride, r int) {
	s, c := r/stripWidth, r%stripWidth
	for b := range a.blocks {
		blk := a.data[(s*a.blocks+b)*q8StripBytes:][:q8StripBytes]
		d := F16ToFloat32(uint16(blk[2*c]) | uint16(blk[2*c+1])<<8)
		for v := range min(actBlock, a.k-b*actBlock) {
			q := int(blk[32+v/4*64+c*4+v%4]) - 128
			dst[(b*actBlock+v)*stride] = d * float32(q)
		}
	}
}

func (a *Q4KMatrix) Row(dst []float32, r int) {
	checkRow("Q4KMatrix.Row", dst, r, a.n, a.k)
	a.column(dst, 1, r)
}

func (a *Q4KMatrix) column(dst []float32, stride, r int) {
	s, c := r/stripWidth, r%stripWidth
	for u := range a.supers {
		sup := a.data[(s*a.supers+u)*q4kSupBytes:][:q4kSupBytes]
		d := F16ToFloat32(uint16(sup[2*c]) | uint16(sup[2*c+1])<<8)
		dmin := F16ToFloat32(uint16(sup[32+2*c]) | uint16(sup[33+2*c])<<8)
		for sb := range 8 {
			sub := sup[q4kHeadBytes+sb*q4kSubBytes:]
			scale, mn := d*float32(sub[c]), dmin*float32(sub[16+c])
			for v := range actBlock {
				at := u*q4kValues + sb*actBlock + v
				if at >= a.k {
					return
				}
				q := sub[32+v%16/4*64+c*4+v%4] >> (4 * (v / 16)) & 0xf
				dst[at*stride] = scale*float32(q) - mn
			}
		}
	}
}

// lowpJob is one product on a low-precision matrix, pooled like mulJob.
// Its parts are a grid of row groups × column-unit groups, a unit being a
// 16-column strip on the quantized path and a 32-column panel otherwise.
type lowpJob struct {
	kern   *kernel
	a      lowp
	out, x []float32
	m      int
	acc    bool
	quant  bool   // VNNI path: xq holds x quantized to int8 blocks
	xq     []byte // m rows of ⌈k/32⌉ activation blocks
	ldx    int    // bytes per xq row

	rows, tileRows, tileExtra int
	grid                      // row tiles × column units
}

var (
	lowpFree  freeList[lowpJob]
	decodeBuf freeList[[]float32]
)

func lowpMul(kern *kernel, a lowp, out, x []float32, m int, acc bool) {
	n, k := a.Rows(), a.Cols()
	if emptyProduct(out, m, n, k, acc) {
		return
	}
	j := lowpFree.get()
	j.kern, j.a, j.out, j.x, j.m, j.acc = kern, a, out, x, m, acc
	unitWidth := panelWidth
	j.rows = kern.maxRows
	j.quant = false
	switch w := a.(type) {
	case *Q8Matrix:
		j.quant = kern.q8Tile != nil
		if j.quant {
			j.quantize(w.blocks, true)
		}
	case *Q4KMatrix:
		j.quant = kern.q4kTile != nil
		if j.quant {
			j.quantize(w.supers*8, false)
		}
	}
	if j.quant {
		unitWidth, j.rows = stripWidth, maxQRows
	}
	tiles := (m + j.rows - 1) / j.rows
	j.tileRows, j.tileExtra = m/tiles, m%tiles
	target := 1
	if workers := runtime.GOMAXPROCS(0); workers > 1 && 2*m*n*k >= parallelFlops {
		target = partsPerCore * workers
	}
	parallel(j, j.cut(tiles, (n+unitWidth-1)/unitWidth, target, true))
	j.kern, j.a, j.out, j.x = nil, nil, nil, nil
	lowpFree.put(j)
}

// quantize fills xq with x cut into blocks of 32 values, each quantized
// to int8 q with its own scale dx = max|x|/127, as ggml's q8_0 does, then
// dx as float32, then the term of the weights' offset (see gen/quant.go):
// for Q8_0 (weights stored +128) the int32 −128·Σq, for Q4_K the float32
// dx·Σq that the per-column min multiplies. Values past k are zero.
func (j *lowpJob) quantize(blocks int, q8 bool) {
	k := j.a.Cols()
	j.ldx = blocks * actBytes
	if size := j.m * j.ldx; cap(j.xq) < size {
		j.xq = make([]byte, size)
	}
	j.xq = j.xq[:j.m*j.ldx]
	full := 0
	if j.kern.quantize != nil {
		full = min(blocks, k/actBlock)
	}
	for i := range j.m {
		row := j.x[i*k : i*k+k]
		if full > 0 {
			j.kern.quantize(j.xq[i*j.ldx:], row, full, q8)
		}
		for b := full; b < blocks; b++ {
			dst := j.xq[i*j.ldx+b*actBytes:][:actBytes]
			vals := row[min(b*actBlock, k):min(b*actBlock+actBlock, k)]
			quantizeBlock(dst, vals, q8)
		}
	}
}

func quantizeBlock(dst []byte, vals []float32, q8 bool) {
	var amax float32
	for _, v := range vals {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	sum := 0
	for i := range actBlock {
		q := 0
		if i < len(vals) {
			q = int(math.Round(float64(vals[i] * id)))
		}
		dst[i] = byte(int8(q))
		sum += q
	}
	putF32(dst[32:], d)
	if q8 {
		putU32(dst[36:], uint32(int32(-128*sum)))
	} else {
		putF32(dst[36:], d*float32(sum))
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func putF32(b []byte, v float32) { putU32(b, math.Float32bits(v)) }

func putU32(b []byte, u uint32) {
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
}

func (j *lowpJob) tile(t int) (i0, mr int) {
	i0 = t*j.tileRows + min(t, j.tileExtra)
	mr = j.tileRows
	if t < j.tileExtra {
		mr++
	}
	return i0, mr
}

func (j *lowpJob) runPart(i int) {
	t0, t1, u0, u1 := j.part(i)
	if j.quant {
		for s := u0; s < u1; s++ {
			j.strip(s, t0, t1)
		}
		return
	}
	if h, ok := j.a.(*halfMatrix); ok {
		if tile := j.kern.halfTile[b2i(h.f16)]; tile != nil {
			for p := u0; p < u1; p++ {
				j.halfPanel(h, tile, p, t0, t1)
			}
			return
		}
	}
	// Portable path: widen one panel to float32 and run the float32
	// kernel on it.
	k := j.a.Cols()
	size := k * panelWidth
	buf := decodeBuf.get()
	if cap(*buf) < size {
		*buf = make([]float32, size)
	}
	panel := (*buf)[:size]
	var g gemm
	g.setup(j.kern, j.out, j.x, j.m, j.a.Rows(), k, k, j.a.Rows())
	g.acc = j.acc
	g.tiles, g.tileRows, g.tileExtra = j.tiles, j.tileRows, j.tileExtra
	for p := u0; p < u1; p++ {
		decode(j.a, panel, p)
		g.panel(panel, p, t0, t1)
	}
	decodeBuf.put(buf)
}

// strip runs the VNNI kernel over strip s for row tiles [t0, t1), k cut
// into chunks of about qChunk values so that a chunk of the strip stays in
// L1 while every row tile reads it (a whole strip of a 4864-long row is
// 82 KB in Q8_0).
func (j *lowpJob) strip(s, t0, t1 int) {
	n := j.a.Rows()
	var w []byte
	var blocks, blockBytes, xBlock int
	tile := j.kern.q8Tile
	switch a := j.a.(type) {
	case *Q8Matrix:
		blocks, blockBytes, xBlock = a.blocks, q8StripBytes, actBytes
	case *Q4KMatrix:
		blocks, blockBytes, xBlock = a.supers, q4kSupBytes, 8*actBytes
		tile = j.kern.q4kTile
	}
	w = j.a.(interface{ raw() []byte }).raw()[s*blocks*blockBytes:][:blocks*blockBytes]
	chunk := max(1, qChunk*actBytes/xBlock/actBlock)
	col := s * stripWidth
	cols := min(stripWidth, n-col)
	if cols == stripWidth {
		for b0 := 0; b0 < blocks; b0 += chunk {
			nb := min(chunk, blocks-b0)
			for t := t0; t < t1; t++ {
				i0, mr := j.tile(t)
				tile(mr, nb, w[b0*blockBytes:], j.xq[i0*j.ldx+b0*xBlock:], j.ldx, j.out[i0*n+col:], n, j.acc || b0 > 0)
			}
		}
		return
	}
	var tmp [maxQRows * stripWidth]float32
	for t := t0; t < t1; t++ {
		i0, mr := j.tile(t)
		for b0 := 0; b0 < blocks; b0 += chunk {
			nb := min(chunk, blocks-b0)
			tile(mr, nb, w[b0*blockBytes:], j.xq[i0*j.ldx+b0*xBlock:], j.ldx, tmp[:], stripWidth, b0 > 0)
		}
		for r := range mr {
			o := j.out[(i0+r)*n+col:][:cols]
			if j.acc {
				addGo(o, tmp[r*stripWidth:][:cols])
			} else {
				copy(o, tmp[r*stripWidth:])
			}
		}
	}
}

// qChunk is the k extent of one quantized kernel call: 512 values are
// 8.5 KB of a Q8_0 strip and 4.6 KB of a Q4_K one.
const qChunk = 512

func (a *Q8Matrix) raw() []byte  { return a.data }
func (a *Q4KMatrix) raw() []byte { return a.data }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// halfPanel is gemm.panel for a bf16 or f16 panel: k blocked by kcMax so
// that the slice of the panel stays in L1 across the row tiles.
func (j *lowpJob) halfPanel(a *halfMatrix, tile halfTile, p, t0, t1 int) {
	n, k := a.n, a.k
	b := a.data[p*k*panelWidth:][:k*panelWidth]
	col := p * panelWidth
	if cols := n - col; cols < panelWidth {
		buf := tileFree.get()
		defer tileFree.put(buf)
		tmp := buf[:]
		for t := t0; t < t1; t++ {
			i0, mr := j.tile(t)
			for pc := 0; pc < k; pc += kcMax {
				tile(mr, min(kcMax, k-pc), j.x[i0*k+pc:], k, b[pc*panelWidth:], tmp, panelWidth, pc > 0)
			}
			for r := range mr {
				o := j.out[(i0+r)*n+col:][:cols]
				if j.acc {
					j.kern.add(o, tmp[r*panelWidth:][:cols])
				} else {
					copy(o, tmp[r*panelWidth:])
				}
			}
		}
		return
	}
	for pc := 0; pc < k; pc += kcMax {
		kb := min(kcMax, k-pc)
		for t := t0; t < t1; t++ {
			i0, mr := j.tile(t)
			tile(mr, kb, j.x[i0*k+pc:], k, b[pc*panelWidth:], j.out[i0*n+col:], n, j.acc || pc > 0)
		}
	}
}

// F16ToFloat32 widens an IEEE half-precision value.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0:
		// Zero or subnormal: frac·2⁻²⁴, exact in float32.
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// Float32ToF16 rounds v to the nearest IEEE half (ties to even),
// saturating to ±Inf.
func Float32ToF16(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127
	mant := b & 0x7fffff
	switch {
	case exp == 128: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp > 15:
		return sign | 0x7c00
	case exp >= -14:
		h := uint32(exp+15)<<10 | mant>>13
		rest := mant & 0x1fff
		if rest > 0x1000 || rest == 0x1000 && h&1 == 1 {
			h++ // may carry into the exponent, up to Inf: still right
		}
		return sign | uint16(h)
	case exp >= -25:
		// Subnormal half: shift the full significand into place.
		full := mant | 0x800000
		shift := uint(-exp - 14 + 13)
		h := full >> shift
		rest := full & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rest > half || rest == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	return sign
}

// Float32ToBF16 rounds v to the nearest bfloat16 (ties to even).
func Float32ToBF16(v float32) uint16 {
	b := math.Float32bits(v)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// QuantizeQ8 quantizes w[n×k] to n rows of ⌈k/32⌉ ggml block_q8_0, as
// ggml does: d = max|x|/127, q = round(x/d).
//
// Large matrices (a model quantized at load) are split by rows over
// GOMAXPROCS goroutines.
func QuantizeQ8(w []float32, n, k int) []byte {
	blocks := (k + actBlock - 1) / actBlock
	out := make([]byte, n*blocks*Q8BlockBytes)
	workers := min(runtime.GOMAXPROCS(0), n*k>>16) // at least 64Ki values each
	if workers <= 1 {
		quantizeQ8Rows(out, w, 0, n, k)
		return out
	}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { quantizeQ8Rows(out, w, i*n/workers, (i+1)*n/workers, k) })
	}
	wg.Wait()
	return out
}

// quantizeQ8Rows is QuantizeQ8 for rows [r0, r1) of w, into out.
func quantizeQ8Rows(out []byte, w []float32, r0, r1, k int) {
	blocks := (k + actBlock - 1) / actBlock
	for r := r0; r < r1; r++ {
		row := w[r*k : r*k+k]
		for b := range blocks {
			vals := row[b*actBlock : min(b*actBlock+actBlock, k)]
			dst := out[(r*blocks+b)*Q8BlockBytes:][:Q8BlockBytes]
			var amax float32
			for _, v := range vals {
				amax = max(amax, abs32(v))
			}
			d := amax / 127
			var id float32
			if d != 0 {
				id = 1 / d
			}
			h := Float32ToF16(d)
			dst[0], dst[1] = byte(h), byte(h>>8)
			for i, v := range vals {
				dst[2+i] = byte(int8(math.Round(float64(v * id))))
			}
		}
	}
}

// QuantizeQ4K quantizes w[n×k] to n rows of ⌈k/256⌉ ggml block_q4_K with
// a plain min/max fit per sub-block (ggml searches for a better one);
// values past k are zero.
func QuantizeQ4K(w []float32, n, k int) []byte {
	supers := (k + q4kValues - 1) / q4kValues
	out := make([]byte, n*supers*Q4KBlockBytes)
	var vals [q4kValues]float32
	var scales, mins [8]float32
	var q [q4kValues]byte
	for r := range n {
		for u := range supers {
			clear(vals[:])
			copy(vals[:], w[r*k+u*q4kValues:r*k+min(u*q4kValues+q4kValues, k)])
			var maxScale, maxMin float32
			for sb := range 8 {
				lo, hi := float32(0), float32(0)
				for _, v := range vals[sb*32 : sb*32+32] {
					lo, hi = min(lo, v), max(hi, v)
				}
				scales[sb], mins[sb] = (hi-lo)/15, -lo
				maxScale, maxMin = max(maxScale, scales[sb]), max(maxMin, mins[sb])
			}
			d, dmin := Float32ToF16(maxScale/63), Float32ToF16(maxMin/63)
			df, dminf := F16ToFloat32(d), F16ToFloat32(dmin)
			var sc, mn [8]byte
			for sb := range 8 {
				if df > 0 {
					sc[sb] = byte(min(63, math.Round(float64(scales[sb]/df))))
				}
				if dminf > 0 {
					mn[sb] = byte(min(63, math.Round(float64(mins[sb]/dminf))))
				}
				step, off := df*float32(sc[sb]), dminf*float32(mn[sb])
				for v := range 32 {
					var t float64
					if step > 0 {
						t = math.Round(float64((vals[sb*32+v] + off) / step))
					}
					q[sb*32+v] = byte(max(0, min(15, t)))
				}
			}
			dst := out[(r*supers+u)*Q4KBlockBytes:][:Q4KBlockBytes]
			dst[0], dst[1], dst[2], dst[3] = byte(d), byte(d>>8), byte(dmin), byte(dmin>>8)
			s := dst[4:16]
			for j := range 4 {
				s[j], s[j+4] = sc[j], mn[j]
			}
			for j := 4; j < 8; j++ {
				s[j+4] = sc[j]&0xf | mn[j]&0xf<<4
				s[j-4] |= sc[j] >> 4 << 6
				s[j] |= mn[j] >> 4 << 6
			}
			for c := range 4 {
				for l := range 32 {
					dst[16+32*c+l] = q[64*c+l] | q[64*c+32+l]<<4
				}
			}
		}
	}
	return out
}

// Format is a stored weight type with a Linear of its own.
type Format int

const (
	FormatBF16 Format = iota + 1
	FormatF16
	FormatQ8_0
	FormatQ4K
)

// Native reports whether this machine multiplies weights of format f in
// that format with vector code. Where it does not, products still work,
// but widen every panel to float32 in Go on every call: a loader should
// then rather widen the weights once (as float32 Matrix), trading memory
// for speed.
func Native(f Format) bool {
	switch f {
	case FormatBF16:
		return best.halfTile[0] != nil
	case FormatF16:
		return best.halfTile[1] != nil
	case FormatQ8_0:
		return best.q8Tile != nil
	case FormatQ4K:
		return best.q4kTile != nil
	}
	return false
}
