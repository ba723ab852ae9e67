package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/infuse-lsp/infuse/kernels/cpu"
)

func init() {
	register("version", "print infuse's version, its Go toolchain and the CPU kernels this machine runs", runVersion)
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	fmt.Fprintf(stdout, "infuse  %s\n", version())
	fmt.Fprintf(stdout, "go      %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var native []string
	for _, f := range []struct {
		name string
		f    cpu.Format
	}{{"bf16", cpu.FormatBF16}, {"f16", cpu.FormatF16}, {"q8_0", cpu.FormatQ8_0}, {"q4_k", cpu.FormatQ4K}} {
		if cpu.Native(f.f) {
			native = append(native, f.name)
		}
	}
	low := "none: low-precision weights are widened to f32 at load"
	if len(native) > 0 {
		low = strings.Join(native, ", ") + " computed as stored"
	}
	fmt.Fprintf(stdout, "kernels %s (%s)\n", cpu.KernelName(), low)
	if cpu.AMX() {
		fmt.Fprintln(stdout, "amx     bf16 tiles: float weights computed in bf16 by default (--weights)")
	}
	return nil
}

// version is infuse's version: a released module's version, else the
// revision it was built from ("devel+REV", "-dirty" with local changes).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, when string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	v := "devel+" + rev[:min(12, len(rev))]
	if dirty {
		v += "-dirty"
	}
	if when != "" {
		v += " (" + when + ")"
	}
	return v
}
