package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// The golden data is made by testdata/gen_golden.mjs from Hugging Face's
// tokenizers library; see there.

type goldenRecord struct {
	Kind    string          `json:"kind"`
	Variant string          `json:"variant"`
	Name    string          `json:"name"`
	Text    string          `json:"text"`
	IDs     []int32         `json:"ids"`
	Decoded *string         `json:"decoded"`
	Bench   bool            `json:"bench"`
	Patch   json.RawMessage `json:"patch"` // kind "variant"
}

type goldenData struct {
	variants map[string]json.RawMessage // name → patch
	order    []string                   // variant names in file order
	records  map[string][]goldenRecord  // by variant
}

var (
	goldenOnce sync.Once
	golden     goldenData
	goldenErr  error

	baseOnce sync.Once
	baseJSON []byte // the Qwen tokenizer.json
	baseTok  *Tokenizer
	baseErr  error
)

func gunzipFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(zr); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return buf.Bytes(), nil
}

func loadGolden(t testing.TB) *goldenData {
	t.Helper()
	goldenOnce.Do(func() {
		g := goldenData{variants: map[string]json.RawMessage{}, records: map[string][]goldenRecord{}}
		data, err := gunzipFile("testdata/golden.jsonl.gz")
		if err != nil {
			goldenErr = err
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var r goldenRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				goldenErr = fmt.Errorf("golden record: %w", err)
				return
			}
			if r.Kind == "variant" {
				g.variants[r.Name] = r.Patch
				g.order = append(g.order, r.Name)
				continue
			}
			g.records[r.Variant] = append(g.records[r.Variant], r)
		}
		goldenErr = sc.Err()
		golden = g
	})
	if goldenErr != nil {
		t.Fatal(goldenErr)
	}
	return &golden
}

// base returns the Qwen tokenizer.json the golden data was made with, and
// the tokenizer built from it, shared by the tests.
func base(t testing.TB) ([]byte, *Tokenizer) {
	t.Helper()
	baseOnce.Do(func() {
		if baseJSON, baseErr = gunzipFile("testdata/qwen3_tokenizer.json.gz"); baseErr == nil {
			baseTok, baseErr = FromJSON(baseJSON)
		}
	})
	if baseErr != nil {
		t.Fatal(baseErr)
	}
	return baseJSON, baseTok
}

func qwen(t testing.TB) *Tokenizer {
	_, tk := base(t)
	return tk
}

func qwenJSON(t testing.TB) []byte {
	data, _ := base(t)
	return data
}

// patchJSON replaces top-level keys of a tokenizer.json, merging "model",
// as gen_golden.mjs does.
func patchJSON(base []byte, patch json.RawMessage) ([]byte, error) {
	var doc, p map[string]json.RawMessage
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	for k, v := range p {
		if k != "model" {
			doc[k] = v
			continue
		}
		var model, mp map[string]json.RawMessage
		if err := json.Unmarshal(doc["model"], &model); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(v, &mp); err != nil {
			return nil, err
		}
		for mk, mv := range mp {
			model[mk] = mv
		}
		b, err := json.Marshal(model)
		if err != nil {
			return nil, err
		}
		doc["model"] = b
	}
	return json.Marshal(doc)
}

func variantTokenizer(t *testing.T, g *goldenData, name string) *Tokenizer {
	t.Helper()
	if name == "" {
		return qwen(t)
	}
	data, err := patchJSON(qwenJSON(t), g.variants[name])
	if err != nil {
		t.Fatalf("patch variant %q: %v", name, err)
	}
	tk, err := FromJSON(data)
	if err != nil {
		t.Fatalf("variant %q: %v", name, err)
	}
	return tk
}

// diffIDs describes where got and want first differ, or returns "".
func diffIDs(tk *Tokenizer, got, want []int32) string {
	if slices.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-3)
	piece := func(ids []int32) string {
		hi := min(len(ids), i+4)
		if lo >= hi {
			return "[]"
		}
		s := fmt.Sprint(ids[lo:hi]) + " "
		for _, id := range ids[lo:hi] {
			s += fmt.Sprintf("%q", tk.TokenBytes(id))
		}
		return s
	}
	return fmt.Sprintf("%d vs %d ids, first difference at %d:\n  got  %s\n  want %s", len(got), len(want), i, piece(got), piece(want))
}

// TestGolden checks every golden text: the ids must equal the reference's
// exactly, and Decode must give back what the reference decodes them to
// (the text itself unless normalization changed it).
func TestGolden(t *testing.T) {
	g := loadGolden(t)
	for _, name := range g.order {
		t.Run("variant="+name, func(t *testing.T) {
			tk := variantTokenizer(t, g, name)
			var files, ids, failed int
			for _, r := range g.records[name] {
				got := tk.Encode(r.Text)
				if d := diffIDs(tk, got, r.IDs); d != "" {
					failed++
					if failed <= 10 {
						t.Errorf("%s %q: %s", r.Kind, r.Name, d)
					}
					continue
				}
				want := r.Text
				if r.Decoded != nil {
					want = *r.Decoded
				}
				if dec := tk.Decode(got); dec != want {
					t.Errorf("%s %q: Decode(Encode(text)) = %q, want %q", r.Kind, r.Name, clip(dec), clip(want))
				}
				if name == "ordinary" {
					// The reference without added tokens is what EncodeOrdinary
					// must give with them.
					if d := diffIDs(tk, qwen(t).EncodeOrdinary(r.Text), r.IDs); d != "" {
						t.Errorf("EncodeOrdinary %s %q: %s", r.Kind, r.Name, d)
					}
				}
				if r.Kind == "file" {
					files++
				}
				ids += len(r.IDs)
			}
			if failed > 0 {
				t.Errorf("%d of %d texts differ from the reference", failed, len(g.records[name]))
			}
			t.Logf("%d texts (%d source files), %d ids identical to the reference", len(g.records[name])-failed, files, ids)
		})
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// TestConcurrentEncode encodes from several goroutines at once; run with
// -race it checks the shared word cache.
func TestConcurrentEncode(t *testing.T) {
	g := loadGolden(t)
	tk := variantTokenizer(t, g, "gpt2") // a fresh tokenizer: a cold cache
	recs := g.records["gpt2"]
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(recs); i += 2 {
				if d := diffIDs(tk, tk.Encode(recs[i].Text), recs[i].IDs); d != "" {
					t.Errorf("%q: %s", recs[i].Name, d)
					return
				}
			}
		})
	}
	wg.Wait()
}
