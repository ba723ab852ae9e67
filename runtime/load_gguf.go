package runtime

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/infuse-lsp/infuse/runtime/gguf"
	"github.com/infuse-lsp/infuse/runtime/safetensors"
)

// GGUF support: llama.cpp's file format for the same three families.
//
// Names and metadata follow llama.cpp's converter (convert_hf_to_gguf.py)
// for its "dream", "llada" and "qwen2" architectures: tensors are
// token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
// ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm and output (absent
// when the head is tied), and hyperparameters are <arch>.embedding_length
// and so on. Two llama.cpp conventions need care:
//
//   - llama.cpp runs LLaDA with its "normal" rotary embedding, which turns
//     pairs of adjacent values, while the checkpoint was trained with the
//     half-split (NEOX) rotation that this runtime uses. Its LLaDA
//     converter therefore permutes the rows of attn_q and attn_k (weights
//     and biases) within each head, moving row j·D/2+i to 2i+j. The loader
//     undoes that permutation and the converter applies it, so a file is
//     interchangeable with llama.cpp's. Dream and Qwen2 use NEOX in
//     llama.cpp and are stored unpermuted.
//   - diffusion.shift_logits is written false by llama.cpp's LLaDA
//     converter and not at all by its Dream converter; when absent the
//     family decides (shifted for Dream and Qwen2, not for LLaDA), which
//     agrees with llama-diffusion-cli for files from either converter.

// GGUFExt is the file name extension of GGUF files.
const GGUFExt = ".gguf"

// IsGGUF reports whether path names a GGUF file by its extension.
func IsGGUF(path string) bool { return strings.EqualFold(filepath.Ext(path), GGUFExt) }

// Metadata keys beyond the architecture's own.
const (
	keyArch        = "general.architecture"
	keyName        = "general.name"
	keyFileType    = "general.file_type"
	keyShiftLogits = "diffusion.shift_logits"
	keyMask        = "tokenizer.ggml.mask_token_id"
	keyBOS         = "tokenizer.ggml.bos_token_id"
	keyEOS         = "tokenizer.ggml.eos_token_id"
	keyPad         = "tokenizer.ggml.padding_token_id"
	keyTokens      = "tokenizer.ggml.tokens"
	// keyExpand records DreamOn's <|expand|> id. llama.cpp has no such key;
	// readers that do not know it ignore it.
	keyExpand = "infuse.expand_token_id"
	// keyThreshold, keyContextTokens and keyRefreshRadius carry
	// generation_config.json's decoding defaults (Config.Threshold,
	// ContextTokens, RefreshRadius) through a conversion; they are
	// infuse's keys too.
	keyThreshold     = "infuse.threshold"
	keyContextTokens = "infuse.context_tokens"
	keyRefreshRadius = "infuse.refresh_radius"
)

// ggufArch is the general.architecture of each family.
func ggufArch(f Family) string {
	switch f {
	case LLaDA:
		return "llada"
	case Qwen2:
		return "qwen2"
	}
	return "dream"
}

// LoadGGUF loads a model from a GGUF file, after which the file is
// closed. Matrices stored as BF16, F16, Q8_0 or Q4_K are packed in that type
// and computed in it (see cpu.Linear); the rest, and the embedding, norms
// and biases, are converted to float32.
func LoadGGUF(path string) (*Model, error) { return LoadGGUFWith(path, LoadOptions{}) }

// LoadGGUFWith is [LoadGGUF] with options.
func LoadGGUFWith(path string, o LoadOptions) (*Model, error) {
	m, err := loadGGUF(path, o)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return m, nil
}

