package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

// maxMessage bounds one line of the protocol. A request carries the text
// around the cursor, which the client has already cut to the model's
// context; this only stops a broken client from growing the engine.
const maxMessage = 64 << 20

// writeTimeout bounds a write to a client. A client that stops reading must
// not stall the one worker every other client waits on.
const writeTimeout = 10 * time.Second

// Server serves one completer to many clients over a Unix socket. Up to
// Workers requests run at once, behind a bounded queue; the in-process
// engine denoises the ones running together, one forward pass a step for
// all (infill's scheduler). Set the fields, then call [Server.Serve].
type Server struct {
	// Completer does the work. If it is also an [infill.HoleFiller],
	// fill-holes requests are served too.
	Completer infill.Completer
	// Model names the model the completer runs, as clients name it in
	// hello; a client that asks for another is refused.
	Model string
	// Weights says what the model's matrices are computed in, for status
	// (runtime.Model.Computed); "" if unknown.
	Weights string
	// Workers is how many requests are handed to the completer at once
	// (for the in-process engine, its batch size). 0 means 1.
	Workers int
	// Queue bounds the requests waiting for a worker; a request that
	// finds it full is refused with [ErrOverloaded]. 0 means 16.
	Queue int
	// Idle ends Serve after this long with no client and no request; 0
	// means never.
	Idle time.Duration
	// Logger gets the engine's own events; nil discards them.
	Logger *slog.Logger

	wake chan struct{} // a request was queued

	mu         sync.Mutex // guards everything below
	closing    bool
	conns      map[*conn]struct{}
	clients    int // connections that said hello as a client
	queue      []*job
	running    int // requests handed to the completer
	lastActive time.Time
	started    time.Time
	served     uint64
	failed     uint64
	canceled   uint64
	rejected   uint64
	latency    [256]time.Duration // ring of recent successful request latencies
	nlatency   int                // how many were ever recorded
}

// job is one complete or fill-holes request from the time it is accepted
// until it is answered. It is in exactly one of: the queue, running, done.
type job struct {
	c        *conn
	m        message
	ctx      context.Context
	cancel   context.CancelFunc
	received time.Time
}

// conn is one client connection.
type conn struct {
	nc   *net.UnixConn
	role string

	wmu sync.Mutex // serialises writes
	enc *json.Encoder

	jobs    map[uint64]*job // the connection's unanswered requests; guarded by Server.mu
	running int             // how many of them a worker runs; guarded by Server.mu
}

// Serve accepts clients on ln until ctx ends or the engine has been idle
// for s.Idle, then closes ln (removing the socket), drops every client,
// and returns once all its goroutines have ended. It returns nil on such a
// shutdown.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener) error {
	if s.Completer == nil {
		return errors.New("engine: server has no completer")
	}
	if s.Queue <= 0 {
		s.Queue = 16
	}
	if s.Workers <= 0 {
		s.Workers = 1
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	s.wake = make(chan struct{}, 1)
	s.mu.Lock()
	s.closing = false // a Server may serve again after a shutdown
	s.conns = make(map[*conn]struct{})
	s.started = time.Now()
	s.lastActive = s.started
	s.mu.Unlock()

	var wg sync.WaitGroup
	defer func() {
		stop() // ends the workers, the running requests and the idle watch
		ln.Close()
		s.closeAll()
		wg.Wait()
	}()
	for range s.Workers {
		wg.Go(func() { s.work(ctx) })
	}
	if s.Idle > 0 {
		wg.Go(func() { s.watchIdle(ctx, stop) })
	}
	unblock := context.AfterFunc(ctx, func() { ln.Close() })
	defer unblock()

	for {
		nc, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("engine: accept: %w", err)
		}
		if uid, err := peerUID(nc); err != nil || uid != os.Getuid() {
			s.Logger.Warn("engine: refused a connection from another user", "uid", uid, "err", err)
			nc.Close()
			continue
		}
		c := &conn{nc: nc, enc: json.NewEncoder(nc), jobs: make(map[uint64]*job)}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		wg.Go(func() { s.serveConn(ctx, c) })
	}
}

// closeAll stops new connections and closes the open ones, which ends
// their readers.
func (s *Server) closeAll() {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
}

