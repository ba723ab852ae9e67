// Package lsp is infuse's language server: inline and classic completion
// over LSP 3.18, backed by an [infill.Completer]. Call [New] for a session
// and [Server.Serve] to run it over a connection.
package lsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sourcegraph/conc"
	"github.com/sourcegraph/conc/panics"
	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/infuse-lsp/infuse/infill"
)

// A Loader returns the completer for a model and device ("" means the
// engine's default for either). Loading may take seconds; the server calls
// it in the background and cancels ctx when the session ends or the
// configuration names another model. The server never closes a completer:
// whoever owns the Loader does (one completer may serve many sessions).
type Loader func(ctx context.Context, model, device string) (infill.Completer, error)

// Options configure a session.
type Options struct {
	// Load obtains the completer. Required.
	Load Loader
	// LoadEngine obtains the completer for a serving engine, when
	// Config.Engine names one. Nil: such a configuration fails to load,
	// with a message.
	LoadEngine func(ctx context.Context, e Engine) (infill.Completer, error)
	// Config is the configuration before the client's settings apply:
	// DefaultConfig() with whatever the command line changed.
	Config Config
	// Logger receives the session's log; nil means slog.Default(). Never
	// stdout: on stdio, stdout is the protocol.
	Logger *slog.Logger
	// Version is reported in serverInfo.
	Version string
	// Tap, if set, sees every message body read and written.
	Tap Tap
}

// ErrExitWithoutShutdown is returned by Serve when the client sent exit
// without shutdown first; the specification asks for exit code 1.
var ErrExitWithoutShutdown = errors.New("exit without shutdown")

// errSessionOver is the cause of the session context's end.
var errSessionOver = errors.New("session over")

// lifecycle is where a session is between initialize and exit.
type lifecycle int

const (
	uninitialized lifecycle = iota // before initialize: requests get ServerNotInitialized
	running                        // initialize answered
	shutDown                       // shutdown answered: requests get InvalidRequest
)

// Server is one LSP session. Its zero value is not usable; call New.
type Server struct {
	opts  Options
	log   *slog.Logger
	docs  *store
	sched *scheduler
	cache *typeThrough
	stats counters

	// bg owns every goroutine the session starts (model loads, progress
	// reports, completer calls); Serve joins it before returning.
	bg conc.WaitGroup

	// Set by Serve before the first message is read.
	ctx      context.Context // ends when the session does
	conn     jsonrpc2.Conn
	exited   chan struct{} // closed by the exit notification
	exitOnce sync.Once

	engine engine
	recent recentSpots // where the user worked lately, for context from other files (extra.go)

	callsMu   sync.Mutex
	calls     map[jsonrpc2.ID]context.CancelFunc // requests being handled, for $/cancelRequest
	unwritten map[jsonrpc2.ID]struct{}           // requests whose response is not written yet
	written   chan struct{}                      // a response was written (capacity 1)

	mu                  sync.Mutex // guards the fields below
	state               lifecycle
	enc                 Encoding
	caps                clientCaps
	cfg                 Config // in force
	initCfg             Config // Options.Config with initializationOptions applied
	initialized         bool   // the initialized notification came
	exitWithoutShutdown bool
}

// clientCaps are the client capabilities the server acts on.
type clientCaps struct {
	workDoneProgress  bool // window.workDoneProgress
	configuration     bool // workspace.configuration
	documentChanges   bool // workspace.workspaceEdit.documentChanges
	resolveEdit       bool // codeAction.resolveSupport lists "edit"
	codeActionLiteral bool // codeAction.codeActionLiteralSupport
}

// New returns a session. It panics if opts.Load is nil: that is a
// programming error, not input.
func New(opts Options) *Server {
	if opts.Load == nil {
		panic("lsp.New: Options.Load is nil")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{
		opts:      opts,
		log:       log,
		docs:      newStore(),
		sched:     newScheduler(),
		cache:     newTypeThrough(),
		exited:    make(chan struct{}),
		calls:     make(map[jsonrpc2.ID]context.CancelFunc),
		unwritten: make(map[jsonrpc2.ID]struct{}),
		written:   make(chan struct{}, 1),
		cfg:       opts.Config,
	}
}

// Serve runs the session over rwc until the client sends exit, the
// connection ends, or ctx is done. It returns once every goroutine the
// session started has returned: nil after shutdown and exit or at the end of
// input, ErrExitWithoutShutdown after an exit that skipped shutdown. A Server
// serves one connection once.
func (s *Server) Serve(ctx context.Context, rwc io.ReadWriteCloser) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errSessionOver)
	s.ctx = ctx
	st := newStream(rwc, s.opts.Tap)
	st.answered = s.answered
	st.atEOF = func() { s.waitAnswered(nil) }
	s.conn = jsonrpc2.NewConn(st, jsonrpc2.WithCodec(codec{}))
	s.conn.Go(ctx, s.handle)

	select {
	case <-s.conn.Done():
	case <-s.exited:
	case <-ctx.Done():
	}
	cancel(errSessionOver) // ends every request, load and completer call
	s.sched.stopAll(errSessionOver)
	// The connection drops what is written once it is closing, so let the
	// requests still being answered (a client may send exit without waiting
	// for them) write their answers first.
	s.waitAnswered(s.conn.Done())
	closeErr := s.conn.Close()
	s.bg.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.exitWithoutShutdown:
		return ErrExitWithoutShutdown
	case closeErr != nil && !isClosedErr(closeErr):
		return fmt.Errorf("close connection: %w", closeErr)
	}
	if err := s.conn.Err(); err != nil && !isClosedErr(err) {
		return fmt.Errorf("connection: %w", err)
	}
	return nil
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe)
}

