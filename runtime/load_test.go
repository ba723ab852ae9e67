package runtime

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/infuse-lsp/infuse/runtime/safetensors"
)

func TestConfigs(t *testing.T) {
	tests := []struct {
		name                          string
		family                        Family
		shift, tied                   bool
		vocab, tokenVocab             int
		mask, eos, pad, bos, expand   int32
		hidden, inter, heads, kvHeads int
	}{
		{"dream-f32", Dream, true, false, 300, 300, 296, 297, 297, 295, 298, 64, 128, 4, 2},
		{"dream-bf16", Dream, true, false, 300, 300, 296, 297, 297, 295, -1, 64, 128, 4, 2},
		{"qwen2-tied", Qwen2, true, true, 300, 300, 299, 297, 297, 295, -1, 64, 128, 4, 2},
		{"llada-f32", LLaDA, false, false, 320, 300, 296, 297, 297, -1, -1, 64, 128, 4, 2},
	}
	for _, tc := range tests {
		c, err := LoadConfig(ckpt(tc.name))
		if err != nil {
			t.Fatal(err)
		}
		got := []any{c.Family, c.ShiftLogits, c.TiedHead, c.Vocab, c.TokenVocab, c.Mask, c.EOS, c.Pad, c.BOS, c.Expand, c.Hidden, c.Intermediate, c.Heads, c.KVHeads}
		want := []any{tc.family, tc.shift, tc.tied, tc.vocab, tc.tokenVocab, tc.mask, tc.eos, tc.pad, tc.bos, tc.expand, tc.hidden, tc.inter, tc.heads, tc.kvHeads}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: field %d = %v, want %v (config %+v)", tc.name, i, got[i], want[i], c)
				break
			}
		}
	}
}

// qwenConfig is a minimal qwen2 config.json, edited by the tests below.
func qwenConfig(edit func(map[string]any)) []byte {
	c := map[string]any{
		"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300,
	}
	if edit != nil {
		edit(c)
	}
	b, _ := json.Marshal(c)
	return b
}

