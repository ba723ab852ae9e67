package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/infuse-lsp/infuse/infill"
	"github.com/infuse-lsp/infuse/infill/remote"
	"github.com/infuse-lsp/infuse/kernels/cpu"
	"github.com/infuse-lsp/infuse/lsp"
	"github.com/infuse-lsp/infuse/models"
	"github.com/infuse-lsp/infuse/runtime"
	"github.com/infuse-lsp/infuse/runtime/tokenizer"
)

// engineOptions say which model to load, where, and how to denoise with it;
// or, with Remote.Engine other than "local", which server to ask instead.
type engineOptions struct {
	Model   string // a Hugging Face directory; "" is the embedded default model
	Device  string // cpu, cuda or auto
	Weights string // what the matrices are computed in: auto, stored, q8_0 or bf16 (see loadOptions)
	Infill  infill.Options
	Remote  remoteOptions
}

// remoteOptions name a serving engine and how to reach it.
type remoteOptions struct {
	Engine      string // local, openai, ollama or llamacpp
	URL         string
	Model       string
	KeyEnv      string // the name of the environment variable holding the key
	KeyFile     string // or a file only its owner can read
	Concurrency int
	Timeout     time.Duration
}

// addEngineFlags binds the flags every model-running command shares.
func addEngineFlags(fs *flag.FlagSet) *engineOptions {
	o := &engineOptions{}
	fs.StringVar(&o.Model, "model", "", "model directory (Hugging Face layout); default: the embedded model")
	fs.StringVar(&o.Device, "device", "auto", "cpu, cuda or auto")
	fs.StringVar(&o.Weights, "weights", "auto", "`TYPE` the weight matrices are computed in: stored (as the files hold them), q8_0 (float matrices quantized at load: 1.7x faster, see models/MODEL_CARD.md), bf16 (float matrices rounded to bfloat16 for Intel AMX tiles), or auto: bf16 where this machine has AMX, else q8_0 where this CPU has int8 kernels (AVX-512 VNNI), else stored")
	fs.StringVar(&o.Infill.Sampler, "sampler", "", "threshold (default), entropy, maskgit_plus, topk_margin, origin, llada")
	fs.Float64Var(&o.Infill.Threshold, "threshold", 0, "threshold sampler's confidence τ (default: the model's generation_config.json, else 0.9)")
	fs.IntVar(&o.Infill.Steps, "steps", 0, "denoising steps for the Dream/LLaDA schedules (default: one token per step)")
	fs.IntVar(&o.Infill.BlockLength, "block-length", 0, "decode each span in blocks of this many tokens")
	fs.Float64Var(&o.Infill.Temperature, "temperature", 0, "sampling temperature; 0 is greedy")
	fs.Float64Var(&o.Infill.TopP, "top-p", 0, "nucleus sampling mass")
	fs.IntVar(&o.Infill.TopK, "top-k", 0, "top-k sampling")
	fs.Float64Var(&o.Infill.AlgTemp, "alg-temp", 0, "Dream: sample positions from softmax(confidence/alg-temp)")
	fs.Uint64Var(&o.Infill.Seed, "seed", 0, "random seed")
	fs.BoolVar(&o.Infill.Exact, "exact", false, "no context cache: a full forward pass at every step")
	fs.BoolVar(&o.Infill.StopsAnywhere, "stops-anywhere", false, "threshold sampler: let a stop token end a span at any position, as the reference samplers do (default: only from the span's end)")
	fs.IntVar(&o.Infill.RefreshEvery, "refresh", 0, "cached steps between full passes (default 4)")
	fs.IntVar(&o.Infill.RefreshRadius, "refresh-radius", 0, "a refresh recomputes this many positions each side of the span (0: the model's choice, else the whole canvas; -1: the whole canvas)")
	fs.IntVar(&o.Infill.ContextTokens, "context", 0, "context budget in tokens (default: the model's trained length)")
	fs.IntVar(&o.Infill.MaxBatch, "batch", 0, "requests denoised together, one forward pass a step for all (default 1: on a CPU batching gains throughput, +20% with 4 editors asking without pause, only when the engine is saturated, and costs p99 latency at typing pace)")
	r := &o.Remote
	fs.StringVar(&r.Engine, "engine", "local", "`ENGINE`: local (the in-process model), or a server's API: openai, ollama, llamacpp")
	fs.StringVar(&r.URL, "engine-url", "", "the server's base or endpoint `URL` (with --engine openai|ollama|llamacpp)")
	fs.StringVar(&r.Model, "engine-model", "", "the `NAME` the server knows its model by (openai, ollama)")
	fs.StringVar(&r.KeyEnv, "engine-key-env", "", "read the API key from the environment variable `NAME`")
	fs.StringVar(&r.KeyFile, "engine-key-file", "", "read the API key from `FILE` (mode 0600)")
	fs.IntVar(&r.Concurrency, "engine-concurrency", remote.DefaultConcurrency, "requests in flight to the server at once")
	fs.DurationVar(&r.Timeout, "engine-timeout", remote.DefaultTimeout, "deadline for one remote completion, retries included")
	return o
}

