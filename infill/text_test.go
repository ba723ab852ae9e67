package infill

import "testing"

func TestDecideMode(t *testing.T) {
	cases := []struct {
		prefix, suffix string
		want           Mode
	}{
		{"x := foo(", ")\n", SingleLine},         // text after the cursor
		{"x := fo", "\n", SingleLine},            // inside a line
		{"func f() {\n", "\n}\n", MultiLine},     // an empty line in a block
		{"func f() {", "\n}\n", MultiLine},       // the line opens a block
		{"def f(x):", "\n", MultiLine},           // Python block
		{"\tif x {\n\t\t", "\n\t}\n", MultiLine}, // indentation only
		{"return a +", "\nnext()", SingleLine},   // an expression
		{"", "", MultiLine},                      // an empty file
		{"x = [", "]", SingleLine},               // closing bracket after the cursor
		{"a\r\nb = 1\r\n", "\r\nc", MultiLine},   // CRLF, empty line
	}
	for _, c := range cases {
		if got := decideMode(c.prefix, c.suffix); got != c.want {
			t.Errorf("decideMode(%q, %q) = %v, want %v", c.prefix, c.suffix, got, c.want)
		}
	}
}

func TestFinish(t *testing.T) {
	cases := []struct {
		middle, suffix string
		single         bool
		want           string
	}{
		{"foo(x)\nbar()", "\n", true, "foo(x)"},                    // a single line ends at its newline
		{"foo(x))", ")\n", true, "foo(x)"},                         // the suffix's closing text is not repeated
		{"x + 1  ", "\nnext", true, "x + 1"},                       // trailing spaces before a newline
		{"len(a)", "", true, "len(a)"},                             // end of file
		{"a", "a\n", true, ""},                                     // the whole rest of the line repeated
		{"b", "a\n", true, "b"},                                    // no repeat
		{"self.items", "self.items.pop()\n", true, ""},             // the start of the rest of the line repeated
		{" x ", "x + 1\n", true, ""},                               // likewise, blanks aside
		{"y", "yes()\n", true, ""},                                 // even a word's start: "yyes()"
		{"x, ", "y)\n", true, "x, "},                               // text before the rest, kept
		{"\treturn x\n}", "\n}\n", false, "\treturn x"},            // a closing brace already there
		{"\tx++\n\ty++\n", "\ty++\n}\n", false, "\tx++\n"},         // the next statement already there
		{"\treturn x\n", "\n\nfunc g() {}\n", false, "\treturn x"}, // nothing repeated; trailing newline trimmed
		{"ok", "\xff\n", true, "ok"},                               // invalid UTF-8 in the suffix
		{"a\xffb", "\n", true, "ab"},                               // invalid UTF-8 in the middle
	}
	for _, c := range cases {
		if got := finish(c.middle, c.suffix, c.single); got != c.want {
			t.Errorf("finish(%q, %q, %v) = %q, want %q", c.middle, c.suffix, c.single, got, c.want)
		}
	}
}
