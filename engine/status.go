package engine

import (
	"bufio"
	"bytes"
	"os"
	"slices"
	"strconv"
	"time"
)

// Status is what a running engine reports about itself.
type Status struct {
	Version    int           `json:"version"`
	Model      string        `json:"model"`             // "" is the embedded default model
	Weights    string        `json:"weights,omitempty"` // what its matrices are computed in, as "Q8_0×25"
	PID        int           `json:"pid"`
	Uptime     time.Duration `json:"uptime_ns"`
	Clients    int           `json:"clients"`     // connected clients (status queries not counted)
	Queued     int           `json:"queued"`      // requests waiting
	Running    int           `json:"running"`     // requests being denoised now
	Workers    int           `json:"workers"`     // requests that may run at once
	QueueLimit int           `json:"queue_limit"` // waiting requests beyond which new ones are refused
	Served     uint64        `json:"served"`      // requests answered with a result
	Failed     uint64        `json:"failed"`      // requests answered with an error
	Canceled   uint64        `json:"canceled"`    // requests cancelled or past their deadline
	Rejected   uint64        `json:"rejected"`    // requests refused because the queue was full
	RSS        int64         `json:"rss_bytes"`   // resident memory of the engine process; 0 if unknown
	// Latency of recent served requests, from arrival to answer (queueing
	// included: it is what an editor waits), over the last Recent of them.
	P50    time.Duration `json:"p50_ns"`
	P99    time.Duration `json:"p99_ns"`
	Recent int           `json:"recent"`
}

// Status reports on the server now.
func (s *Server) Status() Status {
	s.mu.Lock()
	st := Status{
		Version:    Version,
		Model:      s.Model,
		Weights:    s.Weights,
		PID:        os.Getpid(),
		Uptime:     time.Since(s.started),
		Clients:    s.clients,
		Queued:     len(s.queue),
		Running:    s.running,
		Workers:    s.Workers,
		QueueLimit: s.Queue,
		Served:     s.served,
		Failed:     s.failed,
		Canceled:   s.canceled,
		Rejected:   s.rejected,
		Recent:     min(s.nlatency, len(s.latency)),
	}
	lat := slices.Clone(s.latency[:st.Recent])
	s.mu.Unlock()
	slices.Sort(lat)
	st.P50, st.P99 = percentile(lat, 50), percentile(lat, 99)
	st.RSS = rss()
	return st
}

// percentile is the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted) + 99) / 100 // ceil(p/100 · n), 1-based
	return sorted[max(i, 1)-1]
}

// rss reads this process's resident set size from /proc (Linux); 0 where
// there is none.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest) // "123456 kB"
		if len(f) == 2 && string(f[1]) == "kB" {
			if kb, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
