package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// ulps returns the distance between a and b in units of the last place of
// float32.
func ulps(a, b float32) int64 {
	ia := int64(int32(math.Float32bits(a)))
	ib := int64(int32(math.Float32bits(b)))
	if ia < 0 {
		ia = math.MinInt32 - ia
	}
	if ib < 0 {
		ib = math.MinInt32 - ib
	}
	d := ia - ib
	if d < 0 {
		d = -d
	}
	return d
}

func TestExp(t *testing.T) {
	// Every 97th float32 in the fast range, plus the edges and specials.
	worst := int64(0)
	for bits := uint32(0); bits < 1<<32-97; bits += 97 {
		x := math.Float32frombits(bits)
		if math.IsNaN(float64(x)) || x < -87 || x > 87 {
			continue
		}
		want := float32(math.Exp(float64(x)))
		if d := ulps(Exp(x), want); d > worst {
			worst = d
			if d > 2 {
				t.Fatalf("Exp(%g) = %g, want %g (%d ulp)", x, Exp(x), want, d)
			}
		}
	}
	t.Logf("worst error %d ulp", worst)
	for _, c := range []struct{ x, want float32 }{
		{0, 1},
		{float32(math.Inf(1)), float32(math.Inf(1))},
		{float32(math.Inf(-1)), 0},
		{100, float32(math.Inf(1))},
		{-200, 0},
		{-87.5, float32(math.Exp(-87.5))},
		{88.5, float32(math.Exp(88.5))},
	} {
		if got := Exp(c.x); got != c.want {
			t.Errorf("Exp(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	if got := Exp(float32(math.NaN())); !math.IsNaN(float64(got)) {
		t.Errorf("Exp(NaN) = %g", got)
	}
}

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

// relErr returns ||got-want|| / ||want||.
func relErr(got []float32, want []float64) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}

func TestOpsAgainstFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 7, 33, 64, 4097} {
		x := randVec(r, n, 3)
		w := randVec(r, n, 1)

		// RMSNorm, in place.
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/float64(n)+1e-6)
		want := make([]float64, n)
		for i := range x {
			want[i] = float64(w[i]) * float64(x[i]) * inv
		}
		got := append([]float32(nil), x...)
		RMSNorm(got, got, w, 1e-6)
		if e := relErr(got, want); e > 1e-6 {
			t.Errorf("RMSNorm n=%d: relative error %g", n, e)
		}

		// Softmax.
		mx := math.Inf(-1)
		for _, v := range x {
			mx = math.Max(mx, float64(v))
		}
		var sum float64
		for i, v := range x {
			want[i] = math.Exp(float64(v) - mx)
			sum += want[i]
		}
		for i := range want {
			want[i] /= sum
		}
		got = append(got[:0], x...)
		Softmax(got)
		if e := relErr(got, want); e > 1e-6 {
			t.Errorf("Softmax n=%d: relative error %g", n, e)
		}

		// SiLUMul.
		for i := range x {
			g := float64(x[i])
			want[i] = g / (1 + math.Exp(-g)) * float64(w[i])
		}
		got = append(got[:0], x...)
		SiLUMul(got, w)
		if e := relErr(got, want); e > 1e-6 {
			t.Errorf("SiLUMul n=%d: relative error %g", n, e)
		}
	}
}

func TestSoftmaxExtremes(t *testing.T) {
	x := []float32{1000, 0, -1000, 1000}
	Softmax(x)
	want := []float32{0.5, 0, 0, 0.5}
	for i := range x {
		if x[i] != want[i] {
			t.Fatalf("Softmax = %v, want %v", x, want)
		}
	}
}

func TestRoPE(t *testing.T) {
	// A rotation keeps each pair's length and turns it by the angle.
	const half = 4
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	cos := make([]float32, half)
	sin := make([]float32, half)
	angles := []float64{0, math.Pi / 2, math.Pi, 0.3}
	for i, a := range angles {
		cos[i] = float32(math.Cos(a))
		sin[i] = float32(math.Sin(a))
	}
	RoPE(x, cos, sin)
	orig := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	for i, a := range angles {
		p, q := orig[i], orig[i+half]
		wantA := p*math.Cos(a) - q*math.Sin(a)
		wantB := q*math.Cos(a) + p*math.Sin(a)
		if math.Abs(float64(x[i])-wantA) > 1e-6 || math.Abs(float64(x[i+half])-wantB) > 1e-6 {
			t.Errorf("pair %d: got (%g, %g), want (%g, %g)", i, x[i], x[i+half], wantA, wantB)
		}
	}
}

