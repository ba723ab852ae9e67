package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/infuse-lsp/infuse/engine"
	"github.com/infuse-lsp/infuse/infill"
)

func init() {
	register("engine", "run the shared warm engine that 'infuse serve' processes use", runEngine)
	register("engine status", "report on the running shared engine (exit 1 if none runs)", runEngineStatus)
}

func runEngine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// main finds "engine" before it tries "engine status".
	if len(args) > 0 && args[0] == "status" {
		return runEngineStatus(ctx, args[1:], stdout, stderr)
	}
	flags := newFlags("engine", stderr)
	eo := addEngineFlags(flags)
	socket := flags.String("socket", "", "serve on the Unix socket `PATH` (default: named after the model, the flags and this build, in the user's runtime directory)")
	idle := flags.Duration("idle", 30*time.Minute, "exit after this long with no client; 0 never")
	queue := flags.Int("queue", 16, "requests that may wait behind the running one; more are refused as overloaded")
	verbose := flags.Bool("v", false, "log debug detail to stderr")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	if flags.NArg() > 0 {
		return usageErr("unexpected argument %q", flags.Arg(0))
	}
	if *idle < 0 || *queue < 1 {
		return usageErr("--idle must not be negative and --queue must be at least 1")
	}
	o, path, err := engineSocket(*eo, *socket)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()

	// Take the socket before loading: a second engine started in the same
	// moment by another window leaves at once, and clients that connect
	// during the load wait for the hello instead of starting more engines.
	ln, release, err := engine.Listen(path)
	if errors.Is(err, iofs.ErrExist) {
		fmt.Fprintf(stderr, "infuse engine: another engine already serves %s\n", path)
		return nil // a clean exit: a client that started us will find that one
	}
	if err != nil {
		return err
	}
	defer release()
	eng, err := loadEngine(ctx, o)
	if err != nil {
		ln.Close()
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	s := &engine.Server{
		Completer: eng,
		Model:     o.Model,
		Weights:   eng.Model().Computed(),
		Workers:   eng.Options().MaxBatch,
		Queue:     *queue,
		Idle:      *idle,
		Logger:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	fmt.Fprintf(stderr, "infuse: engine (pid %d) for %s serving on %s\n", os.Getpid(), modelName(o.Model), path)
	if err := s.Serve(ctx, ln); err != nil {
		return err
	}
	st := s.Status()
	s.Logger.Info("infuse: engine stopped", "served", st.Served, "uptime", st.Uptime.Round(time.Second))
	return nil
}

func runEngineStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlags("engine status", stderr)
	eo := addEngineFlags(flags) // they name the engine, as serve's do
	socket := flags.String("socket", "", "ask the engine on the Unix socket `PATH` (default: the one serve would use with these flags)")
	jsonOut := flags.Bool("json", false, "print the status as JSON")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	if flags.NArg() > 0 {
		return usageErr("unexpected argument %q", flags.Arg(0))
	}
	_, path, err := engineSocket(*eo, *socket)
	if err != nil {
		return err
	}
	st, err := engine.QueryStatus(ctx, path)
	if errors.Is(err, engine.ErrNotRunning) {
		return fmt.Errorf("no engine runs on %s; 'infuse serve' starts one when an editor needs it, or run 'infuse engine'", path)
	}
	if err != nil {
		return err
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(stdout, "model     %s\n", modelName(st.Model))
	if st.Weights != "" {
		fmt.Fprintf(stdout, "weights   %s\n", st.Weights)
	}
	fmt.Fprintf(stdout, "socket    %s\n", path)
	fmt.Fprintf(stdout, "process   pid %d, up %v, %.1f MiB resident\n", st.PID, st.Uptime.Round(time.Second), float64(st.RSS)/(1<<20))
	fmt.Fprintf(stdout, "clients   %d\n", st.Clients)
	fmt.Fprintf(stdout, "queue     %d running (batch of up to %d), %d waiting (limit %d)\n", st.Running, st.Workers, st.Queued, st.QueueLimit)
	fmt.Fprintf(stdout, "requests  %d served, %d failed, %d canceled, %d rejected\n", st.Served, st.Failed, st.Canceled, st.Rejected)
	if st.Recent > 0 {
		fmt.Fprintf(stdout, "latency   p50 %v, p99 %v over the last %d\n", st.P50.Round(time.Microsecond), st.P99.Round(time.Microsecond), st.Recent)
	}
	return nil
}

// engineSocket returns o with its model path made absolute (the engine is
// named by it, and runs in another directory) and the engine's socket:
// socket if set, else the one for o's model and flags.
func engineSocket(o engineOptions, socket string) (engineOptions, string, error) {
	if o.Model != "" {
		abs, err := filepath.Abs(o.Model)
		if err != nil {
			return o, "", fmt.Errorf("--model: %w", err)
		}
		o.Model = abs
	}
	if socket != "" {
		return o, socket, nil
	}
	path, err := engine.SocketPath(o.Model, engineArgs(o))
	return o, path, err
}

// engineArgs are the flags, other than --model, that make an engine run as
// o says, in a fixed order: a client asks for its engine by them and
// passes them when it starts one. The --engine* flags, which name a remote
// server instead, are no business of the shared engine.
func engineArgs(o engineOptions) []string {
	flags := newFlags("engine", io.Discard)
	bound := addEngineFlags(flags)
	*bound = o // the flags read their values from *bound
	var args []string
	flags.VisitAll(func(f *flag.Flag) {
		if f.Name == "model" || strings.HasPrefix(f.Name, "engine") {
			return
		}
		if f.Value.String() != f.DefValue {
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	return args
}

// sharedCompleter returns a client of the shared engine for o, starting
// the engine if none runs. When no engine can serve (it failed to start,
// or this system cannot run one), it loads the model in this process, so
// that completions work either way.
//
// With --engine naming a remote server, it is loadCompleter: that server is
// shared already.
func sharedCompleter(ctx context.Context, o engineOptions, log *slog.Logger) (infill.Completer, error) {
	if _, isRemote, err := o.Remote.remoteAPI(); err != nil || isRemote {
		return loadCompleter(ctx, o)
	}
	o, _, err := engineSocket(o, "")
	if err == nil {
		var c *engine.Client
		c, err = engine.Connect(ctx, engine.Options{Model: o.Model, Args: engineArgs(o)})
		if err == nil {
			log.Debug("infuse: using the shared engine", "socket", c.Socket())
			return c, nil
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	log.Warn("infuse: no shared engine, loading the model in this process", "err", err)
	return loadCompleter(ctx, o)
}

func modelName(dir string) string {
	if dir == "" {
		return "the embedded default model"
	}
	return dir
}
