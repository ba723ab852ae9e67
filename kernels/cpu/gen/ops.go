package main

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The elementwise AVX-512 kernels of a forward pass and of the sampler's
// scan over a logit row. Each takes n, a multiple of 16 (the caller does the
// tail in Go), and none needs an alignment.

// konst returns a Z register with f in every lane.
func konst(f float32) VecVirtual {
	return konstBits(math.Float32bits(f))
}

func konstBits(b uint32) VecVirtual {
	r := GP32()
	MOVL(U32(b), r)
	z := ZMM()
	VPBROADCASTD(r, z)
	return z
}

// across leaves in every lane of v the reduction op over its 16 float32
// lanes.
func across(op func(...Op), v VecVirtual) {
	t := ZMM()
	VSHUFF32X4(U8(0x4e), v, v, t) // swap 256-bit halves
	op(t, v, v)
	VSHUFF32X4(U8(0xb1), v, v, t) // swap 128-bit lanes in each half
	op(t, v, v)
	VPERMILPS(U8(0x4e), v, t) // swap 64-bit pairs
	op(t, v, v)
	VPERMILPS(U8(0xb1), v, t) // swap neighbours
	op(t, v, v)
}

// expConst holds the constants of exp in registers, loaded once per kernel.
type expConst struct {
	log2e, ln2hi, ln2lo VecVirtual
	coef                []VecVirtual
}

func newExp() expConst {
	return expConst{
		log2e: konst(math.Log2E),
		ln2hi: konst(0.693145751953125),
		ln2lo: konst(1.4286068203094172e-06),
		coef:  []VecVirtual{konst(1.0 / 720), konst(1.0 / 120), konst(1.0 / 24), konst(1.0 / 6), konst(0.5), konst(1), konst(1)},
	}
}

// exp replaces v by e^v, for v in [-104, 104] (callers clamp): v = k·ln2 + r
// with k = round(v·log₂e) and |r| ≤ ln2/2, e^r by its Taylor polynomial of
// degree 6 (relative error below 2e-7 on that interval), scaled by 2^k
// with VSCALEFPS, which gives 0 below the float32 range and +Inf above it.
// ln2 is split in a high part with 16 significant bits, so that k·ln2Hi is
// exact, and a low part (Cody and Waite's reduction).
func (e expConst) exp(v VecVirtual) {
	k := ZMM()
	VMULPS(e.log2e, v, k)
	VRNDSCALEPS(U8(0), k, k) // round to nearest
	VFNMADD231PS(e.ln2hi, k, v)
	VFNMADD231PS(e.ln2lo, k, v)
	p := ZMM()
	VMOVAPS(e.coef[0], p)
	for _, c := range e.coef[1:] {
		VFMADD213PS(c, v, p) // p = p·r + c
	}
	VSCALEFPS(k, p, v)
}

