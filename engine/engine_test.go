//go:build !windows

package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

const testModel = "/models/fake"

// fake is the completer behind the test engine. A prefix that starts with
// "block" waits until gate is closed or its context ends; "panic" panics;
// "fail" fails. It records what it ran and what was cancelled under it.
type fake struct {
	gate     chan struct{}
	started  chan string // each prefix as its run starts
	canceled chan string // each blocking prefix whose context ended

	mu   sync.Mutex
	runs map[string]int
}

func newFake() *fake {
	return &fake{gate: make(chan struct{}), started: make(chan string, 1000), canceled: make(chan string, 1000), runs: map[string]int{}}
}

func (f *fake) Complete(ctx context.Context, req infill.Request) (infill.Result, error) {
	f.mu.Lock()
	f.runs[req.Prefix]++
	f.mu.Unlock()
	f.started <- req.Prefix
	switch {
	case strings.HasPrefix(req.Prefix, "block"):
		select {
		case <-f.gate:
		case <-ctx.Done():
			f.canceled <- req.Prefix
			return infill.Result{}, ctx.Err()
		}
	case strings.HasPrefix(req.Prefix, "panic"):
		panic("fake completer told to panic")
	case strings.HasPrefix(req.Prefix, "fail"):
		return infill.Result{}, errors.New("fake failure")
	}
	return infill.Result{Text: "middle of " + req.Prefix + "|" + req.Suffix, Figures: infill.Figures{NFE: len(req.Prefix)}}, nil
}

func (f *fake) FillHoles(ctx context.Context, req infill.HolesRequest) (infill.HolesResult, error) {
	var r infill.HolesResult
	for i := range len(req.Parts) - 1 {
		r.Texts = append(r.Texts, req.Parts[i]+"+"+req.Parts[i+1])
	}
	return r, nil
}

func (f *fake) ran(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[prefix]
}

// completerOnly hides FillHoles.
type completerOnly struct{ infill.Completer }

// noLeaks fails the test if it leaves goroutines behind. Register it
// first, so that it runs after every other cleanup.
func noLeaks(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	})
}

// waitFor polls cond: the tests wait on state, never on a fixed sleep.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for range 10000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Fatalf("gave up waiting for %s; goroutines:\n%s", what, buf[:runtime.Stack(buf, true)])
}

// testEngine runs s on a socket in a temporary directory until the test
// ends. done gets Serve's result.
type testEngine struct {
	s      *Server
	socket string
	stop   context.CancelFunc
	done   chan error
}

func startEngine(t testing.TB, s *Server) *testEngine {
	t.Helper()
	if s.Model == "" {
		s.Model = testModel
	}
	e := &testEngine{s: s, socket: filepath.Join(t.TempDir(), "e.sock"), done: make(chan error, 1)}
	e.serve(t)
	return e
}

