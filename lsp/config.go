package lsp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/infuse-lsp/infuse/infill"
	"github.com/infuse-lsp/infuse/infill/remote"
)

// Config is what a session can be told to do. The server starts from the
// Config in its Options and overlays the client's settings on it (see
// README.md for the JSON shape).
type Config struct {
	Model  string // model directory or file; "" means the engine's default
	Device string // "cpu", "cuda", "auto"; "" means the engine's default

	// Mode fixes completions to single- or multi-line; Auto decides from
	// the text around the cursor.
	Mode      infill.Mode
	MaxTokens int // bound on one completion; 0 means the engine's default

	// Enable maps LSP language ids to whether to complete in them; the key
	// "*" is the default for languages not listed. Missing "*" means true.
	Enable map[string]bool

	Debounce time.Duration // wait before running the model for an automatic request
	Timeout  time.Duration // deadline for one completion, debounce excluded

	// PrefixChars and SuffixChars bound the text sent to the model before
	// and after the cursor, in characters (code points).
	PrefixChars int
	SuffixChars int

	// HoleMarkers are the strings that "Fill holes" replaces. The Python
	// form, a line holding only "...", is always recognised in Python.
	HoleMarkers []string

	// Engine says what completes: the in-process model, or a serving
	// engine over HTTP.
	Engine Engine

	// EngineURLs are the remote engine URLs the client's settings may
	// name besides loopback ones and the URL the engine was given on the
	// command line: each is an origin ("https://gpu.example.com:8000") or
	// a URL whose path the engine URL must start with. Only the command
	// line sets it (infuse serve --engine-allow-url); see allowedURL.
	EngineURLs []string

	// ExtraChunks and ExtraBytes bound the snippets of other open files
	// sent with a completion (llama.cpp's input_extra; other engines take
	// none): at most ExtraChunks chunks of up to 32 lines, ExtraBytes
	// bytes in all. 0 sends none.
	ExtraChunks int
	ExtraBytes  int
}

// Engine names the completer: Kind "" or "local" is the in-process model
// (Model and Device above); "openai", "ollama" or "llamacpp" is a server of
// that API at URL. The API key is never part of the configuration: KeyEnv
// names the environment variable that holds it, or KeyFile a file only its
// owner can read.
type Engine struct {
	Kind        string
	URL         string
	Model       string // the name the server knows its model by
	KeyEnv      string
	KeyFile     string
	Concurrency int           // requests in flight at once; 0: the client's default
	Timeout     time.Duration // one remote request, retries included; 0: the client's default
}

// Remote reports whether e names a server rather than the in-process model.
func (e Engine) Remote() bool { return e.Kind != "" && e.Kind != "local" }

// DefaultConfig is the configuration a session starts from.
func DefaultConfig() Config {
	return Config{
		Mode:        infill.Auto,
		Debounce:    20 * time.Millisecond, // measured: p50 91 ms at 20 ms, 117 ms at 40, 148 at 75 (infuse bench --lsp)
		Timeout:     5 * time.Second,
		PrefixChars: 4000,
		SuffixChars: 1500,
		HoleMarkers: []string{"/*?*/"},
		ExtraChunks: 8,
		ExtraBytes:  8 << 10,
	}
}

// Enabled reports whether completions are on for language.
func (c *Config) Enabled(language string) bool {
	if on, ok := c.Enable[language]; ok {
		return on
	}
	if on, ok := c.Enable["*"]; ok {
		return on
	}
	return true
}

// settings is the JSON shape of the "infuse" section. Pointers tell a field
// that was set from one that was left out.
type settings struct {
	Model       *string         `json:"model"`
	Device      *string         `json:"device"`
	Mode        *string         `json:"mode"`
	MaxTokens   *int            `json:"maxTokens"`
	Enable      json.RawMessage `json:"enable"`
	DebounceMs  *int            `json:"debounceMs"`
	TimeoutMs   *int            `json:"timeoutMs"`
	PrefixChars *int            `json:"prefixChars"`
	SuffixChars *int            `json:"suffixChars"`
	HoleMarkers []string        `json:"holeMarkers"`
	Engine      *engineSettings `json:"engine"`
	ExtraChunks *int            `json:"extraChunks"`
	ExtraBytes  *int            `json:"extraBytes"`
}

