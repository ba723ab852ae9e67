package lsp

import (
	"strings"
	"testing"
	"time"

	"go.lsp.dev/uri"

	"github.com/infuse-lsp/infuse/infill"
)

func TestDecideMode(t *testing.T) {
	cases := []struct {
		text string // | marks the cursor
		want infill.Mode
	}{
		{"func f() {|\n}", infill.MultiLine},      // the end of a line that opens a block
		{"if x:|\n", infill.MultiLine},            // Python
		{"foo(|", infill.MultiLine},               // an open call
		{"xs.map(x =>|", infill.MultiLine},        // an arrow
		{"for i in 1..3 do|\n", infill.MultiLine}, // a keyword
		{"\t\n\t|\n}", infill.MultiLine},          // an empty line inside a block
		{"|", infill.MultiLine},                   // an empty file
		{"x := |\n", infill.SingleLine},           // the end of a statement
		{"fmt.Pr|intln(x)", infill.SingleLine},    // text after the cursor
		{"func f() {|}", infill.SingleLine},       // even a closer
		{"\t|  x\n", infill.SingleLine},           // an indented line with text after
		{"undo|\n", infill.SingleLine},            // "do" inside a word is not the keyword
		{"x := 1 |  \r\n", infill.SingleLine},     // trailing blanks are no text
		{"line one\r\n  |\r\nthree", infill.MultiLine},
	}
	for _, tc := range cases {
		before, after, _ := strings.Cut(tc.text, "|")
		if got := decideMode(before, after, infill.Auto); got != tc.want {
			t.Errorf("decideMode(%q) = %v, want %v", tc.text, got, tc.want)
		}
		if got := decideMode(before, after, infill.SingleLine); got != infill.SingleLine {
			t.Errorf("a configured mode must win, got %v", got)
		}
	}
}

func TestWindows(t *testing.T) {
	text := "line1\nline2\nline3\nline4\n"
	cases := []struct {
		before string
		n      int
		want   string
	}{
		{text, 0, text},              // no limit
		{text, 100, text},            // shorter than the limit
		{text, 14, "line3\nline4\n"}, // cut, then moved to a line start
		{text, 8, "line4\n"},
		{"aaaaaaaaaaaa\nb", 8, "aaaaaa\nb"}, // a line start would keep too little
		{"é𐐀日本語", 3, "日本語"},                 // characters, not bytes
		{"a\r\nbbbbbbbbb", 10, "bbbbbbbbb"}, // a CRLF counts as one break
	}
	for _, tc := range cases {
		if got := prefixWindow(tc.before, tc.n); got != tc.want {
			t.Errorf("prefixWindow(%q, %d) = %q, want %q", tc.before, tc.n, got, tc.want)
		}
	}
	suffixes := []struct {
		after string
		n     int
		want  string
	}{
		{text, 0, text},
		{text, 14, "line1\nline2"},
		{text, 3, "lin"},
		{"日本語𐐀é", 4, "日本語𐐀"},
		{"aaaaaa\r\nb", 8, "aaaaaa"},
	}
	for _, tc := range suffixes {
		if got := suffixWindow(tc.after, tc.n); got != tc.want {
			t.Errorf("suffixWindow(%q, %d) = %q, want %q", tc.after, tc.n, got, tc.want)
		}
	}
}

func TestShape(t *testing.T) {
	if got := shape("a := 1\nb := 2", infill.SingleLine); got != "a := 1" {
		t.Errorf("single-line: %q", got)
	}
	if got := shape("a\r\nb", infill.SingleLine); got != "a" {
		t.Errorf("single-line CRLF: %q", got)
	}
	if got := shape("a\n\tb\n\n  ", infill.MultiLine); got != "a\n\tb" {
		t.Errorf("multi-line: %q", got)
	}
	if got := shape("\n\t", infill.MultiLine); got != "" {
		t.Errorf("blank: %q", got)
	}
}

func TestWordStartAndLabel(t *testing.T) {
	text := "x := fmt.Prin"
	if got := text[wordStart(text, len(text)):]; got != "Prin" {
		t.Errorf("word = %q", got)
	}
	if got := wordStart("é_1", 4); got != 0 {
		t.Errorf("wordStart over a non-ASCII identifier = %d", got)
	}
	if got := wordStart("a(", 2); got != 2 {
		t.Errorf("wordStart after punctuation = %d", got)
	}
	if got := label("if x {\n\treturn\n}"); got != "if x { …" {
		t.Errorf("label = %q", got)
	}
	if got := label(strings.Repeat("é", 70)); got != strings.Repeat("é", 60)+"…" {
		t.Errorf("long label = %q", got)
	}
}

