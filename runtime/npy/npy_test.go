package npy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{3}, {2, 3}, {0, 4}, {1, 1, 2}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i) - 1.5
		}
		var buf bytes.Buffer
		if err := Write(&buf, data, shape...); err != nil {
			t.Fatal(err)
		}
		if off := bytes.IndexByte(buf.Bytes(), '\n') + 1; off%64 != 0 {
			t.Errorf("shape %v: data starts at %d, want a multiple of 64", shape, off)
		}
		got, gotShape, err := Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(gotShape) != len(shape) || len(got) != n {
			t.Fatalf("shape %v came back as %v with %d values", shape, gotShape, len(got))
		}
		for i := range got {
			if got[i] != data[i] {
				t.Fatalf("value %d: %g, want %g", i, got[i], data[i])
			}
		}
	}
}

func TestErrors(t *testing.T) {
	if err := Write(&bytes.Buffer{}, []float32{1}, 2); err == nil {
		t.Error("Write accepted a shape that does not match the data")
	}
	var buf bytes.Buffer
	Write(&buf, []float32{1, 2}, 2)
	good := buf.Bytes()
	for name, data := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("NUMPY!"), good[6:]...),
		"truncated": good[:len(good)-1],
		"dtype":     bytes.Replace(good, []byte("<f4"), []byte("<f8"), 1),
		"fortran":   bytes.Replace(good, []byte("False"), []byte("True "), 1),
	} {
		if _, _, err := Read(bytes.NewReader(data)); err == nil || !strings.HasPrefix(err.Error(), "npy: ") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

// TestNumPyReads checks the file against NumPy itself, where it is installed.
func TestNumPyReads(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if exec.Command(py, "-c", "import numpy").Run() != nil {
		t.Skip("no numpy")
	}
	path := filepath.Join(t.TempDir(), "a.npy")
	f, _ := os.Create(path)
	Write(f, []float32{1, 2.5, -3, 4, 5, 6}, 2, 3)
	f.Close()
	out, err := exec.Command(py, "-c", "import numpy as np, sys; a = np.load(sys.argv[1]); print(a.dtype, a.shape, a[1, 0])", path).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "float32 (2, 3) 4.0" {
		t.Errorf("numpy read %q", got)
	}
}
