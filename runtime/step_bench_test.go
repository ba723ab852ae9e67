package runtime

import (
	"context"
	"os"
	"testing"

	"github.com/infuse-lsp/infuse/kernels/cpu"

	"github.com/infuse-lsp/infuse/models"
)

// The default model's shapes in a single-line completion: a canvas of 256
// tokens, a first pass over all of them, then cached steps over a window of
// 17 rows whose last 16 are scored. x_full is a step's time over the full
// pass's, measured in the same run.

const (
	stepCanvas = 256
	stepWindow = 17
)

func defaultModel(b *testing.B) *Model { return defaultModelWith(b, benchLoadOptions()) }

func defaultModelWith(b *testing.B, o LoadOptions) *Model {
	b.Helper()
	m, err := LoadFSWith(models.Default(), o)
	if err != nil {
		b.Skipf("no embedded model: %v", err)
	}
	return m
}

func stepTokens(m *Model) []int32 {
	ids := make([]int32, stepCanvas)
	for i := range ids {
		ids[i] = int32(i * 7 % m.Config.Vocab)
	}
	return ids
}

// BenchmarkDefaultFirstPass is the full pass of a completion: Forward over
// 256 tokens and the logits of 16 rows.
func BenchmarkDefaultFirstPass(b *testing.B) {
	m := defaultModel(b)
	defer m.Close()
	ids := stepTokens(m)
	s := m.NewState(stepCanvas)
	lo := stepCanvas / 2
	rows := make([]int, stepWindow-1)
	for i := range rows {
		rows[i] = lo + 1 + i
	}
	out := make([]float32, len(rows)*m.Config.Vocab)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Forward(ctx, ids, 0, stepCanvas); err != nil {
			b.Fatal(err)
		}
		if err := s.Logits(rows, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDefaultStep is one cached step: Forward over a window of 17 rows
// attending over 256, and the logits of 16 of them.
func BenchmarkDefaultStep(b *testing.B) {
	m := defaultModel(b)
	defer m.Close()
	ids := stepTokens(m)
	s := m.NewState(stepCanvas)
	ctx := context.Background()
	if err := s.Forward(ctx, ids, 0, stepCanvas); err != nil {
		b.Fatal(err)
	}
	lo := stepCanvas / 2
	rows := make([]int, stepWindow-1)
	for i := range rows {
		rows[i] = lo + 1 + i
	}
	out := make([]float32, len(rows)*m.Config.Vocab)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Forward(ctx, ids, lo, lo+stepWindow); err != nil {
			b.Fatal(err)
		}
		if err := s.Logits(rows, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDefaultSteps4 is one cached step of four completions at once:
// each State alone, one after another, against the four as one Batch.
// An op is the four steps, logits included.
func BenchmarkDefaultSteps4(b *testing.B) { benchSteps4(b, false) }

// BenchmarkDefaultJoin4 is BenchmarkDefaultSteps4 with the first of the
// four a full pass, as when a request joins three in flight.
func BenchmarkDefaultJoin4(b *testing.B) { benchSteps4(b, true) }

func benchSteps4(b *testing.B, firstFull bool) {
	m := defaultModel(b)
	defer m.Close()
	ids := stepTokens(m)
	ctx := context.Background()
	lo := stepCanvas / 2
	rows := make([]int, stepWindow-1)
	for i := range rows {
		rows[i] = lo + 1 + i
	}
	var passes []Pass
	var items []LogitRows
	for i := range 4 {
		s := m.NewState(stepCanvas)
		if err := s.Forward(ctx, ids, 0, stepCanvas); err != nil {
			b.Fatal(err)
		}
		p := Pass{State: s, Tokens: ids, Lo: lo, Hi: lo + stepWindow}
		if firstFull && i == 0 {
			p.Lo, p.Hi = 0, stepCanvas
		}
		passes = append(passes, p)
		items = append(items, LogitRows{State: s, Rows: rows})
	}
	per := len(rows) * m.Config.Vocab
	out := make([]float32, len(passes)*per)
	b.Run("alone", func(b *testing.B) {
		for b.Loop() {
			for i, p := range passes {
				if err := p.State.Forward(ctx, p.Tokens, p.Lo, p.Hi); err != nil {
					b.Fatal(err)
				}
				if err := p.State.Logits(rows, out[i*per:(i+1)*per]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	rowsIn := 0
	for _, p := range passes {
		rowsIn += p.Hi - p.Lo
	}
	batch := m.NewBatch(rowsIn)
	b.Run("batched", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := batch.Forward(ctx, passes); err != nil {
				b.Fatal(err)
			}
			if err := batch.Logits(items, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchLoadOptions is how the step benchmarks load the default model:
// as infuse runs it by default on this machine (--weights auto), or as
// $INFUSE_BENCH_WEIGHTS says (stored, q8_0 or bf16).
func benchLoadOptions() LoadOptions {
	switch os.Getenv("INFUSE_BENCH_WEIGHTS") {
	case "stored":
		return LoadOptions{}
	case "q8_0":
		return LoadOptions{Q8: true}
	case "bf16":
		return LoadOptions{AMX: true}
	}
	amx := cpu.AMX()
	return LoadOptions{AMX: amx, Q8: !amx && cpu.Native(cpu.FormatQ8_0)}
}
