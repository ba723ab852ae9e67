package lsp

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

func TestParseEngineSettings(t *testing.T) {
	base := DefaultConfig()
	base.EngineURLs = []string{"https://api.inceptionlabs.ai"} // as --engine-allow-url would
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
	base.EngineURLs = []string{"https://elsewhere.example.net"}
	same, err := parseSettings(base, []byte(`{"engine":{"model":"m"}}`))
	if err != nil || same.Engine.KeyEnv != "API_KEY" {
		t.Errorf("same URL: key source %q, %v; want it kept", same.Engine.KeyEnv, err)
	}
	moved, err := parseSettings(base, []byte(`{"engine":{"url":"https://elsewhere.example.net/v1"}}`))
	if err != nil || moved.Engine.KeyEnv != "" || moved.Engine.KeyFile != "" {
		t.Errorf("new URL: key source %q/%q, %v; want none", moved.Engine.KeyEnv, moved.Engine.KeyFile, err)
	}
}

// TestSettingsEngineURL: the client's settings (which may come from the
// workspace) can point the engine at a loopback server, keep the command
// line's URL, or name a URL the command line allowed; any other URL is
// refused and leaves the engine as it was.
func TestSettingsEngineURL(t *testing.T) {
	base := DefaultConfig()
	base.Engine = Engine{Kind: "openai", URL: "https://gpu.example.com:8000/v1", Model: "m"}
	base.EngineURLs = []string{"https://allowed.example.com", "http://lan.example.com:8080/fim/"}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8012", true},
		{"http://localhost:11434", true},
		{"http://[::1]:8080/v1", true},
		{"http://127.8.9.10:1", true},
		{"https://gpu.example.com:8000/v1", true}, // the command line's own
		{"https://allowed.example.com/v1/fim/completions", true},
		{"http://lan.example.com:8080/fim/completions", true},
		{"http://lan.example.com:8080/fim", true},
		{"https://gpu.example.com:8000/other", false},
		{"https://gpu.example.com/v1", false},    // another port
		{"http://allowed.example.com/v1", false}, // another scheme
		{"https://allowed.example.com.evil.net", false},
		{"http://lan.example.com:8080/fimx", false}, // not under the path
		{"http://lan.example.com:8080/", false},
		{"https://collector.example.net/v1", false},
		{"http://10.0.0.5:8080", false},
		{"http://localhost.evil.net:8080", false},
		{"http://user:pw@127.0.0.1:8080", false},
		{"ftp://127.0.0.1/x", false},
	} {
		got, err := parseSettings(base, []byte(`{"engine":{"kind":"llamacpp","url":"`+tc.url+`"}}`))
		if tc.ok {
			if err != nil || got.Engine.URL != tc.url || got.Engine.Kind != "llamacpp" {
				t.Errorf("%s: engine %+v, %v; want it taken", tc.url, got.Engine, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "settings may only name a server on this machine") {
			t.Errorf("%s: error %v, want a refusal", tc.url, err)
		}
		if got.Engine != base.Engine {
			t.Errorf("%s: engine changed to %+v", tc.url, got.Engine)
		}
		if strings.Contains(fmt.Sprint(err), "pw@") {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}

	// The allow list is the command line's: settings cannot extend it.
	got, err := parseSettings(base, []byte(`{"engineURLs":["https://collector.example.net"],"engine":{"kind":"openai","url":"https://collector.example.net/v1"}}`))
	if err == nil || got.Engine != base.Engine || len(got.EngineURLs) != 2 {
		t.Errorf("settings extended the allow list: %+v, %v", got, err)
	}
	// From the local engine, settings may turn on a loopback server only.
	local := DefaultConfig()
	if got, err := parseSettings(local, []byte(`{"engine":{"kind":"ollama","url":"http://127.0.0.1:11434","model":"q"}}`)); err != nil || !got.Engine.Remote() {
		t.Errorf("loopback ollama from local: %+v, %v", got.Engine, err)
	}
	if got, err := parseSettings(local, []byte(`{"engine":{"kind":"ollama","url":"https://ollama.example.com","model":"q"}}`)); err == nil || got.Engine.Remote() {
		t.Errorf("remote ollama from local: %+v, %v; want a refusal", got.Engine, err)
	}
}

// A workspace's settings naming a server elsewhere, in initializationOptions
// or pushed later, are refused with a message; completions stay with the
// engine the command line chose.
func TestWorkspaceCannotRedirectEngine(t *testing.T) {
	local, served := &fakeCompleter{}, &fakeCompleter{}
	var mu sync.Mutex
	var engines []Engine
	c := startSession(t, Options{
		Load: loaderOf(local),
		LoadEngine: func(_ context.Context, e Engine) (infill.Completer, error) {
			mu.Lock()
			engines = append(engines, e)
			mu.Unlock()
			return served, nil
		},
		Config: testConfig(),
	})
	c.initialize(nil, map[string]any{"infuse": map[string]any{"engine": map[string]any{
		"kind": "openai", "url": "https://collector.example.net/v1", "model": "m",
	}}})
	if m := c.note(); m.Method != "window/showMessage" || !strings.Contains(string(m.Params), "collector.example.net") {
		t.Fatalf("notification %s, want a warning about the URL", m.raw)
	}
	c.open(goURI, "go", "x := ")
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), nil)
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"infuse": map[string]any{
		"engine": map[string]any{"kind": "llamacpp", "url": "http://192.168.1.20:8012"},
	}}})
	if m := c.note(); m.Method != "window/showMessage" || !strings.Contains(string(m.Params), "192.168.1.20") {
		t.Fatalf("notification %s, want a warning about the URL", m.raw)
	}
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), nil)
	if len(local.requests()) != 2 || len(served.requests()) != 0 {
		t.Errorf("local %d, served %d requests; want both on the local engine", len(local.requests()), len(served.requests()))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(engines) != 0 {
		t.Errorf("LoadEngine called with %+v", engines)
	}
}
