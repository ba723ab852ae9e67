package lsp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/infill"
)

// holeFiller is a fake completer that fills holes in one call.
type holeFiller struct {
	fakeCompleter
	holes []infill.HolesRequest
}

func (h *holeFiller) FillHoles(_ context.Context, req infill.HolesRequest) (infill.HolesResult, error) {
	h.mu.Lock()
	h.holes = append(h.holes, req)
	h.mu.Unlock()
	texts := make([]string, len(req.Parts)-1)
	for i := range texts {
		texts[i] = fmt.Sprintf("h%d", i+1)
	}
	return infill.HolesResult{Texts: texts}, nil
}

var codeActionCaps = map[string]any{
	"textDocument": map[string]any{"codeAction": map[string]any{
		"codeActionLiteralSupport": map[string]any{"codeActionKind": map[string]any{"valueSet": []string{"refactor", "quickfix"}}},
		"resolveSupport":           map[string]any{"properties": []string{"edit"}},
	}},
	"workspace": map[string]any{"workspaceEdit": map[string]any{"documentChanges": true}},
}

type codeActionJSON struct {
	Title string          `json:"title"`
	Kind  string          `json:"kind"`
	Data  json.RawMessage `json:"data"`
	Edit  *struct {
		Changes         map[string][]textEditJSON `json:"changes"`
		DocumentChanges []struct {
			TextDocument struct {
				URI     string `json:"uri"`
				Version int    `json:"version"`
			} `json:"textDocument"`
			Edits []textEditJSON `json:"edits"`
		} `json:"documentChanges"`
	} `json:"edit"`
}

type textEditJSON struct {
	Range struct {
		Start struct{ Line, Character int } `json:"start"`
		End   struct{ Line, Character int } `json:"end"`
	} `json:"range"`
	NewText string `json:"newText"`
}

func (e textEditJSON) String() string {
	return fmt.Sprintf("%d:%d-%d:%d=%q", e.Range.Start.Line, e.Range.Start.Character, e.Range.End.Line, e.Range.End.Character, e.NewText)
}

func TestFillHolesResolve(t *testing.T) {
	hf := &holeFiller{}
	c := startSession(t, Options{Load: loaderOf(hf), Config: testConfig()})
	c.initialize(codeActionCaps, nil)
	c.open(goURI, "go", "func f() {\n\tx := /*?*/\n\treturn /*?*/ + 1\n}\n/*?*/\n")
	params := map[string]any{
		"textDocument": map[string]any{"uri": goURI},
		"range":        rng(0, 0, 3, 1), // the function, not the third marker
		"context":      map[string]any{"diagnostics": []any{}},
	}
	var actions []codeActionJSON
	c.mustCall("textDocument/codeAction", params, &actions)
	if len(actions) != 1 || actions[0].Title != "Fill 2 holes with infuse" || actions[0].Kind != "refactor.rewrite" || actions[0].Edit != nil {
		t.Fatalf("actions %+v, want one unresolved action for 2 holes", actions)
	}
	if len(hf.holes) != 0 {
		t.Errorf("the model ran before the action was picked")
	}
	var resolved codeActionJSON
	c.mustCall("codeAction/resolve", actions[0], &resolved)
	if resolved.Edit == nil || len(resolved.Edit.DocumentChanges) != 1 {
		t.Fatalf("resolved %+v, want one document edit", resolved)
	}
	dc := resolved.Edit.DocumentChanges[0]
	if dc.TextDocument.URI != goURI || dc.TextDocument.Version != 1 || fmt.Sprint(dc.Edits) != `[1:6-1:11="h1" 2:8-2:13="h2"]` {
		t.Errorf("edit %+v", dc)
	}
	if len(hf.holes) != 1 || fmt.Sprintf("%q", hf.holes[0].Parts) != `["func f() {\n\tx := " "\n\treturn " " + 1\n}\n/*?*/\n"]` {
		t.Errorf("hole requests %+v, want one with the two holes", hf.holes)
	}
	if len(hf.requests()) != 0 {
		t.Errorf("Complete was called; a HoleFiller fills all holes in one call")
	}

	// An edit between listing and resolving makes the action stale.
	c.notify("textDocument/didChange", map[string]any{
		"textDocument":   map[string]any{"uri": goURI, "version": 2},
		"contentChanges": []any{map[string]any{"text": "changed"}},
	})
	if err := c.call("codeAction/resolve", actions[0], nil); err == nil || err.Code != -32801 {
		t.Errorf("resolve after an edit: %v, want ContentModified", err)
	}
	// No holes, no action; a foreign action is refused.
	c.mustCall("textDocument/codeAction", params, &actions)
	if len(actions) != 0 {
		t.Errorf("actions %+v in a document without holes", actions)
	}
	if err := c.call("codeAction/resolve", map[string]any{"title": "x", "data": 5}, nil); err == nil || err.Code != -32602 {
		t.Errorf("resolve of a foreign action: %v, want InvalidParams", err)
	}
}

