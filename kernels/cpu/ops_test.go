package cpu

import (
	"math"
	"math/rand/v2"
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
