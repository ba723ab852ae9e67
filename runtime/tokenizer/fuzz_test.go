package tokenizer

import (
	"encoding/json"
	"sync"
	"testing"

	"golang.org/x/text/unicode/norm"
)

var (
	gpt2Once sync.Once
	gpt2Tok  *Tokenizer
)

// FuzzEncode holds Encode to: no panic, ids inside the vocabulary, and an
// exact round trip. The Qwen2 tokenizer normalizes to NFC, so its round trip
// is exact for text already in NFC (and gives NFC otherwise); the GPT-2
// variant does not normalize, so its round trip is exact for any bytes.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{
		"", "hello world", "func main() {\n\tx := 1\n}\n", "a  \n\n  b", "don't DON'T x'ſ",
		"<|endoftext|>x<|fim_prefix|>", "cafe\u0301", "👨\u200d👩\u200d👧", "\xff\xfe", "\u3000\u00a0\u2028",
		"<|endoftext|>\u0338", "12345", "\r\n\r\n",
	} {
		f.Add(s)
	}
	tk := qwen(f)
	gpt2Once.Do(func() {
		// The "gpt2" variant of gen_golden.mjs.
		data, err := patchJSON(qwenJSON(f), json.RawMessage(`{"normalizer": null,
			"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true}}`))
		if err == nil {
			gpt2Tok, err = FromJSON(data)
		}
		if err != nil {
			f.Fatal(err)
		}
	})
	f.Fuzz(func(t *testing.T, s string) {
		ids := tk.Encode(s)
		for _, id := range ids {
			if id < 0 || int(id) >= tk.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d outside the vocabulary", s, id)
			}
		}
		ordinary := tk.EncodeOrdinary(s)
		if norm.NFC.IsNormalString(s) {
			if got := tk.Decode(ids); got != s {
				t.Errorf("Decode(Encode(%q)) = %q", s, got)
			}
			if got := tk.Decode(ordinary); got != s {
				t.Errorf("Decode(EncodeOrdinary(%q)) = %q", s, got)
			}
		} else if got, want := tk.Decode(ordinary), norm.NFC.String(s); got != want {
			t.Errorf("Decode(EncodeOrdinary(%q)) = %q, want NFC %q", s, got, want)
		}
		if got := gpt2Tok.Decode(gpt2Tok.Encode(s)); got != s {
			t.Errorf("GPT-2: Decode(Encode(%q)) = %q", s, got)
		}
	})
}
