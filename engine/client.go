package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

// Options say which engine a client wants and how to start one.
type Options struct {
	// Model is the model directory the engine runs; "" is the embedded
	// default model. A relative path is made absolute.
	Model string
	// Args are further flags for "infuse engine" (--device, sampler
	// flags). They are part of the socket's name: clients that want an
	// engine configured otherwise get another engine.
	Args []string
	// Socket is the engine's socket; "" means [SocketPath](Model, Args).
	Socket string
	// Start starts an engine when none answers on the socket. nil runs
	// this binary as "engine --socket S [--model M] Args…", detached
	// (its own session, stdio to the socket's path with ".log" for
	// ".sock"). An error from Start ends [Connect] with that error.
	Start func(ctx context.Context) error
	// StartTimeout bounds how long an engine may take to answer, whether
	// just started or still loading its model. 0 means 2 minutes.
	StartTimeout time.Duration
}

// Client is an [infill.Completer] and [infill.HoleFiller] served by a
// shared engine. Concurrent calls share one connection. If the engine goes
// away, the next call reconnects, starting a new engine if need be. It is
// safe for concurrent use.
type Client struct {
	opts   Options
	nextID atomic.Uint64

	sem    chan struct{} // held while (re)connecting, and to read or change cur and closed
	cur    *clientConn
	closed bool
}

var (
	_ infill.Completer  = (*Client)(nil)
	_ infill.HoleFiller = (*Client)(nil)
)

// errNoEngine is a dial that found no engine listening.
var errNoEngine = errors.New("no engine listens on the socket")

// errLost is a connection that ended before its answer came.
var errLost = errors.New("engine connection lost")

