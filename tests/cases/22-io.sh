# shellcheck shell=bash
# rloop core, data through the device: buffered and direct mode on tmpfs,
# ext4 and xfs, file systems on top, discard and write zeroes, short reads,
# fio verify.

LOOPCTL="python3 $RLOOP_ROOT/tests/loopctl.py"

# Data verified through the device, the same on any kernel: these may run
# on the release build of the test kernel (tests/run.sh -r).
# shellcheck disable=SC2034 # read by tests/run.sh
RLOOP_ANY_KERNEL="case_buffered_io_round_trip case_direct_io_on_ext4
	case_discard_and_write_zeroes case_short_read_past_truncated_end
	case_fio_verify_both_modes case_buffered_writes_make_multi_bio_requests
	case_data_integrity_matrix case_mount_o_loop_and_fs_in_both_modes
	case_fio_randrw_four_jobs_both_modes case_sixteen_stacked_dio_devices
	case_writes_ignore_the_submitters_file_size_limit
	case_partly_cached_reads_at_an_unaligned_offset"

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
	assert_eq 1 "$(cat "/sys/block/${dev#/dev/}/loop/dio")" "dio with --direct-io=on"
	assert_eq 1 "$(losetup -l -n -O DIO "$dev" | tr -d ' ')" "losetup -l DIO column"
	assert_eq 4096 "$(blockdev --getss "$dev")" "block size defaults to the DIO alignment"
	assert_match "flags=.*" "$($LOOPCTL get-status "$dev")" "status"
	(($($LOOPCTL get-status "$dev" | sed 's/.*flags=\([0-9]*\).*/\1/') & 16)) ||
		fail "LO_FLAGS_DIRECT_IO not reported"
	# A filesystem on top: written through direct I/O, checked by fsck.
	mkfs.ext4 -q -F "$dev"
	local mnt=$RLOOP_CASE_DIR/mnt
	mkdir -p "$mnt"
	mount "$dev" "$mnt"
	head -c 16M /dev/urandom >"$mnt/data"
	local sum
	sum=$(sha256sum <"$mnt/data")
	umount "$mnt"
	echo 3 >/proc/sys/vm/drop_caches
	fsck.ext4 -n -f "$dev" >/dev/null || fail "fsck found errors"
	mount -o ro "$dev" "$mnt"
	assert_eq "$sum" "$(sha256sum <"$mnt/data")" "file read back"
	umount "$mnt"
	losetup -d "$dev"
	unload_rloop
}

case_discard_and_write_zeroes() {
	load_rloop
	mk_fs_on_brd ext4
	head -c 16M /dev/urandom >"$FSDIR/img"
	sync
	losetup /dev/loop0 "$FSDIR/img"
	local before after size
	size=$(stat -c %s "$FSDIR/img")
	before=$(du -k "$FSDIR/img" | cut -f1)
	blkdiscard -o 0 -l 8M /dev/loop0
	sync
	after=$(du -k "$FSDIR/img" | cut -f1)
	[ "$after" -le $((before - 8000)) ] || fail "discard did not punch a hole ($before -> $after KiB)"
	cmp -n $((8 << 20)) /dev/zero /dev/loop0 || fail "discarded range does not read as zeroes"
	blkdiscard -z -o $((8 << 20)) -l 4M /dev/loop0
	cmp -n $((4 << 20)) /dev/zero <(dd if=/dev/loop0 bs=1M skip=8 count=4 status=none) ||
		fail "write zeroes did not zero"
	assert_eq "$size" "$(stat -c %s "$FSDIR/img")" "backing file size after discard and zeroing"
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
			--rw=randwrite --bsrange=4k-256k --size="$(by_tier 16M 48M)" --verify=crc32c \
			--verify_fatal=1 --do_verify=1 --output="$RLOOP_CASE_DIR/fio-${dev##*/}.txt" ||
			fail "fio verify on $dev"
	done
	losetup -d /dev/loop0 /dev/loop1
	unload_rloop
}

