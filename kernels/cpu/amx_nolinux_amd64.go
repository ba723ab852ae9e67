//go:build !linux && !purego

package cpu

// amxPermit: only Linux is known to lend the tile state (others would
// fault on the first tile instruction), so AMX stays off elsewhere.
func amxPermit() bool { return false }
