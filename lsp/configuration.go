package lsp

import (
	"bytes"
	"context"
	"encoding/json"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
)

// didChangeConfiguration applies the "infuse" section of the new settings
// over the initialization options. Clients that push settings send them
// under "infuse"; a notification without that key (VS Code's pull-model
// nudge, Neovim's empty settings) makes the server ask for the section with
// workspace/configuration when the client supports it, and is otherwise
// ignored, so that an unrelated settings push never resets infuse.
func (s *Server) didChangeConfiguration(_ context.Context, params jsonrpc2.RawMessage) {
	var p protocol.DidChangeConfigurationParams
	if err := decodeParams(protocol.MethodWorkspaceDidChangeConfiguration, params, &p); err != nil {
		s.log.Warn("lsp: bad didChangeConfiguration", "err", err)
		return
	}
	if section, ok := infuseSection(p.Settings); ok {
		s.applySettings(section)
		return
	}
	if !s.capabilities().configuration {
		return
	}
	s.goBackground("pull configuration", func() {
		var result []json.RawMessage
		section := "infuse"
		_, err := s.conn.Call(s.ctx, protocol.MethodWorkspaceConfiguration,
			&protocol.ConfigurationParams{Items: []protocol.ConfigurationItem{{Section: &section}}}, &result)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("lsp: workspace/configuration", "err", err)
			}
			return
		}
		if len(result) == 1 {
			s.applySettings(result[0])
		}
	})
}

// infuseSection returns settings["infuse"], if settings is an object that
// has it.
func infuseSection(settings []byte) ([]byte, bool) {
	if len(bytes.TrimSpace(settings)) == 0 {
		return nil, false
	}
	var outer map[string]json.RawMessage
	if json.Unmarshal(settings, &outer) != nil {
		return nil, false
	}
	section, ok := outer["infuse"]
	return section, ok
}

// applySettings makes section (the "infuse" object) the client's current
// settings and loads another model if they name one.
func (s *Server) applySettings(section []byte) {
	s.mu.Lock()
	cfg, err := parseSettings(s.initCfg, section)
	s.cfg = cfg
	s.mu.Unlock()
	s.cache.clear()
	if err != nil {
		s.showMessage(protocol.MessageTypeWarning, "%v", err)
	}
	s.startLoad(cfg)
}
