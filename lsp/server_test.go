package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/infill"
)

const goURI = "file:///work/main.go"

func TestSession(t *testing.T) {
	fake := &fakeCompleter{}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig(), Version: "test"})

	init := c.initialize(nil, nil)
	caps := init["capabilities"].(map[string]any)
	if got := caps["positionEncoding"]; got != "utf-16" {
		t.Errorf("positionEncoding = %v, want utf-16 for a client that offers none", got)
	}
	if caps["inlineCompletionProvider"] != true {
		t.Errorf("inlineCompletionProvider = %v, want true", caps["inlineCompletionProvider"])
	}
	if caps["completionProvider"] == nil || caps["codeActionProvider"] == nil {
		t.Errorf("missing completionProvider or codeActionProvider in %v", caps)
	}
	if sync := caps["textDocumentSync"].(map[string]any); sync["change"] != 2.0 || sync["openClose"] != true {
		t.Errorf("textDocumentSync = %v, want incremental with open/close", sync)
	}
	if info := init["serverInfo"].(map[string]any); info["name"] != "infuse" || info["version"] != "test" {
		t.Errorf("serverInfo = %v", info)
	}

	c.open(goURI, "go", "package main\n\nfunc main() {\n\tx := \n}\n")
	// At the end of "\tx := " (line 3, character 6): single-line.
	var list inlineList
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 3, 6, 2), &list)
	if got := list.texts(); len(got) != 1 || got[0] != "fill()" {
		t.Fatalf("inline items = %q, want [fill()]", got)
	}
	wantRange := rng(3, 6, 3, 6)
	if fmt.Sprint(list.Items[0].Range) != fmt.Sprint(map[string]any{"start": map[string]any{"line": 3.0, "character": 6.0}, "end": map[string]any{"line": 3.0, "character": 6.0}}) {
		t.Errorf("item range = %v, want %v", list.Items[0].Range, wantRange)
	}
	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("completer called %d times, want 1", len(reqs))
	}
	if r := reqs[0]; r.Prefix != "package main\n\nfunc main() {\n\tx := " || r.Suffix != "\n}\n" || r.Language != "go" || r.Mode != infill.SingleLine {
		t.Errorf("request = %+v", r)
	}

	// An incremental edit: type "y" then a newline into the body.
	c.notify("textDocument/didChange", map[string]any{
		"textDocument":   map[string]any{"uri": goURI, "version": 2},
		"contentChanges": []any{map[string]any{"range": rng(3, 6, 3, 6), "text": "y\n\t"}},
	})
	// Classic completion on the new empty line (line 4, character 1): multi-line.
	var clist struct {
		IsIncomplete bool `json:"isIncomplete"`
		Items        []struct {
			Label    string `json:"label"`
			TextEdit struct {
				Range   map[string]any `json:"range"`
				NewText string         `json:"newText"`
			} `json:"textEdit"`
		} `json:"items"`
	}
	c.mustCall("textDocument/completion", map[string]any{
		"textDocument": map[string]any{"uri": goURI}, "position": pos(4, 1),
	}, &clist)
	if !clist.IsIncomplete || len(clist.Items) != 1 || clist.Items[0].TextEdit.NewText != "fill()\nmore()" {
		t.Fatalf("completion = %+v", clist)
	}
	if got := fake.requests()[1]; got.Prefix != "package main\n\nfunc main() {\n\tx := y\n\t" || got.Mode != infill.MultiLine {
		t.Errorf("second request = %+v", got)
	}
	if err := c.shutdownExit(); err != nil {
		t.Errorf("Serve after shutdown and exit = %v, want nil", err)
	}
}

