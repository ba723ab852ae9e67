#!/usr/bin/env bash
# bench/kernels/run.sh — `make bench-kernels`: the Go GEMM kernels against
# the machine's FMA peak and OpenBLAS, on the same shapes, in one run.
#
#  1. peak.c: the fp32 FMA peak on 1 and 2 threads (measured before and
#     after the kernels; the larger is kept).
#  2. sgemm.c: OpenBLAS sgemm (x·wᵀ, w stored n×k) on 1 and 2 threads.
#  3. kernels/cpu BenchmarkShapes: Matrix.MulT on GOMAXPROCS=1 and 2, and,
#     on a CPU with AMX, BenchmarkShapesAMX (AMXMatrix.MulT, bf16 tiles).
#  4. A table: GFLOP/s, the fraction of the peak for the same thread count,
#     and the ratio to OpenBLAS; then AMX's GFLOP/s against the float32
#     kernel's and OpenBLAS's.
#
# Needs gcc and Debian's OpenBLAS (apt-get install -y gcc libopenblas-dev);
# installs them when run as root with apt-get, else says what to install.
# OPENBLAS_CORETYPE is left as set; when unset on an AVX-512 CPU it is set to
# SkylakeX, which Debian's 0.3.21 does not always detect (sgemm.c checks
# its results). The machines are shared: run it on a quiet machine, or read
# the fractions, not the absolute figures.
#
# Environment: SHAPES ("m,k,n[:label] ...") replaces the shape list; RUNS
# (default 1) repeats the measurements and keeps each figure's best, which
# helps when other work comes and goes; GO (default go).
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}

# The default model (hidden 256, q|k|v 512, intermediate 704, vocab 8192):
# a window of 17 rows, a full pass of 256, the head over 1..16 rows. Then
# Qwen2.5-0.5B (hidden 896, q|k|v 1152, intermediate 4864, vocab 151936) on
# a window of 17 rows.
default_shapes="
17,256,512:qkv 17,256,256:o 17,256,1408:gate|up 17,704,256:down
256,256,512:qkv 256,256,256:o 256,256,1408:gate|up 256,704,256:down
1,256,8192:head 2,256,8192:head 4,256,8192:head 8,256,8192:head 16,256,8192:head
17,896,1152:qwen-qkv 17,896,896:qwen-o 17,896,9728:qwen-gate|up 17,4864,896:qwen-down 17,896,151936:qwen-head"
if [[ -n "${SHAPES:-}" ]]; then
	default_shapes=$SHAPES
fi
shapes=() roles=()
for s in $default_shapes; do
	shapes+=("${s%%:*}")
	if [[ $s == *:* ]]; then roles+=("${s#*:}"); else roles+=(-); fi
done

# What this needs.
inc=/usr/include/x86_64-linux-gnu/openblas-pthread
have() { command -v gcc >/dev/null && [[ -f $inc/cblas.h ]]; }
if ! have; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		echo "bench-kernels: installing gcc and libopenblas-dev" >&2
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libopenblas-dev >&2
	fi
	if ! have; then
		echo "bench-kernels: needs gcc and OpenBLAS's headers at $inc:" >&2
		echo "  apt-get install -y gcc libopenblas-dev" >&2
		exit 1
	fi
fi
if ! grep -qw -e avx2 -e avx512f /proc/cpuinfo; then
	echo "bench-kernels: needs an x86-64 CPU with AVX2 or AVX-512" >&2
	exit 1
fi
if [[ -z "${OPENBLAS_CORETYPE:-}" ]] && grep -qw avx512f /proc/cpuinfo; then
	export OPENBLAS_CORETYPE=SkylakeX
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -Wall -pthread bench/kernels/peak.c -o "$tmp/peak"
gcc -O2 -Wall bench/kernels/sgemm.c -I"$inc" -lopenblas -lm -o "$tmp/sgemm"
$GO test -c -o "$tmp/cpu.test" ./kernels/cpu

# How busy the CPUs are, over one second, before the measurements.
cpu_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
read -r busy0 all0 < <(cpu_ticks)
sleep 1
read -r busy1 all1 < <(cpu_ticks)
busy=$(((busy1 - busy0) * 100 / (all1 - all0 + 1)))
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs, ${busy}% busy before the run"
((busy > 10)) && echo "# warning: the machine is busy; figures are low and noisy"

