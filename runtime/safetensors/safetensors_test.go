package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"unsafe"
)

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }

func encode(t *testing.T, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, entries, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	vals := []float32{0, 1, -2.5, 3.140625, 1e-3, 65504, -0.0}
	data := encode(t, []Entry{
		{Name: "a", DType: F32, Shape: []int{7}, Data: vals},
		{Name: "b.bf16", DType: BF16, Shape: []int{7, 1}, Data: vals},
		{Name: "c.f16", DType: F16, Shape: []int{1, 7}, Data: vals},
		{Name: "empty", DType: F32, Shape: []int{0, 3}, Data: nil},
	})
	f, err := Parse("mem", data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(f.Names(), ","), "a,b.bf16,c.f16,empty"; got != want {
		t.Errorf("names %s, want %s", got, want)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata)
	}
	for _, name := range []string{"a", "b.bf16", "c.f16"} {
		tn, _ := f.Tensor(name)
		got, err := tn.Float32()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			// Half a unit in the last place of each dtype.
			tol := map[string]float64{"a": 0, "b.bf16": 1.0 / 256, "c.f16": 1.0 / 2048}[name] * math.Abs(float64(v))
			if math.Abs(float64(got[i]-v)) > tol {
				t.Errorf("%s[%d] = %g, want %g", name, i, got[i], v)
			}
		}
	}
	a, _ := f.Tensor("a")
	got, _ := a.Float32()
	if &got[0] != (*float32)(unsafePointer(a.Bytes())) {
		t.Errorf("aligned F32 tensor was copied, want it used in place")
	}
	e, _ := f.Tensor("empty")
	if got, err := e.Float32(); err != nil || len(got) != 0 {
		t.Errorf("empty tensor: %v, %v", got, err)
	}
}

func TestMisalignedF32IsCopied(t *testing.T) {
	data := encode(t, []Entry{{Name: "a", DType: F32, Shape: []int{3}, Data: []float32{1, 2, 3}}})
	shifted := make([]byte, len(data)+1)
	copy(shifted[1:], data)
	f, err := Parse("mem", shifted[1:])
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Tensor("a")
	got, err := a.Float32()
	if err != nil || got[0] != 1 || got[2] != 3 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestF16Conversions(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			if back := F32ToF16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("%#04x → %g → %#04x", h, f, back)
		}
	}
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00},
		{65504, 0x7bff},
		{65520, 0x7c00},                           // rounds up to Inf
		{float32(math.Ldexp(1, -24)), 0x0001},     // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000},     // tie → even (0)
		{float32(math.Ldexp(3, -26)), 0x0001},     // above the tie
		{float32(math.Ldexp(1, -14)), 0x0400},     // smallest normal
		{1 + float32(math.Ldexp(1, -11)), 0x3c00}, // tie → even
		{1 + float32(math.Ldexp(3, -11)), 0x3c02}, // tie → even, up
		{-float32(math.Ldexp(1023, -24)), 0x83ff}, // largest subnormal
		{float32(math.Ldexp(2047, -25)), 0x0400},  // subnormal rounds to normal
		{float32(math.Inf(-1)), 0xfc00},
	} {
		if got := F32ToF16(c.f); got != c.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	if got := F32ToBF16(1 + float32(math.Ldexp(1, -8))); got != 0x3f80 {
		t.Errorf("bf16 tie: %#04x, want 0x3f80", got)
	}
	if got := F32ToBF16(1 + float32(math.Ldexp(3, -8))); got != 0x3f82 {
		t.Errorf("bf16 tie up: %#04x, want 0x3f82", got)
	}
}

// header builds a file from a raw JSON header and n data bytes.
func header(js string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	b = append(b, js...)
	return append(b, make([]byte, n)...)
}

