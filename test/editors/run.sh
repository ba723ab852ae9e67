#!/usr/bin/env bash
# The editor integrations against the real server: the Neovim plugin
# (headless Neovim) and the Emacs package (batch Emacs, when installed).
# Builds infuse once unless $INFUSE_BIN names a binary. The VS Code
# extension has its own build and tests: editors/vscode/build.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "${INFUSE_BIN:-}" ]; then
	(cd "$root" && go build -o "$tmp/infuse" ./cmd/infuse)
	export INFUSE_BIN="$tmp/infuse"
fi
status=0
bash "$here/nvim_plugin_test.sh" || status=1
bash "$here/emacs_test.sh" || status=1
exit $status
