#!/usr/bin/env bash
# Build rloop for a distribution's own kernel: Debian's, unmodified.
#
#   distro.sh KERNEL                      prepare; print the tree's path
#   distro.sh KERNEL -- MAKE_ARGS...      then run Kbuild for the module
#   distro.sh --resolve KERNEL            print the kernel release only
#   distro.sh --image KERNEL              fetch the kernel's image and
#                                         modules; print where they are
#
# KERNEL is debian:RELEASE (debian:7.2.13+deb14-amd64), debian:SUITE (the
# release of linux-image-amd64 in sid, trixie-backports, ...), or
# --headers DIR: an installed linux-headers-RELEASE tree (what DKMS passes).
# The module directory is RLOOP_MODULE_DIR (default: this tree).
#
# Debian's kernels are CONFIG_RUST=y, but their headers packages carry no
# Rust metadata, which every Rust module is compiled against. The build is
# reproducible, so the metadata can be made again: the same source
# (linux-source-X.Y of the image's Debian version), the headers' .config
# and release, and the exact toolchain that .config names (rustc, bindgen,
# gcc), installed from Debian's archive into an isolated root (mmdebstrap),
# then `make modules_prepare`. The module links against the headers' own
# Module.symvers. A Rust symbol's name carries its crate's hash, which
# only the same rustc and crate flags give: the prepared tree's hashes are
# compared with the kernel's exports before anything is built on them.
#
# Cached under $RLOOP_CACHE/distro: roots/ keyed by the toolchain, kbuild/
# keyed by source, config and toolchain; the host's apt stays untouched.
# Needs root (mmdebstrap, chroot).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=distro

DISTRO_CACHE=$RLOOP_CACHE/distro
# Bump when the preparation changes, to rebuild cached trees.
PREPARE_METHOD=modules_prepare/1
ROOT_METHOD=mmdebstrap-apt/1
# What the isolated root holds besides the pinned toolchain: what
# modules_prepare runs (make, bison, flex, bc, perl, openssl for the
# Kconfig probe of ML-DSA signing), and pahole for the module's BTF.
ROOT_PACKAGES=(make bc bison flex libelf-dev libssl-dev openssl dwarves cpio kmod python3 libc6-dev)

mode=build
headers_dir=
case ${1:-} in
--resolve) mode=resolve; shift ;;
--image) mode=image; shift ;;
esac
if [ "${1:-}" = --headers ]; then
	headers_dir=$(realpath "${2:?--headers DIR}")
	shift 2
	kernel=headers:$headers_dir
else
	kernel=${1:-}
	shift || true
fi
[ -n "$kernel" ] || die "no kernel given" "distro.sh debian:RELEASE, debian:SUITE or --headers DIR"
make_args=()
if [ "${1:-}" = -- ]; then
	shift
	make_args=("$@")
fi
[ "$(id -u)" -eq 0 ] ||
	die "building for a distribution kernel needs root (mmdebstrap and chroot)" "run it as root, or through sudo"

command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: it installs the kernel's toolchain in a root of its own" \
	"apt install mmdebstrap (make deps does)"
mkdir -p "$DISTRO_CACHE/debs" "$DISTRO_CACHE/pkg" "$DISTRO_CACHE/roots" "$DISTRO_CACHE/kbuild"

