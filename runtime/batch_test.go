package runtime

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// batchCase is one sequence of a batch test: its tokens, the window its
// step recomputes, and the rows scored.
type batchCase struct {
	ids    []int32
	lo, hi int
	rows   []int
}

func batchCases(r *rand.Rand, vocab int) []batchCase {
	var cs []batchCase
	for _, n := range []int{9, 23, 14, 40} {
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(r.IntN(vocab))
		}
		lo := r.IntN(n - 3)
		hi := lo + 1 + r.IntN(n-lo-1)
		var rows []int
		for p := lo; p < hi; p += 2 {
			rows = append(rows, p)
		}
		cs = append(cs, batchCase{ids: ids, lo: lo, hi: hi, rows: rows})
	}
	return cs
}

// alone runs c's full pass and then its window step on a State of its own
// and returns the window step's logits; the State is left after the full
// pass and the step.
func alone(t *testing.T, m *Model, c batchCase) []float32 {
	t.Helper()
	s := m.NewState(len(c.ids))
	ctx := context.Background()
	if err := s.Forward(ctx, c.ids, 0, len(c.ids)); err != nil {
		t.Fatal(err)
	}
	step := slices.Clone(c.ids)
	for p := c.lo; p < c.hi; p++ {
		step[p] = (step[p] + 1) % int32(m.Config.Vocab)
	}
	if err := s.Forward(ctx, step, c.lo, c.hi); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(c.rows)*m.Config.Vocab)
	if err := s.Logits(c.rows, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBatchSameAsAlone runs several sequences' full passes and window
// steps as batches, with batch sizes that fit all rows, force several
// groups, and leave a pass too long for the batch, and checks that every
// logit is what the sequence gets alone. Not bit for bit: the
// micro-kernels' summation order depends on the rows per tile, which
// depends on the rows of the whole product.
func TestBatchSameAsAlone(t *testing.T) {
	for _, layout := range []struct {
		name string
		cfg  map[string]any
	}{
		{"dream", dreamShaped(32, 64, 2, 4, 2, 50)},
		{"dream-mha", dreamShaped(48, 96, 3, 3, 3, 61)},
	} {
		m := randomModel(t, layout.cfg, 7)
		r := rand.New(rand.NewPCG(3, 4))
		cs := batchCases(r, m.Config.Vocab)
		want := make([][]float32, len(cs))
		for i, c := range cs {
			want[i] = alone(t, m, c)
		}
		for _, rows := range []int{200, 41, 24, 1} {
			b := m.NewBatch(rows)
			states := make([]*State, len(cs))
			passes := make([]Pass, len(cs))
			for i, c := range cs {
				states[i] = m.NewState(len(c.ids))
				passes[i] = Pass{State: states[i], Tokens: c.ids, Lo: 0, Hi: len(c.ids)}
			}
			ctx := context.Background()
			if err := b.Forward(ctx, passes); err != nil {
				t.Fatal(err)
			}
			var items []LogitRows
			total := 0
			for i, c := range cs {
				step := slices.Clone(c.ids)
				for p := c.lo; p < c.hi; p++ {
					step[p] = (step[p] + 1) % int32(m.Config.Vocab)
				}
				passes[i] = Pass{State: states[i], Tokens: step, Lo: c.lo, Hi: c.hi}
				items = append(items, LogitRows{State: states[i], Rows: c.rows})
				total += len(c.rows)
			}
			if err := b.Forward(ctx, passes); err != nil {
				t.Fatal(err)
			}
			out := make([]float32, total*m.Config.Vocab)
			if err := b.Logits(items, out); err != nil {
				t.Fatal(err)
			}
			off := 0
			for i := range cs {
				got := out[off : off+len(want[i])]
				off += len(want[i])
				if e := relErr(got, want[i]); e > 1e-5 {
					t.Errorf("%s, batch of %d rows: sequence %d differs from alone by %g", layout.name, rows, i, e)
				}
				// The State's own Logits reads what the batch left.
				own := make([]float32, len(want[i]))
				if err := states[i].Logits(cs[i].rows, own); err != nil {
					t.Fatal(err)
				}
				if e := relErr(own, want[i]); e > 1e-5 {
					t.Errorf("%s, batch of %d rows: sequence %d's State.Logits after the batch differs by %g", layout.name, rows, i, e)
				}
			}
		}
		m.Close()
	}
}

func TestBatchErrors(t *testing.T) {
	m := randomModel(t, dreamShaped(32, 64, 2, 4, 2, 50), 8)
	defer m.Close()
	other := randomModel(t, dreamShaped(32, 64, 2, 4, 2, 50), 9)
	defer other.Close()
	b := m.NewBatch(16)
	s, s2 := m.NewState(8), m.NewState(8)
	ids := []int32{1, 2, 3, 4}
	ctx := context.Background()
	check := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", what, err, want)
		}
	}
	check("twice", b.Forward(ctx, []Pass{{s, ids, 0, 4}, {s, ids, 0, 4}}), "pass 1: its state is in the batch twice")
	check("foreign", b.Forward(ctx, []Pass{{s, ids, 0, 4}, {other.NewState(8), ids, 0, 4}}), "pass 1: not a state of the batch's model")
	check("nil", b.Forward(ctx, []Pass{{nil, ids, 0, 4}}), "pass 0: not a state")
	check("window", b.Forward(ctx, []Pass{{s, ids, 0, 4}, {s2, ids, 1, 4}}), "pass 1: forward: position 0 is outside the window")
	check("logits first", b.Logits([]LogitRows{{s, []int{0}}}, make([]float32, 50)), "no completed Forward")
	if err := b.Forward(ctx, []Pass{{s, ids, 0, 4}, {s2, ids[:3], 0, 3}}); err != nil {
		t.Fatal(err)
	}
	check("row", b.Logits([]LogitRows{{s, []int{0}}, {s2, []int{3}}}, make([]float32, 100)), "position 3 is outside the window [0,3)")
	check("out", b.Logits([]LogitRows{{s, []int{0}}, {s2, []int{2}}}, make([]float32, 99)), "out has 99 values, want 2 rows × 50")
	check("foreign logits", b.Logits([]LogitRows{{other.NewState(4), []int{0}}}, make([]float32, 50)), "item 0: not a state")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	check("cancel", b.Forward(cancelled, []Pass{{s, ids, 0, 4}}), "context canceled")
	check("after cancel", b.Logits([]LogitRows{{s, []int{0}}}, make([]float32, 50)), "no completed Forward")
}
