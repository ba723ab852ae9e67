package runtime

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/runtime/gguf"
)

// convertGGUF writes the checkpoint as GGUF of type typ in a temporary
// directory and returns its path.
func convertGGUF(t testing.TB, dir string, typ gguf.Type) string {
	t.Helper()
	var buf bytes.Buffer
	if err := ConvertToGGUF(dir, &buf, typ); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(dir)+".gguf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ggufTestIDs is a sequence covering ordinary ids and the mask.
func ggufTestIDs(c Config) []int32 {
	ids := make([]int32, 24)
	for i := range ids {
		ids[i] = int32((i*37 + 11) % c.TokenVocab)
	}
	ids[5], ids[6], ids[17] = c.Mask, c.Mask, c.Mask
	return ids
}

// TestGGUFRoundTrip converts every test checkpoint to GGUF, loads it, and
// compares the configuration and the logits of a full pass with the
// safetensors model's. The bound on the relative (L2) logit error is 1e-6
// for F32; for the others it follows from the per-weight relative error
// (rms about 1.4e-4 for F16's 11 significant bits, 1.1e-3 for BF16's 8,
// and about 5e-3 for Q8_0, which rounds to 1/254 of a block's largest
// magnitude; its kernel also rounds the activations to int8 per 32
// values), which these small random networks amplify about 5–7 times into
// the logits (measured: F16 ≤ 1e-3, BF16 ≤ 8e-3, Q8_0 ≤ 3.6e-2), with
// room to spare.
func TestGGUFRoundTrip(t *testing.T) {
	bounds := map[gguf.Type]float64{gguf.F32: 1e-6, gguf.F16: 4e-3, gguf.BF16: 3e-2, gguf.Q8_0: 6e-2}
	for _, name := range []string{"dream-f32", "dream-bf16", "dream-sharded", "llada-f32", "qwen2-tied"} {
		ref, err := Load(ckpt(name))
		if err != nil {
			t.Fatal(err)
		}
		ids := ggufTestIDs(ref.Config)
		want := fullLogits(t, ref, ids)
		for _, typ := range []gguf.Type{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0} {
			path := convertGGUF(t, ckpt(name), typ)
			m, err := Load(path) // through Load's .gguf branch
			if err != nil {
				t.Fatalf("%s %s: %v", name, typ, err)
			}
			c, rc := m.Config, ref.Config
			if c.ModelType != ggufArch(rc.Family) {
				t.Errorf("%s: ModelType %q", name, c.ModelType)
			}
			c.ModelType = rc.ModelType
			if !reflect.DeepEqual(c, rc) {
				t.Errorf("%s %s: config\n got %+v\nwant %+v", name, typ, c, rc)
			}
			got := fullLogits(t, m, ids)
			e := relErr(got, want)
			t.Logf("%s %s: logits relative error %.2g", name, typ, e)
			if !(e < bounds[typ]) {
				t.Errorf("%s %s: logits relative error %g, want < %g", name, typ, e, bounds[typ])
			}
			m.Close()
		}
		ref.Close()
	}
}

// TestGGUFLayout checks the file against llama.cpp's conventions directly:
// names, dims innermost first, F32 norms, and LLaDA's q/k rows interleaved
// per head (row j·D/2+i of a head moved to 2i+j) while Dream's are not.
func TestGGUFLayout(t *testing.T) {
	for _, tc := range []struct {
		name, hf string
		heads    int
		permuted bool
	}{
		{"llada-f32", "model.transformer.blocks.1.k_proj.weight", 2, true},
		{"dream-f32", "model.layers.1.self_attn.k_proj.weight", 2, false},
	} {
		ref, err := Load(ckpt(tc.name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(convertGGUF(t, ckpt(tc.name), gguf.F32))
		if err != nil {
			t.Fatal(err)
		}
		k, ok := f.Tensor("blk.1.attn_k.weight")
		if !ok || !slices.Equal(k.Dims, []uint64{64, 32}) || k.Type != gguf.F32 {
			t.Fatalf("%s: blk.1.attn_k.weight %+v", tc.name, k)
		}
		if n, _ := f.Tensor("output_norm.weight"); n == nil || n.Type != gguf.F32 {
			t.Errorf("%s: output_norm.weight %+v, want F32", tc.name, n)
		}
		if v, _ := f.Value("general.architecture"); v != ggufArch(ref.Config.Family) {
			t.Errorf("%s: architecture %v", tc.name, v)
		}
		got, _ := k.Float32()
		hf := ref.Weights.Layers[1].K
		const cols, d = 64, 16
		for h := range tc.heads {
			for r := range d {
				src := h*d + r // the HF row that GGUF row h·d+r holds
				if tc.permuted {
					src = h*d + (r%2)*(d/2) + r/2
				}
				if g, w := got[(h*d+r)*cols:][:cols], hf[src*cols:][:cols]; !slices.Equal(g, w) {
					t.Fatalf("%s: GGUF row %d is not HF row %d", tc.name, h*d+r, src)
				}
			}
		}
		f.Close()
		ref.Close()
	}
}

func TestPermuteRope(t *testing.T) {
	// One head of 4 rows, one column: numpy's
	// reshape(1, 2, 2).swapaxes(1, 2) of [0 1 2 3] is [0 2 1 3].
	v := []float32{0, 1, 2, 3, 10, 11, 12, 13}
	fwd := permuteRope(v, 2, 1, false)
	if want := []float32{0, 2, 1, 3, 10, 12, 11, 13}; !slices.Equal(fwd, want) {
		t.Errorf("forward %v, want %v", fwd, want)
	}
	if back := permuteRope(fwd, 2, 1, true); !slices.Equal(back, v) {
		t.Errorf("inverse %v, want %v", back, v)
	}
}

func TestInspectGGUF(t *testing.T) {
	info, err := InspectGGUF(convertGGUF(t, ckpt("qwen2-tied"), gguf.Q8_0))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Inspect(ckpt("qwen2-tied"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Params != ref.Params || len(info.Tensors) != len(ref.Tensors) || len(info.Unused) != 0 {
		t.Errorf("params %d tensors %d unused %v; want %d, %d", info.Params, len(info.Tensors), info.Unused, ref.Params, len(ref.Tensors))
	}
	// 2 layers × (2 norms + 3 biases) + the final norm are F32; k and v
	// (32×64) and the rest are Q8_0.
	if got := info.DTypeSummary(); got != "F32×11 Q8_0×15" {
		t.Errorf("DTypeSummary = %q", got)
	}
}

// rewriteGGUF reads a GGUF file, lets edit change its metadata and
// tensors, and writes it back.
func rewriteGGUF(t *testing.T, path string, edit func(md []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	var ts []gguf.WriteTensor
	for _, x := range f.Tensors {
		ts = append(ts, gguf.WriteTensor{Name: x.Name, Shape: x.Shape(), Type: x.Type, Data: x.Float32})
	}
	md, ts := edit(slices.Clone(f.Metadata), ts)
	var buf bytes.Buffer
	if err := gguf.Write(&buf, md, ts); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func setKV(md []gguf.KV, key string, v any) []gguf.KV {
	for i := range md {
		if md[i].Key == key {
			md[i].Value = v
			return md
		}
	}
	return append(md, gguf.KV{Key: key, Value: v})
}

func dropKV(md []gguf.KV, key string) []gguf.KV {
	return slices.DeleteFunc(md, func(kv gguf.KV) bool { return kv.Key == key })
}

func TestLoadGGUFErrors(t *testing.T) {
	meta := func(edit func([]gguf.KV) []gguf.KV) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			rewriteGGUF(t, path, func(md []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor) { return edit(md), ts })
		}
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, path string)
		want   string
	}{
		{"truncated", func(t *testing.T, path string) { os.Truncate(path, 5000) }, "truncated"},
		{"not gguf", func(t *testing.T, path string) { os.WriteFile(path, []byte("{}"), 0o644) }, "not a GGUF file"},
		{"arch", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "general.architecture", "llama") }),
			`general.architecture "llama" is not supported (want dream, llada or qwen2)`},
		{"no arch", meta(func(md []gguf.KV) []gguf.KV { return dropKV(md, "general.architecture") }), "no general.architecture"},
		{"no block_count", meta(func(md []gguf.KV) []gguf.KV { return dropKV(md, "dream.block_count") }), "dream.block_count is missing"},
		{"no eps", meta(func(md []gguf.KV) []gguf.KV { return dropKV(md, "dream.attention.layer_norm_rms_epsilon") }),
			"dream.attention.layer_norm_rms_epsilon is missing"},
		{"string heads", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "dream.attention.head_count", "4") }),
			"dream.attention.head_count is 4 (string), want an integer"},
		{"zero heads", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "dream.attention.head_count", uint32(0)) }),
			"dream.attention.head_count must be positive"},
		{"rope dims", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "dream.rope.dimension_count", uint32(8)) }),
			"dream.rope.dimension_count is 8, but only 16"},
		{"rope scaling", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "dream.rope.scaling.type", "yarn") }),
			`rope.scaling.type "yarn" is not supported`},
		{"no mask", meta(func(md []gguf.KV) []gguf.KV { return dropKV(md, "tokenizer.ggml.mask_token_id") }),
			"no tokenizer.ggml.mask_token_id"},
		{"mask range", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "tokenizer.ggml.mask_token_id", uint32(5000)) }),
			"mask token id 5000 is outside the vocabulary of 300 rows"},
		{"threshold", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "infuse.threshold", float32(1.5)) }),
			"metadata: infuse.threshold 1.5 outside (0,1]"},
		{"context tokens", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "infuse.context_tokens", uint32(10)) }),
			"metadata: infuse.context_tokens 10: want at least 64"},
		{"shift type", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "diffusion.shift_logits", uint8(1)) }),
			"diffusion.shift_logits is 1 (uint8), want a bool"},
		{"wrong shape", meta(func(md []gguf.KV) []gguf.KV { return setKV(md, "dream.feed_forward_length", uint32(100)) }),
			"tensor blk.0.ffn_gate.weight has shape [128 64] (dims [64 128]), but the metadata implies [100 64]"},
		{"missing tensor", func(t *testing.T, path string) {
			rewriteGGUF(t, path, func(md []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor) {
				return md, slices.DeleteFunc(ts, func(w gguf.WriteTensor) bool { return w.Name == "blk.1.attn_k.bias" })
			})
		}, "missing tensor blk.1.attn_k.bias"},
		{"tensor type", func(t *testing.T, path string) {
			// Patch output_norm.weight's type (after its name, dim count
			// and one dim) to a ggml type this package cannot decode.
			data, _ := os.ReadFile(path)
			i := bytes.Index(data, []byte("output_norm.weight")) + len("output_norm.weight") + 4 + 8
			binary.LittleEndian.PutUint32(data[i:], 99)
			os.WriteFile(path, data, 0o644)
		}, "tensor output_norm.weight has type ggml_type(99); F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K are supported"},
		{"no embedding", func(t *testing.T, path string) {
			rewriteGGUF(t, path, func(md []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor) {
				return md, slices.DeleteFunc(ts, func(w gguf.WriteTensor) bool { return w.Name == "token_embd.weight" })
			})
		}, "missing tensor token_embd.weight"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := convertGGUF(t, ckpt("dream-f32"), gguf.F32)
			tc.break_(t, path)
			m, err := LoadGGUF(path)
			if err == nil {
				m.Close()
				t.Fatalf("loaded; want an error containing %q", tc.want)
			}
			msg := err.Error()
			t.Log(strings.Replace(msg, path, "FILE", -1))
			if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "load "+path+": ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q\nwant one line starting with load FILE and containing %q", msg, tc.want)
			}
			if _, err := InspectGGUF(path); err == nil {
				t.Errorf("InspectGGUF found no problem")
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	if err := ConvertToGGUF(ckpt("dream-f32"), &bytes.Buffer{}, gguf.Type(10)); err == nil || !strings.Contains(err.Error(), "cannot be written") {
		t.Errorf("Q2_K: %v", err)
	}
	if err := ConvertToGGUF(filepath.Join(t.TempDir(), "none"), &bytes.Buffer{}, gguf.F32); err == nil {
		t.Error("missing directory converted")
	}
}

