package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/infuse-lsp/infuse/infill"
)

func init() {
	register("fill", "fill every hole marker (/*?*/) of FILE in one denoising loop", runFill)
}

type fillReport struct {
	Texts    []string        `json:"texts"`
	Figures  infill.Figures  `json:"figures"`
	Separate *separateReport `json:"separate,omitempty"`
}

// separateReport is the same holes filled one request each, for comparison.
type separateReport struct {
	Texts []string `json:"texts"`
	NFE   int      `json:"nfe"`
	Same  int      `json:"same"` // holes whose text equals the joint fill's
}

func runFill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fill", stderr)
	eo := addEngineFlags(fs)
	marker := fs.String("marker", "/*?*/", "the text that marks a hole")
	asJSON := fs.Bool("json", false, "print each hole's text and the figures as JSON instead of the filled file")
	compare := fs.Bool("compare", false, "also fill each hole on its own and report the difference (with --json)")
	maxTokens := fs.Int("max-tokens", 0, "span length per hole (default: by mode)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *marker == "" {
		return usageErr("want one FILE argument and a non-empty --marker")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	parts := strings.Split(string(data), *marker)
	if len(parts) < 2 {
		return fmt.Errorf("%s has no hole marker %q", fs.Arg(0), *marker)
	}
	eng, err := loadEngine(ctx, *eo)
	if err != nil {
		return err
	}
	res, err := eng.FillHoles(ctx, infill.HolesRequest{Parts: parts, MaxTokens: *maxTokens})
	if err != nil {
		return err
	}
	if !*asJSON {
		var b strings.Builder
		for i, p := range parts {
			b.WriteString(p)
			if i < len(res.Texts) {
				b.WriteString(res.Texts[i])
			}
		}
		_, err := io.WriteString(stdout, b.String())
		return err
	}
	rep := fillReport{Texts: res.Texts, Figures: res.Figures}
	if *compare {
		sep := &separateReport{}
		for i := range res.Texts {
			// The other holes are left as they are in the file: empty.
			prefix := strings.Join(parts[:i+1], "")
			suffix := strings.Join(parts[i+1:], "")
			one, err := eng.FillHoles(ctx, infill.HolesRequest{Parts: []string{prefix, suffix}, MaxTokens: *maxTokens})
			if err != nil {
				return err
			}
			sep.Texts = append(sep.Texts, one.Texts[0])
			sep.NFE += one.Figures.NFE
			if one.Texts[0] == res.Texts[i] {
				sep.Same++
			}
		}
		rep.Separate = sep
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