// TestMaskFromTokenizer covers the three files a Qwen2 checkpoint's mask
// token can come from, and the precedence of tokenizer_config's mask_token.
func TestMaskFromTokenizer(t *testing.T) {
	tests := []struct {
		name  string
		files fstest.MapFS
		mask  int32
		pad   int32
	}{
		{"added_tokens.json", fstest.MapFS{"added_tokens.json": {Data: []byte(`{"<M>": 290}`)}}, 290, -1},
		{"tokenizer.json", fstest.MapFS{"tokenizer.json": {Data: []byte(
			`{"version":"1.0","added_tokens":[{"id":5,"content":"<|endoftext|>","special":true},{"id":291,"content":"<|mask|>","special":true}],"model":{"vocab":{"a":0}}}`)}}, 291, -1},
		{"tokenizer_config.json", fstest.MapFS{"tokenizer_config.json": {Data: []byte(
			`{"added_tokens_decoder":{"292":{"content":"<mask>","special":true},"7":{"content":"<pad>"}},"pad_token":"<pad>"}`)}}, 292, 7},
		{"mask_token named", fstest.MapFS{
			"added_tokens.json":     {Data: []byte(`{"<M>": 290, "<|fill|>": 293}`)},
			"tokenizer_config.json": {Data: []byte(`{"mask_token":{"content":"<|fill|>","lstrip":false}}`)}}, 293, -1},
	}
	for _, tc := range tests {
		tc.files["config.json"] = &fstest.MapFile{Data: qwenConfig(nil)}
		c, err := ReadConfig(tc.files)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if c.Mask != tc.mask || c.Pad != tc.pad {
			t.Errorf("%s: mask %d pad %d, want %d %d", tc.name, c.Mask, c.Pad, tc.mask, tc.pad)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tok := &fstest.MapFile{Data: []byte(`{"<M>": 290}`)}
	llada := func(edit func(map[string]any)) []byte {
		c := map[string]any{
			"model_type": "llada", "d_model": 64, "n_heads": 4, "n_layers": 2, "mlp_hidden_size": 128,
			"vocab_size": 300, "block_type": "llama", "layer_norm_type": "rms", "activation_type": "silu",
			"rope": true, "mask_token_id": 296,
		}
		edit(c)
		b, _ := json.Marshal(c)
		return b
	}
	tests := []struct {
		name   string
		config []byte
		want   string
	}{
		{"garbage", []byte("{hidden"), "config.json: invalid character"},
		{"unknown model_type", qwenConfig(func(c map[string]any) { c["model_type"] = "gpt2" }), `model_type "gpt2" is not supported`},
		{"no model_type", qwenConfig(func(c map[string]any) { delete(c, "model_type") }), "no model_type"},
		{"missing field", qwenConfig(func(c map[string]any) { delete(c, "hidden_size") }), "config.json: hidden_size is missing"},
		{"wrong type", qwenConfig(func(c map[string]any) { c["hidden_size"] = "64" }), `config.json: hidden_size: "64" is not a number`},
		{"fractional", qwenConfig(func(c map[string]any) { c["num_hidden_layers"] = 2.5 }), "num_hidden_layers: 2.5 is not an integer"},
		{"zero layers", qwenConfig(func(c map[string]any) { c["num_hidden_layers"] = 0 }), "num_hidden_layers (n_layers) must be positive, got 0"},
		{"heads", qwenConfig(func(c map[string]any) { c["num_attention_heads"] = 5 }), "num_attention_heads 5 does not divide hidden_size 64"},
		{"kv heads", qwenConfig(func(c map[string]any) { c["num_key_value_heads"] = 3 }), "num_key_value_heads (n_kv_heads) 3 does not divide num_attention_heads 4"},
		{"odd head dim", qwenConfig(func(c map[string]any) { c["num_attention_heads"] = 64; c["num_key_value_heads"] = 64 }), "head size 1 (hidden/heads) is odd"},
		{"mask outside vocab", qwenConfig(func(c map[string]any) { c["mask_token_id"] = 5000 }), "mask token id 5000 is outside the vocabulary of 300 rows"},
		{"bad id", qwenConfig(func(c map[string]any) { c["eos_token_id"] = -7 }), "eos_token_id: -7 is not a token id"},
		{"rope scaling", qwenConfig(func(c map[string]any) { c["rope_scaling"] = map[string]any{"type": "yarn"} }), "rope_scaling is not supported"},
		{"activation", qwenConfig(func(c map[string]any) { c["hidden_act"] = "gelu" }), `hidden_act "gelu" is not supported`},
		{"theta", qwenConfig(func(c map[string]any) { c["rope_theta"] = 0 }), "rope_theta must be a finite number above 1"},
		{"llada block", llada(func(c map[string]any) { c["block_type"] = "sequential" }), `block_type "sequential" is not supported (want "llama")`},
		{"llada no rope", llada(func(c map[string]any) { c["rope"] = false }), "rope is not true"},
		{"llada qk norm", llada(func(c map[string]any) { c["attention_layer_norm"] = true }), "attention_layer_norm is true, which is not supported"},
		{"llada embedding", llada(func(c map[string]any) { c["embedding_size"] = 200 }), "embedding_size 200 is smaller than vocab_size 300"},
		{"llada no mask", llada(func(c map[string]any) { delete(c, "mask_token_id") }), "no mask_token_id, and no mask token in the tokenizer files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"config.json": {Data: tc.config}}
			if !strings.Contains(tc.name, "llada") {
				fsys["added_tokens.json"] = tok
			}
			_, err := ReadConfig(fsys)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Without a mask token, a qwen2 model is an autoregressive one.
	_, err := ReadConfig(fstest.MapFS{"config.json": {Data: qwenConfig(nil)}})
	if err == nil || !strings.Contains(err.Error(), "qwen2 model has no mask token") || !strings.Contains(err.Error(), "autoregressive") {
		t.Errorf("qwen2 without mask: %v", err)
	}
	// A tokenizer file that exists but is broken is reported, not skipped.
	_, err = ReadConfig(fstest.MapFS{"config.json": {Data: qwenConfig(nil)}, "tokenizer.json": {Data: []byte("{")}})
	if err == nil || !strings.HasPrefix(err.Error(), "tokenizer.json: ") {
		t.Errorf("broken tokenizer.json: %v", err)
	}
}

// copyCkpt copies a test checkpoint into a fresh directory.
func copyCkpt(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(ckpt(name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	data, _ = json.Marshal(c)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewriteWeights rewrites a single-file checkpoint's weights, letting edit
// change the list of tensors.
func rewriteWeights(t *testing.T, dir string, edit func([]safetensors.Entry) []safetensors.Entry) {
	t.Helper()
	path := filepath.Join(dir, safetensors.SingleFile)
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries []safetensors.Entry
	for _, name := range f.Names() {
		tn, _ := f.Tensor(name)
		v, err := tn.Float32()
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, safetensors.Entry{Name: name, DType: tn.DType, Shape: tn.Shape, Data: append([]float32(nil), v...)})
	}
	f.Close()
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, edit(entries), nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadErrors breaks a good checkpoint in each way a download or an
// export can, and checks that Load says what is wrong in one line.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		base   string
		break_ func(t *testing.T, dir string)
		want   string
	}{
		{"missing config.json", "dream-f32", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "config.json"))
		}, "no config.json: not a Hugging Face model directory"},
		{"unknown model_type", "dream-f32", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(c map[string]any) { c["model_type"] = "mamba" })
		}, `config.json: model_type "mamba" is not supported`},
		{"no weights", "dream-f32", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model.safetensors"))
		}, "no model.safetensors, model.safetensors.index.json or other *.safetensors file"},
		{"truncated file", "dream-f32", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, "model.safetensors"), 100_000)
		}, "model.safetensors: malformed safetensors file: tensor"},
		{"truncated shard", "dream-sharded", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, "model-00002-of-00002.safetensors"), 50_000)
		}, "model-00002-of-00002.safetensors: malformed safetensors file"},
		{"shard absent", "dream-sharded", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model-00001-of-00002.safetensors"))
		}, "model.safetensors.index.json names shard model-00001-of-00002.safetensors, which is missing"},
		{"header garbage", "dream-f32", func(t *testing.T, dir string) {
			path := filepath.Join(dir, "model.safetensors")
			data, _ := os.ReadFile(path)
			copy(data[8:], "#!garbage")
			os.WriteFile(path, data, 0o644)
		}, "header is not a JSON object"},
		{"header length garbage", "dream-f32", func(t *testing.T, dir string) {
			path := filepath.Join(dir, "model.safetensors")
			data, _ := os.ReadFile(path)
			binary.LittleEndian.PutUint64(data, 1<<40)
			os.WriteFile(path, data, 0o644)
		}, "runs past the end of the"},
		{"missing tensor", "dream-f32", func(t *testing.T, dir string) {
			rewriteWeights(t, dir, func(e []safetensors.Entry) []safetensors.Entry {
				var out []safetensors.Entry
				for _, x := range e {
					if x.Name != "model.layers.1.self_attn.k_proj.bias" {
						out = append(out, x)
					}
				}
				return out
			})
		}, "missing tensor model.layers.1.self_attn.k_proj.bias"},
		{"wrong shape", "dream-f32", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(c map[string]any) { c["intermediate_size"] = 100 })
		}, "tensor model.layers.0.mlp.gate_proj.weight in " + "X" + " has shape [128 64], but config.json implies [100 64]"},
		{"more layers than stored", "llada-f32", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(c map[string]any) { c["n_layers"] = 3 })
		}, "missing tensor model.transformer.blocks.2.attn_norm.weight"},
		{"untied without head", "qwen2-tied", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(c map[string]any) { c["tie_word_embeddings"] = false })
		}, "missing tensor lm_head.weight (the config says the head is not tied to the embedding)"},
		{"qwen2 without mask", "qwen2-tied", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "added_tokens.json"))
		}, "it is an autoregressive model"},
		{"integer dtype", "dream-f32", func(t *testing.T, dir string) {
			// Rewrite the final norm's header entry as I32 (same size).
			path := filepath.Join(dir, "model.safetensors")
			data, _ := os.ReadFile(path)
			i := bytes.Index(data, []byte(`"model.norm.weight":{"dtype":"F32"`))
			copy(data[i+len(`"model.norm.weight":{"dtype":"`):], "I32")
			os.WriteFile(path, data, 0o644)
		}, "has dtype I32; F32, F16 and BF16 are supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyCkpt(t, tc.base)
			tc.break_(t, dir)
			want := strings.Replace(tc.want, "X", filepath.Join(dir, "model.safetensors"), 1)
			m, err := Load(dir)
			if err == nil {
				m.Close()
				t.Fatalf("loaded; want an error containing %q", want)
			}
			msg := err.Error()
			t.Log(strings.Replace(msg, dir, "DIR", -1))
			if !strings.Contains(msg, want) {
				t.Fatalf("error %q\nwant one containing %q", msg, want)
			}
			if !strings.HasPrefix(msg, "load "+dir+": ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q should be one line starting with load %s", msg, dir)
			}
			// Inspect finds the same problems without loading.
			if _, err := Inspect(dir); err == nil {
				t.Errorf("Inspect found no problem")
			}
		})
	}
}

