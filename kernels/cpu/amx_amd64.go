//go:build amd64 && !purego

package cpu

import xcpu "golang.org/x/sys/cpu"

// amxTiles and bf16Blocks are in amx_amd64.s.

//go:noescape
func amxTiles(cfg *byte, a *uint16, lda int, tiles int, b *uint16, kb int, groups int, bgs int, c *float32, ldc int, accum bool, last *float32, ldl int)

//go:noescape
func bf16Blocks(dst *uint16, src *float32, blocks int)

// amxAvailable checks the CPUID bits, then asks the OS for the tile state
// (the bf16 conversion uses AVX-512 BW's word narrowing).
func amxAvailable() bool {
	return xcpu.X86.HasAMXTile && xcpu.X86.HasAMXBF16 && xcpu.X86.HasAVX512BW && amxPermit()
}
