package cpu

import "math"

// RowStats is what a sampler needs from a row of logits x to pick a token
// and say how sure it is, from two vector passes over the row rather than
// one exponential per element in float64:
//
//	p_i = e^(x_i − Max) / Z        the softmax
//	p_Argmax = 1 / Z               the greedy token's probability
//	Σ p_i·log p_i = ZL/Z − log Z   the negative entropy
//
// Terms below e^−104 of the maximum (float32 zeros, such as the -Inf of a
// banned id) count as 0. NaNs are skipped.
type RowStats struct {
	Max    float32 // the largest value, -Inf for a row of -Inf or NaN
	Argmax int     // the first index of Max (0 when every value is -Inf)
	Z      float64 // Σ e^(x_i − Max)
	ZL     float64 // Σ e^(x_i − Max)·(x_i − Max)
}

// Stats returns the RowStats of x. It allocates nothing.
func Stats(x []float32) RowStats {
	var s RowStats
	s.Max, s.Argmax = best.argmax(x)
	if len(x) > 0 {
		s.Z, s.ZL = best.expSums(x, s.Max)
	}
	return s
}

// MaxExcept returns the largest x[i] for i ≠ skip (the runner-up when skip
// is the argmax), or -Inf if there is none.
func MaxExcept(x []float32, skip int) float32 {
	if skip < 0 || skip >= len(x) {
		m, _ := best.argmax(x)
		return m
	}
	a, _ := best.argmax(x[:skip])
	b, _ := best.argmax(x[skip+1:])
	return max(a, b)
}

func argmaxGo(x []float32) (float32, int) {
	m, at := float32(math.Inf(-1)), 0
	for i, v := range x {
		if v > m {
			m, at = v, i
		}
	}
	return m, at
}

func expSumsGo(x []float32, m float32) (z, zl float64) {
	for _, v := range x {
		d := v - m
		if !(d >= -104) { // and NaN, as VMAXPS does
			d = -104
		}
		e := Exp(d)
		z += float64(e)
		zl += float64(e * d)
	}
	return z, zl
}