// watchIdle cancels the server once it has had no client and no request
// for s.Idle.
func (s *Server) watchIdle(ctx context.Context, stop context.CancelFunc) {
	t := time.NewTimer(s.Idle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		idle := s.clients == 0 && s.running == 0 && len(s.queue) == 0
		left := s.Idle - time.Since(s.lastActive)
		s.mu.Unlock()
		if idle && left <= 0 {
			s.Logger.Info("engine: idle, shutting down", "idle", s.Idle)
			stop()
			return
		}
		if !idle || left <= 0 {
			left = s.Idle
		}
		t.Reset(left)
	}
}

// serveConn reads one client's messages until it leaves, then cancels
// whatever it still has queued or running.
func (s *Server) serveConn(ctx context.Context, c *conn) {
	defer s.drop(c)
	sc := bufio.NewScanner(c.nc)
	sc.Buffer(make([]byte, 0, 64<<10), maxMessage)

	if !sc.Scan() {
		return
	}
	var hello message
	if err := json.Unmarshal(sc.Bytes(), &hello); err != nil || hello.Type != typeHello {
		c.send(message{Type: typeError, Code: codeBadRequest, Error: "the first message must be a hello"})
		return
	}
	if hello.Version != Version {
		c.send(message{Type: typeError, Code: codeVersion, Version: Version,
			Error: fmt.Sprintf("the engine speaks protocol version %d and the client %d: restart the engine or the client so that both are the same build", Version, hello.Version)})
		return
	}
	c.role = roleClient
	if hello.Role == roleStatus {
		c.role = roleStatus
	} else if hello.Model != s.Model {
		c.send(message{Type: typeError, Code: codeModel, Model: s.Model,
			Error: fmt.Sprintf("the engine runs model %q, not %q", s.Model, hello.Model)})
		return
	}
	s.mu.Lock()
	if c.role == roleClient {
		s.clients++
	}
	s.mu.Unlock()
	c.send(message{Type: typeHello, Version: Version, Model: s.Model, PID: os.Getpid(), Build: buildID()})

	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			c.send(message{Type: typeError, Code: codeBadRequest, Error: fmt.Sprintf("bad message: %v", err)})
			continue
		}
		switch m.Type {
		case typeComplete, typeFillHoles:
			s.submit(ctx, c, m)
		case typeCancel:
			s.cancel(c, m.ID)
		case typeStatus:
			st := s.Status()
			c.send(message{Type: typeStatus, ID: m.ID, Status: &st})
		default:
			c.send(message{Type: typeError, ID: m.ID, Code: codeBadRequest, Error: fmt.Sprintf("unknown message type %q", m.Type)})
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		s.Logger.Warn("engine: client connection ended", "err", err)
		if errors.Is(err, bufio.ErrTooLong) {
			c.send(message{Type: typeError, Code: codeBadRequest, Error: fmt.Sprintf("message longer than %d bytes", maxMessage)})
		}
	}
}

// drop forgets a connection that ended: its queued requests leave the
// queue unanswered (there is no one to answer) and its running ones are
// cancelled.
func (s *Server) drop(c *conn) {
	c.nc.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if c.role == roleClient {
		s.clients--
	}
	for id, j := range c.jobs {
		if i := slices.Index(s.queue, j); i >= 0 {
			s.queue = slices.Delete(s.queue, i, i+1)
			delete(c.jobs, id)
			s.canceled++
		}
		j.cancel() // a running one: its worker answers into the closed conn
	}
	s.lastActive = time.Now()
}

