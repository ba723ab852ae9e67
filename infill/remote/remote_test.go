package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

// The key the tests configure; it must never appear in an error or a log.
const testKey = "sk-test-0123456789abcdef"

// call is one request a test server saw.
type call struct {
	method, path, auth, contentType, accept string
	body                                    map[string]any
}

// server starts an httptest server that records each request and hands it
// to answer.
func server(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, func() []call) {
	t.Helper()
	var mu sync.Mutex
	var calls []call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c := call{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"),
			contentType: r.Header.Get("Content-Type"), accept: r.Header.Get("Accept")}
		if err := json.Unmarshal(raw, &c.body); err != nil {
			t.Errorf("request body is not a JSON object: %v: %s", err, raw)
		}
		mu.Lock()
		calls = append(calls, c)
		n := len(calls)
		mu.Unlock()
		answer(w, r, n)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []call {
		mu.Lock()
		defer mu.Unlock()
		return slices(calls)
	}
}

func slices(c []call) []call { return append([]call(nil), c...) }

func client(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sse writes server-sent events, flushing after each.
func sse(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for _, e := range events {
		fmt.Fprintf(w, "data: %s\n\n", e)
		w.(http.Flusher).Flush()
	}
}

// ndjson writes JSON lines, flushing after each.
func ndjson(w http.ResponseWriter, lines ...string) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	for _, l := range lines {
		fmt.Fprintln(w, l)
		w.(http.Flusher).Flush()
	}
}

func jsonAnswer(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, body)
}

// wantFields checks body's fields one by one; a nil want means absent.
func wantFields(t *testing.T, body map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, ok := body[k]
		if v == nil {
			if ok {
				t.Errorf("field %q = %v, want it absent", k, got)
			}
			continue
		}
		if !ok {
			t.Errorf("field %q missing; body %v", k, body)
			continue
		}
		// JSON numbers decode as float64, lists as []any.
		wj, _ := json.Marshal(v)
		var w any
		json.Unmarshal(wj, &w)
		if !reflect.DeepEqual(got, w) {
			t.Errorf("field %q = %#v, want %#v", k, got, w)
		}
	}
}

const (
	goPrefix = "func add(a, b int) int {\n\treturn "
	goSuffix = "\n}\n"
)

func TestOpenAIStream(t *testing.T) {
	srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		sse(w,
			`{"id":"c1","object":"text_completion","choices":[{"text":"a","index":0,"finish_reason":null}]}`,
			`{"id":"c1","object":"text_completion","choices":[{"text":" + b","index":0,"finish_reason":"stop"}]}`,
			`{"id":"c1","object":"text_completion","choices":[],"usage":{"prompt_tokens":17,"completion_tokens":3,"total_tokens":20}}`,
			`[DONE]`)
	})
	c := client(t, Config{API: OpenAI, URL: srv.URL, Model: "mercury-coder", Key: testKey})
	res, err := c.Complete(context.Background(), infill.Request{Prefix: goPrefix, Suffix: goSuffix, Mode: infill.SingleLine})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "a + b" {
		t.Errorf("text %q, want %q", res.Text, "a + b")
	}
	if f := res.Figures; f.FirstPass <= 0 || f.FirstPass > f.Total {
		t.Errorf("figures %+v: want the time to the first text within the total", f)
	}
	if res.Figures.Tokens != 3 || res.Figures.CanvasTokens != 17 || res.Figures.Total <= 0 {
		t.Errorf("figures %+v: want tokens 3, canvas 17, a total time", res.Figures)
	}
	cs := calls()
	if len(cs) != 1 {
		t.Fatalf("%d requests, want 1", len(cs))
	}
	got := cs[0]
	if got.method != "POST" || got.path != "/v1/completions" || got.contentType != "application/json" {
		t.Errorf("request %s %s (%s), want POST /v1/completions (application/json)", got.method, got.path, got.contentType)
	}
	if got.auth != "Bearer "+testKey {
		t.Errorf("Authorization %q, want the bearer key", got.auth)
	}
	if !strings.Contains(got.accept, "text/event-stream") {
		t.Errorf("Accept %q, want text/event-stream", got.accept)
	}
	wantFields(t, got.body, map[string]any{
		"model": "mercury-coder", "prompt": goPrefix, "suffix": goSuffix,
		"max_tokens": DefaultSingleLineTokens, "temperature": 0, "stream": true, "stop": []string{"\n"},
	})
}

