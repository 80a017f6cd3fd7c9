#!/usr/bin/env bash
# Host test: `dkms add` and `dkms build` of this tree against the test
# kernel's build tree, then `dkms remove`. Needs root (DKMS writes under
# /var/lib/dkms and /usr/src).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=test-dkms
command -v dkms >/dev/null || die "dkms not found" "install Debian's dkms (make deps)"
KDIR=${KDIR:-$("$RLOOP_ROOT/scripts/kernel-build.sh" test)}
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
(cd "$RLOOP_ROOT" && git ls-files -z -co --exclude-standard 2>/dev/null || find . -path ./.git -prune -o -type f -print0) |
	(cd "$RLOOP_ROOT" && xargs -0 cp --parents -t "$tree/rloop-$version")

progress "dkms add and build rloop/$version for $krel against $KDIR"
as_root dkms add -m rloop -v "$version" --sourcetree "$tree" >/dev/null
start=$SECONDS
if ! as_root dkms build -m rloop -v "$version" -k "$krel" --kernelsourcedir "$KDIR"; then
	cat "/var/lib/dkms/rloop/$version/build/make.log" 2>/dev/null | tail -n 30 >&2 || true
	die "dkms build failed" "read the make.log above"
fi
ko=$(find "/var/lib/dkms/rloop/$version/$krel" -name 'rloop.ko*' | head -n1)
[ -n "$ko" ] || die "dkms build produced no rloop.ko"
modinfo "$ko" | grep -q '^name: *rloop$' || die "$ko is not the rloop module"
progress "dkms built $ko in $((SECONDS - start))s"
