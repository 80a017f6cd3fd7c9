#!/usr/bin/env bash
# Lint gates: rustfmt, clippy with the kernel's lint set (Kbuild CLIPPY=1),
# rustdoc of the module without warnings, checkpatch.pl --strict on the
# C helpers, no `unsafe` in the driver-logic files (DRIVER_LOGIC below),
# the layering of rust/ (scripts/import-graph.py),
# and shellcheck on every bash script and pyflakes on every Python one.
# Usage: lint.sh [--fix] ; --fix only formats (make fmt).
# Every gate runs; the exit status is non-zero if any of them failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=lint
cd "$RLOOP_ROOT"

# KDIR, or the cached test kernel (make kernel builds it): lint sets
# nothing up.
KDIR=$(cached_kdir)
src=$(readlink -f "$KDIR/source" 2>/dev/null || echo "$KDIR")
rustfmt_cfg=$src/.rustfmt.toml
RUSTFMT=${RUSTFMT:-rustfmt}
command -v "$RUSTFMT" >/dev/null || die "rustfmt not found" "install rustfmt (rustup component add rustfmt)"

if [ "${1:-}" = --fix ]; then
	progress "rustfmt (kernel style) on rust/ and tests/host/"
	"$RUSTFMT" --edition 2021 --config-path "$rustfmt_cfg" rust/rloop.rs tests/host/src/lib.rs
	exit 0
fi

failed=()

# The files that may hold `unsafe`: the abstraction layer, rust/blk/ and
# the other wrappers of one C concept each (README, "Layout"). Every other
# file of rust/ is driver logic or kernel-free logic, and must hold none (no
# unsafe block, fn, impl or trait): a new file is checked by default.
ABSTRACTIONS=(rust/blk.rs rust/delayed_work.rs rust/file_io.rs rust/kiocb.rs rust/kthread.rs rust/memalloc.rs rust/misc.rs
	rust/module_ref.rs rust/module_param.rs rust/mutex.rs rust/capability.rs rust/submitter.rs
	rust/cpu_nesting.rs rust/cgroup.rs
	rust/helpers_ffi.rs)
