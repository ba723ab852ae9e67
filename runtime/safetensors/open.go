package safetensors

import "github.com/infuse-lsp/infuse/runtime/internal/mmap"

// Open memory-maps a safetensors file read-only and parses its header.
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
