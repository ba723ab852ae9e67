package cpu

import (
	"fmt"
	"math/rand/v2"
	"runtime"
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
