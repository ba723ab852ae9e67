package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/runtime/gguf"
)

// TestGGUFTokenizerErrors edits the tokenizer metadata of the llama.cpp
// layout file and checks each bad value gives a one-line error naming it.
func TestGGUFTokenizerErrors(t *testing.T) {
	data, err := os.ReadFile(llamacppDream + ".gguf")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func([]gguf.KV) []gguf.KV
		want string
	}{
		{"pre", func(md []gguf.KV) []gguf.KV { return setKV(md, keyTokPre, "falcon") }, `tokenizer.ggml.pre "falcon" is not supported`},
		{"model", func(md []gguf.KV) []gguf.KV { return setKV(md, keyTokModel, "llama") }, `tokenizer.ggml.model "llama" is not supported`},
		{"no model", func(md []gguf.KV) []gguf.KV { return dropKV(md, keyTokModel) }, `tokenizer.ggml.model "" is not supported`},
		{"tokens", func(md []gguf.KV) []gguf.KV { return setKV(md, keyTokens, []int32{1}) }, "want an array of strings"},
		{"types", func(md []gguf.KV) []gguf.KV { return setKV(md, keyTokTypes, []string{"x"}) }, "want an array of int32"},
		{"type count", func(md []gguf.KV) []gguf.KV { return setKV(md, keyTokTypes, []int32{1}) }, "1 entries for 300 tokens"},
		{"merges", func(md []gguf.KV) []gguf.KV { return setKV(md, keyTokMerges, []string{"Ġ q"}) }, "not in the vocabulary"},
		{"none", func(md []gguf.KV) []gguf.KV { return dropKV(md, keyTokens) }, "no tokenizer in the file"},
	} {
		path := filepath.Join(t.TempDir(), "d.gguf")
		os.WriteFile(path, data, 0o644)
		rewriteGGUF(t, path, func(md []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor) { return c.edit(md), ts })
		_, err := LoadGGUFTokenizer(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line mentioning %q", c.name, err, c.want)
		}
	}
	if _, err := LoadGGUFTokenizer(filepath.Join(t.TempDir(), "none.gguf")); err == nil {
		t.Error("missing file accepted")
	}
}
