package lsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"

	"github.com/infuse-lsp/infuse/infill"
)

// "Fill holes": a code action on a selection that holds hole markers
// (/*?*/ and the configured others; a line of just "..." in Python) fills
// every hole at once. A bidirectional model sees all holes in one canvas, so
// each filling agrees with the others; infill.HoleFiller does that in one
// call. A completer without it fills the holes one after another.
//
// Code actions are requested whenever the cursor moves, so the model runs
// only when the user picks the action (codeAction/resolve) if the client
// can resolve edits; otherwise when the action is listed.

// A span is a byte range of a document.
type span struct{ start, end int }

// fillHolesData rides in the code action's data field to codeAction/resolve.
type fillHolesData struct {
	URI     uri.URI        `json:"uri"`
	Version int32          `json:"version"`
	Range   protocol.Range `json:"range"`
}

func (s *Server) codeAction(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var p protocol.CodeActionParams
	if err := decodeParams(protocol.MethodTextDocumentCodeAction, req.Params(), &p); err != nil {
		return nil, err
	}
	doc, err := s.openDocument(p.TextDocument.URI)
	if err != nil {
		return nil, err
	}
	actions := []protocol.CommandOrCodeAction{}
	caps := s.capabilities()
	cfg := s.config()
	if !caps.codeActionLiteral || !wantsKind(p.Context.Only, protocol.CodeActionKindRefactorRewrite) || !cfg.Enabled(doc.LanguageID) {
		return actions, nil
	}
	enc := s.encoding()
	m := doc.Mapper()
	start, end, err := m.RangeOffsets(p.Range, enc)
	if err != nil {
		return nil, jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s: %v", protocol.MethodTextDocumentCodeAction, err)
	}
	holes := findHoles(doc.Text, span{start, end}, doc.LanguageID, cfg.HoleMarkers)
	if len(holes) == 0 {
		return actions, nil
	}
	action := &protocol.CodeAction{
		Title: holesTitle(len(holes)),
		Kind:  ptr(protocol.CodeActionKindRefactorRewrite),
	}
	if caps.resolveEdit {
		data, err := json.Marshal(fillHolesData{URI: doc.URI, Version: doc.Version, Range: p.Range})
		if err != nil {
			return nil, fmt.Errorf("encode code action data: %w", err)
		}
		action.Data = data
		return append(actions, action), nil
	}
	release(ctx)
	edit, err := s.fillHoles(ctx, doc, holes)
	if err != nil {
		return nil, err
	}
	action.Edit = edit
	return append(actions, action), nil
}

func (s *Server) codeActionResolve(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	var action protocol.CodeAction
	if err := decodeParams(protocol.MethodCodeActionResolve, req.Params(), &action); err != nil {
		return nil, err
	}
	var data fillHolesData
	if err := json.Unmarshal(action.Data, &data); err != nil || data.URI == "" {
		return nil, jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s: not an infuse code action (data %s)", protocol.MethodCodeActionResolve, action.Data)
	}
	doc, err := s.openDocument(data.URI)
	if err != nil {
		return nil, err
	}
	if doc.Version != data.Version {
		return nil, protocol.ErrContentModified
	}
	m := doc.Mapper()
	start, end, err := m.RangeOffsets(data.Range, s.encoding())
	if err != nil {
		return nil, jsonrpc2.Errorf(jsonrpc2.InvalidParams, "%s: %v", protocol.MethodCodeActionResolve, err)
	}
	holes := findHoles(doc.Text, span{start, end}, doc.LanguageID, s.config().HoleMarkers)
	if len(holes) == 0 {
		return &action, nil
	}
	release(ctx)
	edit, err := s.fillHoles(ctx, doc, holes)
	if err != nil {
		return nil, err
	}
	action.Edit = edit
	return &action, nil
}

func holesTitle(n int) string {
	if n == 1 {
		return "Fill the hole with infuse"
	}
	return fmt.Sprintf("Fill %d holes with infuse", n)
}

// wantsKind reports whether a code action of kind passes the client's
// "only" filter, which lists kinds or their parents ("refactor").
func wantsKind(only []protocol.CodeActionKind, kind protocol.CodeActionKind) bool {
	if len(only) == 0 {
		return true
	}
	for _, k := range only {
		if k == kind || strings.HasPrefix(string(kind), string(k)+".") {
			return true
		}
	}
	return false
}

// findHoles returns the hole markers in text that overlap sel, in order and
// without overlaps. An empty selection selects the line it is on.
func findHoles(text string, sel span, language string, markers []string) []span {
	if sel.start == sel.end {
		head, tail := lineAround(text[:sel.start], text[sel.start:])
		sel = span{sel.start - len(head), sel.end + len(tail)}
	}
	var holes []span
	for _, mk := range markers {
		if mk == "" {
			continue
		}
		// A marker that straddles the selection's edge counts: widen the
		// search by one marker length on either side.
		lo := max(0, sel.start-len(mk)+1)
		hi := min(len(text), sel.end+len(mk)-1)
		for i := lo; i < hi; {
			j := strings.Index(text[i:hi], mk)
			if j < 0 {
				break
			}
			holes = append(holes, span{i + j, i + j + len(mk)})
			i += j + len(mk)
		}
	}
	if language == "python" {
		holes = append(holes, pythonEllipses(text, sel)...)
	}
	sort.Slice(holes, func(i, j int) bool { return holes[i].start < holes[j].start })
	out := holes[:0]
	for _, h := range holes {
		if len(out) > 0 && h.start < out[len(out)-1].end {
			continue
		}
		out = append(out, h)
	}
	return out
}

