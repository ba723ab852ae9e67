package infill

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/infuse-lsp/infuse/runtime"
)

// Token ids of the fake vocabulary.
const (
	fMask    = 10
	fEOS     = 11
	fNewline = 12
	fVocab   = 16
)

// fakeNet predicts target[q] at every position q with a logit of
// strength[q] over zeros elsewhere: a model whose answer and confidence the
// test controls.
type fakeNet struct {
	shift    bool
	target   []int32
	strength []float32
	windows  [][2]int
}

func (f *fakeNet) Forward(ctx context.Context, tokens []int32, lo, hi int) error {
	f.windows = append(f.windows, [2]int{lo, hi})
	return nil
}

func (f *fakeNet) Logits(rows []int, out []float32) error {
	for i, r := range rows {
		q := r
		if f.shift {
			q++
		}
		row := out[i*fVocab : (i+1)*fVocab]
		for j := range row {
			row[j] = 0
		}
		row[f.target[q]] = f.strength[q]
	}
	return nil
}

func fakeSpecial(shift bool) *special {
	nl := make([]bool, fVocab)
	nl[fNewline] = true
	return &special{vocab: fVocab, choosable: fVocab, shift: shift, mask: fMask, expand: -1, stops: []int32{fEOS}, newlines: nl}
}

// fakeCanvas is BOS(0) 1 2 [MASK×n] 3 4 EOS.
func fakeCanvas(n int, single bool) *canvas {
	c := &canvas{tokens: []int32{0, 1, 2}}
	s := span{start: 3, end: 3 + n, singleLine: single}
	for range n {
		c.tokens = append(c.tokens, fMask)
	}
	c.tokens = append(c.tokens, 3, 4, fEOS)
	c.spans = []span{s}
	return c
}

func newFake(c *canvas, middle []int32, strength func(q int) float32) *fakeNet {
	f := &fakeNet{shift: true, target: append([]int32(nil), c.tokens...), strength: make([]float32, len(c.tokens))}
	copy(f.target[c.spans[0].start:], middle)
	for q := range f.strength {
		f.strength[q] = strength(q)
	}
	return f
}

func runFake(t *testing.T, opts Options, c *canvas, f *fakeNet) (Figures, []commit) {
	t.Helper()
	opts, err := opts.withDefaults(runtime.Config{})
	if err != nil {
		t.Fatal(err)
	}
	d := newDenoiser(f, fakeSpecial(f.shift), opts)
	var trace []commit
	d.trace = func(c commit) { trace = append(trace, c) }
	var fig Figures
	if err := d.run(context.Background(), c, &fig); err != nil {
		t.Fatal(err)
	}
	return fig, trace
}

func spanTokens(c *canvas) []int32 { s := c.spans[0]; return c.tokens[s.start:s.end] }

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestThresholdCommitsConfidentPositionsTogether(t *testing.T) {
	c := fakeCanvas(6, false)
	middle := []int32{5, 6, 7, 8, 9, 5}
	f := newFake(c, middle, func(int) float32 { return 20 }) // p ≈ 1 everywhere
	fig, _ := runFake(t, Options{}, c, f)
	if fig.NFE != 1 || fig.Tokens != 6 {
		t.Errorf("NFE=%d tokens=%d, want all 6 tokens in 1 pass", fig.NFE, fig.Tokens)
	}
	if !equalIDs(spanTokens(c), middle) {
		t.Errorf("span = %v, want %v", spanTokens(c), middle)
	}
}

func TestThresholdCommitsAtLeastOne(t *testing.T) {
	c := fakeCanvas(5, false)
	middle := []int32{5, 6, 7, 8, 9}
	// p = e^s/(e^s+15) < 0.9 for s ≤ 4: no position clears τ.
	f := newFake(c, middle, func(q int) float32 { return 1 + float32(q%3) })
	fig, trace := runFake(t, Options{Threshold: 0.9}, c, f)
	if fig.NFE != 5 || len(trace) != 5 {
		t.Fatalf("NFE=%d commits=%d, want one commit per pass", fig.NFE, len(trace))
	}
	// The most confident first: strength 1+q%3 is highest at q%3==2.
	if trace[0].Pos%3 != 2 {
		t.Errorf("first commit at %d, want a position with the highest confidence", trace[0].Pos)
	}
	if !equalIDs(spanTokens(c), middle) {
		t.Errorf("span = %v, want %v", spanTokens(c), middle)
	}
}