case_buffered_writes_make_multi_bio_requests() {
	load_rloop
	mk_fs_on_brd xfs
	truncate -s 64M "$FSDIR/img"
	losetup --direct-io=on /dev/loop0 "$FSDIR/img"
	# Buffered writes through the device's page cache are merged into
	# requests of several bios, which go through the per-request bvec table.
	fio --name=seq --filename=/dev/loop0 --rw=write --bs=4k --size="$(by_tier 8M 32M)" --ioengine=psync \
		--end_fsync=1 --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output="$RLOOP_CASE_DIR/fio-merged.txt" || fail "buffered sequential verify"
	local merges
	merges=$(awk '{print $6}' /sys/block/loop0/stat)
	[ "$merges" -gt 0 ] || fail "no write was merged, the multi-bio path went untested"
	echo "write merges: $merges"
}

# check_pattern_io DEV FILE OFFSET: patterned data written through DEV
# reads back from FILE at OFFSET, and data written into FILE reads back
# through DEV.
check_pattern_io() {
	local dev=$1 file=$2 offset=$3 what=$4
	head -c 2M /dev/urandom >"$RLOOP_CASE_DIR/p1"
	head -c 2M /dev/urandom >"$RLOOP_CASE_DIR/p2"
	dd if="$RLOOP_CASE_DIR/p1" of="$dev" bs=64k oflag=direct status=none
	cmp -n $((2 << 20)) "$RLOOP_CASE_DIR/p1" \
		<(dd if="$file" bs=4096 skip=$((offset / 4096)) count=512 status=none) ||
		fail "$what: device write not in the backing file"
	dd if="$RLOOP_CASE_DIR/p2" of="$file" bs=4096 seek=$(((offset >> 12) + 512)) \
		conv=notrunc,fsync status=none
	cmp -n $((2 << 20)) "$RLOOP_CASE_DIR/p2" \
		<(dd if="$dev" bs=64k skip=32 count=32 iflag=direct status=none) ||
		fail "$what: backing file write not read through the device"
}

