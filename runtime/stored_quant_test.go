package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/infuse-lsp/infuse/kernels/cpu"
	"github.com/infuse-lsp/infuse/runtime/gguf"
	"github.com/infuse-lsp/infuse/runtime/safetensors"
)

// randomDir writes a random float32 checkpoint for config to a temporary
// directory, weights drawn as randomModel draws them.
func randomDir(t *testing.T, config map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	cfgJSON, _ := json.Marshal(config)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfgJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, safetensors.SingleFile), randomWeights(t, cfg, 9), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// loadWidened loads path with every matrix widened to float32: the same
// weights as the stored-type model, multiplied in float32.
func loadWidened(t *testing.T, path string) *Model {
	t.Helper()
	packStored = false
	defer func() { packStored = true }()
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func packedType(a cpu.Linear) string { return fmt.Sprintf("%T", a) }

// TestStoredTypes loads models whose matrices are stored as BF16, F16,
// Q8_0 and Q4_K, checks that they are packed in that type (their Weights
// slices nil, the embedding and norms present), and compares the logits
// with the same weights widened to float32. BF16 and F16 widen exactly in
// the kernel, whose order of sums is the float32 kernel's: the logits
// agree to float32 rounding (measured: exactly). Q8_0 and
// Q4_K products quantize the activations to int8 per 32 values, as ggml
// does: about 0.5% per product, which these small random networks amplify
// into the logits (measured: Q8_0 1.7e-2 and Q4_0-as-Q8_0 2.2e-2 on the
// hidden-64 checkpoints, Q4_K 7.2e-3 and Q6_K-as-Q8_0 9.9e-3 at hidden
// 256; the bounds leave a factor of about two).
func TestStoredTypes(t *testing.T) {
	q8 := convertGGUF(t, ckpt("dream-f32"), gguf.Q8_0)
	q8tied := convertGGUF(t, ckpt("qwen2-tied"), gguf.Q8_0)
	bf16g := convertGGUF(t, ckpt("llada-f32"), gguf.BF16)
	f16g := convertGGUF(t, ckpt("qwen2-tied"), gguf.F16)
	wide := randomDir(t, dreamShaped(256, 512, 2, 4, 2, 300))
	for _, tc := range []struct {
		name, path, typ string
		bound           float64
	}{
		{"safetensors bf16", ckpt("dream-bf16"), "*cpu.BF16Matrix", 1e-5},
		{"gguf bf16 (llada, permuted q/k)", bf16g, "*cpu.BF16Matrix", 1e-5},
		{"gguf f16 tied head", f16g, "*cpu.F16Matrix", 1e-5},
		{"gguf q8_0", q8, "*cpu.Q8Matrix", 4e-2},
		{"gguf q8_0 tied head", q8tied, "*cpu.Q8Matrix", 4e-2},
		// The test checkpoints' rows (64) are shorter than a Q4_K block.
		{"gguf q4_k", convertGGUF(t, wide, gguf.Q4_K), "*cpu.Q4KMatrix", 2e-2},
		// Types without a kernel are requantized to Q8_0: Q4_0 exactly,
		// Q6_K with Q8_0's rounding.
		{"gguf q4_0 as q8_0", convertGGUF(t, ckpt("dream-f32"), gguf.Q4_0), "*cpu.Q8Matrix", 4e-2},
		{"gguf q6_k as q8_0", convertGGUF(t, wide, gguf.Q6_K), "*cpu.Q8Matrix", 2e-2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			l := m.Weights.Layers[0]
			if l.Q != nil && tc.typ != "*cpu.Matrix" || l.AttnNorm == nil {
				t.Errorf("Weights: Q %v AttnNorm %v", l.Q != nil, l.AttnNorm != nil)
			}
			if !cpu.Native(cpu.FormatBF16) || !cpu.Native(cpu.FormatQ8_0) || !cpu.Native(cpu.FormatQ4K) {
				tc.typ = "*cpu.Matrix" // widened: no vector code for the type here
			}
			pl := m.packed.layers[0]
			for name, a := range map[string]cpu.Linear{"qkv": pl.qkv, "o": pl.o, "gateUp": pl.gateUp, "down": pl.down, "head": m.packed.head} {
				if got := packedType(a); got != tc.typ {
					t.Errorf("%s packed as %s, want %s", name, got, tc.typ)
				}
			}
			// A tied head's rows are the embedding's.
			if m.Config.TiedHead {
				row, emb := make([]float32, m.Config.Hidden), make([]float32, m.Config.Hidden)
				for _, tok := range []int{0, 5, m.Config.Vocab - 1} {
					m.packed.head.Row(row, tok)
					m.embedRow(emb, int32(tok))
					if e := relErr(row, emb); e > 1e-6 {
						t.Errorf("head row %d differs from the embedding by %.3g", tok, e)
					}
				}
			}
			ref := loadWidened(t, tc.path)
			defer ref.Close()
			if got := packedType(ref.packed.layers[0].qkv); got != "*cpu.Matrix" {
				t.Fatalf("widened model packs %s", got)
			}
			ids := ggufTestIDs(m.Config)
			e := relErr(fullLogits(t, m, ids), fullLogits(t, ref, ids))
			t.Logf("logits relative error %.2g against float32 (stored %d bytes of matrices, widened %d)",
				e, matrixBytes(m), matrixBytes(ref))
			if !(e <= tc.bound) {
				t.Errorf("logits relative error %g > %g", e, tc.bound)
			}
			if tc.typ != "*cpu.Matrix" && 2*matrixBytes(m) > matrixBytes(ref)+1024 {
				t.Errorf("stored matrices take %d bytes, float32 %d", matrixBytes(m), matrixBytes(ref))
			}
		})
	}
}