func TestOpenAIOneAnswer(t *testing.T) {
	srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		jsonAnswer(w, `{"id":"c2","object":"text_completion","choices":[{"text":"\treturn a + b\n}\n","index":0,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":8}}`)
	})
	c := client(t, Config{API: OpenAI, URL: srv.URL + "/v1", Model: "qwen", NoStream: true, MultiLineTokens: 99})
	prefix := "func add(a, b int) int {\n"
	res, err := c.Complete(context.Background(), infill.Request{Prefix: prefix, Suffix: "}\n", Mode: infill.MultiLine})
	if err != nil {
		t.Fatal(err)
	}
	// The closing brace the suffix holds is not repeated.
	if res.Text != "\treturn a + b\n" {
		t.Errorf("text %q, want the body without the suffix's brace", res.Text)
	}
	if res.Figures.Tokens != 8 {
		t.Errorf("tokens %d, want 8", res.Figures.Tokens)
	}
	got := calls()[0]
	if got.path != "/v1/completions" || got.auth != "" {
		t.Errorf("path %q auth %q: want /v1/completions and no key", got.path, got.auth)
	}
	wantFields(t, got.body, map[string]any{"stream": false, "max_tokens": 99, "stop": nil, "prompt": prefix, "suffix": "}\n"})
}

// A single-line completion stops reading at its line break and closes the
// request, although the server would go on.
func TestSingleLineStopsAtNewline(t *testing.T) {
	for _, api := range []API{OpenAI, Ollama, LlamaCpp} {
		t.Run(string(api), func(t *testing.T) {
			ended := make(chan struct{})
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				switch api {
				case OpenAI:
					sse(w, `{"choices":[{"text":"a + b","index":0}]}`, `{"choices":[{"text":"\n\tx := 1","index":0}]}`)
				case Ollama:
					ndjson(w, `{"response":"a + b","done":false}`, `{"response":"\n\tx := 1","done":false}`)
				case LlamaCpp:
					sse(w, `{"content":"a + b","stop":false}`, `{"content":"\n\tx := 1","stop":false}`)
				}
				<-r.Context().Done() // a server still generating
				close(ended)
			})
			c := client(t, Config{API: api, URL: srv.URL, Model: "m"})
			res, err := c.Complete(context.Background(), infill.Request{Prefix: goPrefix, Suffix: goSuffix, Mode: infill.SingleLine})
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != "a + b" {
				t.Errorf("text %q, want %q", res.Text, "a + b")
			}
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the server's request was not closed after the line break")
			}
		})
	}
}

func TestOllama(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if stream {
					ndjson(w,
						`{"model":"qwen2.5-coder:1.5b","created_at":"2026-01-01T00:00:00Z","response":"a +","done":false}`,
						`{"model":"qwen2.5-coder:1.5b","created_at":"2026-01-01T00:00:00Z","response":" b","done":false}`,
						`{"model":"qwen2.5-coder:1.5b","created_at":"2026-01-01T00:00:00Z","response":"","done":true,"done_reason":"stop","total_duration":5000000,"prompt_eval_count":21,"eval_count":4}`)
					return
				}
				jsonAnswer(w, `{"model":"qwen2.5-coder:1.5b","response":"a + b","done":true,"prompt_eval_count":21,"eval_count":4}`)
			})
			c := client(t, Config{API: Ollama, URL: srv.URL, Model: "qwen2.5-coder:1.5b", NoStream: !stream, Temperature: 0.2})
			res, err := c.Complete(context.Background(), infill.Request{Prefix: goPrefix, Suffix: goSuffix, Mode: infill.Auto})
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != "a + b" || res.Figures.Tokens != 4 || res.Figures.CanvasTokens != 21 {
				t.Errorf("got %q %+v, want \"a + b\" with 4 tokens of 21", res.Text, res.Figures)
			}
			got := calls()[0]
			if got.path != "/api/generate" {
				t.Errorf("path %q, want /api/generate", got.path)
			}
			// Auto after "return " with the line's end next: single-line.
			wantFields(t, got.body, map[string]any{
				"model": "qwen2.5-coder:1.5b", "prompt": goPrefix, "suffix": goSuffix, "stream": stream, "raw": false,
				"options": map[string]any{"num_predict": DefaultSingleLineTokens, "temperature": 0.2, "stop": []string{"\n"}},
			})
		})
	}
}

