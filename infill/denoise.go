package infill

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// network is what denoising needs from a model: runtime.State implements it.
// Forward computes positions [lo,hi) of tokens, attending over all of them
// (K/V outside the window come from the last pass that computed them);
// Logits returns raw output rows of the last Forward.
type network interface {
	Forward(ctx context.Context, tokens []int32, lo, hi int) error
	Logits(rows []int, out []float32) error
}

// special holds the token ids and facts the denoiser must know.
type special struct {
	vocab     int   // width of a logit row
	choosable int   // only ids below this may be committed (the tokenizer's size)
	shift     bool  // row i predicts position i+1 (Dream family)
	mask      int32 // the mask id
	expand    int32 // DreamOn's <|expand|>: becomes two masks (-1: none)
	stops     []int32
	newlines  []bool // newlines[id]: the token's text contains '\n'
}

func (s *special) isStop(id int32) bool { return slices.Contains(s.stops, id) }

// isNewline says whether the token's text holds a line break.
func (s *special) isNewline(id int32) bool { return int(id) < len(s.newlines) && s.newlines[id] }

// span is one masked hole of a canvas, [start,end).
type span struct {
	start, end int
	singleLine bool // stop at the first newline
	max        int  // DreamOn: the longest the span may grow to
	// heal is text taken back from the end of the text before the span
	// (its last token): the span's first token must start with it. A cursor
	// inside a word or after a space splits what the model saw as one token
	// in training ("self.it|ems" would be "it" + "ems", never "items").
	heal    string
	allowed []bool // allowed[id]: the token may be the span's first (nil: any)
}

// canvas is the model input being denoised.
type canvas struct {
	tokens []int32
	spans  []span
	// after[i] is the text after span i, up to the next span or the end,
	// for finishing its middle; hole[i] is the hole of the request span i
	// fills.
	after []string
	hole  []int
	// used is how many tokens of the text before the first span and after
	// the last the context budget kept.
	usedBefore, usedAfter int
}

// commit is one position filled at one step; a trace is the list of them.
type commit struct {
	Step int   `json:"step"`
	Pos  int   `json:"pos"`
	Tok  int32 `json:"tok"`
}

// denoiser runs the denoising loop of one request.
type denoiser struct {
	net  network
	sp   *special
	opts Options
	sc   scorer
	rng  *rand.Rand

	logits []float32
	cands  []candidate
	rows   []int // the logit rows the planned pass scores

	// The loop's progress: the step, how many the schedule has, cached
	// steps since the last full pass; the planned step's candidates, those
	// scored, and its quota.
	step, steps, sinceFull int
	cur, scored            []candidate
	k                      int

	blockKey, blockStep, blockMasks int    // LLaDA: the current blocks and their progress
	served                          []bool // threshold: the holes that commit this step

	trace func(commit)                      // optional: every commit, in order
	cost  func(window, n, rows int) float64 // optional: FLOPs of a forward pass
}

func newDenoiser(net network, sp *special, opts Options) *denoiser {
	rng := rand.New(rand.NewPCG(opts.Seed, 0x696e66757365))
	alg := opts.Sampler
	switch alg {
	case "threshold", "llada", "origin":
		alg = "maskgit_plus" // confidence is the probability of the chosen token
	case "dreamon":
		alg = "entropy"
	}
	banned := []int{int(sp.mask)}
	if sp.expand >= 0 && opts.Sampler != "dreamon" {
		// Only DreamOn grows spans; a fixed-length sampler must never
		// commit the expand token (DreamOn's own batch_generate bans it).
		banned = append(banned, int(sp.expand))
	}
	return &denoiser{
		net: net, sp: sp, opts: opts, rng: rng,
		sc: scorer{alg: alg, temperature: opts.Temperature, topP: opts.TopP, topK: opts.TopK,
			vocab: min(sp.choosable, sp.vocab), banned: banned, rng: rng},
	}
}

// run denoises every span of c until no mask is left, filling fig.
func (d *denoiser) run(ctx context.Context, c *canvas, fig *Figures) error {
	d.begin(c)
	for {
		lo, hi, ok := d.plan(c, fig)
		if !ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if err := d.net.Forward(ctx, c.tokens, lo, hi); err != nil {
			return err
		}
		out := d.logitRows(len(d.rows))
		if err := d.net.Logits(d.rows, out); err != nil {
			return fmt.Errorf("logits: %w", err)
		}
		d.apply(c, out, fig)
		d.timed(fig, time.Since(start))
	}
}

// The loop of run is split in three so that a scheduler can run the
// forward passes of several denoisers as one batch: begin once, then until
// plan says done: plan (decides the step and its window), a forward pass
// over c.tokens[lo:hi] and the logits of d.rows, apply.

