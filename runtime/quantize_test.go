package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/kernels/cpu"
	"github.com/infuse-lsp/infuse/models"
	"github.com/infuse-lsp/infuse/runtime/gguf"
)

// TestLoadQ8 checks the load-time Q8_0 path against the file path: a float
// checkpoint loaded with LoadOptions.Q8 must compute what its Q8_0 GGUF
// conversion (runtime/gguf's quantizer, checked against numpy) computes.
func TestLoadQ8(t *testing.T) {
	q8 := LoadOptions{Q8: true}
	if !cpu.Native(cpu.FormatQ8_0) {
		if _, err := LoadWith(ckpt("dream-f32"), q8); !errors.Is(err, ErrNoInt8) {
			t.Fatalf("LoadOptions.Q8 on a CPU without int8 kernels: %v", err)
		}
		t.Skip("no int8 kernels on this CPU")
	}
	for _, name := range loadTestCheckpoints {
		ref, m, ids, exact, got := loadBoth(t, name, q8)
		file, err := Load(convertGGUF(t, ckpt(name), gguf.Q8_0))
		if err != nil {
			t.Fatal(err)
		}
		want := fullLogits(t, file, ids)
		t.Logf("%s: %s -> %s; relative error to the Q8_0 file %.2g, to the float model %.2g",
			name, ref.Computed(), m.Computed(), relErr(got, want), relErr(got, exact))
		if c := m.Computed(); c != file.Computed() {
			t.Errorf("%s: computed as %s, the Q8_0 file as %s", name, c, file.Computed())
		}
		if e := relErr(got, want); !(e < 1e-5) {
			t.Errorf("%s: logits differ from the Q8_0 file's by %g", name, e)
		}
		if e := relErr(got, exact); !(e > 0 && e < 6e-2) {
			t.Errorf("%s: logits relative error to the float model %g, want in (0, 6e-2)", name, e)
		}
		// A file already in Q8_0 loads the same with the option.
		again, err := LoadWith(convertGGUF(t, ckpt(name), gguf.Q8_0), q8)
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr(fullLogits(t, again, ids), want); e != 0 {
			t.Errorf("%s: the Q8_0 file loaded with Q8 differs by %g", name, e)
		}
		for _, mm := range []*Model{ref, m, file, again} {
			mm.Close()
		}
	}
}

// loadTestCheckpoints are the test checkpoints the load options are
// checked on: both families, float32 and bf16 files, a tied head.
var loadTestCheckpoints = []string{"dream-f32", "dream-bf16", "qwen2-tied", "llada-f32"}

// loadBoth loads test checkpoint name as stored and with o, and returns
// both models, the ids of a full pass and its logits from each.
func loadBoth(t *testing.T, name string, o LoadOptions) (ref, m *Model, ids []int32, exact, got []float32) {
	t.Helper()
	ref, err := Load(ckpt(name))
	if err != nil {
		t.Fatal(err)
	}
	ids = ggufTestIDs(ref.Config)
	exact = fullLogits(t, ref, ids)
	if m, err = LoadWith(ckpt(name), o); err != nil {
		t.Fatal(err)
	}
	return ref, m, ids, exact, fullLogits(t, m, ids)
}

// TestLoadAMX loads the test checkpoints with their matrices as bfloat16
// AMX tiles: the logits stay within bfloat16's rounding of the float
// model's (the kernel itself is checked against float64 in kernels/cpu).
func TestLoadAMX(t *testing.T) {
	amx := LoadOptions{AMX: true}
	if _, err := LoadWith(ckpt("dream-f32"), LoadOptions{AMX: true, Q8: true}); err == nil {
		t.Error("LoadOptions with both Q8 and AMX loaded")
	}
	if !cpu.AMX() {
		if _, err := LoadWith(ckpt("dream-f32"), amx); !errors.Is(err, ErrNoAMX) {
			t.Fatalf("LoadOptions.AMX on a machine without AMX: %v", err)
		}
		t.Skip("no AMX on this machine")
	}
	for _, name := range loadTestCheckpoints {
		ref, m, _, exact, got := loadBoth(t, name, amx)
		e := relErr(got, exact)
		t.Logf("%s: %s -> %s; relative error to the float model %.2g", name, ref.Computed(), m.Computed(), e)
		if !strings.HasPrefix(m.Computed(), "BF16-AMX×") || strings.Contains(m.Computed(), " ") {
			t.Errorf("%s: computed as %s, want every matrix BF16-AMX", name, m.Computed())
		}
		if !(e > 0 && e < 2e-2) {
			t.Errorf("%s: logits relative error to the float model %g, want in (0, 2e-2)", name, e)
		}
		ref.Close()
		m.Close()
	}
	// The default model's heads (64 values) attend on the tiles as well:
	// a sequence of 200 tokens, logits of every position.
	ref, err := LoadFS(models.Default())
	if err != nil {
		t.Skipf("no embedded model: %v", err)
	}
	m, err := LoadFSWith(models.Default(), amx)
	if err != nil {
		t.Fatal(err)
	}
	if s := m.NewState(8); !s.kv[0].AMX() {
		t.Error("the default model's States do not attend on AMX")
	}
	ids := make([]int32, 200)
	for i := range ids {
		ids[i] = int32((i*131 + 7) % ref.Config.TokenVocab)
	}
	e := relErr(fullLogits(t, m, ids), fullLogits(t, ref, ids))
	t.Logf("default model: relative error to float32 %.2g", e)
	if !(e > 0 && e < 2e-2) {
		t.Errorf("default model: logits relative error to float32 %g, want in (0, 2e-2)", e)
	}
}
