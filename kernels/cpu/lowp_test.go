package cpu

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The reference decoders below are written from the ggml format
// descriptions, independently of lowp.go's packing, so that a packing bug
// cannot cancel against itself.

func refF16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e, f := int(h>>10&0x1f), float64(h&0x3ff)
	if e == 0 {
		return sign * f * math.Pow(2, -24)
	}
	return sign * (1 + f/1024) * math.Pow(2, float64(e-15))
}

func refBF16(w []uint16) []float32 {
	out := make([]float32, len(w))
	for i, v := range w {
		out[i] = math.Float32frombits(uint32(v) << 16)
	}
	return out
}

// refQ8 decodes n rows of ⌈k/32⌉ block_q8_0 {f16 d; int8 q[32]}.
func refQ8(raw []byte, n, k int) []float32 {
	nb := (k + 31) / 32
	out := make([]float32, n*k)
	for r := range n {
		for i := range k {
			blk := raw[(r*nb+i/32)*34:]
			d := refF16(uint16(blk[0]) | uint16(blk[1])<<8)
			out[r*k+i] = float32(d * float64(int8(blk[2+i%32])))
		}
	}
	return out
}

// refQ4K decodes n rows of ⌈k/256⌉ block_q4_K {f16 d, dmin; u8
// scales[12]; u8 qs[128]}: value 64c+l (l < 32) is the low nibble of
// qs[32c+l] with sub-block 2c's scale and min, value 64c+32+l its high
// nibble with sub-block 2c+1's.
func refQ4K(raw []byte, n, k int) []float32 {
	nb := (k + 255) / 256
	out := make([]float32, n*k)
	for r := range n {
		for u := range nb {
			blk := raw[(r*nb+u)*144:][:144]
			d := refF16(uint16(blk[0]) | uint16(blk[1])<<8)
			dmin := refF16(uint16(blk[2]) | uint16(blk[3])<<8)
			sc := blk[4:16]
			scaleMin := func(j int) (float64, float64) {
				if j < 4 {
					return float64(sc[j] & 63), float64(sc[j+4] & 63)
				}
				return float64(sc[j+4]&15 | (sc[j-4]>>6)<<4), float64(sc[j+4]>>4 | (sc[j]>>6)<<4)
			}
			for c := range 4 {
				s0, m0 := scaleMin(2 * c)
				s1, m1 := scaleMin(2*c + 1)
				for l := range 32 {
					q := blk[16+32*c+l]
					lo, hi := u*256+64*c+l, u*256+64*c+32+l
					if lo < k {
						out[r*k+lo] = float32(d*s0*float64(q&15) - dmin*m0)
					}
					if hi < k {
						out[r*k+hi] = float32(d*s1*float64(q>>4) - dmin*m1)
					}
				}
			}
		}
	}
	return out
}

type lowpCase struct {
	name  string
	block int // k granularity
	make  func(w []float32, n, k int) (lowp, []float32)
}

var lowpCases = []lowpCase{
	{"bf16", 1, func(w []float32, n, k int) (lowp, []float32) {
		b := make([]uint16, len(w))
		for i, v := range w {
			b[i] = Float32ToBF16(v)
		}
		return NewBF16Matrix(b, n, k), refBF16(b)
	}},
	{"f16", 1, func(w []float32, n, k int) (lowp, []float32) {
		h := make([]uint16, len(w))
		ref := make([]float32, len(w))
		for i, v := range w {
			h[i] = Float32ToF16(v)
			ref[i] = float32(refF16(h[i]))
		}
		return NewF16Matrix(h, n, k), ref
	}},
	{"q8_0", 32, func(w []float32, n, k int) (lowp, []float32) {
		raw := QuantizeQ8(w, n, k)
		return NewQ8Matrix(raw, n, k), refQ8(raw, n, k)
	}},
	{"q4_k", 256, func(w []float32, n, k int) (lowp, []float32) {
		raw := QuantizeQ4K(w, n, k)
		return NewQ4KMatrix(raw, n, k), refQ4K(raw, n, k)
	}},
}

// lowpKernels are the kernels to force, plus each with its low-precision
// tiles removed: the path of a CPU without AVX512_VNNI (or AVX512BW, or
// F16C), which widens whole panels to float32.
func lowpKernels() []*kernel {
	ks := append([]*kernel(nil), kernels...)
	for _, k := range kernels {
		if k.q8Tile != nil || k.halfTile[0] != nil || k.halfTile[1] != nil {
			c := *k
			c.name += "-widen"
			c.q8Tile, c.q4kTile, c.quantize, c.halfTile = nil, nil, nil, [2]halfTile{}
			ks = append(ks, &c)
		}
	}
	return ks
}

