package infill

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// batchRequests are completions at several places of real files, single-
// and multi-line.
func batchRequests(tb testing.TB, n int) []Request {
	tb.Helper()
	var reqs []Request
	for _, name := range []string{"dbm_dumb.py", "net_lookup_windows.go", "re___init__.py"} {
		src, err := os.ReadFile("../cmd/infuse/testdata/bench/" + name)
		if err != nil {
			tb.Fatal(err)
		}
		for _, frac := range []int{3, 5, 7} {
			cut := len(src) * frac / 10
			for src[cut] != '\n' {
				cut++
			}
			cut += 9
			mode := SingleLine
			if frac == 5 {
				mode = MultiLine
			}
			reqs = append(reqs, Request{Prefix: string(src[:cut]), Suffix: string(src[cut:]), Mode: mode})
		}
	}
	return reqs[:n]
}

// submitTogether runs reqs on e at once, all queued before the scheduler's
// loop starts, so that they share its batches; cancel[i], if set, is
// called once they are all queued.
func submitTogether(t *testing.T, e *Engine, reqs []Request, cancel map[int]bool) ([]Result, []error) {
	t.Helper()
	s := &e.sched
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		t.Fatal("scheduler busy")
	}
	s.running = true // hold the loop back until every request is queued
	s.mu.Unlock()
	res, errs := make([]Result, len(reqs)), make([]error, len(reqs))
	cancels := make([]context.CancelFunc, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		ctx, c := context.WithCancel(context.Background())
		cancels[i] = c
		wg.Go(func() { res[i], errs[i] = e.Complete(ctx, r) })
	}
	for {
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n == len(reqs) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for i := range cancel {
		cancels[i]()
	}
	go s.loop()
	wg.Wait()
	for _, c := range cancels {
		c()
	}
	return res, errs
}

// TestBatchedRequestsSameAsAlone runs requests one at a time, then all at
// once in batches of 8 and of 3 (more requests than room), and checks that
// each gets the same completion in fewer batched passes than passes alone.
func TestBatchedRequestsSameAsAlone(t *testing.T) {
	reqs := batchRequests(t, 7)
	alone := defaultEngine(t, Options{})
	want := make([]Result, len(reqs))
	nfe := 0
	for i, r := range reqs {
		res, err := alone.Complete(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res
		nfe += res.Figures.NFE
	}
	for _, size := range []int{8, 3} {
		e := defaultEngine(t, Options{MaxBatch: size})
		got, errs := submitTogether(t, e, reqs, nil)
		for i := range reqs {
			if errs[i] != nil {
				t.Fatalf("batch of %d, request %d: %v", size, i, errs[i])
			}
			if got[i].Text != want[i].Text {
				t.Errorf("batch of %d, request %d: %q, alone %q", size, i, got[i].Text, want[i].Text)
			}
			if got[i].Figures.NFE != want[i].Figures.NFE || got[i].Figures.Tokens != want[i].Figures.Tokens {
				t.Errorf("batch of %d, request %d: %d passes for %d tokens, alone %d for %d", size, i,
					got[i].Figures.NFE, got[i].Figures.Tokens, want[i].Figures.NFE, want[i].Figures.Tokens)
			}
		}
		if e.sched.steps >= nfe {
			t.Errorf("batch of %d: %d batched passes for %d passes alone: nothing was batched", size, e.sched.steps, nfe)
		}
		t.Logf("batch of %d: %d batched passes for %d passes alone", size, e.sched.steps, nfe)
		waitIdle(t, e)
	}
}

// TestCancelOneRequestInBatch cancels two requests of a batch: they end
// with the context's error, the others finish as they would alone, and
// the scheduler keeps at most a batch of States and stops its loop.
func TestCancelOneRequestInBatch(t *testing.T) {
	reqs := batchRequests(t, 5)
	e := defaultEngine(t, Options{MaxBatch: 4})
	want := make([]string, len(reqs))
	for i, r := range reqs {
		res, err := e.Complete(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.Text
	}
	waitIdle(t, e)
	got, errs := submitTogether(t, e, reqs, map[int]bool{1: true, 4: true})
	for i := range reqs {
		switch {
		case i == 1 || i == 4:
			if !errors.Is(errs[i], context.Canceled) {
				t.Errorf("cancelled request %d: %v", i, errs[i])
			}
		case errs[i] != nil:
			t.Errorf("request %d: %v", i, errs[i])
		case got[i].Text != want[i]:
			t.Errorf("request %d: %q, alone %q", i, got[i].Text, want[i])
		}
	}
	waitIdle(t, e)
	if n := len(e.sched.free); n > 4 {
		t.Errorf("%d States kept for a batch of 4", n)
	}
}

// waitIdle waits for the scheduler's loop to end.
func waitIdle(t *testing.T, e *Engine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.sched.mu.Lock()
		running := e.sched.running
		e.sched.mu.Unlock()
		if !running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduler's loop did not end")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPanicInLoopFailsRequests makes the loop panic at its third step: the
// requests in flight get an error, and the engine serves the next one.
func TestPanicInLoopFailsRequests(t *testing.T) {
	reqs := batchRequests(t, 3)
	e := defaultEngine(t, Options{MaxBatch: 8})
	steps := 0
	e.sched.onStep = func() {
		if steps++; steps == 3 {
			panic("injected")
		}
	}
	_, errs := submitTogether(t, e, reqs, nil)
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "internal error in the denoising loop: injected") {
			t.Errorf("request %d: %v, want the injected panic as an error", i, err)
		}
	}
	waitIdle(t, e)
	if _, err := e.Complete(context.Background(), reqs[0]); err != nil {
		t.Errorf("after the panic: %v", err)
	}
}