# apt_fetch PACKAGE=VERSION...: download into the cache's debs/ (kept).
apt_fetch() {
	local spec version missing=()
	for spec in "$@"; do
		version=${spec#*=}
		compgen -G "$DISTRO_CACHE/debs/${spec%%=*}_${version/:/%3a}_*.deb" >/dev/null || missing+=("$spec")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	private_apt_update 60
	log "downloading ${missing[*]}"
	(cd "$DISTRO_CACHE/debs" && apt-get "${APT_OPTS[@]}" download -q "${missing[@]}" >&2) ||
		die "apt-get download ${missing[*]} failed" "check access to the Debian mirror; the archive may have dropped this kernel (try debian:sid or debian:trixie-backports)"
}

deb_of() {
	compgen -G "$DISTRO_CACHE/debs/$1_${2/:/%3a}_*.deb" | head -n1
}

# madison PACKAGE: "VERSION SUITE" per line, from the private lists.
madison() {
	apt-cache "${APT_OPTS[@]}" madison "$1" 2>/dev/null |
		awk -F'|' '$3 ~ /Packages/ { gsub(/ /, "", $2); split($3, s, " "); split(s[2], d, "/"); print $2, d[1] }'
}

# The release and Debian version of the kernel.
case $kernel in
debian:*)
	name=${kernel#debian:}
	if [[ $name =~ ^[0-9]+\.[0-9]+ ]]; then
		release=$name
	else
		private_apt_update 60
		meta=$(madison linux-headers-amd64 | awk -v s="$name" '$2 == s { print $1 }' | sort -V | tail -n1)
		[ -n "$meta" ] || die "no linux-headers-amd64 in suite $name" "name a suite of the private lists ($PRIVATE_APT_SUITES) or a release: debian:7.2.13+deb14-amd64"
		release=$(apt-cache "${APT_OPTS[@]}" show "linux-headers-amd64=$meta" |
			sed -n 's/^Depends: .*\(linux-headers-[^ ,]*-amd64\).*/\1/p' | head -n1)
		release=${release#linux-headers-}
		[ -n "$release" ] || die "cannot tell which kernel linux-headers-amd64 $meta is"
	fi
	;;
headers:*)
	{ [ -f "$headers_dir/.config" ] && [ -f "$headers_dir/Module.symvers" ]; } ||
		die "$headers_dir is not a kernel headers tree (no .config or Module.symvers)" \
			"install linux-headers-\$(uname -r), or name the kernel: KDIR=debian:RELEASE"
	release=$(sed -n 's/^override KERNELRELEASE = //p' "$headers_dir/.kernelvariables" 2>/dev/null)
	[ -n "$release" ] || release=$(cat "$headers_dir/include/config/kernel.release" 2>/dev/null || true)
	[ -n "$release" ] || die "$headers_dir names no kernel release" "is it a Debian linux-headers tree?"
	;;
*) die "unknown kernel $kernel" "debian:RELEASE, debian:SUITE or --headers DIR" ;;
esac
[[ $release =~ ^[0-9A-Za-z.+~_-]+$ ]] || die "bad kernel release '$release'"
if [ "$mode" = resolve ]; then
	echo "$release"
	exit 0
fi

exec 7>"$DISTRO_CACHE/.lock-$release"
flock 7

# The headers: the installed ones, or the package's, unpacked in the cache.
pkg=$DISTRO_CACHE/pkg/$release
if [ -z "$headers_dir" ]; then
	if [ ! -f "$pkg/.headers" ]; then
		private_apt_update 60
		version=$(madison "linux-headers-$release" | awk '{ print $1 }' | sort -V | tail -n1)
		[ -n "$version" ] || die "Debian's archive has no linux-headers-$release" \
			"the archive keeps only current kernels: try debian:sid or debian:trixie-backports"
		apt_fetch "linux-headers-$release=$version"
		mkdir -p "$pkg"
		dpkg-deb -x "$(deb_of "linux-headers-$release" "$version")" "$pkg"
		echo "$version" >"$pkg/.headers"
	fi
	headers_dir=$pkg/usr/src/linux-headers-$release
	version=$(cat "$pkg/.headers")
else
	version=$(dpkg-query -W -f='${Version}' "linux-headers-$release" 2>/dev/null || true)
	if [ -z "$version" ]; then
		private_apt_update 60
		version=$(madison "linux-headers-$release" | awk '{ print $1 }' | sort -V | tail -n1)
	fi
	[ -n "$version" ] || die "cannot tell the Debian version of linux-headers-$release" \
		"install the headers with apt (dpkg must know the package)"
fi
config=$headers_dir/.config
grep -q '^CONFIG_RUST=y' "$config" || die "$release is not built with CONFIG_RUST=y" "rloop needs a Rust-enabled kernel"

if [ "$mode" = image ]; then
	# The kernel binary and its modules, unpacked (not installed). The
	# packages have no module index: depmod (Debian 12's kmod reads .ko.xz)
	# looks under BASE/lib/modules, hence BASE=usr.
	if [ ! -f "$pkg/.image" ]; then
		apt_fetch "linux-binary-$release=$version" "linux-modules-$release=$version" "linux-base-$release=$version"
		mkdir -p "$pkg"
		local_p=
		for local_p in binary modules base; do
			dpkg-deb -x "$(deb_of "linux-$local_p-$release" "$version")" "$pkg"
		done
		depmod -a -b "$pkg/usr" "$release" ||
			die "depmod of $release's modules failed" "is the host's kmod new enough for their compression?"
		echo "$version" >"$pkg/.image"
	fi
	echo "$pkg"
	exit 0
