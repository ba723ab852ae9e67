//go:build !unix

// Package mmap maps weight files into memory read-only, so that large
// tensors are used in place and paged in on demand.
package mmap

import "os"

// Map reads the file at path into memory: systems without syscall.Mmap get
// a copy instead of a mapping. release does nothing.
func Map(path string) (data []byte, release func() error, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
