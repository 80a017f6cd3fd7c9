# shellcheck shell=bash
# Helpers for test cases. The runner sources this before each case, which
# runs with `set -euo pipefail`: any failing command fails the case.

RLOOP_ROOT=${RLOOP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# RLOOP_TEST_KO: the module built for the release kernel, in a guest that
# runs it (scripts/test-vm.sh).
RLOOP_KO=${RLOOP_KO:-${RLOOP_TEST_KO:-$RLOOP_ROOT/rloop.ko}}
# tests/compat32.c, built on the host by `make test-vm`: compiling it in
# the guest under TCG takes minutes.
COMPAT32=${COMPAT32:-$RLOOP_ROOT/results/bin/compat32}

# RLOOP_TEST_TIER: fast (make check, and the default) or full (make
# check-full). The fast form of a case asserts the same things on less
# data: fewer fio bytes, seconds or iterations (Documentation/testing.rst).
RLOOP_TEST_TIER=${RLOOP_TEST_TIER:-fast}
case $RLOOP_TEST_TIER in
fast | full) ;;
*) echo "RLOOP_TEST_TIER=$RLOOP_TEST_TIER: not fast or full" >&2; exit 2 ;;
esac

# by_tier FAST FULL: the value for this run's tier.
by_tier() {
	if [ "$RLOOP_TEST_TIER" = full ]; then echo "$2"; else echo "$1"; fi
}

# fail MESSAGE: fail the current case with a reason.
fail() {
	echo "reason: $*" >&2
	exit 1
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# assert_match REGEX TEXT WHAT
assert_match() {
	grep -qE -- "$1" <<<"$2" || fail "$3: '$2' does not match /$1/"
}

# expect_splat REGEX: this case provokes a kernel report on purpose. The
# runner then requires a report matching REGEX and ignores it, while any
# other report still fails the case.
expect_splat() {
	echo "$1" >>"$RLOOP_CASE_DIR/expected-splats"
}

# dmesg lines logged since this case began.
case_dmesg() {
	dmesg | awk -v m="rloop-test: begin $RLOOP_CASE_NAME" '
		substr($0, length($0) - length(m) + 1) == m { on = 1; next }
		on { print }'
}

module_loaded() { [ -d "/sys/module/$1" ]; }

# settle: let udev finish probing new devices, which holds them open.
settle() {
	udevadm settle --timeout=60 2>/dev/null || true
}

# pause_udev / resume_udev: stop udevd, so that nothing but the test opens
# the devices, and start it again (as virtme-ng's init does).
pause_udev() {
	local _
	# Until it no longer answers: an exit request can time out.
	for _ in 1 2 3; do
		udevadm control --exit 2>/dev/null || true
		udevadm control --ping --timeout=2 >/dev/null 2>&1 || break
	done
	on_exit resume_udev
}
resume_udev() {
	# A ping, not pgrep: pgrep's walk of /proc took seconds in the guest.
	udevadm control --ping --timeout=5 >/dev/null 2>&1 && return 0
	local udevd _
	for udevd in /usr/lib/systemd/systemd-udevd /lib/systemd/systemd-udevd; do
		[ -x "$udevd" ] && { "$udevd" --daemon >/dev/null 2>&1; break; }
	done
	# The daemon takes requests only some time after --daemon returns: a
	# pause_udev before then fails, and udevd goes on opening devices
	# (seen: it held a busy device's open_mutex in diff_killable_waits).
	for _ in $(seq 1 30); do
		udevadm control --ping --timeout=5 >/dev/null 2>&1 && return 0
		sleep 1
	done
}

load_rloop() {
	module_loaded rloop && fail "rloop is already loaded"
	# RLOOP_TEST_RLOOP_PARAMS: extra parameters for a whole run, such as
	# nowait=0 to put every case's I/O through the workers. The case's
	# own win: the kernel crate refuses a parameter given twice (EEXIST).
	local extra=() p
	for p in ${RLOOP_TEST_RLOOP_PARAMS:-}; do
		[[ " $* " == *" ${p%%=*}="* ]] || extra+=("$p")
	done
	insmod "$RLOOP_KO" "$@" "${extra[@]}"
	settle
}

unload_rloop() {
	release_case_devices
	settle
	if module_loaded rloop; then rmmod rloop; fi
}

# mk_tmpfs: a fresh tmpfs at $TMPFS, unmounted when the case ends.
mk_tmpfs() {
	TMPFS=$RLOOP_CASE_DIR/tmpfs
	mkdir -p "$TMPFS"
	mountpoint -q "$TMPFS" || mount -t tmpfs -o size=1G tmpfs "$TMPFS"
}

# mk_fs_on_brd FSTYPE [4k]: a fresh file system on a 512 MiB ram disk,
# mounted at $FSDIR. brd has 512-byte sectors, so files there have a
# direct I/O alignment of 512; with "4k", the file system sits on an rloop
# device with 4096-byte sectors over a file on tmpfs instead, and its files
# have a direct I/O alignment of 4096.
mk_fs_on_brd() {
	local fstype=$1 dev=/dev/ram0
	if [ ! -b /dev/ram0 ]; then
		modprobe brd rd_nr=1 rd_size=$((512 * 1024)) || fail "modprobe brd"
		on_exit "rmmod brd"
	fi
	if [ "${2:-}" = 4k ]; then
		mk_tmpfs
		truncate -s 512M "$TMPFS/fs4k.img"
		dev=$(losetup -f --show -b 4096 "$TMPFS/fs4k.img")
	fi
	FSDIR=$RLOOP_CASE_DIR/fs
	mkdir -p "$FSDIR"
	case $fstype in
	ext4) mkfs.ext4 -q -F "$dev" ;;
	xfs) mkfs.xfs -q -f "$dev" ;;
	*) fail "unknown fs $fstype" ;;
	esac
	mount "$dev" "$FSDIR"
}

