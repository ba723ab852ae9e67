//go:build !unix

package lsp

import "os"

func stdin() *os.File { return os.Stdin }
