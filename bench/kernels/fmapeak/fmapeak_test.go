package fmapeak

import "testing"

func TestGFLOPS(t *testing.T) {
	g := GFLOPS(1)
	if flopPerIter() == 0 {
		if g != 0 {
			t.Fatalf("GFLOPS(1) = %v without a probe, want 0", g)
		}
		return
	}
	// A vector FMA unit does more than a scalar one at any clock this
	// code will meet; the bound only catches a broken loop or count.
	if g < 1 {
		t.Fatalf("GFLOPS(1) = %v, want at least 1", g)
	}
	if GFLOPS(0) != 0 {
		t.Fatal("GFLOPS(0) != 0")
	}
}
