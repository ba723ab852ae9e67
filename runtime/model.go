// Package runtime loads a masked-diffusion language model and runs its
// network. Call [Load] (or [LoadFS]) for a [Model], [Model.NewState] for the
// buffers of one sequence, then [State.Forward] and [State.Logits].
//
// The model only computes: which positions to unmask, and with what, is the
// sampler's business (package infill).
package runtime

import (
	"github.com/infuse-lsp/infuse/kernels/cpu"

	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/infuse-lsp/infuse/runtime/safetensors"
)

// Weights are the network's parameters as float32, row-major, laid out as
// PyTorch's nn.Linear stores them: [out, in]. Slices may alias a
// memory-mapped file and must not be written. A matrix stored as BF16,
// F16 or in a ggml block type (Q8_0, Q4_K, ...) is packed from the file's
// bytes, to be computed in that type (see packedWeights), and its slice
// here is nil; the embedding, norms and biases are always present.
type Weights struct {
	Embed  []float32 // [Vocab, Hidden]
	Layers []Layer
	Norm   []float32 // [Hidden] final RMSNorm
	Head   []float32 // [Vocab, Hidden]; the same slice as Embed when tied
}

// Layer is one transformer block. Tensor names are Qwen2's (Dream's) and
// LLaDA's.
type Layer struct {
	AttnNorm []float32 // [Hidden]                  input_layernorm | attn_norm
	Q        []float32 // [Heads·HeadDim, Hidden]   self_attn.q_proj | q_proj
	K        []float32 // [KVHeads·HeadDim, Hidden] self_attn.k_proj | k_proj
	V        []float32 // [KVHeads·HeadDim, Hidden] self_attn.v_proj | v_proj
	QBias    []float32 // [Heads·HeadDim] or nil
	KBias    []float32 // [KVHeads·HeadDim] or nil
	VBias    []float32 // [KVHeads·HeadDim] or nil
	O        []float32 // [Hidden, Heads·HeadDim]   self_attn.o_proj | attn_out
	MLPNorm  []float32 // [Hidden]                  post_attention_layernorm | ff_norm
	Gate     []float32 // [Intermediate, Hidden]    mlp.gate_proj | ff_proj
	Up       []float32 // [Intermediate, Hidden]    mlp.up_proj | up_proj
	Down     []float32 // [Hidden, Intermediate]    mlp.down_proj | ff_out
}

// Model is a loaded network. It is safe for concurrent use by States.
type Model struct {
	Config  Config
	Weights Weights

	packed  packedWeights // the matrices of Weights packed for the kernels
	amx     bool          // LoadOptions.AMX: States attend on AMX tiles too
	info    *Info
	weights *safetensors.Set
}

// Info describes a model directory: its configuration and what its weight
// files hold. [Inspect] reads it without converting any weights.
type Info struct {
	Config  Config
	Params  int64          // parameters the network uses (a tied head counted once)
	Bytes   int64          // bytes those parameters take in the files
	DTypes  map[string]int // stored dtype → number of tensors
	Files   []string       // weight files
	Unused  []string       // tensors in the files that the network does not use
	Tensors []TensorInfo   // the tensors used, in load order
}

// TensorInfo is one tensor the network uses.
type TensorInfo struct {
	Name  string
	DType string
	Shape []int
}

// Load loads the model in a Hugging Face directory: config.json, tokenizer
// files for special tokens, and model.safetensors or the shards of
// model.safetensors.index.json, which are memory-mapped. A path to a .gguf
// file is loaded with [LoadGGUF].
func Load(dir string) (*Model, error) { return LoadWith(dir, LoadOptions{}) }

// LoadWith is [Load] with options.
func LoadWith(dir string, o LoadOptions) (*Model, error) {
	if IsGGUF(dir) {
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			return LoadGGUFWith(dir, o)
		}
	}
	if err := isDir(dir); err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	m, err := load(os.DirFS(dir), func() (*safetensors.Set, error) { return safetensors.OpenDir(dir) }, o)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return m, nil
}

// LoadFS is [Load] over the root of fsys (an embedded model, say). Weight
// files are read with fs.ReadFile.
func LoadFS(fsys fs.FS) (*Model, error) { return LoadFSWith(fsys, LoadOptions{}) }

