package runtime

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/infuse-lsp/infuse/bench/kernels/fmapeak"
	"github.com/infuse-lsp/infuse/kernels/cpu"
)

// The whole forward of the default model against the machine's FMA peak:
//
//	GFLOP/s       the pass's arithmetic (forwardFLOP) per second, in the
//	              best of several windows of at least 20 ms
//	%peak         that rate over the FMA peak on GOMAXPROCS threads,
//	              measured before and after in the same run; with -cpu 2 it
//	              is the fraction of the two-thread peak (issue 7's bar: 50)
//	peak-GFLOP/s  that peak
//
// Best windows rather than means because the development machines are
// shared (see kernels/cpu/bench_test.go). Run each thread count on its
// own, with GOMAXPROCS set to the -cpu value, as for the kernel benchmarks:
//
//	GOMAXPROCS=2 go test -run '^$' -bench Forward -cpu 2 ./runtime

// forwardFLOP counts the multiply-adds (2 FLOP each) of Forward over m
// rows of a sequence of n positions, followed by Logits for scored of
// them: every layer's q|k|v projection over the m rows, then attention
// (q·kᵀ and the weighted sum of v over n positions), o, gate|up and down
// over the m rows for all layers but the last, and over the scored rows for
// the last; then the head over the scored rows. Norms, RoPE and the
// activation, a few operations per value, are left out.
func forwardFLOP(c *Config, m, n, scored int) float64 {
	h, qd, kvd, inter := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.Intermediate
	qkv := func(rows int) int { return rows * h * (qd + 2*kvd) }
	rest := func(rows int) int {
		return 2*rows*n*qd + // attention: q·kᵀ and the sum of v, per head
			rows*qd*h + // o
			rows*h*2*inter + // gate|up
			rows*inter*h // down
	}
	macs := c.Layers*qkv(m) + (c.Layers-1)*rest(m) + rest(scored) + scored*h*c.Vocab
	return 2 * float64(macs)
}

func benchForward(b *testing.B, lo, hi int, o LoadOptions) {
	if o.Q8 && !cpu.Native(cpu.FormatQ8_0) {
		b.Skip(ErrNoInt8)
	}
	if o.AMX && !cpu.AMX() {
		b.Skip(ErrNoAMX)
	}
	m := defaultModelWith(b, o)
	defer m.Close()
	ids := stepTokens(m)
	s := m.NewState(stepCanvas)
	ctx := context.Background()
	if err := s.Forward(ctx, ids, 0, stepCanvas); err != nil {
		b.Fatal(err)
	}
	rows := make([]int, stepWindow-1)
	for i := range rows {
		rows[i] = stepCanvas/2 + 1 + i
	}
	out := make([]float32, len(rows)*m.Config.Vocab)
	run := func() {
		if err := s.Forward(ctx, ids, lo, hi); err != nil {
			b.Fatal(err)
		}
		if err := s.Logits(rows, out); err != nil {
			b.Fatal(err)
		}
	}
	flop := forwardFLOP(&m.Config, hi-lo, stepCanvas, len(rows))
	procs := runtime.GOMAXPROCS(0)
	peak := fmapeak.GFLOPS(procs)
	sec := bestWindow(run, 10, 20*time.Millisecond)
	peak = max(peak, fmapeak.GFLOPS(procs))

	b.ReportAllocs()
	b.ResetTimer()
	// A classic b.N loop, not b.Loop: see kernels/cpu/bench_test.go.
	for range b.N {
		run()
	}
	b.StopTimer()
	gflops := flop / sec / 1e9
	b.ReportMetric(gflops, "GFLOP/s")
	b.ReportMetric(sec*1e6, "best-µs")
	if peak > 0 {
		b.ReportMetric(100*gflops/peak, "%peak")
		b.ReportMetric(peak, "peak-GFLOP/s")
	}
}

// BenchmarkForwardFull is the full pass of a completion: Forward over all
// 256 positions and Logits for 16 rows.
func BenchmarkForwardFull(b *testing.B) { benchForward(b, 0, stepCanvas, LoadOptions{}) }

// BenchmarkForwardWindow is a cached step: Forward over a window of 17 rows
// attending over 256 positions, and Logits for 16 of them.
func BenchmarkForwardWindow(b *testing.B) {
	benchForward(b, stepCanvas/2, stepCanvas/2+stepWindow, LoadOptions{})
}

// BenchmarkForwardFullQ8 and BenchmarkForwardWindowQ8 are the same passes
// with the matrices in Q8_0 (LoadOptions.Q8, what --weights auto runs on
// a CPU with VNNI); their GFLOP/s count the same arithmetic, so %peak is
// against the float32 FMA peak.
func BenchmarkForwardFullQ8(b *testing.B) { benchForward(b, 0, stepCanvas, LoadOptions{Q8: true}) }

func BenchmarkForwardWindowQ8(b *testing.B) {
	benchForward(b, stepCanvas/2, stepCanvas/2+stepWindow, LoadOptions{Q8: true})
}

// BenchmarkForwardFullAMX and BenchmarkForwardWindowAMX are the same passes
// with the matrices as bfloat16 AMX tiles (LoadOptions.AMX), %peak again
// against the float32 FMA peak.
func BenchmarkForwardFullAMX(b *testing.B) { benchForward(b, 0, stepCanvas, LoadOptions{AMX: true}) }

func BenchmarkForwardWindowAMX(b *testing.B) {
	benchForward(b, stepCanvas/2, stepCanvas/2+stepWindow, LoadOptions{AMX: true})
}

// bestWindow returns the fastest seconds per call of f over trials windows,
// each as many calls as fill minDur.
func bestWindow(f func(), trials int, minDur time.Duration) float64 {
	best := 0.0
	for range trials {
		calls := 0
		start := time.Now()
		for time.Since(start) < minDur || calls == 0 {
			f()
			calls++
		}
		if sec := time.Since(start).Seconds() / float64(calls); best == 0 || sec < best {
			best = sec
		}
	}
	return best
}