// begin starts denoising c.
func (d *denoiser) begin(c *canvas) {
	d.served = make([]bool, len(c.spans))
	d.steps = d.opts.Steps
	if d.steps <= 0 {
		d.steps = d.masked(c)
	}
	d.step, d.sinceFull = -1, 0
}

// plan moves to the next step that needs a forward pass and returns the
// window [lo,hi) that pass computes, with the rows to score in d.rows; ok
// is false when no mask is left.
func (d *denoiser) plan(c *canvas, fig *Figures) (lo, hi int, ok bool) {
	for {
		d.step++
		d.cur = d.candidates(c)
		if len(d.cur) == 0 {
			return 0, 0, false
		}
		// The schedule may say to commit nothing at this step (Dream's
		// ⌊|M|·(1−s/t)⌋ is often 0 early on): skip the forward pass.
		d.k = d.quota(c, d.step, d.steps, d.cur)
		if d.k != 0 {
			break
		}
	}
	lo, hi = 0, len(c.tokens)
	// DreamOn moves the suffix as spans grow and shrink, which invalidates
	// its cached keys: it runs full passes.
	switch {
	case d.opts.Exact || d.opts.Sampler == "dreamon" || fig.NFE == 0:
		d.sinceFull = 0
	case d.sinceFull >= d.opts.RefreshEvery:
		d.sinceFull = 0
		if r := d.opts.RefreshRadius; r > 0 {
			// A partial refresh: the context nearest the spans, which
			// what they now hold changes most.
			lo, hi = d.window(c)
			lo, hi = max(lo-r, 0), min(hi+r, len(c.tokens))
		}
	default:
		d.sinceFull++
		lo, hi = d.window(c)
	}
	// Origin picks its positions before looking at the logits, so only
	// those need scoring.
	d.scored = d.cur
	if d.opts.Sampler == "origin" {
		d.scored = d.cur[:d.k]
	}
	d.rows = d.rows[:0]
	for _, cd := range d.scored {
		r := cd.pos
		if d.sp.shift {
			r--
		}
		d.rows = append(d.rows, r)
	}
	fig.FLOPs += d.flops(hi-lo, len(c.tokens), len(d.rows))
	return lo, hi, true
}

// apply finishes the planned step from the logits of d.rows: it scores
// the candidates, commits the chosen ones and ends or resizes the spans.
func (d *denoiser) apply(c *canvas, logits []float32, fig *Figures) {
	d.score(c, d.scored, logits)
	fig.NFE++
	for _, cd := range d.cur[:d.choose(d.k, d.cur)] {
		c.tokens[cd.pos] = cd.tok
		fig.Tokens++
		if d.trace != nil {
			d.trace(commit{Step: d.step, Pos: cd.pos, Tok: cd.tok})
		}
	}
	if d.opts.Sampler == "dreamon" {
		d.resize(c)
	} else {
		d.absorb(c)
	}
}

// timed adds a step's time to fig: the first pass, or the steps after it.
func (d *denoiser) timed(fig *Figures, t time.Duration) {
	if fig.NFE == 1 {
		fig.FirstPass += t
	} else {
		fig.Steps += t
	}
}

// flops is the arithmetic of a pass over a window of w positions
// attending over n, scoring rows positions; 0 without a cost model.
func (d *denoiser) flops(w, n, rows int) float64 {
	if d.cost == nil {
		return 0
	}
	return d.cost(w, n, rows)
}

// logitRows returns d's logits buffer for n rows.
func (d *denoiser) logitRows(n int) []float32 {
	need := n * d.sp.vocab
	if cap(d.logits) < need {
		d.logits = make([]float32, need)
	}
	return d.logits[:need]
}

// masked counts the masks left in c's spans.
func (d *denoiser) masked(c *canvas) int {
	n := 0
	for _, s := range c.spans {
		for p := s.start; p < s.end; p++ {
			if c.tokens[p] == d.sp.mask {
				n++
			}
		}
	}
	return n
}

// block returns the part of s being decoded: its first block that still
// has a mask, or all of s without blocks.
func (d *denoiser) block(c *canvas, s span) (int, int) {
	bl := d.opts.BlockLength
	if bl <= 0 {
		return s.start, s.end
	}
	for b := s.start; b < s.end; b += bl {
		e := min(b+bl, s.end)
		for p := b; p < e; p++ {
			if c.tokens[p] == d.sp.mask {
				return b, e
			}
		}
	}
	return s.end, s.end
}

// candidates lists the masked positions that may be committed this step.
func (d *denoiser) candidates(c *canvas) []candidate {
	d.cands = d.cands[:0]
	for i, s := range c.spans {
		lo, hi := d.block(c, s)
		for p := lo; p < hi; p++ {
			if c.tokens[p] == d.sp.mask {
				d.cands = append(d.cands, candidate{pos: p, span: i})
			}
		}
	}
	return d.cands
}