// TestGGUFConfigFallbacks covers files from llama.cpp's converters, which
// may lack keys that ours writes: the mask is then found by name in the
// token list, and shift_logits follows the family.
func TestGGUFConfigFallbacks(t *testing.T) {
	for _, tc := range []struct {
		ckpt  string
		shift bool
	}{{"dream-f32", true}, {"llada-f32", false}} {
		path := convertGGUF(t, ckpt(tc.ckpt), gguf.F32)
		rewriteGGUF(t, path, func(md []gguf.KV, ts []gguf.WriteTensor) ([]gguf.KV, []gguf.WriteTensor) {
			tokens := make([]string, 300)
			for i := range tokens {
				tokens[i] = "t" + strconv.Itoa(i)
			}
			tokens[290], tokens[291] = "<|mdm_mask|>", "<|expand|>"
			md = dropKV(dropKV(dropKV(md, keyMask), keyShiftLogits), keyExpand)
			return append(md, gguf.KV{Key: keyTokens, Value: tokens}), ts
		})
		m, err := LoadGGUF(path)
		if err != nil {
			t.Fatal(err)
		}
		if c := m.Config; c.Mask != 290 || c.Expand != 291 || c.ShiftLogits != tc.shift {
			t.Errorf("%s: mask %d expand %d shift %v; want 290, 291, %v", tc.ckpt, c.Mask, c.Expand, c.ShiftLogits, tc.shift)
		}
		m.Close()
	}
}
