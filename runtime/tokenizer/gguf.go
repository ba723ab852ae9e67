package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Token types of GGUF's tokenizer.ggml.token_type (llama.cpp's
// llama_token_type, gguf-py's TokenType).
const (
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3 // a special added token: <|endoftext|>, <|mask|>
	TokenUserDefined = 4 // an added token that is not special: <|fim_prefix|> in Qwen2
	TokenUnused      = 5 // an id with no token ([PAD151667] in Dream's files)
	TokenByte        = 6
)

// GGUFVocab is a tokenizer as llama.cpp's GGUF metadata holds it: the
// arrays of tokenizer.ggml.tokens, token_type and merges, and the names of
// the model and the pre-tokenizer. It keeps this package free of the GGUF
// reader; runtime fills it from a file.
type GGUFVocab struct {
	Model  string   // tokenizer.ggml.model; only "gpt2" (byte-level BPE) is read
	Pre    string   // tokenizer.ggml.pre: qwen2, llama-bpe or gpt-2
	Tokens []string // by id, in the byte-level form ("Ġfoo") or an added token's text
	Types  []int32  // by id; nil means all normal
	Merges []string // "a b", by rank
	// Normalizer is the Unicode normal form applied before splitting:
	// "NFC", "NFD", "NFKC", "NFKD" or "none". llama.cpp has no key for it
	// (it never normalizes); "" takes the pre-tokenizer's Hugging Face
	// default, NFC for qwen2 and none for the others.
	Normalizer string
}

// ggufPre describes a pre-tokenizer name of llama.cpp (llama-vocab.cpp's
// LLAMA_VOCAB_PRE_TYPE_*) as the Hugging Face pipeline this package runs.
type ggufPre struct {
	pattern      string
	normalizer   string // Hugging Face's default for the family
	ignoreMerges bool   // Llama 3's tokenizer.json sets it, and llama.cpp follows
}

var ggufPres = map[string]ggufPre{
	"qwen2":            {qwen2Pattern, "NFC", false},
	"deepseek-r1-qwen": {qwen2Pattern, "NFC", false},
	"llama-bpe":        {llama3Pattern, "none", true},
	"llama3":           {llama3Pattern, "none", true},
	"gpt-2":            {gpt2Pattern, "none", false},
}

var normalForms = map[string]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD}

// FromGGUF builds a tokenizer from GGUF tokenizer metadata. Normal tokens
// form the BPE vocabulary; control tokens become special added tokens and
// user-defined ones ordinary added tokens, matched in the raw text as
// llama.cpp matches them; unused ids (Dream's [PADn] fillers) are no token.
func FromGGUF(v GGUFVocab) (*Tokenizer, error) {
	if v.Model != "gpt2" {
		return nil, fmt.Errorf("tokenizer.ggml.model %q is not supported (only \"gpt2\", byte-level BPE)", v.Model)
	}
	pre, ok := ggufPres[v.Pre]
	if !ok {
		return nil, fmt.Errorf("tokenizer.ggml.pre %q is not supported (want qwen2, llama-bpe or gpt-2)", v.Pre)
	}
	if v.Types != nil && len(v.Types) != len(v.Tokens) {
		return nil, fmt.Errorf("tokenizer.ggml.token_type has %d entries for %d tokens", len(v.Types), len(v.Tokens))
	}
	if len(v.Tokens) > maxID {
		return nil, fmt.Errorf("%d tokens is more than the %d supported", len(v.Tokens), maxID)
	}
	s, _ := splitterFor(pre.pattern)
	sp := &spec{vocab: make(map[string]int32, len(v.Tokens)), split: &s, ignoreMerges: pre.ignoreMerges}
	nf := v.Normalizer
	if nf == "" {
		nf = pre.normalizer
	}
	if nf != "none" {
		f, ok := normalForms[nf]
		if !ok {
			return nil, fmt.Errorf("normalizer %q is not supported (want NFC, NFD, NFKC, NFKD or none)", nf)
		}
		sp.forms = []norm.Form{f}
	}
	for i, tok := range v.Tokens {
		id := int32(i)
		typ := int32(TokenNormal)
		if v.Types != nil {
			typ = v.Types[i]
		}
		switch typ {
		case TokenNormal:
			if tok == "" {
				return nil, fmt.Errorf("token %d is empty", id)
			}
			if prev, dup := sp.vocab[tok]; dup {
				return nil, fmt.Errorf("token %q appears as both id %d and id %d", tok, prev, id)
			}
			sp.vocab[tok] = id
		case TokenControl, TokenUserDefined:
			if tok == "" {
				return nil, fmt.Errorf("token %d is empty", id)
			}
			if typ == TokenUserDefined && tok == "[PAD"+strconv.Itoa(i)+"]" {
				continue // older converters' filler for an id with no token
			}
			sp.added = append(sp.added, addedToken{id: id, content: tok, special: typ == TokenControl})
		case TokenUnused:
		default:
			return nil, fmt.Errorf("token %d (%q) has type %d; only normal (1), control (3), user-defined (4) and unused (5) are supported", id, tok, typ)
		}
	}
	sp.merges = make([][2]string, len(v.Merges))
	for i, m := range v.Merges {
		a, b, ok := strings.Cut(m, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("tokenizer.ggml.merges[%d] %q is not two tokens separated by a space", i, m)
		}
		sp.merges[i] = [2]string{a, b}
	}
	t, err := sp.build()
	if err != nil {
		return nil, fmt.Errorf("GGUF tokenizer: %w", err)
	}
	return t, nil
}