func loadGGUF(path string, o LoadOptions) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, err := GGUFConfig(f)
	if err != nil {
		return nil, err
	}
	info, err := inspectGGUF(cfg, f)
	if err != nil {
		return nil, err
	}
	// The weights are copied out of the file, which is closed on return;
	// the model holds an empty safetensors set because Forward reads a nil
	// set as a closed model.
	m := &Model{Config: cfg, info: info, weights: new(safetensors.Set)}
	low := lowTensors{}
	for _, s := range cfg.specs(&m.Weights) {
		t, _ := f.Tensor(ggufName(s.name))
		perm := cfg.ropePermutation(t.Name)
		if kind := ggufLowKind(t.Type); packStored && kind != 0 && len(s.shape) == 2 {
			// Kept as stored and packed below, while the file is open;
			// rows are whole blocks, so the permutation moves bytes.
			raw := t.Bytes()
			if kind == lowGGML {
				raw = nil // read through f32
			} else if perm != 0 {
				raw = permuteRope(raw, perm, len(raw)/s.shape[0], true)
			}
			f32 := func() ([]float32, error) {
				v, err := t.Float32()
				if err != nil || perm == 0 {
					return v, err
				}
				return permuteRope(v, perm, len(v)/s.shape[0], true), nil
			}
			low[s.dst] = &lowTensor{kind: kind, raw: raw, rows: s.shape[0], cols: s.shape[1], f32: f32}
			if s.dst != &m.Weights.Embed || !embedF32 {
				continue
			}
		}
		v, err := t.Float32()
		if err != nil {
			return nil, err
		}
		if perm != 0 {
			v = permuteRope(v, perm, len(v)/s.shape[0], true)
		} else if t.Type == gguf.F32 {
			v = slices.Clone(v) // the file is closed below
		}
		*s.dst = v
	}
	if cfg.TiedHead {
		m.Weights.Head = m.Weights.Embed
		low[&m.Weights.Head] = low[&m.Weights.Embed]
	}
	if err := m.pack(low, o); err != nil {
		return nil, err
	}
	return m, nil
}

// ggufLowKind is the packed type a matrix of GGUF type t is computed in:
// its own for BF16, F16, Q8_0 and Q4_K, Q8_0 for the other block types
// (lowGGML), float32 (0) for F32.
func ggufLowKind(t gguf.Type) lowKind {
	switch t {
	case gguf.BF16:
		return lowBF16
	case gguf.F16:
		return lowF16
	case gguf.Q8_0:
		return lowQ8_0
	case gguf.Q4_K:
		return lowQ4K
	}
	if t.BlockSize() > 1 {
		return lowGGML
	}
	return 0
}

// InspectGGUF reads a GGUF file's metadata and tensor descriptions and
// checks every tensor's presence, type and shape, without converting
// weights.
func InspectGGUF(path string) (*Info, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer f.Close()
	cfg, err := GGUFConfig(f)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	info, err := inspectGGUF(cfg, f)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	return info, nil
}

func inspectGGUF(cfg Config, f *gguf.File) (*Info, error) {
	info := &Info{Config: cfg, DTypes: map[string]int{}, Files: []string{f.Name()}}
	used := map[string]bool{}
	var w Weights
	for _, s := range cfg.specs(&w) {
		name := ggufName(s.name)
		t, ok := f.Tensor(name)
		if !ok {
			hint := ""
			if name == "output.weight" {
				hint = " (the file has no output.weight, so the head would be tied)"
			}
			return nil, fmt.Errorf("missing tensor %s%s", name, hint)
		}
		if !t.Type.Supported() {
			return nil, fmt.Errorf("tensor %s has type %s; F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K are supported", name, t.Type)
		}
		if !slices.Equal(t.Shape(), s.shape) {
			return nil, fmt.Errorf("tensor %s has shape %v (dims %v), but the metadata implies %v", name, t.Shape(), t.Dims, s.shape)
		}
		used[name] = true
		info.Params += int64(t.Len())
		info.Bytes += int64(len(t.Bytes()))
		info.DTypes[t.Type.String()]++
		info.Tensors = append(info.Tensors, TensorInfo{Name: name, DType: t.Type.String(), Shape: t.Shape()})
	}
	for _, t := range f.Tensors {
		if !used[t.Name] {
			info.Unused = append(info.Unused, t.Name)
		}
	}
	return info, nil
}

