package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/infuse-lsp/infuse/runtime/safetensors"
)

// Block layouts of the quantised types read and written here, as ggml's
// ggml-common.h declares them (all little-endian, f16 scales):
//
//	Q4_0  32 values:  d f16, qs[16]           value = (nibble-8)·d
//	Q8_0  32 values:  d f16, qs[32] int8       value = q·d
//	Q4_K 256 values:  d, dmin f16, scales[12], qs[128]
//	Q5_K 256 values:  d, dmin f16, scales[12], qh[32], qs[128]
//	Q6_K 256 values:  ql[128], qh[64], scales[16] int8, d f16
//
// The K types split the super-block into sub-blocks (8 of 32 values for
// Q4_K/Q5_K, 16 of 16 for Q6_K) with their own 6-bit (Q4_K, Q5_K: a scale
// and a min, packed into 12 bytes) or 8-bit (Q6_K) scale. Decoding follows
// ggml's dequantize_row_* operation for operation, rounding every product
// to float32 (explicit conversions keep Go from fusing into FMA), so that
// the results are bit for bit those of ggml's reference C code.

// Type numbers (ggml_type) of the quantised types decoded here.
const (
	Q4_0 Type = 2
	Q4_K Type = 12
	Q5_K Type = 13
	Q6_K Type = 14
)

// qk is the super-block size of the K types.
const qk = 256

// BlockSize returns the number of values in one block of t (1 for the
// float types), or 0 for a type whose layout is unknown.
func (t Type) BlockSize() int {
	e, _, _ := t.layout()
	return e
}

// Fallback returns the type a matrix asked to be stored as t is stored as
// when its row length is not a multiple of t's block, as llama.cpp's
// quantiser falls back to a type of smaller block: Q8_0 (or F16 when 32
// does not divide the row either) for the K types and Q4_0, F16 for Q8_0.
// It returns t when t fits.
func (t Type) Fallback(rowLen int) Type {
	if b := t.BlockSize(); b <= 1 || rowLen%b == 0 {
		return t
	}
	if t != Q8_0 && rowLen%q8Block == 0 {
		return Q8_0
	}
	return F16
}

func f16(b []byte) float32 { return safetensors.F16ToF32(binary.LittleEndian.Uint16(b)) }

// Dequantize decodes src, whole blocks of type t, into dst, which must
// hold exactly the values of those blocks. It accepts every type
// [Type.Supported] reports.
func Dequantize(t Type, src []byte, dst []float32) error {
	elems, bytes, ok := t.layout()
	if !ok || !t.Supported() {
		return fmt.Errorf("type %s cannot be decoded", t)
	}
	if len(src)%bytes != 0 || len(src)/bytes*elems != len(dst) {
		return fmt.Errorf("%d bytes of %s do not hold %d values", len(src), t, len(dst))
	}
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = f16(src[2*i:])
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	default:
		dec := decoders[t]
		for b := range len(src) / bytes {
			dec(src[b*bytes:(b+1)*bytes], dst[b*elems:(b+1)*elems])
		}
	}
	return nil
}

var decoders = map[Type]func(blk []byte, y []float32){
	Q4_0: decodeQ4_0, Q8_0: decodeQ8_0, Q4_K: decodeQ4K, Q5_K: decodeQ5K, Q6_K: decodeQ6K,
}

func decodeQ8_0(blk []byte, y []float32) {
	d := f16(blk)
	for i, q := range blk[2:34] {
		y[i] = d * float32(int8(q))
	}
}

func decodeQ4_0(blk []byte, y []float32) {
	d := f16(blk)
	for j, q := range blk[2:18] {
		y[j] = float32(int(q&0xf)-8) * d
		y[j+16] = float32(int(q>>4)-8) * d
	}
}

// scaleMin unpacks the 6-bit scale and min of sub-block j from the 12
// bytes of a Q4_K or Q5_K block (ggml's get_scale_min_k4).
func scaleMin(j int, s []byte) (sc, m uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&0xf | s[j-4]>>6<<4, s[j+4]>>4 | s[j]>>6<<4
}

