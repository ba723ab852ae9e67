package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/infuse-lsp/infuse/kernels/cpu"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		want := 3
		if cpu.AMX() {
			want = 4 // and the AMX line
		}
		if len(lines) != want || !strings.HasPrefix(lines[0], "infuse  ") || !strings.HasPrefix(lines[1], "go      go1.") ||
			!strings.HasPrefix(lines[2], "kernels ") || want == 4 && !strings.HasPrefix(lines[3], "amx     ") {
			t.Errorf("%q printed:\n%s", args, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"version", "extra"}, &stdout, &stderr); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}
