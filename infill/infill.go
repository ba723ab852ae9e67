// Package infill turns the text before and after a cursor into the text that
// belongs between them. Call [NewEngine] for the in-process diffusion engine;
// every way of completing implements [Completer].
package infill

import (
	"context"
	"time"
)

// Mode says how much text a completion may span.
type Mode int

const (
	// Auto picks single- or multi-line from the cursor's surroundings.
	Auto Mode = iota
	// SingleLine stops at the end of the current line.
	SingleLine
	// MultiLine may fill several lines (a block, a function body).
	MultiLine
)

func (m Mode) String() string {
	switch m {
	case SingleLine:
		return "single-line"
	case MultiLine:
		return "multi-line"
	}
	return "auto"
}

// ParseMode reads "auto", "single-line"/"single" or "multi-line"/"multi".
func ParseMode(s string) (Mode, bool) {
	switch s {
	case "", "auto":
		return Auto, true
	case "single", "single-line", "singleline", "line":
		return SingleLine, true
	case "multi", "multi-line", "multiline", "block":
		return MultiLine, true
	}
	return Auto, false
}

// Request is one completion: fill the hole between Prefix and Suffix.
type Request struct {
	Prefix   string
	Suffix   string
	Language string // LSP language id ("go", "python"); may be empty
	Mode     Mode
	// MaxTokens bounds the middle; 0 means the engine's default.
	MaxTokens int

	// Extra is context from other places: snippets of other open files,
	// oldest first, the most relevant last. Engines that have a field for
	// it (llama.cpp's /infill input_extra) send it; the others ignore it.
	Extra []Snippet
}

// ---- Context from other files (see Request.Extra) ----

// Snippet is a piece of another file given to the model as context.
type Snippet struct {
	Filename string `json:"filename"` // a path or name the model sees before Text
	Text     string `json:"text"`
}

// ---- end of context from other files ----

// Figures are what a completion cost; a user and a benchmark read them.
type Figures struct {
	NFE           int           `json:"nfe"`            // forward passes
	Tokens        int           `json:"tokens"`         // tokens committed in the span(s)
	TokensPerStep float64       `json:"tokens_per_nfe"` // Tokens / NFE
	CanvasTokens  int           `json:"canvas_tokens"`  // length of the model's input
	FLOPs         float64       `json:"flops"`          // arithmetic of the forward passes
	Tokenize      time.Duration `json:"tokenize_ns"`
	FirstPass     time.Duration `json:"first_pass_ns"`
	Steps         time.Duration `json:"steps_ns"`
	Decode        time.Duration `json:"decode_ns"`
	Total         time.Duration `json:"total_ns"`
}

// Result is the middle text and what it cost.
type Result struct {
	Text    string  `json:"text"`
	Figures Figures `json:"figures"`
}

// Completer is anything that can fill a hole: the in-process engine, a warm
// engine process, a remote FIM server.
type Completer interface {
	Complete(ctx context.Context, req Request) (Result, error)
}

// HolesRequest asks for several middles at once: the text is
// Parts[0] HOLE Parts[1] HOLE ... Parts[n], one hole between each pair of
// parts. A bidirectional model fills them all in one denoising loop.
type HolesRequest struct {
	Parts     []string
	Language  string
	MaxTokens int // per hole; 0 means the engine's default
}

// HolesResult holds one middle per hole, in order.
type HolesResult struct {
	Texts   []string `json:"texts"`
	Figures Figures  `json:"figures"`
}

// HoleFiller fills several holes in one request.
type HoleFiller interface {
	FillHoles(ctx context.Context, req HolesRequest) (HolesResult, error)
}
