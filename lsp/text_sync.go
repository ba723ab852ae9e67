package lsp

import (
	"context"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
)

// The text synchronization notifications run in order on the read loop, so
// a request always sees every edit the client sent before it.

func (s *Server) didOpen(_ context.Context, params jsonrpc2.RawMessage) {
	var p protocol.DidOpenTextDocumentParams
	if err := decodeParams(protocol.MethodTextDocumentDidOpen, params, &p); err != nil {
		s.log.Warn("lsp: bad didOpen", "err", err)
		return
	}
	td := p.TextDocument
	if td.URI == "" {
		s.log.Warn("lsp: didOpen without a uri")
		return
	}
	s.sched.invalidate(td.URI)
	s.docs.open(&Document{URI: td.URI, LanguageID: string(td.LanguageID), Version: td.Version, Text: td.Text})
}

func (s *Server) didChange(_ context.Context, params jsonrpc2.RawMessage) {
	var p protocol.DidChangeTextDocumentParams
	if err := decodeParams(protocol.MethodTextDocumentDidChange, params, &p); err != nil {
		s.log.Warn("lsp: bad didChange", "err", err)
		return
	}
	u := p.TextDocument.URI
	s.sched.invalidate(u)
	if _, err := s.docs.change(u, p.TextDocument.Version, p.ContentChanges, s.encoding()); err != nil {
		s.log.Warn("lsp: didChange", "uri", u, "err", err)
		return
	}
	// An edit is a place the user worked at, completion or not (extra.go).
	if n := len(p.ContentChanges); n > 0 {
		if c, ok := p.ContentChanges[n-1].(*protocol.TextDocumentContentChangePartial); ok {
			s.recent.note(u, int(c.Range.Start.Line))
		}
	}
}

func (s *Server) didClose(_ context.Context, params jsonrpc2.RawMessage) {
	var p protocol.DidCloseTextDocumentParams
	if err := decodeParams(protocol.MethodTextDocumentDidClose, params, &p); err != nil {
		s.log.Warn("lsp: bad didClose", "err", err)
		return
	}
	u := p.TextDocument.URI
	s.sched.invalidate(u)
	s.cache.forget(u)
	if !s.docs.close(u) {
		s.log.Warn("lsp: didClose of a document that is not open", "uri", u)
	}
}
