package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Limits on what a header may declare, so that a corrupt count cannot make
// the reader allocate without bound. Real files are far below them.
const (
	maxDims       = 4 // GGML_MAX_DIMS
	maxArrayDepth = 4 // arrays of arrays
	maxNameLen    = 1 << 16
)

// File is a parsed GGUF file. Its tensors' data alias the file's bytes.
type File struct {
	name      string
	Version   uint32
	Alignment int
	// Metadata in file order. Values are uint8, int8, uint16, int16,
	// uint32, int32, float32, bool, string, uint64, int64, float64, or for
	// arrays a slice of one of those ([]string, []int32, ...), or []any
	// holding such slices for an array of arrays.
	Metadata []KV
	// Tensors in file order.
	Tensors []*Tensor

	data    []byte
	release func() error
	byKey   map[string]int
	byName  map[string]*Tensor
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value any
}

// Tensor is one tensor description and its data.
type Tensor struct {
	Name string
	// Dims are the dimensions as the file lists them, innermost first:
	// a PyTorch [out, in] matrix has Dims [in, out].
	Dims   []uint64
	Type   Type
	Offset uint64 // from the start of the data section
	File   string

	data []byte
}

// Parse reads a GGUF file held in memory. data is not copied: the caller
// must keep it unchanged while the File or its tensors are in use. name is
// the file's name for [Tensor.File]; errors do not repeat it, so that a
// caller can add it with its own context.
func Parse(name string, data []byte) (*File, error) {
	f := &File{name: name, data: data}
	if err := f.parse(); err != nil {
		return nil, err
	}
	return f, nil
}

// Close releases the file's memory map, if any. Tensor data must not be
// used afterwards.
func (f *File) Close() error {
	f.data = nil
	for _, t := range f.Tensors {
		t.data = nil
	}
	if f.release == nil {
		return nil
	}
	r := f.release
	f.release = nil
	return r()
}

// Name returns the name the file was opened with.
func (f *File) Name() string { return f.name }

// Value returns the metadata value of key.
func (f *File) Value(key string) (any, bool) {
	i, ok := f.byKey[key]
	if !ok {
		return nil, false
	}
	return f.Metadata[i].Value, true
}

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (*Tensor, bool) {
	t, ok := f.byName[name]
	return t, ok
}

// reader decodes little-endian values from a byte slice, reporting a
// truncated file instead of panicking.
type reader struct {
	b   []byte
	off int
}

var errTruncated = errors.New("file is truncated")

func (r *reader) need(n uint64) error {
	if n > uint64(len(r.b)-r.off) {
		return fmt.Errorf("%w: %d bytes wanted at offset %d, %d left", errTruncated, n, r.off, len(r.b)-r.off)
	}
	return nil
}

func (r *reader) left() uint64 { return uint64(len(r.b) - r.off) }

