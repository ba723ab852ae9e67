package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/infuse-lsp/infuse/kernels/cpu"
)

// State holds every buffer one sequence needs, allocated once by
// [Model.NewState]: activations for the rows being computed, and the K/V
// cache of every position. Rows of the activation buffers are window rows:
// row i is position lo+i of the last Forward. A State is not safe for
// concurrent use; use one per sequence.
type State struct {
	m   *Model
	cap int

	x   []float32 // [cap, Hidden] residual stream
	xb  []float32 // [cap, Hidden] normed input of a sublayer, then its output
	q   []float32 // [cap, Heads·HeadDim] queries, after RoPE
	kv  []float32 // [cap, KVHeads·HeadDim] new keys or values on their way into the cache
	att []float32 // [cap, Heads·HeadDim] attention output
	hb  []float32 // [cap, Intermediate] gate, then silu(gate)·up
	hb2 []float32 // [cap, Intermediate] up

	// The K/V cache, [Layers, KVHeads, cap, HeadDim]: one contiguous
	// [positions, HeadDim] block per layer and head, keys after RoPE.
	k, v []float32
	// cached[p] says that position p's K/V came from a completed Forward.
	cached []bool

	cos, sin []float32 // [cap, HeadDim/2] RoPE table for absolute positions

	// The layer being computed and its window.
	n, lo, hi, layer int

	// The window of the last completed Forward, for Logits.
	done           bool
	lastLo, lastHi int
}

// NewState allocates the buffers and K/V cache for sequences of up to
// capacity tokens.
func (m *Model) NewState(capacity int) *State {
	c := &m.Config
	capacity = max(capacity, 0)
	qd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	s := &State{
		m:      m,
		cap:    capacity,
		x:      make([]float32, capacity*c.Hidden),
		xb:     make([]float32, capacity*c.Hidden),
		q:      make([]float32, capacity*qd),
		kv:     make([]float32, capacity*kvd),
		att:    make([]float32, capacity*qd),
		hb:     make([]float32, capacity*c.Intermediate),
		hb2:    make([]float32, capacity*c.Intermediate),
		k:      make([]float32, c.Layers*capacity*kvd),
		v:      make([]float32, c.Layers*capacity*kvd),
		cached: make([]bool, capacity),
	}
	s.ropeTable()
	return s
}

// Capacity returns the longest sequence the State can hold.
func (s *State) Capacity() int { return s.cap }

// ropeTable fills cos and sin for every position: the angle of pair i at
// position p is p·θ^(-2i/d). As in the Hugging Face code, the inverse
// frequency and the angle are float32 values (so large positions round the
// same way); θ^(-2i/d), the cosine and the sine are computed in float64 and
// rounded.
func (s *State) ropeTable() {
	c := &s.m.Config
	half := c.HeadDim / 2
	inv := make([]float32, half)
	for i := range inv {
		inv[i] = float32(math.Pow(c.RopeTheta, -float64(2*i)/float64(c.HeadDim)))
	}
	s.cos = make([]float32, s.cap*half)
	s.sin = make([]float32, s.cap*half)
	for p := range s.cap {
		for i, f := range inv {
			a := float64(float32(p) * f)
			s.cos[p*half+i] = float32(math.Cos(a))
			s.sin[p*half+i] = float32(math.Sin(a))
		}
	}
}

// Errors of Forward and Logits that a caller may want to tell apart.
var (
	ErrTooLong = errors.New("sequence longer than the state's capacity")
	ErrClosed  = errors.New("model is closed")
)

