#!/usr/bin/env bash
# Fetch and unpack one of Debian's linux-source-X.Y packages into the cache.
#
#   kernel-source.sh [--cached] [SERIES [VERSION]]
#
# SERIES defaults to the test kernel's ($KERNEL_SERIES), VERSION to
# $KERNEL_PREFERRED for it and to the newest in the private lists
# otherwise. A distribution kernel asks for the exact Debian version its
# binary was built from. Uses a private apt configuration: the system's
# apt sources stay untouched. Prints the path of the unpacked tree.
# --cached: only a tree already unpacked; exit status 1, silently, and no
# download when there is none.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=kernel-source
cached=
[ "${1:-}" != --cached ] || { cached=1; shift; }

series=${1:-$KERNEL_SERIES}
want=${2:-}
SRC_BASE=$RLOOP_CACHE/src

# Reuse an unpacked tree of that series (and version, when given). The
# stamp names both; the test kernel's builds record the tree's path, so a
# tree never moves.
for stamp in "$SRC_BASE"/linux-source-*/.rloop-unpacked; do
	[ -e "$stamp" ] || continue
	read -r pkg ver <"$stamp"
	[ "$pkg" = "linux-source-$series" ] || continue
	if [ -n "$want" ]; then
		[ "$ver" = "$want" ] || continue
	elif [ "$series" = "$KERNEL_SERIES" ] && [ "$ver" != "$KERNEL_PREFERRED" ]; then
		continue
	fi
	tree=$(dirname "$stamp")
	log "using $pkg $ver at $tree"
	echo "$tree"
	exit 0
done
[ -z "$cached" ] || exit 1
mkdir -p "$SRC_BASE"

private_apt_update 60

versions=$(apt-cache "${APT_OPTS[@]}" madison "linux-source-$series" 2>/dev/null |
	awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -u -V -r)
[ -n "$versions" ] || die "no linux-source-$series package in $PRIVATE_APT_SUITES" \
	"check that the mirror carries those suites, or pass KDIR=/path to a prepared tree"
if [ -n "$want" ]; then
	grep -qxF "$want" <<<"$versions" || die "linux-source-$series $want is not in the archive (it has: ${versions//$'\n'/ })" \
		"the archive dropped that version: upgrade to a kernel it still carries"
	version=$want
elif [ "$series" = "$KERNEL_SERIES" ] && grep -qxF "$KERNEL_PREFERRED" <<<"$versions"; then
	version=$KERNEL_PREFERRED
else
	version=$(head -n1 <<<"$versions")
	[ "$series" != "$KERNEL_SERIES" ] || log "preferred $KERNEL_PREFERRED not found; using $version"
fi

deb_dir=$RLOOP_CACHE/debs
mkdir -p "$deb_dir"
deb_name=linux-source-${series}_${version//:/%3a}_all.deb
if [ ! -s "$deb_dir/$deb_name" ]; then
	log "downloading linux-source-$series $version (about 160 MB)"
	# To stderr: stdout carries only the tree's path, for callers.
	(cd "$deb_dir" && apt-get "${APT_OPTS[@]}" download -q "linux-source-$series=$version" >&2) ||
		die "apt-get download linux-source-$series=$version failed" "check access to the Debian mirror"
fi

work=$SRC_BASE/unpack.$$
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
log "unpacking $deb_name"
dpkg-deb --fsys-tarfile "$deb_dir/$deb_name" | tar -x -C "$work" --wildcards './usr/src/linux-source-*.tar.*'
tarball=$(ls "$work"/usr/src/linux-source-*.tar.*)
tar -x -C "$work" -f "$tarball"
name=$(basename "$tarball" | sed 's/\.tar\..*//')
# Another version of the series may sit at the plain name.
dest=$SRC_BASE/$name
[ ! -e "$dest/.rloop-unpacked" ] || dest=$SRC_BASE/$name-$version
rm -rf "$dest"
mv "$work/$name" "$dest"
echo "linux-source-$series $version" >"$dest/.rloop-unpacked"
log "kernel source ready at $dest"
echo "$dest"
