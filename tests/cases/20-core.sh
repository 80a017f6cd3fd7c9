# shellcheck shell=bash
# rloop core (issue 3): registration, binding with losetup, data through the
# device in buffered and direct mode, the direct I/O decision, ioctl errno,
# lazy detach, discard and write zeroes, short reads, module pinning.

LOOPCTL="python3 $RLOOP_ROOT/tests/loopctl.py"

# The cases that may run on the release build of the test kernel (tests/
# run.sh -r): registration, errno, data and performance-shaped ones. The
# others (detach under I/O, queue changes under I/O, module pinning, the
# leak check) test lifetimes and locking, and need KASAN, lockdep and
# kmemleak: they run on the debug kernel only.
RLOOP_ANY_KERNEL="case_registers_major_and_control_node case_module_parameters
	case_multiple_hw_queues case_nowait_fast_path case_buffered_io_round_trip
	case_direct_io_on_ext4 case_set_direct_io_toggles_and_refuses
	case_ioctl_errno_matches_loop_c case_set_status_updates_offset_and_flags
	case_discard_and_write_zeroes case_short_read_past_truncated_end
	case_fio_verify_both_modes case_buffered_writes_make_multi_bio_requests
	case_data_integrity_matrix case_mount_o_loop_and_fs_in_both_modes
	case_fio_randrw_four_jobs_both_modes case_bad_input_errno
	case_dio_refusal_is_logged_once"

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
	assert_eq 4 "$(cat /sys/block/loop1/range)" "minors"
	assert_eq "7:4" "$(cat /sys/block/loop1/dev)" "first minor with max_part=3"
	unload_rloop
	if insmod "$RLOOP_KO" hw_queue_depth=0 2>/dev/null; then
		rmmod rloop
		fail "hw_queue_depth=0 accepted"
	fi
}