// Stats returns the session's completion counters so far.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// goBackground runs f on a goroutine owned by the session. A panic in f is logged and
// swallowed: a bug in one piece of background work must not take the
// session down (a language server is a process the user does not control).
func (s *Server) goBackground(what string, f func()) {
	s.bg.Go(func() {
		var pc panics.Catcher
		pc.Try(f)
		if r := pc.Recovered(); r != nil {
			s.log.Error("lsp: background work panicked", "what", what, "panic", r.Value, "stack", string(r.Stack))
		}
	})
}

// requestHandler answers one kind of request. It may call release(ctx)
// once to let later messages be read while it works; everything it needs
// from req must be decoded before then.
type requestHandler func(s *Server, ctx context.Context, req *jsonrpc2.Request) (any, error)

var requestHandlers map[string]requestHandler

// notificationHandlers run in order on the connection's read loop; they must
// not block.
var notificationHandlers map[string]func(s *Server, ctx context.Context, params jsonrpc2.RawMessage)

func init() {
	requestHandlers = map[string]requestHandler{
		protocol.MethodInitialize:                   (*Server).initialize,
		protocol.MethodShutdown:                     (*Server).shutdown,
		protocol.MethodTextDocumentInlineCompletion: (*Server).inlineCompletion,
		protocol.MethodTextDocumentCompletion:       (*Server).completion,
		protocol.MethodTextDocumentCodeAction:       (*Server).codeAction,
		protocol.MethodCodeActionResolve:            (*Server).codeActionResolve,
		methodStats:                                 (*Server).statsRequest,
	}
	notificationHandlers = map[string]func(*Server, context.Context, jsonrpc2.RawMessage){
		protocol.MethodInitialized:                     (*Server).didInitialize,
		protocol.MethodExit:                            (*Server).exit,
		protocol.MethodTextDocumentDidOpen:             (*Server).didOpen,
		protocol.MethodTextDocumentDidChange:           (*Server).didChange,
		protocol.MethodTextDocumentDidClose:            (*Server).didClose,
		protocol.MethodWorkspaceDidChangeConfiguration: (*Server).didChangeConfiguration,
		protocol.MethodCancelRequest:                   (*Server).cancelRequest,
	}
}

// methodStats is infuse's own request for the session's Stats.
const methodStats = "infuse/stats"

// handle is the connection's handler: the lifecycle gate, then dispatch.
//
// The context jsonrpc2 passes in belongs to a pooled request that is
// recycled when a synchronous handler returns; a context derived from it
// can outlive it (context.WithCancel watches its parent on a goroutine) and
// read it after recycling. So the work of a request runs under a context of
// the session's own, which $/cancelRequest cancels, and the jsonrpc2 one is
// kept only to call jsonrpc2.Async with (see release).
func (s *Server) handle(rpcCtx context.Context, req *jsonrpc2.Request) (result any, err error) {
	method := req.Method()
	if !req.IsCall() {
		// A notification handler must not return an error: the connection
		// would take it as fatal. Problems are logged instead.
		s.notification(rpcCtx, method, req.Params())
		return nil, nil
	}
	id := req.ID()
	s.callsMu.Lock()
	s.unwritten[id] = struct{}{}
	s.callsMu.Unlock()
	if err := s.admit(method); err != nil {
		return nil, err
	}
	h, ok := requestHandlers[method]
	if !ok {
		return nil, jsonrpc2.Errorf(jsonrpc2.MethodNotFound, "method not found: %q", method)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ctx = context.WithValue(ctx, releaseKey{}, rpcCtx)
	s.callsMu.Lock()
	s.calls[id] = cancel
	s.callsMu.Unlock()
	defer func() {
		s.callsMu.Lock()
		delete(s.calls, id)
		s.callsMu.Unlock()
		cancel()
	}()

	var pc panics.Catcher
	pc.Try(func() { result, err = h(s, ctx, req) })
	if r := pc.Recovered(); r != nil {
		s.log.Error("lsp: request handler panicked", "method", method, "panic", r.Value, "stack", string(r.Stack))
		return nil, jsonrpc2.Errorf(jsonrpc2.InternalError, "internal error in %s: %v", method, r.Value)
	}
	return result, err
}

// answered is told by the stream that the response to id was written.
func (s *Server) answered(id jsonrpc2.ID) {
	s.callsMu.Lock()
	delete(s.unwritten, id)
	s.callsMu.Unlock()
	select {
	case s.written <- struct{}{}:
	default:
	}
}

// waitAnswered waits until every request received has had its response
// written, the connection is done, or a few seconds have passed (the
// requests' contexts are cancelled by then, so they end at once unless
// something is broken).
func (s *Server) waitAnswered(connDone <-chan struct{}) {
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	for {
		s.callsMu.Lock()
		n := len(s.unwritten)
		s.callsMu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-s.written:
		case <-connDone:
			return
		case <-t.C:
			s.log.Warn("lsp: session ended with requests unanswered", "count", n)
			return
		}
	}
}

