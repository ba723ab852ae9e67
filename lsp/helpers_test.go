package lsp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

// testTimeout bounds how long a test waits for the server before it fails
// instead of hanging. It never decides a pass.
const testTimeout = 20 * time.Second

// fakeCompleter is the test's model: it records each request and answers
// with fn, or by default "fill()" on one line and "fill()\nmore()" on two.
type fakeCompleter struct {
	mu   sync.Mutex
	reqs []infill.Request
	fn   func(ctx context.Context, req infill.Request) (infill.Result, error)
}

func (f *fakeCompleter) Complete(ctx context.Context, req infill.Request) (infill.Result, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	fn := f.fn
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, req)
	}
	if req.Mode == infill.MultiLine {
		return infill.Result{Text: "fill()\nmore()"}, nil
	}
	return infill.Result{Text: "fill()"}, nil
}

func (f *fakeCompleter) requests() []infill.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]infill.Request(nil), f.reqs...)
}

// gate makes a completer function that reports each call on started and
// then waits for release (or for its context to end).
type gate struct {
	started chan infill.Request
	release chan infill.Result
}

func newGate() *gate {
	return &gate{started: make(chan infill.Request, 16), release: make(chan infill.Result, 16)}
}

func (g *gate) complete(ctx context.Context, req infill.Request) (infill.Result, error) {
	g.started <- req
	select {
	case r := <-g.release:
		return r, nil
	case <-ctx.Done():
		return infill.Result{}, ctx.Err()
	}
}

func (g *gate) waitStarted(t testing.TB) infill.Request {
	t.Helper()
	select {
	case r := <-g.started:
		return r
	case <-time.After(testTimeout):
		t.Fatal("the completer was never called")
		return infill.Request{}
	}
}

// testConfig is DefaultConfig without the debounce, so that tests don't wait.
func testConfig() Config {
	c := DefaultConfig()
	c.Debounce = 0
	return c
}

func loaderOf(c infill.Completer) Loader {
	return func(context.Context, string, string) (infill.Completer, error) { return c, nil }
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// checkGoroutines fails the test if goroutines started during it are still
// running when it ends (after every other cleanup). Goroutines take a moment
// to finish after they are signalled, so it polls for a while first.
func checkGoroutines(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines before the test, %d after:\n%s", before, n, buf)
		}
	})
}

// wireMsg is any JSON-RPC message as the test client sees it.
type wireMsg struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
	raw    []byte
}

type wireError struct {
	Code    int64  `json:"code"`
	Message string `json:"message"`
}

func (e *wireError) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// testClient is a minimal LSP client over a pipe, written independently of
// the server's framing (it reads headers with net/textproto). It answers
// the server's own requests with answer, and queues notifications.
type testClient struct {
	t    testing.TB
	conn net.Conn

	wmu    sync.Mutex
	nextID int

	mu      sync.Mutex
	pending map[string]chan *wireMsg

	notes      chan *wireMsg // server notifications, in order
	serverReqs chan *wireMsg // server requests, after they were answered
	answer     func(m *wireMsg) (any, *wireError)

	readerDone chan struct{}

	srv      *Server
	finished chan struct{} // closed when Serve returns
	serveErr error
}

// startSession runs a Server with opts over a pipe and returns a client
// connected to it. Cleanup closes the pipe, waits for Serve and checks that
// no goroutine is left behind.
func startSession(t testing.TB, opts Options) *testClient {
	t.Helper()
	checkGoroutines(t)
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	srvEnd, cliEnd := net.Pipe()
	srv := New(opts)
	c := &testClient{
		t:          t,
		conn:       cliEnd,
		srv:        srv,
		pending:    make(map[string]chan *wireMsg),
		notes:      make(chan *wireMsg, 1024),
		serverReqs: make(chan *wireMsg, 1024),
		readerDone: make(chan struct{}),
		finished:   make(chan struct{}),
	}
	go func() {
		c.serveErr = srv.Serve(context.Background(), srvEnd)
		close(c.finished)
	}()
	go c.read()
	t.Cleanup(func() {
		cliEnd.Close()
		select {
		case <-c.finished:
		case <-time.After(testTimeout):
			t.Error("Serve did not return after the connection closed")
		}
		<-c.readerDone
	})
	return c
}

// served waits for Serve to return and returns its result.
func (c *testClient) served() error {
	c.t.Helper()
	select {
	case <-c.finished:
		return c.serveErr
	case <-time.After(testTimeout):
		c.t.Fatal("Serve did not return")
		return nil
	}
}