func TestDreamScheduleOneTokenPerStep(t *testing.T) {
	for _, alg := range []string{"entropy", "maskgit_plus", "topk_margin"} {
		c := fakeCanvas(4, false)
		middle := []int32{5, 6, 7, 8}
		f := newFake(c, middle, func(q int) float32 { return float32(q) }) // later = surer
		fig, trace := runFake(t, Options{Sampler: alg, Steps: 5}, c, f)
		// linspace(1, 1e-3, 6) gives k = ⌊4·0.1998⌋ = 0, ⌊4·0.2497⌋ = 0,
		// ⌊4·0.3328⌋ = 1, ⌊3·0.4987⌋ = 1, then the last 2: the two empty
		// steps need no forward pass.
		if fig.NFE != 3 || len(trace) != 4 {
			t.Errorf("%s: NFE=%d commits=%d, want 3 and 4", alg, fig.NFE, len(trace))
		}
		for i, cm := range trace {
			if want := 6 - i; cm.Pos != want {
				t.Errorf("%s: commit %d at %d, want %d (highest confidence first)", alg, i, cm.Pos, want)
			}
		}
	}
}

func TestDreamFewerStepsThanTokens(t *testing.T) {
	c := fakeCanvas(12, false)
	middle := []int32{5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5, 6}
	f := newFake(c, middle, func(q int) float32 { return 3 })
	fig, _ := runFake(t, Options{Sampler: "entropy", Steps: 3}, c, f)
	if fig.NFE > 3 || fig.Tokens != 12 {
		t.Errorf("NFE=%d tokens=%d, want ≤3 passes committing 12", fig.NFE, fig.Tokens)
	}
	if !equalIDs(spanTokens(c), middle) {
		t.Errorf("span = %v", spanTokens(c))
	}
}

func TestEOSAbsorbsTheRestOfTheSpan(t *testing.T) {
	c := fakeCanvas(8, false)
	middle := []int32{5, 6, fEOS, 7, 8, 9, 5, 6}
	// The EOS is the surest token: once it is committed the positions after
	// it are absorbed without being decoded (the reference samplers' rule).
	f := newFake(c, middle, func(q int) float32 {
		if q == 5 {
			return 9
		}
		return 1
	})
	fig, _ := runFake(t, Options{StopsAnywhere: true}, c, f)
	want := []int32{5, 6, fEOS, fEOS, fEOS, fEOS, fEOS, fEOS}
	if !equalIDs(spanTokens(c), want) {
		t.Errorf("span = %v, want %v", spanTokens(c), want)
	}
	if fig.NFE != 3 {
		t.Errorf("NFE=%d, want 3 (EOS, then the two tokens before it)", fig.NFE)
	}
}

// TestSpanEndsFromTheRight: by default a stop token sure of itself in the
// middle of a span does not cut it there; stops fill a span only from its
// end.
func TestSpanEndsFromTheRight(t *testing.T) {
	c := fakeCanvas(8, false)
	middle := []int32{5, 6, fEOS, 7, 8, 9, fEOS, fEOS}
	f := newFake(c, middle, func(q int) float32 {
		if q == 5 || q >= 9 { // the middle EOS and the tail ones: sure
			return 9
		}
		return 1
	})
	runFake(t, Options{}, c, f)
	got := spanTokens(c)
	if got[2] == fEOS || !equalIDs(got[:2], []int32{5, 6}) || !equalIDs(got[3:], []int32{7, 8, 9, fEOS, fEOS}) {
		t.Errorf("span = %v, want 5 6, not EOS, 7 8 9 and the two EOS of the tail", got)
	}
}

func TestSingleLineStopsAtNewline(t *testing.T) {
	c := fakeCanvas(6, true)
	middle := []int32{5, fNewline, 7, 8, 9, 5}
	f := newFake(c, middle, func(q int) float32 {
		if q == 4 {
			return 9
		}
		return 1
	})
	fig, _ := runFake(t, Options{}, c, f)
	if got := spanTokens(c); got[0] != 5 || got[1] != fNewline || got[2] != fEOS || got[5] != fEOS {
		t.Errorf("span = %v, want 5 NL then absorbed", got)
	}
	if fig.NFE != 2 {
		t.Errorf("NFE=%d, want 2", fig.NFE)
	}
}

