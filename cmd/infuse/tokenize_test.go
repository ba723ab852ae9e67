package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// qwenTokenizerDir writes the Qwen tokenizer.json of the tokenizer's test
// data into a model directory.
func qwenTokenizerDir(t *testing.T) string {
	t.Helper()
	f, err := os.Open("../../runtime/tokenizer/testdata/qwen3_tokenizer.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTokenizeCommand(t *testing.T) {
	dir := qwenTokenizerDir(t)
	file := filepath.Join(dir, "tokenizer.json")
	input := func(s string) string {
		p := filepath.Join(t.TempDir(), "in")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tokenizer", file, "--in", input("hello world<|endoftext|>")}, "14990 1879 151643\n"},
		{[]string{"--tokenizer", dir, "--in", input("hello world<|endoftext|>")}, "14990 1879 151643\n"},
		{[]string{"--model", dir, "--ordinary", "--in", input("<|endoftext|>")}, "27 91 8691 723 427 91 29\n"},
		{[]string{"--tokenizer", file, "--in", input("")}, "\n"},
		{[]string{"--tokenizer", file, "--decode", "--in", input("14990 1879\n151643, 198")}, "hello world<|endoftext|>\n"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"tokenize"}, tc.args...), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr.String())
		}
		if stdout.String() != tc.want {
			t.Errorf("%v: printed %q, want %q", tc.args, stdout.String(), tc.want)
		}
	}
}

func TestTokenizeErrors(t *testing.T) {
	dir := qwenTokenizerDir(t)
	bad := filepath.Join(t.TempDir(), "ids")
	if err := os.WriteFile(bad, []byte("1 2 x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tokenize"}, 2, "--tokenizer FILE is required"},
		{[]string{"tokenize", "--tokenizer", dir, "--model", dir}, 2, "not both"},
		{[]string{"tokenize", "--tokenizer", dir, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"tokenize", "--tokenizer", dir, "--decode", "--ordinary"}, 2, "--ordinary"},
		{[]string{"tokenize", "--tokenizer", filepath.Join(dir, "missing.json")}, 1, "no such file"},
		{[]string{"tokenize", "--tokenizer", t.TempDir()}, 1, "vocab.json"},
		{[]string{"tokenize", "--tokenizer", dir, "--decode", "--in", bad}, 1, `"x" is not a token id`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
