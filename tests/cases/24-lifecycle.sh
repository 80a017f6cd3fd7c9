# shellcheck shell=bash
# rloop core, lifetimes: lazy detach at the last close, detach under fio,
# the module pinned while a device is bound, no leak after unload, and
# nothing but an open and a close for an unbound device.
#
# They test lifetimes and locking, and need KASAN, lockdep and kmemleak:
# they run on the debug kernel only (no RLOOP_ANY_KERNEL here).

LOOPCTL="python3 $RLOOP_ROOT/tests/loopctl.py"

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

case_no_leak_after_unload() {
	[ -w /sys/kernel/debug/kmemleak ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
	[ -w /sys/kernel/debug/kmemleak ] || fail "kmemleak is not available"
	# Forget what earlier boots and cases left, then exercise every path.
	echo scan >/sys/kernel/debug/kmemleak
	echo clear >/sys/kernel/debug/kmemleak
	load_rloop
	mk_tmpfs
	truncate -s 16M "$TMPFS/f"
	local _
	for _ in 1 2 3; do
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

case_detach_during_fio_keeps_completed_writes() {
	load_rloop
	mk_fs_on_brd ext4
	truncate -s 64M "$FSDIR/img"
	losetup --direct-io=on /dev/loop0 "$FSDIR/img"
	local job=(--name=w --ioengine=libaio --direct=1 --iodepth=16 --rw=randwrite
		--bs=16k --size="$(by_tier 8M 24M)" --randseed=1234 --verify=crc32c)
	fio "${job[@]}" --filename=/dev/loop0 --do_verify=0 --output="$RLOOP_CASE_DIR/fio-w.txt" &
	local pid=$! _
	# Detach once fio's writes are flowing (field 5 of stat: writes done).
	for _ in $(seq 1 120); do
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

# blktests loop/003: opening and closing an unbound device must do nothing
# but the open and the close: no flush or other I/O, no queue freeze, no
# media change or partition scan, no module reference of the driver's own.
# Counted under tracepoints (lockdep's shows a freeze as an acquisition of
# the queue's usage counter, needing the debug kernel), for rloop and,
# beside it, loop.c. The rate, under tracing, is printed, not asserted.
case_unbound_open_close_does_nothing() {
	local n drv line key
	n=$(by_tier 200 1000)
	local tracing=/sys/kernel/tracing
	mountpoint -q $tracing || mount -t tracefs none $tracing
	for drv in loop.c rloop; do
		if [ $drv = rloop ]; then
			load_rloop
		else
			modprobe loop max_loop=8 || fail "modprobe loop"
			on_exit "rmmod loop"
		fi
		settle
		line="$(python3 "$RLOOP_ROOT/tests/openclose.py" --trace /dev/loop0 "$n" r)"
		echo "$drv: $line"
		if [ $drv = rloop ]; then unload_rloop; else rmmod loop; fi
	done
	for key in flushes diskseq uevents blockev qenter modrefs; do
		assert_match " $key=0( |\$)" "$line" "rloop's $key over $n open/close cycles of an unbound device"
	done
}

# Idle cost (issue 17): loop.c owns no kernel thread per device (its
# workqueue's workers are shared kworkers), and neither may rloop while a
# device is unbound or idle. tests/idlecost.sh counts the threads named
# loopN and loopN.Q with 8 unbound devices, during reads from a bound one
# and once all are idle, and the memory per device, for both drivers in
# this boot. Memory is printed, not asserted: KASAN and kmemleak inflate it
# here; `make bench` reports it on the release kernel.
case_idle_devices_own_no_thread() {
	export RLOOP_ALLOW_C_LOOP=1
	on_exit "rmmod loop"
	local c r
	c=$(IDLECOST_MEM_SETTLE=0 "$RLOOP_ROOT/tests/idlecost.sh" loop 8) || fail "idlecost.sh under loop.c"
	r=$(IDLECOST_MEM_SETTLE=0 RLOOP_KO=$RLOOP_KO "$RLOOP_ROOT/tests/idlecost.sh" rloop 8) ||
		fail "idlecost.sh under rloop"
	echo "loop.c: $c"
	echo "rloop:  $r"
	field() { sed -n "s/.* $1=\([0-9-]*\).*/\1/p" <<<" $2"; }
	assert_eq 0 "$(field threads_unbound "$r")" "rloop's threads with 8 unbound devices"
	[ "$(field threads_busy "$r")" -ge 1 ] || fail "no rloop worker thread ran during I/O"
	assert_eq 0 "$(field threads_idle "$r")" "rloop's threads with 8 bound, idle devices"
}

# wait_worker_stopped DEV: until device DEV (loop0) has no worker thread;
# a worker's thread stops 5 to 10 s after its last kick.
wait_worker_stopped() {
	local _
	for _ in $(seq 1 150); do
		grep -qE "^$1([./][0-9]+)?\$" /proc/[0-9]*/comm 2>/dev/null || return 0
		sleep 0.1
	done
	fail "$1's worker thread still runs 15 s after its last I/O"
}

# A worker's thread stops when idle and starts again at the next request:
# data written right after a stop reads back right after the next, with one
# queue and with a queue per CPU (its I/O from both vCPUs, on two queues).
case_io_right_after_worker_stops() {
	local q cycle cpu
	dd if=/dev/urandom of="$RLOOP_CASE_DIR/pattern" bs=64k count=16 status=none
	for q in 1 0; do
		load_rloop nr_hw_queues=$q
		# Afresh each time: unload_rloop unmounts the case's mounts.
		mk_tmpfs
		truncate -s 16M "$TMPFS/f"
		losetup /dev/loop0 "$TMPFS/f"
		for cycle in 1 2; do
			wait_worker_stopped loop0
			for cpu in 0 1; do
				taskset -c $cpu dd if="$RLOOP_CASE_DIR/pattern" of=/dev/loop0 bs=64k \
					seek=$((cycle * 32 + cpu * 16)) oflag=direct status=none ||
					fail "write after the worker stopped (nr_hw_queues=$q, CPU $cpu)"
			done
			wait_worker_stopped loop0
			for cpu in 0 1; do
				cmp <(taskset -c $cpu dd if=/dev/loop0 bs=64k skip=$((cycle * 32 + cpu * 16)) \
					count=16 iflag=direct status=none) "$RLOOP_CASE_DIR/pattern" ||
					fail "data after the worker stopped (nr_hw_queues=$q, cycle $cycle, CPU $cpu)"
			done
		done
		losetup -d /dev/loop0
		unload_rloop
	done
}

# Detach and unload while a worker's thread starts (right after the first
# request) or stops (the moment it is gone, and the idle stop still
# pending): no kernel report, no request lost.
case_detach_while_worker_starts_or_stops() {
	local i
	for i in 1 2 3 4; do
		load_rloop
		# Afresh each time: unload_rloop unmounts the case's mounts.
		mk_tmpfs
		truncate -s 16M "$TMPFS/f"
		losetup /dev/loop0 "$TMPFS/f"
		dd if=/dev/loop0 of=/dev/null bs=4k count=1 iflag=direct status=none &
		losetup -d /dev/loop0
		wait $! || fail "read while the worker started"
		unload_rloop
	done
	for i in 1 2; do
		load_rloop
		mk_tmpfs
		truncate -s 16M "$TMPFS/f"
		losetup /dev/loop0 "$TMPFS/f"
		dd if=/dev/loop0 of=/dev/null bs=4k count=8 iflag=direct status=none
		# Its idle stop pending: unbind and unload at once, or once stopped.
		[ "$i" = 1 ] || wait_worker_stopped loop0
		dd if=/dev/loop0 of=/dev/null bs=4k count=8 iflag=direct status=none &
		losetup -d /dev/loop0
		wait $! || fail "read while the worker stopped"
		unload_rloop
	done
}
