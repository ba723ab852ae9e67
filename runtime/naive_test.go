package runtime

import (
	"context"
	"math"
	"testing"
)

// naiveLogits is a plain float64 forward with no kernels, no cache and no
// chunking, used to check the chunked, cached, parallel Forward on shapes
// the golden checkpoints do not reach (long windows, several row chunks,
// other group sizes).
func naiveLogits(m *Model, ids []int32) [][]float64 {
	c := m.Config
	w := m.Weights
	n, h, d := len(ids), c.Hidden, c.HeadDim
	group := c.Heads / c.KVHeads
	linear := func(x []float64, wt []float32, bias []float32, out int) []float64 {
		y := make([]float64, out)
		for j := range y {
			var s float64
			for i, v := range x {
				s += v * float64(wt[j*len(x)+i])
			}
			if bias != nil {
				s += float64(bias[j])
			}
			y[j] = s
		}
		return y
	}
	norm := func(x []float64, wt []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		r := 1 / math.Sqrt(ss/float64(len(x))+c.NormEps)
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = float64(wt[i]) * v * r
		}
		return y
	}
	rope := func(x []float64, pos int) {
		for hd := 0; hd < len(x)/d; hd++ {
			v := x[hd*d : (hd+1)*d]
			for i := range d / 2 {
				a := float64(pos) * math.Pow(c.RopeTheta, -float64(2*i)/float64(d))
				p, q := v[i], v[i+d/2]
				v[i] = p*math.Cos(a) - q*math.Sin(a)
				v[i+d/2] = q*math.Cos(a) + p*math.Sin(a)
			}
		}
	}
	x := make([][]float64, n)
	for p, t := range ids {
		x[p] = make([]float64, h)
		for i := range h {
			x[p][i] = float64(w.Embed[int(t)*h+i])
		}
	}
	for _, l := range w.Layers {
		q, k, v := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for p := range n {
			hn := norm(x[p], l.AttnNorm)
			q[p] = linear(hn, l.Q, l.QBias, c.Heads*d)
			k[p] = linear(hn, l.K, l.KBias, c.KVHeads*d)
			v[p] = linear(hn, l.V, l.VBias, c.KVHeads*d)
			rope(q[p], p)
			rope(k[p], p)
		}
		for p := range n {
			a := make([]float64, c.Heads*d)
			for hd := range c.Heads {
				g := hd / group
				s := make([]float64, n)
				mx := math.Inf(-1)
				for j := range n {
					for e := range d {
						s[j] += q[p][hd*d+e] * k[j][g*d+e]
					}
					s[j] /= math.Sqrt(float64(d))
					mx = math.Max(mx, s[j])
				}
				var sum float64
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for j := range n {
					for e := range d {
						a[hd*d+e] += s[j] / sum * v[j][g*d+e]
					}
				}
			}
			o := linear(a, l.O, nil, h)
			for i := range h {
				x[p][i] += o[i]
			}
			hn := norm(x[p], l.MLPNorm)
			gate := linear(hn, l.Gate, nil, c.Intermediate)
			up := linear(hn, l.Up, nil, c.Intermediate)
			for i, gv := range gate {
				gate[i] = gv / (1 + math.Exp(-gv)) * up[i]
			}
			down := linear(gate, l.Down, nil, h)
			for i := range h {
				x[p][i] += down[i]
			}
		}
	}
	out := make([][]float64, n)
	for p := range n {
		out[p] = linear(norm(x[p], w.Norm), w.Head, nil, c.Vocab)
	}
	return out
}

func TestAgainstNaive(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		hidden, heads, kvHeads, n int
		lo, hi                    int // a window pass after the full pass
	}{
		{"MHA, 3 chunks", 32, 2, 2, 70, 30, 65},
		{"GQA 4, 1 row", 64, 8, 2, 5, 4, 5},
		{"MQA, chunk edge", 48, 4, 1, 33, 0, 33},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, dreamShaped(tc.hidden, 2*tc.hidden, 2, tc.heads, tc.kvHeads, 64), 11)
			defer m.Close()
			ids := make([]int32, tc.n)
			for i := range ids {
				ids[i] = int32((i*37 + 5) % 64)
			}
			want := naiveLogits(m, ids)
			s := m.NewState(tc.n + 7)
			ctx := context.Background()
			if err := s.Forward(ctx, ids, 0, tc.n); err != nil {
				t.Fatal(err)
			}
			check := func(lo, hi int) {
				t.Helper()
				got := logitsRows(t, s, lo, hi, m.Config.Vocab)
				var num, den float64
				for p := lo; p < hi; p++ {
					for j, wv := range want[p] {
						dv := float64(got[(p-lo)*m.Config.Vocab+j]) - wv
						num += dv * dv
						den += wv * wv
					}
				}
				if e := math.Sqrt(num / den); e > goldenTol {
					t.Errorf("rows [%d,%d): relative error %.3g", lo, hi, e)
				}
			}
			check(0, tc.n)
			if err := s.Forward(ctx, ids, tc.lo, tc.hi); err != nil {
				t.Fatal(err)
			}
			check(tc.lo, tc.hi)
		})
	}
}
