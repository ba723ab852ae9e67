package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// allValues has one metadata entry of every value type, arrays included.
var allValues = []KV{
	{"u8", uint8(200)}, {"i8", int8(-5)}, {"u16", uint16(65000)}, {"i16", int16(-300)},
	{"u32", uint32(4e9)}, {"i32", int32(-7)}, {"f32", float32(1.5)}, {"yes", true}, {"no", false},
	{"s", "héllo"}, {"empty", ""}, {"u64", uint64(1 << 60)}, {"i64", int64(-1 << 60)}, {"f64", math.Pi},
	{"a.u8", []uint8{1, 2}}, {"a.i8", []int8{-1}}, {"a.u16", []uint16{9}}, {"a.i16", []int16{-9}},
	{"a.u32", []uint32{3}}, {"a.i32", []int32{-3, 4}}, {"a.f32", []float32{0.25}}, {"a.bool", []bool{true, false}},
	{"a.str", []string{"a", "", "ccc"}}, {"a.u64", []uint64{5}}, {"a.i64", []int64{-5}}, {"a.f64", []float64{2.5}},
	{"a.empty", []string{}}, {"a.nested", []any{[]int32{1, 2}, []int32{3}}},
}

func ramp(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32(math.Sin(float64(i)*0.7+0.3))
	}
	return v
}

func constData(v []float32) func() ([]float32, error) {
	return func() ([]float32, error) { return v, nil }
}

func encodeFile(t testing.TB, md []KV, ts []WriteTensor) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, md, ts); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sample is a small valid file with tensors of every type.
func sample(t testing.TB) ([]byte, map[string][]float32) {
	vals := map[string][]float32{
		"f32":  ramp(2*3, 1),
		"f16":  ramp(4*2, 3),
		"bf16": ramp(5, 100),
		"q8":   ramp(3*64, 0.5),
	}
	ts := []WriteTensor{
		{Name: "f32", Shape: []int{2, 3}, Type: F32, Data: constData(vals["f32"])},
		{Name: "f16", Shape: []int{4, 2}, Type: F16, Data: constData(vals["f16"])},
		{Name: "bf16", Shape: []int{5}, Type: BF16, Data: constData(vals["bf16"])},
		{Name: "q8", Shape: []int{3, 64}, Type: Q8_0, Data: constData(vals["q8"])},
	}
	return encodeFile(t, allValues, ts), vals
}

