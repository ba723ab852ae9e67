package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/infuse-lsp/infuse/runtime/safetensors"
)

// WriteTensor is one tensor to write.
type WriteTensor struct {
	Name string
	// Shape is outermost first, as PyTorch lists it; the file stores it
	// reversed.
	Shape []int
	// Type is the storage type. A Q4_0 or K-type matrix whose rows are not
	// a multiple of the type's block is stored as [Type.Fallback] gives,
	// as llama.cpp's quantiser does; Q8_0 must fit.
	Type Type
	// Data returns the values, row-major in Shape. It is called once, when
	// the tensor is written, so that a converter holds one tensor at a time.
	Data func() ([]float32, error)
	// Encoded, when not nil, is the tensor already stored as Type (the
	// bytes of another file's tensor, say); Data is then not called and
	// Type does not fall back.
	Encoded []byte
}

// Write writes a GGUF version 3 file with the metadata, in order, and the
// tensors, converted to their Type. Metadata values take the Go types that
// [File.Metadata] documents; general.alignment, if given, must be a uint32
// power of two.
func Write(w io.Writer, metadata []KV, tensors []WriteTensor) error {
	align := uint64(DefaultAlignment)
	seen := map[string]bool{}
	for _, kv := range metadata {
		if seen[kv.Key] {
			return fmt.Errorf("gguf: metadata key %q given twice", kv.Key)
		}
		seen[kv.Key] = true
		if kv.Key == KeyAlignment {
			a, ok := kv.Value.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return fmt.Errorf("gguf: %s must be a uint32 power of two, got %v (%T)", KeyAlignment, kv.Value, kv.Value)
			}
			align = uint64(a)
		}
	}
	sizes := make([]uint64, len(tensors))
	types := make([]Type, len(tensors))
	names := map[string]bool{}
	for i, t := range tensors {
		if names[t.Name] {
			return fmt.Errorf("gguf: tensor %q given twice", t.Name)
		}
		names[t.Name] = true
		if len(t.Shape) == 0 || len(t.Shape) > maxDims {
			return fmt.Errorf("gguf: tensor %s: %d dimensions (want 1 to %d)", t.Name, len(t.Shape), maxDims)
		}
		typ := t.Type
		if typ != Q8_0 && t.Encoded == nil {
			typ = typ.Fallback(t.Shape[len(t.Shape)-1])
		}
		types[i] = typ
		info := Tensor{Name: t.Name, Type: typ, Dims: dims(t.Shape)}
		if !t.Type.Supported() {
			return fmt.Errorf("gguf: tensor %s: type %s cannot be written", t.Name, t.Type)
		}
		for _, d := range t.Shape {
			if d <= 0 {
				return fmt.Errorf("gguf: tensor %s: shape %v has a dimension below 1", t.Name, t.Shape)
			}
		}
		size, err := info.size()
		if err != nil {
			return fmt.Errorf("gguf: tensor %s: %w", t.Name, err)
		}
		sizes[i] = size
	}

	bw := bufio.NewWriterSize(w, 1<<20)
	e := &encoder{w: bw}
	e.raw([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(metadata)))
	for _, kv := range metadata {
		e.str(kv.Key)
		if err := e.value(kv.Value, 0); err != nil {
			return fmt.Errorf("gguf: metadata %s: %w", kv.Key, err)
		}
	}
	var off uint64
	for i, t := range tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for _, d := range dims(t.Shape) {
			e.u64(d)
		}
		e.u32(uint32(types[i]))
		e.u64(off)
		off = alignUp(off+sizes[i], align)
	}
	e.pad(align)
	var buf []byte
	for i, t := range tensors {
		if t.Encoded != nil {
			if uint64(len(t.Encoded)) != sizes[i] {
				return fmt.Errorf("gguf: tensor %s: %d encoded bytes, want %d for %s %v", t.Name, len(t.Encoded), sizes[i], t.Type, t.Shape)
			}
			e.raw(t.Encoded)
			e.pad(align)
			continue
		}
		v, err := t.Data()
		if err != nil {
			return fmt.Errorf("gguf: tensor %s: %w", t.Name, err)
		}
		if n := (&Tensor{Dims: dims(t.Shape)}).Len(); len(v) != n {
			return fmt.Errorf("gguf: tensor %s: %d values for shape %v (%d elements)", t.Name, len(v), t.Shape, n)
		}
		buf = encode(buf[:0], types[i], v)
		if uint64(len(buf)) != sizes[i] {
			return fmt.Errorf("gguf: tensor %s: encoded %d bytes, want %d", t.Name, len(buf), sizes[i])
		}
		e.raw(buf)
		e.pad(align)
	}
	if e.err != nil {
		return fmt.Errorf("gguf: %w", e.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

func dims(shape []int) []uint64 {
	d := make([]uint64, len(shape))
	for i, s := range shape {
		d[len(d)-1-i] = uint64(s)
	}
	return d
}

// encode appends v converted to t.
func encode(b []byte, t Type, v []float32) []byte {
	switch t {
	case F32:
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	case F16:
		for _, x := range v {
			b = binary.LittleEndian.AppendUint16(b, safetensors.F32ToF16(x))
		}
	case BF16:
		for _, x := range v {
			b = binary.LittleEndian.AppendUint16(b, safetensors.F32ToBF16(x))
		}
	default:
		q := quantizers[t]
		for blk := range slices.Chunk(v, t.BlockSize()) {
			b = q(b, blk)
		}
	}
	return b
}

// quantizeQ8 appends one Q8_0 block, as ggml's reference quantiser makes
// it: the scale is the largest magnitude over 127, and each value is
// rounded half away from zero to the nearest multiple of it.
func quantizeQ8(b []byte, x []float32) []byte {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	b = binary.LittleEndian.AppendUint16(b, safetensors.F32ToF16(d))
	for _, v := range x {
		q := math.Round(float64(v * id))
		b = append(b, byte(int8(max(-127, min(127, q)))))
	}
	return b
}

// encoder writes little-endian values, keeping the first error.
type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(b)
	e.n += uint64(len(b))
}

func (e *encoder) u8(v uint8)   { e.raw([]byte{v}) }
func (e *encoder) u16(v uint16) { e.raw(binary.LittleEndian.AppendUint16(nil, v)) }
func (e *encoder) u32(v uint32) { e.raw(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *encoder) u64(v uint64) { e.raw(binary.LittleEndian.AppendUint64(nil, v)) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func (e *encoder) pad(align uint64) {
	if n := alignUp(e.n, align) - e.n; n > 0 {
		e.raw(make([]byte, n))
	}
}

// typeOf returns the value type of a Go metadata value.
func typeOf(v any) (ValueType, bool) {
	switch v.(type) {
	case uint8:
		return Uint8, true
	case int8:
		return Int8, true
	case uint16:
		return Uint16, true
	case int16:
		return Int16, true
	case uint32:
		return Uint32, true
	case int32:
		return Int32, true
	case float32:
		return Float32, true
	case bool:
		return Bool, true
	case string:
		return String, true
	case uint64:
		return Uint64, true
	case int64:
		return Int64, true
	case float64:
		return Float64, true
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string,
		[]uint64, []int64, []float64, []any:
		return Array, true
	}
	return 0, false
}

func (e *encoder) value(v any, depth int) error {
	t, ok := typeOf(v)
	if !ok {
		return fmt.Errorf("value of Go type %T has no GGUF type", v)
	}
	e.u32(uint32(t))
	return e.payload(v, depth)
}

// payload writes v without its type tag.
func (e *encoder) payload(v any, depth int) error {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case []uint8:
		return writeArray(e, Uint8, x, depth)
	case []int8:
		return writeArray(e, Int8, x, depth)
	case []uint16:
		return writeArray(e, Uint16, x, depth)
	case []int16:
		return writeArray(e, Int16, x, depth)
	case []uint32:
		return writeArray(e, Uint32, x, depth)
	case []int32:
		return writeArray(e, Int32, x, depth)
	case []float32:
		return writeArray(e, Float32, x, depth)
	case []bool:
		return writeArray(e, Bool, x, depth)
	case []string:
		return writeArray(e, String, x, depth)
	case []uint64:
		return writeArray(e, Uint64, x, depth)
	case []int64:
		return writeArray(e, Int64, x, depth)
	case []float64:
		return writeArray(e, Float64, x, depth)
	case []any:
		if depth+1 >= maxArrayDepth {
			return fmt.Errorf("arrays nested more than %d deep", maxArrayDepth)
		}
		e.u32(uint32(Array))
		e.u64(uint64(len(x)))
		for i, el := range x {
			if t, _ := typeOf(el); t != Array {
				return fmt.Errorf("element %d of an array of arrays is a %T", i, el)
			}
			if err := e.payload(el, depth+1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("value of Go type %T has no GGUF type", v)
	}
	return nil
}

func writeArray[T any](e *encoder, t ValueType, xs []T, depth int) error {
	if depth >= maxArrayDepth {
		return fmt.Errorf("arrays nested more than %d deep", maxArrayDepth)
	}
	e.u32(uint32(t))
	e.u64(uint64(len(xs)))
	for _, x := range xs {
		if err := e.payload(x, depth); err != nil {
			return err
		}
	}
	return nil
}
