package cpu

import (
	"fmt"
	"runtime"
)

// Attention computes one head of unmasked (bidirectional) scaled
// dot-product attention:
//
//	out[i] = Σ_j softmax_j(scale · q[i]·k[j]) · v[j]
//
// for nq query rows and nk key and value rows of headDim values each. Rows
// are strided, so that one head of a [tokens × heads·headDim] activation is
// passed in place: q[i] and out[i] start at i·qStride, k[j] and v[j] at
// j·kvStride. For head h of a model with grouped K/V heads that is
//
//	Attention(out[h*hd:], q[h*hd:], k[g*hd:], v[g*hd:], nq, nk, hd, heads*hd, kvHeads*hd, 1/√hd)
//
// with g = h/(heads/kvHeads). With nk = 0 the output rows are zero. out must
// not overlap q, k or v. Attention is safe for concurrent calls and
// allocates nothing once its scratch pool is warm.
//
// Attention panics, naming the shapes, if a slice is too short or a stride
// is shorter than headDim.
func Attention(out, q, k, v []float32, nq, nk, headDim, qStride, kvStride int, scale float32) {
	checkAttention(out, q, k, v, nq, nk, headDim, qStride, kvStride)
	attention(best, out, q, k, v, nq, nk, headDim, qStride, kvStride, scale)
}

func checkAttention(out, q, k, v []float32, nq, nk, headDim, qStride, kvStride int) {
	span := func(rows, stride int) int {
		if rows == 0 {
			return 0
		}
		return (rows-1)*stride + headDim
	}
	switch {
	case nq < 0 || nk < 0 || headDim < 0:
		panic(fmt.Sprintf("cpu.Attention: negative shape nq=%d nk=%d headDim=%d", nq, nk, headDim))
	case qStride < headDim || kvStride < headDim:
		panic(fmt.Sprintf("cpu.Attention: strides %d (q) and %d (k, v) shorter than headDim %d", qStride, kvStride, headDim))
	case len(q) < span(nq, qStride):
		panic(fmt.Sprintf("cpu.Attention: len(q) = %d, want %d rows of stride %d", len(q), nq, qStride))
	case len(out) < span(nq, qStride):
		panic(fmt.Sprintf("cpu.Attention: len(out) = %d, want %d rows of stride %d", len(out), nq, qStride))
	case len(k) < span(nk, kvStride):
		panic(fmt.Sprintf("cpu.Attention: len(k) = %d, want %d rows of stride %d", len(k), nk, kvStride))
	case len(v) < span(nk, kvStride):
		panic(fmt.Sprintf("cpu.Attention: len(v) = %d, want %d rows of stride %d", len(v), nk, kvStride))
	}
}

// attnJob is the state of one Attention call, pooled: the packed K and V,
// the score matrix, and the two products over them. Its parts are groups
// of query rows, each taken through scores, softmax and the mix of V.
type attnJob struct {
	scores gemm // s[nq×nk] = q · kᵀ
	mix    gemm // out[nq×headDim] = softmax(scale·s) · v
	kp     []float32
	vp     []float32
	s      []float32
	scale  float32

	tilesPer int
}

var attnFree freeList[attnJob]

func attention(kern *kernel, out, q, k, v []float32, nq, nk, headDim, qStride, kvStride int, scale float32) {
	if nq == 0 || headDim == 0 {
		return
	}
	if nk == 0 {
		for i := range nq {
			clear(out[i*qStride : i*qStride+headDim])
		}
		return
	}
	j := attnFree.get()
	defer attnFree.put(j)

	// K packs as the weights of MulT (keys are the output columns of the
	// scores); V packs as a row-major B, each panel 32 of its columns.
	kPanels, vPanels := panelsOf(nk), panelsOf(headDim)
	j.kp = grow(j.kp, kPanels*headDim*panelWidth)
	for p := range kPanels {
		packPanel(j.kp[p*headDim*panelWidth:(p+1)*headDim*panelWidth], k, kvStride, nk, headDim, p)
	}
	j.vp = grow(j.vp, vPanels*nk*panelWidth)
	for p := range vPanels {
		packColumns(j.vp[p*nk*panelWidth:(p+1)*nk*panelWidth], v, kvStride, nk, headDim, p)
	}
	j.s = grow(j.s, nq*nk)
	j.scale = scale
	j.scores.setup(kern, j.s, q, nq, nk, headDim, qStride, nk)
	j.mix.setup(kern, out, j.s, nq, headDim, nk, nk, qStride)

	groups := 1
	if workers := runtime.GOMAXPROCS(0); workers > 1 && 4*nq*nk*headDim >= parallelFlops {
		groups = min(j.scores.tiles, partsPerCore*workers)
	}
	j.tilesPer = (j.scores.tiles + groups - 1) / groups
	parallel(j, (j.scores.tiles+j.tilesPer-1)/j.tilesPer)
}

func (j *attnJob) runPart(i int) {
	t0 := i * j.tilesPer
	t1 := min(t0+j.tilesPer, j.scores.tiles)
	nk, hd := j.scores.n, j.scores.k
	for p := range panelsOf(nk) {
		j.scores.panel(j.kp[p*hd*panelWidth:(p+1)*hd*panelWidth], p, t0, t1)
	}
	r0, _ := j.scores.tile(t0)
	r1, mr := j.scores.tile(t1 - 1)
	for r := r0; r < r1+mr; r++ {
		j.scores.kern.softmax(j.s[r*nk:r*nk+nk], j.scale)
	}
	// Both products tile the same rows alike: same m, same kernel.
	for p := range panelsOf(hd) {
		j.mix.panel(j.vp[p*nk*panelWidth:(p+1)*nk*panelWidth], p, t0, t1)
	}
}

// packColumns writes columns [32j, 32j+32) of b[k×n] (row stride ldb) into
// dst[k×32], padded with zeros past column n: one panel of a row-major B.
func packColumns(dst, b []float32, ldb, k, n, j int) {
	c0 := j * panelWidth
	cols := min(panelWidth, n-c0)
	for p := range k {
		d := dst[p*panelWidth : (p+1)*panelWidth]
		copy(d, b[p*ldb+c0:p*ldb+c0+cols])
		clear(d[cols:])
	}
}

// grow returns s resliced to n elements, reallocated only when too small.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
