#!/usr/bin/env bash
# Builds the VS Code extension from a clean checkout: installs the locked
# dependencies, compiles, runs the unit tests (plain Node, no VS Code), and
# packages bin/infuse-<version>.vsix at the repository root.
#
# The tests include one against the real server: $INFUSE_BIN, else
# bin/infuse (go build -o bin/infuse ./cmd/infuse); without either it is
# reported as skipped.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)

# Install the locked dependencies when they are missing or the lock changed.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.package-lock.json.src 2>/dev/null; then
	npm ci --no-audit --no-fund --loglevel=error
	cp package-lock.json node_modules/.package-lock.json.src
fi

rm -rf out
npx --no-install tsc -p .
node --test out/test/

version=$(node -p 'require("./package.json").version')
mkdir -p "$root/bin"
vsix="$root/bin/infuse-$version.vsix"
npx --no-install vsce package --skip-license --out "$vsix"
node check-vsix.js "$vsix"
echo "vscode: built $vsix"
