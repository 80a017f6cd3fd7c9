# shellcheck shell=bash
# rloop core, ioctls: the direct I/O decision (LOOP_SET_DIRECT_IO and
# configure), SET_STATUS64, and loop.c's errno for bad input.

LOOPCTL="python3 $RLOOP_ROOT/tests/loopctl.py"

# ioctl results and errno, the same on any kernel: these may run on the
# release build of the test kernel (tests/run.sh -r).
# shellcheck disable=SC2034 # read by tests/run.sh
RLOOP_ANY_KERNEL="case_set_direct_io_toggles_and_refuses
	case_ioctl_errno_matches_loop_c case_set_status_updates_offset_and_flags
	case_bad_input_errno case_dio_refusal_is_logged_once"

case_set_direct_io_toggles_and_refuses() {
	load_rloop
	mk_fs_on_brd xfs 4k
	truncate -s 32M "$FSDIR/img"
	losetup -b 4096 /dev/loop1 "$FSDIR/img"
	assert_eq 0 "$(cat /sys/block/loop1/loop/dio)" "dio off at bind"
	assert_eq ok "$($LOOPCTL set-dio /dev/loop1 1)" "LOOP_SET_DIRECT_IO on"
	assert_eq 1 "$(cat /sys/block/loop1/loop/dio)" "dio on"
	head -c 4M /dev/urandom >/tmp/pattern
	dd if=/tmp/pattern of=/dev/loop1 bs=1M oflag=direct status=none
	assert_eq ok "$($LOOPCTL set-dio /dev/loop1 0)" "LOOP_SET_DIRECT_IO off"
	assert_eq 0 "$(cat /sys/block/loop1/loop/dio)" "dio off"
	cmp -n $((4 << 20)) /tmp/pattern /dev/loop1 || fail "data lost across dio toggles"
	losetup -d /dev/loop1
	# 512-byte sectors on a 4096-aligned file system: direct I/O is
	# impossible, LOOP_SET_DIRECT_IO says EINVAL, configure drops it quietly.
	losetup -b 512 /dev/loop1 "$FSDIR/img"
	assert_eq EINVAL "$($LOOPCTL set-dio /dev/loop1 1)" "dio refused with 512-byte sectors"
	losetup -d /dev/loop1
	assert_eq ok "$($LOOPCTL configure /dev/loop1 "$FSDIR/img" --flags 16 --block-size 512)" "configure"
	assert_eq 0 "$(cat /sys/block/loop1/loop/dio)" "dio silently dropped"
	$LOOPCTL clr-fd /dev/loop1 >/dev/null
	# An unaligned offset also rules direct I/O out.
	assert_eq ok "$($LOOPCTL configure /dev/loop1 "$FSDIR/img" --flags 16 --offset 512)" "configure"
	assert_eq 0 "$(cat /sys/block/loop1/loop/dio)" "dio dropped for unaligned offset"
	assert_eq 512 "$(cat /sys/block/loop1/loop/offset)" "sysfs offset"
	$LOOPCTL clr-fd /dev/loop1 >/dev/null
	# An O_DIRECT backing fd turns direct I/O on by itself.
	assert_eq ok "$($LOOPCTL configure /dev/loop1 "$FSDIR/img" --odirect)" "configure O_DIRECT"
	assert_eq 1 "$(cat /sys/block/loop1/loop/dio)" "dio from O_DIRECT fd"
	$LOOPCTL clr-fd /dev/loop1 >/dev/null
	# Unbound: ENXIO.
	assert_eq ENXIO "$($LOOPCTL set-dio /dev/loop1 1)" "set-dio unbound"
	unload_rloop
}

# expect_batch: run loopctl batch commands from stdin, each line
# "EXPECTED-REGEX <tab> COMMAND", and compare every result.
expect_batch() {
	local expected=() cmds=() e c i results
	while IFS=$'\t' read -r e c; do
		[ -n "$e" ] || continue
		expected+=("$e")
		cmds+=("$c")
	done
	mapfile -t results < <(printf '%s\n' "${cmds[@]}" | $LOOPCTL batch)
	for i in "${!cmds[@]}"; do
		assert_match "^${expected[$i]}\$" "${results[$i]:-}" "${cmds[$i]}"
	done
	echo "${#cmds[@]} ioctl results as loop.c gives them"
}

