package main

import (
	"strings"
	"testing"
)

func TestParseLocation(t *testing.T) {
	for _, c := range []struct {
		in        string
		path      string
		line, col int
		bad       bool
	}{
		{in: "a.go:3:5", path: "a.go", line: 3, col: 5},
		{in: "C:/x/a.go:1:1", path: "C:/x/a.go", line: 1, col: 1},
		{in: "a.go:3", bad: true},
		{in: "a.go:0:1", bad: true},
		{in: "a.go:x:1", bad: true},
		{in: ":1:1", bad: true},
	} {
		path, line, col, err := parseLocation(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("parseLocation(%q) succeeded, want an error", c.in)
			}
			continue
		}
		if err != nil || path != c.path || line != c.line || col != c.col {
			t.Errorf("parseLocation(%q) = %q %d %d %v", c.in, path, line, col, err)
		}
	}
}

func TestByteOffset(t *testing.T) {
	text := "ab\r\nπé𝔸x\n\nend"
	for _, c := range []struct {
		line, col, want int
		err             string
	}{
		{line: 1, col: 1, want: 0},
		{line: 1, col: 3, want: 2},         // end of line, before \r\n
		{line: 2, col: 3, want: 4 + 2 + 2}, // after π and é
		{line: 2, col: 4, want: 4 + 4 + 4}, // after the astral 𝔸
		{line: 3, col: 1, want: 4 + 4 + 4 + 2},
		{line: 4, col: 4, want: len(text)},
		{line: 1, col: 4, err: "past the end of line 1"},
		{line: 9, col: 1, err: "line 9 is past the end"},
	} {
		got, err := byteOffset(text, c.line, c.col)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("byteOffset(%d,%d) error %v, want %q", c.line, c.col, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("byteOffset(%d,%d) = %d, %v; want %d", c.line, c.col, got, err, c.want)
		}
	}
}
