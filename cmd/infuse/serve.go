package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"

	"github.com/sourcegraph/conc"

	"github.com/infuse-lsp/infuse/infill"
	"github.com/infuse-lsp/infuse/lsp"
)

func init() {
	register("serve", "run the language server (LSP on stdio, or on TCP with --listen)", runServe)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := lsp.DefaultConfig()
	fs := newFlags("serve", stderr)
	listen := fs.String("listen", "", "serve on TCP at `ADDR` instead of stdio; a bare port or :port binds 127.0.0.1")
	eo := addEngineFlags(fs) // --model, --device and the sampler's flags
	mode := fs.String("mode", "auto", "completion `SPAN`: auto, single-line or multi-line")
	debounce := fs.Duration("debounce", def.Debounce, "wait this long after a keystroke before running the model")
	timeout := fs.Duration("timeout", def.Timeout, "deadline for one completion")
	verbose := fs.Bool("v", false, "log debug detail to stderr")
	var allowURLs urlList
	fs.Var(&allowURLs, "engine-allow-url", "a remote engine `URL` (or URL prefix) the editor's settings may switch to; repeat for more (settings may always name one on this machine)")
	shared := sharedFlag("auto")
	fs.Var(&shared, "shared-engine", "complete through one warm 'infuse engine' shared by every window, starting it if none runs (falls back to this process): true, false, or auto (shared for a --model, in-process for the small embedded one)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if err := eo.check(); err != nil {
		return err
	}
	cfg := def
	cfg.Model, cfg.Device = eo.Model, eo.Device
	r := eo.Remote
	cfg.Engine = lsp.Engine{Kind: r.Engine, URL: r.URL, Model: r.Model, KeyEnv: r.KeyEnv, KeyFile: r.KeyFile,
		Concurrency: r.Concurrency, Timeout: r.Timeout}
	var ok bool
	if cfg.Mode, ok = infill.ParseMode(*mode); !ok {
		return usageErr("--mode %q: want auto, single-line or multi-line", *mode)
	}
	if *debounce < 0 || *timeout <= 0 {
		return usageErr("--debounce must not be negative and --timeout must be positive")
	}
	cfg.Debounce, cfg.Timeout = *debounce, *timeout
	cfg.EngineURLs = allowURLs

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := lsp.Options{
		// One completer per model and device for the whole process: with
		// --listen, every editor window shares it.
		Load: lsp.ShareLoader(func(ctx context.Context, model, device string) (infill.Completer, error) {
			o := *eo
			o.Model, o.Device = model, device
			o.Remote = remoteOptions{Engine: "local"} // a remote engine comes through LoadEngine
			if shared.on(model) {
				return sharedCompleter(ctx, o, logger)
			}
			return loadCompleter(ctx, o)
		}),
		LoadEngine: shareRemote(),
		Config:     cfg,
		Logger:     logger,
		Version:    version(),
	}

	if *listen == "" {
		return lsp.New(opts).Serve(ctx, lsp.Stdio())
	}
	ln, err := net.Listen("tcp", loopbackDefault(*listen))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stderr, "infuse: serving LSP on %s\n", ln.Addr())
	return serveTCP(ctx, ln, opts, logger)
}

// urlList is a repeatable flag of URLs.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http(s) URL, not %q", s)
	}
	*l = append(*l, s)
	return nil
}

// sharedFlag is --shared-engine: "true", "false" or "auto". A bare
// --shared-engine means true.
type sharedFlag string

func (f *sharedFlag) String() string   { return string(*f) }
func (f *sharedFlag) IsBoolFlag() bool { return true }

func (f *sharedFlag) Set(s string) error {
	switch s {
	case "true", "false", "auto":
		*f = sharedFlag(s)
		return nil
	}
	return fmt.Errorf("want true, false or auto, not %q", s)
}

// on says whether a window completing with model uses the shared engine.
// Auto shares a model named on the command line or in the settings (a
// big one must not be loaded once per window) and loads the embedded
// model, which takes a fraction of a second, in each window: no process
// outlives the editor for it.
func (f sharedFlag) on(model string) bool {
	return f == "true" || (f == "auto" && model != "")
}

// loopbackDefault binds a bare port to the loopback interface: a language
// server reads the user's code and should not be reachable from the network
// unless asked to be.
func loopbackDefault(addr string) string {
	if !strings.Contains(addr, ":") {
		return "127.0.0.1:" + addr
	}
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

// serveTCP runs one session per connection until ctx ends, then waits for
// the sessions to finish.
func serveTCP(ctx context.Context, ln net.Listener, opts lsp.Options, log *slog.Logger) error {
	var sessions conc.WaitGroup
	defer sessions.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		sessions.Go(func() {
			defer conn.Close()
			if err := lsp.New(opts).Serve(ctx, conn); err != nil {
				log.Warn("infuse: session ended", "remote", conn.RemoteAddr(), "err", err)
			}
		})
	}
}
