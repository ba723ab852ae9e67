//go:build unix

// Package mmap maps weight files into memory read-only, so that large
// tensors are used in place and paged in on demand.
package mmap

import (
	"fmt"
	"os"
	"syscall"
)

// Map maps the file at path read-only. release unmaps it; the data must not
// be used after. An empty file gives nil data and a no-op release.
func Map(path string) (data []byte, release func() error, err error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close() // the mapping outlives the descriptor
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size == 0 {
		return nil, func() error { return nil }, nil
	}
	if size != int64(int(size)) {
		return nil, nil, fmt.Errorf("%s: %d bytes is too large to map", path, size)
	}
	data, err = syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