// serve (re)starts the engine on its socket.
func (e *testEngine) serve(t testing.TB) {
	t.Helper()
	ln, release, err := Listen(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	e.stop, e.done = stop, make(chan error, 1)
	done := e.done
	go func() {
		err := e.s.Serve(ctx, ln)
		release() // before done: a restart may follow at once
		done <- err
	}()
	t.Cleanup(func() {
		stop()
		<-done
	})
}

// shutdown stops the engine and waits for Serve to return.
func (e *testEngine) shutdown(t *testing.T) {
	t.Helper()
	e.stop()
	if err := <-e.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	e.done <- nil // for the cleanup
}

func noStart(context.Context) error { return errors.New("test: not starting an engine") }

func connect(t testing.TB, socket string) *Client {
	t.Helper()
	c, err := Connect(context.Background(), Options{Model: testModel, Socket: socket, Start: noStart})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn speaks the protocol by hand, to test what a Client never sends.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	sc *bufio.Scanner
}

func dialRaw(t *testing.T, socket string, hello message) *rawConn {
	t.Helper()
	nc, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &rawConn{t: t, nc: nc, sc: bufio.NewScanner(nc)}
	r.send(hello)
	return r
}

func (r *rawConn) send(m message) {
	r.t.Helper()
	if err := json.NewEncoder(r.nc).Encode(m); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) sendLine(s string) {
	r.t.Helper()
	if _, err := fmt.Fprintln(r.nc, s); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads one message; ok is false at the end of the connection.
func (r *rawConn) recv() (m message, ok bool) {
	r.t.Helper()
	if !r.sc.Scan() {
		return m, false
	}
	if err := json.Unmarshal(r.sc.Bytes(), &m); err != nil {
		r.t.Fatalf("bad line from the engine %q: %v", r.sc.Text(), err)
	}
	return m, true
}

func (r *rawConn) mustRecv() message {
	r.t.Helper()
	m, ok := r.recv()
	if !ok {
		r.t.Fatal("the engine closed the connection")
	}
	return m
}

var clientHello = message{Type: typeHello, Version: Version, Model: testModel}

func TestManyClients(t *testing.T) {
	noLeaks(t)
	f := newFake()
	e := startEngine(t, &Server{Completer: f, Queue: 100})
	const clients, each = 4, 12
	var wg sync.WaitGroup
	for i := range clients {
		c := connect(t, e.socket)
		for j := range each {
			wg.Go(func() {
				prefix := fmt.Sprintf("c%d-r%d", i, j)
				res, err := c.Complete(context.Background(), infill.Request{Prefix: prefix, Suffix: "s", Mode: infill.MultiLine})
				if err != nil {
					t.Errorf("%s: %v", prefix, err)
					return
				}
				if want := "middle of " + prefix + "|s"; res.Text != want || res.Figures.NFE != len(prefix) {
					t.Errorf("%s: got %q (nfe %d), want %q", prefix, res.Text, res.Figures.NFE, want)
				}
			})
		}
	}
	wg.Wait()
	for i := range clients {
		for j := range each {
			if n := f.ran(fmt.Sprintf("c%d-r%d", i, j)); n != 1 {
				t.Errorf("c%d-r%d ran %d times, want once", i, j, n)
			}
		}
	}
	st := e.s.Status()
	if st.Served != clients*each || st.Clients != clients || st.Queued != 0 || st.Running != 0 {
		t.Errorf("status after the run: %+v", st)
	}
	if st.P50 <= 0 || st.P99 < st.P50 || st.Recent != clients*each {
		t.Errorf("latency figures: p50 %v p99 %v over %d", st.P50, st.P99, st.Recent)
	}
}

func TestFillHoles(t *testing.T) {
	noLeaks(t)
	e := startEngine(t, &Server{Completer: newFake()})
	c := connect(t, e.socket)
	res, err := c.FillHoles(context.Background(), infill.HolesRequest{Parts: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Texts, ",") != "a+b,b+c" {
		t.Errorf("texts %q", res.Texts)
	}

	e2 := startEngine(t, &Server{Completer: completerOnly{newFake()}})
	c2 := connect(t, e2.socket)
	_, err = c2.FillHoles(context.Background(), infill.HolesRequest{Parts: []string{"a", "b"}})
	if err == nil || !strings.Contains(err.Error(), "cannot fill several holes") {
		t.Errorf("fill-holes on a plain completer: %v", err)
	}
}

func TestCancelRunning(t *testing.T) {
	noLeaks(t)
	f := newFake()
	e := startEngine(t, &Server{Completer: f})
	c := connect(t, e.socket)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Complete(ctx, infill.Request{Prefix: "block-1"})
		errc <- err
	}()
	if p := <-f.started; p != "block-1" {
		t.Fatalf("started %q", p)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Complete: %v, want context.Canceled", err)
	}
	if p := <-f.canceled; p != "block-1" { // the cancel reached the completer's context
		t.Errorf("cancelled %q", p)
	}
	// The engine is free again.
	if res, err := c.Complete(context.Background(), infill.Request{Prefix: "next"}); err != nil || res.Text != "middle of next|" {
		t.Errorf("after a cancel: %q, %v", res.Text, err)
	}
	waitFor(t, "the cancel to be counted", func() bool { return e.s.Status().Canceled == 1 })
}

func TestCancelQueued(t *testing.T) {
	noLeaks(t)
	f := newFake()
	e := startEngine(t, &Server{Completer: f})
	c := connect(t, e.socket)
	first := make(chan error, 1)
	go func() {
		_, err := c.Complete(context.Background(), infill.Request{Prefix: "block-1"})
		first <- err
	}()
	<-f.started
	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		_, err := c.Complete(ctx, infill.Request{Prefix: "queued"})
		queued <- err
	}()
	waitFor(t, "the second request to queue", func() bool { return e.s.Status().Queued == 1 })
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Complete: %v", err)
	}
	waitFor(t, "the queue to empty", func() bool { return e.s.Status().Queued == 0 })
	close(f.gate)
	if err := <-first; err != nil {
		t.Errorf("the running request: %v", err)
	}
	if n := f.ran("queued"); n != 0 {
		t.Errorf("the cancelled queued request ran %d times", n)
	}
	if st := e.s.Status(); st.Canceled != 1 || st.Served != 1 {
		t.Errorf("status: %+v", st)
	}
}

