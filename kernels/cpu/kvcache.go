package cpu

import (
	"fmt"
	"runtime"
)

// KVCache holds the keys and values of one attention layer's K/V heads for
// positions 0..Cap()-1, and computes (grouped-query) attention over them.
//
// Attention over a sequence that changes a few positions at a time (a
// diffusion model's denoising steps) would otherwise repack every key and
// value at every call; KVCache keeps them packed as the products read them,
// so a Store costs a copy of the rows stored and Attend packs nothing:
// the keys of a head as the weights of Matrix.MulT (panels of 32 positions,
// HeadDim×32 each), its values as a row-major B (panels of 32 of its
// HeadDim columns, Cap×32 each).
//
// A KVCache is not safe for concurrent use, with one exception: Store
// calls for disjoint positions may run at once (a caller storing rows from
// several cores). Attend keeps its scratch in the cache.
type KVCache struct {
	heads, dim, cap  int
	kPanels, vPanels int
	k, v             []float32
	job              attendJob

	// An AMX cache (kvcache_amx.go) holds bf16 tiles instead of k and v.
	amx              bool
	k16, v16         []uint16
	kGroups, vBlocks int // positions in groups of 64, blocks of 32
}

// NewKVCache returns an empty cache for heads K/V heads of headDim values
// at capacity positions. It panics, naming the sizes, if one is negative.
func NewKVCache(heads, headDim, capacity int) *KVCache {
	if heads < 0 || headDim < 0 || capacity < 0 {
		panic(fmt.Sprintf("cpu.NewKVCache: negative size heads=%d headDim=%d capacity=%d", heads, headDim, capacity))
	}
	c := &KVCache{heads: heads, dim: headDim, cap: capacity,
		kPanels: panelsOf(capacity), vPanels: panelsOf(headDim)}
	c.k = make([]float32, heads*c.kPanels*headDim*panelWidth)
	c.v = make([]float32, heads*c.vPanels*capacity*panelWidth)
	c.job.c = c
	return c
}

// Cap returns the number of positions the cache holds.
func (c *KVCache) Cap() int { return c.cap }

// Store writes the keys and values of positions [pos, pos+rows): row i's
// keys are k[i·ld : i·ld+heads·headDim], head after head, and its values
// likewise in v. Store panics, naming the sizes, if the positions pass the
// capacity or k or v is too short.
func (c *KVCache) Store(pos int, k, v []float32, rows, ld int) {
	width := c.heads * c.dim
	span := 0
	if rows > 0 {
		span = (rows-1)*ld + width
	}
	switch {
	case pos < 0 || rows < 0 || pos+rows > c.cap:
		panic(fmt.Sprintf("cpu.KVCache.Store: positions [%d,%d) outside a capacity of %d", pos, pos+rows, c.cap))
	case ld < width:
		panic(fmt.Sprintf("cpu.KVCache.Store: row stride %d shorter than %d heads × %d", ld, c.heads, c.dim))
	case len(k) < span || len(v) < span:
		panic(fmt.Sprintf("cpu.KVCache.Store: len(k) = %d, len(v) = %d, want %d rows of stride %d", len(k), len(v), rows, ld))
	}
	if c.amx {
		c.storeAMX(pos, k, v, rows, ld)
		return
	}
	d := c.dim
	for i := range rows {
		p := pos + i
		for g := range c.heads {
			src := k[i*ld+g*d : i*ld+(g+1)*d]
			panel := c.k[(g*c.kPanels+p/panelWidth)*d*panelWidth:]
			col := p % panelWidth
			for j, x := range src {
				panel[j*panelWidth+col] = x
			}
			src = v[i*ld+g*d : i*ld+(g+1)*d]
			for pc := range c.vPanels {
				dst := c.v[((g*c.vPanels+pc)*c.cap+p)*panelWidth:][:panelWidth]
				n := copy(dst, src[pc*panelWidth:])
				clear(dst[n:])
			}
		}
	}
}

