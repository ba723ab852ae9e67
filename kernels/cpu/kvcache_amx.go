package cpu

import (
	"fmt"
	"runtime"
)

// An AMX KVCache (NewKVCacheAMX) keeps its keys and values in bfloat16,
// laid out as the B operands of the tile products that read them, and
// attends on the tile unit, a tile of 16 query rows of one head at a time:
// the scores q·kᵀ (keys as AMXMatrix weights: positions are its columns),
// their softmax in float32, then the probabilities rounded to bfloat16
// times the values (positions are k). Half the memory of a float32 cache,
// and faster: on the default model's full pass of 256 positions,
// attention went from 40% of the time to 16%.

// AMXAttention reports whether NewKVCacheAMX takes heads of headDim
// values: AMX is there and headDim is a multiple of 64 (one group of
// output columns).
func AMXAttention(headDim int) bool { return headDim > 0 && headDim%amxGroup == 0 && AMX() }

// NewKVCacheAMX returns an empty AMX cache (see above) for heads K/V heads
// of headDim values at capacity positions. It panics where AMXAttention
// is false.
func NewKVCacheAMX(heads, headDim, capacity int) *KVCache {
	if !AMXAttention(headDim) || heads < 0 || capacity < 0 {
		panic(fmt.Sprintf("cpu.NewKVCacheAMX: no AMX attention for heads=%d headDim=%d capacity=%d", heads, headDim, capacity))
	}
	c := &KVCache{heads: heads, dim: headDim, cap: capacity, amx: true,
		kGroups: (capacity + amxGroup - 1) / amxGroup, vBlocks: (capacity + amxKBlock - 1) / amxKBlock}
	c.k16 = make([]uint16, heads*c.kHead())
	c.v16 = make([]uint16, heads*c.vHead())
	c.job.c = c
	return c
}

// AMX reports whether the cache is an AMX one.
func (c *KVCache) AMX() bool { return c.amx }

// kHead and vHead are the bf16 values of one head's keys and values.
func (c *KVCache) kHead() int { return c.kGroups * c.dim / amxKBlock * 4 * amxBlockU16 }
func (c *KVCache) vHead() int { return c.dim / amxGroup * c.vBlocks * 4 * amxBlockU16 }

// storeAMX is Store on an AMX cache: a head's keys are laid out as an
// AMXMatrix of positions × dims, its values as one of dims × positions
// (see amxIndex).
func (c *KVCache) storeAMX(pos int, k, v []float32, rows, ld int) {
	d, kh, vh := c.dim, c.kHead(), c.vHead()
	// The row of one head rounded to bf16, block b of 32 values at
	// 512·b (bf16Blocks' spacing).
	var tmp [8 * amxBlockU16]uint16
	for i := range rows {
		p := pos + i
		// Keys: position p is column p%16 of B tile p/16%4 of group p/64,
		// dims 2r and 2r+1 of a k block its row r.
		kcol := (p/amxGroup*(d/amxKBlock)*4+p/16%4)*amxBlockU16 + p%16*2
		// Values: position p is lane p%2 of row p%32/2 of k block p/32,
		// dim j column j%16 of tile j/16%4 of group j/64.
		vrow := p/amxKBlock*4*amxBlockU16 + p%amxKBlock/2*32 + p%2
		for g := range c.heads {
			kd, vd := c.k16[g*kh:][:kh], c.v16[g*vh:][:vh]
			for b0 := 0; b0 < d/amxKBlock; b0 += 8 {
				blocks := min(8, d/amxKBlock-b0)
				bf16Blocks(&tmp[0], &k[i*ld+g*d+b0*amxKBlock], blocks)
				for b := range blocks {
					src := tmp[b*amxBlockU16:][:amxKBlock]
					t := kd[kcol+(b0+b)*4*amxBlockU16:][:15*32+2]
					for r := range 16 {
						t[r*32], t[r*32+1] = src[2*r], src[2*r+1]
					}
				}
				bf16Blocks(&tmp[0], &v[i*ld+g*d+b0*amxKBlock], blocks)
				for b := range blocks {
					// 32 dims: two tiles of 16 columns, every other value.
					for half := range 2 {
						j := (b0+b)*amxKBlock + 16*half
						src := tmp[b*amxBlockU16+16*half:][:16]
						t := vd[j/amxGroup*c.vBlocks*4*amxBlockU16+vrow+j/16%4*amxBlockU16:][:31]
						for x, u := range src {
							t[2*x] = u
						}
					}
				}
			}
		}
	}
}

