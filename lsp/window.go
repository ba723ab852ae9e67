package lsp

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/infuse-lsp/infuse/infill"
)

// This file decides what the model sees around the cursor and how much it
// may write there.

// prefixWindow returns the last n characters of before (all of it when n is
// 0 or before is shorter). When the cut falls inside a line, the window starts
// at the next line instead, if that keeps at least half of it: a model reads a
// whole first line better than the tail of one.
func prefixWindow(before string, n int) string {
	if n <= 0 || len(before) <= n { // a byte count bounds the character count
		return before
	}
	i := len(before)
	for k := 0; k < n && i > 0; k++ {
		_, size := utf8.DecodeLastRuneInString(before[:i])
		i -= size
	}
	if i == 0 {
		return before
	}
	w := before[i:]
	if j := strings.IndexAny(w, "\r\n"); j >= 0 && j < len(w)/2 {
		j++
		if w[j-1] == '\r' && j < len(w) && w[j] == '\n' {
			j++
		}
		w = w[j:]
	}
	return w
}

// suffixWindow returns the first n characters of after, ending at a line end
// when that keeps at least half of it.
func suffixWindow(after string, n int) string {
	if n <= 0 || len(after) <= n {
		return after
	}
	i := 0
	for k := 0; k < n && i < len(after); k++ {
		_, size := utf8.DecodeRuneInString(after[i:])
		i += size
	}
	w := after[:i]
	if j := strings.LastIndexAny(w, "\r\n"); j >= len(w)/2 {
		w = w[:j]
		w = strings.TrimSuffix(w, "\r")
	}
	return w
}

// lineAround returns the text of the cursor's line before and after it.
func lineAround(before, after string) (head, tail string) {
	head = before[strings.LastIndexAny(before, "\r\n")+1:]
	if j := strings.IndexAny(after, "\r\n"); j >= 0 {
		tail = after[:j]
	} else {
		tail = after
	}
	return head, tail
}

// decideMode picks single- or multi-line for a completion between before and
// after when the configuration leaves it to the server:
//
//   - text after the cursor on its line: single-line (a completion there
//     finishes the line; a block would push the rest of the line down);
//   - an empty line (only indentation before the cursor): multi-line, the
//     user is about to write a statement or a block;
//   - the end of a line that opens a block (ends in "{", "(", "[", ":",
//     "=>", or the keyword do/then/else): multi-line, the body comes next;
//   - otherwise, the end of a line: single-line.
func decideMode(before, after string, configured infill.Mode) infill.Mode {
	if configured != infill.Auto {
		return configured
	}
	head, tail := lineAround(before, after)
	if strings.TrimSpace(tail) != "" {
		return infill.SingleLine
	}
	head = strings.TrimRightFunc(head, unicode.IsSpace)
	if strings.TrimSpace(head) == "" || opensBlock(head) {
		return infill.MultiLine
	}
	return infill.SingleLine
}

func opensBlock(line string) bool {
	switch line[len(line)-1] {
	case '{', '(', '[', ':':
		return true
	}
	if strings.HasSuffix(line, "=>") {
		return true
	}
	for _, kw := range []string{"do", "then", "else"} {
		if rest, ok := strings.CutSuffix(line, kw); ok && (rest == "" || !isWordByte(rest[len(rest)-1])) {
			return true
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf
}

// shape trims what the completer returned to what mode allows: a
// single-line completion stops at its first line end; a multi-line one loses
// trailing blank space (the text after the cursor already has its own line
// breaks).
func shape(text string, mode infill.Mode) string {
	if mode == infill.SingleLine {
		if j := strings.IndexAny(text, "\r\n"); j >= 0 {
			text = text[:j]
		}
		return text
	}
	return strings.TrimRightFunc(text, unicode.IsSpace)
}

// wordStart returns the offset where the identifier ending at offset begins
// (offset itself when none does). Classic completion replaces that word, so
// that the client's filtering, which matches the typed word against the item,
// keeps the item.
func wordStart(text string, offset int) int {
	i := offset
	for i > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:i])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		i -= size
	}
	return i
}
