package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/infuse-lsp/infuse/infill"
)

func init() {
	register("complete", "fill the code at FILE:LINE:COL (1-based) and print it", runComplete)
}

func runComplete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("complete", stderr)
	eo := addEngineFlags(fs)
	asJSON := fs.Bool("json", false, "print the middle and the figures as JSON")
	mode := fs.String("mode", "auto", "single-line, multi-line or auto")
	maxTokens := fs.Int("max-tokens", 0, "span length in tokens (default: by mode)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("want one FILE:LINE:COL argument")
	}
	m, ok := infill.ParseMode(*mode)
	if !ok {
		return usageErr("--mode %q: want single-line, multi-line or auto", *mode)
	}
	path, line, col, err := parseLocation(fs.Arg(0))
	if err != nil {
		return usageErr("%v", err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	off, err := byteOffset(string(text), line, col)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	eng, err := loadCompleter(ctx, *eo)
	if err != nil {
		return err
	}
	res, err := eng.Complete(ctx, infill.Request{
		Prefix: string(text[:off]), Suffix: string(text[off:]), Mode: m, MaxTokens: *maxTokens,
		Language: languageOf(path),
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	_, err = io.WriteString(stdout, res.Text+"\n")
	return err
}

// parseLocation splits FILE:LINE:COL from the right, so that FILE may hold colons.
func parseLocation(s string) (path string, line, col int, err error) {
	i := strings.LastIndexByte(s, ':')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(s[:i], ':')
	}
	if j <= 0 {
		return "", 0, 0, fmt.Errorf("%q: want FILE:LINE:COL", s)
	}
	line, err1 := strconv.Atoi(s[j+1 : i])
	col, err2 := strconv.Atoi(s[i+1:])
	if err1 != nil || err2 != nil || line < 1 || col < 1 {
		return "", 0, 0, fmt.Errorf("%q: LINE and COL must be positive integers (1-based)", s)
	}
	return s[:j], line, col, nil
}

// byteOffset maps a 1-based line and column (in characters) to a byte
// offset. Column len(line)+1 is the end of the line.
func byteOffset(text string, line, col int) (int, error) {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(text[off:], '\n')
		if i < 0 {
			return 0, fmt.Errorf("line %d is past the end of the file (%d lines)", line, l)
		}
		off += i + 1
	}
	lineText, _, _ := strings.Cut(text[off:], "\n")
	lineText = strings.TrimSuffix(lineText, "\r")
	n := utf8.RuneCountInString(lineText)
	if col > n+1 {
		return 0, fmt.Errorf("column %d is past the end of line %d (%d characters)", col, line, n)
	}
	for c := 1; c < col; c++ {
		_, size := utf8.DecodeRuneInString(text[off:])
		off += size
	}
	return off, nil
}

// languageOf guesses an LSP language id from a file name.
func languageOf(path string) string {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return ""
	}
	switch path[i+1:] {
	case "go":
		return "go"
	case "py":
		return "python"
	case "js", "mjs", "cjs":
		return "javascript"
	case "ts":
		return "typescript"
	case "rs":
		return "rust"
	case "c", "h":
		return "c"
	}
	return path[i+1:]
}