// remoteAPI says which server API o names, or false for the local engine.
func (o *remoteOptions) remoteAPI() (remote.API, bool, error) {
	switch o.Engine {
	case "", "local":
		return "", false, nil
	}
	api, ok := remote.ParseAPI(o.Engine)
	if !ok {
		return "", false, usageErr("--engine %q: want local, openai, ollama or llamacpp", o.Engine)
	}
	return api, true, nil
}

// loadRemote prepares a client for the server o names. The key is read here,
// from the environment or a private file; it is never a flag's value, so it
// never shows in a process listing or a shell history.
func loadRemote(api remote.API, o remoteOptions) (*remote.Client, error) {
	if o.URL == "" {
		return nil, usageErr("--engine %s needs --engine-url", api)
	}
	if o.KeyEnv != "" && o.KeyFile != "" {
		return nil, usageErr("give --engine-key-env or --engine-key-file, not both")
	}
	if o.Concurrency < 1 || o.Timeout <= 0 {
		return nil, usageErr("--engine-concurrency and --engine-timeout must be positive")
	}
	cfg := remote.Config{API: api, URL: o.URL, Model: o.Model, Concurrency: o.Concurrency, Timeout: o.Timeout, Logger: slog.Default()}
	var err error
	switch {
	case o.KeyEnv != "":
		cfg.Key, err = remote.KeyFromEnv(o.KeyEnv)
		cfg.KeySource = "$" + o.KeyEnv
	case o.KeyFile != "":
		cfg.Key, err = remote.KeyFromFile(o.KeyFile)
		cfg.KeySource = o.KeyFile
	}
	if err != nil {
		return nil, err
	}
	return remote.New(cfg)
}

// loadEngine loads the model and its tokenizer and prepares an engine. It is
// for commands that need the in-process engine itself (several holes at once,
// its options); the others use loadCompleter.
func loadEngine(ctx context.Context, o engineOptions) (*infill.Engine, error) {
	if _, isRemote, err := o.Remote.remoteAPI(); err != nil {
		return nil, err
	} else if isRemote {
		return nil, usageErr("--engine %s: this command needs the in-process engine (--engine local)", o.Remote.Engine)
	}
	if err := checkDevice(o.Device); err != nil {
		return nil, err
	}
	m, err := loadModel(o.Model, o.Weights)
	if err != nil {
		return nil, err
	}
	tok, err := loadModelTokenizer(o.Model)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return infill.NewEngine(m, tok, o.Infill)
}

// loadModelTokenizer loads the tokenizer of a model: the embedded default
// model's for "", a directory's tokenizer files, and for a GGUF file the
// tokenizer.json beside it if there is one, else the tokenizer the file
// carries.
func loadModelTokenizer(model string) (*tokenizer.Tokenizer, error) {
	if model == "" {
		return tokenizer.LoadFS(models.Default())
	}
	if st, err := os.Stat(model); err == nil && !st.IsDir() && runtime.IsGGUF(model) {
		dir := filepath.Dir(model)
		if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err == nil {
			return tokenizer.LoadFS(os.DirFS(dir))
		}
		return runtime.LoadGGUFTokenizer(model)
	}
	return tokenizer.LoadFS(os.DirFS(model))
}

// loadCompleter is how the language server and the completing commands get
// their engine: the in-process model, or a client of the server --engine
// names.
func loadCompleter(ctx context.Context, o engineOptions) (infill.Completer, error) {
	api, isRemote, err := o.Remote.remoteAPI()
	if err != nil {
		return nil, err
	}
	if isRemote {
		return loadRemote(api, o.Remote)
	}
	return loadEngine(ctx, o)
}

// engineLabel names what a completer decodes with, for reports: the
// in-process engine's sampler, or the remote API.
func engineLabel(c infill.Completer) (sampler string, exact bool) {
	switch c := c.(type) {
	case *infill.Engine:
		return c.Options().Sampler, c.Options().Exact
	case *remote.Client:
		return c.String(), false
	}
	return "", false
}