fi

conf() { sed -n "s/^$1=\"\\{0,1\\}\\([^\"]*\\)\"\\{0,1\\}\$/\\1/p" "$config"; }
grep -q '^CONFIG_X86_64=y' "$config" || die "only amd64 kernels are supported so far" "see Documentation/admin-guide/rloop.rst, 'Another distribution'"
rustc_text=$(conf CONFIG_RUSTC_VERSION_TEXT)
bindgen_text=$(conf CONFIG_BINDGEN_VERSION_TEXT)
cc_text=$(conf CONFIG_CC_VERSION_TEXT)
rustc_upstream=$(awk '{ print $2 }' <<<"$rustc_text")
bindgen_upstream=$(awk '{ print $2 }' <<<"$bindgen_text")
cc=$(awk '{ print $1 }' <<<"$cc_text")
cc_pkg=$(sed -n 's/.*-\(gcc-[0-9]*\)$/\1/p' <<<"$cc")
cc_version=$(sed -n 's/.*(Debian \([^)]*\)).*/\1/p' <<<"$cc_text")
cross=${cc%"$cc_pkg"}
{ [ -n "$rustc_upstream" ] && [ -n "$bindgen_upstream" ] && [ -n "$cc_pkg" ] && [ -n "$cc_version" ]; } ||
	die "cannot read the toolchain from $config (rustc '$rustc_text', bindgen '$bindgen_text', cc '$cc_text')" \
		"is this a Debian kernel built with gcc and CONFIG_RUST=y?"
progress "Linux $release (Debian $version): $rustc_text, $bindgen_text, $cc_text"

# The toolchain's Debian versions, resolved once per kernel .config: a
# rebuild (DKMS at the next boot, a changed rloop) needs no package lists.
config_sha=$(sha256sum <"$config" | cut -d' ' -f1)
resolved=$DISTRO_CACHE/kbuild/$release.toolchain
if [ -f "$resolved" ] && [ "$(sed -n 1p "$resolved")" = "$config_sha" ]; then
	read -r -a suites <<<"$(sed -n 2p "$resolved")"
	read -r -a pins <<<"$(sed -n 3p "$resolved")"