// LoadFSWith is [LoadFS] with options.
func LoadFSWith(fsys fs.FS, o LoadOptions) (*Model, error) {
	m, err := load(fsys, func() (*safetensors.Set, error) { return safetensors.OpenFS(fsys) }, o)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	return m, nil
}

// Inspect reads a model directory's configuration and weight headers, and
// checks every tensor's presence, dtype and shape, without loading weights.
func Inspect(dir string) (*Info, error) {
	if err := isDir(dir); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", dir, err)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", dir, err)
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", dir, err)
	}
	defer set.Close()
	info, err := inspect(cfg, set)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", dir, err)
	}
	return info, nil
}

// isDir reports a missing path, or a file given for a directory, before the
// config reader would call it a directory without config.json.
func isDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return errors.New("not a directory (want a Hugging Face model directory)")
	}
	return nil
}

func load(fsys fs.FS, open func() (*safetensors.Set, error), o LoadOptions) (*Model, error) {
	cfg, err := ReadConfig(fsys)
	if err != nil {
		return nil, err
	}
	set, err := open()
	if err != nil {
		return nil, err
	}
	info, err := inspect(cfg, set)
	if err != nil {
		set.Close()
		return nil, err
	}
	m := &Model{Config: cfg, info: info, weights: set}
	if err := m.convert(o); err != nil {
		set.Close()
		return nil, err
	}
	return m, nil
}

// Info returns what Load found in the model's files.
func (m *Model) Info() *Info { return m.info }

// Close releases the weight files. The model and its States must not be
// used afterwards.
func (m *Model) Close() error {
	m.Weights = Weights{}
	if m.weights == nil {
		return nil
	}
	err := m.weights.Close()
	m.weights = nil
	return err
}

// tensorSpec is one tensor the network needs: its name in the files, the
// shape the config implies, where it goes, and whether it may be absent.
type tensorSpec struct {
	name     string
	shape    []int
	dst      *[]float32
	optional bool
}

// specs lists every tensor of the family's layout, in file order, with the
// shape the config implies. This is the one place where the families' names
// differ.
func (c *Config) specs(w *Weights) []tensorSpec {
	h, q, kv := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	if len(w.Layers) != c.Layers {
		w.Layers = make([]Layer, c.Layers)
	}
	var embed, norm, head, layer string
	var ln [12]string // the per-layer names, in Layer's field order
	switch c.Family {
	case LLaDA:
		embed, norm, head = "model.transformer.wte.weight", "model.transformer.ln_f.weight", "model.transformer.ff_out.weight"
		layer = "model.transformer.blocks.%d."
		ln = [12]string{"attn_norm.weight", "q_proj.weight", "k_proj.weight", "v_proj.weight",
			"q_proj.bias", "k_proj.bias", "v_proj.bias", "attn_out.weight",
			"ff_norm.weight", "ff_proj.weight", "up_proj.weight", "ff_out.weight"}
	default:
		embed, norm, head = "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"
		layer = "model.layers.%d."
		ln = [12]string{"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
			"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
			"post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"}
	}
	specs := []tensorSpec{{name: embed, shape: []int{c.Vocab, h}, dst: &w.Embed}}
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf(layer, i)
		specs = append(specs,
			tensorSpec{name: p + ln[0], shape: []int{h}, dst: &l.AttnNorm},
			tensorSpec{name: p + ln[1], shape: []int{q, h}, dst: &l.Q},
			tensorSpec{name: p + ln[2], shape: []int{kv, h}, dst: &l.K},
			tensorSpec{name: p + ln[3], shape: []int{kv, h}, dst: &l.V})
		if c.QKVBias {
			specs = append(specs,
				tensorSpec{name: p + ln[4], shape: []int{q}, dst: &l.QBias},
				tensorSpec{name: p + ln[5], shape: []int{kv}, dst: &l.KBias},
				tensorSpec{name: p + ln[6], shape: []int{kv}, dst: &l.VBias})
		}
		specs = append(specs,
			tensorSpec{name: p + ln[7], shape: []int{h, q}, dst: &l.O},
			tensorSpec{name: p + ln[8], shape: []int{h}, dst: &l.MLPNorm},
			tensorSpec{name: p + ln[9], shape: []int{c.Intermediate, h}, dst: &l.Gate},
			tensorSpec{name: p + ln[10], shape: []int{c.Intermediate, h}, dst: &l.Up},
			tensorSpec{name: p + ln[11], shape: []int{h, c.Intermediate}, dst: &l.Down})
	}
	specs = append(specs, tensorSpec{name: norm, shape: []int{h}, dst: &w.Norm})
	if !c.TiedHead {
		specs = append(specs, tensorSpec{name: head, shape: []int{c.Vocab, h}, dst: &w.Head})
	}
	return specs
}