func TestInspect(t *testing.T) {
	info, err := Inspect(ckpt("qwen2-tied"))
	if err != nil {
		t.Fatal(err)
	}
	// 300×64 embedding (tied), final norm, and 2 layers.
	perLayer := int64(64 + 64*64 + 2*32*64 + 64 + 2*32 + 64*64 + 64 + 3*128*64)
	if want := 300*64 + 64 + 2*perLayer; info.Params != want {
		t.Errorf("Params = %d, want %d", info.Params, want)
	}
	if info.Bytes != 4*info.Params {
		t.Errorf("Bytes = %d, want %d", info.Bytes, 4*info.Params)
	}
	if got := info.DTypeSummary(); got != "F32×26" {
		t.Errorf("DTypeSummary = %q", got)
	}
	if len(info.Unused) != 0 {
		t.Errorf("unused tensors %v", info.Unused)
	}
}

// TestGenerationDefaults reads the decoding defaults infuse takes from
// generation_config.json, and refuses values it cannot use.
func TestGenerationDefaults(t *testing.T) {
	cfg := func(gen string) fstest.MapFS {
		fsys := fstest.MapFS{
			ConfigFile:          {Data: qwenConfig(func(c map[string]any) { c["max_position_embeddings"] = 256 })},
			"added_tokens.json": {Data: []byte(`{"<M>": 290}`)},
		}
		if gen != "" {
			fsys[GenerationFile] = &fstest.MapFile{Data: []byte(gen)}
		}
		return fsys
	}
	for _, tc := range []struct {
		gen     string
		tau     float64
		context int
		radius  int
		err     string
	}{
		{"", 0, 0, 0, ""},
		{`{"alg": "entropy", "steps": 512}`, 0, 0, 0, ""}, // chat settings, left alone
		{`{"threshold": 0.5, "context_tokens": 192}`, 0.5, 192, 0, ""},
		{`{"threshold": 0.7, "refresh_radius": 16}`, 0.7, 0, 16, ""},
		{`{"threshold": 1.5}`, 0, 0, 0, "threshold 1.5 outside (0,1]"},
		{`{"context_tokens": 512}`, 0, 0, 0, "context_tokens 512: want at least 64 and at most max_position_embeddings (256)"},
		{`{"context_tokens": 8}`, 0, 0, 0, "context_tokens 8"},
		{`{"refresh_radius": 0}`, 0, 0, 0, "refresh_radius 0: want at least 1"},
		{`{"threshold": "high"}`, 0, 0, 0, "generation_config.json: json: cannot unmarshal"},
	} {
		c, err := ReadConfig(cfg(tc.gen))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.gen, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.gen, err)
		case c.Threshold != tc.tau || c.ContextTokens != tc.context || c.RefreshRadius != tc.radius:
			t.Errorf("%s: threshold %v context %d refresh radius %d, want %v, %d and %d", tc.gen,
				c.Threshold, c.ContextTokens, c.RefreshRadius, tc.tau, tc.context, tc.radius)
		}
	}
}