# nr_hw_queues: one worker thread per hardware queue, requests from four
# CPUs spread over them, data verified, and a detach that waits for all.
case_multiple_hw_queues() {
	if insmod "$RLOOP_KO" nr_hw_queues=17 2>/dev/null; then
		rmmod rloop
		fail "nr_hw_queues=17 accepted"
	fi
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	load_rloop max_loop=2 nr_hw_queues=4
	# blk-mq allows no more queues than CPUs, and rloop no more workers.
	local n q used expected_queues="" expected_workers=loop0
	n=$(nproc)
	[ "$n" -le 4 ] || n=4
	[ "$n" -ge 2 ] || fail "the VM needs 2 CPUs for this case"
	for ((q = 0; q < n; q++)); do
		expected_queues+=" $q"
		[ $q -eq 0 ] || expected_workers+=" loop0.$q"
	done
	assert_eq "${expected_queues# }" "$(ls /sys/block/loop0/mq | sort -n | tr '\n' ' ' | sed 's/ $//')" "hardware queues"
	assert_eq "$expected_workers" \
		"$(ps -eo comm | grep -E '^loop0(\.[0-9]+)?$' | sort | tr '\n' ' ' | sed 's/ $//')" "worker threads"
	mk_fs_on_brd xfs
	truncate -s 64M "$FSDIR/a" "$FSDIR/b"
	losetup --direct-io=on /dev/loop0 "$FSDIR/a"
	losetup --direct-io=off /dev/loop1 "$FSDIR/b"
	# Context switches of each worker of a device: a worker that served
	# requests slept and woke for them.
	worker_switches() {
		local pid
		for pid in $(pgrep -x "$1(\.[0-9]+)?"); do
			printf '%s %s\n' "$(cat /proc/$pid/comm)" \
				"$(awk '/^voluntary_ctxt_switches/ { print $2 }' /proc/$pid/status)"
		done | sort
	}
	local dev name before after busy
	for dev in /dev/loop0 /dev/loop1; do
		name=${dev##*/}
		before=$(worker_switches "$name")
		# One job per vCPU at a time, so that requests come from both.
		fio --name=mq --filename="$dev" --ioengine=libaio --direct=1 --iodepth=16 \
			--numjobs=4 --size="$(by_tier 2M 8M)" --offset_increment=8M --rw=randrw --bs=4k \
			--cpus_allowed_policy=split --cpus_allowed=0-1 --verify_state_save=0 \
			--verify=crc32c --verify_fatal=1 --do_verify=1 --group_reporting \
			--output="$RLOOP_CASE_DIR/fio-$name.txt" || fail "fio verify on $dev"
		grep -q 'err= 0' "$RLOOP_CASE_DIR/fio-$name.txt" || fail "fio reported errors on $dev"
		after=$(worker_switches "$name")
		busy=$(join <(echo "$before") <(echo "$after") | awk '$3 - $2 >= 20 { n++ } END { print n + 0 }')
		echo "$name: workers' context switches before: $(echo $before), after: $(echo $after)"
		[ "$busy" -ge 2 ] || fail "$name: only $busy worker(s) served requests"
	done
	losetup -d /dev/loop0 /dev/loop1
	unload_rloop
}

# Hardware queues per device: loopN/loop/nr_hw_queues changes one device's
# queues and workers while fio writes and verifies data through it, bad
# values change nothing, the other device keeps its own, and the count
# stays with the device across a rebind.
case_hw_queues_per_device() {
	load_rloop max_loop=2
	mk_fs_on_brd xfs
	truncate -s 64M "$FSDIR/a" "$FSDIR/b"
	losetup --direct-io=on /dev/loop0 "$FSDIR/a"
	losetup --direct-io=on /dev/loop1 "$FSDIR/b"
	local attr=/sys/block/loop0/loop/nr_hw_queues n bad q
	n=$(nproc)
	[ "$n" -le 16 ] || n=16
	[ "$n" -ge 2 ] || fail "the VM needs 2 CPUs for this case"
	queues() { ls "/sys/block/$1/mq" | wc -l; }
	workers() { ps -eo comm | grep -E "^$1(\.[0-9]+)?\$" | sort | tr '\n' ' ' | sed 's/ $//'; }
	assert_eq 1 "$(cat $attr)" "nr_hw_queues by default"
	assert_eq "-rw-r--r--" "$(stat -c %A $attr)" "mode of nr_hw_queues"
	for bad in 17 4294967296 -1 abc "" "1 2" 0x; do
		if (echo "$bad" >"$attr") 2>/dev/null; then
			fail "nr_hw_queues accepted '$bad'"
		fi
	done
	assert_eq 1 "$(cat $attr)" "nr_hw_queues after bad writes"
	assert_eq 1 "$(queues loop0)" "queues after bad writes"

	# All of it written, then read back and checked, while the count
	# changes under the I/O.
	fio --name=resize --filename=/dev/loop0 --ioengine=libaio --direct=1 --iodepth=16 \
		--numjobs=2 --size="$(by_tier 4M 16M)" --offset_increment=16M --rw=randwrite --bs=4k \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--group_reporting --output="$RLOOP_CASE_DIR/fio.txt" &
	local fio_pid=$!
	for q in 0 1 2 1 0; do
		sleep 0.5
		echo "$q" >"$attr" || fail "writing $q to nr_hw_queues"
	done
	# Otherwise the changes raced nothing and the case proves nothing.
	kill -0 $fio_pid 2>/dev/null || fail "fio ended before the last queue change: make its run longer"
	wait $fio_pid || fail "fio verify across queue changes"
	grep -q 'err= 0' "$RLOOP_CASE_DIR/fio.txt" || fail "fio reported errors"
	# 0: one queue per CPU, each with a worker.
	assert_eq "$n" "$(cat $attr)" "nr_hw_queues after writing 0"
	assert_eq "$n" "$(queues loop0)" "loop0's queues after writing 0"
	local expected=loop0
	for ((q = 1; q < n; q++)); do expected+=" loop0.$q"; done
	assert_eq "$expected" "$(workers loop0)" "loop0's workers"
	assert_eq 1 "$(cat /sys/block/loop1/loop/nr_hw_queues)" "loop1's nr_hw_queues"
	assert_eq 1 "$(queues loop1)" "loop1's queues"
	assert_eq loop1 "$(workers loop1)" "loop1's workers"
	# Data written through one queue layout reads back through another.
	echo 1 >"$attr"
	dd if=/dev/urandom of="$RLOOP_CASE_DIR/pattern" bs=1M count=4 status=none
	dd if="$RLOOP_CASE_DIR/pattern" of=/dev/loop0 bs=1M oflag=direct status=none
	echo 2 >"$attr"
	cmp <(dd if=/dev/loop0 bs=1M count=4 iflag=direct status=none) "$RLOOP_CASE_DIR/pattern" ||
		fail "data changed across queue counts"
	assert_eq 2 "$(queues loop0)" "loop0's queues after writing 2"
	# The count belongs to the device, not to its binding.
	losetup -d /dev/loop0
	[ ! -e "$attr" ] || fail "nr_hw_queues present while unbound"
	losetup /dev/loop0 "$FSDIR/a"
	assert_eq 2 "$(cat $attr)" "nr_hw_queues after a rebind"
	cmp <(dd if=/dev/loop0 bs=1M count=4 status=none) "$RLOOP_CASE_DIR/pattern" ||
		fail "data after a rebind"
	losetup -d /dev/loop0 /dev/loop1
	unload_rloop
}

# CPU time of device $1's first worker thread so far, in ns.
worker_cpu_ns() {
	local pid
	pid=$(pgrep -x "$1")
	if [ -r "/proc/$pid/schedstat" ]; then
		cut -d' ' -f1 "/proc/$pid/schedstat"
	else
		awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", ($14 + $15) * 1e9 / hz }' "/proc/$pid/stat"
	fi
}

# nowait=1: data stays intact on every path of the NOWAIT mode. Direct
# reads, overwrites, writes into holes (which xfs refuses under NOWAIT),
# a buffered device, and ext4 on rloop on a file of ext4 on rloop, the
# set-up of loop.c's jbd2 BUG, in which the upper file system's plugged
# I/O enters the fast path (it found the PF_BLOCK_TS bug). How much of
# fio's I/O bypasses the worker is printed, not asserted.
case_nowait_fast_path() {
	if insmod "$RLOOP_KO" nowait=2 2>/dev/null; then
		rmmod rloop
		fail "nowait=2 accepted"
	fi
	load_rloop max_loop=4 nowait=1
	mk_fs_on_brd xfs
	dd if=/dev/zero of="$FSDIR/full" bs=1M count=64 oflag=direct status=none
	truncate -s 64M "$FSDIR/sparse"
	losetup --direct-io=on /dev/loop0 "$FSDIR/full"
	losetup --direct-io=on /dev/loop1 "$FSDIR/sparse"
	losetup --direct-io=off /dev/loop2 "$FSDIR/sparse"
	local before after ios=4096 buffered runs="" most=0 run cpu
	# The same reads on the direct device, three times (io_uring one SQE
	# at a time and in batches of 16, libaio in batches of 16), and on the
	# buffered one, whose worker does every read. The fast path must spare
	# the direct device's worker in every mode:
	# - a single I/O is issued inside submit_bio() (current->bio_list set),
	#   which the fast path sets aside;
	# - a batch is plugged (io_uring plugs more than 2 SQEs, io_submit more
	#   than 2 iocbs), and blk-mq calls queue_rq from the plug flush. fio
	#   reaps iodepth_batch_complete_max completions before it refills the
	#   queue, which defaults to iodepth_batch_complete_min (1): without the
	#   maximum, only the first fill would be a batch.
	read_job() {
		fio --name=r --filename="$1" --ioengine=io_uring --direct=1 --iodepth=16 \
			--rw=randread --bs=4k --number_ios=$ios --size=64M "${@:3}" \
			--output="$RLOOP_CASE_DIR/fio-$2.txt" || fail "fio randread ($2)"
	}
	losetup -d /dev/loop2
	losetup --direct-io=off /dev/loop2 "$FSDIR/full"
	for run in io_uring io_uring-batched libaio-batched; do
		before=$(worker_cpu_ns loop0)
		case $run in
		io_uring) read_job /dev/loop0 $run ;;
		io_uring-batched)
			read_job /dev/loop0 $run --iodepth_batch_submit=16 --iodepth_batch_complete_min=1 \
				--iodepth_batch_complete_max=16 ;;
		libaio-batched)
			read_job /dev/loop0 $run --ioengine=libaio --iodepth_batch_submit=16 \
				--iodepth_batch_complete_min=1 --iodepth_batch_complete_max=16 ;;
		esac
		after=$(worker_cpu_ns loop0)
		cpu=$((after - before))
		runs+=" $run=$((cpu / 1000))us"
		[ "$cpu" -le "$most" ] || most=$cpu
	done
	before=$(worker_cpu_ns loop2)
	read_job /dev/loop2 buffered
	after=$(worker_cpu_ns loop2)
	buffered=$((after - before))
	echo "$ios reads, worker CPU: direct device:$runs; buffered device: $((buffered / 1000))us"
	[ "$buffered" -ge 1000000 ] || fail "the buffered device's worker did not serve its reads"
	# CPU time, not speed: a worker that serves the reads spends about what
	# the buffered device's does; one that is bypassed, next to nothing.
	[ $((most * 4)) -lt "$buffered" ] || fail "direct reads went through the worker"
	# Overwrites verify, also on the fast path.
	fio --name=w --filename=/dev/loop0 --ioengine=io_uring --direct=1 --iodepth=16 \
		--rw=randwrite --bsrange=4k-128k --size="$(by_tier 8M 32M)" --verify=crc32c --verify_state_save=0 --verify_fatal=1 \
		--do_verify=1 --output="$RLOOP_CASE_DIR/fio-overwrite.txt" || fail "fio overwrite verify"
	# Writes into holes need allocation, which xfs refuses under NOWAIT: the
	# worker takes them over, and the data verifies.
	before=$(worker_cpu_ns loop1)
	fio --name=a --filename=/dev/loop1 --ioengine=io_uring --direct=1 --iodepth=16 \
		--rw=randwrite --bs=64k --size="$(by_tier 8M 32M)" --verify=crc32c --verify_state_save=0 --verify_fatal=1 \
		--do_verify=1 --output="$RLOOP_CASE_DIR/fio-alloc.txt" || fail "fio allocating verify"
	after=$(worker_cpu_ns loop1)
	echo "loop1, writes into holes: the worker ran $(((after - before) / 1000)) us"
	# A buffered device is served by its worker only.
	before=$(worker_cpu_ns loop2)
	fio --name=b --filename=/dev/loop2 --ioengine=io_uring --direct=1 --iodepth=16 \
		--iodepth_batch_submit=16 --iodepth_batch_complete_min=1 \
		--rw=randread --bs=4k --number_ios=1024 --size=64M \
		--output="$RLOOP_CASE_DIR/fio-buffered.txt" || fail "fio buffered"
	after=$(worker_cpu_ns loop2)
	echo "loop2 (buffered), 1024 batched reads: the worker ran $(((after - before) / 1000)) us"
	[ $((after - before)) -ge 1000000 ] || fail "buffered device bypassed its worker"
	losetup -d /dev/loop0 /dev/loop1 /dev/loop2
	# ext4 on loop3 on a file of an ext4 on loop0 on xfs.
	truncate -s 256M "$FSDIR/lower.img"
	mkfs.ext4 -q -F "$FSDIR/lower.img"
	losetup --direct-io=on /dev/loop0 "$FSDIR/lower.img"
	local lower=$RLOOP_CASE_DIR/lower upper=$RLOOP_CASE_DIR/upper sum
	mkdir -p "$lower" "$upper"
	mount /dev/loop0 "$lower"
	truncate -s 128M "$lower/upper.img"
	mkfs.ext4 -q -F "$lower/upper.img"
	losetup --direct-io=on /dev/loop3 "$lower/upper.img"
	assert_eq 1 "$(cat /sys/block/loop3/loop/dio)" "loop3 dio"
	mount /dev/loop3 "$upper"
	cp -r "$RLOOP_ROOT/rust" "$upper/"
	head -c 16M /dev/urandom >"$upper/data"
	sum=$(sha256sum <"$upper/data")
	fio --name=j --directory="$upper" --ioengine=io_uring --direct=1 --iodepth=8 \
		--rw=randrw --bs=4k --size="$(by_tier 4M 16M)" --fsync=8 --verify=crc32c --verify_state_save=0 --verify_fatal=1 \
		--do_verify=1 --output="$RLOOP_CASE_DIR/fio-nested.txt" || fail "fio on nested ext4"
	umount "$upper"
	fsck.ext4 -n -f /dev/loop3 >/dev/null 2>&1 || fail "upper ext4 not clean"
	mount -o ro /dev/loop3 "$upper"
	diff -r "$RLOOP_ROOT/rust" "$upper/rust" >/dev/null || fail "copied tree differs"
	assert_eq "$sum" "$(sha256sum <"$upper/data")" "upper file content"
	umount "$upper"
	losetup -d /dev/loop3
	umount "$lower"
	fsck.ext4 -n -f /dev/loop0 >/dev/null 2>&1 || fail "lower ext4 not clean"
	losetup -d /dev/loop0
	unload_rloop
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
	assert_eq "name=${f:0:63}" "$(sed 's/.* name=/name=/' <<<"$st")" "status name"
	assert_eq "$(stat -c %i "$f")" "$(sed 's/.*inode=\([0-9]*\).*/\1/' <<<"$st")" "status inode"
	# Read-only opener without CAP_SYS_ADMIN: EPERM for the setters.
	local nocap=(setpriv --bounding-set -sys_admin --inh-caps -sys_admin)
	assert_eq EPERM "$("${nocap[@]}" $LOOPCTL set-status /dev/loop0 --ro-dev)" "SET_STATUS64 needs write or CAP_SYS_ADMIN"
	assert_eq EPERM "$("${nocap[@]}" $LOOPCTL set-dio /dev/loop0 1 --ro-dev)" "SET_DIRECT_IO perm"
	assert_eq EPERM "$("${nocap[@]}" $LOOPCTL set-capacity /dev/loop0 --ro-dev)" "SET_CAPACITY perm"
	assert_eq ok "$("${nocap[@]}" $LOOPCTL set-status /dev/loop0)" "SET_STATUS64 from a write opener"
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
	settle
	[ ! -e /sys/block/loop0/loop ] || fail "not detached at last close"
	assert_eq ENXIO "$($LOOPCTL get-status /dev/loop0)" "unbound after last close"
	unload_rloop
}

