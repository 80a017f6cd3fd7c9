# shellcheck shell=bash
# Common helpers for rloop's scripts. Source it; do not run it.

RLOOP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RLOOP_CACHE=${RLOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rloop}

# The toolchain that builds a 7.2 Rust kernel on Debian 12.
export RUSTC=${RUSTC:-/usr/bin/rustc}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
BINDGEN_VERSION=0.72.1
export BINDGEN=${BINDGEN:-$RLOOP_CACHE/cargo/bin/bindgen}
VIRTME_NG_VERSION=1.42
VENV=$RLOOP_CACHE/venv

# Kernel: Debian's linux-source-7.2 package.
KERNEL_SERIES=7.2
KERNEL_PREFERRED=7.2.13-1

# log: informational; RLOOP_QUIET=1 silences it. progress: always shown.
log() { [ -n "${RLOOP_QUIET:-}" ] || printf '[%s] %s\n' "${RLOOP_STEP:-rloop}" "$*" >&2; }
progress() { printf '[%s] %s\n' "${RLOOP_STEP:-rloop}" "$*" >&2; }
die() {
	printf '[%s] error: %s\n' "${RLOOP_STEP:-rloop}" "$1" >&2
	[ $# -gt 1 ] && printf '[%s] what to do: %s\n' "${RLOOP_STEP:-rloop}" "$2" >&2
	exit 1
}

# Run a command as root: directly, or through sudo.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

toolchain_id() {
	printf '%s|%s|%s|%s\n' \
		"$("$RUSTC" --version 2>/dev/null)" \
		"$("$BINDGEN" --version 2>/dev/null)" \
		"$(gcc --version 2>/dev/null | head -n1)" \
		"$(ls "$LIBCLANG_PATH"/libclang-*.so* 2>/dev/null | head -n1)"
}

# KASAN together with Rust needs a clang-built kernel (init/Kconfig: RUST
# depends on !KASAN || CC_IS_CLANG), so the test kernel is built with LLVM 19.
LLVM_PREFIX=/usr/lib/llvm-19/bin/

# build_module_copy KDIR DIR LOG: build rloop.ko for the kernel tree KDIR
# in DIR, a copy of the tracked sources, so that the rloop.ko at the root
# (built for the test kernel) stays. cp -p keeps the mtimes and DIR
# persists: an unchanged source rebuilds nothing. The module is DIR/rloop.ko.
build_module_copy() {
	local kdir=$1 dir=$2 log=$3
	mkdir -p "$dir"
	(cd "$RLOOP_ROOT" && git ls-files -z -co --exclude-standard 2>/dev/null ||
		find . -path ./.git -prune -o -path ./results -prune -o -type f -print0) |
		(cd "$RLOOP_ROOT" && xargs -0 cp -p --parents -t "$dir")
	progress "building rloop.ko for $(basename "$kdir") in $dir"
	KDIR=$kdir "$dir/scripts/kmake.sh" modules >"$log" 2>&1 ||
		{ tail -n 30 "$log" >&2; die "rloop.ko did not build against $kdir" "read $log"; }
}

# kernel_make DIR ARGS...: make in a kernel build tree with the toolchain.
kernel_make() {
	local dir=$1
	shift
	make -C "$dir" LLVM="$LLVM_PREFIX" RUSTC="$RUSTC" BINDGEN="$BINDGEN" "$@"
}
