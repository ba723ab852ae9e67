package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.gguf")
	var stdout, stderr bytes.Buffer
	// DIR before the flags, as the usage line writes it.
	if code := run(context.Background(), []string{"convert", testModel, "--to", "gguf", "--type", "q8_0", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if want := "wrote " + out + ": LLaDA, 21 tensors (F32×5 Q8_0×16)"; !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("stdout %q, want it to start with %q", stdout.String(), want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// The file loads, and model info describes it like the directory.
	stdout.Reset()
	if code := run(context.Background(), []string{"model", "info", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("model info: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{`LLaDA (model_type "llada")`, "320 rows (300 token ids)", "F32×5 Q8_0×16", "mask          296", "not shifted"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("model info lacks %q:\n%s", want, stdout.String())
		}
	}
	m, err := loadModel(out, "stored")
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

func TestConvertCommandErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"convert"}, 2, "no model directory given"},
		{[]string{"convert", testModel, "--to", "safetensors"}, 2, `--to "safetensors" is not supported`},
		{[]string{"convert", testModel, "--type", "q2_k"}, 2, `tensor type "q2_k" is not supported`},
		{[]string{"convert", testModel, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"convert", filepath.Join(dir, "none"), "--out", filepath.Join(dir, "x.gguf")}, 1, "no such file or directory"},
		{[]string{"convert", "../../runtime/testdata", "--out", filepath.Join(dir, "y.gguf")}, 1, "no config.json"},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed conversions left files: %v", entries)
	}
}

func TestModelInfoGGUFErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.gguf")
	os.WriteFile(path, []byte("GGUF\x03\x00\x00\x00"), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"model", "info", path}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "truncated") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