// submit queues a request, or answers at once when it cannot be served.
func (s *Server) submit(ctx context.Context, c *conn, m message) {
	fail := func(code, format string, a ...any) {
		c.send(message{Type: typeResult, ID: m.ID, Code: code, Error: fmt.Sprintf(format, a...)})
	}
	switch {
	case m.ID == 0:
		fail(codeBadRequest, "a %s request needs a nonzero id", m.Type)
		return
	case m.Type == typeComplete && m.Request == nil:
		fail(codeBadRequest, "a complete request needs a request")
		return
	case m.Type == typeFillHoles && m.Holes == nil:
		fail(codeBadRequest, "a fill-holes request needs holes")
		return
	}
	j := &job{c: c, m: m, received: time.Now()}
	if m.Deadline.IsZero() {
		j.ctx, j.cancel = context.WithCancel(ctx)
	} else {
		j.ctx, j.cancel = context.WithDeadline(ctx, m.Deadline)
	}

	s.mu.Lock()
	if _, dup := c.jobs[m.ID]; dup {
		s.mu.Unlock()
		j.cancel()
		fail(codeBadRequest, "request id %d is already in use", m.ID)
		return
	}
	if len(s.queue) >= s.Queue {
		s.rejected++
		s.mu.Unlock()
		j.cancel()
		fail(codeOverloaded, "%v (%d queued)", ErrOverloaded, s.Queue)
		return
	}
	s.queue = append(s.queue, j)
	c.jobs[m.ID] = j
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// cancel ends one of c's requests. A queued one is answered here; a
// running one is answered by its worker when the completer returns. An id
// that is not pending (already answered, or never sent) is ignored: the
// answer crossed the cancel on the wire.
func (s *Server) cancel(c *conn, id uint64) {
	s.mu.Lock()
	j := c.jobs[id]
	if j == nil {
		s.mu.Unlock()
		return
	}
	i := slices.Index(s.queue, j)
	if i < 0 {
		s.mu.Unlock()
		j.cancel()
		return
	}
	s.queue = slices.Delete(s.queue, i, i+1)
	delete(c.jobs, id)
	s.canceled++
	s.mu.Unlock()
	j.cancel()
	c.send(message{Type: typeResult, ID: id, Code: codeCanceled, Error: context.Canceled.Error()})
}

// work runs queued requests, one at a time, until ctx ends; Workers of
// them run at once.
func (s *Server) work(ctx context.Context) {
	for {
		s.mu.Lock()
		for len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			}
			s.mu.Lock()
		}
		j := s.next()
		s.running++
		j.c.running++
		more := len(s.queue) > 0
		s.mu.Unlock()
		if more { // pass the wake-up on to an idle worker
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}

		reply := s.run(j)

		s.mu.Lock()
		s.running--
		j.c.running--
		delete(j.c.jobs, j.m.ID)
		switch reply.Code {
		case "":
			if reply.Error == "" {
				s.served++
				s.latency[s.nlatency%len(s.latency)] = time.Since(j.received)
				s.nlatency++
			} else {
				s.failed++
			}
		case codeCanceled, codeDeadline:
			s.canceled++
		default:
			s.failed++
		}
		s.lastActive = time.Now()
		s.mu.Unlock()
		j.cancel()
		j.c.send(reply)
	}
}

// next takes the request to run next off the queue: the oldest of a
// client with nothing running, so that one client's burst cannot hold
// every worker while another waits; else the oldest. s.mu is held and the
// queue is not empty.
func (s *Server) next() *job {
	i := slices.IndexFunc(s.queue, func(j *job) bool { return j.c.running == 0 })
	i = max(i, 0)
	j := s.queue[i]
	s.queue = slices.Delete(s.queue, i, i+1)
	return j
}

// run does one request. A panic in the completer is a bug, but one that
// must not take down every editor's completions: it becomes an error.
func (s *Server) run(j *job) (reply message) {
	reply = message{Type: typeResult, ID: j.m.ID}
	fail := func(err error) {
		reply.Error, reply.Code = err.Error(), errorCode(err)
	}
	defer func() {
		if p := recover(); p != nil {
			s.Logger.Error("engine: completer panicked", "panic", p, "stack", string(debug.Stack()))
			fail(fmt.Errorf("internal error in the engine: %v", p))
		}
	}()
	if err := j.ctx.Err(); err != nil { // its deadline passed in the queue
		fail(err)
		return reply
	}
	switch j.m.Type {
	case typeComplete:
		res, err := s.Completer.Complete(j.ctx, *j.m.Request)
		if err != nil {
			fail(err)
			return reply
		}
		reply.Result = &res
	case typeFillHoles:
		hf, ok := s.Completer.(infill.HoleFiller)
		if !ok {
			reply.Code, reply.Error = codeBadRequest, "this engine cannot fill several holes at once"
			return reply
		}
		res, err := hf.FillHoles(j.ctx, *j.m.Holes)
		if err != nil {
			fail(err)
			return reply
		}
		reply.HolesResult = &res
	}
	return reply
}

// send writes one message. A failed write closes the connection, which
// ends its reader and so drops the client.
func (c *conn) send(m message) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := c.enc.Encode(m); err != nil {
		c.nc.Close()
	}
}