// loop16 emits a loop over n elements, 16 at a time, advancing each
// pointer by 64 bytes per iteration.
func loop16(name string, n GPVirtual, ptrs []GPVirtual, body func()) {
	Label(name + "_loop")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	body()
	for _, p := range ptrs {
		ADDQ(U32(64), p)
	}
	SUBQ(U32(16), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
}

func ptr(name string) GPVirtual {
	r := GP64()
	Load(Param(name), r)
	return r
}

// siluMul512 writes out = silu(gate)·up = gate/(1+e^−gate)·up, SwiGLU.
func siluMul512() {
	const name = "siluMul512"
	TEXT(name, NOSPLIT, "func(out, gate, up *float32, n int)")
	Pragma("noescape")
	Doc(name + " writes out[i] = gate[i]/(1+e^−gate[i])·up[i] for i < n, n a multiple of 16.")
	out, gate, up, n := ptr("out"), ptr("gate"), ptr("up"), ptr("n")
	lo, hi, one := konst(-104), konst(104), konst(1)
	e := newExp()
	loop16(name, n, []GPVirtual{out, gate, up}, func() {
		g, t := ZMM(), ZMM()
		VMOVUPS(Mem{Base: gate}, g)
		// e^−g, with −g clamped so that the reduction stays exact; the
		// clamped values still give 0 and +Inf.
		VPXORD(t, t, t)
		VSUBPS(g, t, t) // t = −g
		VMAXPS(lo, t, t)
		VMINPS(hi, t, t)
		e.exp(t)
		VADDPS(one, t, t)
		VDIVPS(t, g, g)
		VMULPS(Mem{Base: up}, g, g)
		VMOVUPS(g, Mem{Base: out})
	})
	VZEROUPPER()
	RET()
}

// add512 adds src to dst.
func add512() {
	const name = "add512"
	TEXT(name, NOSPLIT, "func(dst, src *float32, n int)")
	Pragma("noescape")
	Doc(name + " adds src[i] to dst[i] for i < n, n a multiple of 16.")
	dst, src, n := ptr("dst"), ptr("src"), ptr("n")
	loop16(name, n, []GPVirtual{dst, src}, func() {
		v := ZMM()
		VMOVUPS(Mem{Base: dst}, v)
		VADDPS(Mem{Base: src}, v, v)
		VMOVUPS(v, Mem{Base: dst})
	})
	VZEROUPPER()
	RET()
}

// scaleMul512 writes out = w·(x·s), the second half of RMSNorm.
func scaleMul512() {
	const name = "scaleMul512"
	TEXT(name, NOSPLIT, "func(out, x, w *float32, s float32, n int)")
	Pragma("noescape")
	Doc(name + " writes out[i] = w[i]·(x[i]·s) for i < n, n a multiple of 16.")
	out, x, w, n := ptr("out"), ptr("x"), ptr("w"), ptr("n")
	sx := XMM()
	Load(Param("s"), sx)
	s := ZMM()
	VBROADCASTSS(sx, s)
	loop16(name, n, []GPVirtual{out, x, w}, func() {
		v := ZMM()
		VMULPS(Mem{Base: x}, s, v)
		VMULPS(Mem{Base: w}, v, v)
		VMOVUPS(v, Mem{Base: out})
	})
	VZEROUPPER()
	RET()
}

// rope512 turns the pairs (x[i], x[i+half]) by the angles whose cosines
// and sines are cos[i] and sin[i].
func rope512() {
	const name = "rope512"
	TEXT(name, NOSPLIT, "func(x, cos, sin *float32, half int)")
	Pragma("noescape")
	Doc(name+" rotates the pairs (x[i], x[i+half]) by the angles of cos[i], sin[i] for i < half,",
		"half a multiple of 16.")
	x, cos, sin, n := ptr("x"), ptr("cos"), ptr("sin"), ptr("half")
	off := GP64()
	MOVQ(n, off)
	SHLQ(U8(2), off)
	loop16(name, n, []GPVirtual{x, cos, sin}, func() {
		a, b, c, s, t1, t2 := ZMM(), ZMM(), ZMM(), ZMM(), ZMM(), ZMM()
		VMOVUPS(Mem{Base: x}, a)
		VMOVUPS(Mem{Base: x, Index: off, Scale: 1}, b)
		VMOVUPS(Mem{Base: cos}, c)
		VMOVUPS(Mem{Base: sin}, s)
		VMULPS(c, a, t1)
		VFNMADD231PS(s, b, t1) // a·c − b·s
		VMULPS(c, b, t2)
		VFMADD231PS(s, a, t2) // b·c + a·s
		VMOVUPS(t1, Mem{Base: x})
		VMOVUPS(t2, Mem{Base: x, Index: off, Scale: 1})
	})
	VZEROUPPER()
	RET()
}

// argmax512 keeps, per lane, the largest value seen and the index of its
// first occurrence; the caller reduces the 16 lanes.
func argmax512() {
	const name = "argmax512"
	TEXT(name, NOSPLIT, "func(x *float32, n int, vals *float32, idxs *int32)")
	Pragma("noescape")
	Doc(name+" writes to vals[l] the largest of x[i] for i < n, i ≡ l mod 16, and to idxs[l] the",
		"first such i (-Inf and 0 if none is greater than -Inf); n a multiple of 16.")
	iota := GLOBL("argmaxIota", RODATA|NOPTR)
	for i := range 16 {
		DATA(4*i, U32(i))
	}
	x, n := ptr("x"), ptr("n")
	mx := konst(float32(math.Inf(-1)))
	idx, cur := ZMM(), ZMM()
	VPXORD(idx, idx, idx)
	VMOVDQU32(iota, cur)
	sixteen := konstBits(16)
	gt := K()
	loop16(name, n, []GPVirtual{x}, func() {
		v := ZMM()
		VMOVUPS(Mem{Base: x}, v)
		VCMPPS(U8(0x1e), mx, v, gt) // v > mx, false for NaN
		VMOVAPS(v, gt, mx)
		VMOVDQA32(cur, gt, idx)
		VPADDD(sixteen, cur, cur)
	})
	vals, idxs := ptr("vals"), ptr("idxs")
	VMOVUPS(mx, Mem{Base: vals})
	VMOVDQU32(idx, Mem{Base: idxs})
	VZEROUPPER()
	RET()
}

// expSums512 writes Σ e^d and Σ e^d·d over d = max(x−m, −104), summed in
// float64: the normaliser and the entropy term of a logit row.
func expSums512() {
	const name = "expSums512"
	TEXT(name, NOSPLIT, "func(x *float32, n int, m float32, sums *float64)")
	Pragma("noescape")
	Doc(name+" writes sums[0] = Σ e^d and sums[1] = Σ e^d·d over d = max(x[i]−m, −104), i < n,",
		"in float64; n a multiple of 16.")
	x, n := ptr("x"), ptr("n")
	mx := XMM()
	Load(Param("m"), mx)
	m := ZMM()
	VBROADCASTSS(mx, m)
	floor := konst(-104)
	e := newExp()
	acc := make([]VecVirtual, 4) // Σe low, Σe high, Σe·d low, Σe·d high
	for i := range acc {
		acc[i] = ZMM()
		VPXORD(acc[i], acc[i], acc[i])
	}
	widen := func(v VecVirtual, lo, hi VecVirtual) {
		t := ZMM()
		VCVTPS2PD(v.AsY(), t)
		VADDPD(t, lo, lo)
		h := YMM()
		VEXTRACTF32X8(U8(1), v, h)
		VCVTPS2PD(h, t)
		VADDPD(t, hi, hi)
	}
	loop16(name, n, []GPVirtual{x}, func() {
		v, d := ZMM(), ZMM()
		VMOVUPS(Mem{Base: x}, v)
		VSUBPS(m, v, v)
		VMAXPS(floor, v, v)
		VMOVAPS(v, d)
		e.exp(v)
		VMULPS(v, d, d)
		widen(v, acc[0], acc[1])
		widen(d, acc[2], acc[3])
	})
	sums := ptr("sums")
	for i, pair := range [][2]VecVirtual{{acc[0], acc[1]}, {acc[2], acc[3]}} {
		s := pair[0]
		VADDPD(pair[1], s, s)
		y := YMM()
		VEXTRACTF64X4(U8(1), s, y)
		VADDPD(y, s.AsY(), y)
		xh := XMM()
		VEXTRACTF128(U8(1), y, xh)
		VADDPD(xh, y.AsX(), xh)
		VHADDPD(xh, xh, xh)
		MOVSD(xh, Mem{Base: sums, Disp: 8 * i})
	}
	VZEROUPPER()
	RET()
}

// spinPause writes the spin-wait hint for the helpers' polling loop.
func spinPause() {
	TEXT("spinPause", NOSPLIT, "func()")
	Doc("spinPause executes PAUSE, the spin-wait hint: a core polling a mailbox lets a sibling",
		"hardware thread run and draws less power.")
	PAUSE()
	RET()
}
