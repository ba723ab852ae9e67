package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDequantizeGolden decodes random blocks of each quantised type and
// compares every value, bit for bit, with testdata/gen_quant.py's numpy
// decoder, written from ggml's block layouts.
func TestDequantizeGolden(t *testing.T) {
	for _, typ := range []Type{Q4_0, Q8_0, Q4_K, Q5_K, Q6_K} {
		name := strings.ToLower(typ.String())
		blocks, err := os.ReadFile(filepath.Join("testdata", name+".blocks"))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join("testdata", name+".f32"))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(raw)/4)
		if err := Dequantize(typ, blocks, got); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		bad := 0
		for i := range got {
			want := binary.LittleEndian.Uint32(raw[4*i:])
			if math.Float32bits(got[i]) != want && bad < 5 {
				bad++
				t.Errorf("%s value %d (block %d) = %g (%#08x), want %g (%#08x)", typ, i, i/typ.BlockSize(),
					got[i], math.Float32bits(got[i]), math.Float32frombits(want), want)
			}
		}
	}
}

func TestDequantizeErrors(t *testing.T) {
	if err := Dequantize(Q4_K, make([]byte, 143), make([]float32, 256)); err == nil {
		t.Error("short block accepted")
	}
	if err := Dequantize(Q4_K, make([]byte, 144), make([]float32, 255)); err == nil {
		t.Error("wrong value count accepted")
	}
	if err := Dequantize(Type(10), make([]byte, 84), make([]float32, 256)); err == nil || !strings.Contains(err.Error(), "Q2_K") {
		t.Errorf("Q2_K: err = %v", err)
	}
	if _, err := Quantize(nil, Q6_K, make([]float32, 100)); err == nil {
		t.Error("partial Q6_K block accepted")
	}
}

// quantData is a few super-blocks of Gaussian values at different scales,
// with an outlier, a constant run and an all-zero block.
func quantData() []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, 6*256)
	for i := range v {
		v[i] = float32(r.NormFloat64()) * float32(math.Pow(10, float64(i/256%3)-2))
	}
	v[300] = 5
	for i := 512; i < 560; i++ {
		v[i] = 0.25
	}
	for i := 1024; i < 1280; i++ {
		v[i] = 0
	}
	return v
}

// TestQuantizeError checks the round-trip error of each quantiser: the
// worst value of a block against the block's spread, and the RMS over all.
// The bounds are those of round-to-nearest with the type's levels, with
// room for the 6- or 8-bit quantisation of the sub-block scales.
func TestQuantizeError(t *testing.T) {
	x := quantData()
	for _, c := range []struct {
		typ Type
		// worst error over a block's largest magnitude; RMS error over RMS value
		worst, rms float64
	}{
		{Q8_0, 1.0 / 127, 0.01},
		{Q6_K, 1.0 / 32, 0.03},
		{Q5_K, 1.0 / 15, 0.05},
		{Q4_K, 1.0 / 7, 0.1},
		{Q4_0, 1.0 / 7.9, 0.12},
	} {
		b, err := Quantize(nil, c.typ, x)
		if err != nil {
			t.Fatal(err)
		}
		if _, bytes, _ := c.typ.layout(); len(b) != len(x)/c.typ.BlockSize()*bytes {
			t.Fatalf("%s: %d bytes", c.typ, len(b))
		}
		y := make([]float32, len(x))
		if err := Dequantize(c.typ, b, y); err != nil {
			t.Fatal(err)
		}
		var se, sx, worst float64
		n := c.typ.BlockSize()
		for blk := 0; blk < len(x); blk += n {
			var amax, emax float64
			for i := blk; i < blk+n; i++ {
				e := math.Abs(float64(y[i] - x[i]))
				amax, emax = max(amax, math.Abs(float64(x[i]))), max(emax, e)
				se += e * e
				sx += float64(x[i]) * float64(x[i])
			}
			if amax == 0 {
				if emax != 0 {
					t.Errorf("%s: zero block decodes with error %g", c.typ, emax)
				}
				continue
			}
			worst = max(worst, emax/amax)
		}
		rms := math.Sqrt(se / sx)
		t.Logf("%s: worst %.4f of the block's largest magnitude, RMS error %.4f", c.typ, worst, rms)
		if worst > c.worst || rms > c.rms {
			t.Errorf("%s: worst %.4f (bound %.4f), RMS %.4f (bound %.4f)", c.typ, worst, c.worst, rms, c.rms)
		}
	}
}

