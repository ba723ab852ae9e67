//go:build !unix

package safetensors

import "os"

// Open reads a safetensors file into memory and parses its header. (Systems
// without syscall.Mmap get a copy instead of a mapping.)
func Open(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}
