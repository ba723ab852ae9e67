package lsp

import (
	"strings"
	"testing"

	"go.lsp.dev/protocol"
)

// insertions are the texts an edit may insert, chosen to cross every
// boundary the mapper cares about.
var insertions = []string{"", "x", "\n", "\r\n", "\r", "𐐀", "e\u0301", "日本", "\xff", "ab\ncd"}

// decodeEdits turns fuzz bytes into didChange content changes: 5 bytes per
// change (start line and character, end line and character, what to insert),
// with positions allowed past line ends and past the last line. A byte of 255
// for the insertion makes the change a whole-document replacement.
func decodeEdits(ops []byte) []protocol.TextDocumentContentChangeEvent {
	var changes []protocol.TextDocumentContentChangeEvent
	for len(ops) >= 5 {
		b := ops[:5]
		ops = ops[5:]
		if b[4] == 255 {
			changes = append(changes, &protocol.TextDocumentContentChangeWholeDocument{Text: "whole\n" + string(b[:4])})
			continue
		}
		changes = append(changes, &protocol.TextDocumentContentChangePartial{
			Range: protocol.Range{
				Start: protocol.Position{Line: uint32(b[0] % 6), Character: uint32(b[1] % 10)},
				End:   protocol.Position{Line: uint32(b[2] % 6), Character: uint32(b[3] % 10)},
			},
			Text: insertions[int(b[4])%len(insertions)],
		})
	}
	return changes
}

// refApply applies changes with the reference position arithmetic of
// mapper_test.go; a backwards range is an insertion at its start.
func refApply(text string, changes []protocol.TextDocumentContentChangeEvent, enc Encoding) string {
	for _, c := range changes {
		switch c := c.(type) {
		case *protocol.TextDocumentContentChangeWholeDocument:
			text = c.Text
		case *protocol.TextDocumentContentChangePartial:
			bs := refBounds(text, enc)
			start := refPositionOffset(bs, len(text), c.Range.Start)
			end := max(start, refPositionOffset(bs, len(text), c.Range.End))
			text = text[:start] + c.Text + text[end:]
		}
	}
	return text
}

func FuzzDocumentEdits(f *testing.F) {
	f.Add("package main\n\nfunc main() {}\n", []byte{0, 0, 0, 0, 1, 2, 5, 2, 7, 2})
	f.Add("a𐐀b\r\nc", []byte{0, 2, 0, 3, 1, 0, 1, 0, 4, 5, 1, 9, 0, 0, 3})
	f.Add("", []byte{3, 3, 3, 3, 5, 0, 0, 9, 9, 255, 1, 1, 0, 0, 4})
	f.Add("x\ry\r\nz\n", []byte{0, 1, 1, 0, 0, 1, 1, 2, 0, 7})
	f.Add("\xff\xfe", []byte{0, 1, 0, 2, 8})
	f.Fuzz(func(t *testing.T, text string, ops []byte) {
		if len(text) > 256 || len(ops) > 200 {
			t.Skip()
		}
		changes := decodeEdits(ops)
		for _, enc := range []Encoding{UTF16, UTF8, UTF32} {
			got, _ := applyChanges(text, changes, enc)
			if want := refApply(text, changes, enc); got != want {
				t.Fatalf("%s: applying %d changes to %q\ngot  %q\nwant %q", enc, len(changes), text, got, want)
			}
			// The store applies the same edits and keeps documents immutable.
			s := newStore()
			first := &Document{URI: goURI, Version: 1, Text: text}
			s.open(first)
			doc, err := s.change(goURI, 2, changes, enc)
			if doc == nil || doc.Text != got || first.Text != text {
				t.Fatalf("%s: store.change: %v", enc, err)
			}
		}
	})
}

func TestStore(t *testing.T) {
	s := newStore()
	s.open(&Document{URI: goURI, LanguageID: "go", Version: 1, Text: "hello\nworld\n"})
	v1, _ := s.get(goURI)
	doc, err := s.change(goURI, 2, []protocol.TextDocumentContentChangeEvent{
		&protocol.TextDocumentContentChangePartial{Range: protocol.Range{
			Start: protocol.Position{Line: 1, Character: 0}, End: protocol.Position{Line: 1, Character: 5},
		}, Text: "there"},
	}, UTF16)
	if err != nil || doc.Text != "hello\nthere\n" || doc.Version != 2 || doc.LanguageID != "go" {
		t.Fatalf("change: %+v, %v", doc, err)
	}
	if v1.Text != "hello\nworld\n" {
		t.Errorf("the old version changed: %q", v1.Text)
	}
	// A version that does not increase is reported but applied.
	doc, err = s.change(goURI, 2, []protocol.TextDocumentContentChangeEvent{
		&protocol.TextDocumentContentChangeWholeDocument{Text: "new"},
	}, UTF16)
	if err == nil || doc.Text != "new" {
		t.Errorf("stale version: %+v, %v", doc, err)
	}
	// A backwards range is reported and read as an insertion.
	doc, err = s.change(goURI, 3, []protocol.TextDocumentContentChangeEvent{
		&protocol.TextDocumentContentChangePartial{Range: protocol.Range{
			Start: protocol.Position{Character: 2}, End: protocol.Position{Character: 1},
		}, Text: "X"},
	}, UTF16)
	if err == nil || !strings.Contains(err.Error(), "ends before it starts") || doc.Text != "neXw" {
		t.Errorf("backwards range: %+v, %v", doc, err)
	}
	if _, err := s.change("file:///other", 1, nil, UTF16); err == nil {
		t.Error("change of a document that is not open: no error")
	}
	if !s.close(goURI) || s.close(goURI) {
		t.Error("close reports wrongly whether the document was open")
	}
}
