package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// TestKVCacheAttend stores keys and values in pieces, overwrites some, and
// checks Attend for every query head against exactAttention on the rows
// last stored.
func TestKVCacheAttend(t *testing.T) {
	for _, procs := range []int{1, 3} {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		r := rand.New(rand.NewPCG(21, 22))
		for _, c := range []struct{ heads, qHeads, dim, cap, n, nq int }{
			{1, 1, 1, 1, 1, 1},
			{1, 2, 3, 7, 5, 2},
			{2, 4, 64, 256, 256, 17},
			{2, 4, 64, 256, 256, 256},
			{1, 3, 33, 100, 70, 13},
			{3, 6, 80, 300, 290, 40},
			{2, 2, 16, 64, 33, 64},
		} {
			kvw := c.heads * c.dim
			ld := kvw + 5 // rows with a gap, as in a fused q|k|v buffer
			keys := randSlice(r, c.cap*ld)
			vals := randSlice(r, c.cap*ld)
			for _, kern := range kernels {
				kv := NewKVCache(c.heads, c.dim, c.cap)
				storeInPieces(r, kv, keys, vals, c.n, ld)

				qw := c.qHeads * c.dim
				ldq, ldo := qw+3, qw+7
				q := randSlice(r, c.nq*ldq)
				out := randSlice(r, c.nq*ldo)
				gap := append([]float32(nil), out...)
				scale := float32(0.125)
				kv.attend(kern, out, q, c.nq, c.qHeads, ldq, ldo, c.n, scale)
				for h := range c.qHeads {
					g := h / (c.qHeads / c.heads)
					want := exactAttention(q[h*c.dim:], keys[g*c.dim:], vals[g*c.dim:], c.nq, c.n, c.dim, ldq, ld, scale)
					got := make([]float32, c.nq*c.dim)
					for i := range c.nq {
						copy(got[i*c.dim:], out[i*ldo+h*c.dim:i*ldo+(h+1)*c.dim])
					}
					checkRows(t, fmt.Sprintf("Attend %s procs=%d %+v head %d", kern.name, procs, c, h), got, want, c.nq, c.dim)
				}
				for i := range c.nq {
					for x := i*ldo + qw; x < (i+1)*ldo; x++ {
						if out[x] != gap[x] {
							t.Fatalf("%s %+v: out[%d] between rows changed", kern.name, c, x)
						}
					}
				}
			}
		}
	}
}

// storeInPieces stores rows [0,n) of keys and vals (rows ld apart) in two
// pieces, then replaces a few of them with new random rows (in keys and
// vals too) and stores those again, as denoising steps do.
func storeInPieces(r *rand.Rand, kv *KVCache, keys, vals []float32, n, ld int) {
	half := n / 2
	kv.Store(0, keys, vals, half, ld)
	kv.Store(half, keys[half*ld:], vals[half*ld:], n-half, ld)
	lo, hi := n/3, min(n/3+5, n)
	for i := lo * ld; i < hi*ld; i++ {
		keys[i], vals[i] = 2*r.Float32()-1, 2*r.Float32()-1
	}
	kv.Store(lo, keys[lo*ld:], vals[lo*ld:], hi-lo, ld)
}

func TestKVCacheAllocs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	r := rand.New(rand.NewPCG(23, 24))
	const heads, qHeads, dim, n = 2, 4, 64, 256
	kv := NewKVCache(heads, dim, n)
	k, v := randSlice(r, n*heads*dim), randSlice(r, n*heads*dim)
	q, out := randSlice(r, n*qHeads*dim), make([]float32, n*qHeads*dim)
	kv.Store(0, k, v, n, heads*dim)
	run := func() {
		kv.Store(100, k, v, 17, heads*dim)
		kv.Attend(out, q, 17, qHeads, qHeads*dim, qHeads*dim, n, 0.125)
		kv.Attend(out, q, n, qHeads, qHeads*dim, qHeads*dim, n, 0.125)
	}
	run()
	if allocs := testing.AllocsPerRun(5, run); allocs != 0 && !raceEnabled {
		t.Errorf("Store and Attend allocate %v times per call", allocs)
	}
}

func TestKVCacheErrors(t *testing.T) {
	kv := NewKVCache(2, 4, 8)
	for _, c := range []struct {
		want string
		f    func()
	}{
		{"positions [6,10) outside a capacity of 8", func() { kv.Store(6, make([]float32, 32), make([]float32, 32), 4, 8) }},
		{"row stride 7 shorter", func() { kv.Store(0, make([]float32, 32), make([]float32, 32), 1, 7) }},
		{"len(k) = 3", func() { kv.Store(0, make([]float32, 3), make([]float32, 8), 1, 8) }},
		{"3 query heads do not group onto 2", func() { kv.Attend(make([]float32, 12), make([]float32, 12), 1, 3, 12, 12, 1, 1) }},
		{"over 9 positions, capacity 8", func() { kv.Attend(make([]float32, 16), make([]float32, 16), 1, 4, 16, 16, 9, 1) }},
		{"len(q) = 15", func() { kv.Attend(make([]float32, 16), make([]float32, 15), 1, 4, 16, 16, 8, 1) }},
	} {
		func() {
			defer func() {
				if msg, _ := recover().(string); !strings.Contains(msg, c.want) {
					t.Errorf("panic %q, want one containing %q", msg, c.want)
				}
			}()
			c.f()
		}()
	}
}

