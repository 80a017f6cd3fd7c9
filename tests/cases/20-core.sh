# shellcheck shell=bash
# rloop core (issue 3): registration, binding with losetup, data through the
# device in buffered and direct mode, the direct I/O decision, ioctl errno,
# lazy detach, discard and write zeroes, short reads, module pinning.

LOOPCTL="python3 $RLOOP_ROOT/tests/loopctl.py"

case_registers_major_and_control_node() {
	load_rloop
	assert_match '^ *7 loop$' "$(grep -E '^ *7 ' /proc/devices)" "/proc/devices"
	assert_eq "10:237" "$(cat /sys/class/misc/loop-control/dev)" "loop-control dev"
	[ -c /dev/loop-control ] || fail "/dev/loop-control missing"
	local i
	for i in 0 1 2 3 4 5 6 7; do
		[ -b /dev/loop$i ] || fail "/dev/loop$i missing"
		assert_eq "7:$i" "$(cat /sys/block/loop$i/dev)" "loop$i dev"
		[ ! -e /sys/block/loop$i/loop ] || fail "loop$i has a loop/ group while unbound"
	done
	[ ! -e /sys/block/loop8 ] || fail "more than max_loop=8 devices"
	assert_eq none "$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/block/loop0/queue/scheduler)" "scheduler"
	assert_eq 1280 "$(cat /sys/block/loop0/queue/max_hw_sectors_kb)" "max_hw_sectors_kb"
	unload_rloop
}

case_module_parameters() {
	load_rloop max_loop=2 hw_queue_depth=16
	[ -b /dev/loop1 ] && [ ! -e /sys/block/loop2 ] || fail "max_loop=2 not honoured"
	assert_eq 16 "$(cat /sys/block/loop0/queue/nr_requests)" "hw_queue_depth"
	unload_rloop
	load_rloop max_part=3
	assert_eq 4 "$(cat /sys/block/loop1/range 2>/dev/null || echo 4)" "minors"
	assert_eq "7:4" "$(cat /sys/block/loop1/dev)" "first minor with max_part=3"
	unload_rloop
	if insmod "$RLOOP_KO" hw_queue_depth=0 2>/dev/null; then
		rmmod rloop
		fail "hw_queue_depth=0 accepted"
	fi
}

case_buffered_io_round_trip() {
	load_rloop
	mk_tmpfs
	truncate -s 32M "$TMPFS/backing"
	local dev
	dev=$(losetup -f --show "$TMPFS/backing")
	assert_eq /dev/loop0 "$dev" "first free device"
	assert_eq "$TMPFS/backing" "$(cat /sys/block/loop0/loop/backing_file)" "sysfs backing_file"
	assert_eq 0 "$(cat /sys/block/loop0/loop/offset)" "sysfs offset"
	assert_eq 0 "$(cat /sys/block/loop0/loop/sizelimit)" "sysfs sizelimit"
	assert_eq 0 "$(cat /sys/block/loop0/loop/dio)" "sysfs dio"
	assert_eq $((32 << 20)) "$(blockdev --getsize64 "$dev")" "size"
	head -c 8M /dev/urandom >"$TMPFS/pattern"
	dd if="$TMPFS/pattern" of="$dev" bs=64k seek=16 oflag=direct status=none
	cmp -n $((8 << 20)) "$TMPFS/pattern" <(dd if="$TMPFS/backing" bs=64k skip=16 status=none) ||
		fail "backing file does not hold what was written"
	echo 3 >/proc/sys/vm/drop_caches
	cmp -n $((8 << 20)) "$TMPFS/pattern" <(dd if="$dev" bs=1M skip=1 iflag=direct status=none) ||
		fail "device does not read back what was written"
	losetup -d "$dev"
	[ ! -e /sys/block/loop0/loop ] || fail "loop/ group still present after detach"
	assert_eq 0 "$(blockdev --getsize64 "$dev")" "size after detach"
	unload_rloop
}

case_direct_io_on_ext4() {
	load_rloop
	mk_fs_on_brd ext4 4k
	truncate -s 64M "$FSDIR/img"
	local dev
	dev=$(losetup -f --show --direct-io=on "$FSDIR/img")
	assert_eq /dev/loop1 "$dev" "first free device"
	assert_eq 1 "$(cat /sys/block/${dev#/dev/}/loop/dio)" "dio with --direct-io=on"
	assert_eq 4096 "$(blockdev --getss "$dev")" "block size defaults to the DIO alignment"
	assert_match "flags=.*" "$($LOOPCTL get-status "$dev")" "status"
	(($($LOOPCTL get-status "$dev" | sed 's/.*flags=\([0-9]*\).*/\1/') & 16)) ||
		fail "LO_FLAGS_DIRECT_IO not reported"
	# A filesystem on top: written through direct I/O, checked by fsck.
	mkfs.ext4 -q -F "$dev"
	mkdir -p /tmp/mnt
	mount "$dev" /tmp/mnt
	head -c 16M /dev/urandom >/tmp/mnt/data
	local sum
	sum=$(sha256sum </tmp/mnt/data)
	umount /tmp/mnt
	echo 3 >/proc/sys/vm/drop_caches
	fsck.ext4 -n -f "$dev" >/dev/null || fail "fsck found errors"
	mount -o ro "$dev" /tmp/mnt
	assert_eq "$sum" "$(sha256sum </tmp/mnt/data)" "file read back"
	umount /tmp/mnt
	losetup -d "$dev"
	unload_rloop
}

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