func TestLifecycleErrors(t *testing.T) {
	c := startSession(t, Options{Load: loaderOf(&fakeCompleter{}), Config: testConfig()})

	if err := c.call("textDocument/inlineCompletion", inlineParams(goURI, 0, 0, 1), nil); err == nil || err.Code != -32002 {
		t.Errorf("request before initialize: error %v, want -32002", err)
	}
	c.open(goURI, "go", "x") // dropped: before initialize
	c.initialize(nil, nil)
	if err := c.call("initialize", map[string]any{"capabilities": map[string]any{}}, nil); err == nil || err.Code != -32600 {
		t.Errorf("second initialize: error %v, want -32600", err)
	}
	if err := c.call("textDocument/inlineCompletion", inlineParams(goURI, 0, 0, 1), nil); err == nil || err.Code != -32602 || !strings.Contains(err.Message, "not open") {
		t.Errorf("completion in a document opened before initialize: error %v, want -32602 not open", err)
	}
	if err := c.call("textDocument/hover", map[string]any{}, nil); err == nil || err.Code != -32601 {
		t.Errorf("unknown method: error %v, want -32601", err)
	}
	c.notify("$/unknownNotification", map[string]any{})
	c.notify("textDocument/didOpen", map[string]any{"textDocument": 5}) // wrong type: logged, not fatal
	for _, bad := range []any{
		map[string]any{"textDocument": map[string]any{"uri": goURI}, "position": map[string]any{"line": -1, "character": 0}, "context": map[string]any{"triggerKind": 1}},
		map[string]any{"textDocument": "nope"},
		[]int{1, 2},
		"string",
	} {
		if err := c.call("textDocument/inlineCompletion", bad, nil); err == nil || err.Code != -32602 {
			t.Errorf("params %v: error %v, want -32602", bad, err)
		}
	}
	if err := c.call("textDocument/completion", nil, nil); err == nil || err.Code != -32602 {
		t.Errorf("missing params: error %v, want -32602", err)
	}
	// The server still works.
	var st Stats
	c.mustCall("infuse/stats", nil, &st)

	c.mustCall("shutdown", nil, nil)
	if err := c.call("infuse/stats", nil, nil); err == nil || err.Code != -32600 {
		t.Errorf("request after shutdown: error %v, want -32600", err)
	}
	c.notify("exit", nil)
	if err := c.served(); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

func TestExitWithoutShutdown(t *testing.T) {
	c := startSession(t, Options{Load: loaderOf(&fakeCompleter{}), Config: testConfig()})
	c.initialize(nil, nil)
	c.notify("exit", nil)
	if err := c.served(); !errors.Is(err, ErrExitWithoutShutdown) {
		t.Errorf("Serve = %v, want ErrExitWithoutShutdown", err)
	}
}

func TestMalformedMessages(t *testing.T) {
	c := startSession(t, Options{Load: loaderOf(&fakeCompleter{}), Config: testConfig()})
	c.initialize(nil, nil)

	check := func(name, id string, code int64, write func()) {
		t.Helper()
		ch := c.expect(id)
		write()
		m := c.wait(ch)
		if m.Error == nil || m.Error.Code != code {
			t.Errorf("%s: response %s, want error %d", name, m.raw, code)
		}
		// And the server still answers.
		c.mustCall("infuse/stats", nil, nil)
	}
	raw := func(s string) func() { return func() { c.writeRaw([]byte(s)) } }
	frame := func(s string) func() { return func() { c.writeFrame([]byte(s)) } }
	check("truncated JSON", "null", -32700, raw(`{"jsonrpc":"2.0","id":1,"method":`))
	check("not JSON", "null", -32700, raw(`not json at all`))
	check("no method", "77", -32600, raw(`{"jsonrpc":"2.0","id":77}`))
	check("method not a string", `"s"`, -32600, raw(`{"jsonrpc":"2.0","id":"s","method":5}`))
	check("empty batch", "null", -32600, raw(`[]`))
	check("misspelt header", "null", -32700, frame("Content-Lenght: 10\r\n\r\n0123456789"))
	check("bad length", "null", -32700, frame("Content-Length: ten\r\n\r\n{}"))
	check("header line without a colon", "null", -32700, frame("garbage without a colon\r\n\r\n"))
	check("wrong param type", "78", -32602, raw(`{"jsonrpc":"2.0","id":78,"method":"textDocument/completion","params":{"textDocument":{"uri":1}}}`))
	check("string for a number", "79", -32602, raw(`{"jsonrpc":"2.0","id":79,"method":"textDocument/completion","params":{"textDocument":{"uri":"`+goURI+`"},"position":{"line":"0","character":0}}}`))

	if err := c.shutdownExit(); err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestPositionEncodings(t *testing.T) {
	// "𐐀" is 4 bytes, 2 UTF-16 units, 1 code point; "é" (e + U+0301) is 3
	// bytes in 2 code points.
	const text = "a𐐀e\u0301b\r\nz"
	cases := []struct {
		offered []string
		want    string
		char    int // the character offset of "b" in that encoding
	}{
		{nil, "utf-16", 5},
		{[]string{"utf-16"}, "utf-16", 5},
		{[]string{"utf-8", "utf-16"}, "utf-8", 8},
		{[]string{"utf-32"}, "utf-32", 4},
		{[]string{"utf-7", "utf-32", "utf-8"}, "utf-32", 4},
	}
	for _, tc := range cases {
		t.Run(tc.want+"/"+strings.Join(tc.offered, ","), func(t *testing.T) {
			fake := &fakeCompleter{}
			c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
			caps := map[string]any{}
			if tc.offered != nil {
				caps["general"] = map[string]any{"positionEncodings": tc.offered}
			}
			res := c.initialize(caps, nil)
			if got := res["capabilities"].(map[string]any)["positionEncoding"]; got != tc.want {
				t.Fatalf("positionEncoding = %v, want %s", got, tc.want)
			}
			c.open(goURI, "go", text)
			var list inlineList
			c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, tc.char, 1), &list)
			if r := fake.requests()[0]; r.Prefix != "a𐐀e\u0301" || r.Suffix != "b\r\nz" {
				t.Errorf("prefix %q suffix %q, want the split before b", r.Prefix, r.Suffix)
			}
			// The item's range comes back in the same encoding.
			if got := list.Items[0].Range["start"].(map[string]any)["character"]; got != float64(tc.char) {
				t.Errorf("range start character = %v, want %d", got, tc.char)
			}
			// An edit in the same encoding: replace "b" with "B".
			c.notify("textDocument/didChange", map[string]any{
				"textDocument":   map[string]any{"uri": goURI, "version": 2},
				"contentChanges": []any{map[string]any{"range": rng(0, tc.char, 0, tc.char+1), "text": "B"}},
			})
			c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 5, 0, 1), &list) // past the last line
			if r := fake.requests()[1]; r.Prefix != "a𐐀e\u0301B\r\nz" || r.Suffix != "" {
				t.Errorf("after the edit: prefix %q suffix %q", r.Prefix, r.Suffix)
			}
		})
	}
}