case_ioctl_errno_matches_loop_c() {
	load_rloop
	# A udev probe of the loop12 that ctl-add makes would hold it open, and
	# the ctl-remove 12 after it would be EBUSY, in loop.c too: seen on the
	# release kernel, where the batch runs sooner after the add.
	pause_udev
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	local f=$TMPFS/f
	expect_batch <<-END
	ENXIO	get-status /dev/loop0
	ENXIO	clr-fd /dev/loop0
	ENXIO	set-status /dev/loop0
	ENXIO	set-capacity /dev/loop0
	ENXIO	set-dio /dev/loop0 1
	ENXIO	set-block-size /dev/loop0 4096
	EINVAL	get-status-null /dev/loop0
	EBADF	set-fd-raw /dev/loop0 999
	EINVAL	raw /dev/loop0 0x4CFF
	EINVAL	configure /dev/loop0 $f --flags 2
	EINVAL	configure /dev/loop0 $f --encrypt-type 1
	EINVAL	configure /dev/loop0 $f --encrypt-type 18
	EINVAL	configure /dev/loop0 $f --encrypt-type 7
	EINVAL	configure /dev/loop0 $f --key-size 33
	EOVERFLOW	configure /dev/loop0 $f --offset 9223372036854775808
	EOVERFLOW	configure /dev/loop0 $f --sizelimit 9223372036854775808
	EINVAL	configure /dev/loop0 $f --block-size 1000
	EINVAL	configure /dev/loop0 /proc/self/status
	EBADF	set-fd-self /dev/loop0
	ok	configure /dev/loop0 $f
	EBUSY	configure /dev/loop0 $f
	EBUSY	set-fd /dev/loop0 $f
	EINVAL	configure /dev/loop1 /dev/loop2
	EBADF	configure /dev/loop1 /dev/loop1
	ok	configure /dev/loop1 /dev/loop0
	EINVAL	set-status /dev/loop0 --encrypt-type 1
	EOVERFLOW	set-status /dev/loop0 --offset 9223372036854775808
	number=0 offset=0 sizelimit=0 flags=0 .*	get-status /dev/loop0
	EEXIST	ctl-add 0
	12	ctl-add 12
	2	ctl-get-free
	EBUSY	ctl-remove 0
	ENODEV	ctl-remove 9
	EINVAL	ctl-remove -1
	ok	ctl-remove 12
	ENODEV	ctl-remove 12
	ENOSYS	ctl-raw 0x4C8F
	END
	# The loop-on-loop chain: a device over a bound loop device works.
	[ -e /sys/block/loop1/loop ] || fail "loop1 over loop0 not bound"
	assert_eq /dev/loop0 "$(cat /sys/block/loop1/loop/backing_file)" "loop1 backing file"
	# lo_file_name keeps 63 bytes and a NUL; GET_STATUS64 reports the inode.
	local st
	st=$($LOOPCTL get-status /dev/loop0)
	assert_eq "name=${f:0:63}" "name=${st##* name=}" "status name"
	# shellcheck disable=SC2001 # a capture
	assert_eq "$(stat -c %i "$f")" "$(sed 's/.*inode=\([0-9]*\).*/\1/' <<<"$st")" "status inode"
	# Read-only opener without CAP_SYS_ADMIN: EPERM for the setters.
	# LOOPCTL is a command line, program and script: split on purpose.
	# shellcheck disable=SC2086
	nocap_loopctl() { setpriv --bounding-set -sys_admin --inh-caps -sys_admin $LOOPCTL "$@"; }
	assert_eq EPERM "$(nocap_loopctl set-status /dev/loop0 --ro-dev)" "SET_STATUS64 needs write or CAP_SYS_ADMIN"
	assert_eq EPERM "$(nocap_loopctl set-dio /dev/loop0 1 --ro-dev)" "SET_DIRECT_IO perm"
	assert_eq EPERM "$(nocap_loopctl set-capacity /dev/loop0 --ro-dev)" "SET_CAPACITY perm"
	assert_eq ok "$(nocap_loopctl set-status /dev/loop0)" "SET_STATUS64 from a write opener"
	assert_match ' name=$' "$($LOOPCTL get-status /dev/loop0)" "SET_STATUS64 replaces the name"
	[ ! -e /sys/block/loop12 ] || fail "loop12 still present"
	$LOOPCTL clr-fd /dev/loop1 >/dev/null
	$LOOPCTL clr-fd /dev/loop0 >/dev/null
}

