package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/infuse-lsp/infuse/kernels/cpu"
	"github.com/infuse-lsp/infuse/runtime/safetensors"
)

// randomModel builds a model with random weights for the given config.json
// fields, through the real loader (an in-memory safetensors file).
func randomModel(tb testing.TB, config map[string]any, seed uint64) *Model {
	tb.Helper()
	cfgJSON, _ := json.Marshal(config)
	fsys := fstest.MapFS{"config.json": {Data: cfgJSON}}
	cfg, err := ReadConfig(fsys)
	if err != nil {
		tb.Fatal(err)
	}
	fsys[safetensors.SingleFile] = &fstest.MapFile{Data: randomWeights(tb, cfg, seed)}
	m, err := LoadFS(fsys)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// randomWeights is a safetensors file of float32 weights for cfg, normal
// random values scaled by 1/fan-in to keep activations O(1).
func randomWeights(tb testing.TB, cfg Config, seed uint64) []byte {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	var w Weights
	var entries []safetensors.Entry
	for _, s := range cfg.specs(&w) {
		n := 1
		for _, d := range s.shape {
			n *= d
		}
		data := make([]float32, n)
		scale := float32(1)
		if len(s.shape) == 2 {
			scale = 1 / float32(s.shape[1])
		}
		for i := range data {
			data[i] = float32(r.NormFloat64()) * scale
		}
		entries = append(entries, safetensors.Entry{Name: s.name, DType: safetensors.F32, Shape: s.shape, Data: data})
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, entries, nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// dreamShaped is a Dream config with the given sizes.
func dreamShaped(hidden, inter, layers, heads, kvHeads, vocab int) map[string]any {
	return map[string]any{
		"model_type": "Dream", "hidden_size": hidden, "intermediate_size": inter,
		"num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kvHeads,
		"vocab_size": vocab, "rope_theta": 1e6, "rms_norm_eps": 1e-6, "mask_token_id": vocab - 1,
	}
}

func TestForwardErrors(t *testing.T) {
	m := randomModel(t, dreamShaped(32, 64, 2, 4, 2, 50), 1)
	ctx := context.Background()
	ids := []int32{1, 2, 3, 4, 5, 6}
	s := m.NewState(8)

	check := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", what, err, want)
		}
	}
	check("logits first", s.Logits([]int{0}, make([]float32, 50)), "no completed Forward")
	check("empty", s.Forward(ctx, nil, 0, 0), "empty sequence")
	check("too long", s.Forward(ctx, make([]int32, 9), 0, 9), "9 tokens, capacity 8")
	if err := s.Forward(ctx, make([]int32, 9), 0, 9); !errors.Is(err, ErrTooLong) {
		t.Errorf("too long: %v is not ErrTooLong", err)
	}
	check("hi past n", s.Forward(ctx, ids, 0, 7), "window [0,7) is not a non-empty part of the 6 positions")
	check("negative lo", s.Forward(ctx, ids, -1, 3), "window [-1,3)")
	check("empty window", s.Forward(ctx, ids, 3, 3), "window [3,3)")
	check("token", s.Forward(ctx, []int32{1, 50, 2}, 0, 3), "token 50 at position 1 is outside the vocabulary of 50")
	check("negative token", s.Forward(ctx, []int32{-1}, 0, 1), "token -1 at position 0")
	check("uncached", s.Forward(ctx, ids, 2, 4), "position 0 is outside the window [2,4) but has no cached K/V")

	if err := s.Forward(ctx, ids, 0, 6); err != nil {
		t.Fatal(err)
	}
	check("longer than cached", s.Forward(ctx, append(ids, 7), 2, 4), "position 6 is outside the window [2,4) but has no cached K/V")
	if err := s.Forward(ctx, ids, 2, 4); err != nil {
		t.Fatal(err)
	}
	check("row outside window", s.Logits([]int{1}, make([]float32, 50)), "position 1 is outside the window [2,4)")
	check("out length", s.Logits([]int{2, 3}, make([]float32, 99)), "out has 99 values, want 2 rows × 50")
	if err := s.Logits([]int{3, 2}, make([]float32, 100)); err != nil {
		t.Error(err)
	}
	if err := s.Logits(nil, nil); err != nil {
		t.Errorf("no rows: %v", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err := s.Forward(cancelled, ids, 2, 4)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	check("logits after cancel", s.Logits([]int{2}, make([]float32, 50)), "no completed Forward")
	check("window after cancel", s.Forward(ctx, ids, 0, 2), "position 2 is outside the window [0,2) but has no cached K/V")

	zero := m.NewState(-5)
	check("zero capacity", zero.Forward(ctx, ids[:1], 0, 1), "1 tokens, capacity 0")

	m.Close()
	check("closed", s.Forward(ctx, ids, 0, 6), "model is closed")
	check("closed logits", s.Logits([]int{2}, make([]float32, 50)), "model is closed")
}

// TestStatesConcurrent runs two States of one model at once (run with
// -race) and checks that each gets the answer it gets alone.
func TestStatesConcurrent(t *testing.T) {
	m := randomModel(t, dreamShaped(32, 64, 2, 4, 2, 50), 2)
	defer m.Close()
	seqs := [][]int32{{1, 2, 3, 4, 5, 6, 7}, {9, 8, 7, 6}}
	want := make([][]float32, len(seqs))
	for i, ids := range seqs {
		want[i] = fullLogits(t, m, ids)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(seqs))
	got := make([][]float32, len(seqs))
	for i, ids := range seqs {
		wg.Go(func() {
			s := m.NewState(len(ids))
			for range 5 {
				if errs[i] = s.Forward(context.Background(), ids, 0, len(ids)); errs[i] != nil {
					return
				}
			}
			rows := make([]int, len(ids))
			for r := range rows {
				rows[r] = r
			}
			got[i] = make([]float32, len(ids)*m.Config.Vocab)
			errs[i] = s.Logits(rows, got[i])
		})
	}
	wg.Wait()
	for i := range seqs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if e := relErr(got[i], want[i]); e != 0 {
			t.Errorf("sequence %d: concurrent result differs by %g", i, e)
		}
	}
}

// TestForwardAllocs checks that Forward allocates nothing of its own: at
// most what the matrix multiplications it calls allocate (kernels/cpu's
// MatMulT may allocate for its own parallelism).
func TestForwardAllocs(t *testing.T) {
	m := randomModel(t, dreamShaped(32, 64, 2, 4, 2, 50), 3)
	defer m.Close()
	ids := []int32{1, 2, 3, 4, 5, 6, 7, 8}
	s := m.NewState(len(ids))
	ctx := context.Background()
	if err := s.Forward(ctx, ids, 0, len(ids)); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 8*32)
	w := make([]float32, 64*32)
	out := make([]float32, 8*64)
	perMatMul := testing.AllocsPerRun(20, func() { cpu.MatMulT(out, x, w, 8, 32, 64) })
	matmuls := 7 * m.Config.Layers
	got := testing.AllocsPerRun(20, func() {
		if err := s.Forward(ctx, ids, 0, len(ids)); err != nil {
			t.Fatal(err)
		}
	})
	// Worker goroutines of MatMulT allocate on some runs and not others;
	// allow for them with one extra per call.
	if limit := float64(matmuls) * (perMatMul + 1); got > limit {
		t.Errorf("Forward allocates %.1f times per call; its %d matmuls account for at most %.1f", got, matmuls, limit)
	}
	t.Logf("Forward: %.1f allocations per call, %d MatMulT calls at %.1f each", got, matmuls, perMatMul)
	rows := []int{0, 3, 5}
	logits := make([]float32, len(rows)*m.Config.Vocab)
	got = testing.AllocsPerRun(20, func() {
		if err := s.Logits(rows, logits); err != nil {
			t.Fatal(err)
		}
	})
	if got > perMatMul+1 {
		t.Errorf("Logits allocates %.1f times per call", got)
	}
}

// The benchmark model: Dream-shaped, hidden 256, 8 layers, 8 heads over 2
// K/V heads, intermediate 768, vocabulary 2048: 7.1M parameters.
var benchConfig = dreamShaped(256, 768, 8, 8, 2, 2048)

// forwardFLOPs counts the multiply-adds (×2) of Forward over m window rows
// of an n-token sequence: the projections, and attention's q·k and p·v, of
// every layer but the last, of which Forward computes only q, k and v (the
// rest is Logits', for the rows it is asked for).
func forwardFLOPs(c Config, n, m int) float64 {
	qd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	qkv := c.Hidden*qd + 2*c.Hidden*kvd
	perRow := qkv + qd*c.Hidden + 3*c.Hidden*c.Intermediate
	attn := 2 * c.Heads * n * c.HeadDim
	return 2 * float64(m) * (float64(c.Layers-1)*float64(perRow+attn) + float64(qkv))
}

// matmulBaseline measures cpu.MatMulT's GFLOP/s on the model's largest
// projection shape in this run, so that Forward's speed can be reported as a
// fraction of it rather than as a bare time.
func matmulBaseline(c Config, n int) float64 {
	x := make([]float32, n*c.Hidden)
	w := make([]float32, c.Intermediate*c.Hidden)
	out := make([]float32, n*c.Intermediate)
	cpu.MatMulT(out, x, w, n, c.Hidden, c.Intermediate) // warm up
	const reps = 20
	start := time.Now()
	for range reps {
		cpu.MatMulT(out, x, w, n, c.Hidden, c.Intermediate)
	}
	return reps * 2 * float64(n*c.Hidden*c.Intermediate) / time.Since(start).Seconds() / 1e9
}

func benchmarkForward(b *testing.B, n, window int) {
	m := randomModel(b, benchConfig, 7)
	defer m.Close()
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i * 7 % m.Config.Vocab)
	}
	s := m.NewState(n)
	ctx := context.Background()
	if err := s.Forward(ctx, ids, 0, n); err != nil {
		b.Fatal(err)
	}
	lo := (n - window) / 2
	base := matmulBaseline(m.Config, n)
	b.ResetTimer()
	for b.Loop() {
		if err := s.Forward(ctx, ids, lo, lo+window); err != nil {
			b.Fatal(err)
		}
	}
	gflops := forwardFLOPs(m.Config, n, window) * float64(b.N) / b.Elapsed().Seconds() / 1e9
	b.ReportMetric(gflops, "GFLOP/s")
	b.ReportMetric(gflops/base, "x_matmul")
	b.ReportMetric(float64(goruntime.GOMAXPROCS(0)), "procs")
}

// BenchmarkForward256 is one full pass over 256 tokens. x_matmul is its
// GFLOP/s over MatMulT's on the MLP shape in the same run.
func BenchmarkForward256(b *testing.B) { benchmarkForward(b, 256, 256) }

// BenchmarkWindow32of256 is one dual-cache step: 32 rows attending over 256.
func BenchmarkWindow32of256(b *testing.B) { benchmarkForward(b, 256, 32) }
