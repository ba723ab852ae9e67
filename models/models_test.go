package models_test

import (
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/models"
	"github.com/infuse-lsp/infuse/runtime"
	"github.com/infuse-lsp/infuse/runtime/npy"
	"github.com/infuse-lsp/infuse/runtime/tokenizer"
)

// TestRoundTrip runs the embedded model in Go on the ids train/export.py
// recorded and compares every output row with what PyTorch computed from
// the same exported weights (testdata/ref_logits.npy).
func TestRoundTrip(t *testing.T) {
	raw, err := os.ReadFile("testdata/ref_ids.txt")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, f := range strings.Split(strings.TrimSpace(string(raw)), ",") {
		id, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, int32(id))
	}
	f, err := os.Open("testdata/ref_logits.npy")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, shape, err := npy.Read(f)
	if err != nil {
		t.Fatal(err)
	}

	m, err := runtime.LoadFS(models.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(shape) != 2 || shape[0] != len(ids) || shape[1] != m.Config.Vocab {
		t.Fatalf("reference shape %v, want [%d %d]", shape, len(ids), m.Config.Vocab)
	}
	s := m.NewState(len(ids))
	if err := s.Forward(context.Background(), ids, 0, len(ids)); err != nil {
		t.Fatal(err)
	}
	rows := make([]int, len(ids))
	for i := range rows {
		rows[i] = i
	}
	got := make([]float32, len(ids)*m.Config.Vocab)
	if err := s.Logits(rows, got); err != nil {
		t.Fatal(err)
	}
	var num, den float64
	for i := range want {
		d := float64(got[i] - want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if e := math.Sqrt(num / den); e > 1e-4 || math.IsNaN(e) {
		t.Errorf("relative error %g between Go and PyTorch logits, want < 1e-4", e)
	} else {
		t.Logf("relative error %.2g", e)
	}
}

// TestTokenizerMatchesModel checks that the embedded tokenizer and config
// agree on the special tokens the engine relies on.
func TestTokenizerMatchesModel(t *testing.T) {
	m, err := runtime.LoadFS(models.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.LoadFS(models.Default())
	if err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]int32{"<|mask|>": m.Config.Mask, "<|endoftext|>": m.Config.EOS, "<|beginoftext|>": m.Config.BOS} {
		if got, ok := tok.ID(name); !ok || got != id {
			t.Errorf("tokenizer has %s = %d (%v), config says %d", name, got, ok, id)
		}
	}
	if tok.VocabSize() != m.Config.Vocab {
		t.Errorf("tokenizer vocabulary %d, model rows %d", tok.VocabSize(), m.Config.Vocab)
	}
}
