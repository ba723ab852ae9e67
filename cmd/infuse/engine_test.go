package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// infuse complete --engine openai asks the server for the middle at the
// cursor and prints it, finished as the local engine would.
func TestCompleteWithRemoteEngine(t *testing.T) {
	const key = "sk-cmd-test-key-42"
	var got map[string]any
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		json.Unmarshal(raw, &got)
		auth = r.Header.Get("Authorization")
		if r.URL.Path != "/v1/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range []string{`{"choices":[{"text":"a + b) }","index":0}]}`, `{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":4}}`, `[DONE]`} {
			fmt.Fprintf(w, "data: %s\n\n", e)
		}
	}))
	defer srv.Close()

	src := "package p\n\nfunc f(a, b int) int { return g() }\n"
	path := filepath.Join(t.TempDir(), "f.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INFUSE_CMD_TEST_KEY", key)
	var stdout, stderr bytes.Buffer
	// Line 3, column 33: between "g(" and ")".
	code := run(context.Background(), []string{"complete", "--engine", "openai", "--engine-url", srv.URL,
		"--engine-model", "mercury-coder", "--engine-key-env", "INFUSE_CMD_TEST_KEY", "--json", path + ":3:33"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res struct {
		Text    string
		Figures struct{ Tokens int }
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	// The server repeated the rest of the line, ") }": dropped.
	if res.Text != "a + b" || res.Figures.Tokens != 4 {
		t.Errorf("got %q with %d tokens, want \"a + b\" with 4", res.Text, res.Figures.Tokens)
	}
	if got["prompt"] != src[:strings.Index(src, "g(")+2] || got["suffix"] != src[strings.Index(src, "g(")+2:] || got["model"] != "mercury-coder" {
		t.Errorf("request body %v", got)
	}
	if auth != "Bearer "+key {
		t.Errorf("Authorization %q", auth)
	}
	if strings.Contains(stderr.String(), key) {
		t.Errorf("stderr holds the key: %s", stderr.String())
	}
}

func TestRemoteEngineFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.go")
	os.WriteFile(path, []byte("package p\n\nvar x = /*?*/\n"), 0o644)
	loose := filepath.Join(t.TempDir(), "key")
	os.WriteFile(loose, []byte("sk-secret-in-loose-file"), 0o644)
	os.Chmod(loose, 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"complete", "--engine", "bogus", path + ":1:1"}, 2, `--engine "bogus": want local, openai, ollama or llamacpp`},
		{[]string{"complete", "--engine", "openai", path + ":1:1"}, 2, "--engine openai needs --engine-url"},
		{[]string{"complete", "--engine", "ollama", "--engine-url", "ftp://x", "--engine-model", "m", path + ":1:1"}, 1, "want an http:// or https:// URL"},
		{[]string{"complete", "--engine", "ollama", "--engine-url", "http://127.0.0.1:1", path + ":1:1"}, 1, "model name is required"},
		{[]string{"complete", "--engine", "llamacpp", "--engine-url", "http://127.0.0.1:1", "--engine-key-env", "INFUSE_CMD_TEST_UNSET", path + ":1:1"}, 1, "INFUSE_CMD_TEST_UNSET is not set"},
		{[]string{"complete", "--engine", "llamacpp", "--engine-url", "http://127.0.0.1:1", "--engine-key-file", loose, path + ":1:1"}, 1, "readable by others"},
		{[]string{"complete", "--engine", "llamacpp", "--engine-url", "http://127.0.0.1:1", "--engine-concurrency", "0", path + ":1:1"}, 2, "must be positive"},
		{[]string{"fill", "--engine", "llamacpp", "--engine-url", "http://127.0.0.1:1", path}, 2, "needs the in-process engine"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("infuse %s: exit %d, %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr.String(), c.code, c.want)
		}
		if strings.Contains(stderr.String(), "sk-secret-in-loose-file") {
			t.Errorf("infuse %s: stderr holds the key", strings.Join(c.args, " "))
		}
	}
}
