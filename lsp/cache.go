package lsp

import (
	"hash/maphash"
	"strings"
	"sync"

	"go.lsp.dev/uri"
)

// cacheSize is how many recent suggestions the type-through cache keeps. A
// user types into the newest one or two; a few more cover switching back and
// forth between buffers.
const cacheSize = 16

// typeThrough remembers recent suggestions so that typing the first
// characters of one is answered at once with the rest of it, without the
// model. It keeps hashes of the text around each suggestion rather than the
// text, so it holds no old document versions alive.
type typeThrough struct {
	seed maphash.Seed

	mu      sync.Mutex
	entries [cacheSize]suggestion
	next    int // ring position of the next insert
	epoch   int // incremented by clear
}

type suggestion struct {
	uri        uri.URI
	beforeLen  int    // bytes of document text before the cursor
	beforeHash uint64 // hash of that text
	afterHash  uint64 // hash of the text after the cursor
	text       string // what was suggested; "" marks an unused slot
}

func newTypeThrough() *typeThrough {
	return &typeThrough{seed: maphash.MakeSeed()}
}

// epochNow returns the cache's epoch, to pass to add later.
func (c *typeThrough) epochNow() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// add remembers that text was suggested between before and after in u,
// unless the cache was cleared since epoch was read: the suggestion was
// computed under the configuration that the clear dropped.
func (c *typeThrough) add(epoch int, u uri.URI, before, after, text string) {
	if text == "" {
		return
	}
	e := suggestion{
		uri:        u,
		beforeLen:  len(before),
		beforeHash: maphash.String(c.seed, before),
		afterHash:  maphash.String(c.seed, after),
		text:       text,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	c.entries[c.next] = e
	c.next = (c.next + 1) % cacheSize
}

// lookup returns what is left of a suggestion when the text before the
// cursor is the suggestion's own before-text followed by a proper prefix of
// the suggestion, and the text after the cursor is unchanged. The newest
// matching suggestion wins.
func (c *typeThrough) lookup(u uri.URI, before, after string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var afterHash uint64
	hashed := false
	for k := 1; k <= cacheSize; k++ {
		e := &c.entries[(c.next-k+cacheSize)%cacheSize]
		if e.text == "" || e.uri != u || e.beforeLen > len(before) {
			continue
		}
		typed := before[e.beforeLen:]
		if len(typed) >= len(e.text) || !strings.HasPrefix(e.text, typed) {
			continue
		}
		if !hashed {
			afterHash, hashed = maphash.String(c.seed, after), true
		}
		if e.afterHash != afterHash || e.beforeHash != maphash.String(c.seed, before[:e.beforeLen]) {
			continue
		}
		return e.text[len(typed):], true
	}
	return "", false
}

// forget drops the suggestions made in u.
func (c *typeThrough) forget(u uri.URI) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		if c.entries[i].uri == u {
			c.entries[i] = suggestion{}
		}
	}
}

// clear drops every suggestion: after a configuration change they may come
// from another model or obey another mode.
func (c *typeThrough) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = [cacheSize]suggestion{}
	c.epoch++
}
