package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/infuse-lsp/infuse/kernels/cpu"
)

// State holds what one sequence keeps between forward passes: the K/V cache
// of every position, the RoPE table, and the rows of its last Forward that
// Logits finishes. It also owns the buffers to run the sequence alone;
// [Batch] runs several States' passes as one. Allocated once by
// [Model.NewState]. A State is not safe for concurrent use; use one per
// sequence.
type State struct {
	m   *Model
	cap int
	w   work // buffers for passes of this sequence alone

	// kv is the K/V cache of each layer, keys after RoPE.
	kv []*cpu.KVCache
	// cached[p] says that position p's K/V came from a completed Forward.
	cached []bool

	cos, sin []float32 // [cap, HeadDim/2] RoPE table for absolute positions

	// The last completed Forward, for Logits: its window and sequence
	// length. Its rows' residual stream and q|k|v are rows 0..hi-lo of w.x
	// and w.qkv.
	done                  bool
	lastLo, lastHi, lastN int

	// Single-element arguments of the shared code, kept here so that
	// Forward and Logits allocate nothing.
	pass  [1]Pass
	items [1]LogitRows
}

// work is the activation buffers of the rows one pass computes, a row per
// position of each sequence's window, sequences one after another; and the
// segments saying which rows belong to which sequence.
type work struct {
	m    *Model
	cap  int       // rows
	x    []float32 // [cap, Hidden] residual stream
	xb   []float32 // [cap, Hidden] normed input of a sublayer
	qkv  []float32 // [cap, (Heads+2·KVHeads)·HeadDim] q|k|v of each row, q and k after RoPE
	att  []float32 // [cap, Heads·HeadDim] attention output
	gu   []float32 // [cap, 2·Intermediate] gate|up of each row
	act  []float32 // [cap, Intermediate] silu(gate)·up
	xg   []float32 // [cap, Hidden] the rows Logits finishes, gathered
	qg   []float32 // [cap, Heads·HeadDim] and their queries
	segs []segment
	rows rowWork // the row-wise step being run across cores
}

// segment is one sequence's rows in a work: rows [row0,row0+rows) are
// positions lo.. of s, attending over its first n positions.
type segment struct {
	s                 *State
	row0, rows, lo, n int
}

func (m *Model) newWork(rows int) work {
	c := &m.Config
	rows = max(rows, 0)
	qd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	w := work{
		m:   m,
		cap: rows,
		x:   make([]float32, rows*c.Hidden),
		xb:  make([]float32, rows*c.Hidden),
		qkv: make([]float32, rows*(qd+2*kvd)),
		att: make([]float32, rows*qd),
		gu:  make([]float32, rows*2*c.Intermediate),
		act: make([]float32, rows*c.Intermediate),
		xg:  make([]float32, rows*c.Hidden),
		qg:  make([]float32, rows*qd),
	}
	return w
}

// NewState allocates the buffers and K/V cache for sequences of up to
// capacity tokens.
func (m *Model) NewState(capacity int) *State {
	c := &m.Config
	capacity = max(capacity, 0)
	s := &State{
		m:      m,
		cap:    capacity,
		w:      m.newWork(capacity),
		kv:     make([]*cpu.KVCache, c.Layers),
		cached: make([]bool, capacity),
	}
	for i := range s.kv {
		if m.amx && cpu.AMXAttention(c.HeadDim) {
			s.kv[i] = cpu.NewKVCacheAMX(c.KVHeads, c.HeadDim, capacity)
		} else {
			s.kv[i] = cpu.NewKVCache(c.KVHeads, c.HeadDim, capacity)
		}
	}
	s.w.rows.w = &s.w
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
	s.pass[0] = Pass{State: s, Tokens: tokens, Lo: lo, Hi: hi}
	err := s.w.forward(ctx, s.pass[:])
	s.pass[0] = Pass{}
	return err
}

// Pass is one sequence's part of a [Batch] forward: the arguments of
// [State.Forward].
type Pass struct {
	State  *State
	Tokens []int32
	Lo, Hi int
}