func TestParseSettings(t *testing.T) {
	base := DefaultConfig()
	cfg, err := parseSettings(base, []byte(`{"infuse":{"model":"m","device":"cuda","mode":"single","maxTokens":32,
		"enable":{"*":false,"go":true},"debounceMs":10,"timeoutMs":900,"prefixChars":100,"suffixChars":50,
		"holeMarkers":["TODO",""," "]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model != "m" || cfg.Device != "cuda" || cfg.Mode != infill.SingleLine || cfg.MaxTokens != 32 ||
		cfg.Debounce != 10*time.Millisecond || cfg.Timeout != 900*time.Millisecond || cfg.PrefixChars != 100 ||
		cfg.SuffixChars != 50 || len(cfg.HoleMarkers) != 1 || cfg.HoleMarkers[0] != "TODO" {
		t.Errorf("cfg = %+v", cfg)
	}
	if !cfg.Enabled("go") || cfg.Enabled("python") {
		t.Errorf("enable = %v", cfg.Enable)
	}
	// The section itself, without the "infuse" wrapper; enable as a bool.
	cfg, err = parseSettings(base, []byte(`{"enable":false}`))
	if err != nil || cfg.Enabled("go") {
		t.Errorf("enable false: %+v %v", cfg.Enable, err)
	}
	for _, tc := range []struct{ raw, wantErr string }{
		{`{"mode":"diagonal"}`, "mode"},
		{`{"device":"tpu"}`, "device"},
		{`{"debounceMs":-1}`, "debounceMs"},
		{`{"timeoutMs":0}`, "timeoutMs"},
		{`{"modle":"typo"}`, "modle"},
		{`{"enable":"yes"}`, "enable"},
		{`[1,2]`, "not a JSON object"},
	} {
		cfg, err := parseSettings(base, []byte(tc.raw))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("parseSettings(%s) error %v, want one about %s", tc.raw, err, tc.wantErr)
		}
		if cfg.Mode != base.Mode || cfg.Timeout != base.Timeout || cfg.Debounce != base.Debounce {
			t.Errorf("parseSettings(%s) changed a field it rejected: %+v", tc.raw, cfg)
		}
	}
	// One bad field does not spoil the others.
	cfg, err = parseSettings(base, []byte(`{"mode":"diagonal","maxTokens":5}`))
	if err == nil || cfg.MaxTokens != 5 {
		t.Errorf("maxTokens %d, err %v", cfg.MaxTokens, err)
	}
	for _, raw := range []string{``, `null`, `{"infuse":null}`} {
		if cfg, err := parseSettings(base, []byte(raw)); err != nil || cfg.Timeout != base.Timeout {
			t.Errorf("parseSettings(%q) = %v", raw, err)
		}
	}
}

func TestTypeThroughCache(t *testing.T) {
	c := newTypeThrough()
	c.add(0, goURI, "x := ", "\n}", "foo(bar)")
	cases := []struct {
		uri, before, after string
		want               string
		hit                bool
	}{
		{goURI, "x := ", "\n}", "foo(bar)", true}, // the same place
		{goURI, "x := fo", "\n}", "o(bar)", true}, // typed into it
		{goURI, "x := foo(bar", "\n}", ")", true},
		{goURI, "x := foo(bar)", "\n}", "", false},     // typed all of it
		{goURI, "x := fx", "\n}", "", false},           // typed something else
		{goURI, "y := fo", "\n}", "", false},           // the text before changed
		{goURI, "x := fo", "\n}\n", "", false},         // the text after changed
		{"file:///other", "x := fo", "\n}", "", false}, // another document
	}
	for _, tc := range cases {
		got, ok := c.lookup(uri.URI(tc.uri), tc.before, tc.after)
		if ok != tc.hit || got != tc.want {
			t.Errorf("lookup(%q|%q) = %q, %v; want %q, %v", tc.before, tc.after, got, ok, tc.want, tc.hit)
		}
	}
	// The newest suggestion wins; forgetting a document drops its entries.
	c.add(0, goURI, "x := ", "\n}", "fizz")
	if got, _ := c.lookup(goURI, "x := f", "\n}"); got != "izz" {
		t.Errorf("newest: %q", got)
	}
	c.forget(goURI)
	if _, ok := c.lookup(goURI, "x := f", "\n}"); ok {
		t.Error("hit after forget")
	}
	// The ring keeps the last cacheSize suggestions.
	for i := range cacheSize + 1 {
		c.add(0, goURI, strings.Repeat("a", i), "", "z")
	}
	if _, ok := c.lookup(goURI, "", ""); ok {
		t.Error("the oldest entry should have been evicted")
	}
	if _, ok := c.lookup(goURI, strings.Repeat("a", cacheSize), ""); !ok {
		t.Error("the newest entry is missing")
	}
	// A suggestion computed before a clear is not kept.
	epoch := c.epochNow()
	c.clear()
	c.add(epoch, goURI, "", "", "stale")
	if _, ok := c.lookup(goURI, "", ""); ok {
		t.Error("a suggestion from before the clear was kept")
	}
}
