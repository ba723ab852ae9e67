package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A parter is work cut into numbered parts that may run in any order and
// concurrently.
type parter interface {
	runPart(i int)
}

// forkJoin holds one call's parts while the caller and the package's
// helper goroutines run them. Parts are claimed from a shared counter, so a
// helper that wakes late, or a core taken by another process, costs only the
// parts it did not claim: the caller never waits for a fixed share, nor for a
// helper that found nothing left to do.
type forkJoin struct {
	work  parter
	parts int32
	next  atomic.Int32
	done  sync.WaitGroup // parts not finished
	// refs counts the caller and the helpers still holding this forkJoin.
	// The last to let go frees it, so a helper that wakes after the call
	// returned never sees it reused by another call.
	refs atomic.Int32
}

// forkFree holds the forkJoins not in use. It is a plain free list rather
// than a sync.Pool because a helper often frees the forkJoin on its own P,
// where a Pool would keep it out of the caller's reach and the caller would
// allocate a new one.
var forkFree struct {
	sync.Mutex
	list []*forkJoin
}

func newForkJoin() *forkJoin {
	forkFree.Lock()
	defer forkFree.Unlock()
	if n := len(forkFree.list); n > 0 {
		f := forkFree.list[n-1]
		forkFree.list = forkFree.list[:n-1]
		return f
	}
	return new(forkJoin)
}

// parallel runs work's parts 0..parts-1, on as many cores as GOMAXPROCS
// allows, and returns when all are done.
func parallel(work parter, parts int) {
	helpers := min(parts, runtime.GOMAXPROCS(0)) - 1
	if helpers <= 0 {
		for i := range parts {
			work.runPart(i)
		}
		return
	}
	startHelpers(helpers)
	f := newForkJoin()
	f.work, f.parts = work, int32(parts)
	f.next.Store(0)
	f.done.Add(parts)
	f.refs.Store(int32(helpers + 1))
	for range helpers {
		helperQueue <- f
	}
	f.claim()
	f.done.Wait()
	f.release()
}

// claim runs unclaimed parts until none are left.
func (f *forkJoin) claim() {
	for {
		i := f.next.Add(1) - 1
		if i >= f.parts {
			return
		}
		f.work.runPart(int(i))
		f.done.Done()
	}
}

func (f *forkJoin) release() {
	if f.refs.Add(-1) == 0 {
		f.work = nil
		forkFree.Lock()
		forkFree.list = append(forkFree.list, f)
		forkFree.Unlock()
	}
}

// The helpers are long-lived goroutines, started on first need, because
// starting goroutines per call allocates and takes longer than a small
// matrix product.
var (
	helperQueue = make(chan *forkJoin, 64)
	helpersMu   sync.Mutex
	helpersUp   atomic.Int32
)

func startHelpers(n int) {
	if int(helpersUp.Load()) >= n {
		return
	}
	helpersMu.Lock()
	defer helpersMu.Unlock()
	for int(helpersUp.Load()) < n {
		go helper()
		helpersUp.Add(1)
	}
}

func helper() {
	for f := range helperQueue {
		f.claim()
		f.release()
	}
}