// LogitRows asks a [Batch] for the logits of rows of one State's last
// Forward: the arguments of [State.Logits].
type LogitRows struct {
	State *State
	Rows  []int
}

// Batch runs the forward passes of several sequences as one: their window
// rows go through every matrix product together (the weights are read once
// for all of them, and the products have more rows to split across cores),
// while each sequence attends over its own cache. Each row's result is
// that of a pass of its sequence alone, up to rounding (the matrix
// kernels' summation order depends on how many rows share a tile). A Batch is not safe for concurrent
// use, and neither are the States while it runs them.
type Batch struct {
	w     work
	group []Pass  // the passes run together next
	one   [1]Pass // a pass too long for w, run in its State's buffers
}

// NewBatch allocates buffers for batched passes of up to rows window rows
// in all; a Forward with more runs them in several groups.
func (m *Model) NewBatch(rows int) *Batch {
	b := &Batch{w: m.newWork(rows)}
	b.w.rows.w = &b.w
	return b
}

// Forward runs every pass, as State.Forward would run each alone. The
// States must be distinct, of this Batch's model. A pass with more rows
// than the Batch holds runs alone in its State's buffers. On an error no
// pass may be assumed to have completed.
func (b *Batch) Forward(ctx context.Context, passes []Pass) error {
	for i, p := range passes {
		if p.State == nil || p.State.m != b.w.m {
			return fmt.Errorf("forward: pass %d: not a state of the batch's model", i)
		}
		if err := p.State.check(p.Tokens, p.Lo, p.Hi); err != nil {
			return fmt.Errorf("pass %d: %w", i, err)
		}
		for _, q := range passes[:i] {
			if q.State == p.State {
				return fmt.Errorf("forward: pass %d: its state is in the batch twice", i)
			}
		}
	}
	b.group = b.group[:0]
	rows := 0
	for _, p := range passes {
		m := p.Hi - p.Lo
		if m > b.w.cap {
			b.one[0] = p
			if err := p.State.w.forward(ctx, b.one[:]); err != nil {
				return err
			}
			continue
		}
		if rows+m > b.w.cap {
			if err := b.w.forward(ctx, b.group); err != nil {
				return err
			}
			b.group, rows = b.group[:0], 0
		}
		b.group = append(b.group, p)
		rows += m
	}
	var err error
	if len(b.group) > 0 {
		err = b.w.forward(ctx, b.group)
	}
	clear(b.group)
	b.one[0] = Pass{}
	return err
}

// Logits writes the logits of every item's rows into out, item after item,
// as State.Logits would for each: the rows' last layers and the head run
// as one product.
func (b *Batch) Logits(items []LogitRows, out []float32) error {
	for i, it := range items {
		if it.State == nil || it.State.m != b.w.m {
			return fmt.Errorf("logits: item %d: not a state of the batch's model", i)
		}
	}
	return b.w.logits(items, out)
}

