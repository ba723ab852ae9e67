package lsp

import (
	"context"
	"strings"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
)

// completion answers textDocument/completion, for clients without inline
// completion (Helix, eglot, Neovim before 0.12): one item whose textEdit
// replaces the identifier being typed with itself plus the suggestion. The
// list is marked incomplete so that the client asks again as the user types,
// which the type-through cache answers without the model.
func (s *Server) completion(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p protocol.CompletionParams
	if err := decodeParams(protocol.MethodTextDocumentCompletion, req.Params(), &p); err != nil {
		return nil, err
	}
	at, cursor, err := s.cursorSite(p.TextDocument.URI, p.Position)
	if err != nil {
		return nil, err
	}
	doc := at.doc
	a, err := s.suggest(ctx, at, true)
	if err != nil {
		return nil, err
	}
	list := &protocol.CompletionList{IsIncomplete: true, Items: []protocol.CompletionItem{}}
	if a.text == "" {
		return list, nil
	}
	start := wordStart(doc.Text, cursor)
	text := doc.Text[start:cursor] + a.text
	list.Items = append(list.Items, protocol.CompletionItem{
		Label:            label(text),
		Kind:             protocol.CompletionItemKindText,
		Detail:           protocol.NewOptional("infuse"),
		FilterText:       protocol.NewOptional(text),
		SortText:         protocol.NewOptional("0"),
		Preselect:        protocol.NewOptional(true),
		InsertTextFormat: protocol.InsertTextFormatPlainText,
		TextEdit:         &protocol.TextEdit{Range: doc.Mapper().OffsetsRange(start, cursor, s.encoding()), NewText: text},
	})
	return list, nil
}

// label is the item's name in the popup: the first line of its text,
// shortened.
func label(text string) string {
	first, _, multi := strings.Cut(text, "\n")
	first = strings.TrimRight(first, "\r")
	const max = 60
	if r := []rune(first); len(r) > max {
		first = string(r[:max]) + "…"
	} else if multi {
		first += " …"
	}
	return first
}
