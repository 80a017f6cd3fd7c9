#!/usr/bin/env bash
# Fetch and unpack Debian's linux-source-7.2 into the cache.
# Uses a private apt configuration: the system's apt sources stay untouched.
# Prints the path of the unpacked source tree on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=kernel-source

SRC_BASE=$RLOOP_CACHE/src
APT_DIR=$RLOOP_CACHE/apt
mkdir -p "$SRC_BASE" "$APT_DIR"

# Reuse an unpacked tree when one is complete.
for stamp in "$SRC_BASE"/linux-source-*/.rloop-unpacked; do
	[ -e "$stamp" ] || continue
	tree=$(dirname "$stamp")
	log "using $(cat "$stamp") at $tree"
	echo "$tree"
	exit 0
done

# The Debian mirror the system already uses.
mirror=$(apt-get indextargets --format '$(URI)' 2>/dev/null |
	sed -n 's#^\(.*\)/dists/bookworm/main/.*#\1#p' | head -n1)
[ -n "$mirror" ] || mirror=$(apt-get indextargets --format '$(URI)' 2>/dev/null |
	sed -n 's#^\(.*\)/dists/[^/]*/main/.*#\1#p' | grep -v security | head -n1)
[ -n "$mirror" ] || die "no Debian mirror found in the system's apt configuration" \
	"configure a Debian mirror in /etc/apt/sources.list(.d), then rerun"

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/etc/preferences.d"
cat >"$APT_DIR/sources.list" <<SRC
deb [signed-by=$keyring] $mirror sid main
deb [signed-by=$keyring] $mirror trixie-backports main
SRC
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APT_DIR/sources.list"
	-o "Dir::Etc::SourceParts=-"
	-o "Dir::Etc::Preferences=/dev/null"
	-o "Dir::Etc::PreferencesParts=$APT_DIR/etc/preferences.d"
	-o "Dir::State::Lists=$APT_DIR/lists"
	-o "Dir::Cache=$APT_DIR/cache"
	-o "Dir::State::status=/dev/null"
	-o "APT::Get::List-Cleanup=0"
	-o "Debug::NoLocking=1"
)

log "updating the private package lists (sid, trixie-backports) from $mirror"
apt-get "${APT_OPTS[@]}" update -q >"$APT_DIR/update.log" 2>&1 ||
	die "apt-get update of the private lists failed (see $APT_DIR/update.log)" \
		"check access to the Debian mirror; the sid and trixie-backports suites are needed"

versions=$(apt-cache "${APT_OPTS[@]}" madison linux-source-$KERNEL_SERIES 2>/dev/null |
	awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -u -V -r)
[ -n "$versions" ] || die "no linux-source-$KERNEL_SERIES package in sid or trixie-backports" \
	"check that the mirror carries sid or trixie-backports, or pass KDIR=/path to a prepared 7.2 tree"
if grep -qx "$KERNEL_PREFERRED" <<<"$versions"; then
	version=$KERNEL_PREFERRED
else
	version=$(head -n1 <<<"$versions")
	log "preferred $KERNEL_PREFERRED not found; using $version"
fi

deb_dir=$RLOOP_CACHE/debs
mkdir -p "$deb_dir"
deb=$(ls "$deb_dir"/linux-source-${KERNEL_SERIES}_"${version//:/%3a}"_all.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
	log "downloading linux-source-$KERNEL_SERIES $version (about 150 MB)"
	# To stderr: stdout carries only the tree's path, for callers.
	(cd "$deb_dir" && apt-get "${APT_OPTS[@]}" download -q "linux-source-$KERNEL_SERIES=$version" >&2) ||
		die "apt-get download linux-source-$KERNEL_SERIES=$version failed" "check access to the Debian mirror"
	deb=$(ls "$deb_dir"/linux-source-${KERNEL_SERIES}_*_all.deb | head -n1)
fi

work=$SRC_BASE/unpack.$$
rm -rf "$work" && mkdir -p "$work"
log "unpacking $(basename "$deb")"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './usr/src/linux-source-*.tar.*'
tarball=$(ls "$work"/usr/src/linux-source-*.tar.*)
tar -x -C "$work" -f "$tarball"
name=$(basename "$tarball" | sed 's/\.tar\..*//')
rm -rf "${SRC_BASE:?}/$name"
mv "$work/$name" "$SRC_BASE/$name"
rm -rf "$work"
echo "linux-source-$KERNEL_SERIES $version" >"$SRC_BASE/$name/.rloop-unpacked"
log "kernel source ready at $SRC_BASE/$name"
echo "$SRC_BASE/$name"