func TestLlamaCpp(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if stream {
					sse(w, `{"content":"\treturn","stop":false}`, `{"content":" a + b\n","stop":false}`,
						`{"content":"","stop":true,"tokens_predicted":5,"tokens_evaluated":30,"timings":{"predicted_ms":12.5}}`)
					return
				}
				jsonAnswer(w, `{"content":"\treturn a + b\n","stop":true,"tokens_predicted":5,"tokens_evaluated":30}`)
			})
			c := client(t, Config{API: LlamaCpp, URL: srv.URL, NoStream: !stream})
			prefix := "func add(a, b int) int {\n"
			res, err := c.Complete(context.Background(), infill.Request{Prefix: prefix, Suffix: "}\n", Mode: infill.MultiLine, MaxTokens: 40})
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != "\treturn a + b\n" || res.Figures.Tokens != 5 || res.Figures.CanvasTokens != 30 {
				t.Errorf("got %q %+v", res.Text, res.Figures)
			}
			got := calls()[0]
			if got.path != "/infill" {
				t.Errorf("path %q, want /infill", got.path)
			}
			wantFields(t, got.body, map[string]any{
				"input_prefix": prefix, "input_suffix": "}\n", "n_predict": 40, "stream": stream,
				"cache_prompt": true, "temperature": 0, "stop": nil, "model": nil, "input_extra": nil,
			})
		})
	}
}

// Snippets of other files travel as llama.cpp's input_extra, in order; the
// other APIs have no field for them and send nothing of them.
func TestInputExtra(t *testing.T) {
	extra := []infill.Snippet{
		{Filename: "/src/util.go", Text: "func clamp(x, lo, hi int) int {\n"},
		{Filename: "/src/types.go", Text: "type Point struct{ X, Y int }\n"},
	}
	for _, api := range []API{LlamaCpp, OpenAI, Ollama} {
		t.Run(string(api), func(t *testing.T) {
			srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				switch api {
				case OpenAI:
					jsonAnswer(w, `{"choices":[{"text":"p.X","index":0}]}`)
				case Ollama:
					jsonAnswer(w, `{"response":"p.X","done":true}`)
				case LlamaCpp:
					jsonAnswer(w, `{"content":"p.X","stop":true}`)
				}
			})
			c := client(t, Config{API: api, URL: srv.URL, Model: "m", NoStream: true})
			if _, err := c.Complete(context.Background(), infill.Request{Prefix: "x := ", Suffix: "\n", Extra: extra}); err != nil {
				t.Fatal(err)
			}
			body := calls()[0].body
			if api != LlamaCpp {
				for k, v := range body {
					if s, _ := json.Marshal(v); strings.Contains(string(s), "clamp") {
						t.Errorf("field %q carries a snippet: %s", k, s)
					}
				}
				return
			}
			wantFields(t, body, map[string]any{"input_extra": []map[string]string{
				{"filename": "/src/util.go", "text": "func clamp(x, lo, hi int) int {\n"},
				{"filename": "/src/types.go", "text": "type Point struct{ X, Y int }\n"},
			}, "input_prefix": "x := "})
		})
	}
}

// Cancelling the caller's context closes the request on the server at once,
// before any answer and in the middle of a stream.
func TestCancelReachesServer(t *testing.T) {
	for _, midStream := range []bool{false, true} {
		t.Run(fmt.Sprint("midStream=", midStream), func(t *testing.T) {
			started, ended := make(chan struct{}), make(chan struct{})
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if midStream {
					sse(w, `{"choices":[{"text":"x","index":0}]}`)
				}
				close(started)
				<-r.Context().Done()
				close(ended)
			})
			c := client(t, Config{API: OpenAI, URL: srv.URL, Model: "m", Timeout: time.Minute})
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				_, err := c.Complete(ctx, infill.Request{Prefix: "x", Mode: infill.MultiLine})
				errc <- err
			}()
			<-started
			cancel()
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the server's request context did not end after the client cancelled")
			}
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want context.Canceled", err)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	ended := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-r.Context().Done():
			close(ended)
		case <-time.After(20 * time.Second):
		}
	})
	c := client(t, Config{API: LlamaCpp, URL: srv.URL, Timeout: 50 * time.Millisecond})
	_, err := c.Complete(context.Background(), infill.Request{Prefix: "x"})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("error %v, want a timeout naming 50ms", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the timed-out request stayed open on the server")
	}
}