// inspect checks every tensor the config implies against the files.
func inspect(cfg Config, set *safetensors.Set) (*Info, error) {
	info := &Info{Config: cfg, DTypes: map[string]int{}, Files: set.Files()}
	used := map[string]bool{}
	var w Weights
	for _, s := range cfg.specs(&w) {
		t, ok := set.Tensor(s.name)
		if !ok {
			hint := ""
			if s.name == "lm_head.weight" || s.name == "model.transformer.ff_out.weight" {
				hint = " (the config says the head is not tied to the embedding)"
			}
			return nil, fmt.Errorf("missing tensor %s%s", s.name, hint)
		}
		switch t.DType {
		case safetensors.F32, safetensors.F16, safetensors.BF16:
		default:
			return nil, fmt.Errorf("tensor %s in %s has dtype %s; F32, F16 and BF16 are supported", s.name, t.File, t.DType)
		}
		if !slices.Equal(t.Shape, s.shape) {
			return nil, fmt.Errorf("tensor %s in %s has shape %v, but %s implies %v", s.name, t.File, t.Shape, ConfigFile, s.shape)
		}
		used[s.name] = true
		info.Params += int64(t.Len())
		info.Bytes += int64(len(t.Bytes()))
		info.DTypes[string(t.DType)]++
		info.Tensors = append(info.Tensors, TensorInfo{Name: s.name, DType: string(t.DType), Shape: t.Shape})
	}
	for _, name := range set.Names() {
		if !used[name] {
			info.Unused = append(info.Unused, name)
		}
	}
	return info, nil
}

// convert fills m.Weights from the checked files. BF16 and F16 matrices
// stay 16-bit: they are packed from the file's bytes and their Weights
// slices are left nil (the embedding, row-looked-up, is converted
// regardless).
func (m *Model) convert(o LoadOptions) error {
	low := lowTensors{}
	for _, s := range m.Config.specs(&m.Weights) {
		t, _ := m.weights.Tensor(s.name)
		if kind := stLowKind(t.DType); packStored && len(s.shape) == 2 && kind != 0 {
			low[s.dst] = &lowTensor{kind: kind, raw: t.Bytes(), rows: s.shape[0], cols: s.shape[1], f32: t.Float32}
			if s.dst != &m.Weights.Embed || !embedF32 {
				continue
			}
		}
		v, err := t.Float32()
		if err != nil {
			return err
		}
		*s.dst = v
	}
	if m.Config.TiedHead {
		m.Weights.Head = m.Weights.Embed
		low[&m.Weights.Head] = low[&m.Weights.Embed]
	}
	return m.pack(low, o)
}

// packStored says to keep matrices in their stored type; tests turn it off
// for a float32 reference of the same weights.
var packStored = true

// embedF32 says to convert a low-precision embedding to float32 in
// Weights.Embed. Off, the embedding stays packed (for a tied head, as the
// head itself) and Model.embedRow dequantizes the rows a pass looks up:
// for Qwen2.5-0.5B that saves 544 MB of float32. Tests turn it on for a
// reference.
var embedF32 = false

// lowKind is a stored type that a matrix is packed in as it is, rather
// than as float32.
type lowKind int

const (
	lowBF16 lowKind = iota + 1
	lowF16
	lowQ8_0
	lowQ4K
	// lowGGML is another ggml block type (Q4_0, Q5_K, Q6_K, ...), with no
	// kernel of its own: it is requantized to Q8_0 at load (see linear).
	lowGGML
)