// engineSettings is the JSON shape of the "engine" object.
type engineSettings struct {
	Kind        *string `json:"kind"`
	URL         *string `json:"url"`
	Model       *string `json:"model"`
	KeyEnv      *string `json:"keyEnv"`
	KeyFile     *string `json:"keyFile"`
	Concurrency *int    `json:"concurrency"`
	TimeoutMs   *int    `json:"timeoutMs"`
}

// parseSettings overlays the client's settings (raw JSON; either the
// "infuse" section itself or an object holding it under "infuse") on base. A
// bad value is reported in the returned error and leaves that field as it was
// in base; the other fields still apply.
func parseSettings(base Config, raw []byte) (Config, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return base, nil
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(raw, &outer); err != nil {
		return base, fmt.Errorf("settings are not a JSON object: %w", err)
	}
	if section, ok := outer["infuse"]; ok {
		raw = section
		if s := bytes.TrimSpace(raw); len(s) == 0 || string(s) == "null" {
			return base, nil
		}
	}

	var errs []error
	var s settings
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		// Decode again without the strict check, so that one unknown or
		// mistyped key doesn't throw away the rest.
		errs = append(errs, err)
		s = settings{}
		if err := json.Unmarshal(raw, &s); err != nil {
			return base, fmt.Errorf("infuse settings: %w", err)
		}
	}

	c := base
	if s.Model != nil {
		c.Model = *s.Model
	}
	if s.Device != nil {
		switch *s.Device {
		case "", "cpu", "cuda", "auto":
			c.Device = *s.Device
		default:
			errs = append(errs, fmt.Errorf("device %q: want cpu, cuda or auto", *s.Device))
		}
	}
	if s.Mode != nil {
		if m, ok := infill.ParseMode(*s.Mode); ok {
			c.Mode = m
		} else {
			errs = append(errs, fmt.Errorf("mode %q: want auto, single-line or multi-line", *s.Mode))
		}
	}
	nonNegative := func(name string, v *int, set func(int)) {
		if v == nil {
			return
		}
		if *v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", name, *v))
			return
		}
		set(*v)
	}
	nonNegative("maxTokens", s.MaxTokens, func(v int) { c.MaxTokens = v })
	nonNegative("debounceMs", s.DebounceMs, func(v int) { c.Debounce = time.Duration(v) * time.Millisecond })
	nonNegative("timeoutMs", s.TimeoutMs, func(v int) {
		if v == 0 {
			errs = append(errs, errors.New("timeoutMs 0: must be positive"))
			return
		}
		c.Timeout = time.Duration(v) * time.Millisecond
	})
	nonNegative("prefixChars", s.PrefixChars, func(v int) { c.PrefixChars = v })
	nonNegative("suffixChars", s.SuffixChars, func(v int) { c.SuffixChars = v })
	nonNegative("extraChunks", s.ExtraChunks, func(v int) { c.ExtraChunks = v })
	nonNegative("extraBytes", s.ExtraBytes, func(v int) { c.ExtraBytes = v })
	if s.HoleMarkers != nil {
		markers := slices.DeleteFunc(slices.Clone(s.HoleMarkers), func(m string) bool { return strings.TrimSpace(m) == "" })
		c.HoleMarkers = markers
	}
	if s.Engine != nil {
		var err error
		if c.Engine, err = overlayEngine(c.Engine, s.Engine, c.EngineURLs); err != nil {
			errs = append(errs, err)
		}
	}
	if len(s.Enable) > 0 && string(s.Enable) != "null" {
		var all bool
		var per map[string]bool
		switch {
		case json.Unmarshal(s.Enable, &all) == nil:
			c.Enable = map[string]bool{"*": all}
		case json.Unmarshal(s.Enable, &per) == nil:
			c.Enable = per
		default:
			errs = append(errs, fmt.Errorf("enable %s: want true, false or {\"language\": bool}", s.Enable))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("infuse settings: %w", err)
	}
	return c, nil
}