"$tmp/peak" >"$tmp/peak.out"
for ((run = 0; run < ${RUNS:-1}; run++)); do
	"$tmp/sgemm" "${shapes[@]}" >>"$tmp/oblas.out"
	for t in 1 2; do
		GOMAXPROCS=$t INFUSE_BENCH_SHAPES="${shapes[*]}" "$tmp/cpu.test" \
			-test.run '^$' -test.bench '^BenchmarkShapes(AMX)?$' -test.benchtime 1x -test.cpu $t >>"$tmp/go$t.out"
	done
done
"$tmp/peak" >>"$tmp/peak.out"

echo "# FMA peak (GFLOP/s): $(awk '{p[$2" "$3"T"] = $4 > p[$2" "$3"T"] ? $4 : p[$2" "$3"T"]} END {for (k in p) printf "%s %.1f  ", k, p[k]}' "$tmp/peak.out")"
echo "# OpenBLAS $(awk '/^corename/ {print $2; exit}' "$tmp/oblas.out") kernels (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto})"
echo "# Go: kernels/cpu Matrix.MulT; frac = of the peak with as many threads; xOB = Go / OpenBLAS"
for i in "${!shapes[@]}"; do echo "shape ${shapes[$i]} ${roles[$i]}"; done >"$tmp/shapes.out"
awk '
FILENAME ~ /peak.out$/ { if ($4 > peak[$3]) peak[$3] = $4; next }
FILENAME ~ /shapes.out$/ { n++; split($2, d, ","); key[n] = d[1] "x" d[2] "x" d[3]; role[n] = $3; next }
FILENAME ~ /oblas.out$/ && $1 == "oblas" { k = $2 "x" $3 "x" $4; if ($6 > ob[k, $5]) ob[k, $5] = $6; next }
FILENAME ~ /go[12].out$/ && /^BenchmarkShapes(AMX)?\// {
	t = FILENAME ~ /go1.out$/ ? 1 : 2
	name = $1; sub(/^BenchmarkShapes(AMX)?\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 2; i < NF; i++) if ($(i+1) == "GFLOP/s") {
		if ($1 ~ /^BenchmarkShapesAMX/) { if ($i > amx[name, t]) amx[name, t] = $i; anyamx = 1 }
		else if ($i > go[name, t]) go[name, t] = $i
	}
	next
}
END {
	printf "%-13s %-12s | %7s %5s %7s %5s | %7s %5s %7s %5s | %5s\n", "m,k,n", "product", "Go 1T", "frac", "OB 1T", "xOB", "Go 2T", "frac", "OB 2T", "xOB", "2T/1T"
	for (i = 1; i <= n; i++) {
		k = key[i]
		printf "%-13s %-12s |", k, role[i]
		for (t = 1; t <= 2; t++) {
			g = go[k, t]; o = ob[k, t]
			printf " %7.1f %5.2f %7.1f %5.2f |", g, peak[t] ? g / peak[t] : 0, o, o ? g / o : 0
		}
		printf " %5.2f\n", go[k, 1] ? go[k, 2] / go[k, 1] : 0
	}
	if (!anyamx) exit
	printf "\n# AMX: kernels/cpu AMXMatrix.MulT, bf16 tiles; xF32 = AMX / Go Matrix.MulT, xOB = AMX / OpenBLAS\n"
	printf "%-13s %-12s | %7s %6s %6s | %7s %6s %6s\n", "m,k,n", "product", "AMX 1T", "xF32", "xOB", "AMX 2T", "xF32", "xOB"
	for (i = 1; i <= n; i++) {
		k = key[i]
		printf "%-13s %-12s |", k, role[i]
		for (t = 1; t <= 2; t++) {
			a = amx[k, t]; g = go[k, t]; o = ob[k, t]
			printf " %7.1f %6.2f %6.2f |", a, g ? a / g : 0, o ? a / o : 0
		}
		printf "\n"
	}
}' "$tmp/peak.out" "$tmp/shapes.out" "$tmp/oblas.out" "$tmp/go1.out" "$tmp/go2.out"
