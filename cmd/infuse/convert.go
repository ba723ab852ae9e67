package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/infuse-lsp/infuse/runtime"
	"github.com/infuse-lsp/infuse/runtime/gguf"
)

func init() {
	register("convert", "convert a Hugging Face model directory to GGUF (llama.cpp's format)", runConvert)
}

func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", stderr)
	to := fs.String("to", "gguf", "output `format` (only gguf)")
	typ := fs.String("type", "f16", "storage `type` of the matrices: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k or q6_k (norms and biases stay f32)")
	out := fs.String("out", "", "output `FILE` (default: DIR-TYPE.gguf beside DIR)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: infuse convert DIR --to gguf [--type f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k] [--out FILE]")
		fs.PrintDefaults()
	}
	// Flags may come before or after DIR.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	if fs.NArg() == 0 {
		return usageErr("no model directory given")
	}
	dir := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *to != "gguf" {
		return usageErr("--to %q is not supported (want gguf)", *to)
	}
	t, err := gguf.ParseType(*typ)
	if err != nil {
		return usageErr("--type: %v", err)
	}
	path := *out
	if path == "" {
		path = filepath.Clean(dir) + "-" + strings.ToLower(t.String()) + runtime.GGUFExt
	}
	if err := writeGGUF(dir, path, t, stderr); err != nil {
		return err
	}
	info, err := runtime.InspectGGUF(path)
	if err != nil {
		return fmt.Errorf("checking the written file: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %s, %d tensors (%s), %s\n", path, info.Config.Family, len(info.Tensors),
		info.DTypeSummary(), humanBytes(info.Bytes))
	return nil
}

// writeGGUF converts into a temporary file beside path and renames it, so
// that a failed conversion leaves no partial file behind. A model whose
// tokenizer the file could not carry gets a warning.
func writeGGUF(dir, path string, t gguf.Type, stderr io.Writer) error {
	tmp, err := tempGGUF(path, func(w io.Writer) error { return runtime.ConvertToGGUF(dir, w, t) })
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // fails harmlessly after the rename
	f, err := gguf.Open(tmp)
	if err != nil {
		return fmt.Errorf("checking the written file: %w", err)
	}
	if !runtime.HasGGUFTokenizer(f) {
		cfg, err := runtime.GGUFConfig(f)
		if err == nil {
			_, err = runtime.GGUFTokenizerMetadata(dir, cfg.Vocab)
		}
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "warning: %s has no tokenizer files; the GGUF file has no tokenizer\n", dir)
		} else {
			fmt.Fprintf(stderr, "warning: the GGUF file has no tokenizer: %v\n", err)
		}
	}
	f.Close()
	return os.Rename(tmp, path)
}

// tempGGUF writes a temporary file beside path and returns its name.
func tempGGUF(path string, write func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { // CreateTemp made it 0600
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
