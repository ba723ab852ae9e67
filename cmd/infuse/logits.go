package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/infuse-lsp/infuse/runtime/npy"
)

func init() {
	register("logits", "write a model's raw output rows for token ids as a .npy file", runLogits)
}

func runLogits(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logits", stderr)
	model := fs.String("model", "", "model `DIR` (a Hugging Face directory; default: the embedded model)")
	device := fs.String("device", "cpu", "`DEVICE` to run on: cpu (or auto)")
	weights := fs.String("weights", "stored", "`TYPE` the matrices are computed in: stored, q8_0, bf16 or auto (as the other commands; stored by default here, to compare with a reference)")
	ids := fs.String("ids", "", "comma-separated token `IDS`, e.g. 1,2,3")
	out := fs.String("out", "", "output `FILE`.npy: float32 [n, vocab], row i = the output at position i, not shifted")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *ids == "":
		return usageErr("--ids is required")
	case *out == "":
		return usageErr("--out FILE.npy is required")
	case *device != "cpu" && *device != "auto":
		return usageErr("--device %q: only cpu is available in this build", *device)
	}
	tokens, err := parseIDs(*ids)
	if err != nil {
		return usageErr("--ids: %v", err)
	}

	m, err := loadModel(*model, *weights)
	if err != nil {
		return err
	}
	defer m.Close()
	n := len(tokens)
	s := m.NewState(n)
	if err := s.Forward(ctx, tokens, 0, n); err != nil {
		return err
	}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	logits := make([]float32, n*m.Config.Vocab)
	if err := s.Logits(rows, logits); err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := npy.Write(f, logits, n, m.Config.Vocab); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	shift := "row i predicts token i"
	if m.Config.ShiftLogits {
		shift = "shifted family: row i predicts token i+1"
	}
	fmt.Fprintf(stderr, "wrote %s: float32 [%d, %d] (%s)\n", *out, n, m.Config.Vocab, shift)
	return nil
}

// parseIDs reads "1,2,3" (spaces allowed).
func parseIDs(s string) ([]int32, error) {
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		id, err := strconv.ParseInt(f, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, int32(id))
	}
	return ids, nil
}