// pythonEllipses finds lines in sel that hold only "..." (Python's
// placeholder body) and returns the span of each "...".
func pythonEllipses(text string, sel span) []span {
	var holes []span
	lineStart := strings.LastIndexByte(text[:sel.start], '\n') + 1
	for lineStart < sel.end && lineStart < len(text) {
		lineEnd := strings.IndexByte(text[lineStart:], '\n')
		if lineEnd < 0 {
			lineEnd = len(text)
		} else {
			lineEnd += lineStart
		}
		line := strings.TrimRight(text[lineStart:lineEnd], "\r")
		if strings.TrimSpace(line) == "..." {
			i := lineStart + strings.Index(line, "...")
			holes = append(holes, span{i, i + 3})
		}
		lineStart = lineEnd + 1
	}
	return holes
}

// fillHoles asks the model for every hole's text and returns the edit that
// puts them in.
func (s *Server) fillHoles(ctx context.Context, doc *Document, holes []span) (*protocol.WorkspaceEdit, error) {
	cfg := s.config()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := s.engine.get(ctx)
	if err != nil {
		return nil, jsonrpc2.Errorf(jsonrpc2.InternalError, "fill holes: no model: %v", err)
	}
	var texts []string
	if hf, ok := c.(infill.HoleFiller); ok {
		parts := make([]string, 0, len(holes)+1)
		prev := 0
		for _, h := range holes {
			parts = append(parts, doc.Text[prev:h.start])
			prev = h.end
		}
		parts = append(parts, doc.Text[prev:])
		parts[0] = prefixWindow(parts[0], cfg.PrefixChars)
		parts[len(parts)-1] = suffixWindow(parts[len(parts)-1], cfg.SuffixChars)
		var res infill.HolesResult
		res, err = callEngine(s, ctx, func(ctx context.Context) (infill.HolesResult, error) {
			return hf.FillHoles(ctx, infill.HolesRequest{Parts: parts, Language: doc.LanguageID, MaxTokens: cfg.MaxTokens})
		})
		texts = res.Texts
		if err == nil && len(texts) != len(holes) {
			err = fmt.Errorf("the model filled %d holes of %d", len(texts), len(holes))
		}
	} else {
		texts, err = s.fillOneByOne(ctx, c, doc, holes, cfg)
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			return nil, protocol.ErrRequestCancelled
		}
		return nil, jsonrpc2.Errorf(jsonrpc2.InternalError, "fill holes: %v", err)
	}
	if cur, ok := s.docs.get(doc.URI); !ok || cur != doc {
		return nil, protocol.ErrContentModified
	}

	m := doc.Mapper()
	enc := s.encoding()
	edits := make([]protocol.TextEdit, len(holes))
	for i, h := range holes {
		edits[i] = protocol.TextEdit{Range: m.OffsetsRange(h.start, h.end, enc), NewText: texts[i]}
	}
	if !s.capabilities().documentChanges {
		return &protocol.WorkspaceEdit{Changes: map[uri.URI][]protocol.TextEdit{doc.URI: edits}}, nil
	}
	elems := make([]protocol.TextDocumentEditElement, len(edits))
	for i := range edits {
		elems[i] = &edits[i]
	}
	version := doc.Version
	return &protocol.WorkspaceEdit{DocumentChanges: []protocol.DocumentChange{&protocol.TextDocumentEdit{
		TextDocument: protocol.OptionalVersionedTextDocumentIdentifier{
			TextDocumentIdentifier: protocol.TextDocumentIdentifier{URI: doc.URI},
			Version:                &version,
		},
		Edits: elems,
	}}}, nil
}

// fillOneByOne fills the holes left to right with plain completions, each
// seeing the holes before it filled and the ones after it empty.
func (s *Server) fillOneByOne(ctx context.Context, c infill.Completer, doc *Document, holes []span, cfg Config) ([]string, error) {
	texts := make([]string, len(holes))
	var before strings.Builder
	prev := 0
	for i, h := range holes {
		before.WriteString(doc.Text[prev:h.start])
		var after strings.Builder
		next := h.end
		for _, later := range holes[i+1:] {
			after.WriteString(doc.Text[next:later.start])
			next = later.end
		}
		after.WriteString(doc.Text[next:])
		b, a := before.String(), after.String()
		req := infill.Request{
			Prefix:    prefixWindow(b, cfg.PrefixChars),
			Suffix:    suffixWindow(a, cfg.SuffixChars),
			Language:  doc.LanguageID,
			Mode:      decideMode(b, a, cfg.Mode),
			MaxTokens: cfg.MaxTokens,
		}
		res, err := callEngine(s, ctx, func(ctx context.Context) (infill.Result, error) { return c.Complete(ctx, req) })
		if err != nil {
			return nil, fmt.Errorf("hole %d: %w", i+1, err)
		}
		texts[i] = shape(res.Text, req.Mode)
		before.WriteString(texts[i])
		prev = h.end
	}
	return texts, nil
}
