# shellcheck shell=bash
# Common helpers for rloop's scripts. Source it; do not run it.
# Its variables are for the scripts that source it:
# shellcheck disable=SC2034

RLOOP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RLOOP_CACHE=${RLOOP_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/rloop}

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
		"$(compgen -G "$LIBCLANG_PATH/libclang-*.so*" | head -n1)"
}

# cached_kdir: KDIR if set, else the cached test kernel's build tree if it
# is built. Otherwise it stops, saying what to do: the plain targets (make,
# make lint, ...) install, fetch and build nothing; `make kernel` does.
cached_kdir() {
	if [ -n "${KDIR:-}" ]; then
		echo "$KDIR"
		return
	fi
	"$RLOOP_ROOT/scripts/kernel-build.sh" --cached test ||
		die "no KDIR given, and the cached test kernel is not built" \
			"run 'make kernel' (installs the host packages and builds it: about 8 minutes on 2 cores), or pass KDIR=/path/to/a/prepared/kernel/tree"
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
	(cd "$RLOOP_ROOT" && { git ls-files -z -co --exclude-standard 2>/dev/null ||
		find . -path ./.git -prune -o -path ./results -prune -o -type f -print0; }) |
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

# The Debian mirror the system already uses (its own apt configuration
# names it; no host name is written down here).
debian_mirror() {
	local m
	# shellcheck disable=SC2016 # apt's format, not the shell's
	m=$(apt-get indextargets --format '$(URI)' 2>/dev/null |
		sed -n 's#^\(.*\)/dists/bookworm/main/.*#\1#p' | head -n1)
	# shellcheck disable=SC2016 # apt's format, not the shell's
	[ -n "$m" ] || m=$(apt-get indextargets --format '$(URI)' 2>/dev/null |
		sed -n 's#^\(.*\)/dists/[^/]*/main/.*#\1#p' | grep -v security | head -n1)
	[ -n "$m" ] || die "no Debian mirror found in the system's apt configuration" \
		"configure a Debian mirror in /etc/apt/sources.list(.d), then rerun"
	echo "$m"
}

# Private apt lists of sid, trixie and trixie-backports in the cache, for
# `apt-get "${APT_OPTS[@]}" download|show`: the system's apt sources and
# state stay untouched. Valid-Until is not checked: a mirror that is a
# snapshot serves Release files past their date (signatures still are).
PRIVATE_APT_DIR=$RLOOP_CACHE/apt
PRIVATE_APT_SUITES="sid trixie trixie-backports"
APT_OPTS=(
	-o "Dir::Etc::SourceList=$PRIVATE_APT_DIR/sources.list"
	-o "Dir::Etc::SourceParts=-"
	-o "Dir::Etc::Preferences=/dev/null"
	-o "Dir::Etc::PreferencesParts=$PRIVATE_APT_DIR/etc/preferences.d"
	-o "Dir::State::Lists=$PRIVATE_APT_DIR/lists"
	-o "Dir::Cache=$PRIVATE_APT_DIR/cache"
	-o "Dir::State::status=/dev/null"
	-o "APT::Get::List-Cleanup=0"
	-o "Acquire::Check-Valid-Until=false"
	-o "Debug::NoLocking=1"
)

# private_apt_update [MAX_AGE_MINUTES]: refresh the private lists, unless
# they are younger than MAX_AGE_MINUTES (default 0: always).
private_apt_update() {
	local max_age=${1:-0} mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg suite
	mkdir -p "$PRIVATE_APT_DIR/lists/partial" "$PRIVATE_APT_DIR/cache/archives/partial" \
		"$PRIVATE_APT_DIR/etc/preferences.d"
	mirror=$(debian_mirror)
	local want
	want=$(for suite in $PRIVATE_APT_SUITES; do echo "deb [signed-by=$keyring] $mirror $suite main"; done)
	if [ "$max_age" -gt 0 ] && [ "$want" = "$(cat "$PRIVATE_APT_DIR/sources.list" 2>/dev/null)" ] &&
		[ -n "$(find "$PRIVATE_APT_DIR/updated" -mmin -"$max_age" 2>/dev/null)" ]; then
		return 0
	fi
	printf '%s\n' "$want" >"$PRIVATE_APT_DIR/sources.list"
	log "updating the private package lists ($PRIVATE_APT_SUITES)"
	if apt-get "${APT_OPTS[@]}" update -q >"$PRIVATE_APT_DIR/update.log" 2>&1; then
		touch "$PRIVATE_APT_DIR/updated"
		return 0
	fi
	# Lists that may be old serve a build whose packages are cached.
	if [ "$max_age" -gt 0 ] && [ -f "$PRIVATE_APT_DIR/updated" ]; then
		progress "warning: apt-get update of the private lists failed (see $PRIVATE_APT_DIR/update.log); using the lists of $(date -r "$PRIVATE_APT_DIR/updated" +%F)"
		return 0
	fi
	die "apt-get update of the private lists failed (see $PRIVATE_APT_DIR/update.log)" \
		"check access to the Debian mirror; the suites $PRIVATE_APT_SUITES are needed"
}
