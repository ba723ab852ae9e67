// Package remote completes code with a serving engine over HTTP: an
// OpenAI-compatible /v1/completions endpoint that takes a suffix (Inception's
// Mercury Coder, vLLM, SGLang, Ollama's OpenAI endpoint), Ollama's
// /api/generate, or llama.cpp server's /infill. A [Client] is an
// [infill.Completer], so the language server and the command line use it
// exactly as they use the in-process engine.
//
// A Client holds one connection pool for its endpoint, bounds the requests in
// flight, retries 429 and 5xx answers a few times (honouring Retry-After), and
// closes its HTTP request as soon as the caller's context ends. The API key
// travels only in the Authorization header: it is never logged, and errors
// built from server answers have it blotted out.
package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

// API names the wire protocol a server speaks.
type API string

const (
	OpenAI   API = "openai"   // POST /v1/completions with prompt and suffix
	Ollama   API = "ollama"   // POST /api/generate with prompt and suffix
	LlamaCpp API = "llamacpp" // POST /infill with input_prefix and input_suffix
)

// ParseAPI reads an API name; "llama.cpp" and "llama-cpp" are accepted for
// llamacpp.
func ParseAPI(s string) (API, bool) {
	switch strings.ToLower(s) {
	case "openai":
		return OpenAI, true
	case "ollama":
		return Ollama, true
	case "llamacpp", "llama.cpp", "llama-cpp":
		return LlamaCpp, true
	}
	return "", false
}

// Defaults for the zero fields of a Config.
const (
	DefaultConcurrency      = 4
	DefaultTimeout          = 30 * time.Second
	DefaultRetries          = 2
	DefaultSingleLineTokens = 48
	DefaultMultiLineTokens  = 256
)

// Config says which server to ask and how.
type Config struct {
	API API
	// URL is the server's base URL ("http://127.0.0.1:8080") or the full
	// endpoint ("https://api.inceptionlabs.ai/v1/fim/completions"). A URL
	// with no path, or one whose path is /v1, gets the API's usual
	// endpoint appended; any other path is used as it is.
	URL string
	// Model is the model name the server knows ("mercury-coder",
	// "qwen2.5-coder:1.5b"). Required for openai and ollama; llama.cpp
	// serves the model it was started with and ignores it.
	Model string
	// Key is sent as "Authorization: Bearer Key" when set. Read it with
	// KeyFromEnv or KeyFromFile; KeySource says where it came from, for
	// error messages ("$INCEPTION_API_KEY").
	Key       string
	KeySource string

	Concurrency int           // requests in flight at once; 0: DefaultConcurrency
	Timeout     time.Duration // whole completion, retries included; 0: DefaultTimeout
	Retries     int           // further attempts after a 429 or 5xx; 0: DefaultRetries, <0: none

	// SingleLineTokens and MultiLineTokens bound the middle when the
	// request leaves MaxTokens at 0.
	SingleLineTokens int
	MultiLineTokens  int
	// Temperature is sent as is: 0, the default, is greedy.
	Temperature float64
	// NoStream asks for one JSON answer instead of a stream.
	NoStream bool

	// TLS, when set, replaces the default TLS configuration (system roots,
	// verification on).
	TLS *tls.Config
	// Logger receives one debug line per attempt; nil: slog.Default().
	Logger *slog.Logger
}

// Client completes with one remote endpoint. It is safe for concurrent use.
type Client struct {
	cfg      Config
	endpoint *url.URL
	proto    protocol
	http     *http.Client
	sem      chan struct{}
	log      *slog.Logger
}

var _ infill.Completer = (*Client)(nil)

