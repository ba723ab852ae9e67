package lsp

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkCompletionOverhead measures what the server adds to a completion
// (decode, document lookup, position mapping, windows, scheduling, the
// goroutine hand-offs, encode) with an instant model, over a 2,000-line
// document. It reports the time per completion and its ratio to a bare
// request round trip (infuse/stats) measured in the same run, so the figure
// does not depend on the machine.
func BenchmarkCompletionOverhead(b *testing.B) {
	var sb strings.Builder
	for i := range 2000 {
		sb.WriteString("\tfmt.Println(\"line\", ")
		sb.WriteString(strings.Repeat("x", i%40))
		sb.WriteString(")\n")
	}
	text := sb.String()
	for _, cached := range []bool{false, true} {
		name := "model"
		if cached {
			name = "cache"
		}
		b.Run(name, func(b *testing.B) {
			c := startSession(b, Options{Load: loaderOf(&fakeCompleter{}), Config: testConfig(), Logger: discardLogger()})
			c.initialize(nil, nil)
			c.open(goURI, "go", text)
			// The baseline: a request the server answers from a counter.
			const rounds = 200
			start := time.Now()
			for range rounds {
				c.mustCall("infuse/stats", nil, nil)
			}
			rpc := time.Since(start) / rounds
			b.ResetTimer()
			for i := range b.N {
				line := 1000
				if !cached {
					line = i % 2000 // a new place each time: no cache hit
				}
				c.mustCall("textDocument/inlineCompletion", inlineParams(goURI, line, 10, 1), nil)
			}
			b.StopTimer()
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(per)/float64(rpc), "x-rpc")
		})
	}
}