func TestDeadlineTravels(t *testing.T) {
	noLeaks(t)
	f := newFake()
	e := startEngine(t, &Server{Completer: f})
	c := connect(t, e.socket)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(50*time.Millisecond))
	defer cancel()
	_, err := c.Complete(ctx, infill.Request{Prefix: "block-deadline"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Complete past its deadline: %v", err)
	}
	// The engine's copy of the context had the deadline too: it stopped
	// on its own, whether or not the client's cancel got there first.
	if p := <-f.canceled; p != "block-deadline" {
		t.Errorf("cancelled %q", p)
	}
}

func TestKilledClient(t *testing.T) {
	noLeaks(t)
	f := newFake()
	e := startEngine(t, &Server{Completer: f})
	r := dialRaw(t, e.socket, clientHello)
	if m := r.mustRecv(); m.Type != typeHello || m.Model != testModel || m.PID != os.Getpid() {
		t.Fatalf("hello: %+v", m)
	}
	r.send(message{Type: typeComplete, ID: 1, Request: &infill.Request{Prefix: "block-killed"}})
	<-f.started
	r.send(message{Type: typeComplete, ID: 2, Request: &infill.Request{Prefix: "orphan"}})
	waitFor(t, "the second request to queue", func() bool { return e.s.Status().Queued == 1 })
	r.nc.Close()
	if p := <-f.canceled; p != "block-killed" {
		t.Errorf("cancelled %q", p)
	}
	waitFor(t, "the engine to forget the client", func() bool {
		st := e.s.Status()
		return st.Clients == 0 && st.Queued == 0 && st.Running == 0
	})
	if n := f.ran("orphan"); n != 0 {
		t.Errorf("the dead client's queued request ran %d times", n)
	}
	// Others are still served.
	c := connect(t, e.socket)
	if _, err := c.Complete(context.Background(), infill.Request{Prefix: "alive"}); err != nil {
		t.Error(err)
	}
}

func TestOverload(t *testing.T) {
	noLeaks(t)
	f := newFake()
	e := startEngine(t, &Server{Completer: f, Queue: 2})
	c := connect(t, e.socket)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := range 3 {
		wg.Go(func() {
			_, err := c.Complete(context.Background(), infill.Request{Prefix: fmt.Sprintf("block-%d", i)})
			errs <- err
		})
		if i == 0 {
			<-f.started
		}
	}
	waitFor(t, "two requests to queue", func() bool { return e.s.Status().Queued == 2 })
	_, err := c.Complete(context.Background(), infill.Request{Prefix: "one too many"})
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), "overloaded") {
		t.Errorf("request beyond the queue: %v, want ErrOverloaded", err)
	}
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("queued request: %v", err)
		}
	}
	if st := e.s.Status(); st.Rejected != 1 || st.Served != 3 {
		t.Errorf("status: %+v", st)
	}
}

