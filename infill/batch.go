package infill

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/infuse-lsp/infuse/runtime"
)

// scheduler runs the denoising loops of every request in flight as one
// loop: each step makes one batched forward pass over the windows of all
// their canvases (runtime.Batch), then each canvas commits its tokens.
// Requests join at any step, in arrival order, while the batch has room
// (Options.MaxBatch canvases), and leave when done or cancelled, so none
// waits for another to finish and none starves. The loop runs in a
// goroutine started by the first request and ending when none is left.
type scheduler struct {
	model    *runtime.Model
	opts     Options
	sp       *special
	maxBatch int

	mu      sync.Mutex
	queue   []*flight // waiting for room in the batch
	running bool      // the loop goroutine is running
	free    []*runtime.State

	// Owned by the loop.
	batch  *runtime.Batch // allocated on the first step of several canvases
	passes []runtime.Pass
	items  []runtime.LogitRows
	jobs   []*job // planned this step, in the order of passes
	logits []float32
	steps  int    // batched passes run
	onStep func() // tests: called at the start of every step
}

// flight is one request in the scheduler.
type flight struct {
	ctx      context.Context
	jobs     []*job
	fig      Figures // NFE, timings, tokens and FLOPs over all its canvases
	passes   int     // batched passes that advanced one of its canvases
	lastStep int     // the scheduler's step that last did
	err      error
	ended    bool          // end has run
	done     chan struct{} // closed when fig and err are final
}

// job is one canvas of a request, with its sampler and State.
type job struct {
	f     *flight
	c     *canvas
	d     *denoiser
	state *runtime.State
	fig   Figures // the canvas's own counts (its denoiser's view)
	done  bool
}

// logitBudget bounds the logits buffer of one step (values): steps whose
// rows need more compute them in groups of canvases.
const logitBudget = 16 << 20

// batchBytes bounds the activation buffers of the batch.
const batchBytes = 256 << 20

func (s *scheduler) init(m *runtime.Model, sp *special, opts Options) {
	s.model, s.sp, s.opts = m, sp, opts
	s.maxBatch = opts.MaxBatch
}

// forward runs the planned passes: one canvas in its State's own buffers,
// several as a batch.
func (s *scheduler) forward(ctx context.Context) error {
	if len(s.passes) == 1 {
		p := s.passes[0]
		return p.State.Forward(ctx, p.Tokens, p.Lo, p.Hi)
	}
	if s.batch == nil {
		c := &s.model.Config
		qd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
		perRow := 4 * (3*c.Hidden + 2*qd + 2*kvd + qd + 3*c.Intermediate) // bytes, see runtime.work
		ctxTokens := s.opts.ContextTokens
		rows := min(max(s.maxBatch, 2)*ctxTokens, max(ctxTokens, batchBytes/perRow))
		s.batch = s.model.NewBatch(rows)
	}
	return s.batch.Forward(ctx, s.passes)
}

// rowLogits computes the logits of items into out: one State's on its
// own, several as a batch.
func (s *scheduler) rowLogits(items []runtime.LogitRows, out []float32) error {
	if len(items) == 1 {
		return items[0].State.Logits(items[0].Rows, out)
	}
	return s.batch.Logits(items, out)
}

// run denoises the canvases of one request among the others in flight.
// It returns when they are done, or at once when ctx ends (the loop then
// drops them at its next step).
func (s *scheduler) run(ctx context.Context, e *Engine, cs []*canvas, fig *Figures) error {
	f := &flight{ctx: ctx, done: make(chan struct{})}
	for _, c := range cs {
		d := newDenoiser(nil, s.sp, s.opts)
		d.cost = e.forwardFLOPs
		d.begin(c)
		f.jobs = append(f.jobs, &job{f: f, c: c, d: d})
	}
	s.mu.Lock()
	s.queue = append(s.queue, f)
	if !s.running {
		s.running = true
		go s.loop()
	}
	s.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	fig.NFE += f.fig.NFE
	fig.Tokens += f.fig.Tokens
	fig.FLOPs += f.fig.FLOPs
	fig.FirstPass += f.fig.FirstPass
	fig.Steps += f.fig.Steps
	return f.err
}

func (s *scheduler) loop() {
	var active []*flight
	for {
		s.mu.Lock()
		active = s.admit(active)
		if len(active) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		active = s.safeStep(active)
	}
}

// safeStep is step, but a panic in it (a bug, in the sampler or a
// kernel) fails the requests in flight instead of ending the process,
// which may be an engine serving every editor window.
func (s *scheduler) safeStep(active []*flight) (kept []*flight) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		err := fmt.Errorf("internal error in the denoising loop: %v", p)
		for _, f := range active {
			if !f.ended {
				f.err = err
				s.end(f)
			}
		}
		kept = nil
	}()
	return s.step(active)
}

