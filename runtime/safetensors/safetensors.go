// Package safetensors reads (and writes) Hugging Face safetensors files:
// an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw data. Call [Open] for one file,
// [OpenDir] or [OpenFS] for a model's tensors, single-file or sharded.
//
// Files are memory-mapped where the system allows; a float32 tensor whose
// data is 4-byte aligned is used in place, without a copy. Every offset and
// shape in a header is checked against the file before use, so a truncated
// or corrupt file gives an error, never a panic.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"unsafe"
)

// DType is a tensor's element type as spelled in the header ("F32", "BF16").
type DType string

// The element types. Only F32, F16 and BF16 can be read as float32; the
// others are recognised so that an error can say what was found.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	U16  DType = "U16"
	U32  DType = "U32"
	U64  DType = "U64"
	Bool DType = "BOOL"
	F8E4 DType = "F8_E4M3"
	F8E5 DType = "F8_E5M2"
)

// Size returns the bytes per element, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case I8, U8, Bool, F8E4, F8E5:
		return 1
	}
	return 0
}

// ErrFormat marks a file that is not a well-formed safetensors file.
var ErrFormat = errors.New("malformed safetensors file")

// maxHeader bounds the JSON header; real headers of 7B models are ~100 KB.
const maxHeader = 100 << 20

// Tensor is one tensor's header entry and a view of its bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	File  string // the file that holds it, as given to Open or Parse
	data  []byte // exactly Len()·DType.Size() bytes, inside the file
}

// Len returns the number of elements.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Bytes returns the stored bytes (little-endian, row-major). They alias the
// file and must not be modified.
func (t *Tensor) Bytes() []byte { return t.data }

// Float32 returns the tensor as float32, converting F16 and BF16. An F32
// tensor whose data is 4-byte aligned is returned in place: the slice
// aliases the file, must not be modified, and is valid until Close.
func (t *Tensor) Float32() ([]float32, error) {
	n := t.Len()
	if n == 0 {
		return []float32{}, nil
	}
	switch t.DType {
	case F32:
		if littleEndian && uintptr(unsafe.Pointer(&t.data[0]))%4 == 0 {
			return unsafe.Slice((*float32)(unsafe.Pointer(&t.data[0])), n), nil
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.data[4*i:]))
		}
		return out, nil
	case BF16:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.data[2*i:])) << 16)
		}
		return out, nil
	case F16:
		out := make([]float32, n)
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(t.data[2*i:]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor %s in %s: dtype %s cannot be read as float32 (F32, F16 and BF16 can)", t.Name, t.File, t.DType)
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// F16ToF32 converts an IEEE 754 half-precision value, subnormals, infinities
// and NaNs included.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp != 0: // normal: rebias 15 → 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: mant·2⁻²⁴, exact in float32.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// File is one parsed safetensors file.
type File struct {
	name     string
	data     []byte
	release  func() error
	tensors  map[string]*Tensor
	names    []string // sorted
	Metadata map[string]string
}

// Parse reads a safetensors file held in memory. data is not copied: the
// caller must keep it unchanged while the File or its tensors are in use.
// name is used in error messages and [Tensor.File].
func Parse(name string, data []byte) (*File, error) {
	f := &File{name: name, data: data, tensors: map[string]*Tensor{}}
	if err := f.parse(); err != nil {
		return nil, err
	}
	return f, nil
}

// ParseString is [Parse] over a string, such as a file embedded with
// go:embed, without copying it.
func ParseString(name, data string) (*File, error) {
	return Parse(name, unsafe.Slice(unsafe.StringData(data), len(data)))
}

// Close releases the file's memory map, if any. The tensors' data must not
// be used afterwards.
func (f *File) Close() error {
	f.data = nil
	for _, t := range f.tensors {
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

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (*Tensor, bool) {
	t, ok := f.tensors[name]
	return t, ok
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string { return f.names }

type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

func (f *File) parse() error {
	size := uint64(len(f.data))
	if size < 8 {
		return fmt.Errorf("%s: %w: %d bytes is shorter than the 8-byte header length (truncated?)", f.name, ErrFormat, size)
	}
	hlen := binary.LittleEndian.Uint64(f.data)
	if hlen > size-8 {
		return fmt.Errorf("%s: %w: header of %d bytes runs past the end of the %d-byte file (truncated, or not safetensors)", f.name, ErrFormat, hlen, size)
	}
	if hlen > maxHeader {
		return fmt.Errorf("%s: %w: header of %d bytes is larger than the %d-byte limit", f.name, ErrFormat, hlen, maxHeader)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(f.data[8:8+hlen], &raw); err != nil {
		return fmt.Errorf("%s: %w: header is not a JSON object: %v", f.name, ErrFormat, err)
	}
	body := f.data[8+hlen:]
	// In name order, so that of several bad entries the same is reported.
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		msg := raw[name]
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return fmt.Errorf("%s: %w: __metadata__ is not a map of strings: %v", f.name, ErrFormat, err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return fmt.Errorf("%s: %w: tensor %s: %v", f.name, ErrFormat, name, err)
		}
		t, err := f.tensor(name, e, body)
		if err != nil {
			return fmt.Errorf("%s: %w: tensor %s: %v", f.name, ErrFormat, name, err)
		}
		f.tensors[name] = t
		f.names = append(f.names, name)
	}
	return nil
}

func (f *File) tensor(name string, e headerEntry, body []byte) (*Tensor, error) {
	esize := e.DType.Size()
	if esize == 0 {
		return nil, fmt.Errorf("unknown dtype %q", e.DType)
	}
	if e.Shape == nil {
		return nil, errors.New("no shape")
	}
	if len(e.DataOffsets) != 2 {
		return nil, fmt.Errorf("data_offsets has %d entries, want 2", len(e.DataOffsets))
	}
	shape := make([]int, len(e.Shape))
	n := uint64(1)
	for i, d := range e.Shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", e.Shape)
		}
		// Bound the product so that it cannot overflow.
		if d > 0 && n > math.MaxInt32*uint64(math.MaxInt32)/uint64(d) {
			return nil, fmt.Errorf("shape %v is too large", e.Shape)
		}
		n *= uint64(d)
		shape[i] = int(d)
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin > end || end > uint64(len(body)) {
		return nil, fmt.Errorf("data_offsets [%d, %d] outside the %d data bytes (truncated file?)", begin, end, len(body))
	}
	if want := n * uint64(esize); end-begin != want {
		return nil, fmt.Errorf("data_offsets [%d, %d] hold %d bytes, but %s %v needs %d", begin, end, end-begin, e.DType, e.Shape, want)
	}
	return &Tensor{Name: name, DType: e.DType, Shape: shape, File: f.name, data: body[begin:end:end]}, nil
}
