package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/infuse-lsp/infuse/runtime/gguf"
	"github.com/infuse-lsp/infuse/runtime/tokenizer"
)

// The tokenizer in a GGUF file, under llama.cpp's keys (gguf-py's
// Keys.Tokenizer). The ids of the special tokens (keyMask, keyBOS, ...)
// are the model's and are written with the rest of its metadata.
const (
	keyTokModel  = "tokenizer.ggml.model"
	keyTokPre    = "tokenizer.ggml.pre"
	keyTokTypes  = "tokenizer.ggml.token_type"
	keyTokMerges = "tokenizer.ggml.merges"
	// keyTokNormalizer records a Unicode normalizer that differs from the
	// Hugging Face default of the pre-tokenizer (NFC for qwen2): llama.cpp
	// has no such key and never normalizes, but the Hugging Face tokenizer
	// the model was trained with may. Readers that do not know it ignore it.
	keyTokNormalizer = "infuse.tokenizer.normalizer"
)

// HasGGUFTokenizer reports whether f carries a tokenizer.
func HasGGUFTokenizer(f *gguf.File) bool {
	_, ok := f.Value(keyTokens)
	return ok
}

// GGUFTokenizer builds the tokenizer of a GGUF file from its
// tokenizer.ggml.* metadata.
func GGUFTokenizer(f *gguf.File) (*tokenizer.Tokenizer, error) {
	if !HasGGUFTokenizer(f) {
		return nil, fmt.Errorf("no tokenizer in the file (no %s)", keyTokens)
	}
	md := ggufFields{f: f}
	v := tokenizer.GGUFVocab{Model: md.str(keyTokModel), Pre: md.str(keyTokPre), Normalizer: md.str(keyTokNormalizer)}
	var ok bool
	if v.Tokens, ok = md.value(keyTokens).([]string); !ok {
		md.fail(keyTokens, md.value(keyTokens), "an array of strings")
	}
	if md.has(keyTokTypes) {
		if v.Types, ok = md.value(keyTokTypes).([]int32); !ok {
			md.fail(keyTokTypes, md.value(keyTokTypes), "an array of int32")
		}
	}
	if md.has(keyTokMerges) {
		if v.Merges, ok = md.value(keyTokMerges).([]string); !ok {
			md.fail(keyTokMerges, md.value(keyTokMerges), "an array of strings")
		}
	}
	if md.err != nil {
		return nil, md.err
	}
	return tokenizer.FromGGUF(v)
}

// LoadGGUFTokenizer reads the tokenizer of the GGUF file at path.
func LoadGGUFTokenizer(path string) (*tokenizer.Tokenizer, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer of %s: %w", path, err)
	}
	defer f.Close()
	t, err := GGUFTokenizer(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer of %s: %w", path, err)
	}
	return t, nil
}

// GGUFTokenizerMetadata is the tokenizer of the model directory dir as
// llama.cpp's converter writes it for Dream and Qwen2 (model gpt2, the
// pre-tokenizer's name, tokens, token types and merges), for a model of
// vocab ids. It fails with an error wrapping fs.ErrNotExist when dir has
// no tokenizer files.
func GGUFTokenizerMetadata(dir string, vocab int) ([]gguf.KV, error) {
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, "vocab.json")); err2 != nil {
			return nil, err
		}
	}
	t, err := tokenizer.LoadFS(os.DirFS(dir))
	if err != nil {
		return nil, err
	}
	v, err := t.GGUFVocab(vocab)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if v.Model == "" || v.Pre == "" {
		return nil, errors.New("tokenizer: no model or pre-tokenizer name")
	}
	md := []gguf.KV{
		{Key: keyTokModel, Value: v.Model},
		{Key: keyTokPre, Value: v.Pre},
		{Key: keyTokens, Value: v.Tokens},
		{Key: keyTokTypes, Value: v.Types},
		{Key: keyTokMerges, Value: v.Merges},
	}
	if v.Normalizer != "" {
		md = append(md, gguf.KV{Key: keyTokNormalizer, Value: v.Normalizer})
	}
	return md, nil
}