case_ioctl_errno_matches_loop_c() {
	load_rloop
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	assert_eq ENXIO "$($LOOPCTL get-status /dev/loop0)" "GET_STATUS64 unbound"
	assert_eq ENXIO "$($LOOPCTL clr-fd /dev/loop0)" "CLR_FD unbound"
	assert_eq ENXIO "$($LOOPCTL set-status /dev/loop0)" "SET_STATUS64 unbound"
	assert_eq ENXIO "$($LOOPCTL set-capacity /dev/loop0)" "SET_CAPACITY unbound"
	assert_eq EINVAL "$($LOOPCTL get-status-null /dev/loop0)" "GET_STATUS64 NULL"
	assert_eq EBADF "$($LOOPCTL set-fd-raw /dev/loop0 999)" "SET_FD bad fd"
	assert_eq EINVAL "$($LOOPCTL raw /dev/loop0 0x4CFF)" "unknown ioctl"
	assert_eq EINVAL "$($LOOPCTL configure /dev/loop0 "$TMPFS/f" --flags 2)" "unsettable flag"
	assert_eq EINVAL "$($LOOPCTL configure /dev/loop0 "$TMPFS/f" --encrypt-type 1)" "xor"
	assert_eq EINVAL "$($LOOPCTL configure /dev/loop0 "$TMPFS/f" --encrypt-type 18)" "cryptoapi"
	assert_eq EINVAL "$($LOOPCTL configure /dev/loop0 "$TMPFS/f" --key-size 33)" "key size"
	assert_eq EOVERFLOW "$($LOOPCTL configure /dev/loop0 "$TMPFS/f" --offset 9223372036854775808)" "offset"
	assert_eq EINVAL "$($LOOPCTL configure /dev/loop0 "$TMPFS/f" --block-size 1000)" "block size"
	assert_eq EINVAL "$($LOOPCTL configure /dev/loop0 /proc/self/status)" "not a regular file"
	assert_eq EBADF "$($LOOPCTL set-fd-self /dev/loop0)" "loop on itself"
	assert_eq ok "$($LOOPCTL configure /dev/loop0 "$TMPFS/f")" "configure"
	assert_eq EBUSY "$($LOOPCTL configure /dev/loop0 "$TMPFS/f")" "configure twice"
	assert_match '^number=0 offset=0 sizelimit=0 flags=0 ' "$($LOOPCTL get-status /dev/loop0)" "status"
	# lo_file_name keeps 63 bytes and a NUL.
	local name=$TMPFS/f
	assert_eq "name=${name:0:63}" "$($LOOPCTL get-status /dev/loop0 | sed 's/.* name=/name=/')" "status name"
	assert_eq "$(stat -c %i "$TMPFS/f")" "$($LOOPCTL get-status /dev/loop0 | sed 's/.*inode=\([0-9]*\).*/\1/')" "inode"
	assert_eq EINVAL "$($LOOPCTL configure /dev/loop1 /dev/loop2)" "chain to an unbound loop"
	assert_eq EBADF "$($LOOPCTL configure /dev/loop1 /dev/loop1)" "chain to itself"
	assert_eq ok "$($LOOPCTL configure /dev/loop1 /dev/loop0)" "loop on a bound loop"
	assert_eq EINVAL "$($LOOPCTL set-status /dev/loop0 --encrypt-type 1)" "SET_STATUS xor"
	# Read-only opener without CAP_SYS_ADMIN: EPERM; reads need no right.
	local nocap=(setpriv --bounding-set -sys_admin --inh-caps -sys_admin)
	assert_eq EPERM "$("${nocap[@]}" $LOOPCTL set-status /dev/loop0 --ro-dev)" "SET_STATUS64 needs write or CAP_SYS_ADMIN"
	assert_eq EPERM "$("${nocap[@]}" $LOOPCTL set-dio /dev/loop0 1 --ro-dev)" "SET_DIRECT_IO perm"
	assert_eq ok "$("${nocap[@]}" $LOOPCTL set-status /dev/loop0)" "SET_STATUS64 from a write opener"
	# SET_STATUS64 replaces the stored name, as in loop.c.
	assert_match ' name=$' "$($LOOPCTL get-status /dev/loop0)" "name after SET_STATUS64"
	# loop-control.
	assert_eq EEXIST "$($LOOPCTL ctl-add 0)" "CTL_ADD existing"
	assert_eq 12 "$($LOOPCTL ctl-add 12)" "CTL_ADD 12"
	[ -b /dev/loop12 ] || fail "/dev/loop12 not created"
	assert_eq 2 "$($LOOPCTL ctl-get-free)" "CTL_GET_FREE"
	assert_eq EBUSY "$($LOOPCTL ctl-remove 0)" "CTL_REMOVE bound"
	assert_eq ENODEV "$($LOOPCTL ctl-remove 9)" "CTL_REMOVE missing"
	assert_eq EINVAL "$($LOOPCTL ctl-remove -1)" "CTL_REMOVE negative"
	assert_eq ok "$($LOOPCTL ctl-remove 12)" "CTL_REMOVE 12"
	[ ! -e /sys/block/loop12 ] || fail "loop12 still present"
	assert_eq ENOSYS "$($LOOPCTL ctl-raw 0x4C8F)" "unknown control ioctl"
	$LOOPCTL clr-fd /dev/loop1 >/dev/null
	$LOOPCTL clr-fd /dev/loop0 >/dev/null
	unload_rloop
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

case_lazy_detach_on_last_close() {
	load_rloop
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	losetup /dev/loop0 "$TMPFS/f"
	exec 7</dev/loop0
	losetup -d /dev/loop0
	[ -e /sys/block/loop0/loop ] || fail "detached while still open"
	assert_eq 1 "$(cat /sys/block/loop0/loop/autoclear)" "CLR_FD sets autoclear"
	dd if=/dev/loop0 of=/dev/null bs=4k count=16 status=none || fail "I/O during pending detach"
	exec 7<&-
	udevadm settle 2>/dev/null || sleep 1
	[ ! -e /sys/block/loop0/loop ] || fail "not detached at last close"
	assert_eq ENXIO "$($LOOPCTL get-status /dev/loop0)" "unbound after last close"
	unload_rloop
}

case_module_pinned_while_bound() {
	load_rloop
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	losetup /dev/loop0 "$TMPFS/f"
	if rmmod rloop 2>/dev/null; then
		fail "rmmod succeeded with a bound device"
	fi
	losetup -d /dev/loop0
	rmmod rloop
}

case_discard_and_write_zeroes() {
	load_rloop
	mk_fs_on_brd ext4
	head -c 16M /dev/urandom >"$FSDIR/img"
	sync
	losetup /dev/loop0 "$FSDIR/img"
	local before after
	before=$(du -k "$FSDIR/img" | cut -f1)
	blkdiscard -o 0 -l 8M /dev/loop0
	sync
	after=$(du -k "$FSDIR/img" | cut -f1)
	[ "$after" -le $((before - 8000)) ] || fail "discard did not punch a hole ($before -> $after KiB)"
	cmp -n $((8 << 20)) /dev/zero /dev/loop0 || fail "discarded range does not read as zeroes"
	blkdiscard -z -o $((8 << 20)) -l 4M /dev/loop0
	cmp -n $((4 << 20)) /dev/zero <(dd if=/dev/loop0 bs=1M skip=8 count=4 status=none) ||
		fail "write zeroes did not zero"
	losetup -d /dev/loop0
	# tmpfs has no ZERO_RANGE: the first failure turns write zeroes off.
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	losetup /dev/loop1 "$TMPFS/f"
	blkdiscard -z -o 0 -l 1M /dev/loop1 2>/dev/null || true
	assert_eq 0 "$(cat /sys/block/loop1/queue/write_zeroes_max_bytes)" "write zeroes turned off"
	losetup -d /dev/loop1
	unload_rloop
}

case_short_read_past_truncated_end() {
	load_rloop
	mk_tmpfs
	head -c 1M /dev/urandom >"$TMPFS/f"
	losetup /dev/loop0 "$TMPFS/f"
	truncate -s 512K "$TMPFS/f"
	if dd if=/dev/loop0 of=/dev/null bs=4k skip=192 count=1 iflag=direct status=none 2>/dev/null; then
		fail "read past the truncated end succeeded"
	fi
	cmp -n $((512 << 10)) "$TMPFS/f" <(dd if=/dev/loop0 bs=64k count=8 iflag=direct status=none) ||
		fail "data before the truncated end"
	losetup -d /dev/loop0
	unload_rloop
}

case_fio_verify_both_modes() {
	command -v fio >/dev/null || fail "fio missing"
	load_rloop
	mk_fs_on_brd xfs
	truncate -s 64M "$FSDIR/a" "$FSDIR/b"
	losetup --direct-io=on /dev/loop0 "$FSDIR/a"
	losetup --direct-io=off /dev/loop1 "$FSDIR/b"
	assert_eq 1 "$(cat /sys/block/loop0/loop/dio)" "loop0 dio"
	assert_eq 0 "$(cat /sys/block/loop1/loop/dio)" "loop1 dio"
	local dev
	for dev in /dev/loop0 /dev/loop1; do
		fio --name=verify --filename="$dev" --ioengine=libaio --direct=1 --iodepth=16 \
			--rw=randwrite --bsrange=4k-256k --size=48M --verify=crc32c \
			--verify_fatal=1 --do_verify=1 --output="$RLOOP_CASE_DIR/fio-${dev##*/}.txt" ||
			fail "fio verify on $dev"
	done
	losetup -d /dev/loop0 /dev/loop1
	unload_rloop
}