func TestAxpyAdd(t *testing.T) {
	d := []float32{1, 2, 3}
	Axpy(d, 2, []float32{1, 1, 1})
	Add(d, []float32{1, 0, -1})
	Scale(d, 0.5)
	want := []float32{2, 2, 2}
	for i := range d {
		if d[i] != want[i] {
			t.Fatalf("got %v, want %v", d, want)
		}
	}
}

func BenchmarkExp(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(1, 2)), 4096, 5)
	b.ResetTimer()
	var s float32
	for b.Loop() {
		for _, v := range x {
			s += Exp(v)
		}
	}
	_ = s
}

func BenchmarkMathExp(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(1, 2)), 4096, 5)
	b.ResetTimer()
	var s float32
	for b.Loop() {
		for _, v := range x {
			s += float32(math.Exp(float64(v)))
		}
	}
	_ = s
}

func BenchmarkSoftmax256(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(1, 2)), 256, 3)
	y := make([]float32, len(x))
	for b.Loop() {
		copy(y, x)
		Softmax(y)
	}
}

// TestKernelOps checks every kernel family's elementwise operations, on
// lengths around the vector width, against float64.
func TestKernelOps(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, kern := range kernels {
		for _, n := range []int{0, 1, 15, 16, 17, 33, 64, 257, 4097} {
			x := randVec(r, n, 3)
			w := randVec(r, n, 1)
			want := make([]float64, n)
			var ss float64
			for _, v := range x {
				ss += float64(v) * float64(v)
			}
			if got := kern.sumSq(x); math.Abs(got-ss) > 1e-6*ss {
				t.Errorf("%s sumSq n=%d: %g, want %g", kern.name, n, got, ss)
			}
			if n == 0 {
				continue
			}

			got := make([]float32, n)
			for i := range x {
				want[i] = float64(w[i]) * float64(x[i]) * 0.7
			}
			kern.scaleMul(got, x, w, 0.7)
			if e := relErr(got, want); e > 1e-6 {
				t.Errorf("%s scaleMul n=%d: relative error %g", kern.name, n, e)
			}

			copy(got, x)
			kern.add(got, w)
			for i := range x {
				want[i] = float64(x[i]) + float64(w[i])
			}
			if e := relErr(got, want); e > 1e-7 {
				t.Errorf("%s add n=%d: relative error %g", kern.name, n, e)
			}

			// SwiGLU over gates from −200 to 200, into a separate output and
			// in place.
			g := randVec(r, n, 40)
			for i := range g {
				want[i] = float64(g[i]) / (1 + math.Exp(-float64(g[i]))) * float64(w[i])
			}
			kern.swiGLU(got, g, w)
			if e := relErr(got, want); e > 1e-6 {
				t.Errorf("%s swiGLU n=%d: relative error %g", kern.name, n, e)
			}
			kern.swiGLU(g, g, w)
			if e := relErr(g, want); e > 1e-6 {
				t.Errorf("%s swiGLU in place n=%d: relative error %g", kern.name, n, e)
			}

			if n%2 == 0 {
				half := n / 2
				cos, sin := make([]float32, half), make([]float32, half)
				for i := range cos {
					a := r.Float64() * 2 * math.Pi
					cos[i], sin[i] = float32(math.Cos(a)), float32(math.Sin(a))
					p, q := float64(x[i]), float64(x[i+half])
					want[i] = p*float64(cos[i]) - q*float64(sin[i])
					want[i+half] = q*float64(cos[i]) + p*float64(sin[i])
				}
				copy(got, x)
				kern.rope(got, cos, sin)
				if e := relErr(got, want); e > 1e-6 {
					t.Errorf("%s rope n=%d: relative error %g", kern.name, n, e)
				}
			}
		}
	}
}

