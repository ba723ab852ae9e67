package runtime

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/infuse-lsp/infuse/kernels/cpu"
)

// LoadOptions change how a model's weights are packed at load.
type LoadOptions struct {
	// Q8 packs the matrices stored as float32, bfloat16 or float16 — and
	// the embedding — in Q8_0: ggml's blocks of 32 int8 values and one
	// scale, what `infuse convert --type q8_0` stores, so that a model
	// computes exactly as its Q8_0 GGUF file does. On a CPU with AVX-512
	// VNNI the int8 kernels run the default model's passes about 1.7 times
	// faster, at a cost in quality within a checkpoint's own noise
	// (models/MODEL_CARD.md). Matrices already quantized, or whose rows
	// are not a multiple of 32 values, are packed as without it. Loading
	// fails on a CPU without the int8 kernels (cpu.Native).
	Q8 bool
	// AMX packs the same matrices (and a tied head) in bfloat16 for the
	// tile unit of Intel's AMX (cpu.AMXMatrix): each weight rounded to
	// bfloat16 once, each product's activations at every call, sums in
	// float32; and States keep their keys and values in bfloat16 and
	// attend on the tiles too (cpu.NewKVCacheAMX, heads of a multiple of
	// 64 values). On a Xeon with AMX it runs the default model's passes
	// several times faster than float32 or Q8_0. Loading fails on a
	// machine without it (cpu.AMX); it excludes Q8.
	AMX bool
}

// ErrNoInt8 is LoadOptions.Q8's error on a CPU without int8 kernels.
var ErrNoInt8 = errors.New("this CPU has no int8 matrix kernels (they need AVX-512 VNNI)")

// ErrNoAMX is LoadOptions.AMX's error on a machine without AMX.
var ErrNoAMX = errors.New("this machine has no AMX tiles with bfloat16 (Intel Xeon, 4th generation or later, and Linux 5.16 or later)")

// Computed summarises the types the packed matrices are computed in, as
// "Q8_0×25" or "BF16-AMX×25": after LoadOptions.Q8 or AMX, or with a file's low-precision types
// kept as stored, it differs from Info's stored types.
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
		case *cpu.AMXMatrix:
			count["BF16-AMX"]++
		}
	}
	p := &m.packed
	add(p.head)
	if p.embed != nil && p.embed != p.head { // nil: the embedding is Weights.Embed
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
