//go:build !windows

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infuse-lsp/infuse/engine"
	"github.com/infuse-lsp/infuse/infill"
)

// failEngine makes an engine started by a test fail at once.
const failEngine = "INFUSE_TEST_FAIL_ENGINE"

// TestMain lets the test binary act as infuse when an engine client
// re-executes it as "engine ...", as serve does: it must start the engine
// then, not run the tests again.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "engine" {
		if os.Getenv(failEngine) != "" {
			fmt.Fprintln(os.Stderr, "test: this engine fails to start")
			os.Exit(1)
		}
		main()
	}
	os.Exit(m.Run())
}

func TestEngineArgs(t *testing.T) {
	def := *addEngineFlags(newFlags("engine", &bytes.Buffer{}))
	if got := engineArgs(def); len(got) != 0 {
		t.Errorf("default flags give %q, want none", got)
	}
	o := def
	o.Model, o.Device = "/m", "cpu"
	o.Infill.Sampler, o.Infill.Threshold, o.Infill.Exact = "entropy", 0.75, true
	o.Remote.Timeout = time.Hour // not the shared engine's business
	want := []string{"--device=cpu", "--exact=true", "--sampler=entropy", "--threshold=0.75"}
	if got := engineArgs(o); !slices.Equal(got, want) {
		t.Errorf("engineArgs = %q, want %q", got, want)
	}
	// They parse back into the same options.
	flags := newFlags("engine", &bytes.Buffer{})
	back := addEngineFlags(flags)
	if err := flags.Parse(want); err != nil {
		t.Fatal(err)
	}
	back.Model, back.Remote = o.Model, o.Remote
	if *back != o {
		t.Errorf("round trip: %+v, want %+v", *back, o)
	}
}

type echo struct{}

func (echo) Complete(ctx context.Context, req infill.Request) (infill.Result, error) {
	return infill.Result{Text: req.Prefix}, nil
}

