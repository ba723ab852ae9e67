package main

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/infuse-lsp/infuse/infill"
	"github.com/infuse-lsp/infuse/lsp"
)

// benchFiles are real source files held out of the default model's
// training (Go: BSD-3-Clause, Python: PSF), so that `infuse bench` measures
// the same work everywhere.
//
//go:embed testdata/bench
var benchFiles embed.FS

func init() {
	register("bench", "latency and throughput of completions over a fixed set of real code files", runBench)
}

type benchReport struct {
	Model            string  `json:"model"`
	Weights          string  `json:"weights,omitempty"` // the types the matrices are computed in
	Sampler          string  `json:"sampler"`
	Mode             string  `json:"mode"`
	Exact            bool    `json:"exact"`
	Completions      int     `json:"completions"`
	P50Millis        float64 `json:"p50_ms"`
	P90Millis        float64 `json:"p90_ms"`
	MeanMillis       float64 `json:"mean_ms"`
	NFE              float64 `json:"nfe_mean"`
	TokensPerForward float64 `json:"tokens_per_forward"`
	ForwardGFLOPS    float64 `json:"forward_gflops"`
	FirstPassMillis  float64 `json:"first_pass_ms_mean"`
	StepMillis       float64 `json:"step_ms_mean"`
	// CacheAgreement is the share of completions that come out the same
	// with the context cache as with exact decoding (--agreement).
	CacheAgreement *float64 `json:"cache_agreement,omitempty"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("bench", stderr)
	eo := addEngineFlags(fset)
	asJSON := fset.Bool("json", false, "print the figures as JSON")
	perFile := fset.Int("n", 8, "completions per file")
	mode := fset.String("mode", "single-line", "single-line, multi-line or auto")
	dir := fset.String("files", "", "a directory of source files to use instead of the built-in set")
	debounce := fset.Duration("debounce", lsp.DefaultConfig().Debounce, "with --lsp: the server's debounce")
	overLSP := fset.Bool("lsp", false, "replay typing through `infuse serve` over stdio and report completion latency as an editor sees it")
	agreement := fset.Bool("agreement", false, "also decode every request exactly (no cache) and report how often the two agree")
	editors := fset.String("editors", "", "simulate `N[,N...]` editors typing at once against one engine, with batching and without")
	each := fset.Int("each", 32, "with --editors: completions per editor (a p99 needs a few hundred in all: its run-to-run spread here is ±10% at 384)")
	gap := fset.Duration("gap", 100*time.Millisecond, "with --editors: an editor's mean pause between a completion and its next request (each drawn from gap/2 to 3·gap/2)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	m, ok := infill.ParseMode(*mode)
	if !ok {
		return usageErr("--mode %q: want single-line, multi-line or auto", *mode)
	}
	var files fs.FS = benchFiles
	root := "testdata/bench"
	if *dir != "" {
		files, root = os.DirFS(*dir), "."
	}
	if *overLSP {
		serveArgs := []string{"--debounce", debounce.String()}
		if eo.Model != "" {
			serveArgs = append(serveArgs, "--model", eo.Model)
		}
		return benchLSP(ctx, files, root, serveArgs, *asJSON, stdout, stderr)
	}
	reqs, err := benchRequests(files, root, *perFile, m)
	if err != nil {
		return err
	}
	if *editors != "" {
		ns, err := parseEditors(*editors)
		if err != nil {
			return err
		}
		if *each < 1 || *gap < 0 {
			return usageErr("--each must be positive and --gap not negative")
		}
		return benchLoad(ctx, *eo, reqs, ns, *each, *gap, *asJSON, stdout, stderr)
	}
	eng, err := loadCompleter(ctx, *eo)
	if err != nil {
		return err
	}
	// Warm up: the first completions fault in weights and grow buffers.
	for _, r := range reqs[:min(2, len(reqs))] {
		if _, err := eng.Complete(ctx, r); err != nil {
			return err
		}
	}
	var exact *infill.Engine
	if *agreement {
		xo := *eo
		xo.Infill.Exact = true
		if exact, err = loadEngine(ctx, xo); err != nil {
			return err
		}
	}
	same := 0
	var lat []float64
	var nfe, toks int
	var flops float64
	var fwd, first, steps time.Duration
	for _, r := range reqs {
		res, err := eng.Complete(ctx, r)
		if err != nil {
			return err
		}
		if exact != nil {
			x, err := exact.Complete(ctx, r)
			if err != nil {
				return err
			}
			if x.Text == res.Text {
				same++
			}
		}
		f := res.Figures
		lat = append(lat, float64(f.Total.Microseconds())/1000)
		nfe += f.NFE
		toks += f.Tokens
		flops += f.FLOPs
		fwd += f.FirstPass + f.Steps
		first += f.FirstPass
		steps += f.Steps
	}
	slices.Sort(lat)
	n := float64(len(lat))
	rep := benchReport{
		Model: eo.Model, Mode: m.String(),
		Completions: len(lat), P50Millis: percentile(lat, 0.5), P90Millis: percentile(lat, 0.9),
		NFE: float64(nfe) / n, TokensPerForward: float64(toks) / float64(max(nfe, 1)),
		ForwardGFLOPS:   flops / fwd.Seconds() / 1e9,
		FirstPassMillis: float64(first.Microseconds()) / 1000 / n,
		StepMillis:      float64(steps.Microseconds()) / 1000 / float64(max(nfe-len(lat), 1)),
	}
	rep.Sampler, rep.Exact = engineLabel(eng)
	if e, ok := eng.(*infill.Engine); ok {
		rep.Weights = e.Model().Computed()
	}
	for _, l := range lat {
		rep.MeanMillis += l / n
	}
	if exact != nil {
		a := float64(same) / n
		rep.CacheAgreement = &a
	}
	if rep.Model == "" {
		rep.Model = "embedded default"
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "%d %s completions (%s sampler, model %s)\n", rep.Completions, rep.Mode, rep.Sampler, rep.Model)
	if rep.Weights != "" {
		fmt.Fprintf(stdout, "weights   %s\n", rep.Weights)
	}
	fmt.Fprintf(stdout, "latency   p50 %.1f ms   p90 %.1f ms   mean %.1f ms\n", rep.P50Millis, rep.P90Millis, rep.MeanMillis)
	fmt.Fprintf(stdout, "forwards  %.2f per completion, %.2f tokens per forward\n", rep.NFE, rep.TokensPerForward)
	fmt.Fprintf(stdout, "time      first pass %.1f ms, cached step %.1f ms, forward %.1f GFLOP/s\n",
		rep.FirstPassMillis, rep.StepMillis, rep.ForwardGFLOPS)
	if rep.CacheAgreement != nil {
		fmt.Fprintf(stdout, "cache     %.1f%% of completions identical to exact decoding\n", 100**rep.CacheAgreement)
	}
	return nil
}

// benchRequests cuts perFile completions out of every file: the cursor at a
// seeded random point inside a non-blank line.
func benchRequests(files fs.FS, root string, perFile int, m infill.Mode) ([]infill.Request, error) {
	var reqs []infill.Request
	rng := rand.New(rand.NewPCG(1, 2))
	err := fs.WalkDir(files, root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".md") {
			return err
		}
		data, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		text := string(data)
		var starts []int // offsets of non-blank lines
		for off := 0; off < len(text); {
			end := strings.IndexByte(text[off:], '\n')
			if end < 0 {
				end = len(text) - off
			}
			if len(strings.TrimSpace(text[off:off+end])) > 4 {
				starts = append(starts, off)
			}
			off += end + 1
		}
		if len(starts) == 0 {
			return nil
		}
		for range perFile {
			s := starts[rng.IntN(len(starts))]
			end := s + strings.IndexByte(text[s:]+"\n", '\n')
			indent := s + len(text[s:end]) - len(strings.TrimLeft(text[s:end], " \t"))
			cur := indent + rng.IntN(end-indent)
			for cur > indent && !utf8.RuneStart(text[cur]) {
				cur--
			}
			reqs = append(reqs, infill.Request{Prefix: text[:cur], Suffix: text[cur:], Mode: m, Language: languageOf(path)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("no source lines to complete in %s", root)
	}
	return reqs, nil
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}