func (r *reader) bytes(n uint64) ([]byte, error) {
	if err := r.need(n); err != nil {
		return nil, err
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) u8() (uint8, error) {
	b, err := r.bytes(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (r *reader) u16() (uint16, error) {
	b, err := r.bytes(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (r *reader) u32() (uint32, error) {
	b, err := r.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64() (uint64, error) {
	b, err := r.bytes(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *reader) str() (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	if err != nil {
		return "", fmt.Errorf("string of %d bytes: %w", n, err)
	}
	return string(b), nil
}

func (f *File) parse() error {
	r := &reader{b: f.data}
	magic, err := r.bytes(4)
	if err != nil {
		return fmt.Errorf("not a GGUF file: %w", err)
	}
	if string(magic) != Magic {
		return fmt.Errorf("not a GGUF file: magic %q, want %q", magic, Magic)
	}
	if f.Version, err = r.u32(); err != nil {
		return err
	}
	switch {
	case f.Version == 2 || f.Version == 3:
	case f.Version == 1:
		return errors.New("GGUF version 1 is not supported (re-convert the model; versions 2 and 3 are read)")
	case f.Version&0xffff == 0 && f.Version != 0:
		return fmt.Errorf("GGUF version %#x looks byte-swapped: big-endian files are not supported", f.Version)
	default:
		return fmt.Errorf("GGUF version %d is not supported (versions 2 and 3 are read)", f.Version)
	}
	nTensors, err := r.u64()
	if err != nil {
		return err
	}
	nKV, err := r.u64()
	if err != nil {
		return err
	}
	// Each entry takes at least this many bytes, so a count the rest of the
	// file cannot hold is rejected before anything is allocated for it.
	if nKV > r.left()/(8+4+1) {
		return fmt.Errorf("header declares %d metadata entries, more than the file can hold: %w", nKV, errTruncated)
	}
	f.byKey = make(map[string]int, nKV)
	f.Metadata = make([]KV, 0, nKV)
	for i := range nKV {
		key, err := r.str()
		if err != nil {
			return fmt.Errorf("metadata entry %d: key: %w", i, err)
		}
		if _, dup := f.byKey[key]; dup {
			return fmt.Errorf("metadata key %q appears twice", key)
		}
		typ, err := r.u32()
		if err != nil {
			return fmt.Errorf("metadata %s: %w", key, err)
		}
		v, err := r.value(ValueType(typ), 0)
		if err != nil {
			return fmt.Errorf("metadata %s: %w", key, err)
		}
		f.byKey[key] = len(f.Metadata)
		f.Metadata = append(f.Metadata, KV{key, v})
	}
	f.Alignment = DefaultAlignment
	if v, ok := f.Value(KeyAlignment); ok {
		a, ok := v.(uint32)
		if !ok {
			return fmt.Errorf("%s is a %T, want uint32", KeyAlignment, v)
		}
		if a == 0 || a&(a-1) != 0 {
			return fmt.Errorf("%s %d is not a power of two", KeyAlignment, a)
		}
		f.Alignment = int(a)
	}

	if nTensors > r.left()/(8+4+4+8) {
		return fmt.Errorf("header declares %d tensors, more than the file can hold: %w", nTensors, errTruncated)
	}
	f.byName = make(map[string]*Tensor, nTensors)
	f.Tensors = make([]*Tensor, 0, nTensors)
	for i := range nTensors {
		t, err := r.tensorInfo()
		if err != nil {
			return fmt.Errorf("tensor %d: %w", i, err)
		}
		if _, dup := f.byName[t.Name]; dup {
			return fmt.Errorf("tensor %q appears twice", t.Name)
		}
		t.File = f.name
		f.byName[t.Name] = t
		f.Tensors = append(f.Tensors, t)
	}
	start := alignUp(uint64(r.off), uint64(f.Alignment))
	var section []byte
	if start <= uint64(len(f.data)) {
		section = f.data[start:]
	}
	for _, t := range f.Tensors {
		if t.Offset%uint64(f.Alignment) != 0 {
			return fmt.Errorf("tensor %s: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		size, err := t.size()
		if err != nil {
			return fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if size == 0 {
			continue // a type of unknown layout: described only
		}
		if t.Offset > uint64(len(section)) || size > uint64(len(section))-t.Offset {
			return fmt.Errorf("tensor %s: %d bytes at data offset %d run past the end of the file (data section is %d bytes): %w",
				t.Name, size, t.Offset, len(section), errTruncated)
		}
		t.data = section[t.Offset : t.Offset+size]
	}
	return nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

func (r *reader) tensorInfo() (*Tensor, error) {
	name, err := r.str()
	if err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if len(name) > maxNameLen {
		return nil, fmt.Errorf("name of %d bytes is too long", len(name))
	}
	t := &Tensor{Name: name}
	n, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if n == 0 || n > maxDims {
		return nil, fmt.Errorf("%s: %d dimensions (want 1 to %d)", name, n, maxDims)
	}
	t.Dims = make([]uint64, n)
	for i := range t.Dims {
		if t.Dims[i], err = r.u64(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	typ, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	t.Type = Type(typ)
	if t.Offset, err = r.u64(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// value decodes one metadata value of type t.
func (r *reader) value(t ValueType, depth int) (any, error) {
	switch t {
	case Uint8:
		return r.u8()
	case Int8:
		v, err := r.u8()
		return int8(v), err
	case Uint16:
		return r.u16()
	case Int16:
		v, err := r.u16()
		return int16(v), err
	case Uint32:
		return r.u32()
	case Int32:
		v, err := r.u32()
		return int32(v), err
	case Float32:
		v, err := r.u32()
		return math.Float32frombits(v), err
	case Bool:
		v, err := r.u8()
		if err == nil && v > 1 {
			return nil, fmt.Errorf("bool byte is %d, want 0 or 1", v)
		}
		return v == 1, err
	case String:
		return r.str()
	case Uint64:
		return r.u64()
	case Int64:
		v, err := r.u64()
		return int64(v), err
	case Float64:
		v, err := r.u64()
		return math.Float64frombits(v), err
	case Array:
		return r.array(depth)
	}
	return nil, fmt.Errorf("unknown value type %d", uint32(t))
}

func (r *reader) array(depth int) (any, error) {
	if depth >= maxArrayDepth {
		return nil, fmt.Errorf("arrays nested more than %d deep", maxArrayDepth)
	}
	typ, err := r.u32()
	if err != nil {
		return nil, err
	}
	et := ValueType(typ)
	n, err := r.u64()
	if err != nil {
		return nil, err
	}
	size := et.size()
	if size == 0 {
		return nil, fmt.Errorf("array of unknown value type %d", typ)
	}
	if n > r.left()/uint64(size) {
		return nil, fmt.Errorf("array of %d %s values is longer than the rest of the file: %w", n, et, errTruncated)
	}
	switch et {
	case Uint8:
		return fill[uint8](r, n, func() (uint8, error) { return r.u8() })
	case Int8:
		return fill(r, n, func() (int8, error) { v, err := r.u8(); return int8(v), err })
	case Uint16:
		return fill(r, n, r.u16)
	case Int16:
		return fill(r, n, func() (int16, error) { v, err := r.u16(); return int16(v), err })
	case Uint32:
		return fill(r, n, r.u32)
	case Int32:
		return fill(r, n, func() (int32, error) { v, err := r.u32(); return int32(v), err })
	case Float32:
		return fill(r, n, func() (float32, error) { v, err := r.u32(); return math.Float32frombits(v), err })
	case Bool:
		return fill(r, n, func() (bool, error) { v, err := r.value(Bool, depth); b, _ := v.(bool); return b, err })
	case String:
		return fill(r, n, r.str)
	case Uint64:
		return fill(r, n, r.u64)
	case Int64:
		return fill(r, n, func() (int64, error) { v, err := r.u64(); return int64(v), err })
	case Float64:
		return fill(r, n, func() (float64, error) { v, err := r.u64(); return math.Float64frombits(v), err })
	}
	return fill(r, n, func() (any, error) { return r.array(depth + 1) })
}

func fill[T any](r *reader, n uint64, next func() (T, error)) ([]T, error) {
	out := make([]T, n)
	for i := range out {
		v, err := next()
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

// Shape returns the dimensions outermost first, as PyTorch and
// safetensors list them.
func (t *Tensor) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(s)-1-i] = int(d)
	}
	return s
}

// Len is the number of elements.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Dims {
		n *= int(d)
	}
	return n
}

// Bytes returns the stored bytes. They alias the file and must not be
// modified. Tensors of a type whose layout is unknown have none.
func (t *Tensor) Bytes() []byte { return t.data }

// size checks the dimensions and returns the data size in bytes, or 0 for a
// type whose layout this package does not know.
func (t *Tensor) size() (uint64, error) {
	n := uint64(1)
	for _, d := range t.Dims {
		if d == 0 {
			return 0, fmt.Errorf("dimension of size 0 in %v", t.Dims)
		}
		if d > math.MaxInt32 || n > math.MaxInt64/4/d {
			return 0, fmt.Errorf("dimensions %v are too large", t.Dims)
		}
		n *= d
	}
	elems, bytes, ok := t.Type.layout()
	if !ok {
		return 0, nil
	}
	if t.Dims[0]%uint64(elems) != 0 {
		return 0, fmt.Errorf("row length %d is not a multiple of the %s block of %d", t.Dims[0], t.Type, elems)
	}
	return n / uint64(elems) * uint64(bytes), nil
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Float32 returns the tensor as float32, converting F16 and BF16 and
// dequantising the block types. An F32 tensor whose data is 4-byte aligned
// is returned in place: the slice aliases the file, must not be modified,
// and is valid until Close.
func (t *Tensor) Float32() ([]float32, error) {
	if !t.Type.Supported() {
		return nil, fmt.Errorf("tensor %s in %s: type %s cannot be read (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K can)", t.Name, t.File, t.Type)
	}
	if t.data == nil {
		return nil, fmt.Errorf("tensor %s in %s: file is closed", t.Name, t.File)
	}
	d := t.data
	if t.Type == F32 && littleEndian && uintptr(unsafe.Pointer(&d[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&d[0])), t.Len()), nil
	}
	out := make([]float32, t.Len())
	if err := Dequantize(t.Type, d, out); err != nil {
		return nil, fmt.Errorf("tensor %s in %s: %w", t.Name, t.File, err)
	}
	return out, nil
}
