package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/infuse-lsp/infuse/lsp"
)

// lspBenchReport pools the typing replays over every bench file.
type lspBenchReport struct {
	Files          int     `json:"files"`
	Keystrokes     int     `json:"keystrokes"`
	Requests       int     `json:"requests"`
	Suggested      int     `json:"suggested"`
	P50Millis      float64 `json:"p50_ms"`
	P99Millis      float64 `json:"p99_ms"`
	CacheHitRate   float64 `json:"cache_hit_rate"`
	CancelledShare float64 `json:"cancelled_share"`
}

// benchLSP types a few lines of each file into `infuse serve`, a child
// process driven over stdio as an editor drives it, with realistic gaps
// between keystrokes, and pools what the replays measured.
func benchLSP(ctx context.Context, files fs.FS, root string, serveArgs []string, asJSON bool, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var rep lspBenchReport
	var lat []float64 // milliseconds
	var hits, cancelled float64
	err = fs.WalkDir(files, root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".md") {
			return err
		}
		data, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		text := string(data)
		// Type the three lines that start a third of the way in.
		start := strings.IndexByte(text[len(text)/3:], '\n') + len(text)/3 + 1
		end := start
		for range 3 {
			if i := strings.IndexByte(text[end:], '\n'); i >= 0 {
				end += i + 1
			}
		}
		cmd := exec.CommandContext(ctx, self, append([]string{"serve"}, serveArgs...)...)
		cmd.Stderr = stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		r, rerr := lsp.Replay(ctx, pipeConn{out, stdin}, lsp.ReplayOptions{
			Text: text, Language: languageOf(path), Start: start, End: end, Gap: lsp.RealisticGaps(uint64(rep.Files + 1)),
		})
		werr := cmd.Wait()
		if rerr != nil {
			return fmt.Errorf("%s: %w", path, rerr)
		}
		if werr != nil {
			return fmt.Errorf("%s: infuse serve: %w", path, werr)
		}
		rep.Files++
		rep.Keystrokes += r.Keystrokes
		rep.Requests += r.Requests
		rep.Suggested += r.Suggested
		for _, d := range r.Latencies {
			lat = append(lat, float64(d.Microseconds())/1000)
		}
		hits += r.CacheHitRate * float64(r.Requests)
		cancelled += r.CancelledShare * float64(r.Requests)
		fmt.Fprintf(stderr, "bench --lsp: %s: %d keystrokes, p50 %v\n", path, r.Keystrokes, r.P50.Round(time.Millisecond))
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(lat)
	rep.P50Millis, rep.P99Millis = percentile(lat, 0.5), percentile(lat, 0.99)
	if rep.Requests > 0 {
		rep.CacheHitRate, rep.CancelledShare = hits/float64(rep.Requests), cancelled/float64(rep.Requests)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "%d files, %d keystrokes, %d requests, %d suggestions\n", rep.Files, rep.Keystrokes, rep.Requests, rep.Suggested)
	fmt.Fprintf(stdout, "latency   p50 %.1f ms   p99 %.1f ms\n", rep.P50Millis, rep.P99Millis)
	fmt.Fprintf(stdout, "cache hits %.1f%%   cancelled before the engine ran %.1f%%\n", 100*rep.CacheHitRate, 100*rep.CancelledShare)
	return nil
}

// pipeConn joins a child's stdout and stdin into one connection.
type pipeConn struct {
	io.ReadCloser
	w io.WriteCloser
}

func (p pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p pipeConn) Close() error {
	werr := p.w.Close()
	rerr := p.ReadCloser.Close()
	if werr != nil {
		return werr
	}
	return rerr
}
