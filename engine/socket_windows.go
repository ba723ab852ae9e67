//go:build windows

package engine

import (
	"errors"
	"net"
)

// errNoSharedEngine: the engine's socket, lock and owner checks are
// written for Unix; on Windows every window's server completes in-process
// (infuse serve falls back to that when the engine cannot start).
var errNoSharedEngine = errors.New("the shared engine is not available on Windows yet: each window completes in-process")

// RuntimeDir fails on Windows (see errNoSharedEngine).
func RuntimeDir() (string, error) { return "", errNoSharedEngine }

// Listen fails on Windows (see errNoSharedEngine).
func Listen(path string) (ln *net.UnixListener, release func(), err error) {
	return nil, nil, errNoSharedEngine
}