// Forward runs the network over the sequence tokens (len n ≤ capacity,
// absolute positions 0..n-1) but computes only positions [lo,hi): their K
// and V are written into the cache, and their queries attend over all n
// positions, reading the K/V of positions outside [lo,hi) from the cache as
// earlier calls left it. lo=0, hi=n is an exact full pass. This is
// Fast-dLLM's dual cache: the K/V of the prefix and suffix are reused while
// a span is denoised, and refreshed by a full pass now and then.
//
// Attention is bidirectional (no causal mask). Forward allocates nothing.
// It checks ctx between layers; a cancelled pass leaves the window's cache
// entries invalid.
func (s *State) Forward(ctx context.Context, tokens []int32, lo, hi int) error {
	if err := s.check(tokens, lo, hi); err != nil {
		return err
	}
	c := &s.m.Config
	w := &s.m.Weights
	n, m := len(tokens), hi-lo
	h, qd, kvd := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	eps := float32(c.NormEps)
	s.done = false
	s.n, s.lo, s.hi = n, lo, hi
	for p := lo; p < hi; p++ {
		s.cached[p] = false
	}

	// x = embed_tokens(tokens)
	for i, t := range tokens[lo:hi] {
		copy(s.x[i*h:(i+1)*h], w.Embed[int(t)*h:])
	}
	x, xb := s.x[:m*h], s.xb[:m*h]
	for li := range w.Layers {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("forward: layer %d: %w", li, err)
		}
		l, pl := &w.Layers[li], &s.m.packed.layers[li]
		s.layer = li

		// h = input_layernorm(x)
		for i := range m {
			cpu.RMSNorm(xb[i*h:(i+1)*h], x[i*h:(i+1)*h], l.AttnNorm, eps)
		}
		// q = rope(q_proj(h)); k = rope(k_proj(h)); v = v_proj(h), the
		// last two into the cache at positions [lo,hi)
		pl.q.MulT(s.q[:m*qd], xb, m)
		addBias(s.q[:m*qd], l.QBias)
		s.rope(s.q[:m*qd], c.Heads)
		pl.k.MulT(s.kv[:m*kvd], xb, m)
		addBias(s.kv[:m*kvd], l.KBias)
		s.rope(s.kv[:m*kvd], c.KVHeads)
		s.store(s.k, li)
		pl.v.MulT(s.kv[:m*kvd], xb, m)
		addBias(s.kv[:m*kvd], l.VBias)
		s.store(s.v, li)

		// a = softmax(q·kᵀ/√d)·v over all n positions, per head; query
		// head hd reads K/V head hd/group of the cache.
		s.attention()

		// x = x + o_proj(a)
		pl.o.MulT(xb, s.att[:m*qd], m)
		cpu.Add(x, xb)

		// x = x + down_proj(silu(gate_proj(h)) * up_proj(h)), h = post_attention_layernorm(x)
		for i := range m {
			cpu.RMSNorm(xb[i*h:(i+1)*h], x[i*h:(i+1)*h], l.MLPNorm, eps)
		}
		hb, hb2 := s.hb[:m*c.Intermediate], s.hb2[:m*c.Intermediate]
		pl.gate.MulT(hb, xb, m)
		pl.up.MulT(hb2, xb, m)
		cpu.SiLUMul(hb, hb2)
		pl.down.MulT(xb, hb, m)
		cpu.Add(x, xb)
	}
	for p := lo; p < hi; p++ {
		s.cached[p] = true
	}
	s.done, s.lastLo, s.lastHi = true, lo, hi
	return nil
}

// check validates Forward's arguments.
func (s *State) check(tokens []int32, lo, hi int) error {
	n := len(tokens)
	switch {
	case s.m.weights == nil:
		return fmt.Errorf("forward: %w", ErrClosed)
	case n == 0:
		return errors.New("forward: empty sequence")
	case n > s.cap:
		return fmt.Errorf("forward: %w: %d tokens, capacity %d", ErrTooLong, n, s.cap)
	case lo < 0 || hi > n || lo >= hi:
		return fmt.Errorf("forward: window [%d,%d) is not a non-empty part of the %d positions", lo, hi, n)
	}
	vocab := s.m.Config.Vocab
	for i, t := range tokens {
		if t < 0 || int(t) >= vocab {
			return fmt.Errorf("forward: token %d at position %d is outside the vocabulary of %d", t, i, vocab)
		}
	}
	for p := range n {
		if (p < lo || p >= hi) && !s.cached[p] {
			return fmt.Errorf("forward: position %d is outside the window [%d,%d) but has no cached K/V; run a pass over it first", p, lo, hi)
		}
	}
	return nil
}

