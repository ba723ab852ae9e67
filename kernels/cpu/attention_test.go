package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// exactAttention is Attention in float64, the yardstick for every path.
func exactAttention(q, k, v []float32, nq, nk, hd, qStride, kvStride int, scale float32) []float64 {
	out := make([]float64, nq*hd)
	s := make([]float64, nk)
	for i := range nq {
		mx := math.Inf(-1)
		for j := range nk {
			var d float64
			for c := range hd {
				d += float64(q[i*qStride+c]) * float64(k[j*kvStride+c])
			}
			s[j] = float64(scale) * d
			mx = max(mx, s[j])
		}
		var sum float64
		for j := range s {
			s[j] = math.Exp(s[j] - mx)
			sum += s[j]
		}
		for j := range nk {
			for c := range hd {
				out[i*hd+c] += s[j] / sum * float64(v[j*kvStride+c])
			}
		}
	}
	return out
}

func TestAttentionParity(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct {
		nq, nk, hd, qs, kvs int
		scale               float32
	}{
		{1, 1, 1, 1, 1, 1},
		{1, 7, 3, 3, 5, 0.5},
		{5, 33, 64, 64, 64, 0.125},
		{3, 40, 33, 100, 70, 0.2},
		{16, 300, 64, 256, 128, 0.125},
		{13, 70, 80, 240, 80, 0.1},
		{64, 512, 64, 384, 128, 0.125},
		{256, 256, 64, 256, 256, 0.125},
		{20, 50, 16, 16, 16, 8}, // sharp softmax: large logits
	} {
		q := randSlice(r, (c.nq-1)*c.qs+c.hd)
		k := randSlice(r, (c.nk-1)*c.kvs+c.hd)
		v := randSlice(r, (c.nk-1)*c.kvs+c.hd)
		want := exactAttention(q, k, v, c.nq, c.nk, c.hd, c.qs, c.kvs, c.scale)
		for _, kern := range kernels {
			out := randSlice(r, (c.nq-1)*c.qs+c.hd)
			gap := append([]float32(nil), out...) // values between rows must survive
			attention(kern, out, q, k, v, c.nq, c.nk, c.hd, c.qs, c.kvs, c.scale)
			got := make([]float32, c.nq*c.hd)
			for i := range c.nq {
				copy(got[i*c.hd:], out[i*c.qs:i*c.qs+c.hd])
				if i+1 < c.nq {
					for x := i*c.qs + c.hd; x < (i+1)*c.qs; x++ {
						if out[x] != gap[x] {
							t.Fatalf("%s %+v: out[%d] between rows changed", kern.name, c, x)
						}
					}
				}
			}
			checkRows(t, fmt.Sprintf("Attention %s %+v", kern.name, c), got, want, c.nq, c.hd)
		}
	}
}

func TestAttentionParallel(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	r := rand.New(rand.NewPCG(13, 14))
	const nq, nk, hd = 100, 400, 64
	q, k, v := randSlice(r, nq*hd), randSlice(r, nk*hd), randSlice(r, nk*hd)
	want := exactAttention(q, k, v, nq, nk, hd, hd, hd, 0.125)
	out := make([]float32, nq*hd)
	Attention(out, q, k, v, nq, nk, hd, hd, hd, 0.125)
	checkRows(t, "Attention", out, want, nq, hd)
	if allocs := testing.AllocsPerRun(5, func() { Attention(out, q, k, v, nq, nk, hd, hd, hd, 0.125) }); allocs != 0 && !raceEnabled {
		t.Errorf("Attention allocates %v times per call", allocs)
	}
}

func TestAttentionEdges(t *testing.T) {
	out := []float32{1, 2, 3, 4}
	Attention(out, make([]float32, 4), nil, nil, 2, 0, 2, 2, 2, 1)
	for i, v := range out {
		if v != 0 {
			t.Errorf("nk=0: out[%d] = %g, want 0", i, v)
		}
	}
	defer func() {
		if msg, _ := recover().(string); !strings.Contains(msg, "len(k) = 3") {
			t.Errorf("short k: panic %q", msg)
		}
	}()
	Attention(make([]float32, 4), make([]float32, 4), make([]float32, 3), make([]float32, 4), 2, 2, 2, 2, 2, 1)
}

func TestSoftmaxParity(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	inf := float32(math.Inf(-1))
	rows := [][]float32{{inf, 0, inf}, {5, inf}, {-100, 0, 100}}
	for _, n := range []int{1, 2, 15, 16, 17, 31, 32, 33, 64, 100, 1000} {
		row := randSlice(r, n)
		for i := range row {
			row[i] *= 30 // logits spread over ±30/scale
		}
		rows = append(rows, row)
	}
	for _, kern := range kernels {
		for _, scale := range []float32{1, 0.125, -2} {
			for ri, row := range rows {
				if scale < 0 && ri < 2 {
					continue // -Inf·scale would be +Inf: NaN, as in float64
				}
				want := make([]float64, len(row))
				mx := math.Inf(-1)
				for i, v := range row {
					want[i] = float64(scale) * float64(v)
					mx = max(mx, want[i])
				}
				var sum float64
				for i := range want {
					want[i] = math.Exp(want[i] - mx)
					sum += want[i]
				}
				got := append([]float32(nil), row...)
				kern.softmax(got, scale)
				for i := range want {
					want[i] /= sum
					if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-6*want[i]+1e-12) {
						t.Errorf("%s scale %g, n=%d: softmax[%d] = %g, want %g", kern.name, scale, len(row), i, got[i], want[i])
						break
					}
				}
			}
		}
	}
}

// TestSoftmaxNoSubnormals: probabilities too small for a normal float32
// come out as 0, on every kernel, so that the products reading them never
// take the processor's slow path for subnormal operands.
func TestSoftmaxNoSubnormals(t *testing.T) {
	row := make([]float32, 40)
	for i := range row {
		row[i] = -float32(i) * 2.5 // e^0 … e^−97.5: the tail is below 2^−126
	}
	for _, kern := range kernels {
		got := append([]float32(nil), row...)
		kern.softmax(got, 1)
		zeros := 0
		for i, p := range got {
			if p != 0 && math.Abs(float64(p)) < 0x1p-126 {
				t.Errorf("%s: softmax[%d] = %g is subnormal", kern.name, i, p)
			}
			if p == 0 {
				zeros++
			}
		}
		if zeros == 0 || got[0] == 0 {
			t.Errorf("%s: %d zeros, softmax[0] = %g: the row did not reach the subnormal range", kern.name, zeros, got[0])
		}
	}
}
