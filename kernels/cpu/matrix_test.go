package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// tolerance is the largest relative error allowed per output row, as
// ‖row − exact‖₂ / ‖exact‖₂ against a float64 product. float32 products
// of length k ≤ 1100 in any summation order stay near √k·2⁻²⁴ ≈ 2e-6;
// 1e-5 leaves room for that and flags any wrong term, which moves a row by
// about 1/√k ≥ 3e-2.
const tolerance = 1e-5

// shapes are (m, k, n) products that exercise every edge of the driver:
// single rows, columns and terms; sizes off the 32-wide panel and the row
// tiles; k across the kcMax blocking; the model's own shapes.
var shapes = [][3]int{
	{1, 1, 1}, {1, 1, 33}, {3, 1, 70}, {1, 700, 1}, {2, 5, 31},
	{13, 37, 45}, {7, 300, 33}, {12, 256, 64}, {17, 257, 96},
	{25, 513, 97}, {33, 100, 31}, {64, 1100, 100}, {5, 768, 160},
	{1, 256, 8192}, {16, 256, 768}, {8, 384, 1152}, {48, 704, 256},
	{256, 256, 768}, {256, 704, 256},
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*r.Float32() - 1
	}
	return s
}

// exactMulT is MatMulT in float64, the yardstick for every path.
func exactMulT(x, w []float32, m, k, n int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				s += float64(x[i*k+p]) * float64(w[j*k+p])
			}
			out[i*n+j] = s
		}
	}
	return out
}

// checkRows reports every row of got whose relative error against want
// exceeds tolerance.
func checkRows(t *testing.T, what string, got []float32, want []float64, m, n int) {
	t.Helper()
	bad := 0
	for i := range m {
		var num, den float64
		for j := range n {
			d := float64(got[i*n+j]) - want[i*n+j]
			num += d * d
			den += want[i*n+j] * want[i*n+j]
		}
		if rel := math.Sqrt(num / max(den, 1e-30)); !(rel < tolerance) {
			t.Errorf("%s: row %d: relative error %.3g > %g (first values got %v, want %v)",
				what, i, rel, tolerance, got[i*n:i*n+min(n, 3)], want[i*n:i*n+min(n, 3)])
			if bad++; bad == 5 {
				return
			}
		}
	}
}

func TestMulTParity(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		m, k, n := s[0], s[1], s[2]
		x, w := randSlice(r, m*k), randSlice(r, n*k)
		want := exactMulT(x, w, m, k, n)

		ref := make([]float32, m*n)
		matMulTRef(ref, x, w, m, k, n)
		checkRows(t, fmt.Sprintf("reference %dx%dx%d", m, k, n), ref, want, m, n)

		a := NewMatrix(w, n, k)
		for _, kern := range kernels {
			name := fmt.Sprintf("%s %dx%dx%d", kern.name, m, k, n)
			got := randSlice(r, m*n) // stale values must be overwritten
			a.mulT(kern, got, x, m)
			checkRows(t, "Matrix.MulT "+name, got, want, m, n)

			got = randSlice(r, m*n)
			matMulT(kern, got, x, w, m, k, n)
			checkRows(t, "MatMulT "+name, got, want, m, n)

			// MulTAdd adds the product to what out holds.
			got = randSlice(r, m*n)
			sum := make([]float64, m*n)
			for i, v := range got {
				sum[i] = want[i] + float64(v)
			}
			a.mulTAdd(kern, got, x, m, true)
			checkRows(t, "Matrix.MulTAdd "+name, got, sum, m, n)
		}
	}
}