// GGUFConfig reads a Config from a GGUF file's metadata and the shape of
// its embedding.
func GGUFConfig(f *gguf.File) (Config, error) {
	md := ggufFields{f: f}
	arch := md.str(keyArch)
	var c Config
	switch arch {
	case "dream":
		c.Family, c.ShiftLogits, c.QKVBias = Dream, true, true
	case "qwen2":
		c.Family, c.ShiftLogits, c.QKVBias = Qwen2, true, true
	case "llada":
		c.Family = LLaDA
		_, c.QKVBias = f.Tensor("blk.0.attn_q.bias")
	case "":
		return c, fmt.Errorf("metadata: no %s", keyArch)
	default:
		return c, fmt.Errorf("metadata: %s %q is not supported (want dream, llada or qwen2)", keyArch, arch)
	}
	c.ModelType = arch
	a := arch + "."
	c.Hidden = md.required(a + "embedding_length")
	c.Layers = md.required(a + "block_count")
	c.Intermediate = md.required(a + "feed_forward_length")
	c.Heads = md.required(a + "attention.head_count")
	c.KVHeads = md.int(a+"attention.head_count_kv", c.Heads)
	c.MaxPositions = md.int(a+"context_length", 0)
	c.RopeTheta = md.float(a+"rope.freq_base", 10000)
	c.NormEps = md.float(a+"attention.layer_norm_rms_epsilon", math.NaN())
	if math.IsNaN(c.NormEps) && md.err == nil {
		md.err = fmt.Errorf("metadata: %sattention.layer_norm_rms_epsilon is missing", a)
	}
	c.ShiftLogits = md.bool(keyShiftLogits, c.ShiftLogits)
	if s := md.str(a + "rope.scaling.type"); s != "" && s != "none" {
		return c, fmt.Errorf("metadata: %srope.scaling.type %q is not supported", a, s)
	}
	if md.err != nil {
		return c, md.err
	}
	for _, d := range []struct {
		key string
		v   int
	}{{"embedding_length", c.Hidden}, {"block_count", c.Layers}, {"feed_forward_length", c.Intermediate},
		{"attention.head_count", c.Heads}, {"attention.head_count_kv", c.KVHeads}} {
		if d.v <= 0 {
			return c, fmt.Errorf("metadata: %s%s must be positive, got %d", a, d.key, d.v)
		}
	}
	if c.Hidden%c.Heads != 0 {
		return c, fmt.Errorf("metadata: %sattention.head_count %d does not divide %sembedding_length %d", a, c.Heads, a, c.Hidden)
	}
	c.HeadDim = c.Hidden / c.Heads
	for _, key := range []string{"attention.key_length", "attention.value_length", "rope.dimension_count"} {
		if n := md.int(a+key, c.HeadDim); n != c.HeadDim && md.err == nil {
			md.err = fmt.Errorf("metadata: %s%s is %d, but only %d (embedding_length/head_count) is supported", a, key, n, c.HeadDim)
		}
	}

	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return c, errors.New("missing tensor token_embd.weight")
	}
	if len(emb.Dims) != 2 {
		return c, fmt.Errorf("tensor token_embd.weight has dims %v, want 2", emb.Dims)
	}
	c.Vocab = int(emb.Dims[1])
	tokens, _ := md.value(keyTokens).([]string)
	c.TokenVocab = md.int(a+"vocab_size", c.Vocab)
	if !md.has(a+"vocab_size") && tokens != nil {
		c.TokenVocab = len(tokens)
	}
	if c.TokenVocab > c.Vocab {
		return c, fmt.Errorf("metadata: the vocabulary of %d tokens is larger than token_embd.weight's %d rows", c.TokenVocab, c.Vocab)
	}
	_, hasHead := f.Tensor("output.weight")
	c.TiedHead = !hasHead

	c.Mask = md.id(keyMask)
	c.BOS = md.id(keyBOS)
	c.EOS = md.id(keyEOS)
	c.Pad = md.id(keyPad)
	c.Expand = md.id(keyExpand)
	if md.err != nil {
		return c, md.err
	}
	for i, tok := range tokens {
		if c.Mask < 0 && slices.Contains(maskNames, tok) {
			c.Mask = int32(i)
		}
		if c.Expand < 0 && tok == expandName {
			c.Expand = int32(i)
		}
	}
	if c.Mask < 0 {
		return c, fmt.Errorf("metadata: no %s, and no mask token (%s) in %s", keyMask, strings.Join(maskNames, " "), keyTokens)
	}
	d := decoding{thresholdKey: "metadata: " + keyThreshold, contextKey: "metadata: " + keyContextTokens,
		refreshKey: "metadata: " + keyRefreshRadius}
	if md.has(keyThreshold) {
		v := md.float(keyThreshold, 0)
		d.threshold = &v
	}
	for _, k := range []struct {
		key string
		dst **int
	}{{keyContextTokens, &d.contextTokens}, {keyRefreshRadius, &d.refreshRadius}} {
		if md.has(k.key) {
			n := md.int(k.key, 0)
			*k.dst = &n
		}
	}
	if md.err != nil {
		return c, md.err
	}
	if err := c.setDecoding(d); err != nil {
		return c, err
	}
	if err := c.validate(); err != nil {
		// validate names config.json keys; the values came from metadata.
		return c, fmt.Errorf("metadata: %s (named as in config.json)", strings.TrimPrefix(err.Error(), ConfigFile+": "))
	}
	return c, nil
}

