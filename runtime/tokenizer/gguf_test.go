package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// viaGGUF writes tk as GGUF tokenizer metadata and builds a tokenizer back
// from it, as a GGUF file would carry it.
func viaGGUF(t *testing.T, tk *Tokenizer, size int) (*GGUFVocab, *Tokenizer) {
	t.Helper()
	v, err := tk.GGUFVocab(size)
	if err != nil {
		t.Fatal(err)
	}
	// Copy the arrays, so that nothing the builder keeps aliases the export.
	back, err := FromGGUF(GGUFVocab{Model: v.Model, Pre: v.Pre, Tokens: slices.Clone(v.Tokens),
		Types: slices.Clone(v.Types), Merges: slices.Clone(v.Merges), Normalizer: v.Normalizer})
	if err != nil {
		t.Fatal(err)
	}
	return v, back
}

// sameTokenizer checks that b encodes the texts as a does, with and without
// added tokens, and agrees with it on every id's bytes and special flag.
func sameTokenizer(t *testing.T, a, b *Tokenizer, texts []string) {
	t.Helper()
	for _, s := range texts {
		if x, y := a.Encode(s), b.Encode(s); !slices.Equal(x, y) {
			t.Fatalf("Encode(%q):\n got %v\nwant %v", clip(s), y, x)
		}
		if x, y := a.EncodeOrdinary(s), b.EncodeOrdinary(s); !slices.Equal(x, y) {
			t.Fatalf("EncodeOrdinary(%q):\n got %v\nwant %v", clip(s), y, x)
		}
	}
	n := max(a.VocabSize(), b.VocabSize())
	for id := range int32(n) {
		if x, y := a.TokenBytes(id), b.TokenBytes(id); string(x) != string(y) || a.IsSpecial(id) != b.IsSpecial(id) {
			t.Fatalf("id %d: %q special %v, want %q special %v", id, y, b.IsSpecial(id), x, a.IsSpecial(id))
		}
	}
}

