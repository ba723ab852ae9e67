// Command gen writes the amd64 assembly of package cpu: the GEMM
// micro-kernels (AVX-512 and AVX2, one function per row count), dot
// products, the row softmax of attention (AVX-512), and the FMA peak loops
// its benchmarks measure the machine with.
//
// It is a module of its own so that avo, needed only to regenerate, stays
// out of infuse's dependencies; the generated files need nothing at build
// time.
//
// Run it through go generate in kernels/cpu (or make generate):
//
//	go run -C gen . -out ../matmul_amd64.s -stubs ../matmul_stubs_amd64.go -pkg cpu
//
// Every micro-kernel computes one tile of C = A·B, where A is mr rows of
// row-major float32 with stride lda, and B is one packed panel: k rows of 32
// contiguous float32 (see packPanel in package cpu). The tile of C is mr×32
// with row stride ldc; with accum it is added to, otherwise overwritten.
package main

import (
	"fmt"
	"math"

	"github.com/mmcloughlin/avo/gotypes"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

const (
	// maxRows512 is the tallest AVX-512 tile: 12 rows × 2 vectors is 24
	// accumulators, leaving Z registers for the two B vectors and the
	// broadcasts. 14 fits too; it measured within noise of 12, and 12
	// leaves the allocator spare registers.
	maxRows512 = 12
	// maxRows256 is the tallest AVX2 tile: 3 rows × 4 vectors + 3 broadcasts
	// + 1 B vector fill the 16 Y registers.
	maxRows256 = 3
	// fmaChains is how many independent accumulators keep both FMA pipes
	// busy (2 pipes × 4 cycles of latency on the machines we target).
	fmaChains = 8
	// bPrefetch is how far ahead in its panel of B (8 k steps of 128 bytes)
	// the AVX-512 tile prefetches into L1. A hint: it never faults past the
	// panel's end. Measured on the default model's shapes, one thread: 17 rows
	// × 1408 columns 63–64% → 73% of peak, the head's 8–16 rows × 8192 most;
	// 512 and 2048 bytes were no better.
	bPrefetch = 1024
)

const signature = "func(k int, a *float32, lda int, b *float32, c *float32, ldc int, accum bool)"

func main() {
	ConstraintExpr("amd64,!purego")

	for mr := 1; mr <= maxRows512; mr++ {
		kernel512(mr)
	}
	for mr := 1; mr <= maxRows256; mr++ {
		kernel256(mr)
	}
	lowpKernels()
	softmax512()
	siluMul512()
	add512()
	scaleMul512()
	rope512()
	argmax512()
	expSums512()
	spinPause()
	dot("dot512", ZMM, 16)
	dot("dot256", YMM, 8)
	peak("fmaPeak512", ZMM)
	peak("fmaPeak256", YMM)

	Generate()
}

// rowAddr addresses row i of a matrix whose rows are ld bytes apart, using
// one base register per group of four rows so that rows 1-3 of each group
// are reachable as base+ld, base+2·ld and base+ld3.
type rowAddr struct {
	base    []GPVirtual
	ld, ld3 GPVirtual
}

func newRowAddr(rows int, base, ldElems gotypes.Component) rowAddr {
	r := rowAddr{ld: GP64()}
	Load(ldElems, r.ld)
	SHLQ(U8(2), r.ld) // elements to bytes
	if rows > 3 {
		r.ld3 = GP64()
		LEAQ(Mem{Base: r.ld, Index: r.ld, Scale: 2}, r.ld3)
	}
	b0 := GP64()
	Load(base, b0)
	r.base = append(r.base, b0)
	for g := 1; g*4 < rows; g++ {
		b := GP64()
		LEAQ(Mem{Base: r.base[g-1], Index: r.ld, Scale: 4}, b)
		r.base = append(r.base, b)
	}
	return r
}

func (r rowAddr) at(i, disp int) Mem {
	m := Mem{Base: r.base[i/4], Disp: disp}
	switch i % 4 {
	case 1:
		m.Index, m.Scale = r.ld, 1
	case 2:
		m.Index, m.Scale = r.ld, 2
	case 3:
		m.Index, m.Scale = r.ld3, 1
	}
	return m
}

func (r rowAddr) advance(bytes int) {
	for _, b := range r.base {
		ADDQ(U32(bytes), b)
	}
}

// sets returns how many k steps a kernel with vecs accumulators per k step
// unrolls into separate accumulator sets, so that short tiles still have
// enough independent FMA chains.
func sets(accPerStep int) int {
	s := (fmaChains + accPerStep - 1) / accPerStep
	return max(s, 1)
}

// kernel512 writes gemm512x<mr>: the mr×32 tile with two Z vectors per row.
func kernel512(mr int) {
	name := fmt.Sprintf("gemm512x%d", mr)
	TEXT(name, NOSPLIT, signature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a tile of C (+)= A·B of %d rows and 32 columns with AVX-512.", name, mr))

	const vecs = 2
	s := sets(mr * vecs)
	acc := make([][][]VecVirtual, s) // [set][row][vec]
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
		// The two lines of B this step would read bPrefetch bytes on:
		// a panel is read once per row tile, from L2 or memory.
		PREFETCHT0(Mem{Base: b, Disp: 128*off + bPrefetch})
		PREFETCHT0(Mem{Base: b, Disp: 128*off + bPrefetch + 64})
		VMOVUPS(Mem{Base: b, Disp: 128 * off}, bv[0])
		VMOVUPS(Mem{Base: b, Disp: 128*off + 64}, bv[1])
		for i := 0; i < mr; i++ {
			t := tmp[i%nt]
			VBROADCASTSS(a.at(i, 4*off), t)
			VFMADD231PS(bv[0], t, acc[set][i][0])
			VFMADD231PS(bv[1], t, acc[set][i][1])
		}
	}
	loops(name, k, s, step, func(n int) {
		a.advance(4 * n)
		ADDQ(U32(128*n), b)
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

// kernel256 writes gemm256x<mr>: the mr×32 tile with four Y vectors per row.
func kernel256(mr int) {
	name := fmt.Sprintf("gemm256x%d", mr)
	TEXT(name, NOSPLIT, signature)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a tile of C (+)= A·B of %d rows and 32 columns with AVX2 and FMA.", name, mr))

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
			VMOVUPS(Mem{Base: b, Disp: 128*off + 32*v}, bv)
			for i := 0; i < mr; i++ {
				VFMADD231PS(bv, tmp[i], acc[set][i][v])
			}
		}
	}
	loops(name, k, s, step, func(n int) {
		a.advance(4 * n)
		ADDQ(U32(128*n), b)
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

// loops emits the k loop: a body unrolled over s accumulator sets while at
// least s steps remain, then single steps on set 0.
func loops(name string, k GPVirtual, s int, step func(set, off int), advance func(n int)) {
	body, tail, done := name+"_body", name+"_tail", name+"_done"
	if s > 1 {
		CMPQ(k, U32(s))
		JL(LabelRef(tail))
		Label(body)
		for j := 0; j < s; j++ {
			step(j, j)
		}
		advance(s)
		SUBQ(U32(s), k)
		CMPQ(k, U32(s))
		JGE(LabelRef(body))
		Label(tail)
		TESTQ(k, k)
		JZ(LabelRef(done))
		Label(tail + "1")
		step(0, 0)
		advance(1)
		DECQ(k)
		JNZ(LabelRef(tail + "1"))
	} else {
		TESTQ(k, k)
		JZ(LabelRef(done))
		Label(body)
		step(0, 0)
		advance(1)
		DECQ(k)
		JNZ(LabelRef(body))
	}
	Label(done)
}

// store writes the accumulators to C, first adding C's old values when the
// accum argument is set.
func store(name string, mr, vecs, vbytes int, acc [][]VecVirtual) {
	c := newRowAddr(mr, Param("c"), Param("ldc"))
	flag := GP8()
	Load(Param("accum"), flag)
	TESTB(flag, flag)
	JZ(LabelRef(name + "_store"))
	for i := 0; i < mr; i++ {
		for v := 0; v < vecs; v++ {
			VADDPS(c.at(i, vbytes*v), acc[i][v], acc[i][v])
		}
	}
	Label(name + "_store")
	for i := 0; i < mr; i++ {
		for v := 0; v < vecs; v++ {
			VMOVUPS(acc[i][v], c.at(i, vbytes*v))
		}
	}
	VZEROUPPER()
	RET()
}

// dot writes a dot product over n elements, n a multiple of lanes (the
// caller adds the tail): four accumulators while 4·lanes elements remain,
// then one vector at a time, then a horizontal sum.
func dot(name string, vec func() VecVirtual, lanes int) {
	TEXT(name, NOSPLIT, "func(a, b *float32, n int) float32")
	Pragma("noescape")
	Doc(name + " returns Σ a[i]·b[i] for i < n, n a multiple of the vector width.")
	a := GP64()
	Load(Param("a"), a)
	b := GP64()
	Load(Param("b"), b)
	n := GP64()
	Load(Param("n"), n)
	acc := make([]VecVirtual, 4)
	for i := range acc {
		acc[i] = vec()
		VXORPS(acc[i].AsX(), acc[i].AsX(), acc[i].AsX())
	}
	vb := lanes * 4
	Label(name + "_loop4")
	CMPQ(n, U32(4*lanes))
	JL(LabelRef(name + "_loop1"))
	for i := range acc {
		t := vec()
		VMOVUPS(Mem{Base: a, Disp: i * vb}, t)
		VFMADD231PS(Mem{Base: b, Disp: i * vb}, t, acc[i])
	}
	ADDQ(U32(4*vb), a)
	ADDQ(U32(4*vb), b)
	SUBQ(U32(4*lanes), n)
	JMP(LabelRef(name + "_loop4"))
	Label(name + "_loop1")
	TESTQ(n, n)
	JZ(LabelRef(name + "_sum"))
	t := vec()
	VMOVUPS(Mem{Base: a}, t)
	VFMADD231PS(Mem{Base: b}, t, acc[0])
	ADDQ(U32(vb), a)
	ADDQ(U32(vb), b)
	SUBQ(U32(lanes), n)
	JMP(LabelRef(name + "_loop1"))

	Label(name + "_sum")
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	y := acc[0].AsY()
	if lanes == 16 {
		hi := YMM()
		VEXTRACTF64X4(U8(1), acc[0], hi)
		VADDPS(hi, y, y)
	}
	x := acc[0].AsX()
	hx := XMM()
	VEXTRACTF128(U8(1), y, hx)
	VADDPS(hx, x, x)
	VHADDPS(x, x, x)
	VHADDPS(x, x, x)
	VZEROUPPER()
	Store(x, ReturnIndex(0))
	RET()
}

// softmax512 writes the row softmax of Attention: x ← softmax(scale·x) over
// n+popcount(tail) elements, n a multiple of 16 and tail the mask of the
// last, partial vector. Three passes: scale and find the maximum; take
// e^(x−max) and sum; multiply by 1/sum.
func softmax512() {
	const name = "softmax512"
	TEXT(name, NOSPLIT, "func(x *float32, n int, tail uint16, scale float32)")
	Pragma("noescape")
	Doc(name+" replaces x[:n+bits.OnesCount16(tail)] by softmax(scale·x), n a multiple of 16",
		"and tail the mask of the elements past n.")
	x := GP64()
	Load(Param("x"), x)
	n := GP64()
	Load(Param("n"), n)
	mask := K()
	tail := GP32()
	Load(Param("tail"), tail)
	KMOVW(tail, mask)
	sx := XMM()
	Load(Param("scale"), sx)
	scale := ZMM()
	VBROADCASTSS(sx, scale)

	// pass runs body over each full vector at p, then over the tail with
	// masked loads and stores.
	pass := func(label string, body func(v VecVirtual, masked bool)) {
		p, c := GP64(), GP64()
		MOVQ(x, p)
		MOVQ(n, c)
		Label(label)
		TESTQ(c, c)
		JZ(LabelRef(label + "_tail"))
		v := ZMM()
		VMOVUPS(Mem{Base: p}, v)
		body(v, false)
		VMOVUPS(v, Mem{Base: p})
		ADDQ(U32(64), p)
		SUBQ(U32(16), c)
		JMP(LabelRef(label))
		Label(label + "_tail")
		VMOVUPS_Z(Mem{Base: p}, mask, v)
		body(v, true)
		VMOVUPS(v, mask, Mem{Base: p})
	}

	mx := konst(float32(math.Inf(-1)))
	pass(name+"_max", func(v VecVirtual, masked bool) {
		VMULPS(scale, v, v)
		if masked {
			VMAXPS(v, mx, mask, mx) // lanes past the end must not count
		} else {
			VMAXPS(v, mx, mx)
		}
	})
	across(VMAXPS, mx)

	floor := konst(-104)
	e := newExp()
	sum := ZMM()
	VPXORD(sum, sum, sum)
	pass(name+"_exp", func(v VecVirtual, masked bool) {
		VSUBPS(mx, v, v)
		VMAXPS(floor, v, v)
		e.exp(v)
		if masked {
			VADDPS(v, sum, mask, sum)
		} else {
			VADDPS(v, sum, sum)
		}
	})
	across(VADDPS, sum)

	inv := konst(1)
	VDIVPS(sum, inv, inv)
	// Probabilities below the smallest normal float become 0: exp's floor
	// and the division leave subnormals, and every product that reads one
	// (the s·V of attention) takes a microcode assist per operand, which
	// measured 3–12× slower tiles with 1–5% of them.
	tiny := konst(math.SmallestNonzeroFloat32 * (1 << 23)) // 2^−126
	small := K()
	pass(name+"_scale", func(v VecVirtual, _ bool) {
		VMULPS(inv, v, v)
		VCMPPS(U8(1), tiny, v, small) // small = v < 2^−126 (LT_OS)
		VPXORD(v, v, small, v)
	})
	VZEROUPPER()
	RET()
}

// peak writes a loop of 12 independent FMA chains with no memory traffic:
// n iterations of 12 FMAs each. The benchmarks divide a kernel's FLOP rate
// by this loop's to report the fraction of the machine's peak measured in
// the same run.
func peak(name string, vec func() VecVirtual) {
	TEXT(name, NOSPLIT, "func(n int)")
	Doc(name + " runs n iterations of 12 independent FMAs (a throughput probe for benchmarks).")
	n := GP64()
	Load(Param("n"), n)
	// VEX-encoded XORPS on the X half clears the whole register, and the
	// 14 registers used here all have VEX encodings.
	zero := func(v VecVirtual) { VXORPS(v.AsX(), v.AsX(), v.AsX()) }
	x, y := vec(), vec()
	zero(x)
	zero(y)
	acc := make([]VecVirtual, 12)
	for i := range acc {
		acc[i] = vec()
		zero(acc[i])
	}
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	for i := range acc {
		VFMADD231PS(x, y, acc[i])
	}
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
