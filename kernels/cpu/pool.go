package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
	left  atomic.Int32 // parts not finished
	// refs counts the caller and the helpers still holding this forkJoin.
	// The last to let go frees it, so a helper that picks it up after the
	// call returned never sees it reused by another call.
	refs atomic.Int32
	// waiting says that the caller has stopped spinning and sleeps on
	// wake until the last part is done.
	waiting atomic.Bool
	wake    chan struct{}
}

// A freeList holds values not in use, for reuse: the jobs and scratch of
// calls that must not allocate. It is a plain mutex-guarded list rather than
// a sync.Pool because a Pool drops its items at every garbage collection
// (and at random under the race detector), and because a helper often
// frees a job on its own P, where a Pool would keep it out of the caller's
// reach and the caller would allocate a new one.
type freeList[T any] struct {
	mu   sync.Mutex
	list []*T
}

func (l *freeList[T]) get() *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.list); n > 0 {
		x := l.list[n-1]
		l.list = l.list[:n-1]
		return x
	}
	return new(T)
}

func (l *freeList[T]) put(x *T) {
	l.mu.Lock()
	l.list = append(l.list, x)
	l.mu.Unlock()
}

var forkFree freeList[forkJoin]

// parallel runs work's parts 0..parts-1, on as many cores as GOMAXPROCS
// allows, and returns when all are done.
//
// A forward pass makes dozens of calls of a few tens of microseconds each,
// so what a call costs beyond its parts matters: a helper that has run a
// part recently spins on its mailbox rather than sleeping, and is handed
// the next call by one atomic store instead of a scheduler wake-up that
// would take as long as the call itself. The caller, once no part is left
// to claim, likewise spins for the helpers' last parts, for a while.
func parallel(work parter, parts int) {
	helpers := min(parts, runtime.GOMAXPROCS(0)) - 1
	if helpers <= 0 {
		for i := range parts {
			work.runPart(i)
		}
		return
	}
	hs := startHelpers(helpers)
	f := forkFree.get()
	if f.wake == nil {
		f.wake = make(chan struct{}, 1)
	}
	f.work, f.parts = work, int32(parts)
	f.next.Store(0)
	f.left.Store(int32(parts))
	f.refs.Store(int32(helpers + 1))
	// Post to the first idle mailboxes. A helper whose mailbox is taken
	// is busy with another caller's work: that call keeps it.
	var posted [maxHelpers]*helper
	np := 0
	for _, h := range hs {
		if np == helpers {
			break
		}
		if h.post(f) {
			posted[np] = h
			np++
		}
	}
	for range helpers - np {
		f.refs.Add(-1)
	}
	f.claim()
	// Helpers that have not picked the call up yet are not needed: take
	// it back from their mailboxes, so that they need not wake for it.
	for _, h := range posted[:np] {
		if h.box.CompareAndSwap(f, nil) {
			f.refs.Add(-1)
		}
	}
	f.wait()
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
		// The last part wakes a caller that has stopped spinning. The
		// caller sets waiting before it reads left a last time, and this
		// reads waiting after its write to left: one of the two sees the
		// other's write. A token the caller did not need stays in the
		// channel, and costs a later wait one more look at left.
		if f.left.Add(-1) == 0 && f.waiting.Load() {
			select {
			case f.wake <- struct{}{}:
			default:
			}
		}
	}
}

// wait returns when every part has finished. The parts still running are
// a helper's last ones, so the wait is usually short: spin for a while,
// then sleep until the last part wakes it, so that a helper sharing a core
// with the caller (on a loaded machine) is not kept off it.
func (f *forkJoin) wait() {
	start := time.Now()
	for spins := 1; f.left.Load() > 0; spins++ {
		spinPause()
		if spins%64 == 0 && time.Since(start) > waitSpinFor {
			f.waiting.Store(true)
			if f.left.Load() > 0 {
				<-f.wake
			}
			f.waiting.Store(false)
			start = time.Now()
		}
	}
}

func (f *forkJoin) release() {
	if f.refs.Add(-1) == 0 {
		f.work = nil
		forkFree.put(f)
	}
}

// maxHelpers bounds the helper goroutines: one fewer than the cores a
// call can use.
const maxHelpers = 63

// spinFor is how long an idle helper keeps polling its mailbox before it
// sleeps: longer than the gaps between the products of a forward pass, so
// that a pass wakes each helper once, and short enough that an idle server
// gives its cores back at once.
const spinFor = 200 * time.Microsecond

// waitSpinFor is how long a caller whose parts are all claimed spins for
// the helpers' last parts before it sleeps: about the length of one part
// of a large product.
const waitSpinFor = 50 * time.Microsecond

// yieldSpins is how many polls (each a PAUSE, some tens of nanoseconds) a
// spinning goroutine makes between yields of its P. A yield costs about a
// microsecond of scheduler work, so it must be rare; it is there for
// goroutines that want the P, not for the spinner.
const yieldSpins = 1024

