#!/usr/bin/env bash
# Lint gates: rustfmt, no unsafe in the driver logic, clippy with the
# kernel's lint set (Kbuild CLIPPY=1), rustdoc of the module without
# warnings, and checkpatch.pl --strict on the C helpers.
# Usage: lint.sh [--fix] ; --fix only formats (make fmt).
# Every gate runs; the exit status is non-zero if any of them failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=lint
cd "$RLOOP_ROOT"

if [ -z "${KDIR:-}" ]; then
	"$RLOOP_ROOT/scripts/deps.sh"
	KDIR=$("$RLOOP_ROOT/scripts/kernel-build.sh" test)
fi
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

progress "rustfmt --check"
if ! "$RUSTFMT" --edition 2021 --config-path "$rustfmt_cfg" --check rust/rloop.rs tests/host/src/lib.rs; then
	failed+=(rustfmt)
fi

progress "no unsafe in the driver logic"
# The driver logic and the kernel-free files: every unsafe token belongs in
# an abstraction file. Comments may name the word.
driver_logic=(rust/rloop.rs rust/control.rs rust/control rust/device.rs rust/device rust/io.rs
	rust/dio.rs rust/uapi.rs rust/completion.rs rust/hw_queues.rs rust/capacity.rs)
if unsafe_lines=$(find "${driver_logic[@]}" -name '*.rs' -print0 |
	xargs -0 perl -ne 's{//.*}{}; print "$ARGV:$.: $_" if /\bunsafe\b/; close ARGV if eof') &&
	[ -n "$unsafe_lines" ]; then
	printf '%s\n' "$unsafe_lines" >&2
	failed+=(unsafe)
fi

progress "clippy through Kbuild (CLIPPY=1) with the kernel's lints"
CLIPPY_DRIVER=${CLIPPY_DRIVER:-/usr/bin/clippy-driver}
[ -x "$CLIPPY_DRIVER" ] || die "clippy-driver not found at $CLIPPY_DRIVER" "install Debian's rust-web-clippy (make deps)"
# Force the Rust object to be rebuilt, so clippy sees it.
rm -f rust/rloop.o rust/.rloop.o.cmd
log_file=$(mktemp)
trap 'rm -f "$log_file"' EXIT
if ! KDIR=$KDIR "$RLOOP_ROOT/scripts/kmake.sh" CLIPPY=1 CLIPPY_DRIVER="$CLIPPY_DRIVER" >"$log_file" 2>&1; then
	cat "$log_file"
	failed+=(build)
elif grep -qE '^(warning|error)' "$log_file"; then
	grep -E -A12 '^(warning|error)' "$log_file"
	failed+=(clippy)
fi

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

if [ ${#failed[@]} -gt 0 ]; then
	die "lint failed: ${failed[*]}" "fix the reports above; 'make fmt' fixes formatting"
fi
progress "lint clean: rustfmt, no unsafe in the driver logic, clippy, rustdoc, checkpatch"
