package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/infuse-lsp/infuse/infill"
	"github.com/infuse-lsp/infuse/models"
	"github.com/infuse-lsp/infuse/runtime"
	"github.com/infuse-lsp/infuse/runtime/tokenizer"
)

// engineOptions say which model to load, where, and how to denoise with it.
type engineOptions struct {
	Model  string // a Hugging Face directory; "" is the embedded default model
	Device string // cpu, cuda or auto
	Infill infill.Options
}

// addEngineFlags binds the flags every model-running command shares.
func addEngineFlags(fs *flag.FlagSet) *engineOptions {
	o := &engineOptions{}
	fs.StringVar(&o.Model, "model", "", "model directory (Hugging Face layout); default: the embedded model")
	fs.StringVar(&o.Device, "device", "auto", "cpu, cuda or auto")
	fs.StringVar(&o.Infill.Sampler, "sampler", "", "threshold (default), entropy, maskgit_plus, topk_margin, origin, llada")
	fs.Float64Var(&o.Infill.Threshold, "threshold", 0, "threshold sampler's confidence τ (default 0.9)")
	fs.IntVar(&o.Infill.Steps, "steps", 0, "denoising steps for the Dream/LLaDA schedules (default: one token per step)")
	fs.IntVar(&o.Infill.BlockLength, "block-length", 0, "decode each span in blocks of this many tokens")
	fs.Float64Var(&o.Infill.Temperature, "temperature", 0, "sampling temperature; 0 is greedy")
	fs.Float64Var(&o.Infill.TopP, "top-p", 0, "nucleus sampling mass")
	fs.IntVar(&o.Infill.TopK, "top-k", 0, "top-k sampling")
	fs.Float64Var(&o.Infill.AlgTemp, "alg-temp", 0, "Dream: sample positions from softmax(confidence/alg-temp)")
	fs.Uint64Var(&o.Infill.Seed, "seed", 0, "random seed")
	fs.BoolVar(&o.Infill.Exact, "exact", false, "no context cache: a full forward pass at every step")
	fs.IntVar(&o.Infill.RefreshEvery, "refresh", 0, "cached steps between full passes (default 4)")
	fs.IntVar(&o.Infill.ContextTokens, "context", 0, "context budget in tokens (default: the model's trained length)")
	return o
}

// loadEngine loads the model and its tokenizer and prepares an engine.
func loadEngine(ctx context.Context, o engineOptions) (*infill.Engine, error) {
	switch o.Device {
	case "", "auto", "cpu":
	case "cuda":
		return nil, fmt.Errorf("--device cuda: this build has no CUDA backend (build with -tags cuda)")
	default:
		return nil, usageErr("--device %q: want cpu, cuda or auto", o.Device)
	}
	m, err := loadModel(o.Model)
	if err != nil {
		return nil, err
	}
	var fsys fs.FS = os.DirFS(o.Model)
	if o.Model == "" {
		fsys = models.Default()
	}
	tok, err := tokenizer.LoadFS(fsys)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return infill.NewEngine(m, tok, o.Infill)
}

// loadCompleter is how the language server gets its engine.
func loadCompleter(ctx context.Context, o engineOptions) (infill.Completer, error) {
	return loadEngine(ctx, o)
}

// loadModel loads a model directory, or the embedded default model for "".
func loadModel(dir string) (*runtime.Model, error) {
	if dir == "" {
		m, err := runtime.LoadFS(models.Default())
		if err != nil {
			return nil, fmt.Errorf("embedded default model: %w", err)
		}
		return m, nil
	}
	return runtime.Load(dir)
}
