//go:build !unix

package gguf

import "os"

// Open reads a GGUF file into memory and parses it. As with [Parse], a
// format error does not name the file. (Systems without
// syscall.Mmap get a copy instead of a mapping.)
func Open(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}