case_data_integrity_matrix() {
	load_rloop
	mk_tmpfs
	mk_fs_on_brd ext4
	mkdir -p "$RLOOP_CASE_DIR/xfs"
	truncate -s 320M "$TMPFS/xfs.img"
	mkfs.xfs -q -f "$TMPFS/xfs.img"
	mount -o loop "$TMPFS/xfs.img" "$RLOOP_CASE_DIR/xfs"
	local combos=0 dir mode bs dev expect
	for dir in "$TMPFS" "$FSDIR" "$RLOOP_CASE_DIR/xfs"; do
		for mode in on off; do
			for bs in 512 4096; do
				truncate -s 16M "$dir/img"
				dev=$(losetup -f --show -o 4096 --sizelimit 8M -b "$bs" --direct-io="$mode" "$dir/img")
				expect=$([ "$mode" = on ] && echo 1 || echo 0)
				assert_eq "$expect" "$(cat "/sys/block/${dev#/dev/}/loop/dio")" "dio $mode on $dir bs $bs"
				assert_eq $((8 << 20)) "$(blockdev --getsize64 "$dev")" "size with sizelimit"
				assert_eq "$bs" "$(blockdev --getss "$dev")" "block size"
				check_pattern_io "$dev" "$dir/img" 4096 "$dir dio=$mode bs=$bs"
				losetup -d "$dev"
				rm -f "$dir/img"
				combos=$((combos + 1))
			done
		done
	done
	echo "$combos combinations verified"
}

case_mount_o_loop_and_fs_in_both_modes() {
	load_rloop
	mk_fs_on_brd xfs
	truncate -s 128M "$FSDIR/ext4.img"
	mkfs.ext4 -q -F "$FSDIR/ext4.img"
	mkdir -p "$RLOOP_CASE_DIR/mnt"
	# mount -o loop: libmount binds with LOOP_CONFIGURE and AUTOCLEAR.
	mount -o loop "$FSDIR/ext4.img" "$RLOOP_CASE_DIR/mnt"
	local dev
	dev=$(findmnt -n -o SOURCE "$RLOOP_CASE_DIR/mnt")
	assert_match '^/dev/loop[0-9]+$' "$dev" "mount source"
	assert_eq 1 "$(cat "/sys/block/${dev#/dev/}/loop/autoclear")" "autoclear from mount"
	cp -r "$RLOOP_ROOT/rust" "$RLOOP_CASE_DIR/mnt/"
	umount "$RLOOP_CASE_DIR/mnt"
	settle
	[ ! -e "/sys/block/${dev#/dev/}/loop" ] || fail "autoclear did not detach at umount"
	local mode sum
	for mode in on off; do
		dev=$(losetup -f --show --direct-io="$mode" "$FSDIR/ext4.img")
		mount "$dev" "$RLOOP_CASE_DIR/mnt"
		diff -r "$RLOOP_ROOT/rust" "$RLOOP_CASE_DIR/mnt/rust" >/dev/null || fail "copied tree differs (dio $mode)"
		head -c 8M /dev/urandom >"$RLOOP_CASE_DIR/mnt/data-$mode"
		sum=$(sha256sum <"$RLOOP_CASE_DIR/mnt/data-$mode")
		umount "$RLOOP_CASE_DIR/mnt"
		fsck.ext4 -n -f "$dev" >/dev/null 2>&1 || fail "fsck not clean (dio $mode)"
		mount -o ro "$dev" "$RLOOP_CASE_DIR/mnt"
		assert_eq "$sum" "$(sha256sum <"$RLOOP_CASE_DIR/mnt/data-$mode")" "file content (dio $mode)"
		umount "$RLOOP_CASE_DIR/mnt"
		losetup -d "$dev"
	done
}

case_fio_randrw_four_jobs_both_modes() {
	load_rloop
	mk_fs_on_brd xfs
	truncate -s 64M "$FSDIR/a" "$FSDIR/b"
	losetup --direct-io=on /dev/loop0 "$FSDIR/a"
	losetup --direct-io=off /dev/loop1 "$FSDIR/b"
	local dev
	for dev in /dev/loop0 /dev/loop1; do
		fio --name=randrw --filename="$dev" --ioengine=libaio --direct=1 --iodepth=32 \
			--numjobs=4 --size="$(by_tier 2M 4M)" --offset_increment=4M --rw=randrw --bs=4k \
			--verify=crc32c --verify_fatal=1 --do_verify=1 --group_reporting \
			--output="$RLOOP_CASE_DIR/fio-${dev##*/}.txt" || fail "fio randrw verify on $dev"
		grep -q 'err= 0' "$RLOOP_CASE_DIR/fio-${dev##*/}.txt" || fail "fio reported errors on $dev"
	done
}

# stacked_verify DRIVER PARAMS: sixteen direct-I/O devices stacked on a file
# of xfs on brd, fio verify through the top one under the stack tracer.
# Prints the deepest kernel stack and how many request ends it nests
# (blk_update_request() frames): brd ends each bio in its submitter, so
# without a bound every level's end would nest in the one below.
stacked_verify() {
	local driver=$1 params=$2 t=/sys/kernel/tracing prev i dev label
	label="$driver${params:+ $params}"
	if [ "$driver" = rloop ]; then
		# shellcheck disable=SC2086 # one word per parameter
		load_rloop $params
	else
		modprobe loop
	fi
	truncate -s 64M "$FSDIR/stacked"
	prev=$FSDIR/stacked
	for i in $(seq 1 16); do
		dev=$(losetup -f --show --direct-io=on "$prev") || fail "$label: level $i: losetup"
		assert_eq 1 "$(cat "/sys/block/${dev#/dev/}/loop/dio")" "$label: level $i dio"
		prev=$dev
	done
	echo 0 >$t/stack_max_size
	fio --name=stacked --filename="$prev" --ioengine=libaio --direct=1 --iodepth=8 \
		--rw=randwrite --bsrange=4k-64k --size="$(by_tier 2M 16M)" --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--output="$RLOOP_CASE_DIR/fio-$driver.txt" ||
		fail "$label: fio verify through 16 levels"
	local max nested
	max=$(cat $t/stack_max_size)
	nested=$(grep -c ' blk_update_request' $t/stack_trace || true)
	cp $t/stack_trace "$RLOOP_CASE_DIR/stack-${label// /-}.txt"
	echo "$label: deepest stack $max bytes, $nested request ends nested in it"
	release_case_devices
	mountpoint -q "$FSDIR" || mount /dev/ram0 "$FSDIR"
	rm -f "$FSDIR/stacked"
	# udev's probes of the detached devices end before the driver goes: a
	# node opened without it would load loop.c (block-major-7 autoload).
	settle
	if [ "$driver" = rloop ]; then
		rmmod rloop
		# At most 4 ends nest (io.rs, MAX_NESTED_COMPLETIONS), and the
		# deepest stack holds a few more frames of blk_update_request()
		# outside them (the file system's, the brd bio's).
		[ "$nested" -le 6 ] || fail "$label: $nested request ends nested on one stack"
	else
		rmmod loop
	fi
}

# A stack of sixteen loop devices in direct I/O mode works in every mode of
# the driver, and the ends of its requests do not nest on one kernel stack
# beyond the bound of Documentation/design/request-lifecycle.rst. loop.c,
# beside it, ends each request from a softirq. The stack tracer is on from
# boot (scripts/test-vm.sh), for blk_update_request() and
# submit_bio_noacct() only: it records the deepest stack at either, which
# is where a stack of devices nests.
case_sixteen_stacked_dio_devices() {
	command -v fio >/dev/null || fail "fio missing"
	local t=/sys/kernel/tracing params
	mountpoint -q $t || mount -t tracefs none $t
	[ "$(cat /proc/sys/kernel/stack_tracer_enabled 2>/dev/null)" = 1 ] ||
		fail "the stack tracer is off: boot with stacktrace stacktrace_filter=blk_update_request,submit_bio_noacct"
	mk_fs_on_brd xfs
	for params in "" "nowait=0" "nr_hw_queues=0" "nowait=0 nr_hw_queues=0"; do
		stacked_verify rloop "$params"
	done
	RLOOP_ALLOW_C_LOOP=1 stacked_verify loop ""
}

# A write is the device's, not the task's that submits it: loop.c's worker
# has no file size limit, and rloop's submitting task, which writes to the
# backing file itself when that does not block, must not apply its own.
# Under `ulimit -f`, a write past the limit would fail with EFBIG and send
# dd SIGXFSZ.
case_writes_ignore_the_submitters_file_size_limit() {
	load_rloop
	mk_fs_on_brd xfs
	truncate -s 32M "$FSDIR/img"
	local data=$RLOOP_CASE_DIR/data dev mode rc
	head -c 64K /dev/urandom >"$data"
	for mode in on off; do
		dev=$(losetup -f --show --direct-io=$mode "$FSDIR/img")
		# 16 MiB into the file, with a limit of 1 MiB (ulimit -f: KiB).
		rc=0
		(ulimit -f 1024 && exec dd if="$data" of="$dev" bs=64k seek=256 \
			oflag=direct conv=notrunc status=none) || rc=$?
		assert_eq 0 "$rc" "dio=$mode: dd under ulimit -f 1024, exit status"
		cmp "$data" <(dd if="$FSDIR/img" bs=64k skip=256 count=1 status=none) ||
			fail "dio=$mode: the write is not in the backing file"
		losetup -d "$dev"
	done
	unload_rloop
}

# A buffered device at an offset off a sector boundary, over a file of
# which every other page is cached: a read from the page cache without
# blocking stops at the first page not cached, 3,996 bytes (not whole
# sectors) into a request. The sectors it did read must count, and the
# rest be read from where they end, not shifted by the partial sector.
case_partly_cached_reads_at_an_unaligned_offset() {
	load_rloop
	mk_fs_on_brd xfs
	head -c 8M /dev/urandom >"$FSDIR/img"
	local dev
	dev=$(losetup -f --show -o 100 --direct-io=off "$FSDIR/img")
	assert_eq 16383 "$(blockdev --getsz "$dev")" "sectors of (8 MiB - 100)"
	# Read before the cache is dropped: reading the file beside the device
	# would cache the pages the device must find missing.
	dd if="$FSDIR/img" of="$RLOOP_CASE_DIR/expected" bs=64k skip=100 count=$((6 << 20)) \
		iflag=skip_bytes,count_bytes status=none
	sync
	echo 3 >/proc/sys/vm/drop_caches
	python3 - "$FSDIR/img" <<-'PY'
		import os, sys
		fd = os.open(sys.argv[1], os.O_RDONLY)
		# No readahead: only the pages read are cached.
		os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
		for page in range(0, 2048, 2):
		    os.pread(fd, 4096, page * 4096)
	PY
	cmp "$RLOOP_CASE_DIR/expected" <(dd if="$dev" bs=64k count=96 iflag=direct status=none) ||
		fail "data read through the device differs from the file's"
	losetup -d "$dev"
	unload_rloop
}