func TestSupersededRequest(t *testing.T) {
	g := newGate()
	fake := &fakeCompleter{fn: g.complete}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.initialize(nil, nil)
	c.open(goURI, "go", "x := \ny := \n")

	first := c.send("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 2))
	g.waitStarted(t)
	second := c.send("textDocument/inlineCompletion", inlineParams(goURI, 1, 5, 2))
	// The first request is answered empty as soon as the second arrives,
	// before the completer is released.
	var list inlineList
	if m := c.wait(first); m.Error != nil || json.Unmarshal(m.Result, &list) != nil || len(list.Items) != 0 {
		t.Errorf("superseded request: %s, want an empty list", m.raw)
	}
	g.waitStarted(t)
	g.release <- infill.Result{Text: "2"}
	if m := c.wait(second); m.Error != nil || json.Unmarshal(m.Result, &list) != nil || len(list.Items) != 1 || list.Items[0].InsertText != "2" {
		t.Errorf("newest request: %s, want one item", m.raw)
	}
	var st Stats
	c.mustCall("infuse/stats", nil, &st)
	if st.Requests != 2 || st.Superseded != 1 || st.Completed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestEditCancelsRequest(t *testing.T) {
	g := newGate()
	c := startSession(t, Options{Load: loaderOf(&fakeCompleter{fn: g.complete}), Config: testConfig()})
	c.initialize(nil, nil)
	c.open(goURI, "go", "x := ")
	pending := c.send("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 2))
	g.waitStarted(t)
	c.notify("textDocument/didChange", map[string]any{
		"textDocument":   map[string]any{"uri": goURI, "version": 2},
		"contentChanges": []any{map[string]any{"text": "x := 1"}},
	})
	var list inlineList
	if m := c.wait(pending); m.Error != nil || json.Unmarshal(m.Result, &list) != nil || len(list.Items) != 0 {
		t.Errorf("request for an old version: %s, want an empty list", m.raw)
	}
}

func TestCancelRequest(t *testing.T) {
	g := newGate()
	c := startSession(t, Options{Load: loaderOf(&fakeCompleter{fn: g.complete}), Config: testConfig()})
	c.initialize(nil, nil)
	c.open(goURI, "go", "x := ")
	pending := c.sendID(1000, "textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1))
	g.waitStarted(t)
	c.notify("$/cancelRequest", map[string]any{"id": 1000})
	if m := c.wait(pending); m.Error == nil || m.Error.Code != -32800 {
		t.Errorf("cancelled request: %s, want error -32800", m.raw)
	}
	// String ids too, and cancelling an unknown id is harmless.
	pending = c.sendID(0, "textDocument/completion", map[string]any{"textDocument": map[string]any{"uri": goURI}, "position": pos(0, 5)})
	g.waitStarted(t)
	c.notify("$/cancelRequest", map[string]any{"id": "nope"})
	c.notify("$/cancelRequest", map[string]any{"id": 0})
	if m := c.wait(pending); m.Error == nil || m.Error.Code != -32800 {
		t.Errorf("cancelled request: %s, want error -32800", m.raw)
	}
	var st Stats
	c.mustCall("infuse/stats", nil, &st)
	if st.Cancelled != 2 {
		t.Errorf("stats = %+v, want 2 cancelled", st)
	}
}

func TestDebounce(t *testing.T) {
	fake := &fakeCompleter{}
	cfg := testConfig()
	c := startSession(t, Options{Load: loaderOf(fake), Config: cfg})
	c.initialize(nil, map[string]any{"debounceMs": 3_600_000})
	c.open(goURI, "go", "x := ")
	// Automatic requests wait out the debounce; a newer one replaces the
	// older, which never reaches the model.
	first := c.sendID(1001, "textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 2))
	second := c.sendID(1002, "textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 2))
	var list inlineList
	if m := c.wait(first); m.Error != nil || json.Unmarshal(m.Result, &list) != nil || len(list.Items) != 0 {
		t.Errorf("debounced request: %s, want an empty list", m.raw)
	}
	// An invoked request skips the debounce (and supersedes the waiting one).
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), &list)
	if len(list.Items) != 1 {
		t.Errorf("invoked request: %v, want an item", list)
	}
	if m := c.wait(second); m.Error != nil || json.Unmarshal(m.Result, &list) != nil || len(list.Items) != 0 {
		t.Errorf("debounced request: %s, want an empty list", m.raw)
	}
	if n := len(fake.requests()); n != 1 {
		t.Errorf("completer called %d times, want 1", n)
	}
}

func TestDeadline(t *testing.T) {
	fake := &fakeCompleter{fn: func(ctx context.Context, _ infill.Request) (infill.Result, error) {
		<-ctx.Done() // a model that never finishes
		return infill.Result{}, ctx.Err()
	}}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.initialize(nil, map[string]any{"timeoutMs": 1})
	c.open(goURI, "go", "x := ")
	var list inlineList
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), &list)
	if len(list.Items) != 0 {
		t.Errorf("items %v, want none after the deadline", list.texts())
	}
	var st Stats
	c.mustCall("infuse/stats", nil, &st)
	if st.TimedOut != 1 {
		t.Errorf("stats = %+v, want 1 timed out", st)
	}
}

func TestCompleterFailures(t *testing.T) {
	calls := 0
	fake := &fakeCompleter{fn: func(ctx context.Context, _ infill.Request) (infill.Result, error) {
		calls++
		if calls == 1 {
			panic("model bug")
		}
		return infill.Result{}, errors.New("out of memory")
	}}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.initialize(nil, nil)
	c.open(goURI, "go", "x := ")
	for range 2 {
		var list inlineList
		c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), &list)
		if len(list.Items) != 0 {
			t.Errorf("items %v from a failing completer", list.texts())
		}
	}
	var st Stats
	c.mustCall("infuse/stats", nil, &st)
	if st.Failed != 2 {
		t.Errorf("stats = %+v, want 2 failed", st)
	}
}

