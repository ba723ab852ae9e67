package lsp

// This file is the one place where positions change form. Two forms exist:
//
//	offset    int                0-based byte offset into the document's UTF-8 text
//	Position  protocol.Position  0-based line, 0-based character counted in the
//	                             session's Encoding units (UTF-16 unless the
//	                             client offered UTF-8 or UTF-32 at initialize)
//
// A line ends at "\n", "\r\n" or "\r" (LSP 3.17, "Text Documents"); the
// terminator belongs to no column. Conversions never fail: the specification
// says a character past the end of its line means the end of that line, and
// this package also reads a line past the last one as the end of the text and
// a character that falls inside a multi-unit character (the second half of a
// surrogate pair, the middle of a UTF-8 sequence) as that character's start.
// An invalid UTF-8 byte counts as one character of one unit in every encoding.

import (
	"fmt"
	"sort"
	"sync"
	"unicode/utf8"

	"go.lsp.dev/protocol"
)

// Encoding is the unit in which a Position's character offset is counted.
type Encoding uint8

const (
	UTF16 Encoding = iota // UTF-16 code units: the LSP default
	UTF8                  // bytes
	UTF32                 // Unicode code points
)

func (e Encoding) String() string {
	switch e {
	case UTF8:
		return string(protocol.PositionEncodingKindUTF8)
	case UTF32:
		return string(protocol.PositionEncodingKindUTF32)
	}
	return string(protocol.PositionEncodingKindUTF16)
}

// Kind is the encoding's name on the wire.
func (e Encoding) Kind() protocol.PositionEncodingKind {
	return protocol.PositionEncodingKind(e.String())
}

// negotiateEncoding picks the first encoding in the client's list of
// preferences that this server supports; a client that lists none gets UTF-16,
// which every client must support.
func negotiateEncoding(offered []protocol.PositionEncodingKind) Encoding {
	for _, k := range offered {
		switch k {
		case protocol.PositionEncodingKindUTF16:
			return UTF16
		case protocol.PositionEncodingKindUTF8:
			return UTF8
		case protocol.PositionEncodingKindUTF32:
			return UTF32
		}
	}
	return UTF16
}

// units is how many units of e the character r, stored in size bytes, takes.
func (e Encoding) units(r rune, size int) int {
	switch e {
	case UTF8:
		return size
	case UTF16:
		if size == 4 { // a code point above U+FFFF: a surrogate pair
			return 2
		}
	}
	return 1
}

// A Mapper converts between byte offsets and Positions over one immutable
// text. Its line table is built on first use.
type Mapper struct {
	text string

	once       sync.Once
	lineStarts []int // byte offset at which each line begins; lineStarts[0] == 0
	ascii      bool  // no byte >= 0x80: every encoding counts bytes
}

// NewMapper returns a Mapper for text.
func NewMapper(text string) *Mapper { return &Mapper{text: text} }

func (m *Mapper) init() {
	m.once.Do(func() {
		m.ascii = true
		m.lineStarts = make([]int, 1, 1+len(m.text)/32)
		for i := 0; i < len(m.text); i++ {
			switch c := m.text[i]; {
			case c == '\n':
				m.lineStarts = append(m.lineStarts, i+1)
			case c == '\r':
				if i+1 < len(m.text) && m.text[i+1] == '\n' {
					i++
				}
				m.lineStarts = append(m.lineStarts, i+1)
			case c >= utf8.RuneSelf:
				m.ascii = false
			}
		}
	})
}

// Lines is the number of lines; a text ending in a terminator has an empty
// last line after it.
func (m *Mapper) Lines() int {
	m.init()
	return len(m.lineStarts)
}

// lineBounds returns the byte offsets of the start of line i and of the end of
// its content (where its terminator, if any, begins).
func (m *Mapper) lineBounds(i int) (start, end int) {
	start = m.lineStarts[i]
	if i+1 == len(m.lineStarts) {
		return start, len(m.text)
	}
	end = m.lineStarts[i+1] - 1 // the last terminator byte
	if m.text[end] == '\n' && end > start && m.text[end-1] == '\r' {
		end--
	}
	return start, end
}

// PositionOffset converts p to a byte offset, clamping as the file comment
// says.
func (m *Mapper) PositionOffset(p protocol.Position, enc Encoding) int {
	m.init()
	if int64(p.Line) >= int64(len(m.lineStarts)) {
		return len(m.text)
	}
	start, end := m.lineBounds(int(p.Line))
	col := int(p.Character)
	if m.ascii {
		return min(start+col, end)
	}
	return start + columnOffset(m.text[start:end], col, enc)
}

// columnOffset returns the byte offset within line of the character at column
// col, counted in enc units.
func columnOffset(line string, col int, enc Encoding) int {
	units := 0
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRuneInString(line[i:])
		u := enc.units(r, size)
		if units+u > col {
			return i // col is at or inside this character
		}
		units += u
		i += size
	}
	return len(line)
}

// OffsetPosition converts a byte offset to a Position. An offset beyond the
// text means its end; one inside a line terminator means the end of that
// line's content; one inside a character means that character's start.
func (m *Mapper) OffsetPosition(offset int, enc Encoding) protocol.Position {
	m.init()
	offset = max(0, min(offset, len(m.text)))
	line := sort.SearchInts(m.lineStarts, offset+1) - 1
	start, end := m.lineBounds(line)
	offset = min(offset, end)
	if m.ascii {
		return protocol.Position{Line: uint32(line), Character: uint32(offset - start)}
	}
	units := 0
	for i := start; i < offset; {
		r, size := utf8.DecodeRuneInString(m.text[i:end])
		if i+size > offset {
			break // offset is inside this character
		}
		units += enc.units(r, size)
		i += size
	}
	return protocol.Position{Line: uint32(line), Character: uint32(units)}
}

// RangeOffsets converts r to a pair of byte offsets. A range whose end comes
// before its start is an error; the offsets returned with it are both the
// start, so a careless caller still gets an empty range, never a panic.
func (m *Mapper) RangeOffsets(r protocol.Range, enc Encoding) (start, end int, err error) {
	start = m.PositionOffset(r.Start, enc)
	end = m.PositionOffset(r.End, enc)
	if end < start {
		return start, start, fmt.Errorf("range %d:%d-%d:%d ends before it starts",
			r.Start.Line, r.Start.Character, r.End.Line, r.End.Character)
	}
	return start, end, nil
}

// OffsetsRange converts a pair of byte offsets to a Range.
func (m *Mapper) OffsetsRange(start, end int, enc Encoding) protocol.Range {
	return protocol.Range{Start: m.OffsetPosition(start, enc), End: m.OffsetPosition(end, enc)}
}
