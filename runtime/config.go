package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
)

// Family is a network layout: which tensor names, which config keys, and
// whether the output rows are shifted.
type Family int

const (
	// Dream is Dream, Dream-Coder, DiffuCoder and DreamOn: a Qwen2 network
	// without a causal mask (model_type "Dream").
	Dream Family = iota + 1
	// Qwen2 is a stock Qwen2 checkpoint trained as a masked-diffusion model,
	// such as Open-dCoder (model_type "qwen2"); its mask token is in the
	// tokenizer files.
	Qwen2
	// LLaDA is LLaDA's OLMo-derived network (model_type "llada").
	LLaDA
)

func (f Family) String() string {
	switch f {
	case Dream:
		return "Dream"
	case Qwen2:
		return "Qwen2"
	case LLaDA:
		return "LLaDA"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// Config is what the forward pass needs to know about a model, gathered
// from config.json (and, for special tokens, the tokenizer files). The HF key
// of each field is given as Dream/Qwen2 | LLaDA.
type Config struct {
	Family    Family
	ModelType string // model_type as written in config.json

	Hidden       int // hidden_size | d_model
	Intermediate int // intermediate_size | mlp_hidden_size (or mlp_ratio·d_model)
	Layers       int // num_hidden_layers | n_layers
	Heads        int // num_attention_heads | n_heads
	KVHeads      int // num_key_value_heads | n_kv_heads; Heads/KVHeads query heads share one K/V head
	HeadDim      int // Hidden / Heads
	// Vocab is the number of rows of the embedding and of the output head,
	// and so the width of a logits row: vocab_size | embedding_size.
	Vocab int
	// TokenVocab is vocab_size: the ids a tokenizer may produce. LLaDA pads
	// its embedding to embedding_size ≥ vocab_size rows; elsewhere it equals
	// Vocab.
	TokenVocab   int
	MaxPositions int     // max_position_embeddings | max_sequence_length; 0 if absent
	RopeTheta    float64 // rope_theta
	NormEps      float64 // rms_norm_eps
	TiedHead     bool    // tie_word_embeddings | weight_tying: the head is the embedding
	QKVBias      bool    // q/k/v projections have a bias: always for Qwen2 layouts, include_qkv_bias for LLaDA
	// ShiftLogits says that output row i predicts token i+1 (Dream, Qwen2)
	// rather than token i (LLaDA). The runtime never shifts; samplers do.
	ShiftLogits bool

	// Special token ids, -1 when the model has none. Mask is always set.
	Mask, EOS, Pad, BOS int32
	// Expand is DreamOn's <|expand|>, which the sampler turns into two masks.
	Expand int32

	// Decoding defaults the model's authors chose, in
	// generation_config.json; 0 if absent. Threshold is the threshold
	// sampler's τ ("threshold", Fast-dLLM's name); ContextTokens the
	// context budget that infills best ("context_tokens", infuse's own key:
	// a model may do better seeing less than it was trained on);
	// RefreshRadius how many positions each side of a span a refresh of
	// the cache recomputes ("refresh_radius", infuse's own key; absent:
	// the whole canvas).
	Threshold     float64
	ContextTokens int
	RefreshRadius int
}

// decoding is a model's decoding defaults as a file gives them (nil:
// absent), and the names it gives them, for errors.
type decoding struct {
	threshold                            *float64
	contextTokens, refreshRadius         *int
	thresholdKey, contextKey, refreshKey string
}

// GenerationFile is a model directory's optional generation defaults.
const GenerationFile = "generation_config.json"

// ConfigFile is the name of a model directory's configuration.
const ConfigFile = "config.json"

// LoadConfig reads config.json and the tokenizer files of a model directory.
func LoadConfig(dir string) (Config, error) {
	return ReadConfig(os.DirFS(dir))
}

// ReadConfig reads config.json, and the added tokens of added_tokens.json,
// tokenizer_config.json and tokenizer.json, from the root of fsys. It picks
// the family from model_type and checks that the shapes are consistent.
func ReadConfig(fsys fs.FS) (Config, error) {
	data, err := fs.ReadFile(fsys, ConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("no %s: not a Hugging Face model directory", ConfigFile)
	}
	if err != nil {
		return Config{}, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("%s: %v", ConfigFile, err)
	}
	j := jsonFields{file: ConfigFile, raw: raw}
	modelType := j.str("model_type", "")
	archs := j.strs("architectures")
	var c Config
	switch strings.ToLower(modelType) {
	case "dream":
		c, err = qwen2Config(&j, Dream)
	case "qwen2":
		c, err = qwen2Config(&j, Qwen2)
	case "llada":
		c, err = lladaConfig(&j)
	case "":
		if len(archs) > 0 && strings.HasPrefix(archs[0], "LLaDA") {
			c, err = lladaConfig(&j)
			break
		}
		return Config{}, fmt.Errorf("%s: no model_type (want Dream, qwen2 or llada)", ConfigFile)
	default:
		return Config{}, fmt.Errorf("%s: model_type %q is not supported (want Dream, qwen2 or llada)", ConfigFile, modelType)
	}
	if err != nil {
		return Config{}, err
	}
	if j.err != nil {
		return Config{}, j.err
	}
	c.ModelType = modelType
	if err := c.specialTokens(fsys, &j); err != nil {
		return Config{}, err
	}
	if err := c.generation(fsys); err != nil {
		return Config{}, err
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// generation reads the decoding defaults of generation_config.json that
// infuse uses, if the file is there. Its other keys (Dream's alg, steps,
// temperature) are chat settings, not infilling ones, and are left alone.
func (c *Config) generation(fsys fs.FS) error {
	data, err := fs.ReadFile(fsys, GenerationFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var g struct {
		Threshold     *float64 `json:"threshold"`
		ContextTokens *int     `json:"context_tokens"`
		RefreshRadius *int     `json:"refresh_radius"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		return fmt.Errorf("%s: %v", GenerationFile, err)
	}
	return c.setDecoding(decoding{g.Threshold, g.ContextTokens, g.RefreshRadius,
		GenerationFile + ": threshold", GenerationFile + ": context_tokens", GenerationFile + ": refresh_radius"})
}

// setDecoding sets the decoding defaults that are given, after checking
// them.
func (c *Config) setDecoding(d decoding) error {
	if d.threshold != nil {
		if *d.threshold <= 0 || *d.threshold > 1 {
			return fmt.Errorf("%s %v outside (0,1]", d.thresholdKey, *d.threshold)
		}
		c.Threshold = *d.threshold
	}
	if d.contextTokens != nil {
		if n := *d.contextTokens; n < 64 || (c.MaxPositions > 0 && n > c.MaxPositions) {
			return fmt.Errorf("%s %d: want at least 64 and at most max_position_embeddings (%d)", d.contextKey, n, c.MaxPositions)
		}
		c.ContextTokens = *d.contextTokens
	}
	if d.refreshRadius != nil {
		if *d.refreshRadius < 1 {
			return fmt.Errorf("%s %d: want at least 1 (leave it out for the whole canvas)", d.refreshKey, *d.refreshRadius)
		}
		c.RefreshRadius = *d.refreshRadius
	}
	return nil
}

// qwen2Config reads the transformers Qwen2Config keys (also Dream's).
func qwen2Config(j *jsonFields, f Family) (Config, error) {
	c := Config{
		Family:       f,
		Hidden:       j.required("hidden_size"),
		Intermediate: j.required("intermediate_size"),
		Layers:       j.required("num_hidden_layers"),
		Heads:        j.required("num_attention_heads"),
		Vocab:        j.required("vocab_size"),
		MaxPositions: j.int("max_position_embeddings", 0),
		RopeTheta:    j.float("rope_theta", 10000),
		NormEps:      j.float("rms_norm_eps", 1e-6),
		TiedHead:     j.bool("tie_word_embeddings", false),
		QKVBias:      true,
		ShiftLogits:  true,
	}
	c.KVHeads = j.int("num_key_value_heads", c.Heads)
	c.TokenVocab = c.Vocab
	if act := j.str("hidden_act", "silu"); act != "silu" {
		return c, fmt.Errorf("%s: hidden_act %q is not supported (want silu)", ConfigFile, act)
	}
	if j.present("rope_scaling") {
		return c, fmt.Errorf("%s: rope_scaling is not supported", ConfigFile)
	}
	if j.bool("use_sliding_window", false) {
		return c, fmt.Errorf("%s: use_sliding_window is not supported", ConfigFile)
	}
	if j.bool("use_mrope", false) {
		return c, fmt.Errorf("%s: use_mrope is not supported", ConfigFile)
	}
	if c.Heads > 0 {
		if c.Hidden%c.Heads != 0 {
			return c, fmt.Errorf("%s: num_attention_heads %d does not divide hidden_size %d", ConfigFile, c.Heads, c.Hidden)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	c.Mask = j.id("mask_token_id")
	c.EOS = j.id("eos_token_id")
	c.Pad = j.id("pad_token_id")
	c.BOS = j.id("bos_token_id")
	return c, nil
}

// lladaConfig reads LLaDA's OLMo ModelConfig keys. Only the "llama" block
// with RMS norms, SiLU and RoPE is what LLaDA checkpoints use; other OLMo
// options are refused by name rather than silently ignored.
func lladaConfig(j *jsonFields) (Config, error) {
	c := Config{
		Family:       LLaDA,
		Hidden:       j.required("d_model"),
		Layers:       j.required("n_layers"),
		Heads:        j.required("n_heads"),
		TokenVocab:   j.required("vocab_size"),
		MaxPositions: j.int("max_sequence_length", 0),
		RopeTheta:    j.float("rope_theta", 10000),
		NormEps:      j.float("rms_norm_eps", 1e-5),
		TiedHead:     j.bool("weight_tying", true), // OLMo's default
		QKVBias:      j.bool("include_qkv_bias", false),
	}
	c.Vocab = j.int("embedding_size", c.TokenVocab)
	c.Intermediate = j.int("mlp_hidden_size", j.int("mlp_ratio", 4)*c.Hidden)
	c.KVHeads = j.int("n_kv_heads", c.Heads)
	if j.bool("multi_query_attention", false) {
		c.KVHeads = 1
	}
	for _, w := range []struct{ key, want string }{
		{"block_type", "llama"},
		{"layer_norm_type", "rms"},
		{"activation_type", "silu"},
	} {
		if got := j.str(w.key, ""); got != w.want {
			return c, fmt.Errorf("%s: %s %q is not supported (want %q)", ConfigFile, w.key, got, w.want)
		}
	}
	if !j.bool("rope", false) {
		return c, fmt.Errorf("%s: rope is not true; only rotary position embeddings are supported", ConfigFile)
	}
	for _, key := range []string{"alibi", "include_bias", "attention_layer_norm", "input_emb_norm", "scale_logits"} {
		if j.bool(key, false) {
			return c, fmt.Errorf("%s: %s is true, which is not supported", ConfigFile, key)
		}
	}
	if j.present("clip_qkv") {
		return c, fmt.Errorf("%s: clip_qkv is not supported", ConfigFile)
	}
	if !j.bool("layer_norm_with_affine", true) {
		return c, fmt.Errorf("%s: layer_norm_with_affine false is not supported", ConfigFile)
	}
	if c.Vocab < c.TokenVocab {
		return c, fmt.Errorf("%s: embedding_size %d is smaller than vocab_size %d", ConfigFile, c.Vocab, c.TokenVocab)
	}
	if c.Heads > 0 {
		if c.Hidden%c.Heads != 0 {
			return c, fmt.Errorf("%s: n_heads %d does not divide d_model %d", ConfigFile, c.Heads, c.Hidden)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	c.Mask = j.id("mask_token_id")
	c.EOS = j.id("eos_token_id")
	c.Pad = j.id("pad_token_id")
	c.BOS = j.id("bos_token_id")
	return c, nil
}

// validate checks what every family needs. Keys are named as in a Qwen2
// config; the LLaDA spelling follows in parentheses.
func (c *Config) validate() error {
	for _, d := range []struct {
		key string
		v   int
	}{
		{"hidden_size (d_model)", c.Hidden},
		{"intermediate_size (mlp_hidden_size)", c.Intermediate},
		{"num_hidden_layers (n_layers)", c.Layers},
		{"num_attention_heads (n_heads)", c.Heads},
		{"num_key_value_heads (n_kv_heads)", c.KVHeads},
		{"vocab_size", c.Vocab},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s: %s must be positive, got %d", ConfigFile, d.key, d.v)
		}
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("%s: num_key_value_heads (n_kv_heads) %d does not divide num_attention_heads %d", ConfigFile, c.KVHeads, c.Heads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("%s: head size %d (hidden/heads) is odd; rotary embeddings need it even", ConfigFile, c.HeadDim)
	}
	if !(c.RopeTheta > 1) || math.IsInf(c.RopeTheta, 0) {
		return fmt.Errorf("%s: rope_theta must be a finite number above 1, got %g", ConfigFile, c.RopeTheta)
	}
	if !(c.NormEps >= 0) || c.NormEps > 1 {
		return fmt.Errorf("%s: rms_norm_eps must be in [0, 1], got %g", ConfigFile, c.NormEps)
	}
	if c.MaxPositions < 0 {
		return fmt.Errorf("%s: max position count must not be negative, got %d", ConfigFile, c.MaxPositions)
	}
	// Keep the largest buffers addressable by int32 on any platform.
	if int64(c.Vocab)*int64(c.Hidden) > math.MaxInt32 || int64(c.Intermediate)*int64(c.Hidden) > math.MaxInt32 {
		return fmt.Errorf("%s: vocab or intermediate size times hidden size exceeds 2³¹ elements", ConfigFile)
	}
	for _, t := range []struct {
		name string
		id   int32
	}{{"mask", c.Mask}, {"eos", c.EOS}, {"pad", c.Pad}, {"bos", c.BOS}, {"expand", c.Expand}} {
		if t.id < -1 || int(t.id) >= c.Vocab {
			return fmt.Errorf("%s: %s token id %d is outside the vocabulary of %d rows", ConfigFile, t.name, t.id, c.Vocab)
		}
	}
	return nil
}

// maskNames are the spellings of the mask token in the tokenizers of
// diffusion checkpoints, most specific first: Dream's <|mask|>, LLaDA's
// <|mdm_mask|>, Open-dCoder's <M>, and the generic <mask>.
var maskNames = []string{"<|mask|>", "<|mdm_mask|>", "<M>", "<mask>"}

// expandName is DreamOn's token that the sampler grows into two masks.
const expandName = "<|expand|>"

// specialTokens fills the ids that config.json lacks from the tokenizer
// files, and finds the mask of a Qwen2 checkpoint, which only the tokenizer
// records.
func (c *Config) specialTokens(fsys fs.FS, j *jsonFields) error {
	tok, err := readAddedTokens(fsys)
	if err != nil {
		return err
	}
	if c.Mask < 0 {
		if name := tok.named["mask_token"]; name != "" {
			if id, ok := tok.ids[name]; ok {
				c.Mask = id
			}
		}
	}
	for _, name := range maskNames {
		if c.Mask >= 0 {
			break
		}
		if id, ok := tok.ids[name]; ok {
			c.Mask = id
		}
	}
	if c.Mask < 0 {
		if c.Family == Qwen2 {
			return fmt.Errorf("qwen2 model has no mask token (none of %s in added_tokens.json, tokenizer.json or tokenizer_config.json): it is an autoregressive model, not a masked-diffusion one", strings.Join(maskNames, " "))
		}
		return fmt.Errorf("%s: no mask_token_id, and no mask token in the tokenizer files", ConfigFile)
	}
	for _, s := range []struct {
		id  *int32
		key string
	}{{&c.EOS, "eos_token"}, {&c.Pad, "pad_token"}, {&c.BOS, "bos_token"}} {
		if *s.id >= 0 {
			continue
		}
		if id, ok := tok.ids[tok.named[s.key]]; ok {
			*s.id = id
		}
	}
	c.Expand = -1
	if id, ok := tok.ids[expandName]; ok {
		c.Expand = id
	}
	return nil
}

// addedTokens is what the tokenizer files say about special tokens: the id
// of each added token, and which token tokenizer_config.json names as its
// mask_token, eos_token, pad_token and bos_token.
type addedTokens struct {
	ids   map[string]int32
	named map[string]string
}

// readAddedTokens reads the added tokens of whichever of the three HF
// tokenizer files exist; a file that exists but cannot be parsed is an
// error, since a silently missed mask token would make the model useless.
func readAddedTokens(fsys fs.FS) (addedTokens, error) {
	tok := addedTokens{ids: map[string]int32{}, named: map[string]string{}}
	read := func(name string, v any) (bool, error) {
		data, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if err := json.Unmarshal(data, v); err != nil {
			return false, fmt.Errorf("%s: %v", name, err)
		}
		return true, nil
	}
	var added map[string]int32
	if _, err := read("added_tokens.json", &added); err != nil {
		return tok, err
	}
	for name, id := range added {
		tok.ids[name] = id
	}
	var tj struct {
		AddedTokens []struct {
			ID      int32  `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	if _, err := read("tokenizer.json", &tj); err != nil {
		return tok, err
	}
	for _, t := range tj.AddedTokens {
		tok.ids[t.Content] = t.ID
	}
	var tc map[string]json.RawMessage
	if _, err := read("tokenizer_config.json", &tc); err != nil {
		return tok, err
	}
	if raw, ok := tc["added_tokens_decoder"]; ok {
		var dec map[string]struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(raw, &dec); err != nil {
			return tok, fmt.Errorf("tokenizer_config.json: added_tokens_decoder: %v", err)
		}
		for id, t := range dec {
			n, err := strconv.ParseInt(id, 10, 32)
			if err != nil {
				return tok, fmt.Errorf("tokenizer_config.json: added_tokens_decoder key %q is not an id", id)
			}
			tok.ids[t.Content] = int32(n)
		}
	}
	for _, key := range []string{"mask_token", "eos_token", "pad_token", "bos_token"} {
		// Either "<|mask|>" or {"content": "<|mask|>", ...}.
		var s string
		if json.Unmarshal(tc[key], &s) == nil {
			tok.named[key] = s
			continue
		}
		var obj struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(tc[key], &obj) == nil {
			tok.named[key] = obj.Content
		}
	}
	return tok, nil
}

// jsonFields reads typed values from a decoded JSON object, remembering the
// first type error so that the caller checks once.
type jsonFields struct {
	file string
	raw  map[string]json.RawMessage
	err  error
}

// present reports whether key is there and not null.
func (j *jsonFields) present(key string) bool {
	v, ok := j.raw[key]
	return ok && string(v) != "null"
}

func (j *jsonFields) decode(key string, v any) bool {
	if !j.present(key) {
		return false
	}
	if err := json.Unmarshal(j.raw[key], v); err != nil {
		if j.err == nil {
			j.err = fmt.Errorf("%s: %s: %s is not a %s", j.file, key, j.raw[key], jsonType(v))
		}
		return false
	}
	return true
}

func jsonType(v any) string {
	switch v.(type) {
	case *float64:
		return "number"
	case *bool:
		return "boolean"
	case *string:
		return "string"
	case *[]string:
		return "list of strings"
	}
	return fmt.Sprintf("%T", v)
}

// required reads an integer that must be present.
func (j *jsonFields) required(key string) int {
	if !j.present(key) && j.err == nil {
		j.err = fmt.Errorf("%s: %s is missing", j.file, key)
	}
	return j.int(key, 0)
}

func (j *jsonFields) int(key string, def int) int {
	var f float64
	if !j.decode(key, &f) {
		return def
	}
	if f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		if j.err == nil {
			j.err = fmt.Errorf("%s: %s: %v is not an integer in range", j.file, key, f)
		}
		return def
	}
	return int(f)
}

func (j *jsonFields) float(key string, def float64) float64 {
	var f float64
	if !j.decode(key, &f) {
		return def
	}
	return f
}

func (j *jsonFields) bool(key string, def bool) bool {
	var b bool
	if !j.decode(key, &b) {
		return def
	}
	return b
}

func (j *jsonFields) str(key, def string) string {
	var s string
	if !j.decode(key, &s) {
		return def
	}
	return s
}

func (j *jsonFields) strs(key string) []string {
	var s []string
	j.decode(key, &s)
	return s
}

// id reads a token id, which may be a number, a list of numbers (the first
// is taken, as generation_config's eos lists do), or null; -1 when absent.
func (j *jsonFields) id(key string) int32 {
	if !j.present(key) {
		return -1
	}
	var list []float64
	if json.Unmarshal(j.raw[key], &list) == nil {
		if len(list) == 0 {
			return -1
		}
		return j.checkID(key, list[0])
	}
	var f float64
	if !j.decode(key, &f) {
		return -1
	}
	return j.checkID(key, f)
}

func (j *jsonFields) checkID(key string, f float64) int32 {
	if f != math.Trunc(f) || f < -1 || f > math.MaxInt32 {
		if j.err == nil {
			j.err = fmt.Errorf("%s: %s: %v is not a token id", j.file, key, f)
		}
		return -1
	}
	return int32(f)
}