// ggufFields reads typed metadata, remembering the first error.
type ggufFields struct {
	f   *gguf.File
	err error
}

func (m *ggufFields) has(key string) bool { _, ok := m.f.Value(key); return ok }

func (m *ggufFields) value(key string) any { v, _ := m.f.Value(key); return v }

func (m *ggufFields) fail(key string, v any, want string) {
	if m.err == nil {
		m.err = fmt.Errorf("metadata: %s is %v (%T), want %s", key, v, v, want)
	}
}

func (m *ggufFields) str(key string) string {
	v, ok := m.f.Value(key)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		m.fail(key, v, "a string")
	}
	return s
}

func (m *ggufFields) required(key string) int {
	if !m.has(key) && m.err == nil {
		m.err = fmt.Errorf("metadata: %s is missing", key)
	}
	return m.int(key, 0)
}

// int reads an integer of any width that fits in an int32.
func (m *ggufFields) int(key string, def int) int {
	v, ok := m.f.Value(key)
	if !ok {
		return def
	}
	var n int64
	switch x := v.(type) {
	case uint8:
		n = int64(x)
	case int8:
		n = int64(x)
	case uint16:
		n = int64(x)
	case int16:
		n = int64(x)
	case uint32:
		n = int64(x)
	case int32:
		n = int64(x)
	case uint64:
		if x > math.MaxInt32 {
			m.fail(key, v, "an integer below 2³¹")
			return def
		}
		n = int64(x)
	case int64:
		n = x
	default:
		m.fail(key, v, "an integer")
		return def
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		m.fail(key, v, "an integer below 2³¹")
		return def
	}
	return int(n)
}

// float reads a float32 or float64. A float32 is widened through its
// shortest decimal form, so that 1e-5 written by a converter reads back as
// 1e-5 rather than 9.99999974737875e-06.
func (m *ggufFields) float(key string, def float64) float64 {
	v, ok := m.f.Value(key)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case float32:
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return f
	case float64:
		return x
	}
	m.fail(key, v, "a float")
	return def
}

func (m *ggufFields) bool(key string, def bool) bool {
	v, ok := m.f.Value(key)
	if !ok {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		m.fail(key, v, "a bool")
		return def
	}
	return b
}

func (m *ggufFields) id(key string) int32 {
	if !m.has(key) {
		return -1
	}
	return int32(m.int(key, -1))
}

// ggufName maps a tensor name of the Hugging Face layouts (as in specs) to
// llama.cpp's.
func ggufName(hf string) string {
	switch hf {
	case "model.embed_tokens.weight", "model.transformer.wte.weight":
		return "token_embd.weight"
	case "model.norm.weight", "model.transformer.ln_f.weight":
		return "output_norm.weight"
	case "lm_head.weight", "model.transformer.ff_out.weight":
		return "output.weight"
	}
	rest, ok := strings.CutPrefix(hf, "model.layers.")
	if !ok {
		rest, ok = strings.CutPrefix(hf, "model.transformer.blocks.")
	}
	if !ok {
		return hf
	}
	layer, suffix, _ := strings.Cut(rest, ".")
	if g, ok := ggufLayerNames[suffix]; ok {
		return "blk." + layer + "." + g
	}
	return hf
}