// format is the cpu package's name for k, or 0 for lowGGML.
func (k lowKind) format() cpu.Format {
	switch k {
	case lowBF16:
		return cpu.FormatBF16
	case lowF16:
		return cpu.FormatF16
	case lowQ8_0:
		return cpu.FormatQ8_0
	case lowQ4K:
		return cpu.FormatQ4K
	}
	return 0
}

// stLowKind is the packed type of a safetensors matrix of dtype d, or 0
// for float32.
func stLowKind(d safetensors.DType) lowKind {
	switch d {
	case safetensors.BF16:
		return lowBF16
	case safetensors.F16:
		return lowF16
	}
	return 0
}

// lowTensor is a matrix as stored, for packing without widening it.
type lowTensor struct {
	kind       lowKind
	raw        []byte // rows of whole blocks, in the file's byte order
	rows, cols int
	f32        func() ([]float32, error) // the tensor widened, when it cannot stay as stored
}

// lowTensors maps a Weights slice left nil to the tensor it stands for.
type lowTensors map[*[]float32]*lowTensor

// packedWeights holds every matrix of the network packed once, at load, in
// the layout the matrix kernels read fastest, and in the stored type where
// the kernels have one (bf16, f16, Q8_0, Q4_K; see cpu.Linear). Projections that
// read the same input are packed as one matrix, so that a layer makes one
// product (and one fork-join across cores) for q, k and v, and one for gate
// and up: their outputs lie side by side in each row, q|k|v and gate|up.
type packedWeights struct {
	layers []packedLayer
	head   cpu.Linear
	embed  cpu.Linear // the embedding, when Weights.Embed is nil
}

type packedLayer struct {
	qkv, o, gateUp, down cpu.Linear
	qkvBias              []float32 // q|k|v biases, or nil
}

func (m *Model) pack(low lowTensors, o LoadOptions) error {
	c, w := &m.Config, &m.Weights
	m.amx = o.AMX
	qd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	m.packed.layers = make([]packedLayer, len(w.Layers))
	switch {
	case o.Q8 && o.AMX:
		return errors.New("load options: Q8 and AMX exclude each other")
	case o.Q8 && !cpu.Native(cpu.FormatQ8_0):
		return ErrNoInt8
	case o.AMX && !cpu.AMX():
		return ErrNoAMX
	}
	var err error
	lin := func(cols int, parts ...*[]float32) cpu.Linear {
		if err != nil {
			return nil
		}
		var a cpu.Linear
		a, err = low.linear(cols, o, parts...)
		return a
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		p := packedLayer{
			qkv:    lin(c.Hidden, &l.Q, &l.K, &l.V),
			o:      lin(qd, &l.O),
			gateUp: lin(c.Hidden, &l.Gate, &l.Up),
			down:   lin(c.Intermediate, &l.Down),
		}
		if l.QBias != nil || l.KBias != nil || l.VBias != nil {
			p.qkvBias = make([]float32, qd+2*kvd)
			copy(p.qkvBias, l.QBias)
			copy(p.qkvBias[qd:], l.KBias)
			copy(p.qkvBias[qd+kvd:], l.VBias)
		}
		m.packed.layers[i] = p
	}
	m.packed.head = lin(c.Hidden, &w.Head)
	quantEmbed := o.Q8 && c.Hidden%32 == 0 // as a Q8_0 file's embedding
	switch {
	case w.Embed != nil && !quantEmbed:
	case c.TiedHead:
		m.packed.embed = m.packed.head
	default:
		m.packed.embed = lin(c.Hidden, &w.Embed)
	}
	if quantEmbed {
		w.Embed = nil // embedRow reads the packed rows
	}
	return err
}

// embedRow writes the embedding of token tok, Hidden values, to dst: from
// Weights.Embed, or dequantized from the packed embedding.
func (m *Model) embedRow(dst []float32, tok int32) {
	if e := m.Weights.Embed; e != nil {
		h := m.Config.Hidden
		copy(dst[:h], e[int(tok)*h:])
		return
	}
	m.packed.embed.Row(dst, int(tok))
}

