package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	typ := fs.String("type", "f16", "storage `type` of the matrices: f32, f16, bf16 or q8_0 (norms and biases stay f32)")
	out := fs.String("out", "", "output `FILE` (default: DIR-TYPE.gguf beside DIR)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: infuse convert DIR --to gguf [--type f32|f16|bf16|q8_0] [--out FILE]")
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
	if err := writeGGUF(dir, path, t); err != nil {
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
// that a failed conversion leaves no partial file behind.
func writeGGUF(dir, path string, t gguf.Type) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if err := runtime.ConvertToGGUF(dir, f, t); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { // CreateTemp made it 0600
		return err
	}
	return os.Rename(f.Name(), path)
}