// TestLowpParity checks every type on every path against its reference
// decoding multiplied in float64. Paths that widen the weights to float32
// are held to the float32 tolerance. The VNNI paths quantize activations
// to int8 per 32 values: for these uniform inputs an error of 1/(127·√12)
// of a block's largest value per value, about 0.4% per row in rms
// (measured rows reach 0.84%); 1.5% still flags one wrong block, which
// moves a row by 1/√blocks ≥ 13% here.
func TestLowpParity(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ns := []int{1, 15, 16, 17, 33, 100}
	ms := []int{1, 2, 3, 5, 8, 9, 13, 16, 17, 24, 33, 40}
	for _, tc := range lowpCases {
		ks := []int{tc.block, 2 * tc.block, 7 * tc.block}
		if tc.block == 1 {
			ks = []int{1, 7, 256, 300, 513}
		} else if tc.block == 32 {
			ks = append(ks, 896)
		}
		for _, k := range ks {
			for ni, n := range ns {
				w := randSlice(r, n*k)
				a, ref := tc.make(w, n, k)
				for mi, m := range ms {
					if (mi+ni)%3 != 0 && m != 17 {
						continue // a spread of (m, n) pairs keeps the test short
					}
					x := randSlice(r, m*k)
					want, mag := exactMulTMag(x, ref, m, k, n)
					for _, kern := range lowpKernels() {
						tol := tolerance
						if tc.block > 1 && kern.q8Tile != nil {
							tol = 1.5e-2
						}
						what := fmt.Sprintf("%s/%s m=%d k=%d n=%d", tc.name, kern.name, m, k, n)
						got := make([]float32, m*n)
						lowpMul(kern, a, got, x, m, false)
						checkRowsTol(t, what, got, want, mag, m, n, tol)
						// MulTAdd on top of a known out: the sum's rounding
						// is relative to the old values too.
						base := randSlice(r, m*n)
						sum := append([]float32(nil), base...)
						lowpMul(kern, a, sum, x, m, true)
						wantSum, magSum := make([]float64, m*n), make([]float64, m*n)
						for i := range sum {
							wantSum[i] = want[i] + float64(base[i])
							magSum[i] = mag[i] + float64(base[i])*float64(base[i])
						}
						checkRowsTol(t, what+" add", sum, wantSum, magSum, m, n, 2*tol)
					}
				}
			}
		}
	}
}

// exactMulTMag is exactMulT with, per output, Σ (x_p·w_p)²: the expected
// square of a sum of independently signed terms, a scale for the error
// that, unlike the sum itself, does not vanish when the terms cancel.
func exactMulTMag(x, w []float32, m, k, n int) (out, mag []float64) {
	out, mag = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, q float64
			for p := range k {
				t := float64(x[i*k+p]) * float64(w[j*k+p])
				s += t
				q += t * t
			}
			out[i*n+j], mag[i*n+j] = s, q
		}
	}
	return out, mag
}

// checkRowsTol is checkRows against the scale mag, with tolerance tol.
func checkRowsTol(t *testing.T, what string, got []float32, want, mag []float64, m, n int, tol float64) {
	t.Helper()
	for i := range m {
		var num, den float64
		for j := range n {
			d := float64(got[i*n+j]) - want[i*n+j]
			num += d * d
			den += mag[i*n+j]
		}
		if den == 0 {
			den = 1
		}
		if e := math.Sqrt(num / den); !(e <= tol) {
			t.Errorf("%s: row %d relative error %.3g > %.3g", what, i, e, tol)
			return
		}
	}
}

// TestLowpPublic checks the exported entry points, the shape panics and
// Bytes.
func TestLowpPublic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const m, n, k = 3, 40, 512
	w, x := randSlice(r, n*k), randSlice(r, m*k)
	for _, tc := range lowpCases {
		a, ref := tc.make(w, n, k)
		want, mag := exactMulTMag(x, ref, m, k, n)
		got := make([]float32, m*n)
		a.MulT(got, x, m)
		checkRowsTol(t, tc.name, got, want, mag, m, n, 2e-2)
		a.MulTAdd(got, x, m)
		for i := range got {
			got[i] /= 2
		}
		checkRowsTol(t, tc.name+" add", got, want, mag, m, n, 2e-2)
		if a.Rows() != n || a.Cols() != k {
			t.Errorf("%s: shape %d×%d", tc.name, a.Rows(), a.Cols())
		}
		bits := float64(a.Bytes()*8) / float64(n*k)
		t.Logf("%s: %.2f bits per weight (n=%d pads to a strip)", tc.name, bits, n)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: short out did not panic", tc.name)
				}
			}()
			a.MulT(got[:1], x, m)
		}()
	}
}