func matrixBytes(m *Model) int {
	n := m.packed.head.Bytes()
	for _, l := range m.packed.layers {
		n += l.qkv.Bytes() + l.o.Bytes() + l.gateUp.Bytes() + l.down.Bytes()
	}
	return n
}

// TestMixedTypes packs a qkv whose parts differ in type: float32 with
// anything widens to float32; block types (as a Q4_K_M file's Q4_K q and k
// with a Q6_K v) become Q8_0.
func TestMixedTypes(t *testing.T) {
	const rows, cols = 32, 64
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(i%7) - 3
	}
	var a, b []float32
	low := lowTensors{&a: {kind: lowQ8_0, raw: cpu.QuantizeQ8(w, rows, cols), rows: rows, cols: cols,
		f32: func() ([]float32, error) { return w, nil }}}
	b = w
	lin, err := low.linear(cols, LoadOptions{}, &a, &b)
	if err != nil {
		t.Fatal(err)
	}
	if got := packedType(lin); got != "*cpu.Matrix" || lin.Rows() != 2*rows || lin.Cols() != cols {
		t.Errorf("mixed parts: %s %d×%d", got, lin.Rows(), lin.Cols())
	}
	if !cpu.Native(cpu.FormatQ8_0) {
		t.Skip("no Q8_0 vector code here: block types widen to float32")
	}
	lin, _ = low.linear(cols, LoadOptions{}, &a, &a)
	if got := packedType(lin); got != "*cpu.Q8Matrix" || lin.Rows() != 2*rows {
		t.Errorf("same-type parts: %s %d rows", got, lin.Rows())
	}
	var c []float32
	low[&c] = &lowTensor{kind: lowGGML, rows: rows, cols: cols, f32: func() ([]float32, error) { return w, nil }}
	lin, _ = low.linear(cols, LoadOptions{}, &a, &c)
	if got := packedType(lin); got != "*cpu.Q8Matrix" || lin.Rows() != 2*rows {
		t.Errorf("Q8_0 and another block type: %s %d rows", got, lin.Rows())
	}
}

// TestEmbedRow loads models without the float32 embedding (the default)
// and checks each token's row, dequantized from the packed embedding (the
// head's when tied), against the float32 conversion (embedF32 on).
func TestEmbedRow(t *testing.T) {
	for _, path := range []string{
		ckpt("dream-bf16"),
		convertGGUF(t, ckpt("dream-f32"), gguf.Q8_0),
		convertGGUF(t, ckpt("qwen2-tied"), gguf.Q8_0),
		convertGGUF(t, randomDir(t, dreamShaped(256, 512, 1, 4, 2, 40)), gguf.Q4_K),
	} {
		embedF32 = true
		ref, err := Load(path)
		embedF32 = false
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if m.Weights.Embed != nil || m.packed.embed == nil {
			t.Errorf("%s: Embed kept (%v) or not packed (%v)", path, m.Weights.Embed != nil, m.packed.embed == nil)
			continue
		}
		h := m.Config.Hidden
		row := make([]float32, h)
		for tok := range m.Config.Vocab {
			m.embedRow(row, int32(tok))
			if e := relErr(row, ref.Weights.Embed[tok*h:][:h]); e > 1e-6 {
				t.Fatalf("%s: token %d's row differs by %.3g", path, tok, e)
			}
		}
		m.Close()
		ref.Close()
	}
}
