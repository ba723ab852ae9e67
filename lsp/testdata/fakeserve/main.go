// Command fakeserve runs infuse's language server on stdio with a
// deterministic stand-in for the model. The client tests in test/lsp (Node's
// vscode-languageserver-protocol, headless Neovim) build and drive it; it is
// not part of infuse, and it lives under testdata so that "go build ./..."
// and "go vet ./..." pass it by.
//
// The stand-in answers "completion()" on one line and "first()\nsecond()"
// on several, fills each hole i with "hole<i>", and never returns while the
// text before the cursor contains "BLOCK" (until the request is cancelled),
// so that clients can test cancellation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/infuse-lsp/infuse/infill"
	"github.com/infuse-lsp/infuse/lsp"
)

type stand struct{}

func (stand) Complete(ctx context.Context, req infill.Request) (infill.Result, error) {
	if strings.Contains(req.Prefix, "BLOCK") {
		<-ctx.Done()
		return infill.Result{}, ctx.Err()
	}
	if req.Mode == infill.MultiLine {
		return infill.Result{Text: "first()\nsecond()"}, nil
	}
	return infill.Result{Text: "completion()"}, nil
}

func (stand) FillHoles(_ context.Context, req infill.HolesRequest) (infill.HolesResult, error) {
	texts := make([]string, len(req.Parts)-1)
	for i := range texts {
		texts[i] = fmt.Sprintf("hole%d", i+1)
	}
	return infill.HolesResult{Texts: texts}, nil
}

func main() {
	debounce := flag.Duration("debounce", 0, "server-side debounce")
	verbose := flag.Bool("v", false, "log debug detail to stderr")
	flag.Parse()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg := lsp.DefaultConfig()
	cfg.Debounce = *debounce
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := lsp.New(lsp.Options{
		Load:    func(context.Context, string, string) (infill.Completer, error) { return stand{}, nil },
		Config:  cfg,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Version: "fake",
	}).Serve(ctx, lsp.Stdio())
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeserve:", err)
		if errors.Is(err, lsp.ErrExitWithoutShutdown) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}
