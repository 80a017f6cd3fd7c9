#!/usr/bin/env bash
# Run Kbuild for the rloop module: kmake.sh [TARGET...] (default: modules).
# KDIR (environment) selects the kernel tree; without it, the cached test
# kernel is set up and used. The compiler follows the tree's .config: a
# clang-built tree gets LLVM=..., a gcc-built tree gets none.
#
# A distribution's kernel goes through scripts/distro.sh, which rebuilds
# the Rust metadata its headers lack with the toolchain that built it:
# KDIR=debian:RELEASE (or debian:sid, debian:trixie-backports), or KDIR
# naming an installed Debian headers tree (/lib/modules/RELEASE/build, as
# DKMS passes it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=kmake

if [ -z "${KDIR:-}" ]; then
	"$RLOOP_ROOT/scripts/deps.sh"
	KDIR=$("$RLOOP_ROOT/scripts/kernel-build.sh" test)
fi
[ $# -gt 0 ] || set -- modules
case $KDIR in
debian:*) exec "$RLOOP_ROOT/scripts/distro.sh" "$KDIR" -- "$@" ;;
esac
# Debian's headers packages say how their kernel was built in
# .kernelvariables, and have no rust/ directory.
if [ -f "$KDIR/.kernelvariables" ] && [ ! -e "$KDIR/rust/libkernel.rmeta" ] &&
	grep -q '^CONFIG_RUST=y' "$KDIR/.config" 2>/dev/null; then
	exec "$RLOOP_ROOT/scripts/distro.sh" --headers "$KDIR" -- "$@"
fi
[ -f "$KDIR/.config" ] || die "$KDIR is not a configured kernel tree" \
	"pass KDIR=/path/to/a/7.2/build/tree (with 'make modules_prepare' done)"
grep -q '^CONFIG_RUST=y' "$KDIR/.config" || die "$KDIR has no CONFIG_RUST=y" \
	"rebuild that kernel with CONFIG_RUST=y, or omit KDIR to use the cached test kernel"
[ -f "$KDIR/rust/libkernel.rmeta" ] || die "$KDIR has no Rust metadata (rust/libkernel.rmeta)" \
	"run 'make modules_prepare' in $KDIR with the same rustc ($RUSTC)"

args=(RUSTC="$RUSTC" BINDGEN="$BINDGEN")
if grep -q '^CONFIG_CC_IS_CLANG=y' "$KDIR/.config"; then
	if [ -n "${LLVM:-}" ]; then
		args+=(LLVM="$LLVM")
	elif [ -x "${LLVM_PREFIX}clang" ]; then
		# CC and LD explicitly too: DKMS adds CC=clang LD=ld.lld for a
		# clang-built kernel, which Debian installs only with a suffix.
		args+=(LLVM="$LLVM_PREFIX" CC="${LLVM_PREFIX}clang" LD="${LLVM_PREFIX}ld.lld")
	else
		args+=(LLVM=1)
	fi
fi
exec make -C "$KDIR" M="$RLOOP_ROOT" "${args[@]}" "$@"