// ggufLayerNames maps the per-layer names of both HF layouts to llama.cpp's.
var ggufLayerNames = map[string]string{
	// Qwen2 / Dream
	"input_layernorm.weight":          "attn_norm.weight",
	"self_attn.q_proj.weight":         "attn_q.weight",
	"self_attn.k_proj.weight":         "attn_k.weight",
	"self_attn.v_proj.weight":         "attn_v.weight",
	"self_attn.q_proj.bias":           "attn_q.bias",
	"self_attn.k_proj.bias":           "attn_k.bias",
	"self_attn.v_proj.bias":           "attn_v.bias",
	"self_attn.o_proj.weight":         "attn_output.weight",
	"post_attention_layernorm.weight": "ffn_norm.weight",
	"mlp.gate_proj.weight":            "ffn_gate.weight",
	"mlp.up_proj.weight":              "ffn_up.weight",
	"mlp.down_proj.weight":            "ffn_down.weight",
	// LLaDA
	"attn_norm.weight": "attn_norm.weight",
	"q_proj.weight":    "attn_q.weight",
	"k_proj.weight":    "attn_k.weight",
	"v_proj.weight":    "attn_v.weight",
	"q_proj.bias":      "attn_q.bias",
	"k_proj.bias":      "attn_k.bias",
	"v_proj.bias":      "attn_v.bias",
	"attn_out.weight":  "attn_output.weight",
	"ff_norm.weight":   "ffn_norm.weight",
	"ff_proj.weight":   "ffn_gate.weight",
	"up_proj.weight":   "ffn_up.weight",
	"ff_out.weight":    "ffn_down.weight",
}

// ropePermutation returns the number of heads whose rows llama.cpp's
// converter interleaves in the named GGUF tensor, or 0 when it stores the
// tensor as trained.
func (c *Config) ropePermutation(gguf string) int {
	if c.Family != LLaDA {
		return 0
	}
	switch {
	case strings.HasSuffix(gguf, ".attn_q.weight"), strings.HasSuffix(gguf, ".attn_q.bias"):
		return c.Heads
	case strings.HasSuffix(gguf, ".attn_k.weight"), strings.HasSuffix(gguf, ".attn_k.bias"):
		return c.KVHeads
	}
	return 0
}

// permuteRope reorders the rows (of cols values each) within each of heads
// heads: forward moves row j·D/2+i of a head of D rows to row 2i+j, as
// llama.cpp's LLaDA converter does, so that rotating adjacent pairs equals
// rotating the two halves; inverse undoes it. It returns a new slice. A
// row of a quantized tensor is whole blocks, so the same works on its
// bytes with cols the bytes per row.
func permuteRope[T any](v []T, heads, cols int, inverse bool) []T {
	out := make([]T, len(v))
	rows := len(v) / cols
	d := rows / heads
	half := d / 2
	for h := range heads {
		for j := range 2 {
			for i := range half {
				split := (h*d + j*half + i) * cols // half-split (HF) row
				pair := (h*d + 2*i + j) * cols     // interleaved (llama.cpp) row
				if inverse {
					copy(out[split:split+cols], v[pair:pair+cols])
				} else {
					copy(out[pair:pair+cols], v[split:split+cols])
				}
			}
		}
	}
	return out
}

// ggufFileType is llama.cpp's general.file_type (llama_ftype) for a file
// whose matrices are stored as t; for the K types the "small" mix (_S), as
// no matrix is given a larger type on purpose.
func ggufFileType(t gguf.Type) uint32 {
	switch t {
	case gguf.F16:
		return 1 // MOSTLY_F16
	case gguf.Q4_0:
		return 2 // MOSTLY_Q4_0
	case gguf.Q8_0:
		return 7 // MOSTLY_Q8_0
	case gguf.Q4_K:
		return 14 // MOSTLY_Q4_K_S
	case gguf.Q5_K:
		return 16 // MOSTLY_Q5_K_S
	case gguf.Q6_K:
		return 18 // MOSTLY_Q6_K
	case gguf.BF16:
		return 32 // MOSTLY_BF16
	}
	return 0 // ALL_F32
}

// ConvertToGGUF writes the model in the Hugging Face directory dir to w as
// GGUF, with llama.cpp's names and metadata, matrices stored as typ and
// vectors (norms, biases) as F32, as llama.cpp's converter does. A matrix
// whose rows are not a multiple of Q8_0's 32-value block is stored as F16
// (for the other block types, see gguf.Type.Fallback). Tensors are read
// one at a time from the memory-mapped safetensors. The tokenizer is
// written when dir has one GGUF can describe (GGUFTokenizerMetadata);
// otherwise the file has none.
func ConvertToGGUF(dir string, w io.Writer, typ gguf.Type) error {
	if err := convertToGGUF(dir, w, typ); err != nil {
		return fmt.Errorf("convert %s: %w", dir, err)
	}
	return nil
}

