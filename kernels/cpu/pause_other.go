//go:build !amd64 || purego

package cpu

// spinPause is the spin-wait hint of the helpers' polling loop: nothing
// where there is no assembly for it.
func spinPause() {}
