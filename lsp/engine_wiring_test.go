package lsp

import (
	"context"
	"sync"
	"testing"

	"github.com/infuse-lsp/infuse/infill"
)

// The engine section picks the completer: a server's through LoadEngine,
// the in-process model's through Load, and switching reloads.
func TestEngineSetting(t *testing.T) {
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
		"kind": "llamacpp", "url": "http://127.0.0.1:8012",
	}}})
	c.open(goURI, "go", "x := ")
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), nil)
	if len(served.requests()) != 1 || len(local.requests()) != 0 {
		t.Fatalf("served %d, local %d requests; want the server's completer", len(served.requests()), len(local.requests()))
	}
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"infuse": map[string]any{
		"engine": map[string]any{"kind": "local"},
	}}})
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), nil)
	if len(local.requests()) != 1 {
		t.Errorf("local %d requests after switching to local, want 1", len(local.requests()))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(engines) != 1 || engines[0].URL != "http://127.0.0.1:8012" {
		t.Errorf("LoadEngine calls %+v", engines)
	}
}
