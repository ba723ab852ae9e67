//go:build !(amd64 || arm64) || purego

package cpu

// available reports the kernels this build can run: only the portable one,
// on architectures without generated assembly or under the purego tag.
func available() []*kernel { return []*kernel{portable} }