func TestF16RoundTrip(t *testing.T) {
	for h := range 1 << 16 {
		f := F16ToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if float64(f) != refF16(uint16(h)) && h>>10&0x1f != 0x1f {
			t.Fatalf("F16ToFloat32(%#x) = %g, want %g", h, f, refF16(uint16(h)))
		}
		if back := Float32ToF16(f); back != uint16(h) {
			t.Fatalf("Float32ToF16(%g) = %#x, want %#x", f, back, h)
		}
	}
	// Ties round to even; beyond the largest half is Inf.
	if got := Float32ToF16(1 + 1.0/2048); got != 0x3c00 {
		t.Errorf("tie: %#x", got)
	}
	if got := Float32ToF16(70000); got != 0x7c00 {
		t.Errorf("overflow: %#x", got)
	}
	if got := Float32ToBF16(1 + 1.0/256); got != 0x3f80 {
		t.Errorf("bf16 tie: %#x", got)
	}
}

// TestQuantizeActs checks the vector quantizer against quantizeBlock: the
// same scale, each q within one step (127/max|x| and 1/(max|x|/127) may
// round apart, and ties go to even rather than away from zero), and the
// offset term exact for the q it wrote.
func TestQuantizeActs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, kern := range kernels {
		if kern.quantize == nil {
			continue
		}
		const blocks = 9
		x := randSlice(r, blocks*actBlock)
		clear(x[64:96]) // a block of zeros
		x[100] = 3      // a block with an outlier
		for _, q8 := range []bool{true, false} {
			got := make([]byte, blocks*actBytes)
			kern.quantize(got, x, blocks, q8)
			for b := range blocks {
				want := make([]byte, actBytes)
				quantizeBlock(want, x[b*actBlock:][:actBlock], q8)
				g := got[b*actBytes:][:actBytes]
				sum := 0
				for i := range actBlock {
					gq, wq := int(int8(g[i])), int(int8(want[i]))
					if gq-wq > 1 || wq-gq > 1 {
						t.Fatalf("%s block %d q[%d] = %d, want %d", kern.name, b, i, gq, wq)
					}
					sum += gq
				}
				if gd, wd := getU32(g[32:]), getU32(want[32:]); gd != wd {
					t.Errorf("%s block %d: scale %#x, want %#x", kern.name, b, gd, wd)
				}
				d := math.Float32frombits(getU32(g[32:]))
				off := getU32(g[36:])
				if q8 && int32(off) != int32(-128*sum) || !q8 && math.Float32frombits(off) != d*float32(sum) {
					t.Errorf("%s block %d q8=%v: offset %#x for Σq %d", kern.name, b, q8, off, sum)
				}
			}
		}
	}
}

func getU32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// TestLowpConcurrent runs products on one matrix from several goroutines,
// each with its own output: the jobs and activation buffers are pooled,
// never shared by two calls at once.
func TestLowpConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	const m, n, k = 17, 96, 512
	w, x := randSlice(r, n*k), randSlice(r, m*k)
	for _, tc := range lowpCases {
		a, _ := tc.make(w, n, k)
		want := make([]float32, m*n)
		a.MulT(want, x, m)
		done := make(chan []float32)
		for range 4 {
			go func() {
				got := make([]float32, m*n)
				for range 20 {
					a.MulT(got, x, m)
				}
				done <- got
			}()
		}
		for range 4 {
			if got := <-done; !slices.Equal(got, want) {
				t.Errorf("%s: concurrent result differs", tc.name)
			}
		}
	}
}

// TestRow checks Row, the embedding lookup, against each type's reference
// decoding, and the float32 Matrix against w.
func TestRow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	const n, k = 37, 512
	w := randSlice(r, n*k)
	mats := map[string]struct {
		a   Linear
		ref []float32
	}{"f32": {NewMatrix(w, n, k), w}}
	for _, tc := range lowpCases {
		a, ref := tc.make(w, n, k)
		mats[tc.name] = struct {
			a   Linear
			ref []float32
		}{a, ref}
	}
	for name, m := range mats {
		got := make([]float32, k)
		for row := range n {
			m.a.Row(got, row)
			if !slices.Equal(got, m.ref[row*k:][:k]) {
				t.Fatalf("%s: row %d differs", name, row)
			}
		}
	}
}

// TestQuantizeQ8Split checks that a matrix large enough to be quantized by
// several goroutines gives the bytes each row gives alone.
func TestQuantizeQ8Split(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	n, k := 300, 1000 // 30 blocks a row, the last one short
	w := randSlice(r, n*k)
	all := QuantizeQ8(w, n, k)
	row := len(all) / n
	for i := range n {
		if one := QuantizeQ8(w[i*k:(i+1)*k], 1, k); !bytes.Equal(one, all[i*row:(i+1)*row]) {
			t.Fatalf("row %d differs from the row quantized alone", i)
		}
	}
}