func decodeQ4K(blk []byte, y []float32) {
	d, dmin := f16(blk), f16(blk[2:])
	scales, q := blk[4:16], blk[16:144]
	for j := 0; j < qk/64; j++ {
		sc, m := scaleMin(2*j, scales)
		d1, m1 := float32(d*float32(sc)), float32(dmin*float32(m))
		sc, m = scaleMin(2*j+1, scales)
		d2, m2 := float32(d*float32(sc)), float32(dmin*float32(m))
		out := y[64*j:]
		for l, b := range q[32*j : 32*j+32] {
			out[l] = float32(d1*float32(b&0xf)) - m1
			out[l+32] = float32(d2*float32(b>>4)) - m2
		}
	}
}

func decodeQ5K(blk []byte, y []float32) {
	d, dmin := f16(blk), f16(blk[2:])
	scales, qh, ql := blk[4:16], blk[16:48], blk[48:176]
	for j := 0; j < qk/64; j++ {
		sc, m := scaleMin(2*j, scales)
		d1, m1 := float32(d*float32(sc)), float32(dmin*float32(m))
		sc, m = scaleMin(2*j+1, scales)
		d2, m2 := float32(d*float32(sc)), float32(dmin*float32(m))
		u1, u2 := byte(1)<<(2*j), byte(2)<<(2*j)
		out := y[64*j:]
		for l, b := range ql[32*j : 32*j+32] {
			lo, hi := b&0xf, b>>4
			if qh[l]&u1 != 0 {
				lo += 16
			}
			if qh[l]&u2 != 0 {
				hi += 16
			}
			out[l] = float32(d1*float32(lo)) - m1
			out[l+32] = float32(d2*float32(hi)) - m2
		}
	}
}