// overlayEngine applies the "engine" object to e. A bad value leaves e as it
// was: half of an engine change (a new kind with the old URL) would send the
// code somewhere the user did not name. A URL that is not e's own must pass
// allowedURL.
func overlayEngine(e Engine, s *engineSettings, allow []string) (Engine, error) {
	next := e
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&next.Kind, s.Kind)
	set(&next.URL, s.URL)
	set(&next.Model, s.Model)
	var errs []error
	// Where the key comes from is the command line's to say, and the key
	// goes only to the URL it was given with: settings can come from a
	// workspace the user did not write, and must not be able to send a
	// secret to a server of their choosing.
	if s.KeyEnv != nil || s.KeyFile != nil {
		errs = append(errs, errors.New("engine.keyEnv and engine.keyFile can only be given on the command line (infuse serve --engine-key-env or --engine-key-file)"))
	}
	if next.URL != e.URL {
		next.KeyEnv, next.KeyFile = "", ""
	}
	if next.Remote() {
		if _, ok := remote.ParseAPI(next.Kind); !ok {
			errs = append(errs, fmt.Errorf("engine.kind %q: want local, openai, ollama or llamacpp", next.Kind))
		} else if next.URL == "" {
			errs = append(errs, fmt.Errorf("engine.kind %q needs engine.url", next.Kind))
		} else if next.URL != e.URL && !allowedURL(next.URL, allow) {
			errs = append(errs, fmt.Errorf("engine.url %q: settings may only name a server on this machine (localhost, 127.0.0.1, [::1]); "+
				"give another server on the command line (infuse serve --engine-url, or --engine-allow-url to let settings choose it)", redactURL(next.URL)))
		}
	}
	if next.KeyEnv != "" && next.KeyFile != "" {
		errs = append(errs, errors.New("engine: give keyEnv or keyFile, not both"))
	}
	if s.Concurrency != nil {
		if *s.Concurrency < 0 {
			errs = append(errs, fmt.Errorf("engine.concurrency %d: must not be negative", *s.Concurrency))
		} else {
			next.Concurrency = *s.Concurrency
		}
	}
	if s.TimeoutMs != nil {
		if *s.TimeoutMs < 0 {
			errs = append(errs, fmt.Errorf("engine.timeoutMs %d: must not be negative", *s.TimeoutMs))
		} else {
			next.Timeout = time.Duration(*s.TimeoutMs) * time.Millisecond
		}
	}
	if err := errors.Join(errs...); err != nil {
		return e, err
	}
	return next, nil
}

// allowedURL reports whether the client's settings may point the engine at
// raw. Settings can come from the workspace (.vscode/settings.json,
// .helix/languages.toml, a project's .nvim.lua): a repository the user
// merely opened must not be able to send the code they edit to a server
// of its choosing. So settings may name a loopback server (the code stays
// on this machine), or a URL the command line allowed (allow: origins or
// URL prefixes); the URL the engine was given on the command line needs no
// permission, and the caller checks for it.
func allowedURL(raw string, allow []string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return false
	}
	if host := u.Hostname(); host == "localhost" || net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback() {
		return true
	}
	for _, a := range allow {
		p, err := url.Parse(strings.TrimSpace(a))
		if err != nil || p.Host == "" {
			continue
		}
		if !strings.EqualFold(p.Scheme, u.Scheme) || !strings.EqualFold(p.Host, u.Host) {
			continue
		}
		prefix := strings.TrimRight(p.Path, "/")
		if prefix == "" || u.Path == prefix || strings.HasPrefix(u.Path, prefix+"/") {
			return true
		}
	}
	return false
}

// redactURL is raw without any user:password part, for messages.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}
