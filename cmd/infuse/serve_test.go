package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

func TestServeFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--engine-allow-url", "ftp://x"}, `want an http(s) URL, not "ftp://x"`},
		{[]string{"serve", "--engine-allow-url", "/relative"}, "want an http(s) URL"},
		{[]string{"serve", "--shared-engine=maybe"}, `want true, false or auto, not "maybe"`},
		{[]string{"serve", "--debounce", "-1s"}, "--debounce must not be negative"},
		// The engine's flags are checked at start, not at the first completion.
		{[]string{"serve", "--weights", "q4"}, `--weights "q4": want auto, stored, q8_0 or bf16`},
		{[]string{"serve", "--sampler", "bogus"}, `unknown sampler "bogus"`},
		{[]string{"serve", "--threshold", "2"}, "threshold 2 outside (0,1]"},
		{[]string{"serve", "--device", "gpu"}, `--device "gpu": want cpu, cuda or auto`},
		{[]string{"serve", "--engine", "foo"}, `--engine "foo": want local, openai, ollama or llamacpp`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}

func TestURLListAndSharedFlag(t *testing.T) {
	var l urlList
	for _, u := range []string{"https://api.inceptionlabs.ai", "http://10.0.0.5:8000/v1"} {
		if err := l.Set(u); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(l, urlList{"https://api.inceptionlabs.ai", "http://10.0.0.5:8000/v1"}) {
		t.Errorf("urlList %q", l)
	}
	for _, c := range []struct {
		flag, model string
		on          bool
	}{
		{"auto", "", false}, {"auto", "/models/dream", true},
		{"true", "", true}, {"false", "/models/dream", false},
	} {
		if got := sharedFlag(c.flag).on(c.model); got != c.on {
			t.Errorf("--shared-engine=%s with model %q: shared %v, want %v", c.flag, c.model, got, c.on)
		}
	}
}