func TestCachedStepsForwardOnlyTheSpanWindow(t *testing.T) {
	c := fakeCanvas(8, false)
	f := newFake(c, []int32{5, 6, 7, 8, 9, 5, 6, 7}, func(int) float32 { return 1 })
	runFake(t, Options{RefreshEvery: 3}, c, f)
	full, win := [2]int{0, len(c.tokens)}, [2]int{2, 11} // the span [3,11) and the row before it
	want := [][2]int{full, win, win, win, full, win, win, win}
	if len(f.windows) != len(want) {
		t.Fatalf("windows %v, want %v", f.windows, want)
	}
	for i := range want {
		if f.windows[i] != want[i] {
			t.Errorf("pass %d window %v, want %v", i, f.windows[i], want[i])
		}
	}
	// A partial refresh recomputes the spans' window and one position on
	// each side (clamped to the canvas).
	f.windows = nil
	c = fakeCanvas(8, false)
	f = newFake(c, []int32{5, 6, 7, 8, 9, 5, 6, 7}, func(int) float32 { return 1 })
	runFake(t, Options{RefreshEvery: 3, RefreshRadius: 1}, c, f)
	band := [2]int{1, 12}
	want = [][2]int{full, win, win, win, band, win, win, win}
	for i := range want {
		if i >= len(f.windows) || f.windows[i] != want[i] {
			t.Errorf("partial refresh: windows %v, want %v", f.windows, want)
			break
		}
	}
	f.windows = nil
	c = fakeCanvas(4, false)
	runFake(t, Options{Exact: true}, c, f)
	for _, w := range f.windows {
		if w != [2]int{0, len(c.tokens)} {
			t.Errorf("exact mode ran window %v", w)
		}
	}
}

func TestLLaDABlocksCommitLeftToRight(t *testing.T) {
	c := fakeCanvas(6, false)
	middle := []int32{5, 6, 7, 8, 9, 5}
	f := newFake(c, middle, func(q int) float32 { return float32(q) }) // the right end is surest
	f.shift = false
	fig, trace := runFake(t, Options{Sampler: "llada", BlockLength: 2, Steps: 6}, c, f)
	if fig.NFE != 6 {
		t.Errorf("NFE=%d, want 6", fig.NFE)
	}
	for i, cm := range trace {
		if block := (cm.Pos - 3) / 2; block != i/2 {
			t.Errorf("commit %d at %d is in block %d, want block %d", i, cm.Pos, block, i/2)
		}
	}
}

