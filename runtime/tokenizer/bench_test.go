package tokenizer

import (
	"encoding/json"
	"os/exec"
	"sync"
	"testing"
)

func benchText(b *testing.B) string {
	for _, r := range loadGolden(b).records[""] {
		if r.Bench {
			return r.Text
		}
	}
	b.Fatal("golden.jsonl.gz has no bench record")
	return ""
}

var (
	refOnce sync.Once
	refNs   float64
	refErr  error
)

// referenceNs times Hugging Face's tokenizers on the same text, by running
// testdata/bench_ref.mjs once per test binary. It needs node and the
// reference installed (see gen_golden.mjs); without them the benchmark
// reports its own time only.
func referenceNs() (float64, error) {
	refOnce.Do(func() {
		out, err := exec.Command("node", "testdata/bench_ref.mjs").Output()
		if err != nil {
			refErr = err
			return
		}
		var r struct {
			NsPerOp float64 `json:"ns_per_op"`
		}
		refErr = json.Unmarshal(out, &r)
		refNs = r.NsPerOp
	})
	return refNs, refErr
}

// BenchmarkEncode100KB encodes a ~100 KB Go source file with a warm word
// cache, as an editor session does; "go/ref" is its time over that of Hugging
// Face's library doing the same in the same run (below 1: faster).
func BenchmarkEncode100KB(b *testing.B) {
	tk := qwen(b)
	text := benchText(b)
	tk.Encode(text) // warm the cache, as the reference's warm-up does
	ref, refErr := referenceNs()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tk.Encode(text)
	}
	if refErr != nil {
		b.Logf("no reference timing (node testdata/bench_ref.mjs: %v)", refErr)
		return
	}
	goNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ref, "ref-ns/op")
	b.ReportMetric(goNs/ref, "go/ref")
}

// BenchmarkEncode100KBCold encodes the same file with an empty word cache
// every time: the cost of the BPE merges themselves.
func BenchmarkEncode100KBCold(b *testing.B) {
	tk := qwen(b)
	text := benchText(b)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tk.model.cache.mu.Lock()
		tk.model.cache.m = nil
		tk.model.cache.mu.Unlock()
		tk.Encode(text)
	}
}

func BenchmarkDecode100KB(b *testing.B) {
	tk := qwen(b)
	text := benchText(b)
	ids := tk.Encode(text)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tk.Decode(ids)
	}
}

func BenchmarkLoad(b *testing.B) {
	data := qwenJSON(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}