case_set_status_updates_offset_and_flags() {
	load_rloop
	mk_tmpfs
	head -c 1M /dev/urandom >"$TMPFS/f"
	losetup /dev/loop0 "$TMPFS/f"
	# Held open: with AUTOCLEAR set, the last close would detach.
	exec 7</dev/loop0
	assert_eq ok "$($LOOPCTL set-status /dev/loop0 --offset 4096 --sizelimit 65536 --flags 4)" "SET_STATUS64"
	assert_eq 4096 "$(cat /sys/block/loop0/loop/offset)" "offset"
	assert_eq 65536 "$(cat /sys/block/loop0/loop/sizelimit)" "sizelimit"
	assert_eq 1 "$(cat /sys/block/loop0/loop/autoclear)" "autoclear set"
	assert_eq 65536 "$(blockdev --getsize64 /dev/loop0)" "size follows sizelimit"
	cmp -n 65536 <(dd if="$TMPFS/f" bs=4096 skip=1 status=none) /dev/loop0 ||
		fail "data at the new offset"
	assert_eq ok "$($LOOPCTL set-status /dev/loop0 --offset 4096 --sizelimit 65536)" "clear autoclear"
	assert_eq 0 "$(cat /sys/block/loop0/loop/autoclear)" "autoclear cleared"
	# PARTSCAN can be set through SET_STATUS64 but not cleared.
	assert_eq ok "$($LOOPCTL set-status /dev/loop0 --offset 4096 --sizelimit 65536 --flags 8)" "set partscan"
	assert_eq 1 "$(cat /sys/block/loop0/loop/partscan)" "partscan set"
	assert_eq ok "$($LOOPCTL set-status /dev/loop0 --offset 4096 --sizelimit 65536)" "try to clear partscan"
	assert_eq 1 "$(cat /sys/block/loop0/loop/partscan)" "partscan stays"
	exec 7<&-
	losetup -d /dev/loop0
	unload_rloop
}

case_bad_input_errno() {
	load_rloop
	mk_tmpfs
	mkdir "$TMPFS/dir"
	assert_eq EBADF "$($LOOPCTL set-fd-raw /dev/loop0 77)" "SET_FD closed fd"
	assert_eq EINVAL "$($LOOPCTL set-fd /dev/loop0 "$TMPFS/dir" --ro-file)" "SET_FD directory"
	assert_eq EINVAL "$($LOOPCTL set-fd /dev/loop0 /dev/null)" "SET_FD character device"
	assert_eq EBADF "$($LOOPCTL set-fd-self /dev/loop0)" "SET_FD loop itself"
	truncate -s 1M "$TMPFS/f"
	assert_eq EINVAL "$($LOOPCTL configure /dev/loop0 "$TMPFS/f" --flags 0x100)" "unknown flag"
	assert_eq EINVAL "$($LOOPCTL configure /dev/loop0 "$TMPFS/f" --block-size 3000)" "block size 3000"
	assert_eq ENXIO "$($LOOPCTL get-status /dev/loop0)" "GET_STATUS64 unbound"
	assert_eq EINVAL "$($LOOPCTL get-status-null /dev/loop0)" "GET_STATUS64 NULL"
	[ ! -e /sys/block/loop0/loop ] || fail "a refused configure left the device bound"
	assert_eq 512 "$(cat /sys/block/loop0/queue/logical_block_size)" "a refused configure changed the block size"
}

case_dio_refusal_is_logged_once() {
	load_rloop
	mk_fs_on_brd xfs 4k
	truncate -s 16M "$FSDIR/img"
	losetup -b 512 --direct-io=on /dev/loop1 "$FSDIR/img"
	assert_eq 0 "$(cat /sys/block/loop1/loop/dio)" "dio refused"
	assert_eq ok "$($LOOPCTL set-status /dev/loop1 --flags 0)" "SET_STATUS64 keeps it refused"
	local msgs
	msgs=$(case_dmesg | grep -c 'loop1: direct I/O refused: logical block size 512 is below the backing file.s direct I/O alignment 4096' || true)
	assert_eq 1 "$msgs" "refusal logged once"
	losetup -d /dev/loop1
}
