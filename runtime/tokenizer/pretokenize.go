package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizer cuts text into words before BPE runs on each one; a merge
// never crosses a word boundary. Hugging Face does the cutting with an
// Oniguruma regex. Two of the regexes in use need a negative lookahead
// (`\s+(?!\S)`), which Go's regexp lacks, so each known regex is implemented
// here as a scanner with the same leftmost-first, greedy, backtracking
// semantics. Every character of the input matches one of the alternatives of
// these regexes, so the words tile the text.

// Qwen2 (and Llama 3 with \p{N}{1,3}):
const (
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// gpt2Pattern is what ByteLevel uses when use_regex is true.
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// splitter is one of the known pre-tokenizer regexes.
type splitter struct {
	gpt2      bool // the GPT-2 regex; otherwise the Qwen2 family
	maxDigits int  // Qwen2 family: most digits in one word (\p{N} or \p{N}{1,3})
}

// splitterFor returns the scanner for a Hugging Face Split regex.
func splitterFor(pattern string) (splitter, bool) {
	switch pattern {
	case qwen2Pattern:
		return splitter{maxDigits: 1}, true
	case llama3Pattern:
		return splitter{maxDigits: 3}, true
	case gpt2Pattern:
		return splitter{gpt2: true}, true
	}
	return splitter{}, false
}

// Character classes, as the regexes see them. \s is space or lineBreak.
const (
	classOther     uint8 = iota // [^\s\p{L}\p{N}]; also any byte that is not valid UTF-8
	classLetter                 // \p{L}
	classNumber                 // \p{N}
	classSpace                  // \s other than \r and \n
	classLineBreak              // \r or \n
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range t {
		r := rune(c)
		switch {
		case r == '\r' || r == '\n':
			t[c] = classLineBreak
		case unicode.IsSpace(r):
			t[c] = classSpace
		case unicode.IsLetter(r):
			t[c] = classLetter
		case unicode.IsNumber(r):
			t[c] = classNumber
		}
	}
	return t
}()

// classAt returns the class of the character at s[i] and its width in bytes.
// Oniguruma's Unicode \s is White_Space, which is what unicode.IsSpace tests.
func classAt(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && n == 1:
		return classOther, 1
	case unicode.IsLetter(r):
		return classLetter, n
	case unicode.IsNumber(r):
		return classNumber, n
	case unicode.IsSpace(r):
		return classSpace, n
	}
	return classOther, n
}

// runEnd returns the end of the run of characters of class want that starts at i.
func runEnd(s string, i int, want uint8) int {
	for i < len(s) {
		c, n := classAt(s, i)
		if c != want {
			break
		}
		i += n
	}
	return i
}

// next returns the end of the word that starts at s[i], i < len(s).
func (p splitter) next(s string, i int) int {
	if p.gpt2 {
		return p.nextGPT2(s, i)
	}
	return p.nextQwen2(s, i)
}

func (p splitter) nextQwen2(s string, i int) int {
	if s[i] == '\'' {
		if n := contraction(s[i+1:], true); n > 0 {
			return i + 1 + n
		}
	}
	c, n := classAt(s, i)
	switch c {
	case classLetter: // \p{L}+
		return runEnd(s, i+n, classLetter)
	case classNumber: // \p{N}{1,max}
		j := i + n
		for k := 1; k < p.maxDigits && j < len(s); k++ {
			c2, n2 := classAt(s, j)
			if c2 != classNumber {
				break
			}
			j += n2
		}
		return j
	case classOther, classSpace:
		// [^\r\n\p{L}\p{N}]\p{L}+
		if i+n < len(s) {
			if c2, n2 := classAt(s, i+n); c2 == classLetter {
				return runEnd(s, i+n+n2, classLetter)
			}
		}
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	if j := p.symbols(s, i, c, n); j > 0 {
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// Only whitespace is left: \s*[\r\n]+ | \s+(?!\S) | \s+
	return whitespaceEnd(s, i, true)
}

func (p splitter) nextGPT2(s string, i int) int {
	if s[i] == '\'' {
		if n := contraction(s[i+1:], false); n > 0 {
			return i + 1 + n
		}
	}
	// ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`
	j := i
	if s[i] == ' ' {
		j++
	}
	if j < len(s) {
		if c, n := classAt(s, j); c != classSpace && c != classLineBreak {
			return runEnd(s, j+n, c)
		}
	}
	return whitespaceEnd(s, i, false)
}

// symbols matches ` ?[^\s\p{L}\p{N}]+` at s[i], whose class is c and width
// n, and returns the end of the match, or 0 if there is none.
func (splitter) symbols(s string, i int, c uint8, n int) int {
	if s[i] == ' ' && i+1 < len(s) {
		c, n = classAt(s, i+1)
		i++
	}
	if c != classOther {
		return 0
	}
	return runEnd(s, i+n, classOther)
}

// whitespaceEnd matches at a whitespace character s[i]. With lineBreaks (the
// Qwen2 family) `\s*[\r\n]+` comes first: a run holding a line break ends
// just after its last \r or \n. Then `\s+(?!\S)`: a run that ends the text is
// taken whole; otherwise it gives back its last character, which then starts
// the next word (" foo" rather than "foo"). A run of one character before a
// non-space falls to `\s+`.
func whitespaceEnd(s string, i int, lineBreaks bool) int {
	j, last, afterBreak := i, i, -1
	for j < len(s) {
		c, n := classAt(s, j)
		if c != classSpace && c != classLineBreak {
			break
		}
		if c == classLineBreak {
			afterBreak = j + n
		}
		last = j
		j += n
	}
	switch {
	case lineBreaks && afterBreak > 0:
		return afterBreak
	case j == len(s) || last == i:
		return j
	}
	return last
}

// contraction matches the suffixes 's 't 're 've 'm 'll 'd at the start of s
// (the text after an apostrophe) and returns the match's length in bytes.
// Case-insensitive matching is Unicode case folding, under which "ſ" (U+017F,
// long s) is an "s".
func contraction(s string, foldCase bool) int {
	if len(s) == 0 {
		return 0
	}
	lower := func(c byte) byte {
		if foldCase && 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	switch lower(s[0]) {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if len(s) > 1 && lower(s[1]) == 'e' {
			return 2
		}
	case 'l':
		if len(s) > 1 && lower(s[1]) == 'l' {
			return 2
		}
	case 0xc5: // ſ is C5 BF
		if foldCase && len(s) > 1 && s[1] == 0xbf {
			return 2
		}
	}
	return 0
}
