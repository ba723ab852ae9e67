#!/usr/bin/env bash
# editors/emacs/infuse.el in batch Emacs against the real `infuse serve`
# (built here, or $INFUSE_BIN): lsp-mode and eglot (emacs_test.el). Skipped
# when Emacs or lsp-mode is missing (Debian: apt-get install -y emacs-nox
# elpa-lsp-mode elpa-eglot; eglot is built into Emacs 29).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v emacs >/dev/null; then
	echo "emacs_test: skipped, emacs is not installed (apt-get install -y emacs-nox elpa-lsp-mode elpa-eglot)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "${INFUSE_BIN:-}" ]; then
	(cd "$root" && go build -o "$tmp/infuse" ./cmd/infuse)
	INFUSE_BIN="$tmp/infuse"
fi

echo "emacs_test: $(emacs --version | head -1), server $INFUSE_BIN"
pass=0 fail=0 ran=0

# infuse.el byte-compiles without a warning (with lsp-mode loaded when it is
# installed, so that its macros and functions are known).
cp "$root/editors/emacs/infuse.el" "$tmp/infuse.el"
if out=$(HOME="$tmp" emacs -Q --batch --eval "(progn (require 'package)
		(when (file-directory-p \"/usr/share/emacs/site-lisp/elpa\")
		  (add-to-list 'package-directory-list \"/usr/share/emacs/site-lisp/elpa\"))
		(package-initialize) (require 'lsp-mode nil t) (setq byte-compile-error-on-warn t))" \
	-f batch-byte-compile "$tmp/infuse.el" 2>&1) && [ -f "$tmp/infuse.elc" ]; then
	pass=$((pass + 1))
else
	printf '%s\n' "$out"
	echo "FAIL [compile] infuse.el does not byte-compile cleanly"
	fail=$((fail + 1))
fi
for case in lsp-mode eglot; do
	mkdir -p "$tmp/home-$case"
	set +e
	out=$(cd "$tmp" && HOME="$tmp/home-$case" INFUSE_CASE=$case INFUSE_BIN="$INFUSE_BIN" INFUSE_ROOT="$root" \
		timeout 180 emacs -Q --batch -l "$here/emacs_test.el" 2>&1)
	rc=$?
	set -e
	if printf '%s\n' "$out" | grep -q "Cannot open load file.*\"$case\""; then
		echo "emacs_test: $case skipped, not installed"
		continue
	fi
	ran=$((ran + 1))
	printf '%s\n' "$out" | grep -E "^(FAIL|$case: )" || true
	summary=$(printf '%s\n' "$out" | grep -E "^$case: [0-9]+ passed, [0-9]+ failed$" | tail -1 || true)
	if [ -z "$summary" ]; then
		printf '%s\n' "$out" | tail -20
		echo "FAIL [$case] Emacs exited with status $rc before the end of the case"
		fail=$((fail + 1))
		continue
	fi
	p=$(echo "$summary" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
	f=$(echo "$summary" | sed -E 's/.* ([0-9]+) failed/\1/')
	pass=$((pass + p)) fail=$((fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL [$case] Emacs exited with status $rc"
		fail=$((fail + 1))
	fi
done
if [ "$ran" -eq 0 ]; then
	echo "emacs_test: skipped, neither lsp-mode nor eglot is installed"
	exit 0
fi
echo "emacs_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
