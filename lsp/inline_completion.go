package lsp

import (
	"context"
	"strings"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"

	"github.com/infuse-lsp/infuse/infill"
)

// inlineCompletion answers textDocument/inlineCompletion (LSP 3.18): ghost
// text at the cursor. Every item's range is the cursor (an insertion), or the
// selected completion item's range when the client's completion popup has
// one selected; both lie on one line, as the specification requires.
func (s *Server) inlineCompletion(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p protocol.InlineCompletionParams
	if err := decodeParams(protocol.MethodTextDocumentInlineCompletion, req.Params(), &p); err != nil {
		return nil, err
	}
	at, cursor, err := s.cursorSite(p.TextDocument.URI, p.Position)
	if err != nil {
		return nil, err
	}
	doc, enc := at.doc, s.encoding()
	m := doc.Mapper()
	start, end := cursor, cursor

	// With an item selected in the completion popup, the suggestion must
	// extend the item's text and replace the same range (the spec's rule for
	// selectedCompletionInfo): complete as if the item were already inserted.
	sel := p.Context.SelectedCompletionInfo
	if sel.Text != "" || sel.Range != (protocol.Range{}) {
		if sel.Range.Start.Line != sel.Range.End.Line {
			return nil, jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s: selectedCompletionInfo.range spans lines", protocol.MethodTextDocumentInlineCompletion)
		}
		var err error
		start, end, err = m.RangeOffsets(sel.Range, enc)
		if err != nil {
			return nil, jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s: selectedCompletionInfo: %v", protocol.MethodTextDocumentInlineCompletion, err)
		}
		at = site{doc: doc, before: doc.Text[:start] + sel.Text, after: doc.Text[end:]}
	}

	automatic := p.Context.TriggerKind != protocol.InlineCompletionTriggerKindInvoked
	a, err := s.suggest(ctx, at, automatic)
	if err != nil {
		return nil, err
	}
	list := &protocol.InlineCompletionList{Items: []protocol.InlineCompletionItem{}}
	if a.text == "" {
		return list, nil
	}
	rng := m.OffsetsRange(start, end, enc)
	for _, text := range candidates(a, automatic) {
		list.Items = append(list.Items, protocol.InlineCompletionItem{
			InsertText: protocol.String(sel.Text + text),
			Range:      &rng,
		})
	}
	return list, nil
}

// candidates lists the items to offer for a. An automatic request gets one
// item, as the specification suggests. An invoked one, where the client lets
// the user cycle through several, also gets the first line alone of a
// multi-line suggestion: the common choice between "the statement" and "the
// whole block", at no extra model call.
func candidates(a answer, automatic bool) []string {
	if automatic || a.mode != infill.MultiLine {
		return []string{a.text}
	}
	first, _, multi := strings.Cut(a.text, "\n")
	first = strings.TrimRight(first, "\r")
	if !multi || strings.TrimSpace(first) == "" {
		return []string{a.text}
	}
	return []string{a.text, first}
}

// openDocument returns the open document u, or the InvalidParams error a
// request about an unknown document gets.
func (s *Server) openDocument(u uri.URI) (*Document, error) {
	if u == "" {
		return nil, jsonrpc2.Errorf(jsonrpc2.InvalidParams, "textDocument.uri missing")
	}
	doc, ok := s.docs.get(u)
	if !ok {
		return nil, jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s is not open (no didOpen seen)", u)
	}
	return doc, nil
}