// amxAttend is attendJob's state on an AMX cache: per part, the scores of
// a tile (16 rows × the positions rounded up to 64), and the tile's
// queries and probabilities in bf16 A tiles.
type amxAttend struct {
	s   []float32
	a16 []uint16
	o   []float32 // per part, the tile's output, 16 × dim
}

func (j *attendJob) setupAMX() {
	c := j.c
	tiles := (j.nq + amxRows - 1) / amxRows
	j.groups = 1
	if workers := runtime.GOMAXPROCS(0); workers > 1 && 4*j.qHeads*j.nq*j.n*c.dim >= 8*parallelFlops {
		want := (workers + j.qHeads - 1) / j.qHeads
		j.groups = max(1, min(tiles, want))
	}
	j.tilesPer = (tiles + j.groups - 1) / j.groups
	j.groups = (tiles + j.tilesPer - 1) / j.tilesPer
	parts := j.qHeads * j.groups
	npad := (j.n + amxGroup - 1) / amxGroup * amxGroup
	kbd, kbp := c.dim/amxKBlock, (j.n+amxKBlock-1)/amxKBlock
	j.amx.s = grow(j.amx.s, parts*amxRows*npad)
	j.amx.o = grow(j.amx.o, parts*amxRows*c.dim)
	if need := parts * (kbd + kbp) * amxBlockU16; cap(j.amx.a16) < need {
		j.amx.a16 = make([]uint16, need)
	}
}

func (j *attendJob) runPartAMX(i int) {
	c := j.c
	h, grp := i/j.groups, i%j.groups
	g := h / j.group
	n, d := j.n, c.dim
	groups := (n + amxGroup - 1) / amxGroup
	npad := groups * amxGroup
	kbd, kbp := d/amxKBlock, (n+amxKBlock-1)/amxKBlock
	s := j.amx.s[i*amxRows*npad:][:amxRows*npad]
	o := j.amx.o[i*amxRows*d:][:amxRows*d]
	a16 := j.amx.a16[i*(kbd+kbp)*amxBlockU16:][:(kbd+kbp)*amxBlockU16]
	qa, pa := a16[:kbd*amxBlockU16], a16[kbd*amxBlockU16:]
	keys := c.k16[g*c.kHead():][:c.kHead()]
	vals := c.v16[g*c.vHead():][:c.vHead()]
	tiles := (j.nq + amxRows - 1) / amxRows
	for t := grp * j.tilesPer; t < min((grp+1)*j.tilesPer, tiles); t++ {
		i0 := t * amxRows
		mr := min(amxRows, j.nq-i0)
		for r := range amxRows {
			if r < mr {
				bf16Blocks(&qa[r*amxKBlock], &j.q[(i0+r)*j.ldq+h*d], kbd)
			} else {
				clearRows(qa[r*amxKBlock:], kbd)
			}
		}
		// s = q·kᵀ over groups of 64 positions.
		amxTiles(&amxConfig[0], &qa[0], 2*len(qa), 1, &keys[0], kbd, groups, 2*kbd*4*amxBlockU16,
			&s[0], 4*npad, false, nil, 0)
		for r := range amxRows {
			if r >= mr {
				clearRows(pa[r*amxKBlock:], kbp)
				continue
			}
			row := s[r*npad : r*npad+n]
			best.softmax(row, j.scale)
			whole := n / amxKBlock
			if whole > 0 {
				bf16Blocks(&pa[r*amxKBlock], &row[0], whole)
			}
			if whole < kbp { // the last block: what is past n is zero
				dst := pa[whole*amxBlockU16+r*amxKBlock:][:amxKBlock]
				for x := range amxKBlock {
					dst[x] = 0
					if p := whole*amxKBlock + x; p < n {
						dst[x] = Float32ToBF16(row[p])
					}
				}
			}
		}
		// o = p·v, amxChunk blocks of 32 positions at a time.
		for b0 := 0; b0 < kbp; b0 += amxChunk {
			amxTiles(&amxConfig[0], &pa[b0*amxBlockU16], 2*len(pa), 1, &vals[b0*4*amxBlockU16],
				min(amxChunk, kbp-b0), d/amxGroup, 2*c.vBlocks*4*amxBlockU16, &o[0], 4*d, b0 > 0, nil, 0)
		}
		for r := range mr {
			copy(j.out[(i0+r)*j.ldo+h*d:][:d], o[r*d:])
		}
	}
}

// clearRows zeroes one row (32 values) of each of blocks A-tile blocks.
func clearRows(a []uint16, blocks int) {
	for b := range blocks {
		clear(a[b*amxBlockU16:][:amxKBlock])
	}
}
