package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// slowFiles writes the golden tokenizer as a slow (Python) tokenizer ships
// it: vocab.json, merges.txt, added_tokens.json and tokenizer_config.json.
func slowFiles(t *testing.T, base []byte, class string) fstest.MapFS {
	t.Helper()
	var f struct {
		AddedTokens []map[string]any `json:"added_tokens"`
		Model       struct {
			Vocab  map[string]int32 `json:"vocab"`
			Merges [][2]string      `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(base, &f); err != nil {
		t.Fatal(err)
	}
	var merges strings.Builder
	merges.WriteString("#version: 0.2\n")
	for _, m := range f.Model.Merges {
		fmt.Fprintf(&merges, "%s %s\n", m[0], m[1])
	}
	decoder := map[string]any{}
	addedIDs := map[string]int{}
	for _, a := range f.AddedTokens {
		id := int(a["id"].(float64))
		decoder[strconv.Itoa(id)] = a
		addedIDs[a["content"].(string)] = id
	}
	config := map[string]any{
		"tokenizer_class":      class,
		"added_tokens_decoder": decoder,
		"eos_token":            "<|endoftext|>",
		"pad_token":            map[string]any{"content": "<|endoftext|>", "special": true},
		"bos_token":            nil,
	}
	mustJSON := func(v any) *fstest.MapFile {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return &fstest.MapFile{Data: b}
	}
	return fstest.MapFS{
		"vocab.json":            mustJSON(f.Model.Vocab),
		"merges.txt":            &fstest.MapFile{Data: []byte(merges.String())},
		"added_tokens.json":     mustJSON(addedIDs),
		"tokenizer_config.json": mustJSON(config),
	}
}

// TestSlowFiles checks that vocab.json + merges.txt + configs give the same
// ids as the tokenizer.json they were written from.
func TestSlowFiles(t *testing.T) {
	g := loadGolden(t)
	for _, tc := range []struct{ class, variant string }{
		{"Qwen2TokenizerFast", ""},
		{"GPT2Tokenizer", "gpt2"},
	} {
		t.Run(tc.class, func(t *testing.T) {
			tk, err := LoadFS(slowFiles(t, qwenJSON(t), tc.class))
			if err != nil {
				t.Fatal(err)
			}
			ref := qwen(t)
			if tk.VocabSize() != ref.VocabSize() {
				t.Errorf("VocabSize = %d, want %d", tk.VocabSize(), ref.VocabSize())
			}
			for id := range int32(ref.VocabSize()) {
				if tk.IsSpecial(id) != ref.IsSpecial(id) || string(tk.TokenBytes(id)) != string(ref.TokenBytes(id)) {
					t.Fatalf("token %d: special %v bytes %q, want %v %q", id,
						tk.IsSpecial(id), tk.TokenBytes(id), ref.IsSpecial(id), ref.TokenBytes(id))
				}
			}
			ids := 0
			for _, r := range g.records[tc.variant] {
				if d := diffIDs(tk, tk.Encode(r.Text), r.IDs); d != "" {
					t.Fatalf("%s %q: %s", r.Kind, r.Name, d)
				}
				ids += len(r.IDs)
			}
			t.Logf("%d texts, %d ids identical", len(g.records[tc.variant]), ids)
		})
	}
}

func TestLoadFSPrefersTokenizerJSON(t *testing.T) {
	fsys := slowFiles(t, qwenJSON(t), "GPT2Tokenizer")
	fsys["tokenizer.json"] = &fstest.MapFile{Data: qwenJSON(t)}
	tk, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	// The GPT-2 files would not normalize; tokenizer.json (Qwen2) does.
	if got, want := tk.Decode(tk.Encode("cafe\u0301")), "caf\u00e9"; got != want {
		t.Errorf("Decode(Encode) = %q, want %q: tokenizer.json was not used", got, want)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, qwenJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	tk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tk.ID("<|fim_middle|>"); !ok || id != 151660 {
		t.Errorf("ID(<|fim_middle|>) = %d, %v", id, ok)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

// tinyJSON is a tokenizer.json shaped like Qwen2's with a vocabulary of
// the 256 bytes and "ab".
func tinyJSON(t *testing.T) []byte {
	vocab := map[string]int{"ab": 256}
	for b := range 256 {
		vocab[string(byteToRune[b])] = b
	}
	doc := map[string]any{
		"added_tokens": []any{map[string]any{"id": 257, "content": "<|endoftext|>", "special": true}},
		"normalizer":   map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwen2Pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		}},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": [][2]string{{"a", "b"}}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTiny(t *testing.T) {
	tk, err := FromJSON(tinyJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tk.Encode("abc ab<|endoftext|>"), []int32{256, 'c', ' ', 256, 257}; !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
}

// TestBadInput feeds broken files: each must give an error naming the
// problem, never a panic.
func TestBadInput(t *testing.T) {
	patched := func(patch string) []byte {
		b, err := patchJSON(tinyJSON(t), json.RawMessage(patch))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const tinyModel = `{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}`
	tiny := func(model string) []byte {
		return []byte(`{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"model":` + model + `}`)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not json", []byte("{"), "parse tokenizer.json"},
		{"no model", []byte(`{}`), "no model"},
		{"wordpiece", patched(`{"model":{"type":"WordPiece"}}`), `model type "WordPiece"`},
		{"byte fallback", patched(`{"model":{"byte_fallback":true}}`), "byte_fallback"},
		{"dropout", patched(`{"model":{"dropout":0.1}}`), "dropout"},
		{"subword prefix", patched(`{"model":{"continuing_subword_prefix":"##"}}`), "continuing_subword_prefix"},
		{"unknown normalizer", patched(`{"normalizer":{"type":"Lowercase"}}`), `normalizer "Lowercase"`},
		{"unknown regex", patched(`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","use_regex":false}]}}`), `regex "\\w+"`},
		{"removed behavior", patched(`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` + strconv.Quote(qwen2Pattern) + `},"behavior":"Removed","invert":false},{"type":"ByteLevel","use_regex":false}]}}`), "behavior"},
		{"metaspace", patched(`{"pre_tokenizer":{"type":"Metaspace"}}`), `"Metaspace"`},
		{"no pre-tokenizer", patched(`{"pre_tokenizer":null}`), "no pre_tokenizer"},
		{"no byte level", patched(`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[]}}`), "no ByteLevel"},
		{"bad decoder", patched(`{"decoder":{"type":"WordPiece"}}`), `decoder "WordPiece"`},
		{"merges garbage", patched(`{"model":{"merges":[1,2]}}`), "model.merges"},
		{"merge of three", tiny(`{"type":"BPE","vocab":{"a":0},"merges":["a b c"]}`), `"a b c"`},
		{"merge out of vocab", tiny(`{"type":"BPE","vocab":{"a":0},"merges":["a b"]}`), "not in the vocabulary"},
		{"negative id", tiny(`{"type":"BPE","vocab":{"a":-1},"merges":[]}`), "outside"},
		{"huge id", tiny(`{"type":"BPE","vocab":{"a":2000000000},"merges":[]}`), "outside"},
		{"empty vocab", tiny(`{"type":"BPE","vocab":{},"merges":[]}`), "vocabulary is empty"},
		{"unk missing", tiny(`{"type":"BPE","vocab":{"a":0},"merges":[],"unk_token":"<unk>"}`), "unk_token"},
		{"vocab not a map", tiny(`{"type":"BPE","vocab":[1],"merges":[]}`), "parse"},
		{"tiny is fine", tiny(tinyModel), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromJSON(tc.data)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want one mentioning %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}

	slow := func(files map[string]string) fstest.MapFS {
		fsys := fstest.MapFS{}
		for k, v := range files {
			fsys[k] = &fstest.MapFile{Data: []byte(v)}
		}
		return fsys
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"empty dir", nil, "vocab.json"},
		{"no merges", map[string]string{"vocab.json": `{"a":0}`}, "merges.txt"},
		{"bad vocab", map[string]string{"vocab.json": `[`, "merges.txt": ""}, "vocab.json"},
		{"bad merges", map[string]string{"vocab.json": `{"a":0}`, "merges.txt": "#version: 0.2\na\n"}, "merges.txt line 2"},
		{"bad config", map[string]string{"vocab.json": `{"a":0}`, "merges.txt": "", "tokenizer_config.json": `{"eos_token": 5}`}, "tokenizer_config.json"},
		{"bad decoder key", map[string]string{"vocab.json": `{"a":0}`, "merges.txt": "", "tokenizer_config.json": `{"added_tokens_decoder": {"x": {"content": "<s>"}}}`}, `"x"`},
		{"bad added", map[string]string{"vocab.json": `{"a":0}`, "merges.txt": "", "added_tokens.json": `{"<s>": "x"}`}, "added_tokens.json"},
		{"bad tokenizer.json", map[string]string{"tokenizer.json": `{`}, "tokenizer.json"},
	} {
		t.Run("fs/"+tc.name, func(t *testing.T) {
			_, err := LoadFS(slow(tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
