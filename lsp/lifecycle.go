package lsp

import (
	"context"
	"slices"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
)

func (s *Server) initialize(_ context.Context, req *jsonrpc2.Request) (any, error) {
	var p protocol.InitializeParams
	if err := decodeParams(protocol.MethodInitialize, req.Params(), &p); err != nil {
		return nil, err
	}
	caps := p.Capabilities
	var offered []protocol.PositionEncodingKind
	if caps.General != nil {
		offered = caps.General.PositionEncodings
	}
	var cc clientCaps
	if w := caps.Window; w != nil {
		cc.workDoneProgress = isTrue(w.WorkDoneProgress)
	}
	if w := caps.Workspace; w != nil {
		cc.configuration = isTrue(w.Configuration)
		if w.WorkspaceEdit != nil {
			cc.documentChanges = isTrue(w.WorkspaceEdit.DocumentChanges)
		}
	}
	if td := caps.TextDocument; td != nil && td.CodeAction != nil {
		cc.resolveEdit = slices.Contains(td.CodeAction.ResolveSupport.Properties, "edit")
		cc.codeActionLiteral = len(td.CodeAction.CodeActionLiteralSupport.CodeActionKind.ValueSet) > 0
	}
	cfg, cfgErr := parseSettings(s.opts.Config, p.InitializationOptions)

	s.mu.Lock()
	s.state = running
	s.enc = negotiateEncoding(offered)
	s.caps = cc
	s.cfg = cfg
	s.initCfg = cfg
	enc := s.enc
	s.mu.Unlock()

	if cfgErr != nil {
		// window/showMessage is one of the few messages allowed before the
		// initialize response.
		s.showMessage(protocol.MessageTypeWarning, "%v", cfgErr)
	}
	s.startLoad(cfg)

	result := &protocol.InitializeResult{
		Capabilities: protocol.ServerCapabilities{
			PositionEncoding: enc.Kind(),
			TextDocumentSync: &protocol.TextDocumentSyncOptions{
				OpenClose: ptr(true),
				Change:    ptr(protocol.TextDocumentSyncKindIncremental),
			},
			CompletionProvider:       &protocol.CompletionOptions{},
			InlineCompletionProvider: protocol.Boolean(true),
			CodeActionProvider: &protocol.CodeActionOptions{
				CodeActionKinds: []protocol.CodeActionKind{protocol.CodeActionKindRefactorRewrite},
				ResolveProvider: ptr(true),
			},
		},
		ServerInfo: protocol.ServerInfo{Name: "infuse"},
	}
	if s.opts.Version != "" {
		result.ServerInfo.Version = protocol.NewOptional(s.opts.Version)
	}
	return result, nil
}

// didInitialize handles the initialized notification: from now on the server
// may send requests of its own, so this is where the model load's progress is
// shown and its failure, if it already failed, reported.
func (s *Server) didInitialize(context.Context, jsonrpc2.RawMessage) {
	s.mu.Lock()
	s.initialized = true
	s.mu.Unlock()
	s.reportLoad(s.engine.current())
}

func (s *Server) shutdown(context.Context, *jsonrpc2.Request) (any, error) {
	s.mu.Lock()
	s.state = shutDown
	s.mu.Unlock()
	s.sched.stopAll(errSessionOver)
	return nil, nil
}

func (s *Server) exit(context.Context, jsonrpc2.RawMessage) {
	s.mu.Lock()
	s.exitWithoutShutdown = s.state != shutDown
	s.mu.Unlock()
	s.exitOnce.Do(func() { close(s.exited) })
}

func isTrue(b *bool) bool { return b != nil && *b }

func ptr[T any](v T) *T { return &v }
