//go:build unix

package lsp

import (
	"os"
	"syscall"
)

// stdin returns standard input in non-blocking mode when it can be put in
// it, so that the runtime's poller serves its reads and closing it
// interrupts a pending one: a read(2) blocked on a pipe would otherwise
// outlive the session, and Serve waits for its reader.
func stdin() *os.File {
	if err := syscall.SetNonblock(0, true); err != nil {
		return os.Stdin
	}
	return os.NewFile(0, "/dev/stdin")
}
