// Package gguf reads and writes GGUF, the single-file model format of
// llama.cpp and ggml: a header, typed key/value metadata, tensor
// descriptions, and an aligned data section.
//
// The layout follows ggml's docs/gguf.md: everything is little-endian;
// strings are a uint64 length and bytes; a tensor lists its dimensions
// innermost first (ggml's ne[0] is the row length), and its data offset is
// relative to the data section, which starts at the first multiple of
// general.alignment (default 32) after the tensor descriptions.
//
// Tensors of type F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K can be
// read as float32 and written; the other ggml types are described (and the
// common ones bounds-checked) but not decoded.
package gguf

import (
	"fmt"
	"strconv"
	"strings"
)

// Magic is the first four bytes of a GGUF file.
const Magic = "GGUF"

// Version is the format version Write produces. Versions 2 and 3 share a
// layout (3 only added big-endian files, which are not read here).
const Version = 3

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that sets the data alignment.
const KeyAlignment = "general.alignment"

// ValueType is the type tag of a metadata value (gguf_type).
type ValueType uint32

const (
	Uint8 ValueType = iota
	Int8
	Uint16
	Int16
	Uint32
	Int32
	Float32
	Bool
	String
	Array
	Uint64
	Int64
	Float64
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return "ValueType(" + strconv.Itoa(int(t)) + ")"
}

// size is the encoded size of a scalar value, or its smallest encoded size
// (a string's or an array's header) for the others.
func (t ValueType) size() int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16:
		return 2
	case Uint32, Int32, Float32:
		return 4
	case Uint64, Int64, Float64, String:
		return 8
	case Array:
		return 12
	}
	return 0
}

// Type is a tensor's element type (ggml_type). Only the types listed here
// are decoded; others are reported by number.
type Type uint32

const (
	F32  Type = 0
	F16  Type = 1
	Q8_0 Type = 8
	BF16 Type = 30
)

// typeInfo is what this package knows of each ggml type: its name, and
// for the block-structured layout of the quantised ones the values per
// block and bytes per block, which let the reader check that a tensor lies
// inside the file even when it cannot decode it.
var typeInfo = map[Type]struct {
	name         string
	elems, bytes int
}{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2}, BF16: {"BF16", 1, 2}, Q8_0: {"Q8_0", q8Block, q8BlockBytes},
	Q4_0: {"Q4_0", 32, 18}, 3: {"Q4_1", 32, 20}, 6: {"Q5_0", 32, 22}, 7: {"Q5_1", 32, 24}, 9: {"Q8_1", 32, 36},
	10: {"Q2_K", 256, 84}, 11: {"Q3_K", 256, 110}, Q4_K: {"Q4_K", 256, 144}, Q5_K: {"Q5_K", 256, 176},
	Q6_K: {"Q6_K", 256, 210}, 15: {"Q8_K", 256, 292},
	24: {"I8", 1, 1}, 25: {"I16", 1, 2}, 26: {"I32", 1, 4}, 27: {"I64", 1, 8}, 28: {"F64", 1, 8},
}

func (t Type) String() string {
	if i, ok := typeInfo[t]; ok {
		return i.name
	}
	return "ggml_type(" + strconv.Itoa(int(t)) + ")"
}

// ParseType reads a type name as written by String, in either case.
func ParseType(s string) (Type, error) {
	for _, t := range supported {
		if strings.EqualFold(s, t.String()) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("tensor type %q is not supported (want f32, f16, bf16, q8_0, q4_0, q4_k, q5_k or q6_k)", s)
}

// Q8_0 stores blocks of 32 values as a float16 scale d and 32 int8 q, the
// value being d·q.
const (
	q8Block      = 32
	q8BlockBytes = 2 + q8Block
)

// layout returns the number of elements in one block of t and its size in
// bytes; ok is false for a type whose layout this package does not know.
func (t Type) layout() (elems, bytes int, ok bool) {
	i, ok := typeInfo[t]
	return i.elems, i.bytes, ok
}

// supported lists the types that can be read as float32 and written.
var supported = []Type{F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K}

// Supported reports whether tensors of type t can be read as float32 and
// written: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K.
func (t Type) Supported() bool {
	switch t {
	case F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K:
		return true
	}
	return false
}
