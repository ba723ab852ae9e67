package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is a token outside the BPE vocabulary (or on top of it) that is
// matched in the text as a literal before anything else runs: <|endoftext|>,
// <|fim_prefix|>, <|mask|>.
type addedToken struct {
	id      int32
	content string
	special bool // control token; IsSpecial reports it
	// normalized tokens are matched in the normalized text, the others in the
	// raw text.
	normalized bool
	lstrip     bool // swallow the whitespace on its left
	rstrip     bool // swallow the whitespace on its right
	singleWord bool // match only where not inside a word
}

// matcher finds added tokens in text, leftmost first and, among tokens that
// start at the same place, longest first (Hugging Face's Aho-Corasick in
// LeftmostLongest mode).
type matcher struct {
	tokens []addedToken
	// byFirst[b] lists the tokens starting with byte b, longest first.
	byFirst [256][]int
}

func newMatcher(tokens []addedToken) *matcher {
	if len(tokens) == 0 {
		return nil
	}
	m := &matcher{tokens: tokens}
	for i, t := range tokens {
		b := t.content[0]
		m.byFirst[b] = append(m.byFirst[b], i)
	}
	for b := range m.byFirst {
		l := m.byFirst[b]
		sort.SliceStable(l, func(i, j int) bool { return len(tokens[l[i]].content) > len(tokens[l[j]].content) })
	}
	return m
}

// find returns the next added token in s at or after from, with the span it
// covers once its strip flags are applied. The span never starts before
// from. ok is false when there is none.
func (m *matcher) find(s string, from int) (start, end int, tok *addedToken, ok bool) {
	for i := from; i < len(s); i++ {
		cands := m.byFirst[s[i]]
		if len(cands) == 0 {
			continue
		}
		for _, k := range cands {
			t := &m.tokens[k]
			if !strings.HasPrefix(s[i:], t.content) {
				continue
			}
			stop := i + len(t.content)
			// A match that fails single_word is dropped, and the search goes on
			// after it, not inside it, as Aho-Corasick's iterator does.
			if t.singleWord && (endsWithWordChar(s[:i]) || startsWithWordChar(s[stop:])) {
				i = stop - 1
				break
			}
			start := i
			if t.lstrip {
				start = max(from, len(strings.TrimRightFunc(s[:i], unicode.IsSpace)))
			}
			if t.rstrip {
				stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
			}
			return start, stop, t, true
		}
	}
	return 0, 0, nil, false
}

// isWordChar approximates the Unicode \w of Rust's regex crate, which
// single_word is defined by: letters, marks, decimal digits, connector
// punctuation, letter numbers and the joiners.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) ||
		unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Nl, r) || r == 0x200c || r == 0x200d
}

func endsWithWordChar(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWordChar(r)
}
