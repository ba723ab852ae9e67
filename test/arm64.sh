#!/usr/bin/env bash
# The arm64 build, NEON kernels included: the packages with arm64 code paths,
# cross-compiled and run under qemu-user (qemu-aarch64), which .ci/run
# installs. Without qemu this says so and passes: the amd64 tests still ran.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
if ! command -v qemu-aarch64 >/dev/null; then
	echo "test-arm64: qemu-aarch64 not installed (apt-get install qemu-user); skipped" >&2
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for pkg in kernels/cpu runtime; do
	GOARCH=arm64 $GO test -c -o "$tmp/t" "./$pkg"
	(cd "$pkg" && qemu-aarch64 "$tmp/t" -test.short) || { echo "test-arm64: $pkg failed" >&2; exit 1; }
	echo "ok  	$pkg (arm64, qemu)"
done