func TestIdleShutdown(t *testing.T) {
	noLeaks(t)
	e := startEngine(t, &Server{Completer: newFake(), Idle: 20 * time.Millisecond})
	// A client keeps it alive while it is connected and works.
	c, err := Connect(context.Background(), Options{Model: testModel, Socket: e.socket, Start: noStart})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(context.Background(), infill.Request{Prefix: "x"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-e.done; err != nil {
		t.Errorf("Serve after idling: %v", err)
	}
	e.done <- nil
	if _, err := os.Lstat(e.socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after an idle shutdown: %v, want it removed", err)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	noLeaks(t)
	e := startEngine(t, &Server{Completer: newFake()})

	r := dialRaw(t, e.socket, message{Type: typeHello, Version: Version + 1, Model: testModel})
	m := r.mustRecv()
	if m.Type != typeError || m.Code != codeVersion || !strings.Contains(m.Error, "protocol version") {
		t.Errorf("hello from a newer client: %+v", m)
	}
	if _, ok := r.recv(); ok {
		t.Error("the engine kept a client of another version")
	}

	_, err := Connect(context.Background(), Options{Model: "/models/other", Socket: e.socket, Start: noStart})
	if err == nil || !strings.Contains(err.Error(), `runs model "/models/fake", not "/models/other"`) {
		t.Errorf("Connect for another model: %v", err)
	}

	r = dialRaw(t, e.socket, message{Type: typeComplete, ID: 1})
	if m := r.mustRecv(); m.Code != codeBadRequest || !strings.Contains(m.Error, "first message must be a hello") {
		t.Errorf("no hello: %+v", m)
	}
}

func TestBadMessages(t *testing.T) {
	noLeaks(t)
	f := newFake()
	e := startEngine(t, &Server{Completer: f})
	r := dialRaw(t, e.socket, clientHello)
	r.mustRecv()
	for _, tc := range []struct {
		line string
		want string
	}{
		{`{not json`, "bad message"},
		{`{"type":"sing","id":7}`, `unknown message type "sing"`},
		{`{"type":"complete","request":{"Prefix":"x"}}`, "nonzero id"},
		{`{"type":"complete","id":3}`, "needs a request"},
		{`{"type":"fill-holes","id":4}`, "needs holes"},
		{`{"type":"complete","id":5,"request":{"Prefix":"panic now"}}`, "internal error in the engine"},
		{`{"type":"complete","id":6,"request":{"Prefix":"fail"}}`, "fake failure"},
	} {
		r.sendLine(tc.line)
		if m := r.mustRecv(); !strings.Contains(m.Error, tc.want) {
			t.Errorf("%s: answered %+v, want an error with %q", tc.line, m, tc.want)
		}
	}
	// Still serving, on the same connection.
	r.send(message{Type: typeComplete, ID: 9, Request: &infill.Request{Prefix: "ok"}})
	if m := r.mustRecv(); m.ID != 9 || m.Result == nil || m.Result.Text != "middle of ok|" {
		t.Errorf("after bad messages: %+v", m)
	}
	// A cancel for nothing pending is ignored, not answered.
	r.send(message{Type: typeCancel, ID: 1234})
	r.send(message{Type: typeStatus, ID: 10})
	if m := r.mustRecv(); m.Type != typeStatus || m.ID != 10 || m.Status == nil {
		t.Errorf("status after a stray cancel: %+v", m)
	}
}

// TestEachAnsweredOnce races cancels against results on one connection and
// counts the answers once the engine has fully stopped.
func TestEachAnsweredOnce(t *testing.T) {
	noLeaks(t)
	f := newFake()
	e := startEngine(t, &Server{Completer: f, Queue: 1000})
	r := dialRaw(t, e.socket, clientHello)
	r.mustRecv()
	const n = 300
	for id := uint64(1); id <= n; id++ {
		prefix := fmt.Sprintf("r%d", id)
		if id%3 == 0 {
			prefix = "block-" + prefix // runs until cancelled
		}
		r.send(message{Type: typeComplete, ID: id, Request: &infill.Request{Prefix: prefix}})
		if id%2 == 0 || id%3 == 0 {
			r.send(message{Type: typeCancel, ID: id})
		}
	}
	answers := map[uint64]int{}
	for len(answers) < n {
		m := r.mustRecv()
		answers[m.ID]++
		if m.ID%3 == 0 && m.Code != codeCanceled {
			t.Errorf("request %d should have been cancelled: %+v", m.ID, m)
		}
		if m.ID%2 != 0 && m.ID%3 != 0 && (m.Result == nil || m.Result.Text != fmt.Sprintf("middle of r%d|", m.ID)) {
			t.Errorf("request %d: %+v", m.ID, m)
		}
	}
	e.shutdown(t) // no write can happen after this
	for {
		m, ok := r.recv()
		if !ok {
			break
		}
		answers[m.ID]++
	}
	for id := uint64(1); id <= n; id++ {
		if answers[id] != 1 {
			t.Errorf("request %d answered %d times", id, answers[id])
		}
	}
	if len(answers) != n {
		t.Errorf("%d distinct ids answered, want %d", len(answers), n)
	}
}

func TestSocket(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")

	// A crash leaves the socket file behind, and no lock holder.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	ln, release, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if _, _, err := Listen(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Listen on a live socket: %v, want fs.ErrExist", err)
	}
	ln.Close()
	release()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after Close: %v", err)
	}

	// Something that is not a socket is never removed.
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
}

func TestSocketPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", dir)
	a, err := SocketPath("/m/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SocketPath("/m/b", nil)
	c, _ := SocketPath("/m/a", []string{"--device", "cpu"})
	a2, _ := SocketPath("/m/a", nil)
	if filepath.Dir(a) != dir || !strings.HasSuffix(a, ".sock") {
		t.Errorf("socket %s not in the runtime dir %s", a, dir)
	}
	if a == b || a == c || a != a2 {
		t.Errorf("socket names: a %s b %s c %s a again %s", a, b, c, a2)
	}

	// Without XDG_RUNTIME_DIR: a private directory under TMPDIR.
	tmp := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("TMPDIR", tmp)
	d, err := RuntimeDir()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 || filepath.Dir(d) != tmp {
		t.Errorf("runtime dir %s: %v %v", d, fi.Mode(), err)
	}
	os.Chmod(d, 0o755)
	if _, err := RuntimeDir(); err == nil || !strings.Contains(err.Error(), "private") {
		t.Errorf("runtime dir others can enter: %v", err)
	}
}

func TestReconnect(t *testing.T) {
	noLeaks(t)
	e := startEngine(t, &Server{Completer: newFake()})
	c := connect(t, e.socket)
	if _, err := c.Complete(context.Background(), infill.Request{Prefix: "before"}); err != nil {
		t.Fatal(err)
	}
	e.shutdown(t)
	// No engine: a clear error, and the Start hook's reason.
	_, err := c.Complete(context.Background(), infill.Request{Prefix: "between"})
	if err == nil || !strings.Contains(err.Error(), "not starting an engine") {
		t.Errorf("Complete with the engine gone: %v", err)
	}
	e.serve(t) // a new engine on the same socket
	res, err := c.Complete(context.Background(), infill.Request{Prefix: "after"})
	if err != nil || res.Text != "middle of after|" {
		t.Errorf("after the engine restarted: %q, %v", res.Text, err)
	}
}

func TestConnectStarts(t *testing.T) {
	noLeaks(t)
	socket := filepath.Join(t.TempDir(), "e.sock")
	if _, err := QueryStatus(context.Background(), socket); !errors.Is(err, ErrNotRunning) {
		t.Errorf("status with no engine: %v, want ErrNotRunning", err)
	}

	var e *testEngine
	starts := 0
	start := func(context.Context) error {
		starts++
		e = &testEngine{s: &Server{Completer: newFake(), Model: testModel}, socket: socket}
		e.serve(t)
		return nil
	}
	c, err := Connect(context.Background(), Options{Model: testModel, Socket: socket, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Complete(context.Background(), infill.Request{Prefix: "x"}); err != nil {
		t.Fatal(err)
	}
	c2, err := Connect(context.Background(), Options{Model: testModel, Socket: socket, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if starts != 1 {
		t.Errorf("started %d engines, want 1", starts)
	}
	st, err := QueryStatus(context.Background(), socket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Clients != 2 || st.Served != 1 || st.Model != testModel || st.Version != Version {
		t.Errorf("status: %+v", st)
	}
	if runtime.GOOS == "linux" && st.RSS <= 0 {
		t.Errorf("RSS %d on Linux", st.RSS)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := percentile(d, 50); p != 50 {
		t.Errorf("p50 of 1..100 = %d", p)
	}
	if p := percentile(d, 99); p != 99 {
		t.Errorf("p99 of 1..100 = %d", p)
	}
	if p := percentile(d[:1], 99); p != 1 {
		t.Errorf("p99 of one = %d", p)
	}
	if p := percentile(nil, 50); p != 0 {
		t.Errorf("p50 of none = %d", p)
	}
}

// dialAs is the environment variable that makes the test binary a client
// that dials the socket it names, says hello, and prints the answer.
const dialAs = "ENGINE_TEST_DIAL"

func TestMain(m *testing.M) {
	if socket := os.Getenv(dialAs); socket != "" {
		nc, err := net.Dial("unix", socket)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(0)
		}
		json.NewEncoder(nc).Encode(clientHello)
		line, err := bufio.NewReader(nc).ReadString('\n')
		fmt.Printf("answer %q %v\n", line, err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRefusesOtherUsers opens the socket to everyone and has another user
// dial it: the engine still refuses, by the peer's credentials.
func TestRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	noLeaks(t)
	dir, err := os.MkdirTemp("", "peer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &testEngine{s: &Server{Completer: newFake(), Model: testModel}, socket: filepath.Join(dir, "e.sock")}
	e.serve(t)
	for _, p := range []string{dir, e.socket} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	// go test's work directory is private: run a copy of the test binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "client")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runAsNobody(exe, e.socket)
	if err != nil {
		t.Skipf("cannot run a process as nobody here: %v (%s)", err, out)
	}
	if !strings.HasPrefix(out, `answer "" `) { // EOF, or a reset: closed unread
		t.Errorf("another user's client got: %s", out)
	}
	// The owner is still served.
	c := connect(t, e.socket)
	if _, err := c.Complete(context.Background(), infill.Request{Prefix: "mine"}); err != nil {
		t.Error(err)
	}
}

// runAsNobody runs the test binary as user and group 65534, dialing socket.
func runAsNobody(exe, socket string) (string, error) {
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), dialAs+"="+socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestOtherBuildRefused(t *testing.T) {
	noLeaks(t)
	// A fake engine that answers hello as another build would.
	socket := filepath.Join(t.TempDir(), "o.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		json.NewEncoder(c).Encode(message{Type: typeHello, Version: Version, Model: testModel, PID: 42, Build: "older"})
	}()
	_, err = Connect(context.Background(), Options{Model: testModel, Socket: socket, Start: noStart})
	if err == nil || !strings.Contains(err.Error(), "built from other code") {
		t.Errorf("Connect to another build: %v", err)
	}
}

// BenchmarkRoundTrip measures what the shared engine adds to a completion:
// the same instant completer called directly and through the socket.
// Compare the two ns/op.
func BenchmarkRoundTrip(b *testing.B) {
	req := infill.Request{Prefix: strings.Repeat("x := 1\n", 300), Suffix: strings.Repeat("y\n", 100)}
	b.Run("direct", func(b *testing.B) {
		f := echoCompleter{}
		for b.Loop() {
			if _, err := f.Complete(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("engine", func(b *testing.B) {
		e := startEngine(b, &Server{Completer: echoCompleter{}})
		c := connect(b, e.socket)
		for b.Loop() {
			if _, err := c.Complete(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// echoCompleter answers at once, so that a benchmark sees only transport.
type echoCompleter struct{}

func (echoCompleter) Complete(ctx context.Context, req infill.Request) (infill.Result, error) {
	return infill.Result{Text: req.Suffix[:8]}, nil
}

// TestWorkersRunTogether gives the completer two requests at once with
// two workers, and checks that a client with a burst queued does not take
// the next free worker while another client waits.
func TestWorkersRunTogether(t *testing.T) {
	noLeaks(t)
	f := newFake()
	e := startEngine(t, &Server{Completer: f, Workers: 2, Queue: 100})
	busy, calm := connect(t, e.socket), connect(t, e.socket)
	var wg sync.WaitGroup
	complete := func(ctx context.Context, c *Client, prefix string) {
		wg.Go(func() {
			_, err := c.Complete(ctx, infill.Request{Prefix: prefix})
			if err != nil && ctx.Err() == nil {
				t.Errorf("%s: %v", prefix, err)
			}
		})
	}
	ctx := context.Background()
	first, cancelFirst := context.WithCancel(ctx)
	defer cancelFirst()
	complete(first, busy, "block-busy-0")
	complete(ctx, busy, "block-busy-1")
	started := map[string]bool{<-f.started: true, <-f.started: true}
	if !started["block-busy-0"] || !started["block-busy-1"] {
		t.Fatalf("started %v, want both of the first requests", started)
	}
	if st := e.s.Status(); st.Running != 2 || st.Workers != 2 {
		t.Errorf("status: %d running of %d workers, want 2 of 2", st.Running, st.Workers)
	}
	for i := 2; i < 5; i++ {
		complete(ctx, busy, fmt.Sprintf("block-busy-%d", i))
	}
	waitFor(t, "the burst to queue", func() bool { return e.s.Status().Queued == 3 })
	complete(ctx, calm, "block-calm")
	waitFor(t, "the calm request to queue", func() bool { return e.s.Status().Queued == 4 })
	cancelFirst()
	if p := <-f.started; p != "block-calm" {
		t.Errorf("the freed worker took %q before the other client's request", p)
	}
	close(f.gate)
	wg.Wait()
	waitFor(t, "every request answered", func() bool { st := e.s.Status(); return st.Running == 0 && st.Queued == 0 })
	if st := e.s.Status(); st.Served != 5 || st.Canceled != 1 {
		t.Errorf("status after the run: %+v", st)
	}
}