// TestGGUFDefaultModel round-trips the embedded default model's tokenizer
// (Qwen2 pipeline, no normalizer, three special tokens) through GGUF
// metadata and checks the ids on the golden texts and some code.
func TestGGUFDefaultModel(t *testing.T) {
	tk, err := Load(filepath.Join("..", "..", "models", "default", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, back := viaGGUF(t, tk, 8192)
	if v.Pre != "qwen2" || v.Normalizer != "none" || len(v.Tokens) != 8192 {
		t.Errorf("pre %q, normalizer %q, %d tokens", v.Pre, v.Normalizer, len(v.Tokens))
	}
	if v.Types[8191] != TokenControl || v.Tokens[8191] != "<|mask|>" || v.Types[0] != TokenNormal {
		t.Errorf("types: id 0 %d, id 8191 %q %d", v.Types[0], v.Tokens[8191], v.Types[8191])
	}
	texts := []string{"func main() {\n\tfmt.Println(\"héllo, 世界\")\n}\n<|mask|><|endoftext|>x", "e\u0301 café"}
	for _, r := range loadGolden(t).records[""] {
		texts = append(texts, r.Text)
	}
	src, _ := os.ReadFile("gguf.go")
	sameTokenizer(t, tk, back, append(texts, string(src)))
}

// TestGGUFGolden round-trips the golden data's Qwen tokenizer and its GPT-2
// and Llama 3 variants through GGUF metadata and checks the ids against
// Hugging Face's, as TestGolden does for tokenizer.json.
func TestGGUFGolden(t *testing.T) {
	g := loadGolden(t)
	for _, variant := range []string{"", "gpt2", "llama3", "ordinary"} {
		tk := variantTokenizer(t, g, variant)
		v, back := viaGGUF(t, tk, tk.VocabSize()+5)
		t.Logf("variant %q: pre %s, normalizer %q, %d tokens, %d merges", variant, v.Pre, v.Normalizer, len(v.Tokens), len(v.Merges))
		if v.Types[len(v.Types)-1] != TokenUnused || v.Tokens[len(v.Tokens)-1] != "[PAD"+strconv.Itoa(len(v.Tokens)-1)+"]" {
			t.Errorf("padding id: %q type %d", v.Tokens[len(v.Tokens)-1], v.Types[len(v.Types)-1])
		}
		for _, r := range g.records[variant] {
			if got := back.Encode(r.Text); !slices.Equal(got, r.IDs) {
				t.Fatalf("variant %q %s %q: ids differ from Hugging Face's:\n got %v\nwant %v", variant, r.Kind, r.Name, got, r.IDs)
			}
		}
		if t.Failed() {
			return
		}
	}
}

func TestGGUFErrors(t *testing.T) {
	ok := GGUFVocab{Model: "gpt2", Pre: "qwen2", Tokens: []string{"a", "b", "ab", "<|x|>"},
		Types: []int32{1, 1, 1, 3}, Merges: []string{"a b"}}
	if tk, err := FromGGUF(ok); err != nil {
		t.Fatal(err)
	} else if ids := tk.Encode("ab<|x|>ba"); !slices.Equal(ids, []int32{2, 3, 1, 0}) {
		t.Errorf("tiny: %v", ids)
	}
	for _, c := range []struct {
		name string
		edit func(v *GGUFVocab)
		want string
	}{
		{"model", func(v *GGUFVocab) { v.Model = "llama" }, `tokenizer.ggml.model "llama" is not supported`},
		{"pre", func(v *GGUFVocab) { v.Pre = "falcon" }, `tokenizer.ggml.pre "falcon" is not supported`},
		{"no pre", func(v *GGUFVocab) { v.Pre = "" }, `tokenizer.ggml.pre "" is not supported`},
		{"types", func(v *GGUFVocab) { v.Types = v.Types[:2] }, "2 entries for 4 tokens"},
		{"type", func(v *GGUFVocab) { v.Types = []int32{1, 1, 1, 6} }, "has type 6"},
		{"dup", func(v *GGUFVocab) { v.Tokens = []string{"a", "a", "ab", "<|x|>"} }, "both id 0 and id 1"},
		{"empty", func(v *GGUFVocab) { v.Tokens = []string{"a", "b", "", "<|x|>"} }, "token 2 is empty"},
		{"merge", func(v *GGUFVocab) { v.Merges = []string{"ab"} }, "not two tokens"},
		{"merge token", func(v *GGUFVocab) { v.Merges = []string{"a c"} }, "not in the vocabulary"},
		{"normalizer", func(v *GGUFVocab) { v.Normalizer = "NFX" }, `normalizer "NFX"`},
		{"empty vocab", func(v *GGUFVocab) { v.Tokens, v.Types, v.Merges = nil, nil, nil }, "empty"},
	} {
		v := ok
		c.edit(&v)
		_, err := FromGGUF(v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

// FuzzFromGGUF builds tokenizers from arbitrary GGUF arrays: bad input must
// give an error, never a panic, and a built tokenizer must encode.
func FuzzFromGGUF(f *testing.F) {
	f.Add("a\x00b\x00ab\x00<|x|>", []byte{1, 1, 1, 3}, "a b", "ab<|x|>ba", "qwen2")
	f.Add("\xff\x00Ġ\x00[PAD2]", []byte{1, 4, 4}, "Ġ \xff", "x y", "gpt-2")
	f.Fuzz(func(t *testing.T, tokens string, types []byte, merges, text, pre string) {
		v := GGUFVocab{Model: "gpt2", Pre: pre, Tokens: strings.Split(tokens, "\x00")}
		for _, b := range types {
			v.Types = append(v.Types, int32(b%8))
		}
		if merges != "" {
			v.Merges = strings.Split(merges, "\n")
		}
		tk, err := FromGGUF(v)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		tk.Decode(tk.Encode(text))
		tk.EncodeOrdinary(text)
	})
}