// linear packs the matrices parts, stacked by rows, each cols wide. Parts
// all stored in one type that has a kernel stay in it; parts all stored in
// ggml block types otherwise (as a Q4_K_M file's Q6_K head, or its Q4_K q
// and k with a Q6_K v) become Q8_0; the rest are widened to float32, as is
// everything on a machine without vector code for the type (cpu.Native):
// there, widening once at load beats widening on every product. With
// LoadOptions.Q8 float parts become Q8_0 too, with AMX bfloat16 tiles.
func (low lowTensors) linear(cols int, o LoadOptions, parts ...*[]float32) (cpu.Linear, error) {
	q8, amx := o.Q8, o.AMX
	first := low[parts[0]]
	same := first != nil
	rows := 0
	for _, p := range parts {
		if lt := low[p]; same && lt != nil && lt.kind == first.kind {
			rows += lt.rows
			continue
		}
		same = false
	}
	// bf16 parts go to AMX tiles as they are, not widened and rounded back.
	nativeBF16 := amx && same && first.kind == lowBF16
	if nativeBF16 || same && cpu.Native(first.kind.format()) && !((q8 || amx) && first.kind < lowQ8_0) {
		raw := first.raw
		if len(parts) > 1 {
			raw = nil
			for _, p := range parts {
				raw = append(raw, low[p].raw...)
			}
		}
		switch first.kind {
		case lowBF16, lowF16:
			u := make([]uint16, len(raw)/2)
			for i := range u {
				u[i] = binary.LittleEndian.Uint16(raw[2*i:])
			}
			if nativeBF16 {
				return cpu.NewAMXMatrixBF16(u, rows, cols), nil
			}
			if first.kind == lowF16 {
				return cpu.NewF16Matrix(u, rows, cols), nil
			}
			return cpu.NewBF16Matrix(u, rows, cols), nil
		case lowQ8_0:
			return cpu.NewQ8Matrix(raw, rows, cols), nil
		case lowQ4K:
			return cpu.NewQ4KMatrix(raw, rows, cols), nil
		}
	}
	// Block-quantized parts without a kernel of their own, or of mixed
	// types, stay quantized: as Q8_0, whose 1/254-of-a-block rounding is
	// well below the 4- to 6-bit types' own error (and exact for Q4_0 and
	// Q5_0, whose values are a scale times a small integer).
	quant := cols%32 == 0 && cpu.Native(cpu.FormatQ8_0)
	floats := true
	for _, p := range parts {
		lt := low[p]
		if !q8 && (lt == nil || lt.kind < lowQ8_0) {
			quant = false
		}
		if lt != nil && lt.kind >= lowQ8_0 {
			floats = false
		}
	}
	amx = amx && floats
	var all []float32
	for _, p := range parts {
		v := *p
		if lt := low[p]; v == nil && lt != nil {
			var err error
			if v, err = lt.f32(); err != nil {
				return nil, err
			}
		}
		if len(parts) == 1 {
			all = v // NewMatrix copies: no need for another
			break
		}
		all = append(all, v...)
	}
	rows = len(all) / max(cols, 1)
	if amx {
		return cpu.NewAMXMatrix(all, rows, cols), nil
	}
	if quant {
		return cpu.NewQ8Matrix(cpu.QuantizeQ8(all, rows, cols), rows, cols), nil
	}
	return cpu.NewMatrix(all, rows, cols), nil
}

// String summarises the config in one line.
func (c Config) String() string {
	return fmt.Sprintf("%s hidden=%d intermediate=%d layers=%d heads=%d kv_heads=%d head_dim=%d vocab=%d",
		c.Family, c.Hidden, c.Intermediate, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.Vocab)
}

// DTypeSummary lists the stored dtypes with their tensor counts, such as
// "BF16×339" or "F32×2 BF16×337".
func (i *Info) DTypeSummary() string {
	var parts []string
	for _, d := range slices.Sorted(maps.Keys(i.DTypes)) {
		parts = append(parts, d+"×"+strconv.Itoa(i.DTypes[d]))
	}
	return strings.Join(parts, " ")
}
