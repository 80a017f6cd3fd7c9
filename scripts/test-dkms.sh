#!/usr/bin/env bash
# Host test: `dkms add` and `dkms build` of this tree against the test
# kernel's build tree, and against a Debian kernel's headers as the
# linux-headers package installs them (RLOOP_DKMS_DISTRO, default
# debian:sid; "none" skips it), then `dkms remove`. For the second, the
# build goes through scripts/distro.sh as on a Debian machine. Needs root
# (DKMS writes under /var/lib/dkms and /usr/src).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=test-dkms
command -v dkms >/dev/null || die "dkms not found" "install Debian's dkms (make deps)"
KDIR=$(cached_kdir)
krel=$(make -s -C "$KDIR" kernelrelease)
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$RLOOP_ROOT/dkms.conf")
[ -n "$version" ] || die "no PACKAGE_VERSION in dkms.conf"

tree=$(mktemp -d)
cleanup() {
	as_root dkms remove -m rloop -v "$version" --all >/dev/null 2>&1 || true
	rm -rf "$tree"
}
trap cleanup EXIT
cleanup
tree=$(mktemp -d)
# The tracked sources only, as a release tarball would hold them.
mkdir -p "$tree/rloop-$version"
(cd "$RLOOP_ROOT" && { git ls-files -z -co --exclude-standard 2>/dev/null || find . -path ./.git -prune -o -type f -print0; }) |
	(cd "$RLOOP_ROOT" && xargs -0 cp --parents -t "$tree/rloop-$version")

progress "dkms add and build rloop/$version for $krel against $KDIR"
as_root dkms add -m rloop -v "$version" --sourcetree "$tree" >/dev/null
start=$SECONDS
if ! as_root dkms build -m rloop -v "$version" -k "$krel" --kernelsourcedir "$KDIR"; then
	tail -n 30 "/var/lib/dkms/rloop/$version/build/make.log" >&2 2>/dev/null || true
	die "dkms build failed" "read the make.log above"
fi
ko=$(find "/var/lib/dkms/rloop/$version/$krel" -name 'rloop.ko*' | head -n1)
[ -n "$ko" ] || die "dkms build produced no rloop.ko"
modinfo "$ko" | grep -q '^name: *rloop$' || die "$ko is not the rloop module"
progress "dkms built $ko in $((SECONDS - start))s"

distro=${RLOOP_DKMS_DISTRO:-debian:sid}
[ "$distro" != none ] || exit 0
# The headers packages unpacked as dpkg would install them: the arch
# package's scripts/ and tools/ point into linux-kbuild, its Makefile into
# the -common package.
release=$("$RLOOP_ROOT/scripts/distro.sh" --resolve "$distro")
headers=$RLOOP_CACHE/distro/headers-root/$release
if [ ! -f "$headers/.complete" ]; then
	private_apt_update 60
	hv=$(apt-cache "${APT_OPTS[@]}" show "linux-headers-$release" | sed -n 's/^Version: //p' | sort -V | tail -n1)
	mkdir -p "$tree/debs" "$headers"
	(cd "$tree/debs" && apt-get "${APT_OPTS[@]}" download -q "linux-headers-$release=$hv" \
		"linux-headers-${release%-amd64}-common=$hv" "linux-kbuild-${release%-amd64}=$hv" >&2) ||
		die "could not download the headers packages of $release"
	for deb in "$tree"/debs/*.deb; do dpkg-deb -x "$deb" "$headers"; done
	touch "$headers/.complete"
fi
hdir=$headers/usr/src/linux-headers-$release
progress "dkms build rloop/$version for Debian's $release against its headers package ($hdir)"
start=$SECONDS
if ! as_root dkms build -m rloop -v "$version" -k "$release" --kernelsourcedir "$hdir"; then
	tail -n 30 "/var/lib/dkms/rloop/$version/build/make.log" >&2 || true
	die "dkms build for $release failed" "read the make.log above"
fi
ko=$(find "/var/lib/dkms/rloop/$version/$release" -name 'rloop.ko*' | head -n1)
[ -n "$ko" ] || die "dkms build for $release produced no rloop.ko"
vermagic=$(modinfo -F vermagic "$ko")
[[ $vermagic == "$release "* ]] || die "dkms built $ko for '$vermagic', not $release"
progress "dkms built $ko for $release ($vermagic) in $((SECONDS - start))s"

# A kernel whose toolchain the archive no longer has: the build must stop
# before doing anything, and say which tool and version.
fake=$tree/headers-old-rustc
mkdir -p "$fake"
cp "$hdir/.config" "$hdir/Module.symvers" "$hdir/.kernelvariables" "$fake/"
sed -i 's/^CONFIG_RUSTC_VERSION_TEXT=.*/CONFIG_RUSTC_VERSION_TEXT="rustc 1.80.0 (051478957 2024-07-21)"/' "$fake/.config"
if out=$(KDIR=$fake "$RLOOP_ROOT/scripts/kmake.sh" modules 2>&1); then
	die "a kernel built by rustc 1.80.0 got a module: the toolchain check let it through"
fi
grep -q 'no longer carries rustc 1.80.0' <<<"$out" ||
	die "the refusal does not name the missing rustc: $out"
progress "a kernel built by a rustc the archive dropped is refused: $(grep -o 'the kernel was built by.*carries rustc 1.80.0' <<<"$out")"
