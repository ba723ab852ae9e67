package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
)

// IndexFile names the JSON file that maps each tensor of a sharded model to
// its shard.
const IndexFile = "model.safetensors.index.json"

// SingleFile is the name of an unsharded model's weights.
const SingleFile = "model.safetensors"

// Set is the tensors of one model, gathered from one file or from the shards
// an index names.
type Set struct {
	files   []*File
	tensors map[string]*Tensor
	names   []string
}

// OpenDir opens the weights of a Hugging Face model directory: the shards
// listed in model.safetensors.index.json if there is one, else
// model.safetensors, else the directory's only *.safetensors file. Files
// are memory-mapped.
func OpenDir(dir string) (*Set, error) {
	return openSet(os.DirFS(dir), dir, func(name string) (*File, error) {
		return Open(filepath.Join(dir, filepath.FromSlash(name)))
	})
}

// OpenFS is [OpenDir] over the root of fsys, reading each file into memory
// with fs.ReadFile (for an embedded model, say).
func OpenFS(fsys fs.FS) (*Set, error) {
	return openSet(fsys, ".", func(name string) (*File, error) {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		return Parse(name, data)
	})
}

// openSet finds the weight files in fsys (whose root is called dir in
// messages) and opens each with open.
func openSet(fsys fs.FS, dir string, open func(name string) (*File, error)) (*Set, error) {
	s := &Set{tensors: map[string]*Tensor{}}
	index, err := fs.ReadFile(fsys, IndexFile)
	switch {
	case err == nil:
		if err := s.openIndexed(fsys, dir, index, open); err != nil {
			s.Close()
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		name, err := singleFile(fsys, dir)
		if err != nil {
			return nil, err
		}
		f, err := open(name)
		if err != nil {
			return nil, err
		}
		if err := s.add(f); err != nil {
			s.Close()
			return nil, err
		}
	default:
		return nil, err
	}
	slices.Sort(s.names)
	return s, nil
}

func singleFile(fsys fs.FS, dir string) (string, error) {
	if _, err := fs.Stat(fsys, SingleFile); err == nil {
		return SingleFile, nil
	}
	matches, err := fs.Glob(fsys, "*.safetensors")
	if err != nil {
		return "", err
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("no %s, %s or other *.safetensors file in %s", SingleFile, IndexFile, dir)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("%d *.safetensors files in %s but no %s to say how they fit together", len(matches), dir, IndexFile)
}

func (s *Set) openIndexed(fsys fs.FS, dir string, index []byte, open func(name string) (*File, error)) error {
	indexPath := path.Join(dir, IndexFile)
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(index, &idx); err != nil {
		return fmt.Errorf("%s: %v", indexPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return fmt.Errorf("%s: weight_map is empty", indexPath)
	}
	var shards []string
	for _, shard := range idx.WeightMap {
		if !slices.Contains(shards, shard) {
			shards = append(shards, shard)
		}
	}
	slices.Sort(shards)
	byName := map[string]*File{}
	for _, shard := range shards {
		if !fs.ValidPath(shard) || path.Dir(shard) != "." {
			return fmt.Errorf("%s: shard name %q is not a file in the model directory", indexPath, shard)
		}
		f, err := open(shard)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s names shard %s, which is missing", indexPath, shard)
		}
		if err != nil {
			return err
		}
		if err := s.add(f); err != nil {
			return err
		}
		byName[shard] = f
	}
	for _, name := range slices.Sorted(maps.Keys(idx.WeightMap)) {
		shard := idx.WeightMap[name]
		if _, ok := byName[shard].Tensor(name); !ok {
			return fmt.Errorf("%s maps tensor %s to %s, which does not hold it", indexPath, name, shard)
		}
	}
	return nil
}

func (s *Set) add(f *File) error {
	s.files = append(s.files, f)
	for _, name := range f.Names() {
		if prev, ok := s.tensors[name]; ok {
			return fmt.Errorf("tensor %s is in both %s and %s", name, prev.File, f.Name())
		}
		t, _ := f.Tensor(name)
		s.tensors[name] = t
		s.names = append(s.names, name)
	}
	return nil
}

// Tensor returns the named tensor.
func (s *Set) Tensor(name string) (*Tensor, bool) {
	t, ok := s.tensors[name]
	return t, ok
}

// Names returns every tensor name, sorted.
func (s *Set) Names() []string { return s.names }

// Files returns the names of the files the tensors came from.
func (s *Set) Files() []string {
	names := make([]string, len(s.files))
	for i, f := range s.files {
		names[i] = f.Name()
	}
	return names
}

// Close releases every file. Tensor data, including float32 slices returned
// in place, must not be used afterwards.
func (s *Set) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	s.files = nil
	return errors.Join(errs...)
}
