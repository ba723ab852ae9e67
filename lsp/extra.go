package lsp

import (
	"slices"
	"strings"
	"sync"

	"go.lsp.dev/uri"

	"github.com/infuse-lsp/infuse/infill"
	"github.com/infuse-lsp/infuse/infill/remote"
)

// This file gathers context from other places for engines that take it
// (llama.cpp's /infill input_extra), the way llama.vim's ring buffer does:
// the server remembers where the user recently worked (the cursor of each
// completion request, since a client asks for one at nearly every
// keystroke), and a request carries a few chunks of lines around those
// places, from other open documents of the same language and from parts of
// its own document that its prefix and suffix windows do not cover.

const (
	// extraSpots bounds the places remembered.
	extraSpots = 32
	// extraChunkLines is the height of one chunk: half above its place,
	// half below.
	extraChunkLines = 32
)

// A spot is a place the user worked at: a line of a document.
type spot struct {
	uri  uri.URI
	line int
}

// recentSpots remembers the latest places, oldest first. Its zero value is
// ready to use.
type recentSpots struct {
	mu    sync.Mutex
	spots []spot
}

// note records u's line as the newest place. A remembered place in the same
// document whose chunk would mostly overlap this one's is dropped: one
// stretch of code being edited is one place, not one per keystroke.
func (r *recentSpots) note(u uri.URI, line int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spots = slices.DeleteFunc(r.spots, func(s spot) bool {
		return s.uri == u && abs(s.line-line) < extraChunkLines/2
	})
	r.spots = append(r.spots, spot{u, line})
	if n := len(r.spots) - extraSpots; n > 0 {
		r.spots = slices.Delete(r.spots, 0, n)
	}
}

// newestFirst returns the places, the most recent first.
func (r *recentSpots) newestFirst() []spot {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.spots)
	slices.Reverse(out)
	return out
}

// forget drops the places in documents that are no longer open.
func (r *recentSpots) forget(open func(uri.URI) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spots = slices.DeleteFunc(r.spots, func(s spot) bool { return !open(s.uri) })
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// takesExtra reports whether the engine cfg names sends snippets of other
// files: only llama.cpp's /infill has a field for them.
func takesExtra(e Engine) bool {
	api, ok := remote.ParseAPI(e.Kind)
	return ok && api == remote.LlamaCpp
}

// extraFor notes the cursor of a completion at site at and returns the
// snippets to send with it: none unless the engine takes them.
// window is the byte range of at.doc's text that the prefix and suffix
// already carry.
func (s *Server) extraFor(at site, window [2]int, cfg Config) []infill.Snippet {
	m := at.doc.Mapper()
	s.recent.note(at.doc.URI, int(m.OffsetPosition(len(at.before), UTF8).Line))
	if !takesExtra(cfg.Engine) || cfg.ExtraChunks <= 0 || cfg.ExtraBytes <= 0 {
		return nil
	}
	s.recent.forget(func(u uri.URI) bool { _, ok := s.docs.get(u); return ok })
	return gatherExtra(at.doc, window, s.recent.newestFirst(), s.openDocuments(), cfg.ExtraChunks, cfg.ExtraBytes)
}

// openDocuments returns the open documents in URI order.
func (s *Server) openDocuments() []*Document {
	s.docs.mu.Lock()
	docs := make([]*Document, 0, len(s.docs.docs))
	for _, d := range s.docs.docs {
		docs = append(docs, d)
	}
	s.docs.mu.Unlock()
	slices.SortFunc(docs, func(a, b *Document) int { return strings.Compare(string(a.URI), string(b.URI)) })
	return docs
}

// A chunk is a run of whole lines of one document, as byte offsets.
type chunk struct {
	doc        *Document
	start, end int
}

func (c chunk) overlaps(d chunk) bool {
	return c.doc.URI == d.doc.URI && c.start < d.end && d.start < c.end
}

// gatherExtra picks at most maxChunks chunks of at most maxBytes in all for
// a completion in cur, whose bytes window[0]:window[1] the prompt already
// holds. It takes chunks around spots (newest first), then the heads of open
// documents that have no spot (their package clause, imports and first
// declarations), all from documents of cur's language; it skips chunks that
// overlap the window or a chunk already taken, and blank ones. The result is
// oldest first, so the most recent place sits nearest the prompt (and is
// the last a server with a short context drops).
func gatherExtra(cur *Document, window [2]int, spots []spot, open []*Document, maxChunks, maxBytes int) []infill.Snippet {
	byURI := make(map[uri.URI]*Document, len(open))
	for _, d := range open {
		if d.LanguageID == cur.LanguageID {
			byURI[d.URI] = d
		}
	}
	byURI[cur.URI] = cur // the version the completion reads
	self := chunk{doc: cur, start: window[0], end: window[1]}

	var taken []chunk
	budget := maxBytes
	take := func(c chunk) bool {
		if len(taken) >= maxChunks || budget <= 0 {
			return false
		}
		if c.overlaps(self) || slices.ContainsFunc(taken, c.overlaps) {
			return true
		}
		text := c.doc.Text[c.start:c.end]
		if len(text) > budget {
			// Keep the whole lines that fit.
			cut := strings.LastIndexByte(text[:budget], '\n')
			if cut < 0 {
				return false
			}
			text = text[:cut+1]
			c.end = c.start + len(text)
		}
		if strings.TrimSpace(text) == "" {
			return true
		}
		taken = append(taken, c)
		budget -= len(text)
		return true
	}

	visited := make(map[uri.URI]bool)
	for _, sp := range spots {
		d, ok := byURI[sp.uri]
		if !ok {
			continue
		}
		visited[sp.uri] = true
		if !take(linesAround(d, sp.line-extraChunkLines/2, extraChunkLines)) {
			break
		}
	}
	for _, d := range open {
		if _, ok := byURI[d.URI]; !ok || visited[d.URI] || d.URI == cur.URI {
			continue
		}
		if !take(linesAround(d, 0, extraChunkLines)) {
			break
		}
	}

	// Taken newest first (spots) then heads: the heads are the least
	// relevant, so they go first in the result, and the newest spot last.
	slices.Reverse(taken)
	out := make([]infill.Snippet, len(taken))
	for i, c := range taken {
		out[i] = infill.Snippet{Filename: displayName(c.doc.URI), Text: c.doc.Text[c.start:c.end]}
	}
	return out
}

// linesAround returns n lines of d from line first on, clamped to the text.
func linesAround(d *Document, first, n int) chunk {
	m := d.Mapper()
	lines := m.Lines()
	first = min(max(first, 0), max(lines-n, 0))
	last := min(first+n, lines) // exclusive
	end := len(d.Text)
	if last < lines {
		end = m.lineStarts[last]
	}
	return chunk{doc: d, start: m.lineStarts[first], end: end}
}

// displayName is the name a snippet goes under: the file's path, or the URI
// of a document that is not a file.
func displayName(u uri.URI) string {
	if u.IsFile() {
		return u.FsPath()
	}
	return string(u)
}