func TestTypeThrough(t *testing.T) {
	fake := &fakeCompleter{fn: func(context.Context, infill.Request) (infill.Result, error) {
		return infill.Result{Text: "fmt.Println(x)"}, nil
	}}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.initialize(nil, nil)
	c.open(goURI, "go", "\t\n}\n")
	var list inlineList
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 1, 2), &list)
	if got := list.texts(); len(got) != 1 || got[0] != "fmt.Println(x)" {
		t.Fatalf("items %q", got)
	}
	version := 1
	typeText := func(char int, s string) {
		version++
		c.notify("textDocument/didChange", map[string]any{
			"textDocument":   map[string]any{"uri": goURI, "version": version},
			"contentChanges": []any{map[string]any{"range": rng(0, char, 0, char), "text": s}},
		})
	}
	typeText(1, "fm")
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 3, 2), &list)
	if got := list.texts(); len(got) != 1 || got[0] != "t.Println(x)" {
		t.Errorf("after typing 'fm': items %q, want the rest of the suggestion", got)
	}
	typeText(3, "t.P")
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 6, 2), &list)
	if got := list.texts(); len(got) != 1 || got[0] != "rintln(x)" {
		t.Errorf("after typing 't.P': items %q", got)
	}
	if n := len(fake.requests()); n != 1 {
		t.Errorf("completer called %d times, want 1 (the rest from the cache)", n)
	}
	// Typing off the suggestion asks the model again.
	typeText(6, "X")
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 7, 2), &list)
	if n := len(fake.requests()); n != 2 {
		t.Errorf("completer called %d times, want 2", n)
	}
	var st Stats
	c.mustCall("infuse/stats", nil, &st)
	if st.CacheHits != 2 || st.Completed != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSelectedCompletionInfo(t *testing.T) {
	fake := &fakeCompleter{fn: func(context.Context, infill.Request) (infill.Result, error) {
		return infill.Result{Text: "(\"hi\")"}, nil
	}}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.initialize(nil, nil)
	c.open(goURI, "go", "\tfmt.Pr\n")
	params := inlineParams(goURI, 0, 7, 2)
	params["context"] = map[string]any{"triggerKind": 2, "selectedCompletionInfo": map[string]any{
		"range": rng(0, 5, 0, 7), "text": "Println",
	}}
	var list inlineList
	c.mustCall("textDocument/inlineCompletion", params, &list)
	if got := list.texts(); len(got) != 1 || got[0] != `Println("hi")` {
		t.Fatalf("items %q, want the selected item extended", got)
	}
	if fmt.Sprint(list.Items[0].Range) != fmt.Sprint(map[string]any{"start": map[string]any{"line": 0.0, "character": 5.0}, "end": map[string]any{"line": 0.0, "character": 7.0}}) {
		t.Errorf("range %v, want the selected item's", list.Items[0].Range)
	}
	if r := fake.requests()[0]; r.Prefix != "\tfmt.Println" || r.Suffix != "\n" {
		t.Errorf("request %+v, want the prefix to end in the selected item", r)
	}
}