// forward runs passes whose windows fit w together; they are checked.
func (w *work) forward(ctx context.Context, passes []Pass) error {
	c := &w.m.Config
	wt := &w.m.Weights
	h, qkvw := c.Hidden, (c.Heads+2*c.KVHeads)*c.HeadDim
	w.segs = w.segs[:0]
	m := 0
	for _, p := range passes {
		s := p.State
		s.done = false
		for q := p.Lo; q < p.Hi; q++ {
			s.cached[q] = false
		}
		// x = embed_tokens(tokens)
		for i, t := range p.Tokens[p.Lo:p.Hi] {
			w.m.embedRow(w.x[(m+i)*h:(m+i+1)*h], t)
		}
		w.segs = append(w.segs, segment{s: s, row0: m, rows: p.Hi - p.Lo, lo: p.Lo, n: len(p.Tokens)})
		m += p.Hi - p.Lo
	}
	x, xb, qkv := w.x[:m*h], w.xb[:m*h], w.qkv[:m*qkvw]
	for li := range wt.Layers {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("forward: layer %d: %w", li, err)
		}
		l, pl := &wt.Layers[li], &w.m.packed.layers[li]

		// h = input_layernorm(x)
		w.rowWise(normRows, li, x, xb, m, l.AttnNorm)
		// q|k|v = qkv_proj(h) + bias; q and k turned by RoPE; k and v into
		// each sequence's cache at its window's positions
		pl.qkv.MulT(qkv, xb, m)
		w.rowWise(qkvRows, li, qkv, nil, m, nil)
		if li < len(wt.Layers)-1 {
			w.finish(li, x, qkv, m, qkvw)
		}
	}
	for _, sg := range w.segs {
		s := sg.s
		if &s.w != w {
			copy(s.w.x[:sg.rows*h], x[sg.row0*h:])
			copy(s.w.qkv[:sg.rows*qkvw], qkv[sg.row0*qkvw:])
		}
		for p := sg.lo; p < sg.lo+sg.rows; p++ {
			s.cached[p] = true
		}
		s.done, s.lastLo, s.lastHi, s.lastN = true, sg.lo, sg.lo+sg.rows, sg.n
	}
	return nil
}

// finish completes layer li for the m rows of w.segs, whose K/V are in
// their caches: x (row stride Hidden) is the layer's input and becomes its
// output, q (row stride ldq) holds the rows' queries after RoPE.
func (w *work) finish(li int, x, q []float32, m, ldq int) {
	c := &w.m.Config
	l, pl := &w.m.Weights.Layers[li], &w.m.packed.layers[li]
	h, qd, inter := c.Hidden, c.Heads*c.HeadDim, c.Intermediate
	xb, att := w.xb[:m*h], w.att[:m*qd]
	gu, act := w.gu[:m*2*inter], w.act[:m*inter]

	// a = softmax(q·kᵀ/√d)·v over each sequence's positions, per head;
	// query head hd reads K/V head hd/group.
	scale := float32(1 / math.Sqrt(float64(c.HeadDim)))
	for _, sg := range w.segs {
		sg.s.kv[li].Attend(att[sg.row0*qd:], q[sg.row0*ldq:], sg.rows, c.Heads, ldq, qd, sg.n, scale)
	}

	// x = x + o_proj(a)
	pl.o.MulTAdd(x, att, m)

	// x = x + down_proj(silu(gate_proj(h)) * up_proj(h)), h = post_attention_layernorm(x)
	w.rowWise(normRows, li, x, xb, m, l.MLPNorm)
	pl.gateUp.MulT(gu, xb, m)
	w.rowWise(gluRows, li, gu, act, m, nil)
	pl.down.MulTAdd(x, act, m)
}

// The row-wise steps of a layer.
const (
	normRows = iota // out = RMSNorm(in)·w
	qkvRows         // bias, RoPE and the cache store of rows of q|k|v
	gluRows         // out = silu(gate)·up of rows of gate|up
)

// rowWork is one row-wise step of a pass, run across cores by
// cpu.ParallelRows when the rows are many. It lives in the work, so that
// handing it to ParallelRows allocates nothing.
type rowWork struct {
	w       *work
	step    int
	li      int
	in, out []float32
	wts     []float32 // the norm's weights
}

// rowWise runs step over m rows of in (and out).
func (w *work) rowWise(step, li int, in, out []float32, m int, wts []float32) {
	c := &w.m.Config
	r := &w.rows
	r.step, r.li, r.in, r.out, r.wts = step, li, in, out, wts
	cost := 4 * c.Hidden
	switch step {
	case qkvRows:
		cost = 4 * (c.Heads + 2*c.KVHeads) * c.HeadDim
	case gluRows:
		cost = 16 * c.Intermediate
	}
	cpu.ParallelRows(r, m, cost)
	r.in, r.out, r.wts = nil, nil, nil
}