// Connect returns a client of the engine that serves opts.Model, starting
// one if none runs. An error means no engine can serve this process now;
// the caller should complete in-process instead.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	if opts.Model != "" {
		abs, err := filepath.Abs(opts.Model)
		if err != nil {
			return nil, fmt.Errorf("engine: model path: %w", err)
		}
		opts.Model = abs
	}
	if opts.Socket == "" {
		p, err := SocketPath(opts.Model, opts.Args)
		if err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		opts.Socket = p
	} else if abs, err := filepath.Abs(opts.Socket); err == nil {
		opts.Socket = abs // the engine we start runs in another directory
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	c := &Client{opts: opts, sem: make(chan struct{}, 1)}
	if _, err := c.conn(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Socket is the socket the client talks to.
func (c *Client) Socket() string { return c.opts.Socket }

// Close closes the connection; requests in flight end with an error, and
// the engine cancels them.
func (c *Client) Close() error {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	c.closed = true
	if c.cur != nil {
		c.cur.close()
		c.cur = nil
	}
	return nil
}

// Complete fills the middle between req.Prefix and req.Suffix in the engine.
func (c *Client) Complete(ctx context.Context, req infill.Request) (infill.Result, error) {
	r, err := c.call(ctx, message{Type: typeComplete, Request: &req})
	if err != nil {
		return infill.Result{}, err
	}
	if r.Result == nil {
		return infill.Result{}, errors.New("engine: a result without a completion")
	}
	return *r.Result, nil
}

// FillHoles fills every hole of req in the engine.
func (c *Client) FillHoles(ctx context.Context, req infill.HolesRequest) (infill.HolesResult, error) {
	r, err := c.call(ctx, message{Type: typeFillHoles, Holes: &req})
	if err != nil {
		return infill.HolesResult{}, err
	}
	if r.HolesResult == nil {
		return infill.HolesResult{}, errors.New("engine: a result without the holes' texts")
	}
	return *r.HolesResult, nil
}

// call sends one request and waits for its answer. Completion has no side
// effects, so a request whose connection broke before the answer (the
// engine restarted) is sent once more on a fresh connection.
func (c *Client) call(ctx context.Context, m message) (message, error) {
	if dl, ok := ctx.Deadline(); ok {
		m.Deadline = dl
	}
	for try := 0; ; try++ {
		cc, err := c.conn(ctx)
		if err != nil {
			return message{}, err
		}
		m.ID = c.nextID.Add(1)
		r, err := cc.call(ctx, m)
		if errors.Is(err, errLost) {
			c.drop(cc)
			if try == 0 && ctx.Err() == nil {
				continue
			}
		}
		if err != nil {
			return message{}, err
		}
		if r.Error != "" || r.Code != "" {
			return message{}, wireError(r)
		}
		return r, nil
	}
}

// conn returns the live connection, making one if there is none.
func (c *Client) conn(ctx context.Context) (*clientConn, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	if c.closed {
		return nil, errors.New("engine: client is closed")
	}
	if c.cur != nil && !c.cur.ended() {
		return c.cur, nil
	}
	if c.cur != nil {
		c.cur.close() // wait for its reader
		c.cur = nil
	}
	cc, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.cur = cc
	return cc, nil
}

// drop forgets cc, a connection found broken, so that the next call makes
// a new one even if cc's reader has not yet seen the end.
func (c *Client) drop(cc *clientConn) {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	if c.cur == cc {
		c.cur = nil
	}
	cc.close()
}

// connect dials the engine, and starts one if none answers.
func (c *Client) connect(ctx context.Context) (*clientConn, error) {
	cc, err := dial(ctx, c.opts.Socket, c.opts.Model, roleClient, c.opts.StartTimeout)
	if !errors.Is(err, errNoEngine) {
		return cc, err
	}
	var exited <-chan error
	var logPath string
	if c.opts.Start != nil {
		err = c.opts.Start(ctx)
	} else {
		exited, logPath, err = spawn(c.opts)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: start: %w", err)
	}
	timeout := time.NewTimer(c.opts.StartTimeout)
	defer timeout.Stop()
	wait := 10 * time.Millisecond
	for {
		cc, err := dial(ctx, c.opts.Socket, c.opts.Model, roleClient, c.opts.StartTimeout)
		if !errors.Is(err, errNoEngine) {
			return cc, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, fmt.Errorf("engine: started, but it did not answer on %s within %v%s", c.opts.Socket, c.opts.StartTimeout, logTail(logPath))
		case err := <-exited:
			if err != nil {
				return nil, fmt.Errorf("engine: exited before it answered (%v)%s", err, logTail(logPath))
			}
			// It exited cleanly: another engine took the socket first.
			exited = nil
		case <-time.After(wait):
			wait = min(2*wait, 250*time.Millisecond)
		}
	}
}

// spawn starts this binary as a detached engine. The returned channel gets
// the engine's exit.
func spawn(o Options) (exited <-chan error, logPath string, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	args := []string{"engine", "--socket", o.Socket}
	if o.Model != "" {
		args = append(args, "--model", o.Model)
	}
	args = append(args, o.Args...)
	logPath = strings.TrimSuffix(o.Socket, ".sock") + ".log"
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, "", err
	}
	defer log.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = "/" // pin no directory the user may want to unmount
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }() // reaps it should it exit before we do
	return ch, logPath, nil
}

// logTail is the end of an engine's log, to explain why it did not start.
func logTail(path string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return fmt.Sprintf("; %s ends:\n%s", path, strings.TrimSpace(string(b)))
}

// QueryStatus asks the engine on socket for its [Status]. It returns an
// error wrapping [ErrNotRunning] when no engine answers.
func QueryStatus(ctx context.Context, socket string) (Status, error) {
	cc, err := dial(ctx, socket, "", roleStatus, 10*time.Second)
	if err != nil {
		if errors.Is(err, errNoEngine) {
			return Status{}, fmt.Errorf("%w on %s", ErrNotRunning, socket)
		}
		return Status{}, err
	}
	defer cc.close()
	r, err := cc.call(ctx, message{Type: typeStatus, ID: 1})
	if err != nil {
		return Status{}, err
	}
	if r.Status == nil {
		return Status{}, fmt.Errorf("engine: status: %s", r.Error)
	}
	return *r.Status, nil
}