# on_exit COMMAND: run COMMAND when the case ends, last registered first,
# after the case's mounts are gone and its loop devices detached.
RLOOP_EXIT_CMDS=()
trap 'rloop_case_cleanup' EXIT
on_exit() {
	RLOOP_EXIT_CMDS=("$1" "${RLOOP_EXIT_CMDS[@]}")
}
# release_case_devices: unmount what the case mounted, innermost first (a
# file system on a loop device over a file of another mount), and detach
# every loop device.
# Every case runs this at least twice: it forks only for what there is to
# undo (a fork and exec costs about 0.1 s in the guest).
release_case_devices() {
	local m mounts=() _
	while read -r _ m _; do
		[[ $m != "$RLOOP_CASE_DIR"* ]] || mounts=("$m" "${mounts[@]}")
	done </proc/mounts
	for m in "${mounts[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	# A device over another one holds it: up to three rounds.
	for _ in 1 2 3; do
		compgen -G '/sys/block/loop*/loop' >/dev/null || break
		losetup -D 2>/dev/null || true
	done
}
rloop_case_cleanup() {
	local rc=$? c
	release_case_devices
	for c in "${RLOOP_EXIT_CMDS[@]}"; do
		eval "$c" >/dev/null 2>&1 || true
	done
	return $rc
}

# kmemleak_begin: forget the leak reports made before this case.
kmemleak_begin() {
	[ -w /sys/kernel/debug/kmemleak ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
	[ -w /sys/kernel/debug/kmemleak ] || fail "kmemleak is not available"
	echo clear >/sys/kernel/debug/kmemleak
}

# kmemleak_check [SCANS]: unload rloop, then scan for leaks (one scan by
# default: a scan takes some 20 s under TCG); any object whose allocation
# backtrace goes through rloop fails the case. kmemleak only reports an
# object whose contents did not change since the previous scan, so a leak
# made in one case shows at the scan that ends it, or at the next case's
# scan. tests/final/ scans twice after the last case of each VM.
kmemleak_check() {
	unload_rloop
	local _
	for _ in $(seq 1 "${1:-1}"); do
		echo scan >/sys/kernel/debug/kmemleak
	done
	local leaks
	leaks=$(cat /sys/kernel/debug/kmemleak)
	if grep -q rloop <<<"$leaks"; then
		echo "$leaks" | head -n 60
		fail "kmemleak reports objects allocated by rloop"
	fi
	echo "kmemleak after rmmod: 0 objects from rloop ($(grep -c '^unreferenced object' <<<"$leaks" || true) unrelated)"
}
