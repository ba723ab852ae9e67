#!/usr/bin/env bash
# The Neovim plugin (editors/nvim) in headless Neovim against the real
# `infuse serve` built from this repository (or $INFUSE_BIN): completion
# through the plugin's own code path, failure reports, and the JetBrains and
# Helix configuration files accepted by the server. One Neovim process per
# case of nvim_plugin_test.lua. Needs nvim 0.7+ (Debian: apt-get install -y
# neovim) and, for the Helix file, python3 3.11+ (tomllib).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v nvim >/dev/null; then
	echo "nvim_plugin_test: skipped, nvim is not installed (apt-get install -y neovim)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "${INFUSE_BIN:-}" ]; then
	(cd "$root" && go build -o "$tmp/infuse" ./cmd/infuse)
	INFUSE_BIN="$tmp/infuse"
fi
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
"$py" -c 'import json, sys, tomllib; json.dump(tomllib.load(open(sys.argv[1], "rb")), open(sys.argv[2], "w"))' \
	"$root/editors/helix/languages.toml" "$tmp/helix.json"

echo "nvim_plugin_test: $(nvim --version | head -1), server $INFUSE_BIN"
pass=0 fail=0
for case in complete missing crash files; do
	home="$tmp/home-$case"
	mkdir -p "$home"
	set +e
	out=$(cd "$tmp" && HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" \
		XDG_STATE_HOME="$home/.local/state" XDG_CACHE_HOME="$home/.cache" \
		INFUSE_CASE=$case INFUSE_BIN="$INFUSE_BIN" INFUSE_ROOT="$root" INFUSE_HELIX_JSON="$tmp/helix.json" \
		timeout 180 nvim --headless -u NONE -i NONE -n --cmd "set rtp^=$root/editors/nvim" \
		-c "luafile $here/nvim_plugin_test.lua" 2>&1)
	rc=$?
	set -e
	echo "$out"
	summary=$(printf '%s\n' "$out" | grep -E "^$case: [0-9]+ passed, [0-9]+ failed$" | tail -1 || true)
	if [ -z "$summary" ]; then
		echo "FAIL [$case] Neovim exited with status $rc before the end of the case"
		fail=$((fail + 1))
		continue
	fi
	p=$(echo "$summary" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
	f=$(echo "$summary" | sed -E 's/.* ([0-9]+) failed/\1/')
	pass=$((pass + p)) fail=$((fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL [$case] Neovim exited with status $rc"
		fail=$((fail + 1))
	fi
done
echo "nvim_plugin_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
