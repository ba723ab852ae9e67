#!/usr/bin/env bash
# Headless Neovim as an LSP client of infuse (nvim_test.lua). Needs nvim
# (Debian: apt-get install -y neovim, 0.7 or later). The server is
# $INFUSE_LSP_SERVER, or the fakeserve binary built here.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
if [ -z "${INFUSE_LSP_SERVER:-}" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$root" && go build -o "$tmp/fakeserve" ./lsp/testdata/fakeserve)
	export INFUSE_LSP_SERVER="$tmp/fakeserve" INFUSE_LSP_FAKE=1
fi
echo "nvim_test: $(nvim --version | head -1)"
out=$(HOME=$(mktemp -d) timeout 60 nvim --headless -u NONE -i NONE -n -c 'luafile nvim_test.lua' 2>&1) || {
	echo "$out"
	echo "nvim_test: 0 passed, 1 failed"
	exit 1
}
echo "$out"
case "$out" in
*PASS*) echo "nvim_test: 1 passed, 0 failed" ;;
*) echo "nvim_test: 0 passed, 1 failed"; exit 1 ;;
esac
