package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkLinear times MulT for each weight type on the products of a
// denoising step: the default model's (hidden 256, q|k|v 512, intermediate
// 704, vocab 8192) and Qwen2.5-0.5B's (hidden 896, q|k|v 896+2·128,
// intermediate 4864, vocab 151936), at m = 1, 8 and 17 rows. Each
// iteration runs every type once, and each type's fastest call counts (the
// machines are shared: a minimum is what another process's time slices
// disturb least). Per type it reports GFLOP/s (2·m·k·n per second), GB/s
// (packed weight bytes per second: what bounds small-m products) and x-bf16
// (speed over the bf16 matrix in the same run); ns/op is all five types.
//
//	go test -run XXX -bench Linear ./kernels/cpu
//	go test -run XXX -bench 'Linear/qwen0.5b' ./kernels/cpu
func BenchmarkLinear(b *testing.B) {
	shapes := []struct {
		name string
		k, n int
	}{
		{"default/qkv", 256, 512}, {"default/o", 256, 256}, {"default/gateup", 256, 1408},
		{"default/down", 704, 256}, {"default/head", 256, 8192},
		{"qwen0.5b/qkv", 896, 1152}, {"qwen0.5b/o", 896, 896}, {"qwen0.5b/gateup", 896, 9728},
		{"qwen0.5b/down", 4864, 896}, {"qwen0.5b/head", 896, 151936},
	}
	for _, s := range shapes {
		k, n := s.k, s.n
		var mats []Linear
		var names []string
		build := func() {
			if mats != nil {
				return
			}
			r := rand.New(rand.NewPCG(3, 4))
			w := randSlice(r, n*k)
			mats = append(mats, NewMatrix(w, n, k))
			bf := make([]uint16, len(w))
			for i, v := range w {
				bf[i] = Float32ToBF16(v)
			}
			mats = append(mats, NewBF16Matrix(bf, n, k))
			for i, v := range w {
				bf[i] = Float32ToF16(v)
			}
			mats = append(mats, NewF16Matrix(bf, n, k))
			mats = append(mats, NewQ8Matrix(QuantizeQ8(w, n, k), n, k))
			mats = append(mats, NewQ4KMatrix(QuantizeQ4K(w, n, k), n, k))
			names = []string{"f32", "bf16", "f16", "q8_0", "q4_k"}
		}
		for _, m := range []int{1, 8, 17} {
			b.Run(fmt.Sprintf("%s/m=%d", s.name, m), func(b *testing.B) {
				build()
				r := rand.New(rand.NewPCG(5, 6))
				x := randSlice(r, m*k)
				out := make([]float32, m*n)
				best := make([]time.Duration, len(mats))
				for i := range best {
					best[i] = time.Hour
				}
				for b.Loop() {
					for i, a := range mats {
						t0 := time.Now()
						a.MulT(out, x, m)
						best[i] = min(best[i], time.Since(t0))
					}
				}
				for i, a := range mats {
					sec := best[i].Seconds()
					b.ReportMetric(2*float64(m*k*n)/sec/1e9, names[i]+"-GFLOP/s")
					b.ReportMetric(float64(a.Bytes())/sec/1e9, names[i]+"-GB/s")
					b.ReportMetric(best[1].Seconds()/sec, names[i]+"-x-bf16")
				}
			})
		}
		mats = nil
	}
}