func (c *testClient) read() {
	defer close(c.readerDone)
	r := textproto.NewReader(bufio.NewReader(c.conn))
	for {
		h, err := r.ReadMIMEHeader()
		if err != nil {
			return
		}
		n, err := strconv.Atoi(h.Get("Content-Length"))
		if err != nil {
			c.t.Errorf("server sent a bad Content-Length %q", h.Get("Content-Length"))
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r.R, body); err != nil {
			return
		}
		m := &wireMsg{raw: body}
		if err := json.Unmarshal(body, m); err != nil {
			c.t.Errorf("server sent invalid JSON %q: %v", body, err)
			return
		}
		switch {
		case m.Method != "" && m.ID != nil:
			var result any
			var rerr *wireError
			if c.answer != nil {
				result, rerr = c.answer(m)
			}
			resp := map[string]any{"jsonrpc": "2.0", "id": m.ID}
			if rerr != nil {
				resp["error"] = rerr
			} else {
				resp["result"] = result
			}
			c.serverReqs <- m
			c.writeJSON(resp)
		case m.Method != "":
			c.notes <- m
		default:
			c.mu.Lock()
			ch := c.pending[string(m.ID)]
			delete(c.pending, string(m.ID))
			c.mu.Unlock()
			if ch == nil {
				c.t.Errorf("response to no request: %s", body)
				continue
			}
			ch <- m
		}
	}
}

func (c *testClient) writeJSON(v any) {
	body, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("marshal: %v", err)
	}
	c.writeRaw(body)
}

// writeRaw sends body as one frame; a failure to write is left to the test's
// wait for a response to report.
func (c *testClient) writeRaw(body []byte) {
	c.writeFrame([]byte(fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)))
}

func (c *testClient) writeFrame(frame []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := c.conn.Write(frame); err != nil {
		c.t.Logf("write: %v", err)
	}
}

// expect registers interest in the response with id (its JSON text).
func (c *testClient) expect(id string) chan *wireMsg {
	ch := make(chan *wireMsg, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	return ch
}

// send sends a request and returns the channel its response arrives on.
func (c *testClient) send(method string, params any) chan *wireMsg {
	c.wmu.Lock()
	c.nextID++
	id := c.nextID
	c.wmu.Unlock()
	ch := c.expect(strconv.Itoa(id))
	c.writeJSON(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	return ch
}

// sendID is send with a chosen id, for $/cancelRequest.
func (c *testClient) sendID(id int, method string, params any) chan *wireMsg {
	ch := c.expect(strconv.Itoa(id))
	c.writeJSON(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	return ch
}

func (c *testClient) wait(ch chan *wireMsg) *wireMsg {
	c.t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(testTimeout):
		c.t.Fatal("no response from the server")
		return nil
	}
}

// call sends a request, waits for its response and decodes the result into
// result (if not nil). It returns the response's error object, if any.
func (c *testClient) call(method string, params, result any) *wireError {
	c.t.Helper()
	m := c.wait(c.send(method, params))
	if m.Error != nil {
		return m.Error
	}
	if result != nil {
		if err := json.Unmarshal(m.Result, result); err != nil {
			c.t.Fatalf("%s: decode result %s: %v", method, m.Result, err)
		}
	}
	return nil
}

// mustCall is call that fails the test on an error response.
func (c *testClient) mustCall(method string, params, result any) {
	c.t.Helper()
	if err := c.call(method, params, result); err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
}

func (c *testClient) notify(method string, params any) {
	c.writeJSON(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

// note waits for the next server notification.
func (c *testClient) note() *wireMsg {
	c.t.Helper()
	select {
	case m := <-c.notes:
		return m
	case <-time.After(testTimeout):
		c.t.Fatal("no notification from the server")
		return nil
	}
}

// noNote checks that no notification is queued (the server sends them in
// order with responses, so a response received after the point where a
// notification would have been sent proves there was none).
func (c *testClient) noNote() {
	c.t.Helper()
	select {
	case m := <-c.notes:
		c.t.Errorf("unexpected notification %s", m.raw)
	default:
	}
}

// initialize performs the handshake with the given capabilities and
// initializationOptions.
func (c *testClient) initialize(caps, initOptions any) map[string]any {
	c.t.Helper()
	if caps == nil {
		caps = map[string]any{}
	}
	params := map[string]any{"processId": nil, "rootUri": nil, "capabilities": caps}
	if initOptions != nil {
		params["initializationOptions"] = initOptions
	}
	var result map[string]any
	c.mustCall("initialize", params, &result)
	c.notify("initialized", map[string]any{})
	return result
}

func (c *testClient) open(uri, lang, text string) {
	c.notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": lang, "version": 1, "text": text,
	}})
}

func pos(line, char int) map[string]any { return map[string]any{"line": line, "character": char} }

func rng(l1, c1, l2, c2 int) map[string]any {
	return map[string]any{"start": pos(l1, c1), "end": pos(l2, c2)}
}

func inlineParams(uri string, line, char, trigger int) map[string]any {
	return map[string]any{
		"textDocument": map[string]any{"uri": uri},
		"position":     pos(line, char),
		"context":      map[string]any{"triggerKind": trigger},
	}
}

// inlineList is the decoded result of textDocument/inlineCompletion.
type inlineList struct {
	Items []struct {
		InsertText string         `json:"insertText"`
		Range      map[string]any `json:"range"`
	} `json:"items"`
}

func (l inlineList) texts() []string {
	var out []string
	for _, it := range l.Items {
		out = append(out, it.InsertText)
	}
	return out
}

// shutdownExit ends the session properly and returns Serve's result.
func (c *testClient) shutdownExit() error {
	c.t.Helper()
	c.mustCall("shutdown", nil, nil)
	c.notify("exit", nil)
	return c.served()
}

func timeoutC() <-chan time.Time { return time.After(testTimeout) }

func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}
