package runtime

import (
	"testing"

	"github.com/infuse-lsp/infuse/kernels/cpu"
	"github.com/infuse-lsp/infuse/runtime/gguf"
)

// TestQuantizeQ8 checks the load-time Q8_0 path against the file path: a
// float32 checkpoint quantized in memory must compute what its Q8_0 GGUF
// conversion (runtime/gguf's quantizer, checked against numpy) computes.
func TestQuantizeQ8(t *testing.T) {
	if !cpu.Native(cpu.FormatQ8_0) {
		m, err := Load(ckpt("dream-f32"))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if _, err := m.QuantizeQ8(); err == nil {
			t.Fatal("QuantizeQ8 succeeded on a CPU without int8 kernels")
		}
		t.Skip("no int8 kernels on this CPU")
	}
	for _, name := range []string{"dream-f32", "dream-bf16", "qwen2-tied"} {
		ref, err := Load(ckpt(name))
		if err != nil {
			t.Fatal(err)
		}
		ids := ggufTestIDs(ref.Config)
		exact := fullLogits(t, ref, ids)
		before := ref.Computed()
		n, err := ref.QuantizeQ8()
		if err != nil {
			t.Fatal(err)
		}
		got := fullLogits(t, ref, ids)
		file, err := Load(convertGGUF(t, ckpt(name), gguf.Q8_0))
		if err != nil {
			t.Fatal(err)
		}
		want := fullLogits(t, file, ids)
		t.Logf("%s: %s -> %s (%d converted); relative error to the Q8_0 file %.2g, to float %.2g",
			name, before, ref.Computed(), n, relErr(got, want), relErr(got, exact))
		if c := ref.Computed(); c != file.Computed() {
			t.Errorf("%s: computed as %s, the Q8_0 file as %s", name, c, file.Computed())
		}
		if e := relErr(got, want); !(e < 1e-5) {
			t.Errorf("%s: logits differ from the Q8_0 file's by %g", name, e)
		}
		if e := relErr(got, exact); !(e > 0 && e < 6e-2) {
			t.Errorf("%s: logits relative error to float %g, want in (0, 6e-2)", name, e)
		}
		if n2, _ := ref.QuantizeQ8(); n2 != 0 {
			t.Errorf("%s: a second QuantizeQ8 converted %d matrices", name, n2)
		}
		file.Close()
		ref.Close()
	}
}