// loadOptions says how to load a model's weights: "stored", as the files
// hold them; "q8_0", float ones quantized at load (runtime.LoadOptions.Q8);
// "bf16", float ones rounded to bfloat16 for AMX tiles (LoadOptions.AMX);
// "auto" or "", the fastest of those this machine has: bf16 on AMX, else
// q8_0 where the CPU has int8 kernels, else stored.
func loadOptions(weights string) (runtime.LoadOptions, error) {
	var o runtime.LoadOptions
	switch weights {
	case "", "auto":
		o.AMX = cpu.AMX()
		o.Q8 = !o.AMX && cpu.Native(cpu.FormatQ8_0)
	case "bf16":
		if !cpu.AMX() {
			return o, fmt.Errorf("--weights bf16: %w", runtime.ErrNoAMX)
		}
		o.AMX = true
	case "q8_0":
		if !cpu.Native(cpu.FormatQ8_0) {
			return o, fmt.Errorf("--weights q8_0: %w", runtime.ErrNoInt8)
		}
		o.Q8 = true
	case "stored":
	default:
		return o, usageErr("--weights %q: want auto, stored, q8_0 or bf16", weights)
	}
	return o, nil
}

// checkDevice refuses a --device this build cannot run on.
func checkDevice(device string) error {
	switch device {
	case "", "auto", "cpu":
		return nil
	case "cuda":
		return fmt.Errorf("--device cuda: this build has no CUDA backend (build with -tags cuda)")
	}
	return usageErr("--device %q: want cpu, cuda or auto", device)
}

// check reports the mistakes in o that need no model, for a server to
// refuse at start rather than at its first completion.
func (o *engineOptions) check() error {
	if _, _, err := o.Remote.remoteAPI(); err != nil {
		return err
	}
	if err := checkDevice(o.Device); err != nil {
		return err
	}
	if _, err := loadOptions(o.Weights); err != nil {
		return err
	}
	if err := o.Infill.Check(); err != nil {
		return usageErr("%v", err)
	}
	return nil
}

// loadModel loads a model directory, or the embedded default model for "",
// with its weights as loadOptions(weights) says, and as fitAuto says for a
// large model under --weights auto.
func loadModel(dir, weights string) (*runtime.Model, error) {
	o, err := loadOptions(weights)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		if weights == "" || weights == "auto" {
			o = fitAuto(o, dir)
		}
		return runtime.LoadWith(dir, o)
	}
	m, err := runtime.LoadFSWith(models.Default(), o)
	if err != nil {
		return nil, fmt.Errorf("embedded default model: %w", err)
	}
	return m, nil
}

// fitAuto keeps --weights auto from doubling a large model: bf16 tiles
// take 2 bytes a weight, Q8_0 about 1, and a 7B bf16 checkpoint in bf16
// would not fit a 16 GiB machine that holds it in Q8_0. When the model's
// float matrices at 2 bytes would take more than half of this machine's
// memory, and the CPU has int8 kernels, auto takes q8_0 instead.
func fitAuto(o runtime.LoadOptions, model string) runtime.LoadOptions {
	if !o.AMX || !cpu.Native(cpu.FormatQ8_0) {
		return o
	}
	info, err := inspectModel(model)
	if err != nil {
		return o // the load reports it
	}
	if tooBigForBF16(info, totalMemory()) {
		o.AMX, o.Q8 = false, true
	}
	return o
}

// tooBigForBF16 says whether info's float matrices at 2 bytes a weight
// take more than half of mem bytes (0: unknown, never too big).
func tooBigForBF16(info *runtime.Info, mem uint64) bool {
	var floats uint64
	for _, t := range info.Tensors {
		if len(t.Shape) != 2 || (t.DType != "F32" && t.DType != "F16" && t.DType != "BF16") {
			continue
		}
		floats += uint64(t.Shape[0]) * uint64(t.Shape[1])
	}
	return mem > 0 && 2*floats > mem/2
}

// shareRemote returns the language server's loader for remote engines: one
// client, hence one connection pool and one concurrency limit, per engine
// configuration for the whole process.
func shareRemote() func(context.Context, lsp.Engine) (infill.Completer, error) {
	var mu sync.Mutex
	clients := make(map[lsp.Engine]*remote.Client)
	return func(ctx context.Context, e lsp.Engine) (infill.Completer, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := clients[e]; ok {
			return c, nil
		}
		o := remoteOptions{Engine: e.Kind, URL: e.URL, Model: e.Model, KeyEnv: e.KeyEnv, KeyFile: e.KeyFile,
			Concurrency: e.Concurrency, Timeout: e.Timeout}
		if o.Concurrency == 0 {
			o.Concurrency = remote.DefaultConcurrency
		}
		if o.Timeout == 0 {
			o.Timeout = remote.DefaultTimeout
		}
		api, ok := remote.ParseAPI(e.Kind)
		if !ok {
			return nil, fmt.Errorf("engine %q: want openai, ollama or llamacpp", e.Kind)
		}
		c, err := loadRemote(api, o)
		if err != nil {
			return nil, err
		}
		clients[e] = c
		return c, nil
	}
}
