package lsp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/infuse-lsp/infuse/infill"
)

// engine holds the session's completer, which is loaded in the background
// (see startLoad) so that initialize answers at once and the first completion
// does not pay for reading the model.
type engine struct {
	mu  sync.Mutex
	cur *load
}

// A load is one call of the Loader.
type load struct {
	model, device string
	engine        Engine
	seq           int
	cancel        context.CancelFunc

	done      chan struct{} // closed when the fields below are set
	completer infill.Completer
	err       error
	took      time.Duration

	progress atomic.Bool // a progress report has been started for it
	reported atomic.Bool // its failure has been shown to the user
}

// errNoEngine is returned while no load has been started (before
// initialize).
var errNoEngine = errors.New("no model loaded")

// current returns the latest load, or nil.
func (e *engine) current() *load {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur
}

// get waits for the latest load to finish and returns its completer.
func (e *engine) get(ctx context.Context) (infill.Completer, error) {
	l := e.current()
	if l == nil {
		return nil, errNoEngine
	}
	select {
	case <-l.done:
		return l.completer, l.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// startLoad loads the model cfg names in the background, unless the current
// load is for the same model and device already. A load for another model is
// cancelled: its completer would never be used.
func (s *Server) startLoad(cfg Config) {
	s.engine.mu.Lock()
	old := s.engine.cur
	if old != nil && old.model == cfg.Model && old.device == cfg.Device && old.engine == cfg.Engine {
		s.engine.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	l := &load{model: cfg.Model, device: cfg.Device, engine: cfg.Engine, cancel: cancel, done: make(chan struct{})}
	if old != nil {
		l.seq = old.seq + 1
		old.cancel()
	}
	s.engine.cur = l
	s.engine.mu.Unlock()

	s.goBackground("load model", func() {
		defer cancel()
		start := time.Now()
		var c infill.Completer
		var err error
		switch {
		case !l.engine.Remote():
			c, err = s.opts.Load(ctx, l.model, l.device)
		case s.opts.LoadEngine == nil:
			err = fmt.Errorf("engine %q: this server runs only the in-process model", l.engine.Kind)
		default:
			c, err = s.opts.LoadEngine(ctx, l.engine)
		}
		if err == nil && c == nil {
			err = errors.New("the loader returned no completer")
		}
		l.completer, l.err, l.took = c, err, time.Since(start)
		close(l.done)
		if err != nil {
			s.log.Error("lsp: model load failed", "model", l.model, "device", l.device, "err", err)
		} else {
			s.log.Info("lsp: model loaded", "model", l.model, "device", l.device, "took", l.took)
		}
		s.mu.Lock()
		initialized := s.initialized
		s.mu.Unlock()
		if initialized {
			s.reportLoad(l)
		}
	})
}

// reportLoad shows the user how load l goes, once the client may hear it
// (after initialized): a progress report while it runs, if the client
// supports window/workDoneProgress, and a message if it failed. Each is done
// at most once per load.
func (s *Server) reportLoad(l *load) {
	if l == nil {
		return
	}
	select {
	case <-l.done:
		s.reportLoadFailure(l)
		return
	default:
	}
	if !s.capabilities().workDoneProgress || !l.progress.CompareAndSwap(false, true) {
		return
	}
	s.goBackground("load progress", func() {
		token := protocol.String(fmt.Sprintf("infuse/load/%d", l.seq))
		// window/workDoneProgress/create is a request: this goroutine is
		// off the read loop, so the client's answer can be read.
		if _, err := s.conn.Call(s.ctx, protocol.MethodWindowWorkDoneProgressCreate,
			&protocol.WorkDoneProgressCreateParams{Token: token}, nil); err != nil {
			var rpcErr *jsonrpc2.Error
			if !errors.As(err, &rpcErr) || s.ctx.Err() != nil {
				return
			}
			s.log.Debug("lsp: client refused a progress token", "err", err)
			<-l.done
			s.reportLoadFailure(l)
			return
		}
		what := l.model
		if what == "" {
			what = "default model"
		}
		s.progress(token, &protocol.WorkDoneProgressBegin{Kind: "begin", Title: "infuse: loading model", Message: &what})
		select {
		case <-l.done:
		case <-s.ctx.Done():
			return
		}
		msg := fmt.Sprintf("ready in %.1fs", l.took.Seconds())
		if l.err != nil {
			msg = "failed"
		}
		s.progress(token, &protocol.WorkDoneProgressEnd{Kind: "end", Message: &msg})
		s.reportLoadFailure(l)
	})
}

// reportLoadFailure shows a finished load's failure, once, unless a newer
// load has replaced it (then its cancellation is no news).
func (s *Server) reportLoadFailure(l *load) {
	if l.err == nil || s.engine.current() != l || !l.reported.CompareAndSwap(false, true) {
		return
	}
	what := "the default model"
	if l.model != "" {
		what = fmt.Sprintf("model %q", l.model)
	}
	s.showMessage(protocol.MessageTypeError,
		"infuse: cannot load %s: %v. Completions are off until the configuration names a model that loads.", what, l.err)
}

func (s *Server) progress(token protocol.ProgressToken, value any) {
	raw, err := protocol.Marshal(value)
	if err != nil {
		s.log.Error("lsp: encode progress", "err", err)
		return
	}
	s.notify(protocol.MethodProgress, &protocol.ProgressParams{Token: token, Value: raw})
}
