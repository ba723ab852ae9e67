//go:build !windows

package engine

import (
	"os/exec"
	"syscall"
)

// detach gives the engine its own session: it outlives this process and
// the editor's terminal or process group.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
