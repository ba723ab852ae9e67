//go:build !amd64 || purego

package cpu

func amxAvailable() bool { return false }

func amxTiles(cfg *byte, a *uint16, lda int, tiles int, b *uint16, kb int, groups int, bgs int, c *float32, ldc int, accum bool, last *float32, ldl int) {
	panic("cpu: no AMX in this build")
}

func bf16Blocks(dst *uint16, src *float32, blocks int) { panic("cpu: no AMX in this build") }
