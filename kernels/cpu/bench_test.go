package cpu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The benchmarks report, besides ns/op (the mean over b.N calls):
//
//	GFLOP/s   2·m·k·n per second in the best of several short windows
//	%peak     that rate over the FMA peak of this machine, measured just
//	          before and after, the same way, with the same number of threads
//	          (GOMAXPROCS) and the widest FMA the CPU has; absent where
//	          there is no probe
//	peak-GFLOP/s  that peak
//	x-ref     speed-up over plainMulT, the package's previous MatMulT (one
//	          Go dot product per output, columns split over the cores),
//	          timed the same way in the same run
//
// Best windows rather than means because the development machines are
// shared: another process's time slices fall into a mean at random, and
// the peak probe and the kernel would not see the same share of the CPU.
//
// go test -run XXX -bench . -cpu 1,2 ./kernels/cpu
var benchShapes = [][3]int{
	{256, 256, 768}, {256, 256, 1024}, {256, 704, 256},
	{32, 256, 8192}, {16, 256, 768}, {1, 256, 8192},
}

func BenchmarkMulT(b *testing.B) {
	for _, s := range benchShapes {
		m, k, n := s[0], s[1], s[2]
		r := rand.New(rand.NewPCG(1, 1))
		x, w := randSlice(r, m*k), randSlice(r, n*k)
		out := make([]float32, m*n)
		a := NewMatrix(w, n, k)
		for _, kern := range kernels {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, k, n, kern.name), func(b *testing.B) {
				benchProduct(b, m, k, n, func() { a.mulT(kern, out, x, m) },
					func() { plainMulT(out, x, w, m, k, n) })
			})
		}
	}
}

// defaultShapes are the products of a step of the embedded default model
// (hidden 256, q|k|v 512, intermediate 704, vocab 8192) as m×k×n: a window
// of 17 rows and a full pass of 256, and the head over 1 to 16 rows.
var defaultShapes = [][3]int{
	{17, 256, 512}, {17, 256, 256}, {17, 256, 1408}, {17, 704, 256},
	{256, 256, 512}, {256, 256, 256}, {256, 256, 1408}, {256, 704, 256},
	{1, 256, 8192}, {2, 256, 8192}, {4, 256, 8192}, {8, 256, 8192}, {16, 256, 8192},
}

// BenchmarkShapes measures Matrix.MulT on the best kernel over the shapes
// in $INFUSE_BENCH_SHAPES ("m,k,n m,k,n …"), by default defaultShapes. It
// is what `make bench-kernels` runs against OpenBLAS on the same shapes;
// GFLOP/s and %peak are as in BenchmarkMulT, without x-ref.
//
// Run it with GOMAXPROCS set to the -cpu value, one thread count per run:
// with -benchtime 1x, Go 1.26 runs a sub-benchmark once, before it sets
// GOMAXPROCS to the first -cpu value, and reports that run.
func BenchmarkShapes(b *testing.B) {
	for _, s := range benchShapesFromEnv(b) {
		m, k, n := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			x := randSlice(r, m*k)
			a := NewMatrix(randSlice(r, n*k), n, k)
			out := make([]float32, m*n)
			benchShape(b, m, k, n, func() { a.MulT(out, x, m) })
		})
	}
}

// benchShapesFromEnv returns the shapes in $INFUSE_BENCH_SHAPES, by
// default defaultShapes.
func benchShapesFromEnv(b *testing.B) [][3]int {
	env := os.Getenv("INFUSE_BENCH_SHAPES")
	if env == "" {
		return defaultShapes
	}
	var shapes [][3]int
	for f := range strings.FieldsSeq(env) {
		var s [3]int
		if _, err := fmt.Sscanf(f, "%d,%d,%d", &s[0], &s[1], &s[2]); err != nil {
			b.Fatalf("INFUSE_BENCH_SHAPES: %q is not m,k,n: %v", f, err)
		}
		shapes = append(shapes, s)
	}
	return shapes
}

// benchShape times run, an m×k×n product, and reports GFLOP/s and %peak.
func benchShape(b *testing.B, m, k, n int, run func()) {
	procs := runtime.GOMAXPROCS(0)
	w := windows(b, func() windowed {
		peak := peakGFLOPS(procs)
		sec := bestTime(run, 8, 20*time.Millisecond)
		return windowed{peak: max(peak, peakGFLOPS(procs)), sec: sec}
	})
	b.ResetTimer()
	for range b.N {
		run()
	}
	b.StopTimer()
	gflops := 2 * float64(m*k*n) / w.sec / 1e9
	b.ReportMetric(gflops, "GFLOP/s")
	if w.peak > 0 {
		b.ReportMetric(100*gflops/w.peak, "%peak")
		b.ReportMetric(w.peak, "peak-GFLOP/s")
	}
}

