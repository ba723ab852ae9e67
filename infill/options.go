package infill

import (
	"fmt"

	"github.com/infuse-lsp/infuse/runtime"
)

// Options configure an [Engine]. The zero value of a field means its default.
type Options struct {
	// Sampler chooses what to commit at each step: "threshold" (Fast-dLLM:
	// the best position plus every position whose confidence is ≥ Threshold;
	// the default), the Dream algorithms "entropy", "maskgit_plus",
	// "topk_margin" and "origin", "llada" (low-confidence remasking), or
	// "dreamon" (DreamOn's variable-length infilling, for checkpoints with
	// an <|expand|> token: spans start short and grow or end early).
	Sampler   string
	Threshold float64 // τ of the threshold sampler (default: the model's, else 0.9)
	// Steps is the number of denoising steps of the Dream and LLaDA
	// schedules per request (default: one token per step).
	Steps        int
	Eps          float64 // final time of Dream's schedule (default 1e-3)
	AlgTemp      float64 // Dream: >0 samples positions from softmax(conf/AlgTemp)
	BlockLength  int     // commit each span block by block, left to right (0: whole span)
	DreamOnStart int     // dreamon: masks a span starts with (default 4); it grows to the mode's length

	Temperature float64 // 0 is greedy and deterministic
	TopP        float64 // nucleus filter (0 or 1: off)
	TopK        int     // top-k filter (0: off)
	Seed        uint64  // seeds sampling when Temperature > 0 or the sampler draws

	// Exact disables the context cache: every step is a full forward pass.
	Exact bool
	// StopsAnywhere lets the threshold sampler commit a stop token at any
	// position, as the reference samplers do; by default a span ends only
	// from its right (see stopsFromTheEnd).
	StopsAnywhere bool

	// RefreshEvery is how many cached steps run between full passes (default 4).
	RefreshEvery int
	// RefreshRadius > 0 makes a refresh recompute only this many positions
	// on each side of the spans, not the whole canvas; 0 takes the model's
	// default (its generation config's refresh_radius), else the whole
	// canvas; -1 is the whole canvas whatever the model says.
	RefreshRadius int
	// MaxBatch is how many canvases (requests, or holes of one) are
	// denoised together, one forward pass a step for all (default 1: see
	// withDefaults); a request with more canvases runs alone.
	MaxBatch int

	// Token budgets.
	ContextTokens    int // prefix + suffix + span, at most (default: the model's choice, else its trained length, ≤ 1024)
	SingleLineTokens int // span length for a single-line completion (default 16)
	MultiLineTokens  int // span length for a multi-line completion (default 64)
}

var samplers = map[string]bool{
	"threshold": true, "entropy": true, "maskgit_plus": true, "topk_margin": true, "origin": true, "llada": true,
	"dreamon": true,
}

// Check reports the mistakes in o that do not depend on a model (an unknown
// sampler, a threshold outside (0,1], a negative count), so that a server
// can refuse them at start instead of at its first completion.
func (o Options) Check() error {
	_, err := o.withDefaults(runtime.Config{})
	return err
}

// withDefaults fills in the zero fields for a model: its trained length
// (MaxPositions, 0: unknown) and the decoding defaults of its generation
// config (Threshold, ContextTokens, RefreshRadius; 0: none).
func (o Options) withDefaults(m runtime.Config) (Options, error) {
	if o.Sampler == "" {
		o.Sampler = "threshold"
	}
	if !samplers[o.Sampler] {
		return o, fmt.Errorf("unknown sampler %q (threshold, entropy, maskgit_plus, topk_margin, origin, llada, dreamon)", o.Sampler)
	}
	if o.Threshold == 0 {
		// Fast-dLLM's τ for 7B models, unless the model says otherwise
		// (the default model: 0.7, measured in its card).
		o.Threshold = 0.9
		if m.Threshold > 0 {
			o.Threshold = m.Threshold
		}
	}
	if o.RefreshRadius == 0 {
		o.RefreshRadius = m.RefreshRadius
	}
	if o.Eps == 0 {
		o.Eps = 1e-3
	}
	if o.DreamOnStart == 0 {
		o.DreamOnStart = 4
	}
	if o.RefreshEvery == 0 {
		o.RefreshEvery = 4
	}
	if o.MaxBatch == 0 {
		// One request at a time. Batching raises throughput when the
		// engine is saturated: with AMX tiles four cached steps batched
		// cost 0.65 of four alone, and four editors asking without pause
		// (`infuse bench --editors 4 --each 96 --gap 0`, five rounds) got
		// 76–84 completions/s against 64–69, p99 81–91 ms against 86–97.
		// But at typing pace (--gap 100ms) a request that joins a batch
		// slows every step of the others by its full first pass, whose
		// cost no batch shares on a CPU: p99 75–85 ms against 57–74, and
		// 3% fewer completions. Editors type; a shared engine under heavy
		// load can take --batch 8. A request's own canvases (infuse fill)
		// are still denoised together.
		o.MaxBatch = 1
	}
	if o.SingleLineTokens == 0 {
		o.SingleLineTokens = 16
	}
	if o.MultiLineTokens == 0 {
		o.MultiLineTokens = 64
	}
	if o.ContextTokens == 0 {
		o.ContextTokens = 1024
		if m.MaxPositions > 0 && m.MaxPositions < o.ContextTokens {
			o.ContextTokens = m.MaxPositions
		}
		if m.ContextTokens > 0 {
			o.ContextTokens = m.ContextTokens
		}
	}
	switch {
	case o.Threshold <= 0 || o.Threshold > 1:
		return o, fmt.Errorf("threshold %v outside (0,1]", o.Threshold)
	case o.Temperature < 0 || o.TopP < 0 || o.TopP > 1 || o.TopK < 0 || o.AlgTemp < 0:
		return o, fmt.Errorf("temperature, top-p, top-k and alg-temp must be non-negative (top-p ≤ 1)")
	case o.Steps < 0 || o.BlockLength < 0 || o.RefreshEvery < 0 || o.RefreshRadius < -1 || o.MaxBatch < 0:
		return o, fmt.Errorf("steps, block length, refresh interval and batch size must be non-negative, and the refresh radius at least -1 (the whole canvas)")
	case o.SingleLineTokens < 1 || o.MultiLineTokens < 1:
		return o, fmt.Errorf("span lengths must be positive")
	case o.ContextTokens < 2*o.MultiLineTokens+8 && o.ContextTokens < 64:
		return o, fmt.Errorf("context budget of %d tokens is too small", o.ContextTokens)
	}
	return o, nil
}
