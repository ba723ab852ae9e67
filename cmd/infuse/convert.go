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
// that a failed conversion leaves no partial file behind.
func writeGGUF(dir, path string, t gguf.Type, stderr io.Writer) error {
	tmp, err := tempGGUF(path, func(w io.Writer) error { return runtime.ConvertToGGUF(dir, w, t) })
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// ConvertToGGUF writes neither the tokenizer nor a general.file_type
	// for the quantised types, so a second pass copies the tensors' bytes
	// into a file that adds them. (Once runtime's converter writes both,
	// this pass can go.)
	final, err := tempGGUF(path, func(w io.Writer) error { return addTokenizer(tmp, dir, t, w, stderr) })
	if err != nil {
		return err
	}
	defer os.Remove(final) // fails harmlessly after the rename
	return os.Rename(final, path)
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

// addTokenizer copies the GGUF file src to w with the tokenizer of the
// model directory dir added to its metadata, as llama.cpp's converter
// writes it, and general.file_type set for t. A directory without
// tokenizer files, or with one GGUF cannot describe, gives a file without
// a tokenizer and a warning.
func addTokenizer(src, dir string, t gguf.Type, w io.Writer, stderr io.Writer) error {
	f, err := gguf.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, err := runtime.GGUFConfig(f)
	if err != nil {
		return err
	}
	md := make([]gguf.KV, 0, len(f.Metadata)+6)
	for _, kv := range f.Metadata {
		if kv.Key == "general.file_type" {
			kv.Value = fileType(t)
		}
		md = append(md, kv)
	}
	tok, err := runtime.GGUFTokenizerMetadata(dir, cfg.Vocab)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stderr, "warning: %s has no tokenizer files; the GGUF file has no tokenizer\n", dir)
	case err != nil:
		fmt.Fprintf(stderr, "warning: the GGUF file has no tokenizer: %v\n", err)
	default:
		md = append(md, tok...)
	}
	tensors := make([]gguf.WriteTensor, len(f.Tensors))
	for i, tn := range f.Tensors {
		tensors[i] = gguf.WriteTensor{Name: tn.Name, Shape: tn.Shape(), Type: tn.Type, Encoded: tn.Bytes()}
	}
	return gguf.Write(w, md, tensors)
}

// fileType is llama.cpp's general.file_type (llama_ftype) for a file whose
// matrices are stored as t; for the K types the "small" mix (_S), as no
// matrix is given a larger type on purpose.
func fileType(t gguf.Type) uint32 {
	switch t {
	case gguf.F16:
		return 1 // MOSTLY_F16
	case gguf.Q4_0:
		return 2 // MOSTLY_Q4_0
	case gguf.Q8_0:
		return 7 // MOSTLY_Q8_0
	case gguf.Q4_K:
		return 14 // MOSTLY_Q4_K_S
	case gguf.Q5_K:
		return 16 // MOSTLY_Q5_K_S
	case gguf.Q6_K:
		return 18 // MOSTLY_Q6_K
	case gguf.BF16:
		return 32 // MOSTLY_BF16
	}
	return 0 // ALL_F32
}