func decodeQ6K(blk []byte, y []float32) {
	ql, qh, sc := blk[0:128], blk[128:192], blk[192:208]
	d := f16(blk[208:])
	for n := 0; n < 2; n++ {
		ql, qh, sc, out := ql[64*n:], qh[32*n:], sc[8*n:], y[128*n:]
		for l := range 32 {
			is := l / 16
			q1 := int(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
			q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
			q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			out[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
			out[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
			out[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
			out[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
		}
	}
}

// nearest rounds half to even, as ggml's nearest_int does.
func nearest(x float32) int { return int(math.RoundToEven(float64(x))) }

// Quantisers. These follow ggml's quantize_row_*_ref: Q4_0 and Q8_0
// exactly (one scale from the largest magnitude, round to nearest), the K
// types in outline. Per sub-block, a weighted least-squares search over a
// few candidate scales picks the scale (and for Q4_K/Q5_K the min), as
// ggml's make_qkx2_quants and make_qx_quants do; the sub-block scales are
// then themselves quantised against the largest (6 bits, or 8 for Q6_K),
// and every value is rounded with the stored scales. The results are valid
// ggml blocks; they are not guaranteed to be byte-identical to
// llama-quantize's.

func quantizeQ4_0(b []byte, x []float32) []byte {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	d := mx / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	b = binary.LittleEndian.AppendUint16(b, safetensors.F32ToF16(d))
	q := func(v float32) byte { return byte(min(15, int(int8(float32(v*id)+8.5)))) }
	for j := range 16 {
		b = append(b, q(x[j])|q(x[j+16])<<4)
	}
	return b
}

// subScaleMin sets the scale and min of each sub-block of n values for
// levels 0..nmax, so that value ≈ scale·l − min, with min ≥ 0 stored
// negated as ggml does. Starting from the range [min(0, lo), hi], it tries
// nstep scales spread from (nmax+rmin)/range by rdelta, and keeps the one
// whose least-squares fit (weighted by |x| plus the sub-block's RMS, as
// ggml weights) has the smallest error.
func subScaleMin(x []float32, n int, nmax int, rmin, rdelta float32, nstep int, scales, mins []float32) {
	w := make([]float32, n)
	L := make([]int, n)
	for j := range scales {
		xs := x[j*n : (j+1)*n]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += v * v
		}
		av := float32(math.Sqrt(float64(sumX2 / float32(n))))
		for i, v := range xs {
			w[i] = av + float32(math.Abs(float64(v)))
		}
		scales[j], mins[j] = fitScaleMin(xs, w, L, nmax, rmin, rdelta, nstep)
	}
}

// fitScaleMin is the search of subScaleMin for one sub-block.
func fitScaleMin(x, w []float32, L []int, nmax int, rmin, rdelta float32, nstep int) (scale, negMin float32) {
	lo, hi := x[0], x[0]
	var sumW, sumX float32
	for i, v := range x {
		lo, hi = min(lo, v), max(hi, v)
		sumW += w[i]
		sumX += w[i] * v
	}
	lo = min(lo, 0)
	if hi == lo {
		return 0, -lo
	}
	levels := func(iscale, mn float32) {
		for i, v := range x {
			L[i] = max(0, min(nmax, nearest(iscale*(v-mn))))
		}
	}
	sqErr := func(sc, mn float32) float32 {
		var e float32
		for i, v := range x {
			d := sc*float32(L[i]) + mn - v
			e += w[i] * d * d
		}
		return e
	}
	iscale := float32(nmax) / (hi - lo)
	scale, mn := 1/iscale, lo
	levels(iscale, mn)
	best := sqErr(scale, mn)
	for is := 0; is <= nstep; is++ {
		levels((rmin+rdelta*float32(is)+float32(nmax))/(hi-lo), lo)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := float32(L[i])
			sumL += w[i] * l
			sumL2 += w[i] * l * l
			sumXL += w[i] * l * v
		}
		D := sumW*sumL2 - sumL*sumL
		if D <= 0 {
			continue
		}
		sc := (sumW*sumXL - sumX*sumL) / D
		m := (sumL2*sumX - sumL*sumXL) / D
		if m > 0 {
			m, sc = 0, sumXL/sumL2
		}
		if e := sqErr(sc, m); e < best {
			best, scale, mn = e, sc, m
		}
	}
	return scale, -mn
}

// fitScale is ggml's make_qx_quants with its error weighted by x²: the
// symmetric scale for levels -nmax..nmax-1 (the value of largest
// magnitude at -nmax, its sign kept), refined by least squares over
// nineteen nearby scales.
func fitScale(x []float32, nmax int) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if amax < 1e-15 {
		return 0
	}
	fit := func(iscale float32) (sumLX, sumL2 float32) {
		for _, v := range x {
			l := float32(max(-nmax, min(nmax-1, nearest(iscale*v))))
			w := v * v
			sumLX += w * v * l
			sumL2 += w * l * l
		}
		return sumLX, sumL2
	}
	sumLX, sumL2 := fit(-float32(nmax) / mx)
	var scale float32
	if sumL2 > 0 {
		scale = sumLX / sumL2
	}
	best := scale * sumLX
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		lx, l2 := fit(-(float32(nmax) + 0.1*float32(is)) / mx)
		if l2 > 0 && lx*lx > best*l2 {
			scale = lx / l2
			best = scale * lx
		}
	}
	return scale
}

// packScaleMin quantises 8 scales and mins to 6 bits against their
// largest and packs them as get_scale_min_k4 reads them. It returns the
// super-block's d and dmin as stored (f16) and read back.
func packScaleMin(scales, mins []float32, out []byte) (d, dmin uint16) {
	var maxScale, maxMin float32
	for j := range scales {
		maxScale, maxMin = max(maxScale, scales[j]), max(maxMin, mins[j])
	}
	var inv, invMin float32
	if maxScale > 0 {
		inv = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	clear(out[:12])
	for j := range 8 {
		ls := byte(min(63, nearest(inv*scales[j])))
		lm := byte(min(63, nearest(invMin*mins[j])))
		if j < 4 {
			out[j], out[j+4] = ls, lm
		} else {
			out[j+4] = ls&0xf | lm&0xf<<4
			out[j-4] |= ls >> 4 << 6
			out[j] |= lm >> 4 << 6
		}
	}
	return safetensors.F32ToF16(maxScale / 63), safetensors.F32ToF16(maxMin / 63)
}

// levelsK rounds each value of a Q4_K/Q5_K super-block to a level in
// [0, nmax] with the stored scales and mins.
func levelsK(x []float32, hdr []byte, nmax int, L *[qk]uint8) {
	d, dmin := f16(hdr), f16(hdr[2:])
	for j := range 8 {
		sc, m := scaleMin(j, hdr[4:16])
		dj := d * float32(sc)
		dm := dmin * float32(m)
		for i := 32 * j; i < 32*j+32; i++ {
			l := 0
			if dj != 0 {
				l = max(0, min(nmax, nearest((x[i]+dm)/dj)))
			}
			L[i] = uint8(l)
		}
	}
}

func quantizeQ4K(b []byte, x []float32) []byte {
	var scales, mins [8]float32
	subScaleMin(x, 32, 15, -1, 0.1, 20, scales[:], mins[:])
	var hdr [16]byte
	d, dmin := packScaleMin(scales[:], mins[:], hdr[4:])
	binary.LittleEndian.PutUint16(hdr[0:], d)
	binary.LittleEndian.PutUint16(hdr[2:], dmin)
	var L [qk]uint8
	levelsK(x, hdr[:], 15, &L)
	b = append(b, hdr[:]...)
	for j := 0; j < qk; j += 64 {
		for l := range 32 {
			b = append(b, L[j+l]|L[j+l+32]<<4)
		}
	}
	return b
}

func quantizeQ5K(b []byte, x []float32) []byte {
	var scales, mins [8]float32
	subScaleMin(x, 32, 31, -0.5, 0.1, 15, scales[:], mins[:])
	var hdr [16]byte
	d, dmin := packScaleMin(scales[:], mins[:], hdr[4:])
	binary.LittleEndian.PutUint16(hdr[0:], d)
	binary.LittleEndian.PutUint16(hdr[2:], dmin)
	var L [qk]uint8
	levelsK(x, hdr[:], 31, &L)
	var qh [32]byte
	var ql [128]byte
	for j := range 4 {
		u1, u2 := byte(1)<<(2*j), byte(2)<<(2*j)
		for l := range 32 {
			l1, l2 := L[64*j+l], L[64*j+l+32]
			if l1 > 15 {
				l1 -= 16
				qh[l] |= u1
			}
			if l2 > 15 {
				l2 -= 16
				qh[l] |= u2
			}
			ql[32*j+l] = l1 | l2<<4
		}
	}
	b = append(b, hdr[:]...)
	b = append(b, qh[:]...)
	return append(b, ql[:]...)
}

func quantizeQ6K(b []byte, x []float32) []byte {
	// Per sub-block of 16 a signed scale; the one of largest magnitude
	// maps to -128 when the scales are quantised.
	var scales [16]float32
	var maxScale, amaxScale float32
	for j := range scales {
		scales[j] = fitScale(x[16*j:16*j+16], 32)
		if a := float32(math.Abs(float64(scales[j]))); a > amaxScale {
			amaxScale, maxScale = a, scales[j]
		}
	}
	var sc [16]int8
	var dBits uint16
	if amaxScale > 0 {
		iscale := -128 / maxScale
		dBits = safetensors.F32ToF16(1 / iscale)
		for j := range sc {
			sc[j] = int8(max(-128, min(127, nearest(iscale*scales[j]))))
		}
	}
	d := safetensors.F16ToF32(dBits)
	var L [qk]uint8
	for j := range 16 {
		dj := d * float32(sc[j])
		for i := 16 * j; i < 16*j+16; i++ {
			l := 0
			if dj != 0 {
				l = max(-32, min(31, nearest(x[i]/dj)))
			}
			L[i] = uint8(l + 32)
		}
	}
	var ql [128]byte
	var qh [64]byte
	for n := range 2 {
		j := 128 * n
		for l := range 32 {
			ql[64*n+l] = L[j+l]&0xf | (L[j+l+64]&0xf)<<4
			ql[64*n+l+32] = L[j+l+32]&0xf | (L[j+l+96]&0xf)<<4
			qh[32*n+l] = L[j+l]>>4 | L[j+l+32]>>4<<2 | L[j+l+64]>>4<<4 | L[j+l+96]>>4<<6
		}
	}
	b = append(b, ql[:]...)
	b = append(b, qh[:]...)
	for _, s := range sc {
		b = append(b, byte(s))
	}
	return binary.LittleEndian.AppendUint16(b, dBits)
}

var quantizers = map[Type]func(b []byte, x []float32) []byte{
	Q4_0: quantizeQ4_0, Q8_0: quantizeQ8, Q4_K: quantizeQ4K, Q5_K: quantizeQ5K, Q6_K: quantizeQ6K,
}

// Quantize appends x, a whole number of blocks of type t, encoded as t.
func Quantize(b []byte, t Type, x []float32) ([]byte, error) {
	if !t.Supported() {
		return b, fmt.Errorf("type %s cannot be written", t)
	}
	if n := t.BlockSize(); len(x)%n != 0 {
		return b, fmt.Errorf("%d values are not a whole number of %s blocks of %d", len(x), t, n)
	}
	return encode(b, t, x), nil
}
