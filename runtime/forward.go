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
	xb  []float32 // [cap, Hidden] normed input of a sublayer
	qkv []float32 // [cap, (Heads+2·KVHeads)·HeadDim] q|k|v of each row, q and k after RoPE
	att []float32 // [cap, Heads·HeadDim] attention output
	gu  []float32 // [cap, 2·Intermediate] gate|up of each row
	act []float32 // [cap, Intermediate] silu(gate)·up

	// The rows Logits finishes the last layer for, gathered: their
	// residual stream and queries.
	xg, qg []float32

	// rows is the row-wise step being run across cores.
	rows rowWork

	// kv is the K/V cache of each layer, keys after RoPE.
	kv []*cpu.KVCache
	// cached[p] says that position p's K/V came from a completed Forward.
	cached []bool

	cos, sin []float32 // [cap, HeadDim/2] RoPE table for absolute positions

	// The last completed Forward, for Logits: its window and sequence
	// length.
	done                  bool
	lastLo, lastHi, lastN int
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
		qkv:    make([]float32, capacity*(qd+2*kvd)),
		att:    make([]float32, capacity*qd),
		gu:     make([]float32, capacity*2*c.Intermediate),
		act:    make([]float32, capacity*c.Intermediate),
		xg:     make([]float32, capacity*c.Hidden),
		qg:     make([]float32, capacity*qd),
		kv:     make([]*cpu.KVCache, c.Layers),
		cached: make([]bool, capacity),
	}
	for i := range s.kv {
		s.kv[i] = cpu.NewKVCache(c.KVHeads, c.HeadDim, capacity)
	}
	s.rows.s = s
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
//
// Forward stops short of the last layer's attention and MLP: only the
// rows that Logits is asked for need them (the cache needs only that
// layer's K/V), and a full pass usually scores a few rows of hundreds.
func (s *State) Forward(ctx context.Context, tokens []int32, lo, hi int) error {
	if err := s.check(tokens, lo, hi); err != nil {
		return err
	}
	c := &s.m.Config
	w := &s.m.Weights
	n, m := len(tokens), hi-lo
	h, qkvw := c.Hidden, (c.Heads+2*c.KVHeads)*c.HeadDim
	s.done = false
	for p := lo; p < hi; p++ {
		s.cached[p] = false
	}

	// x = embed_tokens(tokens)
	for i, t := range tokens[lo:hi] {
		copy(s.x[i*h:(i+1)*h], w.Embed[int(t)*h:])
	}
	x, xb, qkv := s.x[:m*h], s.xb[:m*h], s.qkv[:m*qkvw]
	s.rows.lo = lo
	for li := range w.Layers {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("forward: layer %d: %w", li, err)
		}
		l, pl := &w.Layers[li], &s.m.packed.layers[li]

		// h = input_layernorm(x)
		s.rowWise(normRows, li, x, xb, m, l.AttnNorm)
		// q|k|v = qkv_proj(h) + bias; q and k turned by RoPE; k and v into
		// the cache at positions [lo,hi)
		pl.qkv.MulT(qkv, xb, m)
		s.rowWise(qkvRows, li, qkv, nil, m, nil)
		if li < len(w.Layers)-1 {
			s.finish(li, x, qkv, m, qkvw, n)
		}
	}
	for p := lo; p < hi; p++ {
		s.cached[p] = true
	}
	s.done, s.lastLo, s.lastHi, s.lastN = true, lo, hi, n
	return nil
}

// finish completes layer li for m rows whose K/V are in the cache, of a
// sequence of n positions: x (row stride Hidden) is the layer's input and
// becomes its output, q (row stride ldq) holds the rows' queries after
// RoPE.
func (s *State) finish(li int, x, q []float32, m, ldq, n int) {
	c := &s.m.Config
	l, pl := &s.m.Weights.Layers[li], &s.m.packed.layers[li]
	h, qd, inter := c.Hidden, c.Heads*c.HeadDim, c.Intermediate
	xb, att := s.xb[:m*h], s.att[:m*qd]
	gu, act := s.gu[:m*2*inter], s.act[:m*inter]

	// a = softmax(q·kᵀ/√d)·v over all n positions, per head; query head
	// hd reads K/V head hd/group.
	s.kv[li].Attend(att, q, m, c.Heads, ldq, qd, n, float32(1/math.Sqrt(float64(c.HeadDim))))

	// x = x + o_proj(a)
	pl.o.MulTAdd(x, att, m)

	// x = x + down_proj(silu(gate_proj(h)) * up_proj(h)), h = post_attention_layernorm(x)
	s.rowWise(normRows, li, x, xb, m, l.MLPNorm)
	pl.gateUp.MulT(gu, xb, m)
	s.rowWise(gluRows, li, gu, act, m, nil)
	pl.down.MulTAdd(x, act, m)
}