// addBias adds bias to every row of out; a nil bias adds nothing.
func addBias(out, bias []float32) {
	if len(bias) == 0 {
		return
	}
	for i := 0; i < len(out); i += len(bias) {
		cpu.Add(out[i:i+len(bias)], bias)
	}
}

// rope rotates each head of each window row by its absolute position.
func (s *State) rope(rows []float32, heads int) {
	d := s.m.Config.HeadDim
	half := d / 2
	width := heads * d
	for i := 0; i*width < len(rows); i++ {
		p := s.lo + i
		cos, sin := s.cos[p*half:(p+1)*half], s.sin[p*half:(p+1)*half]
		for hd := range heads {
			cpu.RoPE(rows[i*width+hd*d:i*width+(hd+1)*d], cos, sin)
		}
	}
}

// store copies s.kv, [window rows, KVHeads·HeadDim], into layer li of a
// cache laid out [Layers, KVHeads, cap, HeadDim].
func (s *State) store(cache []float32, li int) {
	c := &s.m.Config
	d, kvh := c.HeadDim, c.KVHeads
	for i := range s.hi - s.lo {
		p := s.lo + i
		for g := range kvh {
			dst := ((li*kvh+g)*s.cap + p) * d
			copy(cache[dst:dst+d], s.kv[(i*kvh+g)*d:])
		}
	}
}

// attention computes every query head of the window against the n cached
// positions of the current layer. The kernel splits a large head across
// cores itself.
func (s *State) attention() {
	c := &s.m.Config
	d, qd, n, m := c.HeadDim, c.Heads*c.HeadDim, s.n, s.hi-s.lo
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	for hd := range c.Heads {
		base := (s.layer*c.KVHeads + hd/group) * s.cap * d
		keys, vals := s.k[base:base+n*d], s.v[base:base+n*d]
		cpu.Attention(s.att[hd*d:m*qd], s.q[hd*d:m*qd], keys, vals, m, n, d, qd, d, scale)
	}
}

// Logits writes the raw output rows (final norm, then the head; no shift)
// for the given positions into out, len(rows)·Config.Vocab values,
// row-major. Each position must be in the window [lo,hi) of the last
// Forward. Only those rows are computed.
func (s *State) Logits(rows []int, out []float32) error {
	c := &s.m.Config
	h, vocab := c.Hidden, c.Vocab
	switch {
	case s.m.weights == nil:
		return fmt.Errorf("logits: %w", ErrClosed)
	case !s.done:
		return errors.New("logits: no completed Forward")
	case len(out) != len(rows)*vocab:
		return fmt.Errorf("logits: out has %d values, want %d rows × %d", len(out), len(rows), vocab)
	}
	for _, r := range rows {
		if r < s.lastLo || r >= s.lastHi {
			return fmt.Errorf("logits: position %d is outside the window [%d,%d) of the last Forward", r, s.lastLo, s.lastHi)
		}
	}
	// xb is free after Forward; gather up to cap normed rows at a time.
	eps := float32(c.NormEps)
	for start := 0; start < len(rows); start += s.cap {
		chunk := rows[start:min(start+s.cap, len(rows))]
		for i, r := range chunk {
			j := r - s.lastLo
			cpu.RMSNorm(s.xb[i*h:(i+1)*h], s.x[j*h:(j+1)*h], s.m.Weights.Norm, eps)
		}
		k := len(chunk)
		s.m.packed.head.MulT(out[start*vocab:(start+k)*vocab], s.xb[:k*h], k)
	}
	return nil
}