// clientConn is one connection to the engine, shared by concurrent calls.
type clientConn struct {
	nc net.Conn

	wmu sync.Mutex // serialises writes
	enc *json.Encoder

	mu      sync.Mutex // guards pending and err
	pending map[uint64]chan message
	err     error         // why the connection ended; nil while it lives
	done    chan struct{} // closed when the reader has ended
}

// dial connects to the engine on socket and exchanges hellos, waiting at
// most timeout for the engine's (it may still be loading its model).
func dial(ctx context.Context, socket, model, role string, timeout time.Duration) (*clientConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, errNoEngine
		}
		return nil, fmt.Errorf("engine: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	nc.SetDeadline(time.Now().Add(timeout))
	enc := json.NewEncoder(nc)
	if err := enc.Encode(message{Type: typeHello, Version: Version, Model: model, Role: role}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("engine: hello: %w", err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	line, err := br.ReadSlice('\n')
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrDeadlineExceeded) || len(line) == 0 {
			return nil, fmt.Errorf("engine on %s did not answer hello: %w", socket, err)
		}
		return nil, fmt.Errorf("engine: hello: %w", err)
	}
	var h message
	if err := json.Unmarshal(line, &h); err != nil {
		nc.Close()
		return nil, fmt.Errorf("engine: bad hello: %w", err)
	}
	if h.Type != typeHello {
		nc.Close()
		return nil, fmt.Errorf("engine on %s refused the client: %s", socket, h.Error)
	}
	// The socket's name has the build id in it, so this happens only when
	// the binary was replaced under a running client, or --socket points
	// at another build's engine.
	if role == roleClient && h.Build != buildID() {
		nc.Close()
		return nil, fmt.Errorf("engine on %s (pid %d) was built from other code (build %q, this is %q): stop it and start again", socket, h.PID, h.Build, buildID())
	}
	nc.SetDeadline(time.Time{})
	cc := &clientConn{nc: nc, enc: enc, pending: make(map[uint64]chan message), done: make(chan struct{})}
	go cc.read(br)
	return cc, nil
}

// read delivers answers to their callers until the connection ends.
func (cc *clientConn) read(br *bufio.Reader) {
	defer close(cc.done)
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 64<<10), maxMessage)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // a broken line answers no one; its caller times out with its context
		}
		cc.mu.Lock()
		ch := cc.pending[m.ID]
		delete(cc.pending, m.ID)
		cc.mu.Unlock()
		if ch != nil {
			ch <- m // buffered: never blocks
		}
	}
	err := sc.Err()
	if err == nil {
		err = errors.New("the engine closed the connection")
	}
	cc.mu.Lock()
	cc.err = fmt.Errorf("%w: %v", errLost, err)
	for id, ch := range cc.pending {
		close(ch)
		delete(cc.pending, id)
	}
	cc.mu.Unlock()
}

// call sends m and waits for the answer with its id. When ctx ends first,
// it tells the engine to cancel and returns at once.
func (cc *clientConn) call(ctx context.Context, m message) (message, error) {
	ch := make(chan message, 1)
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return message{}, err
	}
	cc.pending[m.ID] = ch
	cc.mu.Unlock()
	if err := cc.send(m); err != nil {
		cc.forget(m.ID)
		return message{}, fmt.Errorf("%w: %v", errLost, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			cc.mu.Lock()
			err := cc.err
			cc.mu.Unlock()
			return message{}, err
		}
		return r, nil
	case <-ctx.Done():
		cc.forget(m.ID)
		if m.Type != typeStatus {
			cc.send(message{Type: typeCancel, ID: m.ID})
		}
		return message{}, ctx.Err()
	}
}

func (cc *clientConn) forget(id uint64) {
	cc.mu.Lock()
	delete(cc.pending, id)
	cc.mu.Unlock()
}

func (cc *clientConn) send(m message) error {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	cc.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return cc.enc.Encode(m)
}

// ended says whether the connection is known to be dead.
func (cc *clientConn) ended() bool {
	select {
	case <-cc.done:
		return true
	default:
		return false
	}
}

// close closes the connection and waits for its reader.
func (cc *clientConn) close() {
	cc.nc.Close()
	<-cc.done
}
