package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/infuse-lsp/infuse/infill"
)

// openAI is the legacy completions API with a suffix, as OpenAI documented
// it and as Inception (/v1/fim/completions), SGLang, Ollama (/v1/completions)
// and DeepSeek serve it.
type openAI struct{}

type openAIRequest struct {
	Model       string   `json:"model"`
	Prompt      string   `json:"prompt"`
	Suffix      string   `json:"suffix,omitempty"`
	MaxTokens   int      `json:"max_tokens"`
	Temperature float64  `json:"temperature"`
	Stream      bool     `json:"stream"`
	Stop        []string `json:"stop,omitempty"`
}

// openAIAnswer is both a whole answer and one streamed chunk.
type openAIAnswer struct {
	Choices []struct {
		Text         string  `json:"text"`
		Index        int     `json:"index"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (openAI) path() string       { return "/v1/completions" }
func (openAI) streamType() string { return "text/event-stream" }

func (openAI) request(cfg *Config, req infill.Request, single bool, n int) any {
	r := openAIRequest{
		Model: cfg.Model, Prompt: req.Prefix, Suffix: req.Suffix,
		MaxTokens: n, Temperature: cfg.Temperature, Stream: !cfg.NoStream,
	}
	if single {
		r.Stop = []string{"\n"}
	}
	return r
}

// take adds a chunk's text (choice 0; we ask for one) and usage to a.
func (o *openAIAnswer) take(a *answer) (done bool, err error) {
	if len(o.Error) > 0 && string(o.Error) != "null" {
		return false, fmt.Errorf("the server reported an error: %s", errorMessage([]byte(`{"error":`+string(o.Error)+`}`)))
	}
	if o.Usage != nil {
		a.tokens, a.promptTokens = o.Usage.CompletionTokens, o.Usage.PromptTokens
	}
	for _, c := range o.Choices {
		if c.Index == 0 && a.add(c.Text) {
			done = true
		}
	}
	return done, nil
}

func (openAI) readOne(r io.Reader, a *answer) error {
	var o openAIAnswer
	if err := decodeJSON(r, &o); err != nil {
		return err
	}
	if _, err := o.take(a); err != nil {
		return err
	}
	if len(o.Choices) == 0 {
		return errors.New("malformed answer: no choices")
	}
	return nil
}

func (openAI) readStream(r io.Reader, a *answer) error {
	chunks := 0
	_, err := readEvents(r, func(data []byte) (bool, error) {
		if string(data) == "[DONE]" {
			return true, nil
		}
		var o openAIAnswer
		if err := json.Unmarshal(data, &o); err != nil {
			return false, fmt.Errorf("malformed event %d: %w", chunks+1, err)
		}
		chunks++
		return o.take(a)
	})
	switch {
	case err == nil:
		return nil
	case err == io.EOF && chunks > 0:
		return nil // a server that closes the stream without [DONE]
	case err == io.EOF:
		return errors.New("malformed answer: an empty event stream")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBrokenOff(a, err)
	}
	return err
}