// window is the part of the canvas a cached step recomputes: every span,
// and with shifted logits the position before the first span, whose row
// predicts the span's first token.
func (d *denoiser) window(c *canvas) (int, int) {
	lo, hi := c.spans[0].start, c.spans[len(c.spans)-1].end
	if d.sp.shift {
		lo--
	}
	return max(lo, 0), hi
}

// score fills tok and conf of every candidate from its logit row in out.
func (d *denoiser) score(c *canvas, cands []candidate, out []float32) {
	for i, cd := range cands {
		row := out[i*d.sp.vocab : (i+1)*d.sp.vocab]
		if d.opts.Sampler == "dreamon" && d.sp.expand >= 0 && !d.canGrow(c, cd.span) {
			row[d.sp.expand] = float32(math.Inf(-1))
		}
		if sp := c.spans[cd.span]; cd.pos == sp.start && sp.allowed != nil {
			allowed := sp.allowed
			for id := range row {
				if id >= len(allowed) || !allowed[id] {
					row[id] = float32(math.Inf(-1))
				}
			}
		}
		cands[i].tok, cands[i].conf = d.sc.score(row)
	}
	if d.opts.Sampler == "threshold" && !d.opts.StopsAnywhere {
		d.stopsFromTheEnd(c, cands, out)
	}
}

// stopsFromTheEnd lets a span end only from its right: a position may take
// a stop token only next to the span's end or to the stop tokens that
// already fill its tail (or that this step commits there, above τ). A
// small model trained on spans padded with end-of-text is sure of those
// pads early and commits one in the middle of a long span, which cuts the
// span there and leaves it empty; elsewhere a position takes its best
// token that is not a stop. cands are in position order, as candidates
// lists them, and out holds their logit rows.
func (d *denoiser) stopsFromTheEnd(c *canvas, cands []candidate, out []float32) {
	for i := len(cands) - 1; i >= 0; {
		span := cands[i].span
		sp := c.spans[span]
		end := sp.end // the first position of the span's stop-token tail
		for end > sp.start && d.sp.isStop(c.tokens[end-1]) {
			end--
		}
		for ; i >= 0 && cands[i].span == span; i-- {
			cd := &cands[i]
			if !d.sp.isStop(cd.tok) {
				continue
			}
			if cd.pos == end-1 {
				if cd.conf >= d.opts.Threshold {
					end = cd.pos // committed this step: the tail grows
				}
				continue
			}
			row := out[i*d.sp.vocab : (i+1)*d.sp.vocab]
			for _, id := range d.sp.stops {
				row[id] = float32(math.Inf(-1))
			}
			cd.tok, cd.conf = d.sc.score(row)
		}
	}
}

// quota is how many candidates this step commits, decided before the
// forward pass; -1 means "decided by confidence" (the threshold sampler).
// For origin it also moves the positions it reveals to the front.
func (d *denoiser) quota(c *canvas, step, steps int, cands []candidate) int {
	switch d.opts.Sampler {
	case "threshold", "dreamon":
		return -1
	case "llada":
		return min(len(cands), d.lladaQuota(c, steps, len(cands)))
	case "origin":
		// Each mask is revealed independently with probability 1 − s/t.
		p := 1.0
		if step < steps-1 {
			t, s := d.times(step, steps)
			p = 1 - s/t
		}
		n := 0
		for i := range cands {
			if d.rng.Float64() < p {
				cands[i], cands[n] = cands[n], cands[i]
				n++
			}
		}
		return n
	}
	// Dream: k = ⌊|M|·(1 − s/t)⌋, everything at the last step.
	masks := d.masked(c)
	if step >= steps-1 {
		return min(masks, len(cands))
	}
	t, s := d.times(step, steps)
	return min(int(float64(masks)*(1-s/t)), len(cands))
}

