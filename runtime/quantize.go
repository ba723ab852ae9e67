package runtime

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/infuse-lsp/infuse/kernels/cpu"
)

// QuantizeQ8 recomputes the packed matrices stored as float32, bfloat16 or
// float16 in Q8_0 — ggml's blocks of 32 int8 values and one scale, what
// `infuse convert --type q8_0` stores — for the int8 kernels: on a CPU with
// AVX-512 VNNI they run the default model's passes about 1.7 times faster,
// at a cost in quality within a checkpoint's own noise (models/MODEL_CARD.md).
// Matrices already quantized, or whose rows are not a multiple of 32 values,
// stay as they are. A tied embedding becomes the quantized head's rows, as
// in a Q8_0 GGUF file. It returns how many matrices it converted, or an
// error if this CPU has no int8 kernels. Call it before the first pass.
func (m *Model) QuantizeQ8() (int, error) {
	if !cpu.Native(cpu.FormatQ8_0) {
		return 0, errors.New("this CPU has no int8 matrix kernels (they need AVX-512 VNNI)")
	}
	p := &m.packed
	if e := m.Weights.Embed; e != nil {
		// An embedding kept in float32 for its row lookups: pack it, so
		// that it is quantized below like the rest.
		if m.Config.TiedHead {
			p.embed = p.head
		} else {
			p.embed = cpu.NewMatrix(e, m.Config.Vocab, m.Config.Hidden)
		}
	}
	tied := p.embed == p.head
	linears := []*cpu.Linear{&p.head}
	if !tied {
		linears = append(linears, &p.embed)
	}
	for i := range p.layers {
		l := &p.layers[i]
		linears = append(linears, &l.qkv, &l.o, &l.gateUp, &l.down)
	}
	n := 0
	for _, l := range linears {
		if q := toQ8(*l); q != nil {
			*l = q
			n++
		}
	}
	if tied {
		p.embed = p.head
	}
	if _, ok := p.embed.(*cpu.Q8Matrix); ok {
		m.Weights.Embed = nil // embedRow reads the packed rows now
	}
	return n, nil
}

// toQ8 returns a as Q8_0, or nil if it stays as it is.
func toQ8(a cpu.Linear) cpu.Linear {
	switch a.(type) {
	case *cpu.Matrix, *cpu.BF16Matrix, *cpu.F16Matrix:
	default:
		return nil
	}
	rows, cols := a.Rows(), a.Cols()
	if cols%32 != 0 {
		return nil
	}
	w := make([]float32, rows*cols)
	for r := range rows {
		a.Row(w[r*cols:(r+1)*cols], r)
	}
	return cpu.NewQ8Matrix(cpu.QuantizeQ8(w, rows, cols), rows, cols)
}

// Computed summarises the types the packed matrices are computed in, as
// "Q8_0×25": after QuantizeQ8, or a file's low-precision types kept as
// stored, it differs from Info's stored types.
func (m *Model) Computed() string {
	count := map[string]int{}
	add := func(a cpu.Linear) {
		switch a.(type) {
		case *cpu.Matrix:
			count["F32"]++
		case *cpu.BF16Matrix:
			count["BF16"]++
		case *cpu.F16Matrix:
			count["F16"]++
		case *cpu.Q8Matrix:
			count["Q8_0"]++
		case *cpu.Q4KMatrix:
			count["Q4_K"]++
		}
	}
	p := &m.packed
	add(p.head)
	if m.Weights.Embed == nil && p.embed != p.head {
		add(p.embed)
	}
	for _, l := range p.layers {
		add(l.qkv)
		add(l.o)
		add(l.gateUp)
		add(l.down)
	}
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, t+"×"+strconv.Itoa(count[t]))
	}
	return strings.Join(parts, " ")
}