// TestKVCacheConcurrentStores stores interleaved runs of positions from
// two goroutines at once, as Forward's row-parallel steps do (run with
// -race), and checks the result.
func TestKVCacheConcurrentStores(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	const heads, dim, n = 2, 48, 96
	k, v := randSlice(r, n*heads*dim), randSlice(r, n*heads*dim)
	kv := NewKVCache(heads, dim, n)
	done := make(chan struct{})
	for g := range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			for p := g * 3; p < n; p += 6 { // runs of 3 positions, alternating
				kv.Store(p, k[p*heads*dim:], v[p*heads*dim:], min(3, n-p), heads*dim)
			}
		}()
	}
	<-done
	<-done
	q := randSlice(r, 5*2*heads*dim)
	out := make([]float32, 5*2*heads*dim)
	kv.Attend(out, q, 5, 2*heads, 2*heads*dim, 2*heads*dim, n, 0.2)
	for h := range 2 * heads {
		g := h / 2
		want := exactAttention(q[h*dim:], k[g*dim:], v[g*dim:], 5, n, dim, 2*heads*dim, heads*dim, 0.2)
		got := make([]float32, 5*dim)
		for i := range 5 {
			copy(got[i*dim:], out[i*2*heads*dim+h*dim:][:dim])
		}
		checkRows(t, fmt.Sprintf("head %d", h), got, want, 5, dim)
	}
}

// TestKVCacheAMX is TestKVCacheAttend's check on an AMX cache, against the
// float64 attention of the same rows rounded to bfloat16 (queries, keys,
// values; the probabilities are rounded inside, hence the tolerance,
// which a position left out would exceed).
func TestKVCacheAMX(t *testing.T) {
	if !AMXAttention(64) {
		t.Skip("no AMX on this machine")
	}
	bf := func(s []float32) []float32 {
		out := make([]float32, len(s))
		for i, v := range s {
			out[i] = math.Float32frombits(uint32(Float32ToBF16(v)) << 16)
		}
		return out
	}
	for _, procs := range []int{1, 2} {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		r := rand.New(rand.NewPCG(31, 32))
		for _, c := range []struct{ heads, qHeads, dim, cap, n, nq int }{
			{1, 1, 64, 1, 1, 1},
			{2, 4, 64, 256, 256, 17},
			{2, 4, 64, 256, 256, 256},
			{1, 2, 128, 100, 70, 13},
			{2, 2, 64, 300, 290, 40},
			{1, 1, 64, 64, 33, 16},
		} {
			kvw := c.heads * c.dim
			ld := kvw + 5
			keys := randSlice(r, c.cap*ld)
			vals := randSlice(r, c.cap*ld)
			kv := NewKVCacheAMX(c.heads, c.dim, c.cap)
			storeInPieces(r, kv, keys, vals, c.n, ld)
			qw := c.qHeads * c.dim
			ldq, ldo := qw+3, qw+7
			q := randSlice(r, c.nq*ldq)
			out := randSlice(r, c.nq*ldo)
			gap := append([]float32(nil), out...)
			scale := float32(0.125)
			kv.Attend(out, q, c.nq, c.qHeads, ldq, ldo, c.n, scale)
			qb, kb, vb := bf(q), bf(keys), bf(vals)
			for h := range c.qHeads {
				g := h / (c.qHeads / c.heads)
				want := exactAttention(qb[h*c.dim:], kb[g*c.dim:], vb[g*c.dim:], c.nq, c.n, c.dim, ldq, ld, scale)
				for i := range c.nq {
					for x := range c.dim {
						got, w := float64(out[i*ldo+h*c.dim+x]), want[i*c.dim+x]
						if math.Abs(got-w) > 2e-3 { // measured: at most 6e-4

							t.Fatalf("procs=%d %+v head %d: out[%d][%d] = %g, want %g", procs, c, h, i, x, got, w)
						}
					}
				}
			}
			for i := range c.nq {
				for x := i*ldo + qw; x < (i+1)*ldo; x++ {
					if out[x] != gap[x] {
						t.Fatalf("%+v: out[%d] between rows changed", c, x)
					}
				}
			}
		}
	}
}
