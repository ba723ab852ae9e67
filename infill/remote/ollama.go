package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/infuse-lsp/infuse/infill"
)

// ollama is Ollama's native /api/generate with a suffix. Ollama builds the
// model's fill-in-the-middle prompt from its template, so raw stays false.
type ollama struct{}

type ollamaRequest struct {
	Model   string        `json:"model"`
	Prompt  string        `json:"prompt"`
	Suffix  string        `json:"suffix,omitempty"`
	Stream  bool          `json:"stream"`
	Raw     bool          `json:"raw"`
	Options ollamaOptions `json:"options"`
}

type ollamaOptions struct {
	NumPredict  int      `json:"num_predict"`
	Temperature float64  `json:"temperature"`
	Stop        []string `json:"stop,omitempty"`
}

// ollamaAnswer is one line of a streamed answer, or the whole answer.
type ollamaAnswer struct {
	Response        string `json:"response"`
	Done            bool   `json:"done"`
	PromptEvalCount int    `json:"prompt_eval_count"`
	EvalCount       int    `json:"eval_count"`
	Error           string `json:"error"`
}

func (ollama) path() string       { return "/api/generate" }
func (ollama) streamType() string { return "application/x-ndjson" }

func (ollama) request(cfg *Config, req infill.Request, single bool, n int) any {
	r := ollamaRequest{
		Model: cfg.Model, Prompt: req.Prefix, Suffix: req.Suffix, Stream: !cfg.NoStream,
		Options: ollamaOptions{NumPredict: n, Temperature: cfg.Temperature},
	}
	if single {
		r.Options.Stop = []string{"\n"}
	}
	return r
}

func (o *ollamaAnswer) take(a *answer) (done bool, err error) {
	if o.Error != "" {
		return false, fmt.Errorf("the server reported an error: %s", o.Error)
	}
	done = a.add(o.Response)
	if o.Done {
		a.tokens, a.promptTokens = o.EvalCount, o.PromptEvalCount
		done = true
	}
	return done, nil
}

// readOne reads a one-piece answer: the same object as a stream's last line.
func (p ollama) readOne(r io.Reader, a *answer) error { return p.readStream(r, a) }

// readStream reads JSON objects, one a line, until one says done.
func (ollama) readStream(r io.Reader, a *answer) error {
	dec := json.NewDecoder(io.LimitReader(r, 64*maxEvent))
	for n := 1; ; n++ {
		var o ollamaAnswer
		if err := dec.Decode(&o); err != nil {
			switch {
			case err == io.EOF && n > 1:
				return errBrokenOff(a, err) // ended without done
			case err == io.EOF:
				return errors.New("malformed answer: empty")
			case errors.Is(err, io.ErrUnexpectedEOF):
				return errBrokenOff(a, err)
			}
			return fmt.Errorf("malformed answer line %d: %w", n, err)
		}
		if done, err := o.take(a); done || err != nil {
			return err
		}
	}
}
