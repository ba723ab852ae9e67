package infill

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/infuse-lsp/infuse/runtime"
)

// TestTracesMatchReference runs the canvases of testdata/traces.json
// (written by gen_traces.py from an independent numpy reference) through
// the denoiser on the Go runtime at temperature 0 with no cache, and
// requires the same commit at every step.
func TestTracesMatchReference(t *testing.T) {
	data, err := os.ReadFile("testdata/traces.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Mask, EOS int32
		Vocab     int
		Cases     []struct {
			Name, Checkpoint, Sampler string
			Steps                     int
			Threshold                 float64
			Canvas                    []int32
			Spans                     [][2]int
			Trace                     []commit
			Final                     []int32
		}
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	models := map[string]*runtime.Model{}
	for _, gc := range golden.Cases {
		t.Run(gc.Name, func(t *testing.T) {
			m := models[gc.Checkpoint]
			if m == nil {
				m, err = runtime.Load(filepath.Join("..", "runtime", "testdata", "ckpt", gc.Checkpoint))
				if err != nil {
					t.Fatal(err)
				}
				models[gc.Checkpoint] = m
			}
			sp := &special{vocab: m.Config.Vocab, choosable: golden.Vocab, shift: m.Config.ShiftLogits, expand: -1,
				mask: golden.Mask, stops: []int32{golden.EOS}}
			opts, err := Options{Sampler: gc.Sampler, Steps: gc.Steps, Threshold: gc.Threshold, Exact: true, StopsAnywhere: true}.withDefaults(runtime.Config{})
			if err != nil {
				t.Fatal(err)
			}
			c := &canvas{tokens: append([]int32(nil), gc.Canvas...)}
			for _, s := range gc.Spans {
				c.spans = append(c.spans, span{start: s[0], end: s[1]})
			}
			d := newDenoiser(m.NewState(len(c.tokens)), sp, opts)
			var got []commit
			d.trace = func(cm commit) { got = append(got, cm) }
			var fig Figures
			if err := d.run(context.Background(), c, &fig); err != nil {
				t.Fatal(err)
			}
			for i := range max(len(got), len(gc.Trace)) {
				if i >= len(got) || i >= len(gc.Trace) || got[i] != gc.Trace[i] {
					t.Fatalf("commit %d differs:\n go  %v\n ref %v", i, got, gc.Trace)
				}
			}
			if !equalIDs(c.tokens, gc.Final) {
				t.Errorf("final canvas %v, want %v", c.tokens, gc.Final)
			}
		})
	}
}
