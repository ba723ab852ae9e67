// Package tokenizer implements the byte-level BPE tokenizers of the GPT-2,
// Qwen2 (Dream, DiffuCoder) and Llama 3 families, giving the same ids as
// Hugging Face's tokenizers library. Call [Load] for a tokenizer.json or
// [LoadFS] for a model directory.
package tokenizer

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer turns text into token ids and back. It is safe for concurrent
// use.
//
// Encode works as Hugging Face's tokenizer does with add_special_tokens=False:
// added tokens are cut out of the text first; the rest is normalized (NFC for
// Qwen2), cut into words by the pre-tokenizer regex, and each word is merged
// by BPE over its UTF-8 bytes. No BOS/EOS is ever added.
type Tokenizer struct {
	model    bpe
	split    *splitter   // nil: no regex split (ByteLevel with use_regex false)
	prefixSp prefixSpace // ByteLevel add_prefix_space
	forms    []norm.Form

	raw        *matcher // added tokens matched in the raw text
	normalized *matcher // added tokens matched in the normalized text

	vocab   map[string]int32 // token string (byte-level form) → id, with added tokens
	bytes   []byte           // the bytes of every token, back to back
	offsets []uint32         // token id's bytes are bytes[offsets[id]:offsets[id+1]]
	special []bool           // by id
}

// Encode returns the ids of text, matching added and special tokens written
// in it (so "<|endoftext|>" becomes one id). Use EncodeOrdinary for text a
// user typed, which must never turn into control tokens.
func (t *Tokenizer) Encode(text string) []int32 {
	return t.encode(text, true)
}

// EncodeOrdinary returns the ids of text with no added or special token
// matched: "<|endoftext|>" is spelled out with ordinary tokens.
func (t *Tokenizer) EncodeOrdinary(text string) []int32 {
	return t.encode(text, false)
}

// encoder is the state of one Encode call.
type encoder struct {
	t      *Tokenizer
	out    []int32
	sc     *scratch
	cache  map[string][]int32 // the shared cache, read-locked while encoding
	missed map[string][]int32 // words merged since the last flush, for the cache
	n      int                // words since the last flush
}

// flushEvery bounds how long one Encode holds the cache's read lock, so that
// a huge text cannot keep other callers' new words out of the cache for long.
const flushEvery = 1 << 14

func (t *Tokenizer) encode(text string, withAdded bool) []int32 {
	e := encoder{t: t, out: make([]int32, 0, len(text)/3+4)}
	t.model.cache.mu.RLock()
	e.cache = t.model.cache.m
	if withAdded && t.raw != nil {
		e.rawSegments(text)
	} else {
		e.normalizedSegments(text, withAdded)
	}
	t.model.cache.mu.RUnlock()
	if len(e.missed) > 0 {
		t.model.cache.add(e.missed)
	}
	if e.sc != nil {
		scratchPool.Put(e.sc)
	}
	return e.out
}

// flush hands the words merged so far to the shared cache, dropping the
// read lock for a moment to do so. Precondition: the read lock is held.
func (e *encoder) flush() {
	c := &e.t.model.cache
	c.mu.RUnlock()
	if len(e.missed) > 0 {
		c.add(e.missed)
		e.missed = nil
	}
	c.mu.RLock()
	e.cache = c.m
	e.n = 0
}

// rawSegments cuts the added tokens matched in the raw text out of s.
func (e *encoder) rawSegments(s string) {
	from := 0
	for from < len(s) {
		start, end, tok, ok := e.t.raw.find(s, from)
		if !ok {
			break
		}
		e.normalizedSegments(s[from:start], true)
		e.out = append(e.out, tok.id)
		from = end
	}
	e.normalizedSegments(s[from:], true)
}

// normalizedSegments normalizes s, then cuts out the added tokens matched in
// normalized text, and pre-tokenizes what is left.
func (e *encoder) normalizedSegments(s string, withAdded bool) {
	if len(s) == 0 {
		return
	}
	for _, f := range e.t.forms {
		s = f.String(s) // returns s itself when it is already normal
	}
	if !withAdded || e.t.normalized == nil {
		e.words(s)
		return
	}
	from := 0
	for from < len(s) {
		start, end, tok, ok := e.t.normalized.find(s, from)
		if !ok {
			break
		}
		e.words(s[from:start])
		e.out = append(e.out, tok.id)
		from = end
	}
	e.words(s[from:])
}

