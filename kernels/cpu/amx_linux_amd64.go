//go:build !purego

package cpu

import "syscall"

// amxPermit asks Linux (5.16 and later) for the AMX tile data state:
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). Without it the
// first tile instruction faults.
func amxPermit() bool {
	const reqXcompPerm, xfeatureXtiledata = 0x1023, 18
	_, _, errno := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, reqXcompPerm, xfeatureXtiledata, 0)
	return errno == 0
}