else
	# The suite that built it: the one that carries its headers. Backports
	# are built in their base suite.
	private_apt_update 1440
	suite=$(madison "linux-headers-$release" | awk -v v="$version" '$1 == v { print $2 }' | head -n1)
	[ -n "$suite" ] || suite=$(madison "linux-headers-$release" | awk '{ print $2 }' | head -n1)
	[ -n "$suite" ] || die "no suite of $PRIVATE_APT_SUITES carries linux-headers-$release" \
		"the archive dropped this kernel: upgrade to a kernel it carries, or see 'Another distribution' in the admin guide"
	base_suite=${suite%-backports}
	suites=("$base_suite")
	[ "$base_suite" = "$suite" ] || suites+=("$suite")

	# pin PACKAGE UPSTREAM: the Debian version of PACKAGE, in the suites the
	# kernel was built in, whose upstream version is UPSTREAM.
	pin() {
		local p=$1 up=$2 v s
		while read -r v s; do
			[[ " ${suites[*]} " == *" $s "* ]] || continue
			local u=${v#*:}
			u=${u%%[+-]*}
			[ "$u" = "$up" ] && { echo "$v"; return 0; }
		done < <(madison "$p" | sort -rV)
		return 1
	}
	{ rustc_deb=$(pin rustc "$rustc_upstream") && rust_src_deb=$(pin rust-src "$rustc_upstream"); } ||
		die "the kernel was built by $rustc_text, and ${suites[*]} no longer carries rustc $rustc_upstream (it has: $(madison rustc | awk '{ print $1 "/" $2 }' | tr '\n' ' '))" \
			"a module for this kernel can only be built by that exact rustc: install the kernel the suite now carries (apt upgrade), then rebuild"
	bindgen_deb=$(pin bindgen "$bindgen_upstream") ||
		die "the kernel was built with $bindgen_text, which ${suites[*]} no longer carries" "upgrade to the kernel the suite now carries"
	madison "$cc_pkg" | awk '{ print $1 }' | grep -qxF "$cc_version" ||
		die "the kernel was built by $cc_text, and ${suites[*]} no longer carries $cc_pkg $cc_version" "upgrade to the kernel the suite now carries"
	pins=("rustc=$rustc_deb" "rust-src=$rust_src_deb" "bindgen=$bindgen_deb" "$cc_pkg=$cc_version")
	printf '%s\n%s\n%s\n' "$config_sha" "${suites[*]}" "${pins[*]}" >"$resolved"
fi
base_suite=${suites[0]}

# The isolated root with that toolchain. Kernels of one suite share it.
root_key=$( { echo "$ROOT_METHOD ${suites[*]}"; printf '%s\n' "${pins[@]}" "${ROOT_PACKAGES[@]}"; } | sha256sum | cut -c1-12)
root=$DISTRO_CACHE/roots/$base_suite-$root_key
exec 6>"$root.lock"
flock 6
if [ ! -f "$root/.rloop-complete" ]; then
	mirror=$(debian_mirror)
	progress "creating the $base_suite root with ${pins[*]} in $root (about a minute)"
	rm -rf "$root"
	sources=$(for s in "${suites[@]}"; do echo "deb $mirror $s main"; done)
	include=$(IFS=,; echo "${pins[*]},${ROOT_PACKAGES[*]}")
	mmdebstrap --quiet --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
		--include="$include" "$base_suite" "$root" - <<<"$sources" >"$DISTRO_CACHE/roots/mmdebstrap.log" 2>&1 ||
		{ tail -n 20 "$DISTRO_CACHE/roots/mmdebstrap.log" >&2; rm -rf "$root"
		  die "mmdebstrap of $base_suite with ${pins[*]} failed" "read the log above"; }
	mkdir -p "$root/src" "$root/out" "$root/rloop"
	touch "$root/.rloop-complete"
fi
exec 6>&-

# in_root SRC OUT MODULE_DIR CMD...: run CMD in the root, with the kernel
# source (read-only) at /src, the build tree at /out and the module at
# /rloop. A private mount namespace: the mounts end with the command.
in_root() {
	local src=$1 out=$2 mod=$3
	shift 3
	# shellcheck disable=SC2016 # the inner bash expands them
	unshare --mount --propagation private -- bash -c '
		r=$1 src=$2 out=$3 mod=$4; shift 4
		{ [ -z "$src" ] || { mount --bind "$src" "$r/src" && mount -o remount,bind,ro "$r/src"; }; } &&
		{ [ -z "$out" ] || mount --bind "$out" "$r/out"; } &&
		{ [ -z "$mod" ] || mount --bind "$mod" "$r/rloop"; } &&
		mount -t proc proc "$r/proc" &&
		exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
	' _ "$root" "$src" "$out" "$mod" "$@"
}

# The toolchain in the root must be the one the kernel names, to the letter.
# check_tool WANT_TEXT COMMAND...: COMMAND's first line must be WANT_TEXT.
check_tool() {
	local want_text=$1 got
	shift
	got=$(in_root "" "" "" "$@" 2>/dev/null | head -n1)
	[ "$got" = "$want_text" ] || die "the root's $1 says '$got', the kernel was built by '$want_text'" \
		"remove $root and rerun; if it persists, Debian rebuilt the toolchain under the same version"
}
check_tool "$rustc_text" rustc --version
check_tool "$bindgen_text" bindgen --version
check_tool "$cc_text" "$cc" --version

# The source the image was built from, and the prepared tree.
series=$(sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' <<<"$release")
src=$("$RLOOP_ROOT/scripts/kernel-source.sh" "$series" "$version")
kmake=(make ARCH=x86 "KERNELRELEASE=$release" "CROSS_COMPILE=$cross" "CC=$cc" "HOSTCC=$cc")
tree_key=$( { echo "$PREPARE_METHOD $root_key"; cat "$src/.rloop-unpacked"; sha256sum <"$config"; } | sha256sum | cut -c1-12)
tree=$DISTRO_CACHE/kbuild/$release-$tree_key
products=(rust/libkernel.rmeta rust/libcore.rmeta rust/libmacros.so scripts/target.json include/generated/rustc_cfg Module.symvers)

prepared() {
	[ -f "$tree/.rloop-complete" ] || return 1
	local f
	for f in "${products[@]}"; do [ -s "$tree/$f" ] || return 1; done
	cmp -s "$tree/Module.symvers" "$headers_dir/Module.symvers"
}

# crate_hashes FILE...: "CRATE HASH" of the v0-mangled Rust symbols named
# in FILEs (Cs<hash>_<length><crate>).
crate_hashes() {
	grep -aoh 'Cs[0-9A-Za-z]*_[0-9]\+[a-z_]\+' "$@" | sort -u |
		sed -n 's/^Cs\([0-9A-Za-z]*\)_[0-9]*\([a-z_]*\)$/\2 \1/p' | sort -u
}

if ! prepared; then
	progress "preparing the Rust metadata of $release in $tree (modules_prepare, about 2 minutes)"
	rm -rf "$tree"
	mkdir -p "$tree"
	cp "$config" "$tree/.config"
	in_root "$src" "$tree" "" "${kmake[@]}" -C /src O=/out -s olddefconfig >"$tree/prepare.log" 2>&1 ||
		{ tail -n 20 "$tree/prepare.log" >&2; die "olddefconfig failed (see $tree/prepare.log)"; }
	# The .config Kconfig gives back must be the kernel's own: a symbol
	# that differs means a tool in the root differs from Debian's build.
	changed=$(diff <(grep '^CONFIG_' "$config" | sort) <(grep '^CONFIG_' "$tree/.config" | sort) | grep '^[<>]' || true)
	[ -z "$changed" ] || progress "warning: Kconfig changed the kernel's .config in the root: ${changed//$'\n'/ }"
	start=$SECONDS
	in_root "$src" "$tree" "" "${kmake[@]}" -C /src O=/out -j"$(($(nproc) + 1))" modules_prepare >>"$tree/prepare.log" 2>&1 ||
		{ tail -n 30 "$tree/prepare.log" >&2; die "modules_prepare of $release failed (see $tree/prepare.log)"; }
	progress "prepared in $((SECONDS - start))s"
	# The kernel's own exports, and vmlinux for the module's BTF base.
	cp "$headers_dir/Module.symvers" "$tree/Module.symvers"
	[ ! -f "$headers_dir/vmlinux" ] || cp "$headers_dir/vmlinux" "$tree/vmlinux"
	# Every crate that both the kernel's exports and the rebuilt objects
	# name must carry the same hash.
	mismatch=$(join <(crate_hashes "$headers_dir/Module.symvers") <(crate_hashes "$tree"/rust/*.o) |
		awk '$2 != $3 { print $1 ": kernel " $2 ", rebuilt " $3 }')
	checked=$(join <(crate_hashes "$headers_dir/Module.symvers") <(crate_hashes "$tree"/rust/*.o) | awk '{ print $1 }' | tr '\n' ' ')
	[ -n "$checked" ] || die "no Rust crate hash to compare between the kernel's Module.symvers and $tree/rust"
	[ -z "$mismatch" ] || die "the rebuilt Rust crates differ from the kernel's: $mismatch" \
		"the crate hash depends on the rustc version and the crate's flags: Documentation/admin-guide/rloop.rst, 'Installing on Debian', says what to check"
	progress "crate hashes match the kernel's exports: $checked"
	date -u +%FT%TZ >"$tree/.rloop-complete"
	# Trees of this release under other keys are stale.
	for stale in "$DISTRO_CACHE/kbuild/$release"-*; do
		[ "$stale" = "$tree" ] || [ ! -d "$stale" ] || { log "removing stale $stale"; rm -rf "$stale"; }
	done
else
	log "reusing $tree"
fi

if [ ${#make_args[@]} -eq 0 ]; then
	echo "$tree"
	exit 0
fi
module_dir=$(realpath "${RLOOP_MODULE_DIR:-$RLOOP_ROOT}")
in_root "$src" "$tree" "$module_dir" "${kmake[@]}" -C /out M=/rloop "${make_args[@]}"
