package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/infuse-lsp/infuse/infill"
)

// llamaCpp is llama.cpp server's /infill: the server builds the model's
// fill-in-the-middle prompt from input_prefix and input_suffix, with the
// snippets of input_extra before them (as repository-level FIM: each chunk
// under <|file_sep|>filename when the model has that token). When the
// context is short the server keeps the last chunks, so the most relevant
// snippet goes last.
type llamaCpp struct{}

type llamaCppRequest struct {
	Model       string           `json:"model,omitempty"`
	InputPrefix string           `json:"input_prefix"`
	InputSuffix string           `json:"input_suffix"`
	InputExtra  []infill.Snippet `json:"input_extra,omitempty"`
	NPredict    int              `json:"n_predict"`
	Temperature float64          `json:"temperature"`
	Stream      bool             `json:"stream"`
	Stop        []string         `json:"stop,omitempty"`
	// CachePrompt lets the server reuse the KV cache of the previous
	// request's common prefix: consecutive keystrokes share most of it.
	CachePrompt bool `json:"cache_prompt"`
}

// llamaCppAnswer is one streamed event or the whole answer.
type llamaCppAnswer struct {
	Content         *string         `json:"content"`
	Stop            bool            `json:"stop"`
	TokensPredicted int             `json:"tokens_predicted"`
	TokensEvaluated int             `json:"tokens_evaluated"`
	Error           json.RawMessage `json:"error"`
}

func (llamaCpp) path() string       { return "/infill" }
func (llamaCpp) streamType() string { return "text/event-stream" }

func (llamaCpp) request(cfg *Config, req infill.Request, single bool, n int) any {
	r := llamaCppRequest{
		Model: cfg.Model, InputPrefix: req.Prefix, InputSuffix: req.Suffix, InputExtra: req.Extra,
		NPredict: n, Temperature: cfg.Temperature, Stream: !cfg.NoStream, CachePrompt: true,
	}
	if single {
		r.Stop = []string{"\n"}
	}
	return r
}

func (l *llamaCppAnswer) take(a *answer) (done bool, err error) {
	if len(l.Error) > 0 && string(l.Error) != "null" {
		return false, fmt.Errorf("the server reported an error: %s", errorMessage([]byte(`{"error":`+string(l.Error)+`}`)))
	}
	if l.Content != nil {
		done = a.add(*l.Content)
	}
	if l.Stop {
		a.tokens, a.promptTokens = l.TokensPredicted, l.TokensEvaluated
		done = true
	}
	return done, nil
}

func (llamaCpp) readOne(r io.Reader, a *answer) error {
	var l llamaCppAnswer
	if err := decodeJSON(r, &l); err != nil {
		return err
	}
	if _, err := l.take(a); err != nil {
		return err
	}
	if l.Content == nil {
		return errors.New("malformed answer: no content")
	}
	return nil
}

func (llamaCpp) readStream(r io.Reader, a *answer) error {
	events := 0
	_, err := readEvents(r, func(data []byte) (bool, error) {
		var l llamaCppAnswer
		if err := json.Unmarshal(data, &l); err != nil {
			return false, fmt.Errorf("malformed event %d: %w", events+1, err)
		}
		events++
		return l.take(a)
	})
	switch {
	case err == nil:
		return nil
	case err == io.EOF && events > 0:
		return errBrokenOff(a, err) // no event said stop
	case err == io.EOF:
		return errors.New("malformed answer: an empty event stream")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBrokenOff(a, err)
	}
	return err
}