func TestDroppedMidStream(t *testing.T) {
	for _, api := range []API{OpenAI, Ollama, LlamaCpp} {
		t.Run(string(api), func(t *testing.T) {
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				switch api {
				case OpenAI:
					sse(w, `{"choices":[{"text":"abc","index":0}]}`)
				case Ollama:
					ndjson(w, `{"response":"abc","done":false}`)
				case LlamaCpp:
					sse(w, `{"content":"abc","stop":false}`)
				}
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				conn.Close() // no terminating chunk
			})
			c := client(t, Config{API: api, URL: srv.URL, Model: "m"})
			_, err := c.Complete(context.Background(), infill.Request{Prefix: "x", Mode: infill.MultiLine})
			if err == nil || !strings.Contains(err.Error(), "broke off after 3 bytes") {
				t.Errorf("error %v, want one saying the stream broke off", err)
			}
		})
	}
}

func TestRetryAfter429(t *testing.T) {
	srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"rate limited"}}`)
			return
		}
		jsonAnswer(w, `{"choices":[{"text":"ok","index":0}]}`)
	})
	c := client(t, Config{API: OpenAI, URL: srv.URL, Model: "m"})
	res, err := c.Complete(context.Background(), infill.Request{Prefix: "x", Mode: infill.SingleLine})
	if err != nil || res.Text != "ok" {
		t.Fatalf("got %q, %v; want ok after one retry", res.Text, err)
	}
	if n := len(calls()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":"model crashed"}`)
	})
	c := client(t, Config{API: Ollama, URL: srv.URL, Model: "m", Retries: 2})
	_, err := c.Complete(context.Background(), infill.Request{Prefix: "x"})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 500 || !strings.Contains(err.Error(), "model crashed") {
		t.Errorf("error %v, want a 500 StatusError with the server's message", err)
	}
	if n := len(calls()); n != 3 {
		t.Errorf("%d requests, want 3 (one and two retries)", n)
	}
}

