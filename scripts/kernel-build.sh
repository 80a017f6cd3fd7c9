#!/usr/bin/env bash
# Build (or reuse) a cached kernel for rloop.
#
#   kernel-build.sh [--cached] [VARIANT]
#
# VARIANT names a config fragment in scripts/kconfig/ (default: test).
# Prints the absolute path of the build tree (usable as KDIR) on stdout.
# --cached: only a tree already built and complete; exit status 1,
# silently, when there is none, and nothing is fetched or built (a plain
# `make` without KDIR uses this).
#
# The cache key covers the kernel version, the config fragment and the
# toolchain, so a change to any of them builds a new tree. A tree is reused
# only when its completion stamp is present and its products exist.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cached=
[ "${1:-}" != --cached ] || { cached=1; shift; }
variant=${1:-test}
RLOOP_STEP=kernel-build/$variant
fragment=$RLOOP_ROOT/scripts/kconfig/$variant.config
[ -f "$fragment" ] || die "no config fragment $fragment" "use one of: $(ls "$RLOOP_ROOT/scripts/kconfig")"

if [ -n "$cached" ]; then
	src=$(RLOOP_QUIET=1 "$RLOOP_ROOT/scripts/kernel-source.sh" --cached) || exit 1
else
	src=$("$RLOOP_ROOT/scripts/kernel-source.sh")
fi
version=$(make -s -C "$src" kernelversion)
# expand FRAGMENT: its lines, with "#include NAME" replaced by the lines of
# scripts/kconfig/NAME. A later assignment to a symbol overrides an earlier
# one, so a variant is its base plus overrides.
expand() {
	local line
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		"#include "*) expand "$RLOOP_ROOT/scripts/kconfig/${line#\#include }" ;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$1"
}
# Only the last assignment to a symbol is kept, and
# "#drop CONFIG_X" removes every assignment to CONFIG_X, for a value
# that cannot be overridden with =n (an int of a disabled option).
config=$(expand "$fragment" | awk '
	/^#drop / { drop[$2] = 1; next }
	{ lines[NR] = $0 }
	/^CONFIG_/ { split($0, kv, "="); last[kv[1]] = NR }
	END { for (i = 1; i <= NR; i++) if (i in lines) {
		split(lines[i], kv, "=")
		if (!(kv[1] in drop) && (!(kv[1] in last) || last[kv[1]] == i)) print lines[i] } }')
# Bump when the way the config is assembled changes.
method=allnoconfig+allconfig/2
key=$( { cat "$src/.rloop-unpacked"; echo "$method"; printf '%s\n' "$config"; toolchain_id; } |
	sha256sum | cut -c1-12)
out=$RLOOP_CACHE/kbuild/$variant-$version-$key
stamp=$out/.rloop-complete

products=(arch/x86/boot/bzImage vmlinux Module.symvers modules.order
	rust/libkernel.rmeta scripts/target.json include/generated/rustc_cfg)

complete() {
	[ -f "$stamp" ] || return 1
	local f
	for f in "${products[@]}"; do
		[ -s "$out/$f" ] || return 1
	done
}

if complete; then
	log "reusing $out"
	echo "$out"
	exit 0
fi
[ -z "$cached" ] || exit 1

if [ -f "$stamp" ]; then
	log "cached build $out is broken (a product is missing); rebuilding it"
	rm -f "$stamp"
fi

build() {
	mkdir -p "$out"
	if [ ! -f "$out/.rloop-configured" ]; then
		# allnoconfig with the fragment as KCONFIG_ALLCONFIG: the fragment's
		# values are forced and every other symbol, including ones that the
		# fragment makes visible, takes its "no" value. Merging into an
		# allnoconfig and running olddefconfig instead would give the newly
		# visible symbols their defaults (INET, IPV6, wireless, ...).
		log "configuring: allnoconfig with $(basename "$fragment")"
		printf '%s\n' "$config" >"$out/rloop.config"
		kernel_make "$src" O="$out" -s KCONFIG_ALLCONFIG="$out/rloop.config" allnoconfig >/dev/null || return 1
		# Every option the fragment sets must have survived olddefconfig.
		local bad=()
		while IFS= read -r line; do
			case $line in
			CONFIG_*=n) ! grep -q "^${line%=n}=" "$out/.config" || bad+=("$line") ;;
			CONFIG_*=*) grep -qxF "$line" "$out/.config" || bad+=("$line") ;;
			esac
		done < <(printf '%s\n' "$config" | grep -E '^CONFIG_')
		if [ ${#bad[@]} -gt 0 ]; then
			kernel_make "$src" O="$out" -s rustavailable >&2 || true
			die "config options not applied: ${bad[*]}" \
				"check the toolchain (make rustavailable above) and the dependencies of these options"
		fi
		touch "$out/.rloop-configured"
	fi

	local jobs=$(($(nproc) + 1))
	progress "building Linux $version ($variant) in $out with -j$jobs; log in $out/build.log"
	local start=$SECONDS
	kernel_make "$src" O="$out" -j"$jobs" bzImage modules >"$out/build.log" 2>&1 &
	local pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 30
		kill -0 "$pid" 2>/dev/null || break
		progress "$(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s: $(grep -c -E '^  (CC|RUSTC|AS|LD)' "$out/build.log" || true) objects, at: $(grep -E '^  (CC|RUSTC|AS|LD)' "$out/build.log" | tail -n1 | awk '{print $NF}')"
	done
	wait "$pid" || return 1
	progress "built in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s"
}

if ! build; then
	tail -n 30 "$out/build.log" >&2 || true
	if [ -d "$out" ] && [ -z "${RLOOP_RETRIED:-}" ]; then
		log "build failed; wiping $out and building from scratch once"
		rm -rf "$out"
		RLOOP_RETRIED=1 build || die "kernel build failed (see $out/build.log)" \
			"read the log; a toolchain problem shows up in 'make rustavailable'"
	else
		die "kernel build failed (see $out/build.log)" "read the log"
	fi
fi

for f in "${products[@]}"; do
	[ -s "$out/$f" ] || die "build finished but $f is missing" "remove $out and rerun"
done
date -u +%FT%TZ >"$stamp"
# Trees of this variant under other keys are stale (a changed fragment or
# toolchain): each takes gigabytes.
for stale in "$RLOOP_CACHE/kbuild/$variant"-*; do
	[ "$stale" = "$out" ] || [ ! -d "$stale" ] || { log "removing stale $stale"; rm -rf "$stale"; }
done
echo "$out"
