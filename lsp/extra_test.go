package lsp

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.lsp.dev/uri"

	"github.com/infuse-lsp/infuse/infill"
)

// numbered is n lines "name i".
func numbered(name string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s %d\n", name, i)
	}
	return b.String()
}

func TestRecentSpots(t *testing.T) {
	var r recentSpots
	a, b := uri.URI("file:///a.go"), uri.URI("file:///b.go")
	r.note(a, 10)
	r.note(b, 5)
	r.note(a, 12) // the same stretch as line 10: replaces it, now newest
	r.note(a, 100)
	got := r.newestFirst()
	want := []spot{{a, 100}, {a, 12}, {b, 5}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("spots %v, want %v", got, want)
	}
	for i := range 3 * extraSpots {
		r.note(b, i*extraChunkLines)
	}
	if n := len(r.newestFirst()); n != extraSpots {
		t.Errorf("%d spots kept, want %d", n, extraSpots)
	}
	r.forget(func(u uri.URI) bool { return u != b })
	if n := len(r.newestFirst()); n != 0 {
		t.Errorf("%d spots kept after forgetting b, want 0", n)
	}
}

func TestGatherExtra(t *testing.T) {
	cur := &Document{URI: "file:///src/cur.go", LanguageID: "go", Text: numbered("cur", 200)}
	b := &Document{URI: "file:///src/b.go", LanguageID: "go", Text: numbered("b", 100)}
	c := &Document{URI: "file:///src/c.go", LanguageID: "go", Text: numbered("c", 10)}
	py := &Document{URI: "file:///src/d.py", LanguageID: "python", Text: numbered("py", 50)}
	blank := &Document{URI: "file:///src/e.go", LanguageID: "go", Text: "\n\n\n"}
	closed := uri.URI("file:///src/gone.go")
	open := []*Document{b, blank, c, cur, py}
	// The window: cur's lines 150-199 (the prompt holds them).
	win := [2]int{strings.Index(cur.Text, "cur 150\n"), len(cur.Text)}
	spots := []spot{ // newest first
		{cur.URI, 170}, // inside the window: skipped
		{b.URI, 50},
		{py.URI, 10}, // another language
		{closed, 3},  // no longer open
		{cur.URI, 20},
		{b.URI, 60}, // overlaps b's chunk around 50
	}

	got := gatherExtra(cur, win, spots, open, 8, 1<<20)
	var names []string
	for _, s := range got {
		names = append(names, s.Filename+":"+strings.SplitN(s.Text, "\n", 2)[0])
	}
	// Oldest first: c's head (no spot), cur around 20, b around 50.
	want := []string{"/src/c.go:c 0", "/src/cur.go:cur 4", "/src/b.go:b 34"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("snippets %v, want %v", names, want)
	}
	if n := strings.Count(got[2].Text, "\n"); n != extraChunkLines || !strings.HasSuffix(got[2].Text, "b 65\n") {
		t.Errorf("b's chunk has %d lines ending %q, want %d lines around line 50", n, got[2].Text[len(got[2].Text)-6:], extraChunkLines)
	}
	if got[0].Text != c.Text {
		t.Errorf("c's head %q, want all of c", got[0].Text)
	}

	// At most maxChunks, the newest kept.
	if got := gatherExtra(cur, win, spots, open, 1, 1<<20); len(got) != 1 || got[0].Filename != "/src/b.go" {
		t.Errorf("one chunk: %v, want b's", got)
	}
	// The byte budget cuts at a line end and stops there.
	chunk := len(got[2].Text)
	small := gatherExtra(cur, win, spots, open, 8, chunk+20)
	if len(small) != 2 || small[1].Text != got[2].Text || !strings.HasSuffix(small[0].Text, "\n") || len(small[0].Text) > 20 {
		t.Errorf("budget %d: %q", chunk+20, small)
	}
	total := 0
	for _, s := range small {
		total += len(s.Text)
	}
	if total > chunk+20 {
		t.Errorf("%d bytes sent, budget %d", total, chunk+20)
	}
	if got := gatherExtra(cur, win, nil, []*Document{cur}, 8, 1<<20); len(got) != 0 {
		t.Errorf("alone: %v, want nothing", got)
	}
}

// A session on a llama.cpp engine sends chunks of the other open Go file
// around where the user last completed there, and nothing of the Python
// file; an OpenAI-compatible engine gets none.
func TestExtraInSession(t *testing.T) {
	served := &fakeCompleter{}
	c := startSession(t, Options{
		Load: loaderOf(&fakeCompleter{}),
		LoadEngine: func(context.Context, Engine) (infill.Completer, error) {
			return served, nil
		},
		Config: testConfig(),
	})
	c.initialize(nil, map[string]any{"infuse": map[string]any{"engine": map[string]any{
		"kind": "llamacpp", "url": "http://127.0.0.1:8012",
	}}})
	const other, py = "file:///src/other.go", "file:///src/tool.py"
	c.open(other, "go", numbered("other", 300))
	c.open(py, "python", numbered("py", 20))
	c.open(goURI, "go", "package main\n\nfunc main() {\n\tx := \n}\n")
	c.mustCall("textDocument/inlineCompletion", inlineParams(other, 200, 3, 1), nil)
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 3, 6, 1), nil)

	reqs := served.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	// The first: all of other.go fits its prompt window, and main.go has
	// no place noted yet, so its head goes (all of it).
	if ex := reqs[0].Extra; len(ex) != 1 || ex[0].Filename != "/work/main.go" || !strings.HasPrefix(ex[0].Text, "package main\n") {
		t.Errorf("first request's extra %+v, want main.go's head", ex)
	}
	ex := reqs[1].Extra
	if len(ex) != 1 || ex[0].Filename != "/src/other.go" || !strings.HasPrefix(ex[0].Text, "other 184\n") {
		t.Fatalf("extra %+v, want other.go around line 200", ex)
	}

	// An edit without a completion request is a place too.
	c.notify("textDocument/didChange", map[string]any{
		"textDocument":   map[string]any{"uri": other, "version": 2},
		"contentChanges": []any{map[string]any{"range": map[string]any{"start": map[string]any{"line": 100, "character": 0}, "end": map[string]any{"line": 100, "character": 0}}, "text": "// edited\n"}},
	})
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 2, 13, 1), nil)
	reqs = served.requests()
	if ex := reqs[2].Extra; len(ex) != 2 || ex[1].Filename != "/src/other.go" || !strings.HasPrefix(ex[1].Text, "other 84\n") {
		t.Fatalf("after an edit at line 100: extra %+v, want other.go around line 100, newest last", ex)
	}

	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"infuse": map[string]any{
		"engine": map[string]any{"kind": "openai", "url": "http://127.0.0.1:8000", "model": "m"},
	}}})
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 3, 6, 1), nil)
	if reqs := served.requests(); len(reqs) != 4 || len(reqs[3].Extra) != 0 {
		t.Errorf("openai engine: %d requests, extra %v; want none", len(reqs), reqs[len(reqs)-1].Extra)
	}

	// extraChunks 0 turns it off for llama.cpp too.
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"infuse": map[string]any{
		"extraChunks": 0,
	}}})
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 3, 5, 1), nil)
	if reqs := served.requests(); len(reqs) != 5 || len(reqs[4].Extra) != 0 {
		t.Errorf("extraChunks 0: extra %v, want none", reqs[len(reqs)-1].Extra)
	}
}