func TestParseErrors(t *testing.T) {
	good := encode(t, []Entry{{Name: "w", DType: F32, Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "shorter than the 8-byte header"},
		{"header past EOF", good[:20], "runs past the end"},
		{"truncated data", good[:len(good)-1], "outside the 15 data bytes"},
		{"garbage header", header("not json", 0), "not a JSON object"},
		{"garbage length", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, good[8:]...), "runs past the end"},
		{"unknown dtype", header(`{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}`, 2), `unknown dtype "Q4"`},
		{"offsets reversed", header(`{"w":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}}`, 2), "outside"},
		{"offsets past end", header(`{"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, 2), "outside the 2 data bytes"},
		{"size mismatch", header(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "needs 8"},
		{"negative dim", header(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 0), "negative dimension"},
		{"huge shape", header(`{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}`, 0), "too large"},
		{"no offsets", header(`{"w":{"dtype":"F32","shape":[1]}}`, 4), "data_offsets has 0 entries"},
		{"no shape", header(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, 4), "no shape"},
		{"entry not object", header(`{"w":[1,2]}`, 0), "tensor w"},
		{"bad metadata", header(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.safetensors", tc.data)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "x.safetensors: ") {
				t.Fatalf("error %q, want it to name the file and contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestUnsupportedDTypeAsFloat(t *testing.T) {
	f, err := Parse("x", header(`{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, 8))
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := f.Tensor("ids")
	if _, err := ids.Float32(); err == nil || !strings.Contains(err.Error(), "dtype I64 cannot be read as float32") {
		t.Fatalf("got %v", err)
	}
}

func TestSets(t *testing.T) {
	shardA := encode(t, []Entry{{Name: "a", DType: F32, Shape: []int{1}, Data: []float32{1}}})
	shardB := encode(t, []Entry{{Name: "b", DType: BF16, Shape: []int{1}, Data: []float32{2}}})
	index := `{"metadata":{},"weight_map":{"a":"m-1.safetensors","b":"m-2.safetensors"}}`
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string // error text, or "" for success
	}{
		{"sharded", fstest.MapFS{
			"m-1.safetensors": {Data: shardA}, "m-2.safetensors": {Data: shardB},
			IndexFile: {Data: []byte(index)}}, ""},
		{"single", fstest.MapFS{SingleFile: {Data: shardA}}, ""},
		{"only file", fstest.MapFS{"weights.safetensors": {Data: shardA}}, ""},
		{"shard missing", fstest.MapFS{"m-1.safetensors": {Data: shardA}, IndexFile: {Data: []byte(index)}},
			"model.safetensors.index.json names shard m-2.safetensors, which is missing"},
		{"tensor not in its shard", fstest.MapFS{
			"m-1.safetensors": {Data: shardA}, "m-2.safetensors": {Data: shardA},
			IndexFile: {Data: []byte(index)}}, "tensor a is in both"},
		{"index lies", fstest.MapFS{
			"m-1.safetensors": {Data: shardA}, "m-2.safetensors": {Data: shardB},
			IndexFile: {Data: []byte(`{"weight_map":{"a":"m-1.safetensors","b":"m-1.safetensors","c":"m-2.safetensors"}}`)}},
			"maps tensor b to m-1.safetensors, which does not hold it"},
		{"index garbage", fstest.MapFS{IndexFile: {Data: []byte("{")}}, "model.safetensors.index.json: unexpected end"},
		{"index escapes", fstest.MapFS{IndexFile: {Data: []byte(`{"weight_map":{"a":"../x.safetensors"}}`)}}, "is not a file in the model directory"},
		{"no weights", fstest.MapFS{"config.json": {Data: []byte("{}")}}, "no model.safetensors"},
		{"two without index", fstest.MapFS{"a.safetensors": {Data: shardA}, "b.safetensors": {Data: shardB}}, "2 *.safetensors files in . but no"},
		{"truncated shard", fstest.MapFS{
			"m-1.safetensors": {Data: shardA}, "m-2.safetensors": {Data: shardB[:len(shardB)-1]},
			IndexFile: {Data: []byte(index)}}, "m-2.safetensors: malformed safetensors file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenFS(tc.files)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				a, ok := s.Tensor("a")
				if !ok {
					t.Fatalf("no tensor a in %v", s.Names())
				}
				v, err := a.Float32()
				if err != nil || v[0] != 1 {
					t.Fatalf("a = %v, %v", v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestOpenDirMapsFiles(t *testing.T) {
	dir := t.TempDir()
	data := encode(t, []Entry{{Name: "w", DType: F32, Shape: []int{3}, Data: []float32{1, 2, 3}}})
	if err := os.WriteFile(filepath.Join(dir, SingleFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.Tensor("w")
	v, err := w.Float32()
	if err != nil || v[1] != 2 {
		t.Fatalf("w = %v, %v", v, err)
	}
	if got := s.Files(); len(got) != 1 || got[0] != filepath.Join(dir, SingleFile) {
		t.Errorf("Files() = %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(filepath.Join(dir, "absent")); err == nil {
		t.Fatal("opened a missing directory")
	}
}
