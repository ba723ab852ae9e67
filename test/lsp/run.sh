#!/usr/bin/env bash
# Runs the LSP client tests against a real process over stdio: Node with
# Microsoft's vscode-languageserver-protocol, then headless Neovim
# (nvim_test.sh) when nvim is installed.
#
# The server is $INFUSE_LSP_SERVER if set (e.g. "infuse serve"); otherwise
# the fakeserve binary, built here: the real server with a deterministic
# stand-in model, whose exact answers the tests then check too.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -z "${INFUSE_LSP_SERVER:-}" ]; then
	(cd "$root" && go build -o "$tmp/fakeserve" ./lsp/testdata/fakeserve)
	export INFUSE_LSP_SERVER="$tmp/fakeserve" INFUSE_LSP_FAKE=1
fi

# Install the locked client library when it is missing or the lock changed.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.package-lock.json.src 2>/dev/null; then
	npm ci --no-audit --no-fund --loglevel=error
	cp package-lock.json node_modules/.package-lock.json.src
fi

node --test session.test.js

# The real server, for what the stand-in cannot show: two servers sharing
# one engine process.
if [ -z "${INFUSE_BIN:-}" ]; then
	(cd "$root" && go build -o "$tmp/infuse" ./cmd/infuse)
	export INFUSE_BIN="$tmp/infuse"
fi
node --test shared_engine.test.js

if command -v nvim >/dev/null; then
	./nvim_test.sh
else
	echo "nvim_test.sh: skipped, nvim is not installed (apt-get install -y neovim)"
fi
