package main

import (
	"fmt"
	"math"

	"github.com/mmcloughlin/avo/ir"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Kernels for weights kept in their stored type (see lowp.go in package
// cpu): bf16 and f16 panels widened in registers (AVX-512 and AVX2), and
// Q8_0 and Q4_K strips of 16 columns multiplied by int8-quantized
// activations with AVX512_VNNI.

const (
	// maxRowsBF16 matches the f32 kernel: a bf16 or f16 panel widens into
	// the same two Z vectors per k step (AVX2: maxRows256, likewise).
	maxRowsBF16 = 12
	// maxRowsQ is the tallest quantized tile: 8 accumulators, 8 weight
	// vectors, scales and temporaries; taller tiles ran out of registers
	// in avo's allocator.
	maxRowsQ = 8
	// qBlockBytes is one 32-value block of quantized activations: 32 int8,
	// the float32 scale, the float32 scaled sum.
	qBlockBytes = 40
	// q8StripBytes is one Q8_0 block of a 16-column strip: 16 f16 scales
	// and 16×32 biased weights.
	q8StripBytes = 32 + 512
	// q4kSubBytes is one 32-value sub-block of a Q4_K strip: 16 scales, 16
	// mins, 16×32 nibbles; q4kHeadBytes are the strip's 16 d and 16 dmin.
	q4kSubBytes  = 32 + 256
	q4kHeadBytes = 64
)

const halfSignature = "func(k int, a *float32, lda int, b *uint16, c *float32, ldc int, accum bool)"

const qSignature = "func(blocks int, w *byte, x *byte, ldx int, c *float32, ldc int, accum bool)"

func lowpKernels() {
	for _, f16 := range []bool{false, true} {
		for mr := 1; mr <= maxRowsBF16; mr++ {
			kernelHalf(mr, f16)
		}
		for mr := 1; mr <= maxRows256; mr++ {
			kernelHalf256(mr, f16)
		}
	}
	for mr := 1; mr <= maxRowsQ; mr++ {
		kernelQ8(mr)
	}
	for mr := 1; mr <= maxRowsQ; mr++ {
		kernelQ4K(mr)
	}
	quantizeQ512()
}

// kernelHalf writes gemmbf16x<mr> or gemmf16x<mr>: gemm512x<mr> with B a
// panel of bfloat16 or IEEE half values, widened to float32 as they are
// loaded (bf16 by a zero extension and a 16-bit shift, f16 by VCVTPH2PS).
func kernelHalf(mr int, f16 bool) {
	typ := "bf16"
	if f16 {
		typ = "f16"
	}
	name := fmt.Sprintf("gemm%sx%d", typ, mr)
	TEXT(name, NOSPLIT, halfSignature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a tile of C (+)= A·B of %d rows and 32 columns with AVX-512, B a panel of %s.", name, mr, typ))

	const vecs = 2
	s := sets(mr * vecs)
	acc := make([][][]VecVirtual, s)
	for j := range acc {
		acc[j] = make([][]VecVirtual, mr)
		for i := range acc[j] {
			acc[j][i] = []VecVirtual{ZMM(), ZMM()}
			for _, z := range acc[j][i] {
				VPXORD(z, z, z)
			}
		}
	}
	bv := []VecVirtual{ZMM(), ZMM()}
	nt := min(2, 32-2-s*mr*vecs)
	tmp := make([]VecVirtual, nt)
	for i := range tmp {
		tmp[i] = ZMM()
	}

	k := GP64()
	Load(Param("k"), k)
	a := newRowAddr(mr, Param("a"), Param("lda"))
	b := GP64()
	Load(Param("b"), b)

	step := func(set, off int) {
		for v := range bv {
			src := Mem{Base: b, Disp: 64*off + 32*v}
			if f16 {
				VCVTPH2PS(src, bv[v])
			} else {
				VPMOVZXWD(src, bv[v])
				VPSLLD(U8(16), bv[v], bv[v])
			}
		}
		for i := 0; i < mr; i++ {
			t := tmp[i%nt]
			VBROADCASTSS(a.at(i, 4*off), t)
			VFMADD231PS(bv[0], t, acc[set][i][0])
			VFMADD231PS(bv[1], t, acc[set][i][1])
		}
	}
	loops(name, k, s, step, func(n int) {
		a.advance(4 * n)
		ADDQ(U32(64*n), b)
	})
	for j := 1; j < s; j++ {
		for i := 0; i < mr; i++ {
			for v := 0; v < vecs; v++ {
				VADDPS(acc[j][i][v], acc[0][i][v], acc[0][i][v])
			}
		}
	}
	store(name, mr, vecs, 64, acc[0])
}

// kernelHalf256 writes gemmbf16y<mr> or gemmf16y<mr>: kernel256's tile
// with B a panel of bfloat16 or IEEE half values (F16C), for AVX2.
func kernelHalf256(mr int, f16 bool) {
	typ := "bf16"
	if f16 {
		typ = "f16"
	}
	name := fmt.Sprintf("gemm%sy%d", typ, mr)
	TEXT(name, NOSPLIT, halfSignature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a tile of C (+)= A·B of %d rows and 32 columns with AVX2 and FMA, B a panel of %s.", name, mr, typ))

	const vecs = 4
	s := sets(mr * vecs)
	acc := make([][][]VecVirtual, s)
	for j := range acc {
		acc[j] = make([][]VecVirtual, mr)
		for i := range acc[j] {
			acc[j][i] = make([]VecVirtual, vecs)
			for v := range acc[j][i] {
				acc[j][i][v] = YMM()
				VXORPS(acc[j][i][v], acc[j][i][v], acc[j][i][v])
			}
		}
	}
	bv := YMM()
	tmp := make([]VecVirtual, mr)
	for i := range tmp {
		tmp[i] = YMM()
	}

	k := GP64()
	Load(Param("k"), k)
	a := newRowAddr(mr, Param("a"), Param("lda"))
	b := GP64()
	Load(Param("b"), b)

	step := func(set, off int) {
		for i := 0; i < mr; i++ {
			VBROADCASTSS(a.at(i, 4*off), tmp[i])
		}
		for v := 0; v < vecs; v++ {
			src := Mem{Base: b, Disp: 64*off + 16*v}
			if f16 {
				VCVTPH2PS(src, bv)
			} else {
				VPMOVZXWD(src, bv)
				VPSLLD(U8(16), bv, bv)
			}
			for i := 0; i < mr; i++ {
				VFMADD231PS(bv, tmp[i], acc[set][i][v])
			}
		}
	}
	loops(name, k, s, step, func(n int) {
		a.advance(4 * n)
		ADDQ(U32(64*n), b)
	})
	for j := 1; j < s; j++ {
		for i := 0; i < mr; i++ {
			for v := 0; v < vecs; v++ {
				VADDPS(acc[j][i][v], acc[0][i][v], acc[0][i][v])
			}
		}
	}
	store(name, mr, vecs, 32, acc[0])
}

// vpdpbusdBcst emits VPDPBUSD.BCST m, w, acc: acc[l] += Σ_t w.u8[4l+t] ·
// m.s8[t], m broadcast to every lane. avo v0.5.0 lacks AVX512_VNNI, so the
// instruction is built by hand; the Go assembler encodes it.
func vpdpbusdBcst(m Mem, w, acc VecVirtual) {
	Instruction(&ir.Instruction{
		Opcode:   "VPDPBUSD",
		Suffixes: []string{"BCST"},
		Operands: []Op{m, w, acc},
		Inputs:   []Op{m, w, acc},
		Outputs:  []Op{acc},
		ISA:      []string{"AVX512VNNI"},
	})
}

// qRows emits the per-row work of one 32-value block for a quantized tile:
// with W the block's 8 weight vectors (unsigned bytes, 4 k values per lane),
// S the per-column scale and M the per-column min,
//
//	acc[i] += float(Σ W·xq) · S · dx − M · sx
//
// where row i's block of activations x holds xq (32 int8), dx and sx.
// With m nil there is no min term, and the int32 at offset 36 of the block
// starts the integer sum instead (Q8_0's bias correction, see kernelQ8).
//
// The rows' integer sums are interleaved k step by k step: each row's
// chain of 8 dependent VPDPBUSDs (5 cycles of latency each) then has the
// other rows' between its links, and the one port that runs them stays
// busy.
func qRows(acc []VecVirtual, w []VecVirtual, s, m VecVirtual, x rowAddr) {
	d := make([]VecVirtual, len(acc))
	for i := range acc {
		d[i] = ZMM()
		if m == nil {
			VPBROADCASTD(x.at(i, 36), d[i])
		} else {
			VPXORD(d[i], d[i], d[i])
		}
	}
	for j := range w {
		for i := range acc {
			vpdpbusdBcst(x.at(i, 4*j), w[j], d[i])
		}
	}
	for i := range acc {
		VCVTDQ2PS(d[i], d[i])
		t := ZMM()
		VMULPS_BCST(x.at(i, 32), s, t)
		VFMADD231PS(t, d[i], acc[i])
		if m != nil {
			VFNMADD231PS_BCST(x.at(i, 36), m, acc[i])
		}
	}
}

// newRowAddrBytes is newRowAddr with the row stride given in bytes.
func newRowAddrBytes(rows int, base, ldBytes Op) rowAddr {
	r := rowAddr{ld: GP64()}
	MOVQ(ldBytes, r.ld)
	if rows > 3 {
		r.ld3 = GP64()
		LEAQ(Mem{Base: r.ld, Index: r.ld, Scale: 2}, r.ld3)
	}
	b0 := GP64()
	MOVQ(base, b0)
	r.base = append(r.base, b0)
	for g := 1; g*4 < rows; g++ {
		b := GP64()
		LEAQ(Mem{Base: r.base[g-1], Index: r.ld, Scale: 4}, b)
		r.base = append(r.base, b)
	}
	return r
}

func qAccumulators(mr int) []VecVirtual {
	acc := make([]VecVirtual, mr)
	for i := range acc {
		acc[i] = ZMM()
		VPXORD(acc[i], acc[i], acc[i])
	}
	return acc
}

func qParams(mr int) (blocks, w GPVirtual, x rowAddr) {
	blocks = GP64()
	Load(Param("blocks"), blocks)
	w = GP64()
	Load(Param("w"), w)
	xb, ld := GP64(), GP64()
	Load(Param("x"), xb)
	Load(Param("ldx"), ld)
	x = newRowAddrBytes(mr, xb, ld)
	return blocks, w, x
}

// kernelQ8 writes gemmq8x<mr>: an mr×16 tile of C (+)= X·Wᵀ over blocks
// Q8_0 blocks of one strip (see packQ8 in package cpu).
func kernelQ8(mr int) {
	name := fmt.Sprintf("gemmq8x%d", mr)
	TEXT(name, NOSPLIT, qSignature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a tile of C (+)= X·Wᵀ of %d rows and 16 columns with AVX512_VNNI, W a strip of Q8_0 blocks.", name, mr))

	acc := qAccumulators(mr)
	blocks, w, x := qParams(mr)
	TESTQ(blocks, blocks)
	JZ(LabelRef(name + "_done"))
	Label(name + "_block")
	s := ZMM()
	VCVTPH2PS(Mem{Base: w}, s)
	wv := make([]VecVirtual, 8)
	for j := range wv {
		wv[j] = ZMM()
		VMOVDQU32(Mem{Base: w, Disp: 32 + 64*j}, wv[j])
	}
	// A Q8_0 weight is d·(u−128): Σ u·xq − 128·Σ xq is the block's exact
	// integer sum, and the activations carry −128·Σ xq to start it from.
	qRows(acc, wv, s, nil, x)
	ADDQ(U32(q8StripBytes), w)
	x.advance(qBlockBytes)
	DECQ(blocks)
	JNZ(LabelRef(name + "_block"))
	Label(name + "_done")
	store(name, mr, 1, 64, perRow(acc))
}

// kernelQ4K writes gemmq4kx<mr>: an mr×16 tile of C (+)= X·Wᵀ over blocks
// Q4_K super-blocks of one strip (see packQ4K in package cpu).
func kernelQ4K(mr int) {
	name := fmt.Sprintf("gemmq4kx%d", mr)
	TEXT(name, NOSPLIT, qSignature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a tile of C (+)= X·Wᵀ of %d rows and 16 columns with AVX512_VNNI, W a strip of Q4_K super-blocks.", name, mr))

	acc := qAccumulators(mr)
	blocks, w, x := qParams(mr)
	mask := ZMM()
	mg := GP32()
	MOVL(U32(0x0f0f0f0f), mg)
	VPBROADCASTD(mg, mask)
	sub := GP64()
	TESTQ(blocks, blocks)
	JZ(LabelRef(name + "_done"))
	Label(name + "_super")
	d, dmin := ZMM(), ZMM()
	VCVTPH2PS(Mem{Base: w}, d)
	VCVTPH2PS(Mem{Base: w, Disp: 32}, dmin)
	ADDQ(U32(q4kHeadBytes), w)
	MOVQ(U32(8), sub)
	Label(name + "_sub")
	s, m := ZMM(), ZMM()
	VPMOVZXBD(Mem{Base: w}, s)
	VCVTDQ2PS(s, s)
	VMULPS(d, s, s)
	VPMOVZXBD(Mem{Base: w, Disp: 16}, m)
	VCVTDQ2PS(m, m)
	VMULPS(dmin, m, m)
	// Byte b of quant vector j holds k step j in its low nibble and k step
	// j+4 in its high one.
	wv := make([]VecVirtual, 8)
	for j := range 4 {
		wv[j], wv[j+4] = ZMM(), ZMM()
		q := Mem{Base: w, Disp: 32 + 64*j}
		VPANDD(q, mask, wv[j])
		VPSRLW(U8(4), q, wv[j+4])
		VPANDD(mask, wv[j+4], wv[j+4])
	}
	qRows(acc, wv, s, m, x)
	ADDQ(U32(q4kSubBytes), w)
	x.advance(qBlockBytes)
	DECQ(sub)
	JNZ(LabelRef(name + "_sub"))
	DECQ(blocks)
	JNZ(LabelRef(name + "_super"))
	Label(name + "_done")
	store(name, mr, 1, 64, perRow(acc))
}

// perRow shapes one accumulator per row as store wants it.
func perRow(acc []VecVirtual) [][]VecVirtual {
	r := make([][]VecVirtual, len(acc))
	for i, a := range acc {
		r[i] = []VecVirtual{a}
	}
	return r
}

// quantizeQ512 writes quantizeQ512: blocks of 32 float32 activations to
// the qBlockBytes records the quantized kernels read (see lowpJob.quantize
// in package cpu): 32 int8 q = round(x·127/max|x|) (to nearest even), the
// float32 scale max|x|/127, then for Q8_0 the int32 −128·Σq, otherwise
// the float32 scale·Σq.
func quantizeQ512() {
	TEXT("quantizeQ512", NOSPLIT, "func(x *float32, blocks int, dst *byte, q8 bool)")
	Pragma("noescape")
	Doc("quantizeQ512 quantizes blocks blocks of 32 float32 at x to int8 records at dst (see lowpJob.quantize).")
	x, n, dst := GP64(), GP64(), GP64()
	Load(Param("x"), x)
	Load(Param("blocks"), n)
	Load(Param("dst"), dst)
	flag := GP8()
	Load(Param("q8"), flag)
	g := GP32()
	absMask := ZMM()
	MOVL(U32(0x7fffffff), g)
	VPBROADCASTD(g, absMask)
	c127, tiny := XMM(), XMM()
	MOVL(U32(math.Float32bits(127)), g)
	VMOVD(g, c127)
	// A block of zeros gets scale 0 and 127/tiny·0 = 0 for every q.
	MOVL(U32(math.Float32bits(1e-30)), g)
	VMOVD(g, tiny)

	TESTQ(n, n)
	JZ(LabelRef("quantizeQ512_done"))
	Label("quantizeQ512_block")
	a0, a1 := ZMM(), ZMM()
	VMOVUPS(Mem{Base: x}, a0)
	VMOVUPS(Mem{Base: x, Disp: 64}, a1)
	m0, m1 := ZMM(), ZMM()
	VPANDD(absMask, a0, m0)
	VPANDD(absMask, a1, m1)
	VMAXPS(m1, m0, m0)
	hy := YMM()
	VEXTRACTF64X4(U8(1), m0, hy)
	VMAXPS(hy, m0.AsY(), hy)
	hx := XMM()
	VEXTRACTF128(U8(1), hy, hx)
	VMAXPS(hx, hy.AsX(), hx)
	t := XMM()
	VPERMILPS(U8(0x4e), hx, t)
	VMAXPS(t, hx, hx)
	VPERMILPS(U8(0xb1), hx, t)
	VMAXPS(t, hx, hx) // every lane: max|x|
	d := XMM()
	VDIVSS(c127, hx, d) // max|x|/127
	VMOVSS(d, Mem{Base: dst, Disp: 32})
	VMAXSS(tiny, hx, hx)
	id := XMM()
	VDIVSS(hx, c127, id) // 127/max|x|
	idz := ZMM()
	VBROADCASTSS(id, idz)
	VMULPS(idz, a0, a0)
	VMULPS(idz, a1, a1)
	VCVTPS2DQ(a0, a0)
	VCVTPS2DQ(a1, a1)
	VPMOVSDB(a0, Mem{Base: dst})
	VPMOVSDB(a1, Mem{Base: dst, Disp: 16})
	VPADDD(a1, a0, a0)
	sy := YMM()
	VEXTRACTI64X4(U8(1), a0, sy)
	VPADDD(sy, a0.AsY(), sy)
	sx := XMM()
	VEXTRACTI128(U8(1), sy, sx)
	VPADDD(sx, sy.AsX(), sx)
	VPSHUFD(U8(0x4e), sx, t)
	VPADDD(t, sx, sx)
	VPSHUFD(U8(0xb1), sx, t)
	VPADDD(t, sx, sx) // every lane: Σq
	TESTB(flag, flag)
	JZ(LabelRef("quantizeQ512_float"))
	VPSLLD(U8(7), sx, sx)
	VPXOR(t, t, t)
	VPSUBD(sx, t, sx)
	VMOVD(sx, Mem{Base: dst, Disp: 36})
	JMP(LabelRef("quantizeQ512_next"))
	Label("quantizeQ512_float")
	VCVTDQ2PS(sx, sx)
	VMULSS(d, sx, sx)
	VMOVSS(sx, Mem{Base: dst, Disp: 36})
	Label("quantizeQ512_next")
	ADDQ(U32(128), x)
	ADDQ(U32(qBlockBytes), dst)
	DECQ(n)
	JNZ(LabelRef("quantizeQ512_block"))
	Label("quantizeQ512_done")
	VZEROUPPER()
	RET()
}
