package infill

import (
	"context"
	"os"
	"testing"

	"github.com/infuse-lsp/infuse/models"
	"github.com/infuse-lsp/infuse/runtime"
	"github.com/infuse-lsp/infuse/runtime/tokenizer"
)

// defaultEngine loads the embedded default model.
func defaultEngine(tb testing.TB, opts Options) *Engine {
	tb.Helper()
	m, err := runtime.LoadFS(models.Default())
	if err != nil {
		tb.Skipf("no embedded model: %v", err)
	}
	tok, err := tokenizer.LoadFS(models.Default())
	if err != nil {
		tb.Fatal(err)
	}
	e, err := NewEngine(m, tok, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func benchRequest(tb testing.TB) Request {
	src, err := os.ReadFile("../cmd/infuse/testdata/bench/dbm_dumb.py")
	if err != nil {
		tb.Fatal(err)
	}
	cut := len(src) / 2
	for src[cut] != '\n' {
		cut++
	}
	cut += 9 // inside the next line
	return Request{Prefix: string(src[:cut]), Suffix: string(src[cut:]), Mode: SingleLine}
}

// BenchmarkComplete times single-line completions with the context cache
// and, as the baseline of the same run, with exact decoding.
func BenchmarkComplete(b *testing.B) {
	for _, exact := range []bool{false, true} {
		name := "cached"
		if exact {
			name = "exact"
		}
		b.Run(name, func(b *testing.B) {
			e := defaultEngine(b, Options{Exact: exact})
			req := benchRequest(b)
			var nfe int
			var steps, first float64
			for b.Loop() {
				res, err := e.Complete(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				nfe += res.Figures.NFE
				first += res.Figures.FirstPass.Seconds()
				steps += res.Figures.Steps.Seconds()
			}
			b.ReportMetric(float64(nfe)/float64(b.N), "nfe/op")
			b.ReportMetric(1000*steps/float64(nfe-b.N), "ms/step")
			b.ReportMetric(1000*first/float64(b.N), "ms/first-pass")
		})
	}
}
