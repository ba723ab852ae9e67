package infill

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGreedyMatchesFiltered checks the vectorised greedy path against the
// float64 softmax of the filtered path (which, at temperature 0 and with
// no filter, takes the same argmax and confidences) on rows with ties,
// banned ids and ids past the choosable vocabulary.
func TestGreedyMatchesFiltered(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, alg := range []string{"maskgit_plus", "entropy", "topk_margin"} {
		for _, n := range []int{2, 17, 300, 8192} {
			row := make([]float32, n+5)
			for i := range row {
				row[i] = float32(r.NormFloat64() * 3)
			}
			if n > 20 {
				row[n-3] = 12 // the maximum twice: the first index wins
				row[9] = 12
			}
			banned := []int{n / 2, n + 1, -1}
			sc := scorer{alg: alg, vocab: n, banned: banned}
			a := append([]float32(nil), row...)
			tok, conf := sc.score(a)
			b := append([]float32(nil), row...)
			b = b[:n]
			for _, id := range banned {
				if id >= 0 && id < n {
					b[id] = float32(math.Inf(-1))
				}
			}
			wantTok, wantConf := sc.filtered(b)
			if tok != wantTok || math.Abs(conf-wantConf) > 1e-6*math.Max(1, math.Abs(wantConf)) {
				t.Errorf("%s n=%d: greedy (%d, %.9g), filtered (%d, %.9g)", alg, n, tok, conf, wantTok, wantConf)
			}
			if int(tok) == n/2 {
				t.Errorf("%s n=%d: chose the banned id %d", alg, n, tok)
			}
		}
	}
}

func BenchmarkGreedy(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	row := make([]float32, 8192)
	for i := range row {
		row[i] = float32(r.NormFloat64() * 3)
	}
	for _, alg := range []string{"maskgit_plus", "entropy", "topk_margin"} {
		b.Run(alg, func(b *testing.B) {
			sc := scorer{alg: alg, vocab: len(row), banned: []int{8191}}
			for b.Loop() {
				sc.score(row)
			}
		})
	}
}
