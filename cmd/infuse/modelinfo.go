package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/infuse-lsp/infuse/runtime"
	"github.com/infuse-lsp/infuse/runtime/gguf"
)

func init() {
	register("model info", "describe a model directory: family, shapes, parameters, dtypes, special tokens", runModelInfo)
}

func runModelInfo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("model info", stderr)
	model := fs.String("model", "", "model `DIR` (or give it as the argument; default: the embedded model)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	dir := *model
	switch {
	case fs.NArg() > 1:
		return usageErr("unexpected argument %q", fs.Arg(1))
	case fs.NArg() == 1 && dir != "":
		return usageErr("give the model either as --model or as the argument, not both")
	case fs.NArg() == 1:
		dir = fs.Arg(0)
	case dir == "":
		m, err := loadModel("", "stored")
		if err != nil {
			return err
		}
		defer m.Close()
		writeInfo(stdout, "embedded default", m.Info())
		return nil
	}
	info, err := inspectModel(dir)
	if err != nil {
		return err
	}
	var extra [][2]string
	if runtime.IsGGUF(dir) {
		extra = append(extra, [2]string{"tokenizer", ggufTokenizerSummary(dir)})
	}
	writeInfo(stdout, dir, info, extra...)
	return nil
}

// ggufTokenizerSummary says whether a GGUF file carries a tokenizer, and
// which: the one loadModelTokenizer would use when no tokenizer.json is
// beside the file.
func ggufTokenizerSummary(path string) string {
	f, err := gguf.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if !runtime.HasGGUFTokenizer(f) {
		return "none in the file"
	}
	model, _ := f.Value("tokenizer.ggml.model")
	pre, _ := f.Value("tokenizer.ggml.pre")
	tokens, _ := f.Value("tokenizer.ggml.tokens")
	toks, _ := tokens.([]string)
	return fmt.Sprintf("in the file: %v, pre-tokenizer %v, %d tokens", model, pre, len(toks))
}

func writeInfo(w io.Writer, dir string, info *runtime.Info, extra ...[2]string) {
	c := info.Config
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("model", "%s", dir)
	row("family", "%s (model_type %q)", c.Family, c.ModelType)
	row("hidden", "%d", c.Hidden)
	row("intermediate", "%d", c.Intermediate)
	row("layers", "%d", c.Layers)
	row("heads", "%d query, %d key/value, head size %d", c.Heads, c.KVHeads, c.HeadDim)
	if c.TokenVocab != c.Vocab {
		row("vocab", "%d rows (%d token ids)", c.Vocab, c.TokenVocab)
	} else {
		row("vocab", "%d", c.Vocab)
	}
	if c.MaxPositions > 0 {
		row("positions", "%d", c.MaxPositions)
	}
	row("rope theta", "%g", c.RopeTheta)
	row("norm eps", "%g", c.NormEps)
	row("q/k/v bias", "%s", yesNo(c.QKVBias))
	head := "untied (own weights)"
	if c.TiedHead {
		head = "tied to the embedding"
	}
	row("head", "%s", head)
	if c.ShiftLogits {
		row("logits", "shifted: row i predicts token i+1")
	} else {
		row("logits", "not shifted: row i predicts token i")
	}
	row("parameters", "%d (%s)", info.Params, humanCount(info.Params))
	row("stored", "%s, %s in %d file(s)", info.DTypeSummary(), humanBytes(info.Bytes), len(info.Files))
	if len(info.Unused) > 0 {
		row("unused tensors", "%d (%s…)", len(info.Unused), info.Unused[0])
	}
	row("mask", "%s", tokenID(c.Mask))
	row("eos", "%s", tokenID(c.EOS))
	row("pad", "%s", tokenID(c.Pad))
	row("bos", "%s", tokenID(c.BOS))
	row("expand", "%s", tokenID(c.Expand))
	for _, e := range extra {
		row(e[0], "%s", e[1])
	}
	tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func tokenID(id int32) string {
	if id < 0 {
		return "none"
	}
	return fmt.Sprint(id)
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// inspectModel reads what a model directory or GGUF file holds, without
// loading its weights.
func inspectModel(path string) (*runtime.Info, error) {
	if runtime.IsGGUF(path) {
		return runtime.InspectGGUF(path)
	}
	return runtime.Inspect(path)
}
