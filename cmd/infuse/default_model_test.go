package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/kernels/cpu"
	"github.com/infuse-lsp/infuse/runtime"
)

// TestEvalResumes runs eval over a task file, cuts the output short in the
// middle of a line as an interrupted run would, and runs it again: every
// task ends up answered exactly once.
func TestEvalResumes(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "tasks.jsonl"), filepath.Join(dir, "out.jsonl")
	var tasks bytes.Buffer
	for i := range 5 {
		line, _ := json.Marshal(evalTask{TaskID: fmt.Sprint("t", i), Prompt: fmt.Sprintf("x%d = ", i), Suffix: "\nprint(x)\n"})
		tasks.Write(append(line, '\n'))
	}
	if err := os.WriteFile(in, tasks.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"eval", "--in", in, "--out", out, "--max-tokens", "4"}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	data, _ := os.ReadFile(out)
	lines := strings.SplitAfter(string(data), "\n")
	// Keep two whole lines and half of the third.
	cut := lines[0] + lines[1] + lines[2][:len(lines[2])/2]
	if err := os.WriteFile(out, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("rerun exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "2 done, 3 to go") {
		t.Errorf("rerun progress %q, want it to resume after 2 tasks", stderr.String())
	}
	data, _ = os.ReadFile(out)
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r evalResult
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		seen[r.TaskID]++
	}
	for i := range 5 {
		if id := fmt.Sprint("t", i); seen[id] != 1 {
			t.Errorf("task %s answered %d times", id, seen[id])
		}
	}
}

// fillCompared runs `infuse fill --json --compare` on a file holding src.
func fillCompared(t *testing.T, src string) fillReport {
	t.Helper()
	path := filepath.Join(t.TempDir(), "holes.py")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"fill", "--json", "--compare", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep fillReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestFillThreeHolesInOneLoop fills three holes of one file together and
// one by one: together takes fewer forward passes.
func TestFillThreeHolesInOneLoop(t *testing.T) {
	src := "def area(w, h):\n    return /*?*/\n\n\ndef greet(name):\n    print(\"hello\", /*?*/)\n\n\n" +
		"def total(xs):\n    s = 0\n    for x in xs:\n        s += /*?*/\n    return s\n"
	rep := fillCompared(t, src)
	if len(rep.Texts) != 3 || rep.Separate == nil || len(rep.Separate.Texts) != 3 {
		t.Fatalf("report %+v, want three holes filled both ways", rep)
	}
	if rep.Figures.NFE >= rep.Separate.NFE {
		t.Errorf("one loop took %d forward passes, three requests %d: want fewer", rep.Figures.NFE, rep.Separate.NFE)
	}
	t.Logf("one loop: %d passes; separately: %d; same text in %d of 3 holes", rep.Figures.NFE, rep.Separate.NFE, rep.Separate.Same)
}

// TestFillIndependentHoles fills three holes far apart in a real file:
// none is in another's context, so each gets the canvas a request for it
// alone gets, the three are denoised as one batch, and the text is the
// same as three separate requests' in fewer forward passes.
func TestFillIndependentHoles(t *testing.T) {
	src, err := os.ReadFile("testdata/bench/dbm_dumb.py")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(src), "\n")
	// Three assignments 110 lines apart, each cut after its '=' so that
	// the hole has something to fill.
	var b strings.Builder
	holes := 0
	for i, line := range lines {
		if holes < 3 && i >= 40+110*holes {
			if j := strings.IndexByte(line, '='); j > 0 {
				b.WriteString(line[:j+1] + " /*?*/\n")
				holes++
				continue
			}
		}
		b.WriteString(line)
	}
	rep := fillCompared(t, b.String())
	if len(rep.Texts) != 3 || rep.Separate == nil {
		t.Fatalf("report %+v, want three holes filled both ways", rep)
	}
	if rep.Separate.Same != 3 {
		t.Errorf("same text in %d of 3 independent holes: together %q, separately %q", rep.Separate.Same, rep.Texts, rep.Separate.Texts)
	}
	if strings.Join(rep.Texts, "") == "" {
		t.Errorf("every hole empty: the same text proves nothing")
	}
	if rep.Figures.NFE >= rep.Separate.NFE {
		t.Errorf("one loop took %d forward passes, three requests %d: want fewer", rep.Figures.NFE, rep.Separate.NFE)
	}
	t.Logf("one loop: %d passes; separately: %d; texts %q", rep.Figures.NFE, rep.Separate.NFE, rep.Texts)
}

