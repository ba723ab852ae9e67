package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/infill"
)

func TestWarmUpProgress(t *testing.T) {
	fake := &fakeCompleter{}
	loaded := make(chan struct{})
	started := make(chan struct{})
	load := func(ctx context.Context, model, device string) (infill.Completer, error) {
		close(started)
		select {
		case <-loaded:
			return fake, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := startSession(t, Options{Load: load, Config: testConfig()})
	c.initialize(map[string]any{"window": map[string]any{"workDoneProgress": true}}, map[string]any{"model": "big"})
	<-started // the load began at initialize, before any completion

	select {
	case m := <-c.serverReqs:
		if m.Method != "window/workDoneProgress/create" {
			t.Fatalf("server request %s, want window/workDoneProgress/create", m.raw)
		}
	case <-timeoutC():
		t.Fatal("no progress token was created")
	}
	begin := c.note()
	if begin.Method != "$/progress" || !strings.Contains(string(begin.Params), `"kind":"begin"`) || !strings.Contains(string(begin.Params), "big") {
		t.Errorf("notification %s, want progress begin naming the model", begin.raw)
	}

	c.open(goURI, "go", "x := ")
	pending := c.send("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1))
	close(loaded)
	end := c.note()
	if end.Method != "$/progress" || !strings.Contains(string(end.Params), `"kind":"end"`) {
		t.Errorf("notification %s, want progress end", end.raw)
	}
	var list inlineList
	if m := c.wait(pending); m.Error != nil || json.Unmarshal(m.Result, &list) != nil || len(list.Items) != 1 {
		t.Errorf("completion asked during the load: %s, want an item once it is done", m.raw)
	}
}

func TestLoadFailure(t *testing.T) {
	fake := &fakeCompleter{}
	load := func(_ context.Context, model, _ string) (infill.Completer, error) {
		if model == "good" {
			return fake, nil
		}
		return nil, errors.New("weights missing")
	}
	c := startSession(t, Options{Load: load, Config: testConfig()})
	c.initialize(nil, nil)
	m := c.note()
	if m.Method != "window/showMessage" || !strings.Contains(string(m.Params), "weights missing") || !strings.Contains(string(m.Params), `"type":1`) {
		t.Fatalf("notification %s, want an error message about the load", m.raw)
	}
	c.open(goURI, "go", "x := ")
	for range 2 {
		var list inlineList
		c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), &list)
		if len(list.Items) != 0 {
			t.Errorf("items %v without a model", list.texts())
		}
	}
	c.noNote() // the failure is reported once
	var st Stats
	c.mustCall("infuse/stats", nil, &st)
	if st.Empty != 2 {
		t.Errorf("stats %+v, want 2 empty", st)
	}

	// Naming a model that loads brings completions back.
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"infuse": map[string]any{"model": "good"}}})
	var list inlineList
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), &list)
	if len(list.Items) != 1 {
		t.Errorf("items %v after loading a good model, want one", list.texts())
	}
	if err := c.shutdownExit(); err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestShareLoader(t *testing.T) {
	calls := 0
	fail := true
	shared := ShareLoader(func(ctx context.Context, model, device string) (infill.Completer, error) {
		calls++
		if fail {
			return nil, errors.New("boom")
		}
		return &fakeCompleter{}, nil
	})
	ctx := context.Background()
	if _, err := shared(ctx, "m", "cpu"); err == nil {
		t.Fatal("want the loader's error")
	}
	fail = false
	a, err := shared(ctx, "m", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := shared(ctx, "m", "cpu")
	other, _ := shared(ctx, "m", "cuda")
	if a != b || a == other {
		t.Errorf("want one completer per model and device")
	}
	if calls != 3 {
		t.Errorf("loader called %d times, want 3 (a failure is not kept)", calls)
	}
}
