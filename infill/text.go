package infill

import (
	"strings"
	"unicode/utf8"
)

// decideMode picks single- or multi-line from the cursor's surroundings:
// text after the cursor on its line means the user is inside a line; an
// empty line, or a line that opens a block, asks for a block.
func decideMode(prefix, suffix string) Mode {
	after, _, _ := strings.Cut(suffix, "\n")
	if strings.TrimSpace(after) != "" {
		return SingleLine
	}
	before := prefix[strings.LastIndexByte(prefix, '\n')+1:]
	trimmed := strings.TrimSpace(before)
	if trimmed == "" {
		return MultiLine
	}
	switch trimmed[len(trimmed)-1] {
	case '{', ':', '(', '[':
		return MultiLine
	}
	return SingleLine
}

// finish turns the decoded span into the text that goes between prefix and
// suffix: a single line ends at its newline, and text the suffix already
// holds is not repeated.
func finish(middle, suffix string, single bool) string {
	if !utf8.ValidString(middle) {
		middle = strings.ToValidUTF8(middle, "")
	}
	restOfLine, _, _ := strings.Cut(suffix, "\n")
	if single {
		middle, _, _ = strings.Cut(middle, "\n")
		rest := strings.TrimSpace(restOfLine)
		if rest == "" {
			return strings.TrimRight(middle, " \t")
		}
		// The model often writes the closing text that already follows the
		// cursor ("foo(x)" before ")"): drop the repeat.
		t := strings.TrimRight(middle, " \t")
		if strings.HasSuffix(t, rest) {
			return strings.TrimRight(t[:len(t)-len(rest)], " \t")
		}
		// Or only the start of it ("self.items" before "self.items.pop()"):
		// inserting that would write it twice.
		if t = strings.TrimSpace(t); t != "" && strings.HasPrefix(rest, t) {
			return ""
		}
		return middle
	}
	return trimRepeatedLines(middle, suffix)
}

// trimRepeatedLines drops the last lines of a multi-line middle when they
// repeat the first non-blank lines of the suffix (a closing brace the
// editor already has, the next statement).
func trimRepeatedLines(middle, suffix string) string {
	// The suffix brings its own line break: one more would leave a blank line.
	endsLine := strings.TrimSpace(suffix) == "" || strings.HasPrefix(suffix, "\n") || strings.HasPrefix(suffix, "\r\n")
	if endsLine {
		middle = strings.TrimRight(middle, " \t\r\n")
	}
	lines := strings.Split(middle, "\n")
	var next []string // the suffix's first non-blank lines, trimmed
	for _, l := range strings.Split(suffix, "\n") {
		if t := strings.TrimSpace(l); t != "" {
			next = append(next, t)
			if len(next) == 8 {
				break
			}
		}
	}
	if len(next) == 0 {
		return middle
	}
	// Find the longest k such that the middle's last k non-blank lines equal
	// the suffix's first k non-blank lines.
	var tail []int // indices of the middle's non-blank lines
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			tail = append(tail, i)
		}
	}
	for k := min(len(next), len(tail)); k >= 1; k-- {
		match := true
		for j := 0; j < k; j++ {
			if strings.TrimSpace(lines[tail[len(tail)-k+j]]) != next[j] {
				match = false
				break
			}
		}
		if match {
			cut := tail[len(tail)-k]
			kept := strings.Join(lines[:cut], "\n")
			if endsLine {
				return strings.TrimRight(kept, " \t\r\n")
			}
			if cut > 0 {
				kept += "\n" // the suffix starts a line of its own
			}
			return kept
		}
	}
	return middle
}
