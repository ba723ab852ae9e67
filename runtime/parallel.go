package runtime

import (
	goruntime "runtime"
	"sync"
)

// A small pool of goroutines, started once, that runs the attention heads
// in parallel. Starting goroutines per layer would allocate on every
// Forward; sending a task value over a channel does not.

type task struct {
	run          func(part, lo, hi int)
	part, lo, hi int
	wg           *sync.WaitGroup
}

var pool struct {
	once  sync.Once
	size  int // goroutines in the pool; the caller is one more worker
	tasks chan task
}

func startPool() {
	pool.size = goruntime.GOMAXPROCS(0) - 1
	pool.tasks = make(chan task, 4*pool.size+1)
	for range pool.size {
		go func() {
			for t := range pool.tasks {
				t.run(t.part, t.lo, t.hi)
				t.wg.Done()
			}
		}()
	}
}

// maxParts is the most pieces parallel will split work into.
func maxParts() int {
	pool.once.Do(startPool)
	return pool.size + 1
}

// parallel splits [0,n) into at most parts contiguous pieces and runs
// run(part, lo, hi) on each, one on the calling goroutine and the rest on
// the pool; part numbers the pieces from 0. It returns when all are done.
// run must not call parallel itself, or the pool could deadlock.
func parallel(n, parts int, wg *sync.WaitGroup, run func(part, lo, hi int)) {
	parts = min(parts, n, maxParts())
	if parts <= 1 {
		if n > 0 {
			run(0, 0, n)
		}
		return
	}
	step := (n + parts - 1) / parts
	part := 0
	for lo := step; lo < n; lo += step {
		part++
		wg.Add(1)
		pool.tasks <- task{run: run, part: part, lo: lo, hi: min(lo+step, n), wg: wg}
	}
	run(0, 0, step)
	wg.Wait()
}
