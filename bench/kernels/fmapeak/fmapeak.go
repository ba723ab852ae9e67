// Package fmapeak measures the single-precision FMA peak of this machine
// from Go, for benchmarks that report their speed as a fraction of it: a
// loop of 12 independent fused multiply-adds on the widest vectors the CPU
// has, with no memory traffic, on as many goroutines as threads.
//
// It is a benchmark helper (bench/kernels/peak.c is its C counterpart for
// `make bench-kernels`); nothing in the server uses it.
package fmapeak

import (
	"sync"
	"time"
)

// GFLOPS returns the FMA peak on threads goroutines in GFLOP/s (2 per
// multiply-add): the best of several runs of about half a millisecond, so
// that a burst of load from other processes lowers it as little as it can.
// The goroutines run in parallel only as far as GOMAXPROCS allows. It
// returns 0 where there is no probe (no AVX2 or AVX-512, or not amd64).
func GFLOPS(threads int) float64 {
	perIter := flopPerIter()
	if perIter == 0 || threads < 1 {
		return 0
	}
	const iters = 1 << 18
	var best float64
	for range 20 {
		var wg sync.WaitGroup
		start := time.Now()
		for range threads {
			wg.Go(func() { loop(iters) })
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		best = max(best, float64(threads)*iters*perIter/el/1e9)
	}
	return best
}