func convertToGGUF(dir string, w io.Writer, typ gguf.Type) error {
	if !typ.Supported() {
		return fmt.Errorf("tensor type %s cannot be written", typ)
	}
	if err := isDir(dir); err != nil {
		return err
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return err
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return err
	}
	defer set.Close()
	if _, err := inspect(cfg, set); err != nil {
		return err
	}
	var tensors []gguf.WriteTensor
	var weights Weights
	for _, s := range cfg.specs(&weights) {
		name := ggufName(s.name)
		t, _ := set.Tensor(s.name)
		shape := s.shape
		wt := gguf.WriteTensor{Name: name, Shape: shape, Type: typ}
		if len(shape) == 1 {
			wt.Type = gguf.F32
		} else if typ == gguf.Q8_0 && shape[len(shape)-1]%32 != 0 {
			wt.Type = gguf.F16
		}
		perm := cfg.ropePermutation(name)
		wt.Data = func() ([]float32, error) {
			v, err := t.Float32()
			if err != nil || perm == 0 {
				return v, err
			}
			return permuteRope(v, perm, len(v)/shape[0], false), nil
		}
		tensors = append(tensors, wt)
	}
	md := ggufMetadata(cfg, filepath.Base(filepath.Clean(dir)), typ)
	if tok, err := GGUFTokenizerMetadata(dir, cfg.Vocab); err == nil {
		md = append(md, tok...)
	}
	return gguf.Write(w, md, tensors)
}

// ggufMetadata is what llama.cpp's converter writes for the family, less
// the tokenizer.
func ggufMetadata(c Config, name string, typ gguf.Type) []gguf.KV {
	arch := ggufArch(c.Family)
	a := arch + "."
	md := []gguf.KV{
		{Key: keyArch, Value: arch},
		{Key: keyName, Value: name},
		{Key: keyFileType, Value: ggufFileType(typ)},
	}
	if c.MaxPositions > 0 {
		md = append(md, gguf.KV{Key: a + "context_length", Value: uint32(c.MaxPositions)})
	}
	md = append(md,
		gguf.KV{Key: a + "embedding_length", Value: uint32(c.Hidden)},
		gguf.KV{Key: a + "block_count", Value: uint32(c.Layers)},
		gguf.KV{Key: a + "feed_forward_length", Value: uint32(c.Intermediate)},
		gguf.KV{Key: a + "attention.head_count", Value: uint32(c.Heads)},
		gguf.KV{Key: a + "attention.head_count_kv", Value: uint32(c.KVHeads)},
		gguf.KV{Key: a + "rope.dimension_count", Value: uint32(c.HeadDim)},
		gguf.KV{Key: a + "rope.freq_base", Value: float32(c.RopeTheta)},
		gguf.KV{Key: a + "attention.layer_norm_rms_epsilon", Value: float32(c.NormEps)},
		gguf.KV{Key: a + "vocab_size", Value: uint32(c.TokenVocab)},
		// These are masked-diffusion models: bidirectional attention.
		gguf.KV{Key: a + "attention.causal", Value: false},
		gguf.KV{Key: keyShiftLogits, Value: c.ShiftLogits},
	)
	for _, t := range []struct {
		key string
		id  int32
	}{{keyMask, c.Mask}, {keyBOS, c.BOS}, {keyEOS, c.EOS}, {keyPad, c.Pad}, {keyExpand, c.Expand}} {
		if t.id >= 0 {
			md = append(md, gguf.KV{Key: t.key, Value: uint32(t.id)})
		}
	}
	if c.Threshold > 0 {
		md = append(md, gguf.KV{Key: keyThreshold, Value: float32(c.Threshold)})
	}
	if c.ContextTokens > 0 {
		md = append(md, gguf.KV{Key: keyContextTokens, Value: uint32(c.ContextTokens)})
	}
	if c.RefreshRadius > 0 {
		md = append(md, gguf.KV{Key: keyRefreshRadius, Value: uint32(c.RefreshRadius)})
	}
	return md
}
