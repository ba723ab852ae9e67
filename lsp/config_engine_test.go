package lsp

import (
	"strings"
	"testing"
	"time"
)

func TestParseEngineSettings(t *testing.T) {
	base := DefaultConfig()
	c, err := parseSettings(base, []byte(`{"infuse":{"engine":{"kind":"openai","url":"https://api.inceptionlabs.ai/v1/fim/completions","model":"mercury-coder","concurrency":2,"timeoutMs":8000}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Engine{Kind: "openai", URL: "https://api.inceptionlabs.ai/v1/fim/completions", Model: "mercury-coder",
		Concurrency: 2, Timeout: 8 * time.Second}
	if c.Engine != want || !c.Engine.Remote() {
		t.Errorf("engine %+v, want %+v", c.Engine, want)
	}
	if c.Timeout != base.Timeout || c.Mode != base.Mode {
		t.Errorf("other fields changed: %+v", c)
	}

	// Fields left out keep their values; back to local.
	c2, err := parseSettings(c, []byte(`{"engine":{"model":"other"}}`))
	if err != nil || c2.Engine.Model != "other" || c2.Engine.URL != want.URL {
		t.Errorf("partial overlay: %+v, %v", c2.Engine, err)
	}
	c3, err := parseSettings(c, []byte(`{"engine":{"kind":"local"}}`))
	if err != nil || c3.Engine.Remote() {
		t.Errorf("kind local: %+v, %v", c3.Engine, err)
	}

	for _, bad := range []struct{ json, want string }{
		{`{"engine":{"kind":"grpc","url":"http://x"}}`, `engine.kind "grpc"`},
		{`{"engine":{"kind":"ollama"}}`, "needs engine.url"},
		{`{"engine":{"kind":"ollama","url":"http://127.0.0.1:11434","keyEnv":"A"}}`, "only be given on the command line"},
		{`{"engine":{"kind":"ollama","url":"http://127.0.0.1:11434","keyFile":"/k"}}`, "only be given on the command line"},
		{`{"engine":{"kind":"ollama","url":"http://127.0.0.1:11434","concurrency":-1}}`, "must not be negative"},
		{`{"engine":{"kind":"ollama","url":"http://127.0.0.1:11434","key":"sk-1"}}`, `unknown field "key"`},
	} {
		got, err := parseSettings(base, []byte(bad.json))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want %q", bad.json, err, bad.want)
		}
		// A bad engine object changes nothing of the engine, except for
		// an unknown key, which is reported and ignored.
		if bad.want != `unknown field "key"` && got.Engine != base.Engine {
			t.Errorf("%s: engine changed to %+v", bad.json, got.Engine)
		}
	}
}

// TestEngineKeyStaysWithItsURL: a key source given on the command line is
// dropped when the settings point the engine at another URL.
func TestEngineKeyStaysWithItsURL(t *testing.T) {
	base := DefaultConfig()
	base.Engine = Engine{Kind: "openai", URL: "https://api.example.com/v1", KeyEnv: "API_KEY"}
	same, err := parseSettings(base, []byte(`{"engine":{"model":"m"}}`))
	if err != nil || same.Engine.KeyEnv != "API_KEY" {
		t.Errorf("same URL: key source %q, %v; want it kept", same.Engine.KeyEnv, err)
	}
	moved, err := parseSettings(base, []byte(`{"engine":{"url":"https://elsewhere.example.net/v1"}}`))
	if err != nil || moved.Engine.KeyEnv != "" || moved.Engine.KeyFile != "" {
		t.Errorf("new URL: key source %q/%q, %v; want none", moved.Engine.KeyEnv, moved.Engine.KeyFile, err)
	}
}