// choose orders the scored candidates so that those to commit come first
// and returns how many to commit, given the step's quota k.
func (d *denoiser) choose(k int, cands []candidate) int {
	byConf := func(a, b candidate) int {
		switch {
		case a.conf > b.conf:
			return -1
		case a.conf < b.conf:
			return 1
		}
		return a.pos - b.pos // ties: the lower position first
	}
	switch d.opts.Sampler {
	case "origin":
		return k
	case "threshold", "dreamon":
		// Fast-dLLM: every position above τ, and each hole's most confident
		// position even below it, so that one pass advances every hole.
		slices.SortFunc(cands, byConf)
		clear(d.served)
		n := 0
		tau := d.opts.Threshold
		if d.opts.Sampler == "dreamon" {
			tau = math.Inf(1) // DreamOn commits one token per step (per hole)
		}
		for i, cd := range cands {
			if cd.conf >= tau || !d.served[cd.span] {
				d.served[cd.span] = true
				cands[i], cands[n] = cands[n], cands[i]
				n++
			}
		}
		return n // the chosen, still in order of confidence
	}
	if d.opts.AlgTemp > 0 && d.opts.Sampler != "llada" {
		// Sampling k positions without replacement from softmax(conf/T) is
		// the top k of conf/T plus Gumbel noise.
		for i := range cands {
			u := d.rng.Float64()
			cands[i].conf = cands[i].conf/d.opts.AlgTemp - math.Log(-math.Log(u+1e-20)+1e-20)
		}
	}
	slices.SortFunc(cands, byConf)
	return k
}

// times returns Dream's t and s for a step: linspace(1, eps, steps+1).
func (d *denoiser) times(step, steps int) (t, s float64) {
	dt := (1 - d.opts.Eps) / float64(steps)
	return 1 - float64(step)*dt, 1 - float64(step+1)*dt
}

// lladaQuota is LLaDA's num_transfer_tokens: the masks a block starts with
// spread evenly over the steps each block gets, the remainder first. A step
// never commits nothing, and a block's last step commits what is left.
func (d *denoiser) lladaQuota(c *canvas, steps, left int) int {
	key := 0
	for _, s := range c.spans {
		b, _ := d.block(c, s)
		key = key*31 + b
	}
	if key != d.blockKey || d.blockStep == 0 {
		d.blockKey, d.blockStep, d.blockMasks = key, 0, left
	}
	spb := steps
	if bl := d.opts.BlockLength; bl > 0 {
		longest := 0
		for _, s := range c.spans {
			longest = max(longest, s.end-s.start)
		}
		spb = steps / ((longest + bl - 1) / bl)
	}
	spb = max(spb, 1)
	i := d.blockStep
	d.blockStep++
	if i >= spb-1 {
		d.blockStep = 0 // the next step starts a new block
		return left
	}
	q := d.blockMasks / spb
	if i < d.blockMasks%spb {
		q++
	}
	return max(q, 1)
}

// absorb ends each span at its first stop token (and, for a single-line
// span, its first newline): the masks after it become the stop token, as
// DreamOn does, so the loop neither wastes steps on them nor commits text
// that would be cut anyway.
func (d *denoiser) absorb(c *canvas) {
	for _, s := range c.spans {
		cut := cutAt(d.sp, c, s)
		for p := cut + 1; p < s.end; p++ {
			if c.tokens[p] == d.sp.mask {
				c.tokens[p] = d.sp.stops[0]
			}
		}
	}
}

// cutAt returns the position of the token that ends span s: its first
// stop token or, for a single-line span, its first newline; s.end if none
// yet.
func cutAt(sp *special, c *canvas, s span) int {
	for p := s.start; p < s.end; p++ {
		t := c.tokens[p]
		if t == sp.mask {
			continue
		}
		if sp.isStop(t) || (s.singleLine && sp.isNewline(t)) {
			return p
		}
	}
	return s.end
}

// canGrow says whether hole i may still expand: DreamOn bans the expand
// token once a span has reached its longest length.
func (d *denoiser) canGrow(c *canvas, i int) bool {
	s := c.spans[i]
	return s.end-s.start < s.max
}

// resize applies DreamOn's length edits to every span after a step: an
// expand token becomes two masks (the span grows by one), and a stop token
// ends the span there (it and everything after it are deleted, so the
// suffix moves up). Positions after an edit shift, and so do later spans.
func (d *denoiser) resize(c *canvas) {
	for i := range c.spans {
		s := &c.spans[i]
		for p := s.start; p < s.end; p++ {
			t := c.tokens[p]
			switch {
			case t == d.sp.expand && d.sp.expand >= 0:
				c.tokens = slices.Insert(c.tokens, p+1, d.sp.mask)
				c.tokens[p] = d.sp.mask
				d.shift(c, i, 1)
			case d.sp.isStop(t):
				cut := s.end - p
				c.tokens = slices.Delete(c.tokens, p, s.end)
				d.shift(c, i, -cut)
			case s.singleLine && d.sp.isNewline(t) && p+1 < s.end:
				cut := s.end - p - 1
				c.tokens = slices.Delete(c.tokens, p+1, s.end)
				d.shift(c, i, -cut)
			}
		}
	}
}

// shift moves the end of span i and every later span by delta positions.
func (d *denoiser) shift(c *canvas, i, delta int) {
	c.spans[i].end += delta
	for j := i + 1; j < len(c.spans); j++ {
		c.spans[j].start += delta
		c.spans[j].end += delta
	}
}
