package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestAMXMatrix checks AMXMatrix products against float64 sums of the same
// bfloat16-rounded operands, on shapes with ragged tiles (m not a multiple
// of 16), groups (n of 64) and k blocks (of 32), overwriting and adding,
// on one core and split across parts.
func TestAMXMatrix(t *testing.T) {
	if !AMX() {
		t.Skip("no AMX on this machine")
	}
	r := rand.New(rand.NewPCG(3, 4))
	bf := func(v float32) float64 { return float64(math.Float32frombits(uint32(Float32ToBF16(v)) << 16)) }
	for _, s := range [][3]int{
		{1, 1, 1}, {1, 256, 8192}, {5, 15, 50}, {16, 32, 64}, {17, 33, 100}, {17, 256, 512},
		{33, 100, 130}, {48, 31, 16}, {40, 256, 1000}, {256, 64, 192}, {3, 704, 256},
	} {
		m, k, n := s[0], s[1], s[2]
		t.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(t *testing.T) {
			x, w := randSlice(r, m*k), randSlice(r, n*k)
			a := NewAMXMatrix(w, n, k)
			base := randSlice(r, m*n)
			for _, acc := range []bool{false, true} {
				out := append([]float32(nil), base...)
				if acc {
					a.MulTAdd(out, x, m)
				} else {
					a.MulT(out, x, m)
				}
				for i := range m {
					for j := range n {
						want, mag := 0.0, 0.0
						for p := range k {
							v := bf(x[i*k+p]) * bf(w[j*k+p])
							want += v
							mag += math.Abs(v)
						}
						if acc {
							want += float64(base[i*n+j])
							mag += math.Abs(float64(base[i*n+j]))
						}
						if got := float64(out[i*n+j]); math.Abs(got-want) > 1e-5*mag+1e-30 {
							t.Fatalf("acc %v: out[%d][%d] = %g, want %g", acc, i, j, got, want)
						}
					}
				}
			}
			row := make([]float32, k)
			for _, j := range []int{0, n / 2, n - 1} {
				a.Row(row, j)
				for p := range k {
					if float64(row[p]) != bf(w[j*k+p]) {
						t.Fatalf("Row(%d)[%d] = %g, want %g", j, p, row[p], bf(w[j*k+p]))
					}
				}
			}
		})
	}
}

// TestBF16Rows checks the vector rounding against Float32ToBF16, ties and
// carries into the exponent included.
func TestBF16Blocks(t *testing.T) {
	if !AMX() {
		t.Skip("no AMX on this machine")
	}
	r := rand.New(rand.NewPCG(5, 6))
	src := randSlice(r, 256)
	special := []uint32{0x3f808000, 0x3f818000, 0x3f80ffff, 0x3fffffff, 0x7f7fffff, 0x00000001, 0x80000000, 0xbf808000, 0x7f800000}
	for i, b := range special {
		src[i] = math.Float32frombits(b)
	}
	dst := make([]uint16, len(src)/amxKBlock*amxBlockU16)
	bf16Blocks(&dst[0], &src[0], len(src)/amxKBlock)
	for i, v := range src {
		if want := Float32ToBF16(v); dst[i/amxKBlock*amxBlockU16+i%amxKBlock] != want {
			t.Errorf("%#08x: %#04x, want %#04x", math.Float32bits(v), dst[i/amxKBlock*amxBlockU16+i%amxKBlock], want)
		}
	}
}

// BenchmarkShapesAMX is BenchmarkShapes with the weights as an AMXMatrix:
// %peak is still of the float32 FMA peak, so that the two read side by
// side (AMX's own bf16 peak is several times higher).
func BenchmarkShapesAMX(b *testing.B) {
	if !AMX() {
		b.Skip("no AMX on this machine")
	}
	for _, s := range benchShapesFromEnv(b) {
		m, k, n := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			x := randSlice(r, m*k)
			a := NewAMXMatrix(randSlice(r, n*k), n, k)
			out := make([]float32, m*n)
			benchShape(b, m, k, n, func() { a.MulT(out, x, m) })
		})
	}
}

// TestAMXConcurrent runs products of one AMXMatrix from several goroutines
// at once, as a batching engine and an LSP's requests do (run with -race):
// each gets what it gets alone. The shape has a ragged last tile and group,
// so the pooled scratch is in play, and is large enough to be split across
// cores.
func TestAMXConcurrent(t *testing.T) {
	if !AMX() {
		t.Skip("no AMX on this machine")
	}
	r := rand.New(rand.NewPCG(9, 10))
	const m, k, n = 40, 256, 1000
	a := NewAMXMatrix(randSlice(r, n*k), n, k)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		x := randSlice(r, m*k)
		want := make([]float32, m*n)
		a.MulT(want, x, m)
		wg.Go(func() {
			got := make([]float32, m*n)
			for range 20 {
				a.MulT(got, x, m)
				for i := range got {
					if got[i] != want[i] {
						errs <- fmt.Sprintf("goroutine %d: out[%d] = %g, alone %g", g, i, got[i], want[i])
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
