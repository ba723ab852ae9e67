package cpu

import "math"

// The elementwise operations of a transformer layer. Each works on float32
// and allocates nothing, and runs on the best kernel family's vector code.
// The reductions keep sums short before they combine them: RMSNorm's
// vector sum of squares spreads a row over 64 float32 accumulators, the
// portable one and Softmax's sum accumulate in float64.

// RMSNorm writes out[i] = w[i] · x[i] / sqrt(mean(x²) + eps), the
// normalisation of Llama, Qwen2 and OLMo (PyTorch: x * rsqrt(x.pow(2).mean(-1)
// + eps) * weight). out may alias x.
func RMSNorm(out, x, w []float32, eps float32) {
	if len(x) == 0 {
		return
	}
	out = out[:len(x)]
	w = w[:len(x)]
	ss := best.sumSq(x)
	scale := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	best.scaleMul(out, x, w, scale)
}

func sumSqGo(x []float32) float64 {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	return ss
}

func scaleMulGo(out, x, w []float32, s float32) {
	out = out[:len(x)]
	w = w[:len(x)]
	for i, v := range x {
		out[i] = w[i] * (v * s)
	}
}

// Add computes dst[i] += src[i] (a residual connection).
func Add(dst, src []float32) {
	best.add(dst, src[:len(dst)])
}

func addGo(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

// Axpy computes dst[i] += a·x[i].
func Axpy(dst []float32, a float32, x []float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += a * x[i]
	}
}

// Scale computes x[i] *= a.
func Scale(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}

// SiLUMul computes gate[i] = silu(gate[i]) · up[i], the SwiGLU activation
// (PyTorch: F.silu(gate_proj(x)) * up_proj(x)), with silu(g) = g/(1+e^-g).
func SiLUMul(gate, up []float32) {
	best.swiGLU(gate, gate, up[:len(gate)])
}

// SwiGLU writes out[i] = silu(gate[i]) · up[i] for i < len(out); out may
// alias gate or up.
func SwiGLU(out, gate, up []float32) {
	best.swiGLU(out, gate[:len(out)], up[:len(out)])
}

func swiGLUGo(out, gate, up []float32) {
	gate = gate[:len(out)]
	up = up[:len(out)]
	for i, g := range gate {
		out[i] = g / (1 + Exp(-g)) * up[i]
	}
}

// Softmax replaces x by softmax(x), subtracting the maximum first so that
// no exponential overflows. Terms below e⁻⁸⁷ of the maximum, which would be
// float32 subnormals, are flushed to 0.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	mx := x[0]
	for _, v := range x[1:] {
		if v > mx {
			mx = v
		}
	}
	var sum float64
	for i, v := range x {
		t := v - mx
		e := float32(0)
		if !(t <= -87) { // also true for NaN, which then propagates
			e = expReduced(t)
		}
		x[i] = e
		sum += float64(e)
	}
	Scale(x, float32(1/sum))
	// No subnormal probabilities: the products that read them would take a
	// microcode assist per operand (see softmax512).
	for i, v := range x {
		if v < minNormal {
			x[i] = 0
		}
	}
}

// minNormal is the smallest normal float32, 2^−126.
const minNormal = 0x1p-126

// RoPE rotates one head vector x (length 2·len(cos)) in place by the
// NeoX / rotate_half convention of Hugging Face Llama, Qwen2 and LLaDA: the
// pair (x[i], x[i+d/2]) is turned by the angle whose cosine and sine are
// cos[i] and sin[i]. (PyTorch: x*cos + rotate_half(x)*sin with
// rotate_half(x) = cat(-x2, x1).)
func RoPE(x, cos, sin []float32) {
	half := len(cos)
	best.rope(x[:2*half], cos, sin[:half])
}

func ropeGo(x, cos, sin []float32) {
	half := len(cos)
	x1 := x[:half]
	x2 := x[half : 2*half]
	sin = sin[:half]
	for i, c := range cos {
		a, b, s := x1[i], x2[i], sin[i]
		x1[i] = a*c - b*s
		x2[i] = b*c + a*s
	}
}

// Exp returns e^x in float32, within 2 ulp of the correctly rounded value
// over the range where the result is a normal float32. It is several times
// faster than math.Exp, which matters because attention takes one
// exponential per query-key pair.
func Exp(x float32) float32 {
	// Outside ±87 the result is near the float32 overflow or underflow
	// (or x is NaN); there the float64 path gives the right Inf, 0,
	// subnormal or NaN, and it is never hot.
	if !(x > -87 && x < 87) {
		return float32(math.Exp(float64(x)))
	}
	return expReduced(x)
}

// expReduced is Exp for -87 < x < 87, small enough to be inlined into the
// loops of Softmax and SiLUMul.
func expReduced(x float32) float32 {
	// x = k·ln2 + r with |r| ≤ ln2/2, so e^x = 2^k · e^r. ln2 is split in a
	// high part with 16 significant bits, so that k·ln2Hi is exact for
	// |k| ≤ 127, and a low part (Cody and Waite's reduction). Adding
	// 1.5·2²³ rounds x·log₂e to the nearest integer in float32 arithmetic.
	const (
		log2e = 1.4426950408889634
		ln2Hi = 0.693145751953125
		ln2Lo = 1.4286068203094172e-06
		round = 1 << 23 * 1.5
	)
	k := (x*log2e + round) - round
	r := x - k*ln2Hi - k*ln2Lo
	// Taylor series of e^r to degree 7: the first omitted term,
	// (ln2/2)^8/8!, is 5e-9, below half an ulp of float32.
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return p * math.Float32frombits(uint32(int32(k)+127)<<23)
}