func TestNoRetry(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		header string
	}{
		{"bad request", http.StatusBadRequest, ""},
		{"retry past deadline", http.StatusServiceUnavailable, "30"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if c.header != "" {
					w.Header().Set("Retry-After", c.header)
				}
				w.WriteHeader(c.status)
			})
			cl := client(t, Config{API: OpenAI, URL: srv.URL, Model: "m", Timeout: 5 * time.Second})
			_, err := cl.Complete(context.Background(), infill.Request{Prefix: "x"})
			var se *StatusError
			if !errors.As(err, &se) || se.Code != c.status {
				t.Errorf("error %v, want status %d", err, c.status)
			}
			if n := len(calls()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestStatusHints(t *testing.T) {
	for _, c := range []struct {
		status       int
		header, body string
		want         string
	}{
		{http.StatusBadRequest, "", `{"error":{"message":"suffix is not currently supported","type":"BadRequestError","code":400}}`, "does not take a suffix"},
		{http.StatusNotFound, "", `{"error":"model 'x' not found"}`, `is model "m" there?`},
		{http.StatusTemporaryRedirect, "/v2/completions", "", "redirects are not followed: set the URL to http://127.0.0.1"},
	} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if c.header != "" {
					w.Header().Set("Location", c.header)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			_, err := client(t, Config{API: OpenAI, URL: srv.URL, Model: "m"}).Complete(context.Background(), infill.Request{Prefix: "x"})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
			if n := len(calls()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestCancelledRequestIsNotRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		cancel()
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c := client(t, Config{API: OpenAI, URL: srv.URL, Model: "m"})
	_, err := c.Complete(ctx, infill.Request{Prefix: "x"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if n := len(calls()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestMalformedAnswers(t *testing.T) {
	for _, c := range []struct {
		name     string
		api      API
		noStream bool
		answer   func(w http.ResponseWriter)
		want     string
	}{
		{"openai bad JSON", OpenAI, true, func(w http.ResponseWriter) { jsonAnswer(w, `{"choices":[{"text":`) }, "malformed JSON"},
		{"openai no choices", OpenAI, true, func(w http.ResponseWriter) { jsonAnswer(w, `{"id":"x"}`) }, "no choices"},
		{"openai bad event", OpenAI, false, func(w http.ResponseWriter) { sse(w, `{"choices":[{"text":"a"}]}`, `{nope`) }, "malformed event 2"},
		{"openai empty stream", OpenAI, false, func(w http.ResponseWriter) { sse(w) }, "empty event stream"},
		{"openai error event", OpenAI, false, func(w http.ResponseWriter) { sse(w, `{"error":{"message":"overloaded"}}`) }, "overloaded"},
		{"ollama bad line", Ollama, false, func(w http.ResponseWriter) { ndjson(w, `{"response":"a","done":false}`, `oops`) }, "malformed answer line 2"},
		{"ollama error line", Ollama, false, func(w http.ResponseWriter) { ndjson(w, `{"error":"model not found"}`) }, "model not found"},
		{"ollama no done", Ollama, false, func(w http.ResponseWriter) { ndjson(w, `{"response":"ab","done":false}`) }, "broke off after 2 bytes"},
		{"llamacpp no content", LlamaCpp, true, func(w http.ResponseWriter) { jsonAnswer(w, `{"stop":true}`) }, "no content"},
		{"llamacpp no stop", LlamaCpp, false, func(w http.ResponseWriter) { sse(w, `{"content":"a","stop":false}`) }, "broke off"},
		{"html", OpenAI, false, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<html>login</html>")
		}, `answered "text/html; charset=utf-8", not JSON`},
		{"no content type", LlamaCpp, false, func(w http.ResponseWriter) {
			w.Header()["Content-Type"] = nil
			w.Write([]byte{0, 1, 2})
		}, "not JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) { c.answer(w) })
			cl := client(t, Config{API: c.api, URL: srv.URL, Model: "m", NoStream: c.noStream})
			_, err := cl.Complete(context.Background(), infill.Request{Prefix: "x", Mode: infill.MultiLine})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// A refused key gets an error that says which key, without the key, even
// when the server echoes it; the debug log never holds it either.
func TestUnauthorizedHidesKey(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv, calls := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s","type":"invalid_request_error"}}`, testKey)
			})
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := client(t, Config{API: OpenAI, URL: srv.URL, Model: "m", Key: testKey, KeySource: "$INCEPTION_API_KEY", Logger: log})
			_, err := c.Complete(context.Background(), infill.Request{Prefix: "x"})
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, testKey) || strings.Contains(logs.String(), testKey) {
				t.Errorf("the key leaked:\nerror: %s\nlog: %s", msg, logs.String())
			}
			if !strings.Contains(msg, fmt.Sprint(status)) || !strings.Contains(msg, "$INCEPTION_API_KEY was refused") {
				t.Errorf("error %q, want the status and which key was refused", msg)
			}
			if logs.Len() == 0 {
				t.Error("nothing logged at debug level; the test would not see a leak")
			}
			if n := len(calls()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry on %d)", n, status)
			}
		})
	}
	// No key at all: say how to give one.
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusUnauthorized) })
	_, err := client(t, Config{API: OpenAI, URL: srv.URL, Model: "m"}).Complete(context.Background(), infill.Request{Prefix: "x"})
	if err == nil || !strings.Contains(err.Error(), "--engine-key-env") {
		t.Errorf("error %v, want a hint to configure a key", err)
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jsonAnswer(w, `{"content":"ok","stop":true}`)
	}))
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	// Verification is on by default: the test server's certificate is not
	// trusted.
	c := client(t, Config{API: LlamaCpp, URL: srv.URL, Key: testKey})
	_, err := c.Complete(context.Background(), infill.Request{Prefix: "x"})
	if err == nil || !strings.Contains(err.Error(), "TLS") || strings.Contains(err.Error(), testKey) {
		t.Errorf("error %v, want a TLS error without the key", err)
	}
	// Trusting its certificate makes it work.
	c = client(t, Config{API: LlamaCpp, URL: srv.URL, Key: testKey, TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	if res, err := c.Complete(context.Background(), infill.Request{Prefix: "x"}); err != nil || res.Text != "ok" {
		t.Errorf("with the server's CA: %q, %v", res.Text, err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no api", Config{URL: "http://127.0.0.1:1", Model: "m"}, "want openai, ollama or llamacpp"},
		{"no url", Config{API: OpenAI, Model: "m"}, "no URL"},
		{"ftp", Config{API: OpenAI, URL: "ftp://example.com", Model: "m"}, "want an http:// or https:// URL"},
		{"no host", Config{API: OpenAI, URL: "http:///v1", Model: "m"}, "no host"},
		{"unparsable", Config{API: OpenAI, URL: "http://[::1", Model: "m"}, "URL"},
		{"credentials in URL", Config{API: OpenAI, URL: "https://user:" + testKey + "@example.com", Model: "m"}, "credentials do not belong in the URL"},
		{"no model", Config{API: Ollama, URL: "http://127.0.0.1:11434"}, "model name is required"},
		{"key in clear", Config{API: OpenAI, URL: "http://example.com", Model: "m", Key: testKey}, "refusing to send an API key in clear text"},
		{"bad key", Config{API: OpenAI, URL: "https://example.com", Model: "m", Key: "sk bad"}, "want one token"},
		{"negative", Config{API: OpenAI, URL: "https://example.com", Model: "m", Timeout: -1}, "must not be negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v, want an error containing %q", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), testKey) {
				t.Errorf("error %q holds the key", err)
			}
		})
	}
}

