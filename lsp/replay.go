package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sourcegraph/conc"
	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"
)

// This file is a typing replay: an LSP client that types a source file into
// a server the way a person would and measures what the person would see. It
// is the driver behind "infuse bench --lsp" and is tested against the fake
// model in replay_test.go.

// ReplayOptions describe a typing replay.
type ReplayOptions struct {
	Text     string  // the file being written
	URI      uri.URI // its URI; default file:///replay/<language>
	Language string  // its LSP language id; default "go"

	// Start and End (byte offsets into Text) bound the span that is typed:
	// the buffer opens holding Text without it and the span is then typed
	// one character at a time. End 0 means the end of Text.
	Start, End int

	// Gap is the pause before each keystroke; nil means RealisticGaps(1).
	Gap func(typed rune) time.Duration

	// AwaitEach waits for each completion before the next keystroke, as a
	// user who waits for the suggestion would; otherwise requests overlap
	// as they do when typing on.
	AwaitEach bool

	// ClientCancels sends $/cancelRequest for the previous request at each
	// keystroke, as VS Code does; Neovim leaves it to the server.
	ClientCancels bool
}

// ReplayReport is what a replay measured. Latencies are those of requests
// answered with a suggestion: what the user waits for before ghost text.
type ReplayReport struct {
	Keystrokes int           `json:"keystrokes"`
	Requests   int           `json:"requests"`
	Suggested  int           `json:"suggested"` // answered with at least one item
	P50        time.Duration `json:"p50_ns"`
	P99        time.Duration `json:"p99_ns"`
	// Latencies are every suggestion's latency, sorted, for callers that
	// pool several replays.
	Latencies []time.Duration `json:"-"`

	CacheHitRate   float64 `json:"cache_hit_rate"`  // server: answered from the type-through cache / requests
	CancelledShare float64 `json:"cancelled_share"` // server: superseded or cancelled / requests

	Server Stats `json:"server"` // the server's counters for the session
}

// RealisticGaps returns keystroke gaps drawn, reproducibly from seed, to
// look like a programmer typing: around 150 ms between characters, longer
// after the end of a line or a statement, and now and then a pause to think.
func RealisticGaps(seed uint64) func(typed rune) time.Duration {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var mu sync.Mutex
	return func(typed rune) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		// Log-normal around 150 ms: most gaps 90-250 ms.
		ms := 150 * math.Exp(0.35*rng.NormFloat64())
		switch typed {
		case '\n', ';', '{', '}':
			ms += 250 + 250*rng.Float64()
		}
		if rng.IntN(25) == 0 {
			ms += 800 + 1200*rng.Float64()
		}
		return time.Duration(ms * float64(time.Millisecond))
	}
}

// Replay connects to the language server on conn, types opts.Text into it
// and reports what it measured. It ends the session (shutdown, exit) and
// closes conn before returning.
func Replay(ctx context.Context, conn io.ReadWriteCloser, opts ReplayOptions) (ReplayReport, error) {
	if opts.End == 0 {
		opts.End = len(opts.Text)
	}
	if opts.Start < 0 || opts.Start > opts.End || opts.End > len(opts.Text) {
		return ReplayReport{}, fmt.Errorf("replay span %d-%d is outside the text (%d bytes)", opts.Start, opts.End, len(opts.Text))
	}
	if opts.Language == "" {
		opts.Language = "go"
	}
	if opts.URI == "" {
		opts.URI = uri.URI("file:///replay/" + opts.Language)
	}
	if opts.Gap == nil {
		opts.Gap = RealisticGaps(1)
	}

	c := newReplayClient(jsonrpc2.NewHeaderStream(conn))
	var reader conc.WaitGroup
	reader.Go(c.read)
	defer reader.Wait()
	defer conn.Close()

	r := &replay{c: c, opts: opts}
	if err := r.run(ctx); err != nil {
		return ReplayReport{}, err
	}
	return r.report, nil
}

type replay struct {
	c      *replayClient
	opts   ReplayOptions
	report ReplayReport

	mu        sync.Mutex
	latencies []time.Duration
	firstErr  error
}