DRIVER_LOGIC=()
while IFS= read -r f; do
	[[ " ${ABSTRACTIONS[*]} " == *" $f "* || $f == rust/blk/* ]] || DRIVER_LOGIC+=("$f")
done < <(find rust -name '*.rs' | sort)
# Bash scripts: the sourced fragments (tests/cases/ and the other suites,
# scripts/lib.sh, tests/lib.sh) say `# shellcheck shell=bash`; .shellcheckrc
# lets shellcheck follow what they source.
SHELL_FILES=(scripts/*.sh tests/*.sh tests/*/*.sh tests/*/*/*.sh .ci/run)
PYTHON_FILES=(scripts/*.py tests/*.py scripts/virtme/virtme-run)

progress "rustfmt --check"
if ! "$RUSTFMT" --edition 2021 --config-path "$rustfmt_cfg" --check rust/rloop.rs tests/host/src/lib.rs; then
	failed+=(rustfmt)
fi

progress "clippy through Kbuild (CLIPPY=1) with the kernel's lints"
CLIPPY_DRIVER=${CLIPPY_DRIVER:-/usr/bin/clippy-driver}
[ -x "$CLIPPY_DRIVER" ] || die "clippy-driver not found at $CLIPPY_DRIVER" "install Debian's rust-web-clippy (make deps)"
# Force the Rust object to be rebuilt, so clippy sees it.
log_file=$(mktemp)
trap 'rm -f "$log_file"' EXIT
# Twice: the test build (RLOOP_TEST_HOOKS=1, rust/test_hooks.rs) first,
# then the production build, whose command rustdoc below reuses.
for hooks in 1 0; do
	rm -f rust/rloop.o rust/.rloop.o.cmd
	if ! KDIR=$KDIR RLOOP_TEST_HOOKS=$hooks "$RLOOP_ROOT/scripts/kmake.sh" CLIPPY=1 \
		CLIPPY_DRIVER="$CLIPPY_DRIVER" >"$log_file" 2>&1; then
		cat "$log_file"
		failed+=(build)
	elif grep -qE '^(warning|error)' "$log_file"; then
		grep -E -A12 '^(warning|error)' "$log_file"
		failed+=(clippy)
	fi
done

progress "rustdoc of the module (private items included)"
# Kbuild has no rustdoc target for external modules: rerun the exact rustc
# command Kbuild used for rust/rloop.o, as rustdoc.
cmd=$(sed -n 's/^savedcmd_rust\/rloop.o := //p' rust/.rloop.o.cmd | sed 's/ *; .*objtool.*$//')
[ -n "$cmd" ] || die "no Kbuild command for rust/rloop.o" "run make first"
doc_out=$RLOOP_ROOT/results/rustdoc
rm -rf "$doc_out" && mkdir -p "$doc_out"
doc_cmd=$(sed -E -e 's#[^ ]*(/rustc|clippy-driver) #/usr/bin/rustdoc #' \
	-e 's/ --emit=[^ ]*//g' -e 's/ --out-dir [^ ]*//' -e 's/ -Zbinary_dep_depinfo=[^ ]*//g' \
	<<<"$cmd")
if ! (export RUSTC_BOOTSTRAP=1; eval "$doc_cmd --document-private-items -o $doc_out") >"$log_file" 2>&1 ||
	grep -qE '^(warning|error)' "$log_file"; then
	cat "$log_file"
	failed+=(rustdoc)
fi

progress "checkpatch.pl --strict on the C helpers"
if ! "$src/scripts/checkpatch.pl" --strict --no-tree --quiet -f rust/helpers.c rust/helpers.h; then
	failed+=(checkpatch)
fi

progress "no unsafe in the driver logic (${#DRIVER_LOGIC[@]} files)"
# A line counts unless its code part (before any // comment) is empty of
# the word: doc comments and comments may talk about unsafe code.
missing=()
for f in "${DRIVER_LOGIC[@]}"; do
	[ -f "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
	printf '%s: listed in DRIVER_LOGIC (scripts/lint.sh) but missing\n' "${missing[@]}"
	failed+=(driver-logic)
elif ! awk '{ code = $0; sub(/\/\/.*/, "", code) }
	code ~ /(^|[^A-Za-z0-9_])unsafe([^A-Za-z0-9_]|$)/ {
		printf "%s:%d: unsafe in driver logic: %s\n", FILENAME, FNR, $0; found = 1 }
	END { exit found }' "${DRIVER_LOGIC[@]}"; then
	failed+=(unsafe)
fi

progress "layering of rust/ (scripts/import-graph.py --check)"
if ! /usr/bin/python3 "$RLOOP_ROOT/scripts/import-graph.py" --check "$RLOOP_ROOT/rust"; then
	failed+=(layering)
fi

progress "shellcheck on the bash scripts (${#SHELL_FILES[@]} files)"
if ! command -v shellcheck >/dev/null; then
	printf 'shellcheck not found: install Debian'"'"'s shellcheck (make deps)\n'
	failed+=(shellcheck)
elif ! shellcheck -f gcc "${SHELL_FILES[@]}"; then
	failed+=(shellcheck)
fi

progress "pyflakes on the Python scripts (${#PYTHON_FILES[@]} files)"
# Debian's python3, which has python3-pyflakes, whatever python3 is first
# in PATH.
if ! /usr/bin/python3 -c 'import pyflakes' 2>/dev/null; then
	printf 'pyflakes not found: install Debian'"'"'s python3-pyflakes (make deps)\n'
	failed+=(pyflakes)
elif ! /usr/bin/python3 -m pyflakes "${PYTHON_FILES[@]}"; then
	failed+=(pyflakes)
fi

if [ ${#failed[@]} -gt 0 ]; then
	die "lint failed: ${failed[*]}" "fix the reports above; 'make fmt' fixes formatting"
fi
progress "lint clean: rustfmt, clippy, rustdoc, checkpatch, no unsafe in the driver logic, layering, shellcheck, pyflakes"