// TestTileParity runs each kernel's every row count and both store modes
// against the portable kernel, on lengths around each unrolling.
func TestTileParity(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const lda, ldc = 300, 45
	for _, kern := range kernels {
		for mr := 1; mr <= kern.maxRows; mr++ {
			for _, k := range []int{1, 2, 3, 4, 5, 7, 8, 9, 17, 256, 299} {
				for _, accum := range []bool{false, true} {
					a := randSlice(r, (mr-1)*lda+k)
					b := randSlice(r, k*panelWidth)
					c0 := randSlice(r, (mr-1)*ldc+panelWidth+7)
					got := append([]float32(nil), c0...)
					kern.tile(mr, k, a, lda, b, got, ldc, accum)
					want := make([]float64, len(c0))
					for i := range c0 {
						want[i] = float64(c0[i])
					}
					for i := range mr {
						for j := range panelWidth {
							var s float64
							for p := range k {
								s += float64(a[i*lda+p]) * float64(b[p*panelWidth+j])
							}
							if accum {
								s += float64(c0[i*ldc+j])
							}
							want[i*ldc+j] = s
						}
					}
					for i := range want {
						if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-5*(1+math.Abs(want[i]))*math.Sqrt(float64(k))) {
							t.Fatalf("%s mr=%d k=%d accum=%v: c[%d] = %g, want %g", kern.name, mr, k, accum, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestMulTManyCores plans for more cores than the machine may have, which
// splits rows as well as panels into parts.
func TestMulTManyCores(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{64, 512, 32}, {100, 300, 70}, {256, 256, 96}} {
		m, k, n := s[0], s[1], s[2]
		x, w := randSlice(r, m*k), randSlice(r, n*k)
		want := exactMulT(x, w, m, k, n)
		a := NewMatrix(w, n, k)
		for _, kern := range kernels {
			var j mulJob
			if parts := j.plan(kern, m, n, k, true); parts < 2 {
				t.Fatalf("%s %v: %d parts, want a parallel plan", kern.name, s, parts)
			}
			got := make([]float32, m*n)
			a.mulT(kern, got, x, m)
			checkRows(t, fmt.Sprintf("%s %v", kern.name, s), got, want, m, n)
		}
	}
}

func TestMulTConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const m, k, n = 40, 256, 200
	w := randSlice(r, n*k)
	a := NewMatrix(w, n, k)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		x := randSlice(r, m*k)
		want := make([]float32, m*n)
		matMulTRef(want, x, w, m, k, n)
		wg.Go(func() {
			got := make([]float32, m*n)
			for range 20 {
				a.MulT(got, x, m)
				for i := range got {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-4 {
						errs <- fmt.Sprintf("goroutine %d: out[%d] = %g, want %g", g, i, got[i], want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestMulTAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items on purpose")
	}
	r := rand.New(rand.NewPCG(9, 10))
	for _, s := range [][3]int{{1, 256, 8192}, {256, 256, 768}, {16, 256, 100}} {
		m, k, n := s[0], s[1], s[2]
		x, w := randSlice(r, m*k), randSlice(r, n*k)
		a := NewMatrix(w, n, k)
		out := make([]float32, m*n)
		// AllocsPerRun runs on one core; the loop below covers the
		// parallel path, where only a pool refill after a GC may allocate.
		if allocs := testing.AllocsPerRun(10, func() { a.MulT(out, x, m) }); allocs != 0 {
			t.Errorf("%v: Matrix.MulT allocates %v times per call on one core", s, allocs)
		}
		if allocs := testing.AllocsPerRun(10, func() { MatMulT(out, x, w, m, k, n) }); allocs != 0 {
			t.Errorf("%v: MatMulT allocates %v times per call on one core", s, allocs)
		}
		const calls = 200
		a.MulT(out, x, m)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range calls {
			a.MulT(out, x, m)
		}
		runtime.ReadMemStats(&after)
		if n := after.Mallocs - before.Mallocs; n > calls/10 {
			t.Errorf("%v: %d allocations in %d parallel Matrix.MulT calls", s, n, calls)
		}
	}
}

func TestShapePanics(t *testing.T) {
	w := make([]float32, 6)
	a := NewMatrix(w, 2, 3)
	for _, c := range []struct {
		name, want string
		f          func()
	}{
		{"short x", "len(x) = 5, want 2×3", func() { a.MulT(make([]float32, 4), make([]float32, 5), 2) }},
		{"short out", "len(out) = 3, want 2×2", func() { a.MulT(make([]float32, 3), make([]float32, 6), 2) }},
		{"short w", "len(w) = 6, want 3×3", func() { MatMulT(make([]float32, 9), make([]float32, 9), w, 3, 3, 3) }},
		{"NewMatrix", "6 values for a 3×3 matrix", func() { NewMatrix(w, 3, 3) }},
		{"negative", "negative shape", func() { a.MulT(nil, nil, -1) }},
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, c.want) {
					t.Errorf("%s: panic %q, want it to mention %q", c.name, msg, c.want)
				}
			}()
			c.f()
		}()
	}
}

func TestZeroSizes(t *testing.T) {
	out := []float32{1, 2, 3, 4}
	NewMatrix(nil, 2, 0).MulT(out, nil, 2)
	for i, v := range out {
		if v != 0 {
			t.Errorf("k=0: out[%d] = %g, want 0", i, v)
		}
	}
	NewMatrix(nil, 0, 5).MulT(nil, make([]float32, 10), 2)
	NewMatrix(make([]float32, 10), 2, 5).MulT(nil, nil, 0)
}

func TestDotParity(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, kern := range kernels {
		for n := range 1200 {
			if n > 80 && n%97 != 0 {
				continue
			}
			// Offsets off the vector alignment, and b longer than a.
			a := randSlice(r, n+3)[3:]
			b := randSlice(r, n+5)[1:]
			var want, mag float64
			for i := range n {
				want += float64(a[i]) * float64(b[i])
				mag += math.Abs(float64(a[i]) * float64(b[i]))
			}
			got := kern.dot(a, b)
			if d := math.Abs(float64(got) - want); d > 1e-6*mag+1e-30 {
				t.Errorf("%s: dot of %d = %g, want %g (error %.3g of Σ|aᵢbᵢ| = %g)", kern.name, n, got, want, d/mag, mag)
			}
		}
	}
	if got := Dot([]float32{1, 2, 3}, []float32{4, 5, 6, 7}); got != 32 {
		t.Errorf("Dot = %g, want 32", got)
	}
}
