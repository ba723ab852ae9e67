package lsp

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"go.lsp.dev/uri"
)

// Why a completion stopped before it finished, as the cause of its context.
// Both are answered with an empty result rather than an error: the client
// did not ask for the cancellation, and an empty answer is what every client
// handles quietly.
var (
	errSuperseded = errors.New("superseded by a newer completion request for the document")
	errStale      = errors.New("the document changed")
)

// scheduler keeps at most one completion running per document: the newest
// request wins. Clients do not all cancel the requests they no longer want
// (Neovim sends a new inline completion request per keystroke and cancels
// nothing until insert mode ends), so the server does it.
type scheduler struct {
	mu      sync.Mutex
	running map[uri.URI]*ticket
}

type ticket struct {
	cancel context.CancelCauseFunc
}

func newScheduler() *scheduler {
	return &scheduler{running: make(map[uri.URI]*ticket)}
}

// begin registers a completion for u, cancelling the one before it with
// errSuperseded. The returned context ends when the request's ctx does, when
// a newer request or an edit to u arrives, or when end is called; end must be
// called once the work is over.
func (s *scheduler) begin(ctx context.Context, u uri.URI) (_ context.Context, end func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	t := &ticket{cancel: cancel}
	s.mu.Lock()
	if old := s.running[u]; old != nil {
		old.cancel(errSuperseded)
	}
	s.running[u] = t
	s.mu.Unlock()
	return ctx, func() {
		s.mu.Lock()
		if s.running[u] == t {
			delete(s.running, u)
		}
		s.mu.Unlock()
		cancel(context.Canceled)
	}
}

// invalidate cancels the completion running for u, whose result could only
// describe text that is gone.
func (s *scheduler) invalidate(u uri.URI) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.running[u]; t != nil {
		t.cancel(errStale)
		delete(s.running, u)
	}
}

// stopAll cancels every running completion with cause.
func (s *scheduler) stopAll(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for u, t := range s.running {
		t.cancel(cause)
		delete(s.running, u)
	}
}

// Stats are a session's completion counters, returned by the custom request
// "infuse/stats". Every completion request counts once in Requests and once in
// exactly one of the outcome fields.
type Stats struct {
	Requests   int64 `json:"requests"`   // inline and classic completion requests
	CacheHits  int64 `json:"cacheHits"`  // answered from the type-through cache
	Completed  int64 `json:"completed"`  // answered by running the model
	Empty      int64 `json:"empty"`      // answered empty without running the model (disabled language, no engine)
	Superseded int64 `json:"superseded"` // dropped for a newer request or an edit
	Cancelled  int64 `json:"cancelled"`  // cancelled by the client ($/cancelRequest)
	TimedOut   int64 `json:"timedOut"`   // ran past the deadline
	Failed     int64 `json:"failed"`     // the completer returned an error
}

// counters is Stats updated concurrently.
type counters struct {
	requests, cacheHits, completed, empty, superseded, cancelled, timedOut, failed atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Requests:   c.requests.Load(),
		CacheHits:  c.cacheHits.Load(),
		Completed:  c.completed.Load(),
		Empty:      c.empty.Load(),
		Superseded: c.superseded.Load(),
		Cancelled:  c.cancelled.Load(),
		TimedOut:   c.timedOut.Load(),
		Failed:     c.failed.Load(),
	}
}