func TestFillHolesOneByOne(t *testing.T) {
	// A completer that is not a HoleFiller fills the holes in turn; a client
	// that can't resolve edits gets them with the action. Python's "..." is
	// a hole.
	fake := &fakeCompleter{fn: func(_ context.Context, req infill.Request) (infill.Result, error) {
		return infill.Result{Text: fmt.Sprintf("v%d", strings.Count(req.Prefix, "v")+1)}, nil
	}}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.initialize(map[string]any{"textDocument": map[string]any{"codeAction": map[string]any{
		"codeActionLiteralSupport": map[string]any{"codeActionKind": map[string]any{"valueSet": []string{"refactor"}}},
	}}}, map[string]any{"holeMarkers": []string{"TODO"}})
	const uri = "file:///a.py"
	c.open(uri, "python", "def f():\n    ...\n\ndef g():\n    return TODO\n")
	var actions []codeActionJSON
	c.mustCall("textDocument/codeAction", map[string]any{
		"textDocument": map[string]any{"uri": uri}, "range": rng(0, 0, 5, 0),
		"context": map[string]any{"diagnostics": []any{}, "only": []string{"refactor"}},
	}, &actions)
	if len(actions) != 1 || actions[0].Edit == nil {
		t.Fatalf("actions %+v, want one with its edit", actions)
	}
	if got := fmt.Sprint(actions[0].Edit.Changes[uri]); got != `[1:4-1:7="v1" 4:11-4:15="v2"]` {
		t.Errorf("edits %s", got)
	}
	reqs := fake.requests()
	if len(reqs) != 2 || !strings.HasSuffix(reqs[1].Prefix, "def f():\n    v1\n\ndef g():\n    return ") {
		t.Errorf("requests %+v, want the second to see the first hole filled", reqs)
	}
	// A client asking only for quick fixes gets nothing from infuse.
	c.mustCall("textDocument/codeAction", map[string]any{
		"textDocument": map[string]any{"uri": uri}, "range": rng(0, 0, 5, 0),
		"context": map[string]any{"diagnostics": []any{}, "only": []string{"quickfix"}},
	}, &actions)
	if len(actions) != 0 {
		t.Errorf("actions %+v for only=quickfix", actions)
	}
}

func TestFindHoles(t *testing.T) {
	text := "a /*?*/ b\n    ...\nc /*?*/\n"
	cases := []struct {
		sel  span
		lang string
		want string
	}{
		{span{0, len(text)}, "go", "[{2 7} {20 25}]"},
		{span{0, len(text)}, "python", "[{2 7} {14 17} {20 25}]"},
		{span{4, 4}, "go", "[{2 7}]"},         // a cursor selects its line
		{span{5, 12}, "go", "[{2 7}]"},        // a marker straddling the selection's start counts
		{span{8, 12}, "go", "[]"},             // but not one wholly outside
		{span{12, 12}, "python", "[{14 17}]"}, // the "..." line
		{span{0, len(text)}, "text", "[{2 7} {20 25}]"},
	}
	for _, tc := range cases {
		got := fmt.Sprint(findHoles(text, tc.sel, tc.lang, []string{"/*?*/", ""}))
		if got != tc.want {
			t.Errorf("findHoles(%v, %s) = %s, want %s", tc.sel, tc.lang, got, tc.want)
		}
	}
}
