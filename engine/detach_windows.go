//go:build windows

package engine

import "os/exec"

// detach does nothing on Windows, where no engine is started (see
// errNoSharedEngine).
func detach(cmd *exec.Cmd) {}
