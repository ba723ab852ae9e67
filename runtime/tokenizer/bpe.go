package tokenizer

import "sync"

// bpe turns one word (raw bytes) into token ids: start from one symbol per
// byte and keep applying the merge of lowest rank among adjacent pairs,
// leftmost first on ties, until no adjacent pair has a merge. Words repeat a
// lot in source code, so results are cached.
type bpe struct {
	byteID [256]int32 // token of each single byte, or -1
	// merges maps a pair of ids (left<<32 | right) to rank<<32 | merged id.
	merges map[uint64]uint64
	// With ignoreMerges a word that is a whole token is emitted as is, even if
	// the merges would not build it (Llama 3 sets it).
	ignoreMerges bool
	wordID       map[string]int32 // raw bytes → id; only with ignoreMerges
	unk          int32            // id for a byte with no token, or -1 to drop it
	fuseUnk      bool

	cache wordCache
}

func pairKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// symbol is a node of the doubly linked list a word is merged in.
type symbol struct {
	id         int32
	prev, next int32 // index in the list, -1 at the ends
	dead       bool
}

// candidate is a possible merge of symbols[pos] with its right neighbour.
type candidate struct {
	rank        int32
	pos         int32
	left, right int32 // the pair's ids when the candidate was made
	id          int32 // merged id
}

func (a candidate) less(b candidate) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// scratch holds the buffers of one merge, reused across words.
type scratch struct {
	syms []symbol
	heap []candidate
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// appendWord appends the ids of word to out.
func (m *bpe) appendWord(out []int32, word string, sc *scratch) []int32 {
	if len(word) == 1 {
		if id := m.byteID[word[0]]; id >= 0 {
			return append(out, id)
		}
	}
	if m.ignoreMerges {
		if id, ok := m.wordID[word]; ok {
			return append(out, id)
		}
	}
	syms := sc.syms[:0]
	lastUnk := false
	for i := 0; i < len(word); i++ {
		id := m.byteID[word[i]]
		if id < 0 {
			if m.unk < 0 || (m.fuseUnk && lastUnk) {
				continue
			}
			id, lastUnk = m.unk, true
		} else {
			lastUnk = false
		}
		n := int32(len(syms))
		syms = append(syms, symbol{id: id, prev: n - 1, next: n + 1})
	}
	if len(syms) == 0 {
		sc.syms = syms
		return out
	}
	syms[len(syms)-1].next = -1

	h := sc.heap[:0]
	for i := 0; i+1 < len(syms); i++ {
		if c, ok := m.candidate(syms, int32(i)); ok {
			h = heapPush(h, c)
		}
	}
	for len(h) > 0 {
		var c candidate
		c, h = heapPop(h)
		s := &syms[c.pos]
		// Skip candidates a previous merge made stale: the left symbol was
		// absorbed, or either side has grown since. A symbol only grows, so an
		// unchanged id means an unchanged symbol.
		if s.dead || s.id != c.left || s.next < 0 || syms[s.next].id != c.right {
			continue
		}
		r := &syms[s.next]
		r.dead = true
		s.id = c.id
		s.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.pos
		}
		if s.prev >= 0 {
			if c, ok := m.candidate(syms, s.prev); ok {
				h = heapPush(h, c)
			}
		}
		if c, ok := m.candidate(syms, c.pos); ok {
			h = heapPush(h, c)
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, syms[i].id)
	}
	sc.syms, sc.heap = syms, h
	return out
}

// candidate returns the merge of syms[pos] with its right neighbour, if any.
func (m *bpe) candidate(syms []symbol, pos int32) (candidate, bool) {
	next := syms[pos].next
	if next < 0 {
		return candidate{}, false
	}
	k, ok := m.merges[pairKey(syms[pos].id, syms[next].id)]
	if !ok {
		return candidate{}, false
	}
	return candidate{rank: int32(k >> 32), pos: pos, left: syms[pos].id, right: syms[next].id, id: int32(k)}, true
}

// heapPush and heapPop keep h a binary min-heap by (rank, pos). Written out
// rather than through container/heap to keep the merge loop free of
// interface calls and allocations.
func heapPush(h []candidate, c candidate) []candidate {
	h = append(h, c)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop(h []candidate) (candidate, []candidate) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return top, h
}

// wordCache remembers the ids of words already merged. Encode reads it under
// a read lock held for the whole call and adds the words it missed in one
// write-locked batch at the end, so concurrent encodes rarely wait.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

const (
	cacheMaxWords   = 1 << 17 // beyond this the cache stops growing
	cacheMaxWordLen = 256     // longer words are rare and not worth keeping
)

func (c *wordCache) add(words map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string][]int32, 1024)
	}
	for w, ids := range words {
		if len(c.m) >= cacheMaxWords {
			return
		}
		c.m[w] = ids
	}
}