// BenchmarkMatMulT measures the unpacked entry point, which packs each
// panel of w as it goes or, for few rows, takes dot products.
func BenchmarkMatMulT(b *testing.B) {
	for _, s := range append(benchShapes, [3]int{4, 256, 768}, [3]int{8, 256, 768}, [3]int{12, 256, 768}) {
		m, k, n := s[0], s[1], s[2]
		r := rand.New(rand.NewPCG(1, 1))
		x, w := randSlice(r, m*k), randSlice(r, n*k)
		out := make([]float32, m*n)
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			benchProduct(b, m, k, n, func() { MatMulT(out, x, w, m, k, n) },
				func() { plainMulT(out, x, w, m, k, n) })
		})
	}
}

func benchProduct(b *testing.B, m, k, n int, run, ref func()) {
	flop := 2 * float64(m) * float64(k) * float64(n)
	procs := runtime.GOMAXPROCS(0)
	w := windows(b, func() windowed {
		peak := peakGFLOPS(procs)
		refSec := bestTime(ref, 5, 20*time.Millisecond)
		sec := bestTime(run, 20, 2*time.Millisecond)
		return windowed{max(peak, peakGFLOPS(procs)), sec, refSec}
	})
	b.ReportAllocs()
	b.ResetTimer()
	// A classic b.N loop, not b.Loop: with b.Loop the testing package
	// reports the first -cpu value from a run made before it set
	// GOMAXPROCS (Go 1.26).
	for range b.N {
		run()
	}
	b.StopTimer()
	gflops := flop / w.sec / 1e9
	b.ReportMetric(gflops, "GFLOP/s")
	if w.peak > 0 {
		b.ReportMetric(100*gflops/w.peak, "%peak")
		b.ReportMetric(w.peak, "peak-GFLOP/s")
	}
	b.ReportMetric(w.refSec/w.sec, "x-ref")
}

// windowed holds the best-window timings of one benchmark: the FMA peak in
// GFLOP/s and the seconds per call of the code under test and its
// baseline.
type windowed struct{ peak, sec, refSec float64 }

var windowCache sync.Map // benchmark name and GOMAXPROCS → windowed

// windows returns measure's timings for this benchmark and GOMAXPROCS,
// measured once: the testing package calls a benchmark several times while
// it settles b.N.
func windows(b *testing.B, measure func() windowed) windowed {
	key := fmt.Sprintf("%s@%d", b.Name(), runtime.GOMAXPROCS(0))
	if w, ok := windowCache.Load(key); ok {
		return w.(windowed)
	}
	w := measure()
	windowCache.Store(key, w)
	return w
}