func TestInvokedCandidates(t *testing.T) {
	fake := &fakeCompleter{}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.initialize(nil, nil)
	c.open(goURI, "go", "func f() {\n")
	var list inlineList
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 10, 1), &list)
	if got := list.texts(); len(got) != 2 || got[0] != "fill()\nmore()" || got[1] != "fill()" {
		t.Errorf("invoked: items %q, want the block and its first line", got)
	}
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 10, 2), &list)
	if got := list.texts(); len(got) != 1 {
		t.Errorf("automatic: items %q, want one", got)
	}
}

func TestLanguageDisabled(t *testing.T) {
	fake := &fakeCompleter{}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.initialize(nil, map[string]any{"infuse": map[string]any{"enable": map[string]any{"markdown": false}}})
	c.open("file:///a.md", "markdown", "# title\n")
	c.open(goURI, "go", "x")
	var list inlineList
	c.mustCall("textDocument/inlineCompletion", inlineParams("file:///a.md", 1, 0, 1), &list)
	if len(list.Items) != 0 || len(fake.requests()) != 0 {
		t.Errorf("markdown is disabled but got %v", list.texts())
	}
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 1, 1), &list)
	if len(list.Items) != 1 {
		t.Errorf("go is enabled but got %v", list.texts())
	}
}