// TestStats checks the row scan of every kernel family against float64,
// with ties, -Inf (a banned id) and NaN in the row.
func TestStats(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	inf := float32(math.Inf(-1))
	for _, kern := range kernels {
		for _, n := range []int{1, 2, 15, 16, 17, 100, 8192, 8195} {
			x := randVec(r, n, 4)
			x[r.IntN(n)] = inf
			if n > 20 {
				// The maximum twice, the first at an index in another lane.
				x[3] = 30
				x[n-2] = 30
				x[n/2] = float32(math.NaN())
			}
			m, at := kern.argmax(x)
			wm, wat := float32(math.Inf(-1)), 0
			for i, v := range x {
				if v > wm {
					wm, wat = v, i
				}
			}
			if m != wm || at != wat {
				t.Errorf("%s argmax n=%d: %g at %d, want %g at %d", kern.name, n, m, at, wm, wat)
			}
			z, zl := kern.expSums(x, m)
			if math.IsInf(float64(m), -1) { // nothing to normalise; only no NaN
				if math.IsNaN(z) || math.IsNaN(zl) {
					t.Errorf("%s expSums of -Inf: %g, %g", kern.name, z, zl)
				}
				continue
			}
			var wz, wzl float64
			for _, v := range x {
				if math.IsNaN(float64(v)) {
					continue
				}
				d := float64(v) - float64(m)
				e := math.Exp(d)
				wz += e
				if e > 0 {
					wzl += e * d
				}
			}
			if !(math.Abs(z-wz) <= 1e-6*wz && math.Abs(zl-wzl) <= 1e-6*math.Max(math.Abs(wzl), wz)) {
				t.Errorf("%s expSums n=%d: %g, %g; want %g, %g", kern.name, n, z, zl, wz, wzl)
			}
		}
		// A row of -Inf: argmax 0, and no NaN in the sums.
		x := []float32{inf, inf, inf}
		for len(x) < 40 {
			x = append(x, inf)
		}
		if m, at := kern.argmax(x); m != inf || at != 0 {
			t.Errorf("%s argmax of -Inf: %g at %d", kern.name, m, at)
		}
	}
	x := []float32{1, 5, 3, 5, 2}
	if got := MaxExcept(x, 1); got != 5 {
		t.Errorf("MaxExcept(%v, 1) = %g, want 5", x, got)
	}
	if got := MaxExcept(x[:2], 1); got != 1 {
		t.Errorf("MaxExcept(%v, 1) = %g, want 1", x[:2], got)
	}
	if got := MaxExcept(x[:1], 0); !math.IsInf(float64(got), -1) {
		t.Errorf("MaxExcept of one element = %g, want -Inf", got)
	}
	s := Stats([]float32{0, float32(math.Log(3))})
	if s.Argmax != 1 || math.Abs(s.Z-4.0/3) > 1e-6 {
		t.Errorf("Stats = %+v, want Argmax 1, Z 4/3", s)
	}
}

type rowMarks []int32

func (r rowMarks) Rows(lo, hi int) {
	for i := lo; i < hi; i++ {
		r[i]++
	}
}

// TestParallelRows checks that every row is visited exactly once, split or
// not.
func TestParallelRows(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	for _, c := range []struct{ n, cost int }{{0, 1}, {1, 1 << 20}, {7, 1 << 20}, {1000, 1}, {1000, 1 << 12}, {5, 0}} {
		marks := make(rowMarks, c.n)
		ParallelRows(marks, c.n, c.cost)
		for i, m := range marks {
			if m != 1 {
				t.Fatalf("n=%d cost=%d: row %d visited %d times", c.n, c.cost, i, m)
			}
		}
	}
}

// TestParallelConcurrentCallers runs many split calls at once, so that
// callers find the helpers busy with other calls, and parts finish while
// their caller sleeps; every row must be visited once per call.
func TestParallelConcurrentCallers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for it := range 200 {
				n := 50 + (g*31+it*7)%200
				marks := make(rowMarks, n)
				ParallelRows(marks, n, 1<<14)
				for i, m := range marks {
					if m != 1 && err == nil {
						err = fmt.Errorf("caller %d call %d: row %d of %d visited %d times", g, it, i, n, m)
					}
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