// words splits s into words and appends their ids.
func (e *encoder) words(s string) {
	if len(s) == 0 {
		return
	}
	t := e.t
	// ByteLevel's add_prefix_space puts a space before every piece cut so
	// far: the stretch between added tokens, or each word when a Split ran
	// before ByteLevel. Rare, so the concatenations may allocate.
	if t.prefixSp == prefixSegment && s[0] != ' ' {
		s = " " + s
	}
	if t.split == nil {
		e.word(s)
		return
	}
	for i := 0; i < len(s); {
		j := t.split.next(s, i)
		w := s[i:j]
		if t.prefixSp == prefixWord && w[0] != ' ' {
			w = " " + w
		}
		e.word(w)
		i = j
	}
}

// word appends the ids of one word, from the cache when it can.
func (e *encoder) word(w string) {
	if e.n++; e.n == flushEvery {
		e.flush()
	}
	if ids, ok := e.cache[w]; ok {
		e.out = append(e.out, ids...)
		return
	}
	if ids, ok := e.missed[w]; ok {
		e.out = append(e.out, ids...)
		return
	}
	if e.sc == nil {
		e.sc = scratchPool.Get().(*scratch)
	}
	n := len(e.out)
	e.out = e.t.model.appendWord(e.out, w, e.sc)
	if len(w) <= cacheMaxWordLen && len(w) > 1 {
		if e.missed == nil {
			e.missed = make(map[string][]int32)
		}
		// Clone the key: w may be a slice of a large text the cache must not pin.
		e.missed[strings.Clone(w)] = append([]int32(nil), e.out[n:]...)
	}
}

// Decode returns the text of ids: the bytes of each token, back to back, with
// added and special tokens written as their text (Hugging Face's
// skip_special_tokens=False). Ids that are no token are skipped.
//
// The result is the exact byte string, not a repaired one: ids that end in
// the middle of a multi-byte character give invalid UTF-8, and the rest of
// the character completes it when the decoded pieces are joined. Use
// strings.ToValidUTF8 before showing a partial decode.
func (t *Tokenizer) Decode(ids []int32) string {
	n := 0
	for _, id := range ids {
		if t.valid(id) {
			n += int(t.offsets[id+1] - t.offsets[id])
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, id := range ids {
		if t.valid(id) {
			b.Write(t.bytes[t.offsets[id]:t.offsets[id+1]])
		}
	}
	return b.String()
}

// TokenBytes returns the bytes token id stands for: a piece of UTF-8 text,
// possibly part of a character, or the text of an added token. It is nil for
// an id that is no token. The slice is shared; do not modify it.
func (t *Tokenizer) TokenBytes(id int32) []byte {
	if !t.valid(id) {
		return nil
	}
	a, b := t.offsets[id], t.offsets[id+1]
	return t.bytes[a:b:b]
}

// ID returns the id of a token, given as the vocabulary writes it (the
// byte-level form, "Ġfoo" for " foo") or as an added token's text.
func (t *Tokenizer) ID(token string) (int32, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// IsSpecial reports whether id is an added token the tokenizer marks
// special, such as <|endoftext|>: the ones Hugging Face drops with
// skip_special_tokens. Other added tokens are not, and Qwen2's files mark
// even the FIM tokens (<|fim_prefix|> …) and <think> not special; find those
// with ID.
func (t *Tokenizer) IsSpecial(id int32) bool {
	return id >= 0 && int(id) < len(t.special) && t.special[id]
}

// VocabSize returns the highest token id plus one. The model's embedding
// may have more rows than this.
func (t *Tokenizer) VocabSize() int { return len(t.offsets) - 1 }

func (t *Tokenizer) valid(id int32) bool {
	return id >= 0 && int(id) < len(t.offsets)-1 && t.offsets[id+1] > t.offsets[id]
}
