package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

// loadRun is one configuration of the load benchmark: n editors against
// one engine that batches up to Batch requests.
type loadRun struct {
	Editors     int     `json:"editors"`
	Batch       int     `json:"batch"`
	Completions int     `json:"completions"`
	P50Millis   float64 `json:"p50_ms"`
	P99Millis   float64 `json:"p99_ms"`
	PerSecond   float64 `json:"completions_per_s"`
}

// parseEditors reads --editors: counts separated by commas.
func parseEditors(s string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, usageErr("--editors %q: want counts such as 1,4,16", s)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// benchLoad simulates editors typing at once against one in-process
// engine: each asks for a completion, waits for it, pauses for about gap
// as a typist does, and asks again, each times. Every editor count runs twice
// on the same model, batching (--batch, or 8) and one request at a time
// (batch 1), so the two are measured in the same run.
func benchLoad(ctx context.Context, eo engineOptions, reqs []infill.Request, editors []int, each int, gap time.Duration, asJSON bool, stdout, stderr io.Writer) error {
	if _, isRemote, err := eo.Remote.remoteAPI(); err != nil {
		return err
	} else if isRemote {
		return usageErr("--editors measures the in-process engine (--engine local)")
	}
	m, err := loadModel(eo.Model, eo.Weights)
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := loadModelTokenizer(eo.Model)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	withBatch := eo.Infill
	if withBatch.MaxBatch <= 1 {
		withBatch.MaxBatch = 8
	}
	batched, err := infill.NewEngine(m, tok, withBatch)
	if err != nil {
		return err
	}
	serial := eo.Infill
	serial.MaxBatch = 1
	one, err := infill.NewEngine(m, tok, serial)
	if err != nil {
		return err
	}
	for _, r := range reqs[:min(2, len(reqs))] { // warm up
		if _, err := one.Complete(ctx, r); err != nil {
			return err
		}
	}
	var runs []loadRun
	for _, n := range editors {
		for _, eng := range []*infill.Engine{batched, one} {
			fmt.Fprintf(stderr, "infuse bench: %d editors, batch %d...\n", n, eng.Options().MaxBatch)
			run, err := typeAtOnce(ctx, eng, reqs, n, each, gap)
			if err != nil {
				return err
			}
			runs = append(runs, run)
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(runs)
	}
	fmt.Fprintf(stdout, "%d completions per editor, %v pause between them\n", each, gap)
	fmt.Fprintf(stdout, "editors  batch  p50 ms  p99 ms  completions/s\n")
	for _, r := range runs {
		fmt.Fprintf(stdout, "%7d  %5d  %6.1f  %6.1f  %13.1f\n", r.Editors, r.Batch, r.P50Millis, r.P99Millis, r.PerSecond)
	}
	return nil
}

// typeAtOnce runs n simulated editors against eng and measures what they
// wait. Editor i starts at a random moment within one gap, and pauses
// between gap/2 and 3·gap/2 (uniformly, gap on average) after each
// completion, as a typist does: with the same pause for every editor, a
// batching engine, which answers the requests it runs together at about
// the same time, kept them in lockstep, every request arriving with
// n-1 others. The pauses come from a seed per editor, so both engines
// see the same typing.
func typeAtOnce(ctx context.Context, eng *infill.Engine, reqs []infill.Request, n, each int, gap time.Duration) (loadRun, error) {
	var (
		mu   sync.Mutex
		lat  []float64
		errs []error
		wg   sync.WaitGroup
	)
	start := time.Now()
	for i := range n {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		wg.Go(func() {
			time.Sleep(time.Duration(rng.Int64N(int64(gap) + 1)))
			for j := range each {
				r := reqs[(i*each+j)%len(reqs)]
				t := time.Now()
				_, err := eng.Complete(ctx, r)
				d := time.Since(t)
				mu.Lock()
				lat = append(lat, float64(d.Microseconds())/1000)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
				time.Sleep(gap/2 + time.Duration(rng.Int64N(int64(gap)+1)))
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return loadRun{}, errs[0]
	}
	wall := time.Since(start)
	slices.Sort(lat)
	return loadRun{
		Editors: n, Batch: eng.Options().MaxBatch, Completions: len(lat),
		P50Millis: percentile(lat, 0.5), P99Millis: percentile(lat, 0.99),
		PerSecond: float64(len(lat)) / wall.Seconds(),
	}, nil
}
