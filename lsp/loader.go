package lsp

import (
	"context"
	"io"
	"os"
	"sync"

	"github.com/infuse-lsp/infuse/infill"
)

// Stdio returns standard input and output as one connection, for Serve.
func Stdio() io.ReadWriteCloser {
	return stdio{in: stdin(), out: os.Stdout}
}

type stdio struct {
	in  *os.File
	out *os.File
}

func (s stdio) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s stdio) Write(p []byte) (int, error) { return s.out.Write(p) }

// Close closes standard input only: that is what ends a pending read, and
// standard output may still carry the last response being flushed.
func (s stdio) Close() error { return s.in.Close() }

// ShareLoader returns a Loader that loads each model and device once and
// gives the same completer to every session that asks, so that the editor
// windows served by one "infuse serve --listen" share one model in memory. A
// load runs under the context of the session that started it; if it fails,
// nothing is kept, and the next session to ask (or one still waiting, whose
// own context is live) tries again.
func ShareLoader(load Loader) Loader {
	type key struct{ model, device string }
	type entry struct {
		done chan struct{}
		c    infill.Completer
		err  error
	}
	var mu sync.Mutex
	loads := make(map[key]*entry)
	return func(ctx context.Context, model, device string) (infill.Completer, error) {
		k := key{model, device}
		for {
			mu.Lock()
			e, ok := loads[k]
			if !ok {
				e = &entry{done: make(chan struct{})}
				loads[k] = e
				mu.Unlock()
				e.c, e.err = load(ctx, model, device)
				if e.err != nil {
					mu.Lock()
					delete(loads, k)
					mu.Unlock()
				}
				close(e.done)
				return e.c, e.err
			}
			mu.Unlock()
			select {
			case <-e.done:
				if e.err == nil {
					return e.c, nil
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				// The load failed under another session's context: try again
				// under ours.
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}
