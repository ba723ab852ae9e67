package infill

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/infuse-lsp/infuse/runtime"
)

// candidate is what one masked position would become, and how sure the
// model is of it. Higher conf commits first.
type candidate struct {
	pos  int
	span int // index of the span (hole) it belongs to
	tok  int32
	conf float64
}

// scorer turns a logit row into a candidate. It owns scratch space for the
// slow (filtered) path so that the hot path allocates nothing.
type scorer struct {
	alg         string
	temperature float64
	topP        float64
	topK        int
	vocab       int   // only ids < vocab may be chosen (rows past the tokenizer are untrained)
	banned      []int // ids never chosen (the mask itself)
	rng         *rand.Rand

	probs []float64
	order []int32
}

// score reads one logit row. Banned ids are set to -Inf in row itself.
func (s *scorer) score(row []float32) (tok int32, conf float64) {
	row = row[:s.vocab]
	for _, b := range s.banned {
		if b >= 0 && b < len(row) {
			row[b] = float32(math.Inf(-1))
		}
	}
	if s.temperature == 0 && (s.topP == 0 || s.topP >= 1) && s.topK == 0 {
		return s.greedy(row)
	}
	return s.filtered(row)
}

// greedy is the unfiltered temperature-0 path: argmax and a confidence
// from the row's maximum and softmax sums, which runtime computes in two
// vector passes (there is one row per masked position and step, each a
// vocabulary wide).
func (s *scorer) greedy(row []float32) (int32, float64) {
	st := runtime.RowStats(row)
	z := st.Z
	switch s.alg {
	case "entropy":
		// Σ p·log p = Σ e^d·d / z − log z: the negative entropy.
		return int32(st.Argmax), st.ZL/z - math.Log(z)
	case "topk_margin":
		second := runtime.RunnerUp(row, st.Argmax)
		return int32(st.Argmax), 1/z - math.Exp(float64(second)-float64(st.Max))/z
	}
	return int32(st.Argmax), 1 / z // probability of the argmax
}

// filtered applies temperature, top-p and top-k like Dream's sample_tokens,
// then draws (temperature > 0) or takes the argmax.
func (s *scorer) filtered(row []float32) (int32, float64) {
	n := len(row)
	if cap(s.probs) < n {
		s.probs = make([]float64, n)
		s.order = make([]int32, n)
	}
	p := s.probs[:n]
	t := s.temperature
	if t == 0 {
		t = 1
	}
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v)/t)
	}
	var z float64
	for i, v := range row {
		p[i] = math.Exp(float64(v)/t - m)
		z += p[i]
	}
	for i := range p {
		p[i] /= z
	}
	if (s.topP > 0 && s.topP < 1) || s.topK > 0 {
		order := s.order[:n]
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortStableFunc(order, func(a, b int32) int {
			switch {
			case p[a] > p[b]:
				return -1
			case p[a] < p[b]:
				return 1
			}
			return 0
		})
		keep := n
		if s.topK > 0 && s.topK < keep {
			keep = s.topK
		}
		if s.topP > 0 && s.topP < 1 {
			// Keep tokens until the mass before them exceeds topP (the first always stays).
			var cum float64
			for i := 0; i < keep; i++ {
				cum += p[order[i]]
				if cum > s.topP {
					keep = i + 1
					break
				}
			}
		}
		var kept float64
		for _, id := range order[:keep] {
			kept += p[id]
		}
		for _, id := range order[keep:] {
			p[id] = 0
		}
		for _, id := range order[:keep] {
			p[id] /= kept
		}
	}
	best := 0
	for i := range p {
		if p[i] > p[best] {
			best = i
		}
	}
	tok := best
	if s.temperature > 0 {
		u := s.rng.Float64()
		var cum float64
		for i := range p {
			cum += p[i]
			if u < cum {
				tok = i
				break
			}
		}
	}
	switch s.alg {
	case "entropy":
		var h float64
		for _, q := range p {
			if q > 0 {
				h += q * math.Log(q)
			}
		}
		return int32(tok), h
	case "topk_margin":
		second := 0.0
		for i, q := range p {
			if i != best && q > second {
				second = q
			}
		}
		return int32(tok), p[best] - second
	}
	return int32(tok), p[tok]
}
