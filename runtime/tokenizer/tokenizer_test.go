package tokenizer

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// words cuts s with the scanner of pattern.
func words(t *testing.T, pattern, s string) []string {
	t.Helper()
	sp, ok := splitterFor(pattern)
	if !ok {
		t.Fatalf("no scanner for %q", pattern)
	}
	var out []string
	for i := 0; i < len(s); {
		j := sp.next(s, i)
		if j <= i || j > len(s) {
			t.Fatalf("scanner stuck at %d of %q (next %d)", i, s, j)
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// TestWords pins the cases where the regexes' backtracking matters. The
// golden test holds the scanners to the reference on far more text; these
// say what the rules are.
func TestWords(t *testing.T) {
	for _, tc := range []struct {
		pattern, in string
		want        []string
	}{
		// \s+(?!\S) gives back the last space, which starts the next word.
		{qwen2Pattern, "a   b", []string{"a", "  ", " b"}},
		{qwen2Pattern, "x  ", []string{"x", "  "}},
		// \s*[\r\n]+ ends after the last line break of a run.
		{qwen2Pattern, "a \t\n\n  b", []string{"a", " \t\n\n", " ", " b"}},
		{qwen2Pattern, "};\n\n\tx", []string{"};\n\n", "\tx"}},
		// One character that is not a letter, digit or line break joins the
		// letters after it; digits stand alone.
		{qwen2Pattern, "(foo) 'bar", []string{"(foo", ")", " '", "bar"}},
		{qwen2Pattern, "x1234", []string{"x", "1", "2", "3", "4"}},
		{llama3Pattern, "x1234", []string{"x", "123", "4"}},
		// Contractions fold case, and ſ folds to s.
		{qwen2Pattern, "DON'T x'ſ x'Ll", []string{"DON", "'T", " x", "'ſ", " x", "'Ll"}},
		{gpt2Pattern, "DON'T don't", []string{"DON", "'", "T", " don", "'t"}},
		// Unicode whitespace: NBSP, U+2028 and U+3000 are \s.
		{qwen2Pattern, "a\u00a0\u00a0b\u2028c", []string{"a", "\u00a0", "\u00a0b", "\u2028c"}},
		{gpt2Pattern, "a  b\n\nc", []string{"a", " ", " b", "\n", "\n", "c"}},
		{gpt2Pattern, "x  ", []string{"x", "  "}},
		// Invalid UTF-8 is a symbol and never stops the scan.
		{qwen2Pattern, "a\xff\xfeb \xc3", []string{"a", "\xff\xfe", "b", " \xc3"}},
	} {
		if got := words(t, tc.pattern, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%.10s… %q: words %q, want %q", tc.pattern, tc.in, got, tc.want)
		}
	}
}

func TestAccessors(t *testing.T) {
	tk := qwen(t)
	if got := tk.VocabSize(); got != 151669 {
		t.Errorf("VocabSize = %d, want 151669", got)
	}
	for _, tc := range []struct {
		token   string
		id      int32
		special bool
		bytes   string
	}{
		{"<|endoftext|>", 151643, true, "<|endoftext|>"},
		{"<|im_end|>", 151645, true, "<|im_end|>"},
		{"<|fim_prefix|>", 151659, false, "<|fim_prefix|>"}, // Qwen marks its FIM tokens not special
		{"<think>", 151667, false, "<think>"},
		{"Ġ", 220, false, " "},
		{"Ċ", 198, false, "\n"},
		{"Ġthe", 279, false, " the"},
	} {
		id, ok := tk.ID(tc.token)
		if !ok || id != tc.id {
			t.Errorf("ID(%q) = %d, %v; want %d", tc.token, id, ok, tc.id)
		}
		if tk.IsSpecial(id) != tc.special {
			t.Errorf("IsSpecial(%d) = %v", id, !tc.special)
		}
		if got := string(tk.TokenBytes(id)); got != tc.bytes {
			t.Errorf("TokenBytes(%d) = %q, want %q", id, got, tc.bytes)
		}
	}
	if _, ok := tk.ID(" the"); ok {
		t.Error(`ID(" the") found a token: IDs are looked up by the vocabulary's byte-level form`)
	}
	for _, id := range []int32{-1, 151669, 1 << 30} {
		if tk.TokenBytes(id) != nil || tk.IsSpecial(id) {
			t.Errorf("id %d outside the vocabulary has bytes or is special", id)
		}
	}
	if got := tk.Decode([]int32{-5, 40, 1 << 30, 151643}); got != "I<|endoftext|>" {
		t.Errorf("Decode skipping bad ids = %q", got)
	}
	// TokenBytes is capped: appending to it cannot overwrite the next token.
	b := tk.TokenBytes(40)
	_ = append(b, 'x')
	if got := tk.Decode([]int32{40, 41}); got != "IJ" {
		t.Errorf("after append to TokenBytes, Decode = %q", got)
	}
}

// TestSplitCharacter decodes an emoji whose bytes are spread over several
// tokens: each piece alone is not valid UTF-8, and the pieces joined are
// the emoji.
func TestSplitCharacter(t *testing.T) {
	tk := qwen(t)
	for _, s := range []string{"🫠", "x 🦀🦀 y", "𝔘𝔫𝔦", "ꙮ"} {
		ids := tk.Encode(s)
		var joined []byte
		partial := false
		for _, id := range ids {
			piece := tk.Decode([]int32{id})
			partial = partial || !utf8.ValidString(piece)
			joined = append(joined, piece...)
		}
		if string(joined) != s || tk.Decode(ids) != s {
			t.Errorf("%q: pieces join to %q, Decode gives %q", s, joined, tk.Decode(ids))
		}
		if s == "🫠" && !partial {
			t.Errorf("%q: expected the emoji to be split across tokens, got %v", s, ids)
		}
	}
}

func TestEncodeOrdinary(t *testing.T) {
	tk := qwen(t)
	s := "a<|endoftext|>b<|fim_middle|>"
	if ids := tk.Encode(s); !slices.Contains(ids, 151643) || !slices.Contains(ids, 151660) {
		t.Errorf("Encode(%q) = %v: special tokens not matched", s, ids)
	}
	ids := tk.EncodeOrdinary(s)
	for _, id := range ids {
		if tk.IsSpecial(id) || id >= 151643 {
			t.Errorf("EncodeOrdinary(%q) = %v: has added token %d", s, ids, id)
		}
	}
	if got := tk.Decode(ids); got != s {
		t.Errorf("Decode(EncodeOrdinary(%q)) = %q", s, got)
	}
}

// TestInvalidUTF8 checks that bytes that are not UTF-8 are encoded as
// themselves (Hugging Face cannot be given such input) and come back
// unchanged.
func TestInvalidUTF8(t *testing.T) {
	tk := qwen(t)
	for _, s := range []string{"\xff", "a\xffb", "\xe2\x82", "caf\xc3", "\xed\xa0\x80", "<|endoftext|>\x80", string([]byte{0xf0, 0x9f, 0x98})} {
		for _, ids := range [][]int32{tk.Encode(s), tk.EncodeOrdinary(s)} {
			if got := tk.Decode(ids); got != s {
				t.Errorf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
			}
		}
	}
}

// TestNormalization: Qwen2 normalizes to NFC, so decomposed text comes back
// composed, and added tokens are cut out before normalizing.
func TestNormalization(t *testing.T) {
	tk := qwen(t)
	for in, want := range map[string]string{
		"cafe\u0301":          "caf\u00e9",
		"\u212b":              "\u00c5",
		"<|endoftext|>\u0338": "<|endoftext|>\u0338", // not "<|endoftext|" + "≯"
	} {
		if got := tk.Decode(tk.Encode(in)); got != want {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", in, got, want)
		}
	}
}

func TestLongInputs(t *testing.T) {
	tk := qwen(t)
	for _, s := range []string{
		strings.Repeat(" ", 1<<18),
		strings.Repeat("ab", 1<<16),
		strings.Repeat("🦀", 1<<14),
		string(bytes.Repeat([]byte{0xff}, 1<<14)),
	} {
		if got := tk.Decode(tk.Encode(s)); got != s {
			t.Errorf("round trip of %d bytes starting %q failed", len(s), s[:8])
		}
	}
}