func TestConfiguration(t *testing.T) {
	fake := &fakeCompleter{}
	var loads []string
	load := func(_ context.Context, model, device string) (infill.Completer, error) {
		loads = append(loads, model+"@"+device)
		return fake, nil
	}
	c := startSession(t, Options{Load: load, Config: testConfig()})
	c.initialize(nil, map[string]any{"infuse": map[string]any{"mode": "multi-line", "maxTokens": 7, "model": "m1"}})
	c.open(goURI, "go", "x := ")
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), nil)
	if r := fake.requests()[0]; r.Mode != infill.MultiLine || r.MaxTokens != 7 {
		t.Errorf("request %+v, want the configured mode and maxTokens", r)
	}
	// Settings pushed under "infuse" replace the earlier ones (over the
	// initialization options), and a new model is loaded.
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"infuse": map[string]any{
		"mode": "single-line", "model": "m2", "device": "cpu",
	}}})
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), nil)
	if r := fake.requests()[1]; r.Mode != infill.SingleLine || r.MaxTokens != 7 {
		t.Errorf("request %+v, want single-line and maxTokens still 7", r)
	}
	if fmt.Sprint(loads) != "[m1@ m2@cpu]" {
		t.Errorf("loads %v", loads)
	}
	// A bad value is reported, and the rest still applies.
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"infuse": map[string]any{
		"mode": "sideways", "maxTokens": 9, "model": "m2", "device": "cpu",
	}}})
	m := c.note()
	if m.Method != "window/showMessage" || !strings.Contains(string(m.Params), "sideways") {
		t.Errorf("notification %s, want a warning about the mode", m.raw)
	}
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), nil)
	if r := fake.requests()[2]; r.MaxTokens != 9 {
		t.Errorf("request %+v, want maxTokens 9", r)
	}
	// Settings without an "infuse" key don't touch infuse's.
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"gopls": map[string]any{}}})
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 4, 1), nil)
	if r := fake.requests()[3]; r.MaxTokens != 9 {
		t.Errorf("request %+v, want maxTokens still 9", r)
	}
	c.noNote()
}

func TestConfigurationPull(t *testing.T) {
	fake := &fakeCompleter{}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.answer = func(m *wireMsg) (any, *wireError) {
		if m.Method == "workspace/configuration" {
			return []any{map[string]any{"maxTokens": 3}}, nil
		}
		return nil, nil
	}
	c.initialize(map[string]any{"workspace": map[string]any{"configuration": true}}, nil)
	c.open(goURI, "go", "x := ")
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": nil})
	select {
	case m := <-c.serverReqs:
		if m.Method != "workspace/configuration" || !strings.Contains(string(m.Params), `"section":"infuse"`) {
			t.Errorf("server request %s", m.raw)
		}
	case <-timeoutC():
		t.Fatal("the server did not ask for the configuration")
	}
	// The answer is applied in the background; poll the effect.
	for i := 0; ; i++ {
		c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1), nil)
		reqs := fake.requests()
		if reqs[len(reqs)-1].MaxTokens == 3 {
			break
		}
		if i == 1000 {
			t.Fatal("pulled configuration never applied")
		}
	}
}

