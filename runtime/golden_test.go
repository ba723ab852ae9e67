package runtime

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/infuse-lsp/infuse/runtime/npy"
)

// The checkpoints and golden logits under testdata are made by
// testdata/gen_checkpoints.py, whose float64 NumPy forward is written
// independently of this package.

// goldenTol bounds ||go−ref||/||ref||. The reference computes in float64 on
// the same (rounded) weights, so the difference is float32 rounding in the
// Go forward: about 1e-7 per operation, growing with depth.
const goldenTol = 1e-5

type goldenCases struct {
	IDs  []int32 `json:"ids"`
	Dual struct {
		Case         string  `json:"case"`
		Lo           int     `json:"lo"`
		Hi           int     `json:"hi"`
		IDs          []int32 `json:"ids"`
		StaleRelDiff float64 `json:"stale_rel_diff"`
	} `json:"dual"`
	Cases map[string]struct {
		Family    string `json:"family"`
		DType     string `json:"dtype"`
		Tied      bool   `json:"tied"`
		VocabRows int    `json:"vocab_rows"`
	} `json:"cases"`
}

func readCases(t testing.TB) goldenCases {
	t.Helper()
	data, err := os.ReadFile("testdata/golden/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCases
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func readNPY(t testing.TB, path string) ([]float32, []int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, shape, err := npy.Read(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return data, shape
}

func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}

func ckpt(name string) string { return filepath.Join("testdata", "ckpt", name) }

// fullLogits runs a full pass over ids and returns every row.
func fullLogits(t testing.TB, m *Model, ids []int32) []float32 {
	t.Helper()
	s := m.NewState(len(ids))
	if err := s.Forward(context.Background(), ids, 0, len(ids)); err != nil {
		t.Fatal(err)
	}
	return logitsRows(t, s, 0, len(ids), m.Config.Vocab)
}

func logitsRows(t testing.TB, s *State, lo, hi, vocab int) []float32 {
	t.Helper()
	rows := make([]int, 0, hi-lo)
	for r := lo; r < hi; r++ {
		rows = append(rows, r)
	}
	out := make([]float32, len(rows)*vocab)
	if err := s.Logits(rows, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGolden(t *testing.T) {
	cases := readCases(t)
	if len(cases.Cases) != 5 {
		t.Fatalf("cases.json has %d cases, want 5", len(cases.Cases))
	}
	for name, c := range cases.Cases {
		t.Run(name, func(t *testing.T) {
			m, err := Load(ckpt(name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Config.Vocab != c.VocabRows || m.Config.TiedHead != c.Tied {
				t.Errorf("config: vocab %d tied %v, want %d %v", m.Config.Vocab, m.Config.TiedHead, c.VocabRows, c.Tied)
			}
			if got := m.Info().DTypes[c.DType]; got != len(m.Info().Tensors) {
				t.Errorf("%d of %d tensors stored as %s", got, len(m.Info().Tensors), c.DType)
			}
			want, shape := readNPY(t, filepath.Join("testdata", "golden", name+".npy"))
			if len(shape) != 2 || shape[0] != len(cases.IDs) || shape[1] != m.Config.Vocab {
				t.Fatalf("golden shape %v, want [%d %d]", shape, len(cases.IDs), m.Config.Vocab)
			}
			got := fullLogits(t, m, cases.IDs)
			e := relErr(got, want)
			t.Logf("relative error %.2e", e)
			if e > goldenTol {
				t.Errorf("relative error %.3g > %g", e, goldenTol)
			}
			// The same model read through an fs.FS must give the same rows.
			mfs, err := LoadFS(os.DirFS(ckpt(name)))
			if err != nil {
				t.Fatal(err)
			}
			defer mfs.Close()
			if e := relErr(fullLogits(t, mfs, cases.IDs), got); e != 0 {
				t.Errorf("LoadFS differs from Load by %.3g", e)
			}
		})
	}
}

// TestDualCache checks the window semantics of Forward against the
// reference: positions outside the window keep the K/V of the earlier pass.
func TestDualCache(t *testing.T) {
	cases := readCases(t)
	d := cases.Dual
	m, err := Load(ckpt(d.Case))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	vocab := m.Config.Vocab
	ctx := context.Background()
	full := fullLogits(t, m, cases.IDs)

	s := m.NewState(len(cases.IDs) + 3) // capacity beyond n must not matter
	if err := s.Forward(ctx, cases.IDs, 0, len(cases.IDs)); err != nil {
		t.Fatal(err)
	}
	// Unchanged tokens: the window pass reproduces the full pass.
	if err := s.Forward(ctx, cases.IDs, d.Lo, d.Hi); err != nil {
		t.Fatal(err)
	}
	if e := relErr(logitsRows(t, s, d.Lo, d.Hi, vocab), full[d.Lo*vocab:d.Hi*vocab]); e > 1e-6 {
		t.Errorf("window pass over unchanged tokens differs from the full pass by %.3g", e)
	}
	// Changed tokens in the window: stale K/V outside, as in the reference.
	if err := s.Forward(ctx, d.IDs, d.Lo, d.Hi); err != nil {
		t.Fatal(err)
	}
	got := logitsRows(t, s, d.Lo, d.Hi, vocab)
	want, _ := readNPY(t, filepath.Join("testdata", "golden", d.Case+".dual.npy"))
	e := relErr(got, want)
	t.Logf("dual-cache rows: relative error %.2e (an exact pass differs by %.2e)", e, d.StaleRelDiff)
	if e > goldenTol {
		t.Errorf("dual-cache window rows: relative error %.3g > %g", e, goldenTol)
	}
	if d.StaleRelDiff < 100*goldenTol {
		t.Errorf("golden dual-cache case is too close to an exact pass (%.3g) to test anything", d.StaleRelDiff)
	}
	// A full pass afterwards is exact again.
	if err := s.Forward(ctx, d.IDs, 0, len(d.IDs)); err != nil {
		t.Fatal(err)
	}
	exact := fullLogits(t, m, d.IDs)
	if e := relErr(logitsRows(t, s, 0, len(d.IDs), vocab), exact); e > 1e-6 {
		t.Errorf("full pass after window passes differs from a fresh one by %.3g", e)
	}
}

// TestLogitsRowsSubset checks that Logits computes exactly the rows asked,
// in the order asked, repeats included.
func TestLogitsRowsSubset(t *testing.T) {
	cases := readCases(t)
	m, err := Load(ckpt("llada-f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v := m.Config.Vocab
	full := fullLogits(t, m, cases.IDs)
	s := m.NewState(len(cases.IDs))
	if err := s.Forward(context.Background(), cases.IDs, 0, len(cases.IDs)); err != nil {
		t.Fatal(err)
	}
	rows := []int{7, 2, 7, 14}
	out := make([]float32, len(rows)*v)
	if err := s.Logits(rows, out); err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if e := relErr(out[i*v:(i+1)*v], full[r*v:(r+1)*v]); e > 1e-6 {
			t.Errorf("row %d (position %d) differs by %.3g", i, r, e)
		}
	}
}