// TestWriteQuantized writes each quantised type through a file and reads
// it back, and checks the fallback of rows the block does not divide.
func TestWriteQuantized(t *testing.T) {
	x := quantData()[:512]
	var ts []WriteTensor
	for _, typ := range []Type{Q4_0, Q4_K, Q5_K, Q6_K} {
		ts = append(ts, WriteTensor{Name: typ.String(), Shape: []int{2, 256}, Type: typ, Data: constData(x)})
	}
	ts = append(ts,
		WriteTensor{Name: "q4k-64", Shape: []int{8, 64}, Type: Q4_K, Data: constData(x)},
		WriteTensor{Name: "q6k-48", Shape: []int{2, 48}, Type: Q6_K, Data: constData(x[:96])})
	data := encodeFile(t, nil, ts)
	f, err := Parse("q", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		name string
		typ  Type
	}{{"Q4_0", Q4_0}, {"Q4_K", Q4_K}, {"Q5_K", Q5_K}, {"Q6_K", Q6_K}, {"q4k-64", Q8_0}, {"q6k-48", F16}} {
		tn, _ := f.Tensor(want.name)
		if tn.Type != want.typ {
			t.Errorf("%s stored as %s, want %s", want.name, tn.Type, want.typ)
		}
		got, err := tn.Float32()
		if err != nil {
			t.Fatal(err)
		}
		direct, _ := Quantize(nil, want.typ, x[:len(got)])
		back := make([]float32, len(got))
		Dequantize(want.typ, direct, back)
		if !bytes.Equal(f32bytes(got), f32bytes(back)) {
			t.Errorf("%s: read back differs from Quantize+Dequantize", want.name)
		}
	}
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// TestWriteEncoded copies a quantised tensor's bytes into a new file, as
// a converter's second pass does, and checks a wrong size is refused.
func TestWriteEncoded(t *testing.T) {
	x := quantData()[:512]
	src := encodeFile(t, nil, []WriteTensor{{Name: "q", Shape: []int{2, 256}, Type: Q4_K, Data: constData(x)}})
	f, err := Parse("src", src)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := f.Tensor("q")
	dst := encodeFile(t, []KV{{"k", "v"}}, []WriteTensor{{Name: "q", Shape: q.Shape(), Type: q.Type, Encoded: q.Bytes()}})
	g, err := Parse("dst", dst)
	if err != nil {
		t.Fatal(err)
	}
	if q2, _ := g.Tensor("q"); q2.Type != Q4_K || !bytes.Equal(q2.Bytes(), q.Bytes()) {
		t.Errorf("copied tensor: type %s, bytes equal %v", q2.Type, bytes.Equal(q2.Bytes(), q.Bytes()))
	}
	err = Write(&bytes.Buffer{}, nil, []WriteTensor{{Name: "q", Shape: []int{2, 256}, Type: Q4_K, Encoded: q.Bytes()[:100]}})
	if err == nil || !strings.Contains(err.Error(), "100 encoded bytes, want 288") {
		t.Errorf("short encoded data: err = %v", err)
	}
}

// TestQuantizeGolden checks the Q4_0 and Q8_0 quantisers byte for byte
// against testdata/gen_quant.py's numpy version of ggml's reference
// quantisers (quantize_row_q4_0_ref, quantize_row_q8_0_ref).
func TestQuantizeGolden(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "quant.f32"))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	for _, typ := range []Type{Q4_0, Q8_0} {
		want, err := os.ReadFile(filepath.Join("testdata", strings.ToLower(typ.String())+".quant"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Quantize(nil, typ, x)
		if err != nil {
			t.Fatal(err)
		}
		_, size, _ := typ.layout()
		if len(got) != len(want) || len(want) != len(x)/32*size {
			t.Fatalf("%s: %d bytes, want %d", typ, len(got), len(want))
		}
		for b := 0; b < len(want); b += size {
			if !bytes.Equal(got[b:b+size], want[b:b+size]) {
				t.Errorf("%s block %d:\n got % x\nwant % x", typ, b/size, got[b:b+size], want[b:b+size])
			}
		}
	}
}