func TestEngineStatus(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "e.sock")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"engine", "status", "--socket", socket}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "no engine runs on "+socket) {
		t.Errorf("status with no engine: exit %d, %q", code, stderr.String())
	}

	ln, release, err := engine.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&engine.Server{Completer: echo{}, Model: "/models/m", Weights: "Q8_0×25", Queue: 3}).Serve(ctx, ln)
	}()
	defer func() { stop(); <-done }()
	c, err := engine.Connect(ctx, engine.Options{Model: "/models/m", Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Complete(ctx, infill.Request{Prefix: "x"}); err != nil {
		t.Fatal(err)
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(ctx, []string{"engine", "status", "--socket", socket}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"model     /models/m", "weights   Q8_0×25", "clients   1", "limit 3", "1 served", "latency   p50 ", "MiB resident"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := run(ctx, []string{"engine", "status", "--json", "--socket", socket}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var st engine.Status
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil || st.Served != 1 || st.Model != "/models/m" {
		t.Errorf("status --json: %+v, %v\n%s", st, err, stdout.String())
	}
}

func TestEngineFlags(t *testing.T) {
	for _, args := range [][]string{
		{"engine", "--idle", "-1s"},
		{"engine", "--queue", "0"},
		{"engine", "extra"},
		{"engine", "status", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

// TestEngineProcess starts the shared engine as serve does (a detached
// child of this binary, with the embedded model), completes through it,
// asks for its status, and stops it with SIGTERM.
func TestEngineProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the embedded model in a child process")
	}
	dir, err := os.MkdirTemp("", "ie") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("XDG_RUNTIME_DIR", dir)

	ctx := context.Background()
	o := engineOptions{Device: "cpu"}
	c, err := engine.Connect(ctx, engine.Options{Args: append(engineArgs(o), "--idle=5m")})
	if err != nil {
		if strings.Contains(err.Error(), "embedded default model") {
			t.Skipf("the embedded model does not load here: %v", err)
		}
		t.Fatal(err)
	}
	defer c.Close()
	st, err := engine.QueryStatus(ctx, c.Socket())
	if err != nil {
		t.Fatal(err)
	}
	pid := st.PID
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // should the test fail before SIGTERM
	if pid == os.Getpid() || st.Model != "" {
		t.Fatalf("status of the child: %+v", st)
	}
	if fi, err := os.Lstat(c.Socket()); err != nil || fi.Mode().Perm() != 0o600 || filepath.Dir(c.Socket()) != dir {
		t.Errorf("socket %s: %v %v", c.Socket(), fi.Mode(), err)
	}

	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := c.Complete(cctx, infill.Request{Prefix: "def add(a, b):\n    return ", Suffix: "\n", MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Figures.NFE == 0 {
		t.Errorf("the engine's result has no forward passes: %+v", res)
	}

	// A second client, as a second editor window, shares the process.
	c2, err := engine.Connect(ctx, engine.Options{Args: append(engineArgs(o), "--idle=5m")})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"engine", "status", "--socket", c.Socket()}, &stdout, &stderr); code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr.String())
	}
	if s := stdout.String(); !strings.Contains(s, "clients   2") || !strings.Contains(s, "1 served") {
		t.Errorf("status:\n%s", s)
	}

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := os.Lstat(c.Socket()); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if i == 10000 {
			t.Fatal("the engine did not remove its socket on SIGTERM")
		}
		time.Sleep(time.Millisecond)
	}
	stderr.Reset()
	if code := run(ctx, []string{"engine", "status", "--socket", c.Socket()}, &stdout, &stderr); code != 1 {
		t.Errorf("status after SIGTERM: exit %d", code)
	}
}

// TestSharedCompleterFallsBack loads in-process when the engine cannot
// start (here: the child exits at once with an error).
func TestSharedCompleterFallsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the embedded model")
	}
	dir, err := os.MkdirTemp("", "ie")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("XDG_RUNTIME_DIR", dir)
	t.Setenv(failEngine, "1")
	var logs bytes.Buffer
	c, err := sharedCompleter(context.Background(), engineOptions{Device: "cpu"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		if strings.Contains(err.Error(), "embedded default model") {
			t.Skipf("the embedded model does not load here: %v", err)
		}
		t.Fatal(err)
	}
	if _, ok := c.(*infill.Engine); !ok {
		t.Errorf("fallback completer is a %T, want the in-process *infill.Engine", c)
	}
	if l := logs.String(); !strings.Contains(l, "no shared engine") || !strings.Contains(l, "exited before it answered") || !strings.Contains(l, "this engine fails to start") {
		t.Errorf("fallback log: %s", logs.String())
	}
}

// BenchmarkSharedEngine compares one completion with the embedded model in
// this process ("in-process") and through the shared engine process
// ("engine"); the ratio of their ns/op is what the socket costs.
func BenchmarkSharedEngine(b *testing.B) {
	ctx := context.Background()
	req := infill.Request{Prefix: "def add(a, b):\n    return ", Suffix: "\n\nprint(add(1, 2))\n", MaxTokens: 8}
	b.Run("in-process", func(b *testing.B) {
		eng, err := loadEngine(ctx, engineOptions{Device: "cpu"})
		if err != nil {
			b.Skip(err)
		}
		for b.Loop() {
			if _, err := eng.Complete(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("engine", func(b *testing.B) {
		dir, err := os.MkdirTemp("", "ie")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		b.Setenv("XDG_RUNTIME_DIR", dir)
		c, err := engine.Connect(ctx, engine.Options{Args: []string{"--device=cpu"}})
		if err != nil {
			b.Skip(err)
		}
		defer c.Close()
		st, err := engine.QueryStatus(ctx, c.Socket())
		if err != nil {
			b.Fatal(err)
		}
		defer syscall.Kill(st.PID, syscall.SIGTERM)
		for b.Loop() {
			if _, err := c.Complete(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
