package tokenizer

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Load reads a Hugging Face tokenizer.json.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := FromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	return t, nil
}

// LoadFS reads the tokenizer of a model directory: tokenizer.json if there
// is one, else the vocab.json and merges.txt of a slow (Python) tokenizer, with
// added_tokens.json, tokenizer_config.json and special_tokens_map.json when
// present, as Qwen2 and Dream ship them.
func LoadFS(fsys fs.FS) (*Tokenizer, error) {
	data, err := fs.ReadFile(fsys, "tokenizer.json")
	if err == nil {
		t, err := FromJSON(data)
		if err != nil {
			return nil, fmt.Errorf("load tokenizer.json: %w", err)
		}
		return t, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	sp, err := slowSpec(fsys)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	return sp.build()
}

// spec is a tokenizer as read from its files, before the tables are built.
type spec struct {
	vocab        map[string]int32
	merges       [][2]string
	added        []addedToken
	forms        []norm.Form
	split        *splitter
	prefixSpace  prefixSpace
	ignoreMerges bool
	unk          string
	fuseUnk      bool
}

// prefixSpace says where ByteLevel's add_prefix_space puts a space.
type prefixSpace uint8

const (
	prefixNone    prefixSpace = iota
	prefixSegment             // before each stretch of text between added tokens (ByteLevel splits itself)
	prefixWord                // before each word cut by a Split that came before ByteLevel
)

// The parts of tokenizer.json this package reads.
type fileJSON struct {
	AddedTokens  []addedJSON     `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Decoder      json.RawMessage `json:"decoder"`
	Model        *modelJSON      `json:"model"`
}

type addedJSON struct {
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string           `json:"type"`
	Vocab                   map[string]int32 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
	UnkToken                *string          `json:"unk_token"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	Dropout                 *float64         `json:"dropout"`
}

// component is any normalizer, pre-tokenizer or decoder entry.
type component struct {
	Type           string            `json:"type"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Decoders       []json.RawMessage `json:"decoders"`
	AddPrefixSpace *bool             `json:"add_prefix_space"`
	UseRegex       *bool             `json:"use_regex"`
	Pattern        struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior string `json:"behavior"`
	Invert   bool   `json:"invert"`
}

// FromJSON builds a tokenizer from the contents of a tokenizer.json. It
// accepts a BPE model over bytes (ByteLevel pre-tokenizer) with the Qwen2,
// Llama 3 or GPT-2 split regex and Unicode normalizers, and names anything
// else it meets in its error.
func FromJSON(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if f.Model == nil {
		return nil, errors.New("tokenizer.json has no model")
	}
	m := f.Model
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported (only BPE)", m.Type)
	}
	switch {
	case m.ByteFallback:
		return nil, errors.New("model.byte_fallback is not supported (only byte-level BPE)")
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return nil, fmt.Errorf("model.continuing_subword_prefix %q is not supported", *m.ContinuingSubwordPrefix)
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, fmt.Errorf("model.end_of_word_suffix %q is not supported", *m.EndOfWordSuffix)
	case m.Dropout != nil && *m.Dropout > 0:
		return nil, errors.New("model.dropout is set: BPE dropout makes encoding random and is not supported")
	}
	sp := &spec{vocab: m.Vocab, ignoreMerges: m.IgnoreMerges, fuseUnk: m.FuseUnk}
	if m.UnkToken != nil {
		sp.unk = *m.UnkToken
	}
	var err error
	if sp.merges, err = parseMerges(m.Merges); err != nil {
		return nil, err
	}
	for _, a := range f.AddedTokens {
		sp.added = append(sp.added, addedToken{
			content: a.Content, special: a.Special, normalized: a.Normalized,
			lstrip: a.Lstrip, rstrip: a.Rstrip, singleWord: a.SingleWord,
		})
	}
	sp.assignAddedIDs()
	if sp.forms, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if err := sp.parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := checkDecoder(f.Decoder); err != nil {
		return nil, err
	}
	return sp.build()
}

// parseMerges reads model.merges, written either as "a b" strings or, since
// tokenizers 0.20, as ["a", "b"] pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err == nil {
		return pairs, nil
	}
	var lines []string
	if err := json.Unmarshal(raw, &lines); err != nil {
		return nil, errors.New("model.merges is neither a list of \"a b\" strings nor a list of pairs")
	}
	pairs = make([][2]string, len(lines))
	for i, l := range lines {
		a, b, ok := strings.Cut(l, " ")
		if !ok || strings.Contains(b, " ") {
			return nil, fmt.Errorf("model.merges[%d] %q is not two tokens separated by a space", i, l)
		}
		pairs[i] = [2]string{a, b}
	}
	return pairs, nil
}

func parseNormalizer(raw json.RawMessage) ([]norm.Form, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("parse normalizer: %w", err)
	}
	switch c.Type {
	case "NFC":
		return []norm.Form{norm.NFC}, nil
	case "NFD":
		return []norm.Form{norm.NFD}, nil
	case "NFKC":
		return []norm.Form{norm.NFKC}, nil
	case "NFKD":
		return []norm.Form{norm.NFKD}, nil
	case "Sequence":
		var forms []norm.Form
		for _, r := range c.Normalizers {
			f, err := parseNormalizer(r)
			if err != nil {
				return nil, err
			}
			forms = append(forms, f...)
		}
		return forms, nil
	}
	return nil, fmt.Errorf("normalizer %q is not supported (only NFC, NFD, NFKC, NFKD)", c.Type)
}

// parsePreTokenizer accepts ByteLevel alone (with or without its own GPT-2
// regex), or a Split by a known regex followed by ByteLevel without regex.
func (sp *spec) parsePreTokenizer(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return errors.New("tokenizer has no pre_tokenizer; only byte-level BPE (ByteLevel pre-tokenizer) is supported")
	}
	var steps []component
	if err := flattenPreTokenizers(raw, &steps); err != nil {
		return err
	}
	byteLevel := false
	for _, c := range steps {
		switch c.Type {
		case "Split":
			if byteLevel || sp.split != nil {
				return errors.New("pre_tokenizer: a Split after ByteLevel or after another Split is not supported")
			}
			if c.Pattern.Regex == nil {
				return errors.New("pre_tokenizer: Split by a plain string is not supported (only the Qwen2, Llama 3 and GPT-2 regexes)")
			}
			s, ok := splitterFor(*c.Pattern.Regex)
			if !ok {
				return fmt.Errorf("pre_tokenizer: Split regex %q is not supported (only the Qwen2, Llama 3 and GPT-2 regexes)", *c.Pattern.Regex)
			}
			// Every character matches these regexes, so there is no text
			// between matches: Isolated (inverted or not) and Removed of the
			// inverted pattern (keep the matches) all make each match a word.
			if c.Behavior != "Isolated" && (c.Behavior != "Removed" || !c.Invert) {
				return fmt.Errorf("pre_tokenizer: Split behavior %q (invert %v) is not supported (only Isolated, or Removed with invert)", c.Behavior, c.Invert)
			}
			sp.split = &s
		case "ByteLevel":
			if byteLevel {
				return errors.New("pre_tokenizer: two ByteLevel steps")
			}
			byteLevel = true
			// Hugging Face's defaults for a ByteLevel that omits them.
			useRegex := c.UseRegex == nil || *c.UseRegex
			addPrefix := c.AddPrefixSpace == nil || *c.AddPrefixSpace
			if useRegex {
				if sp.split != nil {
					return errors.New("pre_tokenizer: ByteLevel with use_regex after a Split is not supported")
				}
				s, _ := splitterFor(gpt2Pattern)
				sp.split = &s
			}
			if addPrefix {
				sp.prefixSpace = prefixSegment
				if !useRegex && sp.split != nil {
					sp.prefixSpace = prefixWord
				}
			}
		default:
			return fmt.Errorf("pre_tokenizer %q is not supported (only ByteLevel and Split)", c.Type)
		}
	}
	if !byteLevel {
		return errors.New("pre_tokenizer has no ByteLevel step; only byte-level BPE is supported")
	}
	return nil
}

func flattenPreTokenizers(raw json.RawMessage, steps *[]component) error {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("parse pre_tokenizer: %w", err)
	}
	if c.Type != "Sequence" {
		*steps = append(*steps, c)
		return nil
	}
	for _, r := range c.Pretokenizers {
		if err := flattenPreTokenizers(r, steps); err != nil {
			return err
		}
	}
	return nil
}

// checkDecoder accepts the ByteLevel decoder, which Decode implements, or none.
func checkDecoder(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("parse decoder: %w", err)
	}
	switch c.Type {
	case "ByteLevel":
		return nil
	case "Sequence":
		for _, r := range c.Decoders {
			if err := checkDecoder(r); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("decoder %q is not supported (only ByteLevel)", c.Type)
}

// assignAddedIDs gives the added tokens of a tokenizer.json the ids Hugging
// Face gives them when it loads the file, which ignores the "id" written
// there: a token already in the vocabulary (or added before) keeps that id,
// and the others are numbered in order from the vocabulary's size. For files
// Hugging Face wrote the two agree.
func (sp *spec) assignAddedIDs() {
	next := int32(len(sp.vocab))
	byContent := map[string]int{}
	var out []addedToken
	for _, a := range sp.added {
		if a.content == "" {
			continue
		}
		if i, ok := byContent[a.content]; ok {
			a.id = out[i].id
			out[i] = a // a repeated token takes the later flags
			continue
		}
		if id, ok := sp.vocab[a.content]; ok {
			a.id = id
		} else {
			a.id = next
			next++
		}
		byContent[a.content] = len(out)
		out = append(out, a)
	}
	sp.added = out
}

// maxID bounds token ids, so that a corrupt file cannot make the tables huge.
const maxID = 1 << 24

// build makes the lookup tables.
func (sp *spec) build() (*Tokenizer, error) {
	if len(sp.vocab) == 0 {
		return nil, errors.New("vocabulary is empty")
	}
	t := &Tokenizer{split: sp.split, prefixSp: sp.prefixSpace, forms: sp.forms}
	t.vocab = make(map[string]int32, len(sp.vocab)+len(sp.added))
	size := int32(0)
	for tok, id := range sp.vocab {
		if id < 0 || id >= maxID {
			return nil, fmt.Errorf("vocabulary token %q has id %d, outside [0, %d)", tok, id, maxID)
		}
		size = max(size, id+1)
		t.vocab[tok] = id
	}
	for _, a := range sp.added {
		if a.id < 0 || a.id >= maxID {
			return nil, fmt.Errorf("added token %q has id %d, outside [0, %d)", a.content, a.id, maxID)
		}
		if a.content == "" {
			return nil, fmt.Errorf("added token %d has no content", a.id)
		}
		size = max(size, a.id+1)
	}

	// The bytes of every token: vocabulary tokens decoded from the byte-level
	// alphabet, added tokens as their text (which wins if both claim an id).
	pieces := make([][]byte, size)
	for tok, id := range sp.vocab {
		pieces[id] = byteLevelDecode(tok)
	}
	t.special = make([]bool, size)
	for i, a := range sp.added {
		if a.normalized {
			// Matched in normalized text, so normalize the pattern too; it
			// decodes to that form, as in Hugging Face.
			for _, f := range sp.forms {
				sp.added[i].content = f.String(sp.added[i].content)
			}
		}
		pieces[a.id] = []byte(sp.added[i].content)
		t.vocab[a.content] = a.id
		t.special[a.id] = a.special
	}
	total := 0
	for _, p := range pieces {
		total += len(p)
	}
	t.bytes = make([]byte, 0, total)
	t.offsets = make([]uint32, size+1)
	for id, p := range pieces {
		t.bytes = append(t.bytes, p...)
		t.offsets[id+1] = uint32(len(t.bytes))
	}

	m := &t.model
	for b := range m.byteID {
		id, ok := sp.vocab[string(byteToRune[b])]
		if !ok {
			id = -1
		}
		m.byteID[b] = id
	}
	m.unk = -1
	if sp.unk != "" {
		id, ok := t.vocab[sp.unk]
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocabulary", sp.unk)
		}
		m.unk = id
	}
	m.fuseUnk = sp.fuseUnk
	m.merges = make(map[uint64]uint64, len(sp.merges))
	for rank, p := range sp.merges {
		a, okA := sp.vocab[p[0]]
		b, okB := sp.vocab[p[1]]
		ab, okAB := sp.vocab[p[0]+p[1]]
		if !okA || !okB || !okAB {
			return nil, fmt.Errorf("merge %d (%q %q): token not in the vocabulary", rank, p[0], p[1])
		}
		// A pair listed twice keeps its last rank, as in Hugging Face.
		m.merges[pairKey(a, b)] = uint64(rank)<<32 | uint64(uint32(ab))
	}
	if sp.ignoreMerges {
		m.ignoreMerges = true
		m.wordID = make(map[string]int32, len(sp.vocab))
		for tok, id := range sp.vocab {
			m.wordID[string(byteLevelDecode(tok))] = id
		}
	}

	var raw, normalized []addedToken
	for _, a := range sp.added {
		if a.normalized {
			normalized = append(normalized, a)
		} else {
			raw = append(raw, a)
		}
	}
	t.raw, t.normalized = newMatcher(raw), newMatcher(normalized)
	return t, nil
}

// slowSpec reads vocab.json + merges.txt and the files around them.
func slowSpec(fsys fs.FS) (*spec, error) {
	vocabData, err := fs.ReadFile(fsys, "vocab.json")
	if err != nil {
		return nil, fmt.Errorf("no tokenizer.json, and: %w", err)
	}
	sp := &spec{}
	if err := json.Unmarshal(vocabData, &sp.vocab); err != nil {
		return nil, fmt.Errorf("parse vocab.json: %w", err)
	}
	mergesData, err := fs.ReadFile(fsys, "merges.txt")
	if err != nil {
		return nil, err
	}
	if sp.merges, err = parseMergesTxt(string(mergesData)); err != nil {
		return nil, err
	}

	var cfg configJSON
	for _, name := range []string{"special_tokens_map.json", "tokenizer_config.json"} {
		data, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
	}
	extra := map[string]int32{}
	if data, err := fs.ReadFile(fsys, "added_tokens.json"); err == nil {
		if err := json.Unmarshal(data, &extra); err != nil {
			return nil, fmt.Errorf("parse added_tokens.json: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	// What transformers does: the tokens of added_tokens_decoder with their
	// flags, then those of added_tokens.json, then any special token named in
	// the config, taking its id from the vocabulary or, failing that, the next
	// free one.
	seen := map[string]bool{}
	var decoded []addedToken
	for k, a := range cfg.AddedTokensDecoder {
		id, err := strconv.ParseInt(k, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: added_tokens_decoder key %q is not an id", k)
		}
		decoded = append(decoded, addedToken{id: int32(id), content: a.Content, special: a.Special,
			normalized: a.Normalized, lstrip: a.Lstrip, rstrip: a.Rstrip, singleWord: a.SingleWord})
	}
	slices.SortFunc(decoded, func(a, b addedToken) int { return cmp.Compare(a.id, b.id) })
	next := int32(0)
	for _, id := range sp.vocab {
		next = max(next, id+1)
	}
	add := func(a addedToken) {
		sp.added = append(sp.added, a)
		seen[a.content] = true
		next = max(next, a.id+1)
	}
	for _, a := range decoded {
		add(a)
	}
	specials := cfg.specialTokens()
	isSpecial := map[string]bool{}
	for _, s := range specials {
		isSpecial[s] = true
	}
	extraNames := make([]string, 0, len(extra))
	for s := range extra {
		extraNames = append(extraNames, s)
	}
	slices.SortFunc(extraNames, func(a, b string) int { return cmp.Compare(extra[a], extra[b]) })
	for _, s := range extraNames {
		if !seen[s] {
			add(addedToken{id: extra[s], content: s, special: isSpecial[s], normalized: !isSpecial[s]})
		}
	}
	for _, s := range specials {
		if seen[s] || s == "" {
			continue
		}
		id, ok := sp.vocab[s]
		if !ok {
			id = next
		}
		add(addedToken{id: id, content: s, special: true})
	}

	class := strings.TrimSuffix(cfg.TokenizerClass, "Fast")
	switch class {
	case "GPT2Tokenizer", "CodeGenTokenizer":
		s, _ := splitterFor(gpt2Pattern)
		sp.split = &s
		if cfg.AddPrefixSpace {
			sp.prefixSpace = prefixSegment
		}
	default: // Qwen2Tokenizer, DreamTokenizer, or no config: the Qwen2 pipeline
		s, _ := splitterFor(qwen2Pattern)
		sp.split = &s
		sp.forms = []norm.Form{norm.NFC}
	}
	return sp, nil
}

// parseMergesTxt reads merges.txt: an optional "#version" line, then one
// "a b" pair a line, in rank order.
func parseMergesTxt(s string) ([][2]string, error) {
	var pairs [][2]string
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || (n == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("merges.txt line %d: %q is not two tokens separated by a space", n+1, line)
		}
		pairs = append(pairs, [2]string{f[0], f[1]})
	}
	return pairs, nil
}

// configJSON holds what tokenizer_config.json and special_tokens_map.json say
// about added and special tokens.
type configJSON struct {
	TokenizerClass     string               `json:"tokenizer_class"`
	AddPrefixSpace     bool                 `json:"add_prefix_space"`
	AddedTokensDecoder map[string]addedJSON `json:"added_tokens_decoder"`
	BOS                tokenName            `json:"bos_token"`
	EOS                tokenName            `json:"eos_token"`
	UNK                tokenName            `json:"unk_token"`
	PAD                tokenName            `json:"pad_token"`
	Mask               tokenName            `json:"mask_token"`
	SEP                tokenName            `json:"sep_token"`
	CLS                tokenName            `json:"cls_token"`
	Additional         []tokenName          `json:"additional_special_tokens"`
}

func (c *configJSON) specialTokens() []string {
	out := []string{string(c.BOS), string(c.EOS), string(c.UNK), string(c.PAD), string(c.Mask), string(c.SEP), string(c.CLS)}
	for _, a := range c.Additional {
		out = append(out, string(a))
	}
	return out
}

// tokenName is a special token in a config: a string, or an object with its
// "content".
type tokenName string

func (n *tokenName) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = tokenName(s)
		return nil
	}
	var o struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("special token %s is neither a string nor an object with content", b)
	}
	*n = tokenName(o.Content)
	return nil
}