func TestEndpointURL(t *testing.T) {
	for _, c := range []struct {
		api       API
		url, want string
	}{
		{OpenAI, "http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/completions"},
		{OpenAI, "http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1/completions"},
		{OpenAI, "https://api.inceptionlabs.ai/v1/fim/completions", "https://api.inceptionlabs.ai/v1/fim/completions"},
		{Ollama, "http://localhost:11434/", "http://localhost:11434/api/generate"},
		{LlamaCpp, "http://127.0.0.1:8080", "http://127.0.0.1:8080/infill"},
		{LlamaCpp, "http://127.0.0.1:8080/prefix/infill", "http://127.0.0.1:8080/prefix/infill"},
	} {
		c2, err := New(Config{API: c.api, URL: c.url, Model: "m"})
		if err != nil {
			t.Errorf("%s %s: %v", c.api, c.url, err)
			continue
		}
		if got := c2.Endpoint(); got != c.want {
			t.Errorf("%s %s: endpoint %s, want %s", c.api, c.url, got, c.want)
		}
	}
}

func TestConcurrencyLimit(t *testing.T) {
	var inFlight, most atomic.Int32
	gate := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		now := inFlight.Add(1)
		for {
			m := most.Load()
			if now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		<-gate
		inFlight.Add(-1)
		jsonAnswer(w, `{"content":"ok","stop":true}`)
	})
	c := client(t, Config{API: LlamaCpp, URL: srv.URL, Concurrency: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			_, err := c.Complete(context.Background(), infill.Request{Prefix: "x"})
			errs <- err
		})
	}
	for inFlight.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if m := most.Load(); m != 2 {
		t.Errorf("at most %d requests in flight, want 2", m)
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		sse(w, `{"choices":[{"text":"ok","index":0}]}`, `[DONE]`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := client(t, Config{API: OpenAI, URL: srv.URL, Model: "m"})
	for range 5 {
		if _, err := c.Complete(context.Background(), infill.Request{Prefix: "x", Mode: infill.MultiLine}); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 sequential requests, want 1", n)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-4", 0}, {"soon", 0}, {"3600", time.Minute},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(c.h, now); got != c.want {
			t.Errorf("retryAfter(%q) = %s, want %s", c.h, got, c.want)
		}
	}
}

func TestKeyFromFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok", testKey+"\n", 0o600)
	if k, err := KeyFromFile(ok); err != nil || k != testKey {
		t.Errorf("KeyFromFile(0600) = %q, %v", k, err)
	}
	for _, c := range []struct {
		path, want string
	}{
		{write("open", testKey, 0o644), "readable by others"},
		{write("group", testKey, 0o640), "readable by others"},
		{write("empty", "\n", 0o600), "is empty"},
		{write("two", testKey+" "+testKey, 0o600), "want one token"},
		{filepath.Join(dir, "missing"), "no such file"},
		{dir, "not a regular file"},
	} {
		_, err := KeyFromFile(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("KeyFromFile(%s): %v, want %q", c.path, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), testKey) {
			t.Errorf("KeyFromFile(%s): error %q holds the key", c.path, err)
		}
	}
}

func TestKeyFromEnv(t *testing.T) {
	t.Setenv("INFUSE_TEST_KEY", " "+testKey+"\n")
	if k, err := KeyFromEnv("INFUSE_TEST_KEY"); err != nil || k != testKey {
		t.Errorf("KeyFromEnv = %q, %v", k, err)
	}
	t.Setenv("INFUSE_TEST_EMPTY", "")
	for name, want := range map[string]string{"INFUSE_TEST_UNSET_VAR": "INFUSE_TEST_UNSET_VAR is not set", "INFUSE_TEST_EMPTY": "is empty", "": "no environment variable"} {
		if _, err := KeyFromEnv(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("KeyFromEnv(%q): %v, want %q", name, err, want)
		}
	}
}
