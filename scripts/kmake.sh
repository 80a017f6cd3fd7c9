#!/usr/bin/env bash
# Run Kbuild for the rloop module: kmake.sh [TARGET...] (default: modules).
# KDIR (environment) selects the kernel tree; without it, the cached test
# kernel, if it is built (`make kernel` builds it; nothing is installed or
# built here). The compiler follows the tree's .config: a
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

KDIR=$(cached_kdir)
[ $# -gt 0 ] || set -- modules

# distro_make KERNEL...: Kbuild in the distribution kernel's root; the
# install goes to this machine's /lib/modules, not the root's.
distro_make() {
	local arg install='' dir=extra args=()
	for arg in "$@"; do
		case $arg in
		modules_install) install=1 ;;
		INSTALL_MOD_DIR=*) dir=${arg#INSTALL_MOD_DIR=} ;;
		*) args+=("$arg") ;;
		esac
	done
	if [ -z "$install" ]; then
		exec "$RLOOP_ROOT/scripts/distro.sh" "${kernel[@]}" -- "${args[@]}"
	fi
	"$RLOOP_ROOT/scripts/distro.sh" "${kernel[@]}" -- modules
	local release
	release=$("$RLOOP_ROOT/scripts/distro.sh" --resolve "${kernel[@]}")
	progress "installing rloop.ko in /lib/modules/$release/$dir"
	as_root install -D -m 0644 "$RLOOP_ROOT/rloop.ko" "/lib/modules/$release/$dir/rloop.ko"
	as_root depmod -a "$release"
	exit 0
}
case $KDIR in
debian:*) kernel=("$KDIR"); distro_make "$@" ;;
esac
# Debian's headers packages say how their kernel was built in
# .kernelvariables, and have no rust/ directory.
if [ -f "$KDIR/.kernelvariables" ] && [ ! -e "$KDIR/rust/libkernel.rmeta" ] &&
	grep -q '^CONFIG_RUST=y' "$KDIR/.config" 2>/dev/null; then
	kernel=(--headers "$KDIR")
	distro_make "$@"
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
