package gguf

import "github.com/infuse-lsp/infuse/runtime/internal/mmap"

// Open memory-maps a GGUF file read-only and parses it. As with [Parse],
// a format error does not name the file.
func Open(path string) (*File, error) {
	data, release, err := mmap.Map(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(path, data)
	if err != nil {
		release()
		return nil, err
	}
	f.release = release
	return f, nil
}
