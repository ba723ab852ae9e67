package infill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/infuse-lsp/infuse/runtime"
	"github.com/infuse-lsp/infuse/runtime/tokenizer"
)

// Engine completes in-process with a loaded model. It is safe for
// concurrent use: requests that arrive while others are being denoised
// join them, and every step runs one forward pass over all of them (see
// batch.go).
type Engine struct {
	model *runtime.Model
	tok   *tokenizer.Tokenizer
	opts  Options
	sp    special
	sched scheduler
}

// NewEngine prepares an engine over a model and its tokenizer.
func NewEngine(m *runtime.Model, tok *tokenizer.Tokenizer, opts Options) (*Engine, error) {
	cfg := m.Config
	opts, err := opts.withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Mask < 0 {
		return nil, errors.New("model has no mask token: it cannot denoise")
	}
	sp := special{
		vocab:     cfg.Vocab,
		choosable: min(tok.VocabSize(), cfg.Vocab),
		shift:     cfg.ShiftLogits,
		mask:      cfg.Mask,
		expand:    cfg.Expand,
	}
	if opts.Sampler == "dreamon" && cfg.Expand < 0 {
		return nil, errors.New("the dreamon sampler needs a checkpoint with an <|expand|> token (DreamOn)")
	}
	for _, id := range []int32{cfg.EOS, cfg.Pad} {
		if id >= 0 && !sp.isStop(id) {
			sp.stops = append(sp.stops, id)
		}
	}
	if len(sp.stops) == 0 {
		return nil, errors.New("model has neither an EOS nor a pad token: a span could never end")
	}
	sp.newlines = make([]bool, sp.choosable)
	for id := range sp.newlines {
		sp.newlines[id] = !tok.IsSpecial(int32(id)) && bytes.ContainsRune(tok.TokenBytes(int32(id)), '\n')
	}
	e := &Engine{model: m, tok: tok, opts: opts, sp: sp}
	e.sched.init(m, &e.sp, opts)
	return e, nil
}

// Options returns the engine's options with defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// Model returns the model the engine runs.
func (e *Engine) Model() *runtime.Model { return e.model }

// spanLen is the masks a hole gets: the mode's length, or maxTokens if set.
func (e *Engine) spanLen(single bool, maxTokens int) int {
	switch {
	case maxTokens > 0:
		return maxTokens
	case single:
		return e.opts.SingleLineTokens
	}
	return e.opts.MultiLineTokens
}

// Complete fills the middle between req.Prefix and req.Suffix.
func (e *Engine) Complete(ctx context.Context, req Request) (Result, error) {
	mode := req.Mode
	if mode == Auto {
		mode = decideMode(req.Prefix, req.Suffix)
	}
	start := time.Now()
	single := mode == SingleLine
	c, err := e.canvas([]string{req.Prefix, req.Suffix}, []int{e.spanLen(single, req.MaxTokens)}, []bool{single})
	if err != nil {
		return Result{}, err
	}
	texts, fig, err := e.fill(ctx, start, []*canvas{c})
	if err != nil {
		return Result{}, err
	}
	return Result{Text: texts[0], Figures: fig}, nil
}

// FillHoles fills every hole of req in one denoising loop. Holes near
// enough for one to be in the other's context share a canvas; a hole that
// no other one's context reaches gets a canvas of its own, the one a
// request for it alone would get, and the canvases are denoised as one
// batch.
func (e *Engine) FillHoles(ctx context.Context, req HolesRequest) (HolesResult, error) {
	if len(req.Parts) < 2 {
		return HolesResult{}, errors.New("a holes request needs at least two parts (one hole)")
	}
	start := time.Now()
	cs, err := e.holeCanvases(req)
	if err != nil {
		return HolesResult{}, err
	}
	texts, fig, err := e.fill(ctx, start, cs)
	if err != nil {
		return HolesResult{}, err
	}
	return HolesResult{Texts: texts, Figures: fig}, nil
}

// fill denoises the canvases together and returns the text of every span,
// canvas after canvas.
func (e *Engine) fill(ctx context.Context, start time.Time, cs []*canvas) ([]string, Figures, error) {
	var fig Figures
	for _, c := range cs {
		fig.CanvasTokens += len(c.tokens)
	}
	fig.Tokenize = time.Since(start)
	if err := e.sched.run(ctx, e, cs, &fig); err != nil {
		return nil, fig, err
	}

	t := time.Now()
	var texts []string
	for _, c := range cs {
		for i, s := range c.spans {
			end := cutAt(&e.sp, c, s)
			ids := c.tokens[s.start:end]
			if j := slices.Index(ids, e.sp.mask); j >= 0 {
				ids = ids[:j]
			}
			text, ok := strings.CutPrefix(e.tok.Decode(ids), s.heal)
			if !ok {
				text = "" // the span ended before re-writing the healed text
			}
			texts = append(texts, finish(text, c.after[i], s.singleLine))
		}
	}
	fig.Decode = time.Since(t)
	fig.Total = time.Since(start)
	if fig.NFE > 0 {
		fig.TokensPerStep = float64(fig.Tokens) / float64(fig.NFE)
	}
	return texts, fig, nil
}