func TestRoundTrip(t *testing.T) {
	data, vals := sample(t)
	f, err := Parse("sample", data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != Version || f.Alignment != DefaultAlignment {
		t.Errorf("version %d alignment %d", f.Version, f.Alignment)
	}
	if !reflect.DeepEqual(f.Metadata, allValues) {
		t.Errorf("metadata:\n got %#v\nwant %#v", f.Metadata, allValues)
	}
	// bound on |got-want| per type: exact; half an ulp of 11 and 8
	// significant bits; half a quantisation step (max|x|/127/2) plus the
	// f16 rounding of the scale.
	tol := map[Type]func(x, amax float32) float64{
		F32:  func(x, amax float32) float64 { return 0 },
		F16:  func(x, amax float32) float64 { return math.Abs(float64(x)) * 0x1p-11 },
		BF16: func(x, amax float32) float64 { return math.Abs(float64(x)) * 0x1p-8 },
		Q8_0: func(x, amax float32) float64 {
			return float64(amax)/127/2 + math.Abs(float64(x))*0x1p-11 + 1e-7
		},
	}
	for _, want := range []struct {
		name  string
		typ   Type
		shape []int
	}{{"f32", F32, []int{2, 3}}, {"f16", F16, []int{4, 2}}, {"bf16", BF16, []int{5}}, {"q8", Q8_0, []int{3, 64}}} {
		tn, ok := f.Tensor(want.name)
		if !ok {
			t.Fatalf("no tensor %s", want.name)
		}
		if tn.Type != want.typ || !reflect.DeepEqual(tn.Shape(), want.shape) || tn.Offset%DefaultAlignment != 0 {
			t.Errorf("%s: type %s shape %v offset %d", want.name, tn.Type, tn.Shape(), tn.Offset)
		}
		got, err := tn.Float32()
		if err != nil {
			t.Fatal(err)
		}
		v := vals[want.name]
		for blk := 0; blk < len(v); blk += 32 {
			end := min(blk+32, len(v))
			var amax float32
			for _, x := range v[blk:end] {
				amax = max(amax, float32(math.Abs(float64(x))))
			}
			for i := blk; i < end; i++ {
				if d := math.Abs(float64(got[i] - v[i])); d > tol[want.typ](v[i], amax) {
					t.Errorf("%s[%d] = %g, want %g (error %g)", want.name, i, got[i], v[i], d)
				}
			}
		}
	}
	if f.Tensors[1].Dims[0] != 2 || f.Tensors[1].Dims[1] != 4 {
		t.Errorf("dims are not innermost first: %v", f.Tensors[1].Dims)
	}
}

// TestQ8Exact checks the Q8_0 layout against values worked by hand: a
// block whose largest magnitude is 127 has scale 1, so integers survive.
func TestQ8Exact(t *testing.T) {
	v := make([]float32, 32)
	for i := range v {
		v[i] = float32(i*8 - 127)
	}
	v[31] = 127
	data := encodeFile(t, nil, []WriteTensor{{Name: "q", Shape: []int{32}, Type: Q8_0, Data: constData(v)}})
	f, err := Parse("q", data)
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := f.Tensor("q")
	raw := tn.Bytes()
	if len(raw) != 34 || binary.LittleEndian.Uint16(raw) != 0x3c00 || int8(raw[2]) != -127 || int8(raw[33]) != 127 {
		t.Fatalf("block bytes % x", raw)
	}
	got, _ := tn.Float32()
	if !reflect.DeepEqual(got, v) {
		t.Errorf("got %v, want %v", got, v)
	}
}

func TestAlignment(t *testing.T) {
	md := []KV{{KeyAlignment, uint32(64)}}
	data := encodeFile(t, md, []WriteTensor{
		{Name: "a", Shape: []int{3}, Type: F32, Data: constData([]float32{1, 2, 3})},
		{Name: "b", Shape: []int{1}, Type: F32, Data: constData([]float32{4})},
	})
	f, err := Parse("a", data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.Tensor("b")
	if f.Alignment != 64 || b.Offset != 64 {
		t.Errorf("alignment %d, offset of b %d", f.Alignment, b.Offset)
	}
	if got, _ := b.Float32(); got[0] != 4 {
		t.Errorf("b = %v", got)
	}
}

func TestOpen(t *testing.T) {
	data, vals := sample(t)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := f.Tensor("f32")
	got, err := tn.Float32()
	if err != nil || !reflect.DeepEqual(got, vals["f32"]) {
		t.Errorf("f32 = %v, %v", got, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.Float32(); err == nil {
		t.Error("Float32 after Close succeeded")
	}
}

// header builds a file from raw little-endian pieces.
func header(parts ...any) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			b.WriteString(v)
		default:
			binary.Write(&b, binary.LittleEndian, v)
		}
	}
	return b.Bytes()
}

func gstr(s string) []any { return []any{uint64(len(s)), s} }

func cat(parts ...[]any) []any {
	var out []any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	tensor := func(name string, ndim uint32, dims []uint64, typ uint32, off uint64) []any {
		p := cat(gstr(name), []any{ndim})
		for _, d := range dims {
			p = append(p, d)
		}
		return append(p, typ, off)
	}
	hdr := func(nt, nkv uint64) []any { return []any{"GGUF", uint32(3), nt, nkv} }
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a GGUF file"},
		{"magic", header("GGML", uint32(3), uint64(0), uint64(0)), "magic"},
		{"version 1", header("GGUF", uint32(1), uint64(0), uint64(0)), "version 1"},
		{"big-endian", header("GGUF", uint32(3<<24), uint64(0), uint64(0)), "big-endian"},
		{"version 9", header("GGUF", uint32(9), uint64(0), uint64(0)), "version 9"},
		{"no counts", header("GGUF", uint32(3)), "truncated"},
		{"kv count", header(hdr(0, 1<<40)...), "metadata entries"},
		{"tensor count", header(hdr(1<<40, 0)...), "tensors, more than"},
		{"key length", header(cat(hdr(0, 1), []any{uint64(1 << 62), uint32(0), uint64(0)})...), "truncated"},
		{"unknown value type", header(cat(hdr(0, 1), gstr("k"), []any{uint32(13), uint64(0)})...), "unknown value type 13"},
		{"bool byte", header(cat(hdr(0, 1), gstr("k"), []any{uint32(Bool), uint8(2)})...), "bool byte"},
		{"array length", header(cat(hdr(0, 1), gstr("k"), []any{uint32(Array), uint32(Uint32), uint64(1 << 61)})...), "longer than the rest"},
		{"array type", header(cat(hdr(0, 1), gstr("k"), []any{uint32(Array), uint32(77), uint64(1)})...), "array of unknown value type"},
		{"duplicate key", header(cat(hdr(0, 2), gstr("k"), []any{uint32(Uint8), uint8(1)}, gstr("k"), []any{uint32(Uint8), uint8(1)})...), "appears twice"},
		{"alignment type", header(cat(hdr(0, 1), gstr(KeyAlignment), []any{uint32(Uint64), uint64(32)})...), "want uint32"},
		{"alignment value", header(cat(hdr(0, 1), gstr(KeyAlignment), []any{uint32(Uint32), uint32(24)})...), "power of two"},
		{"dims", header(cat(hdr(1, 0), tensor("t", 5, []uint64{1, 1, 1, 1, 1}, 0, 0))...), "5 dimensions"},
		{"zero dim", header(cat(hdr(1, 0), tensor("t", 1, []uint64{0}, 0, 0))...), "size 0"},
		{"huge dims", header(cat(hdr(1, 0), tensor("t", 2, []uint64{1 << 31, 1 << 31}, 0, 0))...), "too large"},
		{"q8 row", header(cat(hdr(1, 0), tensor("t", 1, []uint64{33}, uint32(Q8_0), 0))...), "multiple of the Q8_0 block"},
		{"misaligned offset", header(cat(hdr(1, 0), tensor("t", 1, []uint64{1}, 0, 4))...), "not a multiple"},
		{"past EOF", header(cat(hdr(1, 0), tensor("t", 1, []uint64{100}, 0, 0))...), "past the end"},
		{"duplicate tensor", header(cat(hdr(2, 0), tensor("t", 1, []uint64{1}, 0, 0), tensor("t", 1, []uint64{1}, 0, 0))...), "appears twice"},
		{"tensor truncated", header(cat(hdr(1, 0), gstr("t"), []any{uint32(1), uint64(4)})...), "truncated"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.name, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

// TestTruncated cuts a valid file at every length: each prefix that loses
// header or tensor bytes is an error, and none panics.
func TestTruncated(t *testing.T) {
	data, _ := sample(t)
	f, err := Parse("whole", data)
	if err != nil {
		t.Fatal(err)
	}
	// Only the padding after the last tensor may go.
	last := f.Tensors[len(f.Tensors)-1].Bytes()
	end := len(data) - (cap(last) - len(last))
	for n := range end {
		_, err := Parse("cut", data[:n])
		if err == nil {
			t.Fatalf("prefix of %d of %d bytes parsed without error", n, len(data))
		}
		if n > 8 && !errors.Is(err, errTruncated) {
			t.Fatalf("prefix of %d bytes: %v, want a truncation error", n, err)
		}
	}
}

func TestUnsupportedType(t *testing.T) {
	// A Q2_K tensor (type 10, 84 bytes per 256 values) is bounds-checked
	// and described but cannot be decoded; type 99 is only described.
	info := func(name string, typ uint32) []any {
		return cat(gstr(name), []any{uint32(1), uint64(256), typ, uint64(0)})
	}
	data := header(cat([]any{"GGUF", uint32(3), uint64(2), uint64(0)}, info("q", 10), info("x", 99))...)
	data = append(data, make([]byte, int(alignUp(uint64(len(data)), DefaultAlignment))-len(data)+84)...)
	f, err := Parse("q2k", data)
	if err != nil {
		t.Fatal(err)
	}
	if q := f.Tensors[0]; len(q.Bytes()) != 84 || q.Type.String() != "Q2_K" {
		t.Errorf("q: %d bytes, type %s", len(q.Bytes()), q.Type)
	}
	for i, want := range []string{"Q2_K", "ggml_type(99)"} {
		_, err = f.Tensors[i].Float32()
		if err == nil || !strings.Contains(err.Error(), "type "+want+" cannot be read") {
			t.Errorf("%s: err = %v", f.Tensors[i].Name, err)
		}
	}
	// Cut short, the Q2_K tensor no longer fits.
	if _, err := Parse("q2k", data[:len(data)-1]); !errors.Is(err, errTruncated) {
		t.Errorf("short Q2_K data: err = %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	one := constData([]float32{1})
	tests := []struct {
		name string
		md   []KV
		ts   []WriteTensor
		want string
	}{
		{"dup key", []KV{{"a", uint8(1)}, {"a", uint8(2)}}, nil, "given twice"},
		{"go type", []KV{{"a", 3}}, nil, "no GGUF type"},
		{"alignment", []KV{{KeyAlignment, uint32(3)}}, nil, "power of two"},
		{"dup tensor", nil, []WriteTensor{{Name: "t", Shape: []int{1}, Type: F32, Data: one}, {Name: "t", Shape: []int{1}, Type: F32, Data: one}}, "given twice"},
		{"type", nil, []WriteTensor{{Name: "t", Shape: []int{1}, Type: Type(10), Data: one}}, "cannot be written"},
		{"q8 row", nil, []WriteTensor{{Name: "t", Shape: []int{2, 16}, Type: Q8_0, Data: one}}, "multiple of the Q8_0 block"},
		{"shape", nil, []WriteTensor{{Name: "t", Shape: []int{0}, Type: F32, Data: one}}, "below 1"},
		{"count", nil, []WriteTensor{{Name: "t", Shape: []int{2}, Type: F32, Data: one}}, "1 values for shape [2]"},
		{"data", nil, []WriteTensor{{Name: "t", Shape: []int{1}, Type: F32, Data: func() ([]float32, error) { return nil, errors.New("boom") }}}, "boom"},
	}
	for _, tc := range tests {
		err := Write(&bytes.Buffer{}, tc.md, tc.ts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestParseType(t *testing.T) {
	for _, s := range []string{"f32", "F16", "bf16", "Q8_0", "q4_0", "Q4_K", "q5_k", "q6_k"} {
		if _, err := ParseType(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseType("q2_k"); err == nil {
		t.Error("q2_k accepted")
	}
}

func FuzzRead(f *testing.F) {
	data, _ := sample(f)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(header("GGUF", uint32(3), uint64(0), uint64(0)))
	f.Add(encodeFile(f, []KV{{KeyAlignment, uint32(8)}}, []WriteTensor{{Name: "q", Shape: []int{64}, Type: Q8_0, Data: constData(ramp(64, 1))}}))
	var ks []WriteTensor
	for _, typ := range []Type{Q4_0, Q4_K, Q5_K, Q6_K} {
		ks = append(ks, WriteTensor{Name: typ.String(), Shape: []int{256}, Type: typ, Data: constData(ramp(256, 0.1))})
	}
	f.Add(encodeFile(f, nil, ks))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		for _, tn := range file.Tensors {
			if v, err := tn.Float32(); err == nil && len(v) != tn.Len() {
				t.Fatalf("%s: %d values for %d elements", tn.Name, len(v), tn.Len())
			}
		}
	})
}