case_module_pinned_while_bound() {
	load_rloop
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	losetup /dev/loop0 "$TMPFS/f"
	settle
	local out
	if out=$(rmmod rloop 2>&1); then
		fail "rmmod succeeded with a bound device"
	fi
	assert_match 'in use' "$out" "rmmod refusal"
	losetup -d /dev/loop0
	settle
	rmmod rloop
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

case_no_leak_after_unload() {
	[ -w /sys/kernel/debug/kmemleak ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
	[ -w /sys/kernel/debug/kmemleak ] || fail "kmemleak is not available"
	# Forget what earlier boots and cases left, then exercise every path.
	echo scan >/sys/kernel/debug/kmemleak
	echo clear >/sys/kernel/debug/kmemleak
	load_rloop
	mk_tmpfs
	truncate -s 16M "$TMPFS/f"
	local i
	for i in 1 2 3; do
		losetup /dev/loop0 "$TMPFS/f"
		dd if=/dev/urandom of=/dev/loop0 bs=64k count=32 oflag=direct status=none
		dd if=/dev/loop0 of=/dev/null bs=1M iflag=direct status=none
		blkdiscard -o 0 -l 1M /dev/loop0
		sync
		losetup -d /dev/loop0
	done
	$LOOPCTL ctl-add 20 >/dev/null
	$LOOPCTL ctl-remove 20 >/dev/null
	unload_rloop
	# kmemleak only reports objects unreferenced for a while.
	sleep 6
	kmemleak_check 2
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
				assert_eq "$expect" "$(cat /sys/block/${dev#/dev/}/loop/dio)" "dio $mode on $dir bs $bs"
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
	assert_eq 1 "$(cat /sys/block/${dev#/dev/}/loop/autoclear)" "autoclear from mount"
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

case_detach_during_fio_keeps_completed_writes() {
	load_rloop
	mk_fs_on_brd ext4
	truncate -s 64M "$FSDIR/img"
	losetup --direct-io=on /dev/loop0 "$FSDIR/img"
	local job=(--name=w --ioengine=libaio --direct=1 --iodepth=16 --rw=randwrite
		--bs=16k --size="$(by_tier 8M 24M)" --randseed=1234 --verify=crc32c)
	fio "${job[@]}" --filename=/dev/loop0 --do_verify=0 --output="$RLOOP_CASE_DIR/fio-w.txt" &
	local pid=$! i
	# Detach once fio's writes are flowing (field 5 of stat: writes done).
	for i in $(seq 1 120); do
		[ "$(awk '{print $5}' /sys/block/loop0/stat)" -gt 100 ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	[ "$(awk '{print $5}' /sys/block/loop0/stat)" -gt 100 ] || fail "fio did not start writing"
	losetup -d /dev/loop0
	[ -e /sys/block/loop0/loop ] || fail "detached under an opener"
	wait "$pid" || fail "fio failed during the pending detach"
	settle
	[ ! -e /sys/block/loop0/loop ] || fail "not detached after fio closed the device"
	# Every write fio completed is in the backing file.
	fio "${job[@]}" --filename="$FSDIR/img" --verify_only --verify_fatal=1 \
		--output="$RLOOP_CASE_DIR/fio-v.txt" || fail "backing file misses completed writes"
	# Detach while idle.
	losetup /dev/loop0 "$FSDIR/img"
	losetup -d /dev/loop0
	[ ! -e /sys/block/loop0/loop ] || fail "idle detach"
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