// peakGFLOPS measures the FMA peak of this machine on the given number of
// threads: the best of a few short runs, so that a burst of load from
// elsewhere lowers it as little as it can.
func peakGFLOPS(threads int) float64 {
	const iters = 1 << 18 // about 0.4 ms: as long as a kernel's timing window
	var best float64
	for range 20 {
		start := time.Now()
		var wg sync.WaitGroup
		flop := make([]float64, threads)
		for t := range threads {
			wg.Go(func() { flop[t] = fmaPeakLoop(iters) })
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		var total float64
		for _, f := range flop {
			total += f
		}
		best = max(best, total/el/1e9)
	}
	return best
}

// bestTime returns the fastest of trials timings of f, each averaged over
// as many calls as fill minDur.
func bestTime(f func(), trials int, minDur time.Duration) float64 {
	best := 0.0
	for range trials {
		calls := 0
		start := time.Now()
		for time.Since(start) < minDur || calls == 0 {
			f()
			calls++
		}
		sec := time.Since(start).Seconds() / float64(calls)
		if best == 0 || sec < best {
			best = sec
		}
	}
	return best
}

// plainMulT is the package's first MatMulT, the baseline of x-ref: the
// reference dot products with output columns split over the cores.
func plainMulT(out, x, w []float32, m, k, n int) {
	workers := min(runtime.GOMAXPROCS(0), max(n/64, 1))
	step := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Go(func() {
			for i := range m {
				xi := x[i*k : i*k+k]
				for j := lo; j < hi; j++ {
					out[i*n+j] = dotGo(xi, w[j*k:j*k+k])
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkTile measures one micro-kernel call on operands resident in L1
// (k=256), on one thread: the ceiling the driver works under.
func BenchmarkTile(b *testing.B) {
	const k = 256
	r := rand.New(rand.NewPCG(1, 1))
	for _, kern := range kernels {
		a := randSlice(r, kern.maxRows*k)
		bp := randSlice(r, k*panelWidth)
		c := make([]float32, kern.maxRows*panelWidth)
		var rows []int
		for _, mr := range []int{1, 2, 4, 8} {
			if mr < kern.maxRows {
				rows = append(rows, mr)
			}
		}
		for _, mr := range append(rows, kern.maxRows) {
			b.Run(fmt.Sprintf("%s/%dx32", kern.name, mr), func(b *testing.B) {
				run := func() { kern.tile(mr, k, a, k, bp, c, panelWidth, false) }
				w := windows(b, func() windowed {
					peak := peakGFLOPS(1)
					sec := bestTime(run, 20, time.Millisecond)
					return windowed{peak: max(peak, peakGFLOPS(1)), sec: sec}
				})
				for range b.N {
					run()
				}
				gflops := 2 * float64(mr*k*panelWidth) / w.sec / 1e9
				b.ReportMetric(gflops, "GFLOP/s")
				if w.peak > 0 {
					b.ReportMetric(100*gflops/w.peak, "%peak")
				}
			})
		}
	}
}

// BenchmarkTileDenormal is BenchmarkTile's largest tile with some of A's
// values subnormal (1e-39), as the probabilities of a softmax are where a
// score lies 87 or more below its row's maximum: each such operand costs
// the FMA a microcode assist (x86 without DAZ). The default model's full
// pass has about 5% of its attention probabilities subnormal.
func BenchmarkTileDenormal(b *testing.B) {
	const k = 256
	kern := best
	mr := kern.maxRows
	for _, frac := range []float64{0, 0.01, 0.05} {
		r := rand.New(rand.NewPCG(1, 1))
		a := randSlice(r, mr*k)
		for i := range a {
			if r.Float64() < frac {
				a[i] = 1e-39
			}
		}
		bp := randSlice(r, k*panelWidth)
		c := make([]float32, mr*panelWidth)
		b.Run(fmt.Sprintf("%s/%dx32/%g%%", kern.name, mr, 100*frac), func(b *testing.B) {
			run := func() { kern.tile(mr, k, a, k, bp, c, panelWidth, false) }
			w := windows(b, func() windowed {
				peak := peakGFLOPS(1)
				sec := bestTime(run, 20, time.Millisecond)
				return windowed{peak: max(peak, peakGFLOPS(1)), sec: sec}
			})
			for range b.N {
				run()
			}
			gflops := 2 * float64(mr*k*panelWidth) / w.sec / 1e9
			b.ReportMetric(gflops, "GFLOP/s")
			if w.peak > 0 {
				b.ReportMetric(100*gflops/w.peak, "%peak")
			}
		})
	}
}

// BenchmarkAttention measures one head, headDim 64, rows packed (strides
// equal to headDim). x-ref is over plainAttention.
func BenchmarkAttention(b *testing.B) {
	for _, s := range [][3]int{{256, 256, 64}, {64, 512, 64}, {16, 512, 64}, {8, 300, 64}} {
		nq, nk, hd := s[0], s[1], s[2]
		r := rand.New(rand.NewPCG(1, 1))
		q, k, v := randSlice(r, nq*hd), randSlice(r, nk*hd), randSlice(r, nk*hd)
		out := make([]float32, nq*hd)
		scores := make([]float32, nk)
		for _, kern := range kernels {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", nq, nk, hd, kern.name), func(b *testing.B) {
				// Two products of 2·nq·nk·hd FLOP each.
				benchProduct(b, nq, 2*nk, hd, func() { attention(kern, out, q, k, v, nq, nk, hd, hd, hd, 0.125) },
					func() { plainAttention(out, q, k, v, scores, nq, nk, hd, 0.125) })
			})
		}
	}
}

// plainAttention is the baseline of BenchmarkAttention: for each query,
// Go dot products with every key, Softmax, and a weighted sum of values.
func plainAttention(out, q, k, v, scores []float32, nq, nk, hd int, scale float32) {
	for i := range nq {
		qi := q[i*hd : i*hd+hd]
		for j := range nk {
			scores[j] = scale * dotGo(qi, k[j*hd:j*hd+hd])
		}
		Softmax(scores[:nk])
		oi := out[i*hd : i*hd+hd]
		clear(oi)
		for j := range nk {
			Axpy(oi, scores[j], v[j*hd:j*hd+hd])
		}
	}
}