func (r *rowWork) Rows(i0, i1 int) {
	w := r.w
	c := &w.m.Config
	switch r.step {
	case normRows:
		h := c.Hidden
		eps := float32(c.NormEps)
		for i := i0; i < i1; i++ {
			cpu.RMSNorm(r.out[i*h:(i+1)*h], r.in[i*h:(i+1)*h], r.wts, eps)
		}
	case qkvRows:
		qd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
		qkvw := qd + 2*kvd
		bias := w.m.packed.layers[r.li].qkvBias
		for _, sg := range w.segs {
			a, b := max(i0, sg.row0), min(i1, sg.row0+sg.rows)
			if a >= b {
				continue
			}
			for i := a; i < b; i++ {
				row := r.in[i*qkvw : (i+1)*qkvw]
				if bias != nil {
					cpu.Add(row, bias)
				}
				sg.s.rope(row[:qd+kvd], sg.lo+i-sg.row0)
			}
			sg.s.kv[r.li].Store(sg.lo+a-sg.row0, r.in[a*qkvw+qd:], r.in[a*qkvw+qd+kvd:], b-a, qkvw)
		}
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
	s.items[0] = LogitRows{State: s, Rows: rows}
	err := s.w.logits(s.items[:], out)
	s.items[0] = LogitRows{}
	return err
}

// logits finishes the last layer and runs the head for the items' rows,
// up to w.cap rows at a time, gathered, so that each State's last pass
// stays as Forward left it for the next call.
func (w *work) logits(items []LogitRows, out []float32) error {
	c := &w.m.Config
	h, vocab := c.Hidden, c.Vocab
	total := 0
	for _, it := range items {
		s := it.State
		switch {
		case s.m.weights == nil:
			return fmt.Errorf("logits: %w", ErrClosed)
		case !s.done:
			return errors.New("logits: no completed Forward")
		}
		for _, r := range it.Rows {
			if r < s.lastLo || r >= s.lastHi {
				return fmt.Errorf("logits: position %d is outside the window [%d,%d) of the last Forward", r, s.lastLo, s.lastHi)
			}
		}
		total += len(it.Rows)
	}
	if len(out) != total*vocab {
		return fmt.Errorf("logits: out has %d values, want %d rows × %d", len(out), total, vocab)
	}
	if total == 0 {
		return nil
	}
	if w.cap == 0 {
		return errors.New("logits: no buffer rows")
	}
	qd, qkvw := c.Heads*c.HeadDim, (c.Heads+2*c.KVHeads)*c.HeadDim
	w.segs = w.segs[:0]
	k, done := 0, 0 // rows gathered, rows written to out
	for _, it := range items {
		s := it.State
		for ri, r := range it.Rows {
			if k == w.cap {
				w.head(k, out[done*vocab:])
				done, k = done+k, 0
				w.segs = w.segs[:0]
			}
			if ri == 0 || k == 0 {
				w.segs = append(w.segs, segment{s: s, row0: k, n: s.lastN})
			}
			w.segs[len(w.segs)-1].rows++
			j := r - s.lastLo
			copy(w.xg[k*h:(k+1)*h], s.w.x[j*h:])
			copy(w.qg[k*qd:(k+1)*qd], s.w.qkv[j*qkvw:])
			k++
		}
	}
	w.head(k, out[done*vocab:])
	return nil
}

// head finishes the last layer for the k gathered rows of w.xg and w.qg
// (segments in w.segs) and writes their logits to out.
func (w *work) head(k int, out []float32) {
	c := &w.m.Config
	h, qd := c.Hidden, c.Heads*c.HeadDim
	eps := float32(c.NormEps)
	xg := w.xg[:k*h]
	w.finish(len(w.m.Weights.Layers)-1, xg, w.qg[:k*qd], k, qd)
	for i := range k {
		cpu.RMSNorm(w.xb[i*h:(i+1)*h], xg[i*h:(i+1)*h], w.m.Weights.Norm, eps)
	}
	w.m.packed.head.MulT(out[:k*c.Vocab], w.xb[:k*h], k)
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
