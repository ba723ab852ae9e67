package lsp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sourcegraph/conc/panics"
	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"

	"github.com/infuse-lsp/infuse/infill"
)

// A site is where a completion goes: the document version it was asked for
// and the text on either side of the hole.
type site struct {
	doc    *Document
	before string // all text before the hole
	after  string // all text after it
}

// cursorSite opens the document a request names and splits its text at the
// position, returning the site and the cursor's byte offset.
func (s *Server) cursorSite(u uri.URI, pos protocol.Position) (site, int, error) {
	doc, err := s.openDocument(u)
	if err != nil {
		return site{}, 0, err
	}
	cursor := doc.Mapper().PositionOffset(pos, s.encoding())
	return site{doc: doc, before: doc.Text[:cursor], after: doc.Text[cursor:]}, cursor, nil
}

// A suggestion request's answer: the text to insert (empty for none) and
// whether it came from the type-through cache.
type answer struct {
	text   string
	mode   infill.Mode
	cached bool
}

// suggest runs the completion pipeline for one request: the type-through
// cache, then (releasing the read loop) the per-document scheduler, the
// debounce, the wait for the model, the completer under a deadline, and the
// check that the document has not moved on.
//
// It returns an empty answer, not an error, whenever the client did not ask
// for the failure: a newer request or an edit superseded this one, the
// deadline passed, the model failed to load or to complete (logged). The one
// error is RequestCancelled, for a request the client cancelled.
func (s *Server) suggest(ctx context.Context, at site, automatic bool) (answer, error) {
	s.stats.requests.Add(1)
	epoch := s.cache.epochNow() // before the configuration is read
	cfg := s.config()
	u := at.doc.URI
	if !cfg.Enabled(at.doc.LanguageID) {
		s.stats.empty.Add(1)
		return answer{}, nil
	}
	mode := decideMode(at.before, at.after, cfg.Mode)
	if rest, ok := s.cache.lookup(u, at.before, at.after); ok {
		s.stats.cacheHits.Add(1)
		return answer{text: rest, mode: mode, cached: true}, nil
	}

	// Everything above ran on the read loop, in order with the edits.
	// From here on this request runs alongside the messages that follow.
	wctx, end := s.sched.begin(ctx, u)
	defer end()
	release(ctx)

	text, err := s.run(wctx, at, mode, cfg, automatic)
	if err == nil {
		if cur, ok := s.docs.get(u); !ok || cur != at.doc {
			err = errStale // an edit slipped in after the completer returned
		}
	}
	switch {
	case err == nil:
		s.stats.completed.Add(1)
		text = shape(text, mode)
		s.cache.add(epoch, u, at.before, at.after, text)
		return answer{text: text, mode: mode}, nil
	case ctx.Err() != nil && s.ctx.Err() == nil:
		s.stats.cancelled.Add(1)
		return answer{}, protocol.ErrRequestCancelled
	case errors.Is(err, errSuperseded), errors.Is(err, errStale), errors.Is(err, errSessionOver):
		s.stats.superseded.Add(1)
	case errors.Is(err, context.DeadlineExceeded):
		s.stats.timedOut.Add(1)
		s.log.Warn("lsp: completion ran past its deadline", "uri", u, "timeout", cfg.Timeout)
	case errors.Is(err, errNoModel):
		s.stats.empty.Add(1)
	default:
		s.stats.failed.Add(1)
		s.log.Error("lsp: completion failed", "uri", u, "err", err)
	}
	return answer{}, nil
}

// errNoModel wraps a load failure: completions are answered empty until the
// configuration changes (the failure was shown to the user once).
var errNoModel = errors.New("no model")

// run debounces, waits for the model and calls the completer.
func (s *Server) run(ctx context.Context, at site, mode infill.Mode, cfg Config, automatic bool) (string, error) {
	if automatic && cfg.Debounce > 0 {
		t := time.NewTimer(cfg.Debounce)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", context.Cause(ctx)
		}
	}
	c, err := s.engine.get(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("%w: %w", errNoModel, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req := infill.Request{
		Prefix:    prefixWindow(at.before, cfg.PrefixChars),
		Suffix:    suffixWindow(at.after, cfg.SuffixChars),
		Language:  at.doc.LanguageID,
		Mode:      mode,
		MaxTokens: cfg.MaxTokens,
	}
	req.Extra = s.extraFor(at, [2]int{len(at.before) - len(req.Prefix), len(at.before) + len(req.Suffix)}, cfg)
	res, err := callEngine(s, ctx, func(ctx context.Context) (infill.Result, error) { return c.Complete(ctx, req) })
	return res.Text, err
}

// callEngine runs f on a goroutine of the session's, so that the answer goes
// out as soon as ctx ends even if the model is slow to notice. The goroutine
// is still joined before Serve returns. A panic in f is an error like any
// other.
func callEngine[T any](s *Server, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	type outcome struct {
		v   T
		err error
	}
	done := make(chan outcome, 1)
	s.bg.Go(func() {
		var o outcome
		var pc panics.Catcher
		pc.Try(func() { o.v, o.err = f(ctx) })
		if r := pc.Recovered(); r != nil {
			o.err = fmt.Errorf("model call panicked: %v", r.Value)
			s.log.Error("lsp: model call panicked", "panic", r.Value, "stack", string(r.Stack))
		}
		done <- o
	})
	select {
	case o := <-done:
		if o.err != nil && ctx.Err() != nil {
			return o.v, context.Cause(ctx) // the model's error is the cancellation
		}
		return o.v, o.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}
