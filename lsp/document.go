package lsp

import (
	"fmt"
	"sync"

	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"
)

// A Document is one version of an open buffer. It is never modified: an edit
// makes a new Document, so a request keeps reading the version it started
// with while later edits arrive.
type Document struct {
	URI        uri.URI
	LanguageID string
	Version    int32
	Text       string

	mapperOnce sync.Once
	mapper     *Mapper
}

// Mapper returns the document's position mapper.
func (d *Document) Mapper() *Mapper {
	d.mapperOnce.Do(func() { d.mapper = NewMapper(d.Text) })
	return d.mapper
}

// applyChanges returns text with changes applied in order, as
// textDocument/didChange defines: each range refers to the text left by the
// change before it. Positions are clamped (see mapper.go); a range that ends
// before it starts is read as the empty range at its start and reported in
// err, after every change has been applied.
func applyChanges(text string, changes []protocol.TextDocumentContentChangeEvent, enc Encoding) (string, error) {
	var first error
	for i, c := range changes {
		switch c := c.(type) {
		case *protocol.TextDocumentContentChangeWholeDocument:
			text = c.Text
		case *protocol.TextDocumentContentChangePartial:
			start, end, err := NewMapper(text).RangeOffsets(c.Range, enc)
			if err != nil && first == nil {
				first = fmt.Errorf("change %d: %w", i, err)
			}
			text = text[:start] + c.Text + text[end:]
		default:
			if first == nil {
				first = fmt.Errorf("change %d: no text", i)
			}
		}
	}
	return text, first
}

// store holds the open documents.
type store struct {
	mu   sync.Mutex
	docs map[uri.URI]*Document
}

func newStore() *store { return &store{docs: make(map[uri.URI]*Document)} }

// open records doc, replacing any document open under its URI.
func (s *store) open(doc *Document) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[doc.URI] = doc
}

// change applies changes to the open document u and records the result as
// version. It reports an error for an unknown document (and changes nothing),
// for a version that does not increase, or for a malformed change; in the last
// two cases the edit is applied all the same, because the client's buffer has
// already moved on and dropping the edit would leave the copies apart forever.
func (s *store) change(u uri.URI, version int32, changes []protocol.TextDocumentContentChangeEvent, enc Encoding) (*Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.docs[u]
	if !ok {
		return nil, fmt.Errorf("%s is not open", u)
	}
	text, err := applyChanges(old.Text, changes, enc)
	doc := &Document{URI: u, LanguageID: old.LanguageID, Version: version, Text: text}
	s.docs[u] = doc
	if err == nil && version <= old.Version {
		err = fmt.Errorf("version %d does not follow %d", version, old.Version)
	}
	return doc, err
}

// close forgets u, reporting whether it was open.
func (s *store) close(u uri.URI) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.docs[u]
	delete(s.docs, u)
	return ok
}

// get returns the current version of u.
func (s *store) get(u uri.URI) (*Document, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[u]
	return d, ok
}