// A helper is a long-lived goroutine, started on first need, that runs the
// parts of the calls posted to its mailbox.
type helper struct {
	box    atomic.Pointer[forkJoin]
	asleep atomic.Bool
	wake   chan struct{}
	_      [64]byte // keep helpers' mailboxes on separate cache lines
}

var (
	helpersMu sync.Mutex
	helpersUp atomic.Pointer[[]*helper]
)

// startHelpers returns at least n helpers, starting those missing.
func startHelpers(n int) []*helper {
	n = min(n, maxHelpers)
	if hs := helpersUp.Load(); hs != nil && len(*hs) >= n {
		return *hs
	}
	helpersMu.Lock()
	defer helpersMu.Unlock()
	var hs []*helper
	if p := helpersUp.Load(); p != nil {
		hs = *p
	}
	for len(hs) < n {
		h := &helper{wake: make(chan struct{}, 1)}
		go h.run()
		hs = append(hs[:len(hs):len(hs)], h)
	}
	helpersUp.Store(&hs)
	return hs
}

// post offers f to h, and reports whether h's mailbox was free.
func (h *helper) post(f *forkJoin) bool {
	if !h.box.CompareAndSwap(nil, f) {
		return false
	}
	// post stores the mailbox before it reads asleep, and the helper sets
	// asleep before it reads the mailbox a last time: one of the two sees
	// the other's write.
	if h.asleep.Load() {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	return true
}

func (h *helper) run() {
	for {
		f := h.next()
		f.claim()
		f.release()
	}
}

// next returns the next call posted to h, spinning for spinFor before it
// sleeps.
func (h *helper) next() *forkJoin {
	for {
		start := time.Now()
		for spins := 1; ; spins++ {
			// Load before Swap: polling must not take the cache line
			// from the poster.
			if h.box.Load() != nil {
				if f := h.box.Swap(nil); f != nil {
					return f
				}
			}
			spinPause()
			if spins%64 == 0 && time.Since(start) > spinFor {
				break
			}
			if spins%yieldSpins == 0 {
				runtime.Gosched()
			}
		}
		h.asleep.Store(true)
		if f := h.box.Swap(nil); f != nil {
			h.asleep.Store(false)
			return f
		}
		<-h.wake
		h.asleep.Store(false)
	}
}

// Rows is work on rows 0..n-1 that can be done in contiguous ranges, in
// any order and concurrently.
type Rows interface {
	Rows(lo, hi int)
}

// ParallelRows calls work.Rows over contiguous ranges that cover [0, n)
// once, splitting them across cores when the work, about cost arithmetic
// operations per row, is worth waking them for, and returns when all are
// done. It is how a caller runs the row-wise steps between its matrix
// products (norms, activations) on every core.
func ParallelRows(work Rows, n, cost int) {
	if n <= 0 {
		return
	}
	parts := 1
	if workers := runtime.GOMAXPROCS(0); workers > 1 && n*max(cost, 1) >= parallelRowOps {
		parts = min(n, partsPerCore*workers)
	}
	if parts == 1 {
		work.Rows(0, n)
		return
	}
	j := rowsFree.get()
	j.work, j.n, j.parts = work, n, parts
	parallel(j, parts)
	j.work = nil
	rowsFree.put(j)
}

// parallelRowOps is the least work ParallelRows splits: an elementwise
// operation takes about a nanosecond per 16 values on one core, and a
// fork-join costs a few microseconds.
const parallelRowOps = 1 << 16

type rowsJob struct {
	work     Rows
	n, parts int
}

var rowsFree freeList[rowsJob]

func (j *rowsJob) runPart(i int) {
	lo, hi := i*j.n/j.parts, (i+1)*j.n/j.parts
	if lo < hi {
		j.work.Rows(lo, hi)
	}
}

// grid cuts a product's output, tiles row tiles × units column units
// (panels, strips or groups), into about target parts for parallel:
// columns first, each part reading its own weights, then rows as well
// when the columns alone give too few parts (and splitRows allows).
type grid struct {
	tiles, units       int
	tilesPer, rowParts int
	unitsPer, colParts int
}

func (g *grid) cut(tiles, units, target int, splitRows bool) (parts int) {
	g.tiles, g.units = tiles, units
	g.unitsPer = (units + target - 1) / target
	g.colParts = (units + g.unitsPer - 1) / g.unitsPer
	g.tilesPer, g.rowParts = tiles, 1
	if splitRows && g.colParts < target {
		rg := min(tiles, target/g.colParts)
		g.tilesPer = (tiles + rg - 1) / rg
		g.rowParts = (tiles + g.tilesPer - 1) / g.tilesPer
	}
	return g.colParts * g.rowParts
}

// part returns part i's row tiles [t0, t1) and units [u0, u1).
func (g *grid) part(i int) (t0, t1, u0, u1 int) {
	rg, cg := i%g.rowParts, i/g.rowParts
	t0, u0 = rg*g.tilesPer, cg*g.unitsPer
	return t0, min(t0+g.tilesPer, g.tiles), u0, min(u0+g.unitsPer, g.units)
}
