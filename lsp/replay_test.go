package lsp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

const replaySource = `package main

import "fmt"

func main() {
	for i := 0; i < 3; i++ {
		fmt.Println("hello", i)
	}
}
`

// oracle is a model that knows the file being typed: it completes the
// current line with what the file has there.
func oracle(text string) *fakeCompleter {
	return &fakeCompleter{fn: func(_ context.Context, req infill.Request) (infill.Result, error) {
		i := strings.Index(text, req.Prefix)
		if i < 0 {
			return infill.Result{}, nil
		}
		rest := text[i+len(req.Prefix):]
		if j := strings.IndexByte(rest, '\n'); j >= 0 {
			rest = rest[:j]
		}
		return infill.Result{Text: rest}, nil
	}}
}

func TestReplay(t *testing.T) {
	checkGoroutines(t)
	start := strings.Index(replaySource, "\tfor")
	fake := oracle(replaySource)
	srvEnd, cliEnd := net.Pipe()
	cfg := testConfig()
	cfg.Mode = infill.SingleLine
	srv := New(Options{Load: loaderOf(fake), Config: cfg, Logger: testLogger(t)})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), srvEnd) }()

	rep, err := Replay(context.Background(), cliEnd, ReplayOptions{
		Text: replaySource, Start: start,
		Gap:       func(rune) time.Duration { return 0 },
		AwaitEach: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	typed := len([]rune(replaySource[start:]))
	if rep.Keystrokes != typed || rep.Requests != typed || rep.Server.Requests != int64(typed) {
		t.Errorf("report %+v, want %d keystrokes and requests", rep, typed)
	}
	// With the oracle, the model runs once per line (at its start; the rest
	// of the line is typed through the cache) or when the line is done and
	// it has nothing to add.
	st := rep.Server
	if st.CacheHits == 0 || st.CacheHits+st.Completed != st.Requests || int(st.Completed) > strings.Count(replaySource[start:], "\n")*3 {
		t.Errorf("server stats %+v", st)
	}
	if rep.CacheHitRate != float64(st.CacheHits)/float64(st.Requests) || rep.CancelledShare != 0 {
		t.Errorf("rates %v %v", rep.CacheHitRate, rep.CancelledShare)
	}
	if rep.Suggested == 0 || rep.P50 <= 0 || rep.P99 < rep.P50 {
		t.Errorf("latencies p50 %v p99 %v over %d suggestions", rep.P50, rep.P99, rep.Suggested)
	}
	if got := len(fake.requests()); got != int(st.Completed) {
		t.Errorf("the model ran %d times, the server counted %d", got, st.Completed)
	}
}

func TestReplayOverlapping(t *testing.T) {
	// Typing on without waiting, with a client that cancels: every request
	// is accounted for as completed, cached, superseded or cancelled.
	checkGoroutines(t)
	srvEnd, cliEnd := net.Pipe()
	srv := New(Options{Load: loaderOf(oracle(replaySource)), Config: testConfig(), Logger: testLogger(t)})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), srvEnd) }()
	rep, err := Replay(context.Background(), cliEnd, ReplayOptions{
		Text: replaySource, Start: strings.Index(replaySource, "func"),
		Gap:           func(rune) time.Duration { return 0 },
		ClientCancels: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	st := rep.Server
	if st.Requests != int64(rep.Requests) || st.CacheHits+st.Completed+st.Superseded+st.Cancelled+st.Empty != st.Requests {
		t.Errorf("stats %+v do not add up to %d requests", st, rep.Requests)
	}
}

func TestRealisticGaps(t *testing.T) {
	a, b := RealisticGaps(7), RealisticGaps(7)
	var sum time.Duration
	for i := range 1000 {
		ga, gb := a('x'), b('x')
		if ga != gb {
			t.Fatalf("gap %d differs between two generators with one seed", i)
		}
		if ga <= 0 {
			t.Fatalf("gap %d is %v", i, ga)
		}
		sum += ga
	}
	if mean := sum / 1000; mean < 100*time.Millisecond || mean > 400*time.Millisecond {
		t.Errorf("mean gap %v, want a typist's 100-400 ms", mean)
	}
}
