// Package engine shares one warm model among many "infuse serve" processes:
// [Server] serves a completer on an owner-only Unix socket, and [Connect]
// returns a client of it that is an [infill.Completer].
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/infuse-lsp/infuse/infill"
)

// Version is the wire protocol's version. Client and engine must agree; the
// socket's name already includes the binary's build id, so a mismatch means
// someone pointed --socket at another build's engine.
const Version = 2

// The wire protocol is JSON lines over a Unix socket: one [message] a line,
// either way. The client opens with hello and waits for the engine's hello;
// then it sends complete, fill-holes, cancel and status messages, each
// request tagged with an id of its choosing, and the engine answers each
// complete or fill-holes with exactly one result carrying the same id
// (status with one status). Cancel never gets an answer of its own: the
// cancelled request's result (an error with code "canceled") is its answer.
const (
	typeHello     = "hello"
	typeComplete  = "complete"
	typeFillHoles = "fill-holes"
	typeCancel    = "cancel"
	typeResult    = "result"
	typeStatus    = "status"
	typeError     = "error" // an answer to a message that had no id, or to a refused hello
)

// Error codes carried by a result or error message.
const (
	codeOverloaded = "overloaded"
	codeCanceled   = "canceled"
	codeDeadline   = "deadline"
	codeVersion    = "version"
	codeModel      = "model"
	codeBadRequest = "bad-request"
)

// Role of a connection, sent in hello. A status connection does not count as
// a client, so asking for the status never keeps an idle engine alive.
const (
	roleClient = "client"
	roleStatus = "status"
)

// message is every line of the protocol; Type says which fields are set.
type message struct {
	Type string `json:"type"`
	ID   uint64 `json:"id,omitempty"`

	// hello
	Version int    `json:"version,omitempty"`
	Model   string `json:"model,omitempty"`
	Role    string `json:"role,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Build   string `json:"build,omitempty"` // the engine binary's build id

	// complete, fill-holes. Deadline is the client context's deadline: the
	// engine stops work the client would throw away.
	Request  *infill.Request      `json:"request,omitempty"`
	Holes    *infill.HolesRequest `json:"holes,omitempty"`
	Deadline time.Time            `json:"deadline,omitzero"`

	// result
	Result      *infill.Result      `json:"result,omitempty"`
	HolesResult *infill.HolesResult `json:"holes_result,omitempty"`
	Error       string              `json:"error,omitempty"`
	Code        string              `json:"code,omitempty"`

	// status
	Status *Status `json:"status,omitempty"`
}

// ErrOverloaded is returned when the engine's queue is full. The caller
// should give up on this completion rather than retry at once: the user has
// typed on, and the engine is busy with work that is already late.
var ErrOverloaded = errors.New("engine overloaded: too many requests waiting")

// ErrNotRunning is returned by [QueryStatus] and by [Connect] without a
// way to start one when no engine answers on the socket.
var ErrNotRunning = errors.New("no engine is running")

// errorCode classifies err for the wire.
func errorCode(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return codeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return codeDeadline
	case errors.Is(err, ErrOverloaded):
		return codeOverloaded
	}
	return ""
}

// wireError turns a result's error back into an error the caller can test
// with errors.Is.
func wireError(m message) error {
	switch m.Code {
	case codeCanceled:
		return fmt.Errorf("engine: %w", context.Canceled)
	case codeDeadline:
		return fmt.Errorf("engine: %w", context.DeadlineExceeded)
	case codeOverloaded:
		return ErrOverloaded
	}
	return fmt.Errorf("engine: %s", m.Error)
}