// GGUFVocab describes t as GGUF tokenizer metadata, the way llama.cpp's
// converter writes a Dream or Qwen2 tokenizer: size tokens (the model's
// vocab_size, which may exceed the tokenizer's; the ids with no token are
// "[PADn]", unused), added tokens marked control when special and
// user-defined otherwise, and the merges in rank order. Normalizer is set
// only when it differs from the pre-tokenizer's default.
func (t *Tokenizer) GGUFVocab(size int) (*GGUFVocab, error) {
	if t.split == nil || t.prefixSp != prefixNone {
		return nil, errors.New("only tokenizers that split by the Qwen2, Llama 3 or GPT-2 regex, with no prefix space, can be written as GGUF")
	}
	if t.model.unk >= 0 {
		return nil, errors.New("a BPE unk token cannot be written as GGUF")
	}
	if size < t.VocabSize() {
		return nil, fmt.Errorf("the tokenizer has %d ids, more than the model's %d", t.VocabSize(), size)
	}
	v := &GGUFVocab{Model: "gpt2"}
	switch {
	case t.split.gpt2:
		v.Pre = "gpt-2"
	case t.split.maxDigits == 3:
		v.Pre = "llama-bpe"
	default:
		v.Pre = "qwen2"
	}
	pre := ggufPres[v.Pre]
	if pre.ignoreMerges != t.model.ignoreMerges {
		return nil, fmt.Errorf("ignore_merges %v with the %s pre-tokenizer cannot be written as GGUF", t.model.ignoreMerges, v.Pre)
	}
	nf := "none"
	switch {
	case len(t.forms) > 1:
		return nil, errors.New("a sequence of normalizers cannot be written as GGUF")
	case len(t.forms) == 1:
		for name, f := range normalForms {
			if f == t.forms[0] {
				nf = name
			}
		}
	}
	if nf != pre.normalizer {
		v.Normalizer = nf
	}

	v.Tokens = make([]string, size)
	v.Types = make([]int32, size)
	set := make([]bool, size)
	for _, m := range []*matcher{t.raw, t.normalized} {
		if m == nil {
			continue
		}
		for _, a := range m.tokens {
			v.Tokens[a.id], set[a.id] = a.content, true
			v.Types[a.id] = TokenUserDefined
			if a.special {
				v.Types[a.id] = TokenControl
			}
		}
	}
	for tok, id := range t.vocab {
		if set[id] {
			if v.Types[id] == TokenNormal && v.Tokens[id] != tok {
				return nil, fmt.Errorf("id %d is both %q and %q", id, v.Tokens[id], tok)
			}
			continue
		}
		v.Tokens[id], v.Types[id], set[id] = tok, TokenNormal, true
	}
	for id := range v.Tokens {
		if !set[id] {
			v.Tokens[id], v.Types[id] = "[PAD"+strconv.Itoa(id)+"]", TokenUnused
		}
	}

	type merge struct {
		rank uint64
		a, b int32
	}
	merges := make([]merge, 0, len(t.model.merges))
	for k, r := range t.model.merges {
		merges = append(merges, merge{r >> 32, int32(uint32(k >> 32)), int32(uint32(k))})
	}
	slices.SortFunc(merges, func(x, y merge) int { return int(int64(x.rank) - int64(y.rank)) })
	v.Merges = make([]string, len(merges))
	for i, m := range merges {
		v.Merges[i] = v.Tokens[m.a] + " " + v.Tokens[m.b]
	}
	return v, nil
}