// The row-wise steps of a layer.
const (
	normRows = iota // out = RMSNorm(in)·w
	qkvRows         // bias, RoPE and the cache store of rows of q|k|v
	gluRows         // out = silu(gate)·up of rows of gate|up
)

// rowWork is one row-wise step of Forward, run across cores by
// cpu.ParallelRows when the rows are many. It lives in the State, so that
// handing it to ParallelRows allocates nothing.
type rowWork struct {
	s       *State
	step    int
	li      int
	lo      int // the position of row 0, for RoPE and the cache
	in, out []float32
	w       []float32 // the norm's weights
}

// rowWise runs step over m rows of in (and out).
func (s *State) rowWise(step, li int, in, out []float32, m int, w []float32) {
	c := &s.m.Config
	r := &s.rows
	r.step, r.li, r.in, r.out, r.w = step, li, in, out, w
	cost := 4 * c.Hidden
	switch step {
	case qkvRows:
		cost = 4 * (c.Heads + 2*c.KVHeads) * c.HeadDim
	case gluRows:
		cost = 16 * c.Intermediate
	}
	cpu.ParallelRows(r, m, cost)
	r.in, r.out, r.w = nil, nil, nil
}

func (r *rowWork) Rows(i0, i1 int) {
	s := r.s
	c := &s.m.Config
	switch r.step {
	case normRows:
		h := c.Hidden
		eps := float32(c.NormEps)
		for i := i0; i < i1; i++ {
			cpu.RMSNorm(r.out[i*h:(i+1)*h], r.in[i*h:(i+1)*h], r.w, eps)
		}
	case qkvRows:
		qd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
		qkvw := qd + 2*kvd
		bias := s.m.packed.layers[r.li].qkvBias
		for i := i0; i < i1; i++ {
			row := r.in[i*qkvw : (i+1)*qkvw]
			if bias != nil {
				cpu.Add(row, bias)
			}
			s.rope(row[:qd+kvd], r.lo+i)
		}
		s.kv[r.li].Store(r.lo+i0, r.in[i0*qkvw+qd:], r.in[i0*qkvw+qd+kvd:], i1-i0, qkvw)
	case gluRows:
		inter := c.Intermediate
		for i := i0; i < i1; i++ {
			row := r.in[i*2*inter : (i+1)*2*inter]
			cpu.SwiGLU(r.out[i*inter:(i+1)*inter], row[:inter], row[inter:])
		}
	}
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

// rope turns each head of the q|k part of one row, heads of HeadDim
// values side by side, by the angles of absolute position p.
func (s *State) rope(row []float32, p int) {
	d := s.m.Config.HeadDim
	half := d / 2
	cos, sin := s.cos[p*half:(p+1)*half], s.sin[p*half:(p+1)*half]
	for o := 0; o+d <= len(row); o += d {
		cpu.RoPE(row[o:o+d], cos, sin)
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
	// Finish the last layer for up to cap rows at a time, gathered, so
	// that the pass's state stays as Forward left it for the next call.
	qd, qkvw := c.Heads*c.HeadDim, (c.Heads+2*c.KVHeads)*c.HeadDim
	last := len(s.m.Weights.Layers) - 1
	eps := float32(c.NormEps)
	for start := 0; start < len(rows); start += s.cap {
		chunk := rows[start:min(start+s.cap, len(rows))]
		k := len(chunk)
		xg, qg := s.xg[:k*h], s.qg[:k*qd]
		for i, r := range chunk {
			j := r - s.lastLo
			copy(xg[i*h:(i+1)*h], s.x[j*h:])
			copy(qg[i*qd:(i+1)*qd], s.qkv[j*qkvw:])
		}
		s.finish(last, xg, qg, k, qd, s.lastN)
		for i := range k {
			cpu.RMSNorm(s.xb[i*h:(i+1)*h], xg[i*h:(i+1)*h], s.m.Weights.Norm, eps)
		}
		s.m.packed.head.MulT(out[start*vocab:(start+k)*vocab], s.xb[:k*h], k)
	}
	return nil
}

// LogitStats is what a sampler needs from one logit row: the maximum, its
// first index, and the sums that give the softmax's normaliser and entropy.
// See [cpu.RowStats].
type LogitStats = cpu.RowStats

// RowStats computes the LogitStats of a row of Logits' output in two
// vector passes over it, allocating nothing: a sampler's greedy path
// without one float64 exponential per vocabulary entry.
func RowStats(row []float32) LogitStats { return cpu.Stats(row) }

// RunnerUp returns the largest value of row at an index other than skip
// (the second largest logit when skip is the argmax), or -Inf if none.
func RunnerUp(row []float32, skip int) float32 { return cpu.MaxExcept(row, skip) }