func TestExitWhileAnswering(t *testing.T) {
	// A client that sends shutdown and exit without waiting for an answer
	// still gets it: the session writes every response before it closes.
	g := newGate()
	c := startSession(t, Options{Load: loaderOf(&fakeCompleter{fn: g.complete}), Config: testConfig()})
	c.initialize(nil, nil)
	c.open(goURI, "go", "x := ")
	pending := c.send("textDocument/inlineCompletion", inlineParams(goURI, 0, 5, 1))
	g.waitStarted(t)
	down := c.send("shutdown", nil)
	c.notify("exit", nil)
	if m := c.wait(pending); m.Error != nil || string(m.Result) != `{"items":[]}` {
		t.Errorf("request in flight at exit: %s, want an empty list", m.raw)
	}
	if m := c.wait(down); m.Error != nil {
		t.Errorf("shutdown: %s", m.raw)
	}
	if err := c.served(); err != nil {
		t.Errorf("Serve = %v", err)
	}
}

// halfPipe is a connection whose input and output close separately, like a
// process's stdin and stdout.
type halfPipe struct {
	*io.PipeReader
	*io.PipeWriter
}

func (h halfPipe) Close() error {
	h.PipeReader.Close()
	return h.PipeWriter.Close()
}

func TestAnswersAfterEndOfInput(t *testing.T) {
	// A client that writes its requests and closes its end (a script
	// piping a file into the server) still reads every answer.
	checkGoroutines(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	fake := &fakeCompleter{}
	srv := New(Options{Load: loaderOf(fake), Config: testConfig(), Logger: testLogger(t)})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), halfPipe{inR, outW}) }()
	go func() {
		for _, m := range []string{
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}`,
			`{"jsonrpc":"2.0","method":"initialized","params":{}}`,
			`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"` + goURI + `","languageId":"go","version":1,"text":"x := "}}}`,
			`{"jsonrpc":"2.0","id":2,"method":"textDocument/inlineCompletion","params":{"textDocument":{"uri":"` + goURI + `"},"position":{"line":0,"character":5},"context":{"triggerKind":1}}}`,
		} {
			fmt.Fprintf(inW, "Content-Length: %d\r\n\r\n%s", len(m), m)
		}
		inW.Close()
	}()
	out, err := io.ReadAll(outR)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `{"jsonrpc":"2.0","id":2,"result":{"items":[{"insertText":"fill()"`) {
		t.Errorf("output %q lacks the completion", out)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil at the end of input", err)
	}
}

func TestInvalidUTF8(t *testing.T) {
	// JSON text must be UTF-8, but a client may send a buffer's bytes as
	// they are; each bad byte becomes U+FFFD and positions still work.
	fake := &fakeCompleter{}
	c := startSession(t, Options{Load: loaderOf(fake), Config: testConfig()})
	c.initialize(nil, nil)
	c.writeRaw([]byte("{\"jsonrpc\":\"2.0\",\"method\":\"textDocument/didOpen\",\"params\":{\"textDocument\":{\"uri\":\"" + goURI +
		"\",\"languageId\":\"go\",\"version\":1,\"text\":\"a\xffb\xe2\x82 := \"}}}"))
	var list inlineList
	c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, 0, 3, 1), &list)
	if r := fake.requests()[0]; r.Prefix != "a\uFFFDb" {
		t.Errorf("prefix %q, want the bad byte as U+FFFD", r.Prefix)
	}
}
