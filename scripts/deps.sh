#!/usr/bin/env bash
# Install the host dependencies: Debian packages, bindgen-cli and virtme-ng.
# Idempotent: every step is skipped when already done.
# `deps.sh bench` also installs what `make bench` needs on the host (the
# chart's matplotlib); perf and fio are among the base packages' tools.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DEB_PACKAGES=(
	rustc-web rust-web-src libclang-19-dev clang-19 lld-19 llvm-19
	qemu-system-x86 flex bison bc libelf-dev libssl-dev cpio
	e2fsprogs xfsprogs fio util-linux kmod python3-venv pahole
	busybox-static jq udev rust-web-clippy strace dkms gcc-multilib
	fdisk dmsetup file mmdebstrap shellcheck python3-pyflakes
)
BENCH_DEB_PACKAGES=(python3-matplotlib linux-perf)
if [ "${1:-}" = bench ]; then
	DEB_PACKAGES+=("${BENCH_DEB_PACKAGES[@]}")
fi

RLOOP_STEP=deps/debian
missing=()
for p in "${DEB_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -q >/dev/null ||
		die "apt-get update failed" "check the system's apt sources and network access to the Debian mirror"
	# One retry after finishing interrupted configuration: a package's
	# post-install script can fail on a machine without systemd.
	as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		{ as_root dpkg --configure -a >/dev/null 2>&1 || true
		  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
		die "could not install: ${missing[*]}" "run 'apt-get install ${missing[*]}' by hand and read its error"
else
	log "Debian packages present"
fi

RLOOP_STEP=deps/bindgen
if [ -x "$BINDGEN" ] && "$BINDGEN" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
	log "bindgen $BINDGEN_VERSION present"
else
	command -v cargo >/dev/null || die "cargo not found" "install a Rust toolchain with cargo (rustup or Debian's cargo-web)"
	log "cargo install bindgen-cli $BINDGEN_VERSION (a few minutes)"
	cargo install --locked --quiet --root "$RLOOP_CACHE/cargo" \
		bindgen-cli --version "$BINDGEN_VERSION" ||
		die "cargo install bindgen-cli failed" "check access to crates.io, then rerun"
fi

RLOOP_STEP=deps/virtme-ng
# Capture first: `grep -q` closing the pipe early would fail pip under pipefail.
vng_info=$("$VENV/bin/pip" show virtme-ng 2>/dev/null || true)
if [ -x "$VENV/bin/vng" ] && grep -qx "Version: $VIRTME_NG_VERSION" <<<"$vng_info"; then
	log "virtme-ng $VIRTME_NG_VERSION present"
else
	log "creating venv with virtme-ng $VIRTME_NG_VERSION"
	mkdir -p "$RLOOP_CACHE"
	python3 -m venv "$VENV" || die "python3 -m venv failed" "install python3-venv"
	"$VENV/bin/pip" install -q "virtme-ng==$VIRTME_NG_VERSION" ||
		die "pip install virtme-ng failed" "check access to PyPI, then rerun"
fi