func (r *replay) run(ctx context.Context) error {
	o := r.opts
	c := r.c
	if err := c.call(ctx, protocol.MethodInitialize, map[string]any{
		"processId": nil, "rootUri": nil,
		"capabilities": map[string]any{
			"general":      map[string]any{"positionEncodings": []string{"utf-16"}},
			"textDocument": map[string]any{"inlineCompletion": map[string]any{}},
		},
	}, nil); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if err := c.notify(ctx, protocol.MethodInitialized, map[string]any{}); err != nil {
		return err
	}
	text := o.Text[:o.Start] + o.Text[o.End:]
	if err := c.notify(ctx, protocol.MethodTextDocumentDidOpen, map[string]any{"textDocument": map[string]any{
		"uri": o.URI, "languageId": o.Language, "version": 1, "text": text,
	}}); err != nil {
		return err
	}

	var waits conc.WaitGroup
	defer waits.Wait()
	var prev int64 // the id of the previous request
	cursor := o.Start
	for i, version := o.Start, 2; i < o.End; version++ {
		ch, size := utf8.DecodeRuneInString(o.Text[i:])
		typed := o.Text[i : i+size]
		i += size
		if err := sleep(ctx, o.Gap(ch)); err != nil {
			return err
		}
		pos := NewMapper(text).OffsetPosition(cursor, UTF16)
		text = text[:cursor] + typed + text[cursor:]
		cursor += size
		if o.ClientCancels && prev != 0 {
			if err := c.notify(ctx, protocol.MethodCancelRequest, map[string]any{"id": prev}); err != nil {
				return err
			}
		}
		if err := c.notify(ctx, protocol.MethodTextDocumentDidChange, map[string]any{
			"textDocument":   map[string]any{"uri": o.URI, "version": version},
			"contentChanges": []any{map[string]any{"range": protocol.Range{Start: pos, End: pos}, "text": typed}},
		}); err != nil {
			return err
		}
		r.report.Keystrokes++
		start := time.Now()
		id, reply, err := c.send(ctx, protocol.MethodTextDocumentInlineCompletion, map[string]any{
			"textDocument": map[string]any{"uri": o.URI},
			"position":     NewMapper(text).OffsetPosition(cursor, UTF16),
			"context":      map[string]any{"triggerKind": protocol.InlineCompletionTriggerKindAutomatic},
		})
		if err != nil {
			return err
		}
		r.report.Requests++
		prev = id
		if o.AwaitEach {
			r.record(ctx, start, reply)
			continue
		}
		waits.Go(func() { r.record(ctx, start, reply) })
	}
	waits.Wait()
	if err := r.error(); err != nil {
		return err
	}

	var st Stats
	if err := c.call(ctx, methodStats, nil, &st); err != nil {
		return fmt.Errorf("%s: %w", methodStats, err)
	}
	r.report.Server = st
	if st.Requests > 0 {
		r.report.CacheHitRate = float64(st.CacheHits) / float64(st.Requests)
		r.report.CancelledShare = float64(st.Superseded+st.Cancelled) / float64(st.Requests)
	}
	slices.Sort(r.latencies)
	r.report.P50 = percentile(r.latencies, 0.50)
	r.report.P99 = percentile(r.latencies, 0.99)
	r.report.Latencies = r.latencies

	if err := c.call(ctx, protocol.MethodShutdown, nil, nil); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return c.notify(ctx, protocol.MethodExit, nil)
}

// record waits for one inline completion's answer and records it.
func (r *replay) record(ctx context.Context, start time.Time, reply <-chan *jsonrpc2.Response) {
	var resp *jsonrpc2.Response
	select {
	case resp = <-reply:
	case <-ctx.Done():
		return
	}
	took := time.Since(start)
	r.mu.Lock()
	defer r.mu.Unlock()
	var rpcErr *jsonrpc2.Error
	switch err := resp.Err(); {
	case err == nil:
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if jerr := json.Unmarshal(resp.Result(), &list); jerr != nil && r.firstErr == nil {
			r.firstErr = fmt.Errorf("inline completion result %s: %w", resp.Result(), jerr)
		}
		if len(list.Items) > 0 {
			r.report.Suggested++
			r.latencies = append(r.latencies, took)
		}
	case errors.As(err, &rpcErr) && rpcErr.Code == protocol.CodeRequestCancelled:
		// cancelled by the replay itself: counted by the server
	default:
		if r.firstErr == nil {
			r.firstErr = fmt.Errorf("inline completion: %w", err)
		}
	}
}

func (r *replay) error() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstErr
}

// replayClient is the replay's side of the connection. It writes each
// request before returning (so that a request is on the wire before the
// next keystroke, however short the gap) and matches responses to requests
// on a reader of its own.
type replayClient struct {
	stream jsonrpc2.Stream

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan *jsonrpc2.Response
	closed  bool
}

// errConnClosed is returned for requests still waiting when the connection
// ends.
var errConnClosed = errors.New("connection closed")

func newReplayClient(stream jsonrpc2.Stream) *replayClient {
	return &replayClient{stream: stream, pending: make(map[int64]chan *jsonrpc2.Response)}
}

// read delivers responses until the stream ends, then fails what is left.
func (c *replayClient) read() {
	ctx := context.Background()
	for {
		msg, _, err := c.stream.Read(ctx)
		if err != nil {
			break
		}
		switch m := msg.(type) {
		case *jsonrpc2.Response:
			n, _ := m.ID().Number()
			c.mu.Lock()
			ch := c.pending[n]
			delete(c.pending, n)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case *jsonrpc2.Call:
			// Progress tokens, configuration: accept and say nothing.
			c.stream.Write(ctx, jsonrpc2.NewResponse(m.ID(), jsonrpc2.RawMessage("null"), nil))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for id, ch := range c.pending {
		ch <- jsonrpc2.NewResponse(jsonrpc2.NewNumberID(id), nil, errConnClosed)
		delete(c.pending, id)
	}
}

// send writes a request and returns the channel its response will arrive on.
func (c *replayClient) send(ctx context.Context, method string, params any) (int64, <-chan *jsonrpc2.Response, error) {
	raw, err := codec{}.Marshal(params)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", method, err)
	}
	ch := make(chan *jsonrpc2.Response, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, nil, fmt.Errorf("%s: %w", method, errConnClosed)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	if _, err := c.stream.Write(ctx, jsonrpc2.NewCall(jsonrpc2.NewNumberID(id), method, raw)); err != nil {
		return 0, nil, fmt.Errorf("%s: %w", method, err)
	}
	return id, ch, nil
}

// call sends a request and decodes its result into result (if not nil).
func (c *replayClient) call(ctx context.Context, method string, params, result any) error {
	_, reply, err := c.send(ctx, method, params)
	if err != nil {
		return err
	}
	select {
	case resp := <-reply:
		if err := resp.Err(); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if result != nil {
			if err := json.Unmarshal(resp.Result(), result); err != nil {
				return fmt.Errorf("%s: result %s: %w", method, resp.Result(), err)
			}
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *replayClient) notify(ctx context.Context, method string, params any) error {
	raw, err := codec{}.Marshal(params)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if _, err := c.stream.Write(ctx, jsonrpc2.NewNotification(method, raw)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
