package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/runtime/npy"
)

const testModel = "../../runtime/testdata/ckpt/llada-f32"

func TestLogitsCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "l.npy")
	var stdout, stderr bytes.Buffer
	ids := "295,17,254,3,99,296,296,296,296,120,0,299,42,7,297" // runtime/testdata/golden/cases.json
	if code := run(context.Background(), []string{"logits", "--model", testModel, "--ids", ids, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	got := readNPYFile(t, out)
	want := readNPYFile(t, "../../runtime/testdata/golden/llada-f32.npy")
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	var num, den float64
	for i := range want {
		d := float64(got[i] - want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if e := math.Sqrt(num / den); e > 1e-5 {
		t.Errorf("relative error %g against the golden logits", e)
	}
}

func readNPYFile(t *testing.T, path string) []float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, _, err := npy.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLogitsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"logits", "--model", testModel, "--out", "x.npy"}, 2, "--ids is required"},
		{[]string{"logits", "--model", testModel, "--ids", "1,x", "--out", "x.npy"}, 2, `"x" is not a token id`},
		{[]string{"logits", "--model", testModel, "--ids", "1", "--out", "x.npy", "--device", "cuda"}, 2, "only cpu"},
		{[]string{"logits", "--model", testModel, "--ids", "1,999", "--out", filepath.Join(t.TempDir(), "x.npy")}, 1, "token 999 at position 1 is outside the vocabulary of 320"},
		{[]string{"model", "info", "/nonexistent/dir"}, 1, "no such file or directory"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}

func TestModelInfo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"model", "info", testModel}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		"family        LLaDA", "vocab         320 rows (300 token ids)", "not shifted",
		"parameters    115008", "F32×21", "mask          296", "expand        none",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}