// New checks cfg and prepares a client; it does not contact the server.
func New(cfg Config) (*Client, error) {
	var proto protocol
	switch cfg.API {
	case OpenAI:
		proto = openAI{}
	case Ollama:
		proto = ollama{}
	case LlamaCpp:
		proto = llamaCpp{}
	default:
		return nil, fmt.Errorf("remote engine %q: want openai, ollama or llamacpp", cfg.API)
	}
	endpoint, err := endpointURL(cfg.URL, proto.path())
	if err != nil {
		return nil, err
	}
	if cfg.Model == "" && cfg.API != LlamaCpp {
		return nil, fmt.Errorf("remote engine %s: a model name is required (the name the server knows it by)", cfg.API)
	}
	if cfg.Key != "" {
		if err := checkKey(cfg.Key); err != nil {
			return nil, fmt.Errorf("API key: %w", err)
		}
		if endpoint.Scheme == "http" && !isLoopback(endpoint.Hostname()) {
			return nil, fmt.Errorf("remote engine %s: refusing to send an API key in clear text to %s; use https", cfg.API, endpoint.Host)
		}
	}
	if cfg.Concurrency < 0 || cfg.Timeout < 0 || cfg.SingleLineTokens < 0 || cfg.MultiLineTokens < 0 {
		return nil, errors.New("remote engine: concurrency, timeout and token bounds must not be negative")
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.SingleLineTokens == 0 {
		cfg.SingleLineTokens = DefaultSingleLineTokens
	}
	if cfg.MultiLineTokens == 0 {
		cfg.MultiLineTokens = DefaultMultiLineTokens
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          cfg.Concurrency,
		MaxIdleConnsPerHost:   cfg.Concurrency, // keep a warm connection for every request slot
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       cfg.TLS,
	}
	return &Client{
		cfg:      cfg,
		endpoint: endpoint,
		proto:    proto,
		// No Client.Timeout: the deadline is the context's, so that a
		// streamed answer is cut at the same moment as everything else.
		// Redirects are not followed: one from https to http would carry
		// the key in clear, and a moved endpoint is better configured.
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		sem: make(chan struct{}, cfg.Concurrency),
		log: log,
	}, nil
}

// Close drops the client's idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// String names the endpoint (never the key), for logs and messages.
func (c *Client) String() string {
	return string(c.cfg.API) + " " + c.endpoint.Redacted()
}

// Endpoint is the URL requests go to.
func (c *Client) Endpoint() string { return c.endpoint.Redacted() }

// errTimeout is the cause of a completion's own deadline.
var errTimeout = errors.New("remote completion timed out")

// Complete asks the server for the middle between req.Prefix and req.Suffix
// and finishes it as the in-process engine would: a single-line middle ends
// at its first line break, and text the suffix already holds is dropped.
func (c *Client) Complete(ctx context.Context, req infill.Request) (infill.Result, error) {
	start := time.Now()
	mode := infill.ResolveMode(req.Mode, req.Prefix, req.Suffix)
	n := req.MaxTokens
	if n <= 0 {
		n = c.cfg.MultiLineTokens
		if mode == infill.SingleLine {
			n = c.cfg.SingleLineTokens
		}
	}
	body, err := json.Marshal(c.proto.request(&c.cfg, req, mode == infill.SingleLine, n))
	if err != nil {
		return infill.Result{}, fmt.Errorf("%s: encoding the request: %w", c, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, errTimeout)
	defer cancel()

	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return infill.Result{}, c.ctxErr(ctx, "waiting for a free request slot")
	}
	defer func() { <-c.sem }()

	for attempt := 0; ; attempt++ {
		ans, err := c.attempt(ctx, body, mode == infill.SingleLine, start)
		if err == nil {
			fig := infill.Figures{
				Tokens:       ans.tokens,
				CanvasTokens: ans.promptTokens,
				FirstPass:    ans.first,
				Total:        time.Since(start),
			}
			return infill.Result{Text: infill.Finish(ans.text.String(), req.Suffix, mode), Figures: fig}, nil
		}
		if ctx.Err() != nil {
			return infill.Result{}, c.ctxErr(ctx, "")
		}
		var se *StatusError
		if !errors.As(err, &se) || !se.Temporary() || attempt >= c.cfg.Retries {
			return infill.Result{}, err
		}
		wait := se.RetryAfter
		if wait <= 0 {
			// 200 ms, 400 ms, 800 ms…, with jitter so that clients that
			// failed together don't come back together.
			wait = 200 * time.Millisecond << attempt
			wait = wait/2 + rand.N(wait)
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return infill.Result{}, fmt.Errorf("%w (a retry in %s would pass the deadline)", err, wait.Round(time.Millisecond))
		}
		c.log.Debug("remote: retrying", "endpoint", c.String(), "status", se.Code, "wait", wait, "attempt", attempt+1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return infill.Result{}, c.ctxErr(ctx, "")
		}
	}
}

// ctxErr reports why ctx ended: our own deadline as a timeout naming the
// server, the caller's cancellation as itself.
func (c *Client) ctxErr(ctx context.Context, while string) error {
	if context.Cause(ctx) == errTimeout {
		if while != "" {
			while = " " + while
		}
		return fmt.Errorf("%s: no answer within %s%s: %w", c, c.cfg.Timeout, while, context.DeadlineExceeded)
	}
	return ctx.Err()
}

// attempt sends one request and reads its answer.
func (c *Client) attempt(ctx context.Context, body []byte, single bool, start time.Time) (*answer, error) {
	// The request's own context, so that draining a finished answer can be
	// cut short without ending the completion.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if c.cfg.NoStream {
		hreq.Header.Set("Accept", "application/json")
	} else {
		hreq.Header.Set("Accept", c.proto.streamType()+", application/json")
	}
	if c.cfg.Key != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.transportErr(err)
	}
	// Closing the body of an unfinished answer closes its connection: that
	// is what tells the server to stop generating.
	defer resp.Body.Close()
	c.log.Debug("remote: answer", "endpoint", c.String(), "status", resp.StatusCode, "after", time.Since(start))
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusErr(resp)
	}
	ct, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		ct = ""
	}
	ans := &answer{single: single, start: start}
	var read func(io.Reader, *answer) error
	switch ct {
	case c.proto.streamType():
		read = c.proto.readStream
	case "application/json":
		// Also the answer of a server that ignores "stream".
		read = c.proto.readOne
	default:
		return nil, fmt.Errorf("%s: the server answered %q, not JSON; is the URL the %s endpoint?", c, resp.Header.Get("Content-Type"), c.cfg.API)
	}
	if err := read(resp.Body, ans); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %s", c, c.redact(err.Error()))
	}
	if !ans.cut {
		// The answer's end mark came; read the rest of the body (the
		// stream's last bytes) so that the connection can carry the next
		// request. A server that goes on after its end mark is not waited
		// for.
		t := time.AfterFunc(100*time.Millisecond, cancel)
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		t.Stop()
	}
	return ans, nil
}

