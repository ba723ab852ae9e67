package lsp

import (
	"fmt"
	"testing"
	"unicode/utf8"

	"go.lsp.dev/protocol"
)

// The reference below computes positions the slow, obvious way: it lists
// every character boundary of the text with its line and column, then
// answers each question by searching that list. Mapper must agree with it
// on every position and offset, including those past the ends.

type refBound struct{ off, line, col int }

func refBounds(text string, enc Encoding) []refBound {
	var bs []refBound
	line, col := 0, 0
	for i := 0; i < len(text); {
		c := text[i]
		if c == '\n' || c == '\r' {
			bs = append(bs, refBound{i, line, col}) // the end of the line's content
			if c == '\r' && i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			i++
			line, col = line+1, 0
			continue
		}
		bs = append(bs, refBound{i, line, col})
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case enc == UTF8:
			col += size
		case enc == UTF16 && r > 0xFFFF:
			col += 2
		default:
			col++
		}
		i += size
	}
	return append(bs, refBound{len(text), line, col})
}

func refPositionOffset(bs []refBound, textLen int, p protocol.Position) int {
	best := -1
	for _, b := range bs {
		if b.line == int(p.Line) && b.col <= int(p.Character) {
			best = b.off
		}
	}
	if best < 0 {
		return textLen // a line past the last
	}
	return best
}

func refOffsetPosition(bs []refBound, off int) protocol.Position {
	b := bs[0]
	for _, c := range bs {
		if c.off <= off {
			b = c
		}
	}
	return protocol.Position{Line: uint32(b.line), Character: uint32(b.col)}
}

// checkMapper compares Mapper with the reference on every offset and on a
// grid of positions that reaches past each line's end and past the last line.
func checkMapper(t *testing.T, text string) {
	t.Helper()
	for _, enc := range []Encoding{UTF16, UTF8, UTF32} {
		m := NewMapper(text)
		bs := refBounds(text, enc)
		maxCol := 0
		for _, b := range bs {
			maxCol = max(maxCol, b.col)
		}
		lines := bs[len(bs)-1].line + 1
		if m.Lines() != lines {
			t.Fatalf("%s %q: Lines() = %d, want %d", enc, text, m.Lines(), lines)
		}
		for line := 0; line <= lines+1; line++ {
			for char := 0; char <= maxCol+2; char++ {
				p := protocol.Position{Line: uint32(line), Character: uint32(char)}
				if got, want := m.PositionOffset(p, enc), refPositionOffset(bs, len(text), p); got != want {
					t.Fatalf("%s %q: PositionOffset(%d:%d) = %d, want %d", enc, text, line, char, got, want)
				}
			}
		}
		for off := -1; off <= len(text)+1; off++ {
			got := m.OffsetPosition(off, enc)
			want := refOffsetPosition(bs, max(0, min(off, len(text))))
			if got != want {
				t.Fatalf("%s %q: OffsetPosition(%d) = %v, want %v", enc, text, off, got, want)
			}
		}
		// Every character boundary survives a round trip.
		for _, b := range bs {
			if got := m.PositionOffset(m.OffsetPosition(b.off, enc), enc); got != b.off {
				t.Fatalf("%s %q: round trip of offset %d gave %d", enc, text, b.off, got)
			}
		}
	}
}

var mapperTexts = []string{
	"",
	"a",
	"abc\ndef\n",
	"no final newline",
	"\n\n\n",
	"crlf\r\nline\r\n",
	"lone\rcr\rlines",
	"mixed\r\n\n\r\r\n",
	"𐐀 astral\n𐐀𐐀x",                    // 4 bytes, 2 UTF-16 units, 1 code point
	"e\u0301 combining\nn\u0303",       // a base letter and a combining mark: two characters
	"日本語\tタブ",                          // 3-byte characters
	"bad \xff utf8 \xe2\x82 cut\n\x80", // invalid bytes count one unit each
	"\r",
	"x\r\n𐐀\r",
}

func TestMapper(t *testing.T) {
	for _, text := range mapperTexts {
		checkMapper(t, text)
	}
}

func TestMapperTable(t *testing.T) {
	// A few answers spelled out, as the specification reads.
	const text = "a𐐀b\r\nxy"
	m := NewMapper(text)
	cases := []struct {
		enc        Encoding
		line, char uint32
		off        int
	}{
		{UTF16, 0, 0, 0},
		{UTF16, 0, 1, 1},  // before 𐐀
		{UTF16, 0, 2, 1},  // inside the surrogate pair: rounds down
		{UTF16, 0, 3, 5},  // after 𐐀
		{UTF16, 0, 4, 6},  // the end of line 0's content, before "\r\n"
		{UTF16, 0, 99, 6}, // past the line end: clamps to it
		{UTF16, 1, 1, 9},
		{UTF16, 7, 0, 10}, // past the last line: the end of the text
		{UTF8, 0, 3, 1},   // inside 𐐀's bytes
		{UTF8, 0, 5, 5},
		{UTF32, 0, 2, 5},
	}
	for _, tc := range cases {
		p := protocol.Position{Line: tc.line, Character: tc.char}
		if got := m.PositionOffset(p, tc.enc); got != tc.off {
			t.Errorf("%s PositionOffset(%d:%d) = %d, want %d", tc.enc, tc.line, tc.char, got, tc.off)
		}
	}
	if p := m.OffsetPosition(7, UTF16); p != (protocol.Position{Line: 0, Character: 4}) {
		t.Errorf("OffsetPosition between \\r and \\n = %v, want the end of line 0", p)
	}
	if _, _, err := m.RangeOffsets(protocol.Range{Start: protocol.Position{Line: 1}, End: protocol.Position{Line: 0}}, UTF16); err == nil {
		t.Error("RangeOffsets of a backwards range: no error")
	}
}

func FuzzMapper(f *testing.F) {
	for _, text := range mapperTexts {
		f.Add(text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 64 {
			t.Skip() // the reference is quadratic
		}
		checkMapper(t, text)
	})
}

func ExampleMapper() {
	m := NewMapper("x := \"𐐀\"\r\ny")
	p := m.OffsetPosition(10, UTF16) // the byte offset just after 𐐀
	fmt.Println(p.Line, p.Character, m.PositionOffset(p, UTF16))
	// Output: 0 8 10
}
