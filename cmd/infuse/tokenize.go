package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/infuse-lsp/infuse/runtime"
	"github.com/infuse-lsp/infuse/runtime/tokenizer"
)

func init() {
	register("tokenize", "stdin text → token ids, or ids → text with --decode", runTokenize)
}

func runTokenize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", stderr)
	tokPath := fs.String("tokenizer", "", "`FILE`: a tokenizer.json, a model directory or a GGUF file")
	model := fs.String("model", "", "model `DIR` (or GGUF file) whose tokenizer to use (same as --tokenizer DIR)")
	decode := fs.Bool("decode", false, "read token ids (separated by spaces, newlines or commas) and print their text")
	ordinary := fs.Bool("ordinary", false, "do not match added and special tokens written in the text")
	in := fs.String("in", "", "read `FILE` instead of stdin")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	path := *tokPath
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case path != "" && *model != "":
		return usageErr("give either --tokenizer or --model, not both")
	case path == "":
		path = *model
	}
	if path == "" {
		return usageErr("--tokenizer FILE is required (there is no embedded model yet)")
	}
	if *decode && *ordinary {
		return usageErr("--ordinary applies to encoding, not to --decode")
	}

	tok, err := loadTokenizer(path)
	if err != nil {
		return err
	}
	var r io.Reader = os.Stdin
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	input, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read input: %w", err)
	}

	w := bufio.NewWriter(stdout)
	if *decode {
		ids, err := readIDs(string(input), tok.VocabSize())
		if err != nil {
			return err
		}
		w.WriteString(tok.Decode(ids))
		return w.Flush()
	}
	encode := tok.Encode
	if *ordinary {
		encode = tok.EncodeOrdinary
	}
	var buf []byte
	for i, id := range encode(string(input)) {
		if i > 0 {
			buf = append(buf, ' ')
		}
		buf = strconv.AppendInt(buf, int64(id), 10)
	}
	buf = append(buf, '\n')
	w.Write(buf)
	return w.Flush()
}

// loadTokenizer reads a tokenizer.json, the tokenizer of a model
// directory, or that of a GGUF file as the engine would load it.
func loadTokenizer(path string) (*tokenizer.Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if !st.IsDir() {
		if runtime.IsGGUF(path) {
			return loadModelTokenizer(path)
		}
		return tokenizer.Load(path)
	}
	tok, err := tokenizer.LoadFS(os.DirFS(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tok, nil
}

// readIDs parses token ids separated by whitespace or commas.
func readIDs(s string, vocab int) ([]int32, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	ids := make([]int32, len(fields))
	for i, f := range fields {
		id, err := strconv.ParseInt(f, 10, 32)
		if err != nil || id < 0 || id >= int64(vocab) {
			return nil, fmt.Errorf("input: %q is not a token id (0 to %d)", f, vocab-1)
		}
		ids[i] = int32(id)
	}
	return ids, nil
}