func TestCancelledContextStops(t *testing.T) {
	c := fakeCanvas(4, false)
	f := newFake(c, []int32{5, 6, 7, 8}, func(int) float32 { return 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts, _ := Options{}.withDefaults(runtime.Config{})
	var fig Figures
	err := newDenoiser(f, fakeSpecial(true), opts).run(ctx, c, &fig)
	if !errors.Is(err, context.Canceled) || fig.NFE != 0 {
		t.Errorf("err=%v NFE=%d, want context.Canceled before any pass", err, fig.NFE)
	}
}

func TestSamplingIsSeeded(t *testing.T) {
	run := func(seed uint64) []int32 {
		c := fakeCanvas(8, false)
		f := newFake(c, []int32{5, 6, 7, 8, 9, 5, 6, 7}, func(int) float32 { return 1.5 })
		runFake(t, Options{Temperature: 1, Seed: seed, Sampler: "origin", Steps: 4}, c, f)
		return append([]int32(nil), spanTokens(c)...)
	}
	a, b := run(7), run(7)
	if !equalIDs(a, b) {
		t.Errorf("same seed gave %v and %v", a, b)
	}
	differs := false
	for s := uint64(8); s < 16 && !differs; s++ {
		differs = !equalIDs(a, run(s))
	}
	if !differs {
		t.Errorf("eight other seeds all gave %v: sampling ignores the seed", a)
	}
}

func TestHealedSpanStartsWithAllowedToken(t *testing.T) {
	c := fakeCanvas(4, false)
	allowed := make([]bool, fVocab)
	allowed[7], allowed[8] = true, true
	c.spans[0].allowed = allowed
	// The model is surest of 5 at the first position, which is not allowed.
	f := newFake(c, []int32{5, 6, 7, 8}, func(int) float32 { return 9 })
	runFake(t, Options{}, c, f)
	if got := spanTokens(c); got[0] != 7 && got[0] != 8 {
		t.Errorf("span %v starts with %d, want an allowed token (7 or 8)", got, got[0])
	}
	if got := spanTokens(c); !equalIDs(got[1:], []int32{6, 7, 8}) {
		t.Errorf("unconstrained positions %v, want 6 7 8", got[1:])
	}
}

const fExpand = 13

// growNet predicts <|expand|> at the first mask until the canvas has grown
// by two, then 5 everywhere, or, with eos set, EOS at the first mask.
type growNet struct {
	tokens []int32
	start  int // canvas length at the start
	eos    bool
}

func (g *growNet) Forward(ctx context.Context, tokens []int32, lo, hi int) error {
	g.tokens = tokens
	return nil
}

func (g *growNet) Logits(rows []int, out []float32) error {
	first := slices.Index(g.tokens, fMask)
	for i, r := range rows {
		row := out[i*fVocab : (i+1)*fVocab]
		clear(row)
		q := r + 1 // shifted
		switch {
		case q == first && g.eos:
			row[fEOS] = 9
		case q == first && len(g.tokens) < g.start+2:
			row[fExpand] = 9
		case q == first:
			row[5] = 9
		default:
			row[5] = 1
		}
	}
	return nil
}

func runDreamOn(t *testing.T, c *canvas, net *growNet) Figures {
	t.Helper()
	sp := fakeSpecial(true)
	sp.expand = fExpand
	opts, err := Options{Sampler: "dreamon"}.withDefaults(runtime.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var fig Figures
	if err := newDenoiser(net, sp, opts).run(context.Background(), c, &fig); err != nil {
		t.Fatal(err)
	}
	return fig
}

func TestDreamOnExpandGrowsTheSpan(t *testing.T) {
	c := fakeCanvas(2, false)
	c.spans[0].max = 6
	n := len(c.tokens)
	runDreamOn(t, c, &growNet{start: n})
	if got := spanTokens(c); !equalIDs(got, []int32{5, 5, 5, 5}) {
		t.Errorf("span %v, want four 5s (two masks, expanded twice)", got)
	}
	if want := []int32{3, 4, fEOS}; !equalIDs(c.tokens[c.spans[0].end:], want) {
		t.Errorf("after the span %v, want the suffix %v moved along", c.tokens[c.spans[0].end:], want)
	}
}

func TestDreamOnExpandStopsAtTheLongestLength(t *testing.T) {
	c := fakeCanvas(2, false)
	c.spans[0].max = 3                                     // room for one expansion only
	runDreamOn(t, c, &growNet{start: len(c.tokens) + 100}) // always wants to expand
	if got := spanTokens(c); len(got) != 3 || slices.Contains(got, fExpand) || slices.Contains(got, fMask) {
		t.Errorf("span %v, want 3 tokens, no expand left", got)
	}
}

func TestDreamOnEOSDeletesTheRest(t *testing.T) {
	c := fakeCanvas(4, false)
	c.spans[0].max = 4
	fig := runDreamOn(t, c, &growNet{start: len(c.tokens), eos: true})
	if s := c.spans[0]; s.end != s.start {
		t.Errorf("span %v left, want it deleted by the EOS at its start", spanTokens(c))
	}
	if want := []int32{0, 1, 2, 3, 4, fEOS}; !equalIDs(c.tokens, want) {
		t.Errorf("canvas %v, want %v", c.tokens, want)
	}
	if fig.NFE != 1 {
		t.Errorf("NFE=%d, want 1", fig.NFE)
	}
}

// TestModelDecodingDefaults: an option left at zero takes the model's
// generation config; one set, even to "the whole canvas" (-1), wins.
func TestModelDecodingDefaults(t *testing.T) {
	m := runtime.Config{Threshold: 0.7, ContextTokens: 192, RefreshRadius: 16}
	for _, c := range []struct {
		in, want Options
	}{
		{Options{}, Options{Threshold: 0.7, ContextTokens: 192, RefreshRadius: 16}},
		{Options{Threshold: 0.9, ContextTokens: 256, RefreshRadius: -1}, Options{Threshold: 0.9, ContextTokens: 256, RefreshRadius: -1}},
		{Options{RefreshRadius: 4}, Options{Threshold: 0.7, ContextTokens: 192, RefreshRadius: 4}},
	} {
		got, err := c.in.withDefaults(m)
		if err != nil {
			t.Fatal(err)
		}
		if got.Threshold != c.want.Threshold || got.ContextTokens != c.want.ContextTokens || got.RefreshRadius != c.want.RefreshRadius {
			t.Errorf("%+v: τ %v, context %d, refresh radius %d; want %v, %d, %d", c.in, got.Threshold, got.ContextTokens,
				got.RefreshRadius, c.want.Threshold, c.want.ContextTokens, c.want.RefreshRadius)
		}
	}
	if _, err := (Options{RefreshRadius: -2}).withDefaults(m); err == nil {
		t.Error("refresh radius -2 accepted")
	}
}
