# shellcheck shell=bash
# The rest of the loop ABI: LOOP_CHANGE_FD, the legacy LOOP_SET_STATUS and
# LOOP_GET_STATUS (struct loop_info), and 32-bit callers through the compat
# path (struct compat_loop_info), with loop.c's errno.

LOOPCTL="python3 $RLOOP_ROOT/tests/loopctl.py"

# ABI results, the same on any kernel: these may run on the release build
# (tests/run.sh -r).
# shellcheck disable=SC2034 # read by tests/run.sh
RLOOP_ANY_KERNEL=all

case_change_fd() {
	load_rloop
	mk_tmpfs
	head -c 1M /dev/urandom >"$TMPFS/a"
	head -c 1M /dev/urandom >"$TMPFS/b"
	head -c 2M /dev/urandom >"$TMPFS/big"
	assert_eq ENXIO "$($LOOPCTL change-fd /dev/loop0 "$TMPFS/b")" "CHANGE_FD unbound"
	losetup /dev/loop0 "$TMPFS/a"
	assert_eq EINVAL "$($LOOPCTL change-fd /dev/loop0 "$TMPFS/b")" "CHANGE_FD on a writable device"
	losetup -d /dev/loop0
	losetup -r /dev/loop0 "$TMPFS/a"
	exec 7</dev/loop0
	assert_eq EBADF "$($LOOPCTL change-fd-raw /dev/loop0 99)" "CHANGE_FD bad fd"
	assert_eq EINVAL "$($LOOPCTL change-fd /dev/loop0 "$TMPFS/big")" "CHANGE_FD other size"
	assert_eq EBADF "$($LOOPCTL change-fd /dev/loop0 /dev/loop0 --ro-file)" "CHANGE_FD to itself"
	assert_eq EINVAL "$($LOOPCTL change-fd /dev/loop0 /dev/null)" "CHANGE_FD to a char device"
	cmp "$TMPFS/a" /dev/loop0 || fail "device does not show the first file"
	assert_eq ok "$($LOOPCTL change-fd /dev/loop0 "$TMPFS/b" --ro-file)" "CHANGE_FD"
	assert_eq "$TMPFS/b" "$(cat /sys/block/loop0/loop/backing_file)" "backing file after CHANGE_FD"
	echo 3 >/proc/sys/vm/drop_caches
	cmp "$TMPFS/b" <(dd if=/dev/loop0 bs=64k iflag=direct status=none) ||
		fail "device does not show the new file"
	assert_eq 1 "$(cat /sys/block/loop0/ro)" "still read-only"
	exec 7<&-
	losetup -d /dev/loop0
}

# LOOP_CHANGE_FD issued on a partition's node, to a chain that leads back
# to the device: loop.c compares device numbers only, and the partition's
# differs from its disk's, so it closes a cycle (and I/O then goes round
# it). rloop compares devices. With max_part=15 the partition's number is
# of the loop major (7:1); with none given, it is an extended one (259:N),
# which loop.c does not follow at all.
case_change_fd_cycle_through_partition() {
	local params p1
	for params in max_part=15 ""; do
		# shellcheck disable=SC2086 # none or one word
		load_rloop $params
		# Made again each time: unload_rloop unmounts the case's tmpfs.
		mk_tmpfs
		truncate -s 4M "$TMPFS/p"
		printf 'label: dos\n,2M\n' | sfdisk -q "$TMPFS/p" >/dev/null
		losetup -r -P /dev/loop0 "$TMPFS/p"
		settle
		[ -b /dev/loop0p1 ] || fail "no partition node (${params:-no parameter})"
		p1=$(stat -c %t:%T /dev/loop0p1)
		losetup -r /dev/loop1 /dev/loop0
		losetup -r /dev/loop2 /dev/loop0p1
		exec 7</dev/loop0p1
		assert_eq EBADF "$($LOOPCTL change-fd /dev/loop0p1 /dev/loop1 --ro-file)" \
			"CHANGE_FD on a partition ($p1) to a device stacked on its disk"
		assert_eq EBADF "$($LOOPCTL change-fd /dev/loop0p1 /dev/loop0 --ro-file)" \
			"CHANGE_FD on a partition ($p1) to its own disk"
		assert_eq EBADF "$($LOOPCTL change-fd /dev/loop0 /dev/loop2 --ro-file)" \
			"CHANGE_FD to a device stacked on a partition ($p1)"
		assert_eq "$TMPFS/p" "$(cat /sys/block/loop0/loop/backing_file)" "backing file kept"
		exec 7<&-
		cmp <(head -c 4M "$TMPFS/p") /dev/loop1 || fail "the stacked device no longer shows the file"
		unload_rloop
	done
}