type releaseKey struct{}

// release lets the connection read the messages after this request while
// the request goes on working; call it at most once per request, after
// everything needed from the request's params has been decoded. Requests
// are otherwise handled one at a time, in order with the notifications.
func release(ctx context.Context) {
	if rpcCtx, ok := ctx.Value(releaseKey{}).(context.Context); ok {
		jsonrpc2.Async(rpcCtx)
	}
}

// admit applies the lifecycle rules to a request.
func (s *Server) admit(method string) error {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	switch {
	case state == uninitialized && method != protocol.MethodInitialize:
		return jsonrpc2.Errorf(jsonrpc2.ServerNotInitialized, "%s before initialize", method)
	case state == running && method == protocol.MethodInitialize:
		return jsonrpc2.Errorf(jsonrpc2.InvalidRequest, "initialize sent twice")
	case state == shutDown:
		return jsonrpc2.Errorf(jsonrpc2.InvalidRequest, "%s after shutdown", method)
	}
	return nil
}

func (s *Server) notification(ctx context.Context, method string, params jsonrpc2.RawMessage) {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	if method != protocol.MethodExit && state != running {
		return // the specification: notifications before initialize and after shutdown are dropped
	}
	h, ok := notificationHandlers[method]
	if !ok {
		if len(method) < 2 || method[:2] != "$/" {
			s.log.Debug("lsp: ignoring notification", "method", method)
		}
		return
	}
	var pc panics.Catcher
	pc.Try(func() { h(s, ctx, params) })
	if r := pc.Recovered(); r != nil {
		s.log.Error("lsp: notification handler panicked", "method", method, "panic", r.Value, "stack", string(r.Stack))
	}
}

// decodeParams decodes a message's params into v, or returns the
// InvalidParams error that names what was wrong.
func decodeParams(method string, params jsonrpc2.RawMessage, v any) error {
	if len(params) == 0 {
		return jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s: params missing", method)
	}
	if err := protocol.Unmarshal(params, v); err != nil {
		return jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s: %v", method, err)
	}
	return nil
}

// encoding returns the session's position encoding.
func (s *Server) encoding() Encoding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enc
}

// config returns the session's configuration.
func (s *Server) config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// capabilities returns what the client said it can do.
func (s *Server) capabilities() clientCaps {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caps
}

func (s *Server) cancelRequest(_ context.Context, params jsonrpc2.RawMessage) {
	var p protocol.CancelParams
	if err := decodeParams(protocol.MethodCancelRequest, params, &p); err != nil {
		s.log.Warn("lsp: bad $/cancelRequest", "err", err)
		return
	}
	var id jsonrpc2.ID
	switch v := p.ID.(type) {
	case protocol.Integer:
		id = jsonrpc2.NewNumberID(int64(v))
	case protocol.String:
		id = jsonrpc2.NewStringID(string(v))
	default:
		return
	}
	s.callsMu.Lock()
	cancel := s.calls[id]
	s.callsMu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (s *Server) statsRequest(_ context.Context, _ *jsonrpc2.Request) (any, error) {
	st := s.stats.snapshot()
	return &st, nil
}

// notify sends a notification, logging a failure: the client may be gone,
// and there is nobody else to tell.
func (s *Server) notify(method string, params any) {
	if err := s.conn.Notify(s.ctx, method, params); err != nil && s.ctx.Err() == nil {
		s.log.Warn("lsp: notification not sent", "method", method, "err", err)
	}
}

// showMessage tells the user something through the client.
func (s *Server) showMessage(typ protocol.MessageType, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.log.Info("lsp: "+msg, "type", typ)
	s.notify(protocol.MethodWindowShowMessage, &protocol.ShowMessageParams{Type: typ, Message: msg})
}

// codec encodes payloads with go.lsp.dev/protocol's union-aware JSON, so
// that protocol types with "or" fields round-trip.
type codec struct{}

func (codec) Marshal(v any) ([]byte, error) {
	if raw, ok := v.(jsonrpc2.RawMessage); ok {
		if raw == nil {
			return []byte("null"), nil
		}
		return raw, nil
	}
	return protocol.Marshal(v)
}

func (codec) Unmarshal(data []byte, v any) error {
	if raw, ok := v.(*jsonrpc2.RawMessage); ok {
		*raw = append(jsonrpc2.RawMessage(nil), data...)
		return nil
	}
	return protocol.Unmarshal(data, v)
}
