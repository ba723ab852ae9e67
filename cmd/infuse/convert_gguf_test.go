package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/runtime"
	"github.com/infuse-lsp/infuse/runtime/gguf"
	"github.com/infuse-lsp/infuse/runtime/tokenizer"
)

const defaultModelDir = "../../models/default"

// TestConvertSingleFile converts the embedded default model to Q4_K and
// uses the one .gguf file, with no tokenizer.json beside it, for model
// info, tokenize and complete: the tokenizer comes from the file's
// metadata and must give the ids tokenizer.json gives.
func TestConvertSingleFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	var stdout, stderr bytes.Buffer
	ctx := context.Background()
	if code := run(ctx, []string{"convert", defaultModelDir, "--type", "q4_k", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "Q4_K×37") || stderr.Len() > 0 {
		t.Errorf("convert: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2",
		"general.file_type": uint32(14), "infuse.tokenizer.normalizer": "none", "tokenizer.ggml.mask_token_id": uint32(8191)} {
		if v, _ := f.Value(key); v != want {
			t.Errorf("%s = %v (%T), want %v", key, v, v, want)
		}
	}
	if v, _ := f.Value("tokenizer.ggml.tokens"); len(v.([]string)) != 8192 {
		t.Errorf("%d tokens, want 8192", len(v.([]string)))
	}
	f.Close()

	ref, err := tokenizer.Load(filepath.Join(defaultModelDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := loadModelTokenizer(out)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile("convert.go")
	for _, s := range []string{string(src), "x := <|mask|><|endoftext|> héllo"} {
		if !slices.Equal(tk.Encode(s), ref.Encode(s)) {
			t.Errorf("the file's tokenizer encodes %.40q differently from tokenizer.json", s)
		}
	}

	in := filepath.Join(t.TempDir(), "in")
	os.WriteFile(in, []byte("func main() {<|mask|>"), 0o644)
	stdout.Reset()
	if code := run(ctx, []string{"tokenize", "--model", out, "--in", in}, &stdout, &stderr); code != 0 {
		t.Fatalf("tokenize: exit %d: %s", code, stderr.String())
	}
	var want strings.Builder
	for i, id := range ref.Encode("func main() {<|mask|>") {
		if i > 0 {
			want.WriteByte(' ')
		}
		want.WriteString(strconv.Itoa(int(id)))
	}
	if got := strings.TrimSpace(stdout.String()); got != want.String() {
		t.Errorf("tokenize --model m.gguf printed %q, want %q", got, want.String())
	}

	stdout.Reset()
	if code := run(ctx, []string{"model", "info", out}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Q4_K×37") ||
		!strings.Contains(stdout.String(), "in the file: gpt2, pre-tokenizer qwen2, 8192 tokens") {
		t.Errorf("model info: exit %d: %s%s", code, stdout.String(), stderr.String())
	}

	code := filepath.Join(t.TempDir(), "a.go")
	os.WriteFile(code, []byte("package main\n\nfunc add(a, b int) int {\n\treturn \n}\n"), 0o644)
	stdout.Reset()
	if rc := run(ctx, []string{"complete", "--model", out, "--mode", "single-line", code + ":4:9"}, &stdout, &stderr); rc != 0 {
		t.Errorf("complete --model m.gguf: exit %d: %s", rc, stderr.String())
	}
}

// TestConvertNoTokenizer converts a checkpoint without tokenizer files: the
// file has no tokenizer, a warning says so, and a GGUF path then needs a
// tokenizer.json beside it.
func TestConvertNoTokenizer(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.gguf")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"convert", testModel, "--type", "q6_k", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "no tokenizer") {
		t.Errorf("stderr %q, want a warning about the tokenizer", stderr.String())
	}
	// Rows of 64 and 128 values are too short for Q6_K: all fall back to Q8_0.
	if !strings.Contains(stdout.String(), "F32×5 Q8_0×16") {
		t.Errorf("stdout %q", stdout.String())
	}
	if _, err := loadModelTokenizer(out); err == nil || !strings.Contains(err.Error(), "no tokenizer") {
		t.Errorf("tokenizer of a file without one: err = %v", err)
	}
	data, err := os.ReadFile(filepath.Join(defaultModelDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644)
	if _, err := loadModelTokenizer(out); err != nil {
		t.Errorf("with tokenizer.json beside the file: %v", err)
	}
	if _, err := runtime.LoadGGUFTokenizer(filepath.Join(dir, "none.gguf")); err == nil {
		t.Error("missing file accepted")
	}
}
