package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// Entry is one tensor to write: float32 values stored as DType.
type Entry struct {
	Name  string
	DType DType // F32, F16 or BF16
	Shape []int
	Data  []float32
}

// Write writes tensors as a safetensors file, in the given order, converting
// to each entry's dtype with round-to-nearest-even. The header is padded to
// a multiple of 8 bytes, as Hugging Face's writer does, so that float32 data
// stays aligned.
func Write(w io.Writer, tensors []Entry, metadata map[string]string) error {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off uint64
	for _, t := range tensors {
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if n != len(t.Data) {
			return fmt.Errorf("safetensors: tensor %s: shape %v holds %d values, data has %d", t.Name, t.Shape, n, len(t.Data))
		}
		switch t.DType {
		case F32, F16, BF16:
		default:
			return fmt.Errorf("safetensors: tensor %s: cannot write dtype %q", t.Name, t.DType)
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("safetensors: tensor %s given twice", t.Name)
		}
		size := uint64(n * t.DType.Size())
		header[t.Name] = headerEntry{DType: t.DType, Shape: int64s(t.Shape), DataOffsets: []uint64{off, off + size}}
		off += size
	}
	js, err := json.Marshal(header)
	if err != nil {
		return err
	}
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}
	bw := bufio.NewWriter(w)
	binary.Write(bw, binary.LittleEndian, uint64(len(js)))
	bw.Write(js)
	var buf [4]byte
	for _, t := range tensors {
		for _, v := range t.Data {
			switch t.DType {
			case F32:
				binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
				bw.Write(buf[:4])
			case BF16:
				binary.LittleEndian.PutUint16(buf[:], F32ToBF16(v))
				bw.Write(buf[:2])
			case F16:
				binary.LittleEndian.PutUint16(buf[:], F32ToF16(v))
				bw.Write(buf[:2])
			}
		}
	}
	return bw.Flush()
}

func int64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

// F32ToBF16 rounds to bfloat16, to nearest with ties to even; NaN stays NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F32ToF16 rounds to IEEE half precision, to nearest with ties to even,
// with overflow to infinity and gradual underflow to subnormals.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15:
		return sign | 0x7c00
	case exp-127 >= -14: // normal half
		h := uint32(exp-127+15)<<10 | mant>>13
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
			h++ // may carry into the exponent, up to Inf: still correct
		}
		return sign | uint16(h)
	case exp-127 < -25:
		return sign
	}
	// Subnormal half: value = m·2⁻²⁴ with the implicit bit restored.
	m := mant | 0x800000
	shift := uint32(-(exp - 127) - 14 + 13) // bits to drop
	h := m >> shift
	rest := m & (1<<shift - 1)
	halfway := uint32(1) << (shift - 1)
	if rest > halfway || (rest == halfway && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}