// canvas tokenizes the parts and lays out [BOS] part MASK×n part … [EOS],
// cutting the first part from the front and the last from the back so that
// the whole fits the context budget.
func (e *Engine) canvas(parts []string, lens []int, single []bool) (*canvas, error) {
	cfg := e.model.Config
	budget := e.opts.ContextTokens - 2
	for _, n := range lens {
		budget -= n
	}
	if budget < 0 {
		return nil, fmt.Errorf("spans of %v tokens do not fit the context of %d tokens", lens, e.opts.ContextTokens)
	}
	toks := make([][]int32, len(parts))
	last := len(parts) - 1
	// Inner parts must fit whole; the outer ones share what is left, the
	// prefix three quarters of it (the nearer context matters most).
	for i := 1; i < last; i++ {
		toks[i] = e.tok.EncodeOrdinary(parts[i])
		budget -= len(toks[i])
	}
	if budget < 0 {
		return nil, fmt.Errorf("the text between the holes is %d tokens over the context budget", -budget)
	}
	sufBudget := budget / 4
	toks[last] = e.head(parts[last], sufBudget+budget) // trimmed below
	toks[0] = e.tail(parts[0], budget-min(len(toks[last]), sufBudget))
	if extra := budget - len(toks[0]) - len(toks[last]); extra < 0 {
		toks[last] = toks[last][:len(toks[last])+extra]
	}

	c := &canvas{tokens: make([]int32, 0, e.opts.ContextTokens), after: parts[1:],
		usedBefore: len(toks[0]), usedAfter: len(toks[last])}
	if cfg.BOS >= 0 {
		c.tokens = append(c.tokens, cfg.BOS)
	}
	for i, p := range toks {
		var heal string
		if i < last {
			p, heal = e.healable(p)
		}
		c.tokens = append(c.tokens, p...)
		if i < last {
			n := lens[i]
			if e.opts.Sampler == "dreamon" {
				n = min(n, e.opts.DreamOnStart) // it grows up to lens[i]
			}
			s := span{start: len(c.tokens), end: len(c.tokens) + n, max: lens[i], singleLine: single[i], heal: heal}
			if heal != "" {
				s.allowed = e.startingWith(heal)
			}
			for range n {
				c.tokens = append(c.tokens, e.sp.mask)
			}
			c.spans = append(c.spans, s)
		}
	}
	if cfg.EOS >= 0 {
		c.tokens = append(c.tokens, cfg.EOS)
	}
	return c, nil
}

// tail tokenizes the end of text, at most n tokens. It tokenizes a window
// of whole lines rather than cutting tokens out of a longer encoding, and
// drops whole tokens from the front.
func (e *Engine) tail(text string, n int) []int32 {
	if n <= 0 {
		return nil
	}
	if w := 8 * n; len(text) > w {
		cut := len(text) - w
		if i := strings.IndexByte(text[cut:], '\n'); i >= 0 && i < len(text)-cut-1 {
			cut += i + 1
		}
		for cut < len(text) && !utf8.RuneStart(text[cut]) {
			cut++
		}
		text = text[cut:]
	}
	ids := e.tok.EncodeOrdinary(text)
	if len(ids) > n {
		ids = ids[len(ids)-n:]
	}
	return ids
}

// head tokenizes the start of text, at most n tokens.
func (e *Engine) head(text string, n int) []int32 {
	if n <= 0 {
		return nil
	}
	if w := 8 * n; len(text) > w {
		cut := w
		if i := strings.LastIndexByte(text[:cut], '\n'); i > 0 {
			cut = i + 1
		}
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	ids := e.tok.EncodeOrdinary(text)
	if len(ids) > n {
		ids = ids[:n]
	}
	return ids
}

// forwardFLOPs counts the arithmetic (2 per multiply-add) of a pass over a
// window of w positions attending over n, with the head on rows positions.
func (e *Engine) forwardFLOPs(w, n, rows int) float64 {
	c := e.model.Config
	q, kv := float64(c.Heads*c.HeadDim), float64(c.KVHeads*c.HeadDim)
	h := float64(c.Hidden)
	perToken := 2*h*(2*q+2*kv) + 6*h*float64(c.Intermediate) + 4*float64(n)*q
	return float64(c.Layers)*float64(w)*perToken + 2*float64(rows)*h*float64(c.Vocab)
}

// healable takes the last token off the text before a span when it could
// be the start of a longer token, and returns it as text the span must
// begin with. A token holding a newline or a special token stays put.
func (e *Engine) healable(ids []int32) ([]int32, string) {
	if len(ids) == 0 {
		return ids, ""
	}
	last := ids[len(ids)-1]
	if e.tok.IsSpecial(last) {
		return ids, ""
	}
	text := string(e.tok.TokenBytes(last))
	if text == "" || strings.ContainsAny(text, "\r\n") {
		return ids, ""
	}
	return ids[:len(ids)-1], text
}

// startingWith marks the tokens whose text starts with prefix.
func (e *Engine) startingWith(prefix string) []bool {
	allowed := make([]bool, e.sp.choosable)
	for id := range allowed {
		if !e.tok.IsSpecial(int32(id)) && bytes.HasPrefix(e.tok.TokenBytes(int32(id)), []byte(prefix)) {
			allowed[id] = true
		}
	}
	return allowed
}