// Attend computes, for nq query rows of qHeads heads each, unmasked
// (bidirectional) scaled dot-product attention over the keys and values of
// positions [0, n):
//
//	out[i][h] = Σ_j softmax_j(scale · q[i][h]·k[j][g]) · v[j][g],  g = h / (qHeads/heads)
//
// Query row i is q[i·ldq : i·ldq+qHeads·headDim], head after head; output
// row i goes to out[i·ldo:], and what lies between output rows is left
// alone. qHeads must be a multiple of the cache's heads. The positions
// must have been stored; with n = 0 the output is zero. out must not
// overlap q. Attend allocates nothing once it has seen its largest nq·n.
//
// Attend panics, naming the shapes, if a slice is too short or n passes
// the capacity.
func (c *KVCache) Attend(out, q []float32, nq, qHeads, ldq, ldo, n int, scale float32) {
	width := qHeads * c.dim
	span := func(ld int) int {
		if nq == 0 {
			return 0
		}
		return (nq-1)*ld + width
	}
	switch {
	case nq < 0 || n < 0 || n > c.cap:
		panic(fmt.Sprintf("cpu.KVCache.Attend: %d queries over %d positions, capacity %d", nq, n, c.cap))
	case qHeads <= 0 || c.heads == 0 || qHeads%c.heads != 0:
		panic(fmt.Sprintf("cpu.KVCache.Attend: %d query heads do not group onto %d K/V heads", qHeads, c.heads))
	case ldq < width || ldo < width:
		panic(fmt.Sprintf("cpu.KVCache.Attend: row strides %d (q) and %d (out) shorter than %d heads × %d", ldq, ldo, qHeads, c.dim))
	case len(q) < span(ldq):
		panic(fmt.Sprintf("cpu.KVCache.Attend: len(q) = %d, want %d rows of stride %d", len(q), nq, ldq))
	case len(out) < span(ldo):
		panic(fmt.Sprintf("cpu.KVCache.Attend: len(out) = %d, want %d rows of stride %d", len(out), nq, ldo))
	}
	c.attend(best, out, q, nq, qHeads, ldq, ldo, n, scale)
}

func (c *KVCache) attend(kern *kernel, out, q []float32, nq, qHeads, ldq, ldo, n int, scale float32) {
	if nq == 0 || c.dim == 0 {
		return
	}
	if n == 0 {
		for i := range nq {
			clear(out[i*ldo : i*ldo+qHeads*c.dim])
		}
		return
	}
	j := &c.job
	j.setup(kern, out, q, nq, qHeads, ldq, ldo, n, scale)
	parallel(j, j.qHeads*j.groups)
	j.out, j.q = nil, nil
}

// attendJob is one Attend call. Its parts are query heads × groups of
// row tiles; a part takes each of its tiles through the scores
// s = q·kᵀ, their softmax and the mix softmax(scale·s)·v, so that a part
// needs scratch for one tile's scores only, not the whole [nq × n] matrix
// of every head.
type attendJob struct {
	c             *KVCache
	out, q        []float32
	s             []float32 // per part, maxTileRows × n scores
	rows          gemm      // the row tiling of the queries
	nq, n         int
	ldq, ldo      int
	qHeads, group int
	scale         float32
	tilesPer      int
	groups        int // row-tile groups per head
	amx           amxAttend
}

func (j *attendJob) setup(kern *kernel, out, q []float32, nq, qHeads, ldq, ldo, n int, scale float32) {
	c := j.c
	j.out, j.q, j.nq, j.n, j.ldq, j.ldo = out, q, nq, n, ldq, ldo
	j.qHeads, j.group, j.scale = qHeads, qHeads/c.heads, scale
	if c.amx {
		j.setupAMX()
		return
	}
	j.rows.setup(kern, nil, nil, nq, n, c.dim, ldq, n)
	tiles := j.rows.tiles
	// Enough parts for every core to take several, as long as each keeps
	// a few row tiles' worth of work.
	j.groups = 1
	if workers := runtime.GOMAXPROCS(0); workers > 1 && 4*qHeads*nq*n*c.dim >= parallelFlops {
		want := (partsPerCore*workers + qHeads - 1) / qHeads
		j.groups = max(1, min(tiles, want))
	}
	j.tilesPer = (tiles + j.groups - 1) / j.groups
	j.groups = (tiles + j.tilesPer - 1) / j.tilesPer
	j.s = grow(j.s, qHeads*j.groups*maxTileRows*n)
}

func (j *attendJob) runPart(i int) {
	c := j.c
	if c.amx {
		j.runPartAMX(i)
		return
	}
	h, grp := i/j.groups, i%j.groups
	g := h / j.group
	n, d := j.n, c.dim
	s := j.s[i*maxTileRows*n : (i+1)*maxTileRows*n]
	kBase := g * c.kPanels * d * panelWidth
	vBase := g * c.vPanels * c.cap * panelWidth
	var scores, mix gemm
	for t := grp * j.tilesPer; t < min((grp+1)*j.tilesPer, j.rows.tiles); t++ {
		i0, mr := j.rows.tile(t)
		scores.setup(j.rows.kern, s, j.q[i0*j.ldq+h*d:], mr, n, d, j.ldq, n)
		for p := range panelsOf(n) {
			off := kBase + p*d*panelWidth
			scores.panel(c.k[off:off+d*panelWidth], p, 0, 1)
		}
		for r := range mr {
			scores.kern.softmax(s[r*n:r*n+n], j.scale)
		}
		mix.setup(j.rows.kern, j.out[i0*j.ldo+h*d:], s, mr, d, n, n, j.ldo)
		for p := range c.vPanels {
			off := vBase + p*c.cap*panelWidth
			mix.panel(c.v[off:off+n*panelWidth], p, 0, 1)
		}
	}
}