case_legacy_status_ioctls() {
	load_rloop
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	assert_eq ENXIO "$($LOOPCTL get-status-old /dev/loop0)" "GET_STATUS unbound"
	assert_eq ENXIO "$($LOOPCTL set-status-old /dev/loop0)" "SET_STATUS unbound"
	losetup -o 1024 /dev/loop0 "$TMPFS/f"
	exec 7</dev/loop0
	assert_match '^number=0 offset=1024 flags=0 ' "$($LOOPCTL get-status-old /dev/loop0)" "GET_STATUS"
	assert_eq "$(stat -c %i "$TMPFS/f")" \
		"$($LOOPCTL get-status-old /dev/loop0 | sed 's/.*inode=\([0-9]*\).*/\1/')" "GET_STATUS inode"
	# SET_STATUS: the size limit becomes 0, AUTOCLEAR can be set.
	assert_eq ok "$($LOOPCTL set-status-old /dev/loop0 --offset 4096 --flags 4)" "SET_STATUS"
	assert_eq 4096 "$(cat /sys/block/loop0/loop/offset)" "offset from SET_STATUS"
	assert_eq 1 "$(cat /sys/block/loop0/loop/autoclear)" "autoclear from SET_STATUS"
	assert_eq EOVERFLOW "$($LOOPCTL set-status-old /dev/loop0 --offset -1)" "negative offset"
	# loop_info64_from_old() copies no encryption field: loop.c accepts it.
	assert_eq ok "$($LOOPCTL set-status-old /dev/loop0 --offset 4096 --flags 4 --encrypt-type 1)" \
		"legacy SET_STATUS ignores lo_encrypt_type"
	# GET_STATUS cannot report an offset beyond INT_MAX: EOVERFLOW.
	truncate -s 3G "$TMPFS/f"
	assert_eq ok "$($LOOPCTL set-status /dev/loop0 --offset $((1 << 31)) --flags 4)" "big offset"
	assert_eq EOVERFLOW "$($LOOPCTL get-status-old /dev/loop0)" "GET_STATUS overflow"
	assert_match "offset=$((1 << 31)) " "$($LOOPCTL get-status /dev/loop0)" "GET_STATUS64 big offset"
	# LOOPCTL is a command line, program and script: split on purpose.
	# shellcheck disable=SC2086
	nocap_loopctl() { setpriv --bounding-set -sys_admin --inh-caps -sys_admin $LOOPCTL "$@"; }
	assert_eq EPERM "$(nocap_loopctl set-status-old /dev/loop0 --ro-dev)" "SET_STATUS perm"
	exec 7<&-
}

case_compat_ioctls_from_32_bit() {
	local bin=$COMPAT32
	[ -x "$bin" ] || fail "$bin is missing: make test-vm builds it (gcc-multilib)"
	file "$bin" | grep -q '32-bit' || fail "not a 32-bit program"
	load_rloop
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	assert_eq ENXIO "$("$bin" /dev/loop0 get-status)" "compat GET_STATUS unbound"
	losetup -o 512 /dev/loop0 "$TMPFS/f"
	exec 7</dev/loop0
	assert_match '^ok number=0 offset=512 flags=0 ' "$("$bin" /dev/loop0 get-status)" "compat GET_STATUS"
	assert_match '^ok number=0 offset=512 ' "$("$bin" /dev/loop0 get-status64)" "compat GET_STATUS64"
	assert_eq ok "$("$bin" /dev/loop0 set-status 2048 4)" "compat SET_STATUS"
	assert_eq 2048 "$(cat /sys/block/loop0/loop/offset)" "offset from compat SET_STATUS"
	assert_eq 1 "$(cat /sys/block/loop0/loop/autoclear)" "autoclear from compat SET_STATUS"
	# loop.c's compat SET_STATUS skips the permission check of the native
	# call; rloop keeps that quirk, so 32-bit tools behave the same.
	assert_eq ok "$(RO=1 setpriv --bounding-set -sys_admin --inh-caps -sys_admin "$bin" /dev/loop0 set-status 2048 4)" \
		"compat SET_STATUS without write access"
	# Unknown commands from 32-bit callers: ENOIOCTLCMD, seen as ENOTTY.
	assert_eq ENOTTY "$("$bin" /dev/loop0 raw 0x4CFF)" "compat unknown ioctl"
	exec 7<&-
	losetup -d /dev/loop0 2>/dev/null || true
}