// admit moves queued requests into the batch while it has room (a request
// larger than the batch runs alone) and gives each canvas a State. s.mu is
// held.
func (s *scheduler) admit(active []*flight) []*flight {
	canvases := 0
	for _, f := range active {
		canvases += len(f.jobs)
	}
	for len(s.queue) > 0 {
		f := s.queue[0]
		if f.ctx.Err() == nil && len(active) > 0 && canvases+len(f.jobs) > s.maxBatch {
			break
		}
		s.queue = s.queue[1:]
		if err := f.ctx.Err(); err != nil {
			f.err = err
			close(f.done)
			continue
		}
		for _, j := range f.jobs {
			if n := len(s.free); n > 0 {
				j.state, s.free = s.free[n-1], s.free[:n-1]
			} else {
				j.state = s.model.NewState(s.opts.ContextTokens)
			}
			j.d.net = j.state
		}
		canvases += len(f.jobs)
		active = append(active, f)
	}
	return active
}

// step runs one denoising step of every active request and returns those
// still in flight.
func (s *scheduler) step(active []*flight) []*flight {
	if s.onStep != nil {
		s.onStep()
	}
	s.passes, s.items, s.jobs = s.passes[:0], s.items[:0], s.jobs[:0]
	for _, f := range active {
		if err := f.ctx.Err(); err != nil {
			f.err = err
			continue
		}
		for _, j := range f.jobs {
			if j.done {
				continue
			}
			lo, hi, ok := j.d.plan(j.c, &j.fig)
			if !ok {
				j.done = true
				continue
			}
			s.passes = append(s.passes, runtime.Pass{State: j.state, Tokens: j.c.tokens, Lo: lo, Hi: hi})
			s.items = append(s.items, runtime.LogitRows{State: j.state, Rows: j.d.rows})
			s.jobs = append(s.jobs, j)
		}
	}
	if len(s.passes) > 0 {
		// A request alone can be cancelled inside its pass; in a batch,
		// each leaves at the next step.
		ctx := context.Background()
		if len(active) == 1 {
			ctx = active[0].ctx
		}
		start := time.Now()
		err := s.forward(ctx)
		if err == nil {
			err = s.score()
		}
		took := time.Since(start)
		s.steps++
		for _, j := range s.jobs {
			f := j.f
			if err != nil && f.err == nil {
				f.err = err
			}
			if f.lastStep == s.steps {
				continue // counted for another of its canvases
			}
			f.lastStep = s.steps
			f.passes++
			if f.passes == 1 {
				f.fig.FirstPass += took
			} else {
				f.fig.Steps += took
			}
		}
	}
	kept := active[:0]
	for _, f := range active {
		if f.err == nil && !f.finished() {
			kept = append(kept, f)
			continue
		}
		s.end(f)
	}
	clear(active[len(kept):])
	return kept
}

// score computes the logits of the planned rows, in groups of canvases
// that fit logitBudget, and applies each canvas's step.
func (s *scheduler) score() error {
	vocab := s.sp.vocab
	for first := 0; first < len(s.items); {
		last, rows := first, 0
		for last < len(s.items) && (last == first || (rows+len(s.items[last].Rows))*vocab <= logitBudget) {
			rows += len(s.items[last].Rows)
			last++
		}
		if cap(s.logits) < rows*vocab {
			s.logits = make([]float32, rows*vocab)
		}
		out := s.logits[:rows*vocab]
		if err := s.rowLogits(s.items[first:last], out); err != nil {
			return err
		}
		for i, j := range s.jobs[first:last] {
			n := len(s.items[first+i].Rows) * vocab
			j.d.apply(j.c, out[:n], &j.fig)
			out = out[n:]
		}
		first = last
	}
	return nil
}

// finished says whether every canvas of f is done.
func (f *flight) finished() bool {
	for _, j := range f.jobs {
		if !j.done {
			return false
		}
	}
	return true
}

// end answers f and takes back its States.
func (s *scheduler) end(f *flight) {
	f.ended = true
	f.fig.NFE = f.passes
	for _, j := range f.jobs {
		f.fig.Tokens += j.fig.Tokens
		f.fig.FLOPs += j.fig.FLOPs
	}
	s.mu.Lock()
	for _, j := range f.jobs {
		if j.state != nil && len(s.free) < s.maxBatch {
			s.free = append(s.free, j.state)
		}
		j.state, j.d.net = nil, nil
	}
	s.mu.Unlock()
	close(f.done)
}