// TestBenchEditors runs the load benchmark at its smallest: two editors,
// one completion each, batched and one at a time.
func TestBenchEditors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--editors", "2", "--each", "1", "--gap", "0s", "--n", "1", "--json"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var runs []loadRun
	if err := json.Unmarshal(stdout.Bytes(), &runs); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if len(runs) != 2 || runs[0].Batch != 8 || runs[1].Batch != 1 {
		t.Fatalf("runs %+v, want batch 8 then batch 1", runs)
	}
	for _, r := range runs {
		if r.Editors != 2 || r.Completions != 2 || r.P50Millis <= 0 || r.P99Millis < r.P50Millis || r.PerSecond <= 0 {
			t.Errorf("run %+v", r)
		}
	}
	for _, bad := range [][]string{{"bench", "--editors", "0"}, {"bench", "--editors", "2,x"}, {"bench", "--editors", "2", "--each", "0"}} {
		if code := run(context.Background(), bad, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", bad, code)
		}
	}
}

// TestWeightsFlag runs the bench on the default model with its matrices as
// stored and quantized at load: the report names what they were computed
// in, and a type that does not exist is a usage error.
func TestWeightsFlag(t *testing.T) {
	want := map[string]string{"stored": "F32×25", "q8_0": "Q8_0×25", "bf16": "BF16-AMX×25"}
	missing := map[string]string{"q8_0": "int8", "bf16": "AMX"}
	if !cpu.Native(cpu.FormatQ8_0) {
		want["q8_0"] = "" // an error: no int8 kernels
	}
	if !cpu.AMX() {
		want["bf16"] = ""
	}
	for _, w := range []string{"stored", "q8_0", "bf16"} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"bench", "--n", "1", "--json", "--weights", w}, &stdout, &stderr)
		if want[w] == "" {
			if code == 0 || !strings.Contains(stderr.String(), missing[w]) {
				t.Errorf("--weights %s without int8 kernels: exit %d: %s", w, code, stderr.String())
			}
			continue
		}
		if code != 0 {
			t.Fatalf("--weights %s: exit %d: %s", w, code, stderr.String())
		}
		var rep benchReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("%v: %s", err, stdout.String())
		}
		if rep.Weights != want[w] || rep.Completions == 0 {
			t.Errorf("--weights %s: computed as %q in %d completions, want %q", w, rep.Weights, rep.Completions, want[w])
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bench", "--n", "1", "--weights", "q4"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `--weights "q4": want auto, stored, q8_0 or bf16`) {
		t.Errorf("--weights q4: exit %d: %s", code, stderr.String())
	}
}

// TestTooBigForBF16: --weights auto leaves AMX's bf16 for Q8_0 when the
// float matrices at 2 bytes a weight would take more than half the memory;
// quantized and 1-D tensors do not count, and unknown memory never says so.
func TestTooBigForBF16(t *testing.T) {
	info := &runtime.Info{Tensors: []runtime.TensorInfo{
		{Name: "w", DType: "BF16", Shape: []int{1000, 1000}}, // 2 MB at bf16
		{Name: "q", DType: "Q8_0", Shape: []int{4000, 4000}},
		{Name: "n", DType: "F32", Shape: []int{1 << 20}},
	}}
	for _, c := range []struct {
		mem  uint64
		want bool
	}{{3 << 20, true}, {4 << 20, false}, {8 << 20, false}, {0, false}} {
		if got := tooBigForBF16(info, c.mem); got != c.want {
			t.Errorf("memory %d: %v, want %v", c.mem, got, c.want)
		}
	}
}