// transportErr explains a request that got no answer.
func (c *Client) transportErr(err error) error {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%s: TLS: the server's certificate is signed by an authority this system does not trust (add it with SSL_CERT_FILE): %w", c, err)
	case errors.As(err, &host):
		return fmt.Errorf("%s: TLS: the server's certificate is not for %s: %w", c, c.endpoint.Hostname(), err)
	case errors.As(err, &verify):
		return fmt.Errorf("%s: TLS: the server's certificate did not verify: %w", c, err)
	}
	return fmt.Errorf("%s: %w", c, err)
}

// StatusError is an answer other than 200 OK.
type StatusError struct {
	Endpoint   string        // the API and URL, without the key
	Code       int           // the HTTP status
	Message    string        // the server's explanation, if it gave one, with the key blotted out
	RetryAfter time.Duration // from Retry-After; 0 if absent
	Hint       string        // what to check
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d %s", e.Endpoint, e.Code, http.StatusText(e.Code))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later: rate limits
// and server-side failures.
func (e *StatusError) Temporary() bool {
	return e.Code == http.StatusTooManyRequests || e.Code >= 500 && e.Code != http.StatusNotImplemented
}

// statusErr reads an error answer: the server's message, if short, and
// Retry-After.
func (c *Client) statusErr(resp *http.Response) error {
	e := &StatusError{Endpoint: c.String(), Code: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	e.Message = c.redact(errorMessage(raw))
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		switch {
		case c.cfg.Key == "":
			e.Hint = "the server wants an API key: set --engine-key-env or --engine-key-file"
		case c.cfg.KeySource != "":
			e.Hint = "the API key from " + c.cfg.KeySource + " was refused"
		default:
			e.Hint = "the API key was refused"
		}
	case http.StatusNotFound:
		e.Hint = fmt.Sprintf("is this a %s server, and is model %q there?", c.cfg.API, c.cfg.Model)
	case http.StatusBadRequest:
		if strings.Contains(strings.ToLower(e.Message), "suffix") {
			e.Hint = "this server does not take a suffix; upstream vLLM's /v1/completions refuses it"
		}
	default:
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			if u, err := resp.Request.URL.Parse(loc); err == nil {
				loc = u.Redacted()
			}
			e.Hint = "redirects are not followed: set the URL to " + c.redact(loc)
		}
	}
	return e
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. Waits are
// capped at a minute; a longer one is not worth holding a completion for.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(h); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Minute)
}

// errorMessage pulls a message out of an error body: OpenAI's
// {"error":{"message":…}}, Ollama's and llama.cpp's {"error":…}, or a short
// plain-text body.
func errorMessage(raw []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	msg := ""
	if json.Unmarshal(raw, &v) == nil {
		var s string
		var obj struct {
			Message string `json:"message"`
		}
		switch {
		case json.Unmarshal(v.Error, &s) == nil:
			msg = s
		case json.Unmarshal(v.Error, &obj) == nil && obj.Message != "":
			msg = obj.Message
		case v.Message != "":
			msg = v.Message
		case json.Unmarshal(v.Detail, &s) == nil:
			msg = s
		}
	} else if t := strings.TrimSpace(string(raw)); !strings.HasPrefix(t, "<") {
		msg = t // plain text; an HTML error page says nothing useful
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 300 {
		msg = strings.ToValidUTF8(msg[:300], "") + "…"
	}
	return msg
}

// redact blots the key out of text that came from the server or the
// network: a server may echo the credential it refused.
func (c *Client) redact(s string) string {
	if c.cfg.Key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.Key, "[redacted]")
}

// endpointURL checks a configured URL and completes it with the API's path.
func endpointURL(raw, path string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("remote engine: no URL given")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("remote engine URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("remote engine URL %q: want an http:// or https:// URL", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("remote engine URL %q: no host", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("remote engine URL %q: credentials do not belong in the URL; use --engine-key-env or --engine-key-file", u.Redacted())
	}
	switch strings.TrimRight(u.Path, "/") {
	case "":
		u.Path = path
	case "/v1":
		if p, ok := strings.CutPrefix(path, "/v1"); ok {
			u.Path = "/v1" + p
		}
	}
	return u, nil
}

// isLoopback reports whether host is this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
