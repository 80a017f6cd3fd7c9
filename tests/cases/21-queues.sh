# shellcheck shell=bash
# rloop core, hardware queues and submission: one worker per hardware
# queue (nr_hw_queues, and per device in sysfs), and the NOWAIT fast path.

# The cases that may run on the release build of the test kernel (tests/
# run.sh -r): data and performance-shaped ones. Changing a device's queues
# under I/O tests lifetimes and locking, and needs KASAN, lockdep and
# kmemleak: it runs on the debug kernel only.
# shellcheck disable=SC2034 # read by tests/run.sh
RLOOP_ANY_KERNEL="case_multiple_hw_queues case_nowait_fast_path"

# nr_hw_queues: one worker per hardware queue, whose thread starts at the
# first request (none before), requests from four CPUs spread over them,
# data verified, and a detach that waits for all. nowait=0: every request
# goes to a worker, or the NOWAIT fast path would serve most of them.
case_multiple_hw_queues() {
	if insmod "$RLOOP_KO" nr_hw_queues=17 2>/dev/null; then
		rmmod rloop
		fail "nr_hw_queues=17 accepted"
	fi
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	load_rloop max_loop=2 nr_hw_queues=4 nowait=0
	# blk-mq allows no more queues than CPUs, and rloop no more workers.
	local n q expected_queues=""
	n=$(nproc)
	[ "$n" -le 4 ] || n=4
	[ "$n" -ge 2 ] || fail "the VM needs 2 CPUs for this case"
	for ((q = 0; q < n; q++)); do
		expected_queues+=" $q"
	done
	# shellcheck disable=SC2012 # sysfs names: plain numbers
	assert_eq "${expected_queues# }" "$(ls /sys/block/loop0/mq | sort -n | tr '\n' ' ' | sed 's/ $//')" "hardware queues"
	# shellcheck disable=SC2009 # names only, one a line, as the expected list has them
	assert_eq "" \
		"$(ps -eo comm | grep -E '^loop0([./][0-9]+)?$' | sort | tr '\n' ' ' | sed 's/ $//')" "worker threads before any I/O"
	mk_fs_on_brd xfs
	truncate -s 64M "$FSDIR/a" "$FSDIR/b"
	losetup --direct-io=on /dev/loop0 "$FSDIR/a"
	losetup --direct-io=off /dev/loop1 "$FSDIR/b"
	# Context switches of each worker thread of a device ("NAME PID N"
	# lines): a worker that served requests slept and woke for them. A
	# thread runs only while its queue has work, and may stop and start
	# again around fio: sampled while fio runs and right after, and a
	# thread counts from its first sample, or from 0 if it started during
	# fio.
	worker_switches() {
		local pid
		for pid in $(pgrep -x "$1(\.[0-9]+)?"); do
			printf '%s %s %s\n' "$(cat "/proc/$pid/comm" 2>/dev/null)" "$pid" \
				"$(awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$pid/status" 2>/dev/null)"
		done | awk 'NF == 3'
	}
	local dev name busy fio_pid samples
	for dev in /dev/loop0 /dev/loop1; do
		name=${dev##*/}
		samples=$RLOOP_CASE_DIR/switches-$name
		worker_switches "$name" | sed 's/^/before /' >"$samples"
		# One job per vCPU at a time, so that requests come from both.
		fio --name=mq --filename="$dev" --ioengine=libaio --direct=1 --iodepth=16 \
			--numjobs=4 --size="$(by_tier 2M 8M)" --offset_increment=8M --rw=randrw --bs=4k \
			--cpus_allowed_policy=split --cpus_allowed=0-1 --verify_state_save=0 \
			--verify=crc32c --verify_fatal=1 --do_verify=1 --group_reporting \
			--output="$RLOOP_CASE_DIR/fio-$name.txt" &
		fio_pid=$!
		while kill -0 $fio_pid 2>/dev/null; do
			worker_switches "$name" | sed 's/^/during /' >>"$samples"
			sleep 0.2
		done
		wait $fio_pid || fail "fio verify on $dev"
		# Once more after fio: a run shorter than a sampling period has
		# none, and a thread lives on for 5 s after its last request.
		worker_switches "$name" | sed 's/^/during /' >>"$samples"
		grep -q 'err= 0' "$RLOOP_CASE_DIR/fio-$name.txt" || fail "fio reported errors on $dev"
		busy=$(awk '{ k = $2 " " $3 }
			!(k in first) { first[k] = ($1 == "during") ? 0 : $4; name[k] = $2 }
			{ last[k] = $4 }
			END { for (k in last) if (last[k] - first[k] >= 20) b[name[k]] = 1
			      n = 0; for (x in b) n++; print n }' "$samples")
		echo "$name: workers' context switches (name pid count, first and last samples):" \
			"$(sort -u -k2,3 "$samples" | head -n 4 | tr '\n' ' ')"
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
	# shellcheck disable=SC2012 # sysfs names: plain numbers
	queues() { ls "/sys/block/$1/mq" | wc -l; }
	# shellcheck disable=SC2009 # names only, one a line, as the expected list has them
	workers() { ps -eo comm | grep -E "^$1(\.[0-9]+)?\$" | sort | tr '\n' ' ' | sed 's/ $//'; }
	# Each worker's thread runs only while its queue has work: those
	# running must be among a device's queues.
	assert_workers_among() {
		local w
		for w in $(workers "$1"); do
			[[ " $2 " == *" $w "* ]] || fail "$1's worker $w, not among '$2'"
		done
	}
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
	assert_workers_among loop0 "$expected"
	assert_eq 1 "$(cat /sys/block/loop1/loop/nr_hw_queues)" "loop1's nr_hw_queues"
	assert_eq 1 "$(queues loop1)" "loop1's queues"
	assert_workers_among loop1 loop1
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

# The threads of device $1's workers, its queues' and its CPUs', each
# with its CPU time so far, in ns: "PID:NS" words, none while it has no
# thread (a worker's starts on its first request and stops once idle).
worker_cpu_ns() {
	local comm name pid ns
	# Not pgrep, which found none of them at times in the guest.
	for comm in /proc/[0-9]*/comm; do
		read -r name <"$comm" 2>/dev/null || continue
		[[ $name =~ ^$1([./][0-9]+)?$ ]] || continue
		pid=${comm#/proc/}
		pid=${pid%/comm}
		if [ -r "/proc/$pid/schedstat" ]; then
			ns=$(cut -d' ' -f1 "/proc/$pid/schedstat" 2>/dev/null)
		else
			ns=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", ($14 + $15) * 1e9 / hz }' "/proc/$pid/stat" 2>/dev/null)
		fi
		[ -z "$ns" ] || printf '%s:%s ' "$pid" "$ns"
	done
	echo
}

# worker_cpu_since "PID:NS ..." DEV: the CPU time, in ns, of device DEV's
# workers since worker_cpu_ns gave "PID:NS ..."; a thread started since
# counts from its start.
worker_cpu_since() {
	worker_cpu_delta "$1" "$(worker_cpu_ns "$2")"
}

# worker_cpu_delta "PID:NS ..." "PID:NS ...": the CPU time, in ns, gained
# from the first sample of worker_cpu_ns to the second.
worker_cpu_delta() {
	local w o old total=0
	for w in $2; do
		old=0
		for o in $1; do
			[ "${o%%:*}" != "${w%%:*}" ] || old=${o#*:}
		done
		total=$((total + ${w#*:} - old))
	done
	echo $total
}

# trace_filter EVENT FIELD FILE: keeps tracepoint EVENT (group/name) to
# the inode of FILE, through its field FIELD; the case's end turns it off.
trace_filter() {
	local t=/sys/kernel/tracing
	mountpoint -q $t || mount -t tracefs none $t
	echo "$2 == $(stat -c %i "$3")" >"$t/events/$1/filter"
	on_exit "echo 0 >$t/events/$1/enable; echo 0 >$t/events/$1/filter"
}

# trace_readers EVENT DEV CMD...: runs CMD with tracepoint EVENT on, from
# an empty trace. Sets readers_trace to EVENT's lines, readers_total to
# their count and readers_worker to those of DEV's worker threads.
trace_readers() {
	local t=/sys/kernel/tracing
	echo >$t/trace
	echo 1 >"$t/events/$1/enable"
	"${@:3}"
	echo 0 >"$t/events/$1/enable"
	readers_trace=$(grep "${1#*/}" $t/trace || true)
	readers_total=$(grep -c . <<<"$readers_trace" || true)
	readers_worker=$(grep -cE "^ *$2([./][0-9]+)?-" <<<"$readers_trace" || true)
}

# nowait=1 (the default, named so that RLOOP_TEST_RLOOP_PARAMS=nowait=0
# leaves it on here): data stays intact on every path of the NOWAIT
# mode. Direct reads, overwrites, writes into holes (which xfs refuses
# under NOWAIT), a buffered device (reads of what the page cache holds,
# and overwrites, go through the fast path), and ext4 on rloop on a file of ext4
# on rloop, the set-up of loop.c's jbd2 BUG, in which the upper file
# system's plugged I/O enters the fast path (it found the PF_BLOCK_TS
# bug). Which reads bypass the worker is asserted from the workers' CPU
# time, where the two paths differ tenfold or more; the rest is printed.
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
	losetup --direct-io=off /dev/loop2 "$FSDIR/full"
	local before ios=4096 run cpu readers_trace readers_total readers_worker
	read_job() {
		fio --name=r --filename="$1" --ioengine=io_uring --direct=1 --iodepth=1 \
			--rw=randread --bs=4k --number_ios="$ios" --size=64M --cpus_allowed=1 "${@:3}" \
			--output="$RLOOP_CASE_DIR/fio-$2.txt" || fail "fio randread ($2)"
	}
	# Which task read each block of the direct device's file: iomap's
	# tracepoint names it (buffered reads do not pass there). udev's probe
	# of the new devices reads them too: not while tracing.
	trace_filter iomap/iomap_dio_rw_begin ino "$FSDIR/full"
	settle
	# A CPU that was seen deep counts as deep for its next 64 requests:
	# the runs below start after 256 reads one at a time, all on CPU 1.
	ios=256 read_job /dev/loop0 warm
	# The same reads on the direct device, one at a time (io_uring, libaio).
	# A submitter that waits for each read must spare the worker, but for
	# one probe in 128: a single I/O is issued inside submit_bio()
	# (current->bio_list set), which the fast path sets aside.
	# A deep submitter is not counted here: on a RAM disk each read is over
	# before the next comes, and only a probe still in flight when the next
	# one comes shows the depth. Whether it is depends on when the worker
	# runs; a release VM on a busy host once saw none of the 32 probes do.
	# nowait_hands_deep_queues_to_worker counts that on null_blk, whose
	# reads stay in flight.
	for run in io_uring libaio; do
		trace_readers iomap/iomap_dio_rw_begin loop0 read_job /dev/loop0 $run --ioengine=$run
		echo "$ios direct reads, $run: $readers_total reads of the file, $readers_worker by the workers"
		[ "$readers_total" -ge "$ios" ] || fail "$run: the trace lost reads"
		[ $((readers_worker * 16)) -le "$readers_total" ] ||
			fail "$run: reads one at a time went through the worker"
	done
	# The buffered device's worker does every read the page cache cannot
	# serve: the file was written with O_DIRECT, so at first, most of them.
	# filemap's tracepoint names the task that copied each from the page
	# cache.
	trace_filter filemap/mm_filemap_get_pages i_ino "$FSDIR/full"
	trace_readers filemap/mm_filemap_get_pages loop2 read_job /dev/loop2 buffered
	echo "$ios reads on the buffered device: $readers_total from the page cache, $readers_worker by the workers"
	[ $((readers_worker * 2)) -gt "$readers_total" ] || fail "the buffered device's worker did not serve its reads"
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
	cpu=$(worker_cpu_since "$before" loop1)
	echo "loop1, writes into holes: the worker ran $((cpu / 1000)) us"
	# The buffered device once its file is in the page cache: the same
	# reads, one at a time, need no worker, but for the probes and the
	# pages marked for readahead.
	dd if="$FSDIR/full" of=/dev/null bs=1M status=none
	trace_readers filemap/mm_filemap_get_pages loop2 read_job /dev/loop2 buffered-cached
	echo "loop2 (buffered, file cached), $ios reads: $readers_total from the page cache," \
		"$readers_worker by the workers"
	[ "$readers_total" -ge "$ios" ] || fail "buffered-cached: the trace lost reads"
	[ $((readers_worker * 4)) -lt "$readers_total" ] || fail "reads from the page cache went through the worker"
	# Buffered overwrites verify; xfs takes those that need no allocation or
	# time stamp update under NOWAIT, the worker the others.
	before=$(worker_cpu_ns loop2)
	fio --name=bw --filename=/dev/loop2 --ioengine=io_uring --direct=1 --iodepth=16 \
		--rw=randwrite --bsrange=4k-128k --size="$(by_tier 8M 32M)" --verify=crc32c --verify_state_save=0 --verify_fatal=1 \
		--do_verify=1 --output="$RLOOP_CASE_DIR/fio-buffered-overwrite.txt" || fail "fio buffered overwrite verify"
	cpu=$(worker_cpu_since "$before" loop2)
	echo "loop2 (buffered), overwrites and their verify: the worker ran $((cpu / 1000)) us"
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

# The fast path hands a queue's requests to its worker while four of its
# NOWAIT attempts are still in the backing device, which then gets them in
# plugged batches. The backing device here completes later (null_blk with
# timer completions, 5 ms: longer than the debug guest takes to issue a
# request): fio's direct reads at depth 1 never have four under way, and
# the worker serves none of them but the probes; at depth 32 it serves
# most. iomap's tracepoint shows which task read each; the data verifies
# in both.
case_nowait_hands_deep_queues_to_worker() {
	[ "$(nproc)" -ge 2 ] || fail "the VM needs 2 CPUs for this case"
	modprobe null_blk nr_devices=1 gb=1 memory_backed=1 irqmode=2 completion_nsec=5000000 ||
		fail "modprobe null_blk"
	on_exit "rmmod null_blk"
	load_rloop max_loop=1 nowait=1
	FSDIR=$RLOOP_CASE_DIR/fs
	mkdir -p "$FSDIR"
	mkfs.xfs -q -f /dev/nullb0
	mount /dev/nullb0 "$FSDIR"
	dd if=/dev/zero of="$FSDIR/img" bs=1M count=32 oflag=direct status=none
	losetup --direct-io=on /dev/loop0 "$FSDIR/img"
	assert_eq 1 "$(cat /sys/block/loop0/loop/dio)" "dio on"
	fio --name=fill --filename=/dev/loop0 --ioengine=io_uring --direct=1 --iodepth=1 --rw=write \
		--bs=64k --size=32M --verify=crc32c --verify_state_save=0 --do_verify=0 \
		--output="$RLOOP_CASE_DIR/fio-fill.txt" || fail "fio fill"
	# iomap's tracepoint names the task of each direct read of the file.
	local qd readers_trace readers_total readers_worker
	trace_filter iomap/iomap_dio_rw_begin ino "$FSDIR/img"
	# On CPU 1, after 256 reads one at a time: a CPU that was seen deep
	# (the fill's requests, for one) counts as deep for its next 64.
	fio --name=warm --filename=/dev/loop0 --ioengine=io_uring --direct=1 --iodepth=1 \
		--rw=randread --bs=4k --number_ios=256 --size=32M --cpus_allowed=1 \
		--output="$RLOOP_CASE_DIR/fio-warm.txt" || fail "fio warm-up"
	# shellcheck disable=SC2317 # run by trace_readers
	read_qd() {
		fio --name=r"$1" --filename=/dev/loop0 --ioengine=io_uring --direct=1 --iodepth="$1" \
			--rw=randread --bs=4k --number_ios=1024 --size=32M --norandommap --cpus_allowed=1 \
			--output="$RLOOP_CASE_DIR/fio-qd$1.txt" || fail "fio randread qd$1"
	}
	for qd in 1 32; do
		trace_readers iomap/iomap_dio_rw_begin loop0 read_qd $qd
		echo "1024 direct reads at qd$qd: $readers_total reads of the file, $readers_worker by the workers;" \
			"by task: $(sed -E 's/^ *(.*)-[0-9]+ +\[.*/\1/' <<<"$readers_trace" | sort | uniq -c | tr -s ' \n' ' ')"
		[ "$readers_total" -ge 1024 ] || fail "qd$qd: the trace lost reads"
		case $qd in
		# The probes, one in 128 of those that come alone.
		1) [ $((readers_worker * 32)) -le "$readers_total" ] || fail "at depth 1 the worker served reads" ;;
		32) [ $((readers_worker * 2)) -gt "$readers_total" ] || fail "at depth 32 the worker served less than half" ;;
		esac
	done
	# The fill's job again, reading back what it wrote.
	fio --name=fill --filename=/dev/loop0 --ioengine=io_uring --direct=1 --iodepth=32 --rw=write \
		--bs=64k --size=32M --verify=crc32c --verify_state_save=0 --verify_only --verify_fatal=1 \
		--output="$RLOOP_CASE_DIR/fio-verify.txt" || fail "fio verify after the reads"
	losetup -d /dev/loop0
	unload_rloop
}

# nowait=1 (the default) keeps off kblockd. A short NOWAIT read is
# requeued, and blk-mq runs the requeued rest from kblockd, the workqueue
# every block device shares: the rest must go to the device's own worker,
# not be tried there.
# The backing file ends inside the device's last 4 KiB, so a direct read
# of them comes back short; iomap's tracepoint names the task of each try.
case_nowait_not_on_kblockd() {
	load_rloop max_loop=1 nowait=1
	mk_fs_on_brd xfs
	dd if=/dev/zero of="$FSDIR/img" bs=1M count=1 oflag=direct status=none
	losetup --direct-io=on /dev/loop0 "$FSDIR/img"
	truncate -s $((1024 * 1024 - 2048)) "$FSDIR/img"
	# udev's probe of the new device reads it too: not while tracing.
	settle
	local t=/sys/kernel/tracing ev trace rest
	mountpoint -q $t || mount -t tracefs none $t
	ev=$t/events/iomap/iomap_dio_rw_begin
	echo 0 >$t/tracing_on
	echo >$t/trace
	echo "ino == $(stat -c %i "$FSDIR/img")" >$ev/filter
	echo 1 >$ev/enable
	on_exit "echo 0 >$ev/enable; echo 0 >$ev/filter; echo 1 >$t/tracing_on"
	echo 1 >$t/tracing_on
	# The rest lies past the file's end: EIO, as from loop.c.
	if dd if=/dev/loop0 of=/dev/null bs=4k skip=255 count=1 iflag=direct status=none 2>/dev/null; then
		fail "read across the end of the backing file succeeded"
	fi
	echo 0 >$t/tracing_on
	trace=$(grep iomap_dio_rw_begin $t/trace || true)
	echo "$trace"
	assert_match "dd-.* offset 0xff000 .*NOWAIT" "$trace" "the first try, in dd"
	rest=$(grep "offset 0xff800 " <<<"$trace") || fail "the rest was not read"
	if grep -q kworker <<<"$rest"; then
		fail "the rest was tried in a workqueue worker: $rest"
	fi
	# The queue's worker, or a CPU's (loop0/N), if the rest came alone.
	assert_match "^ *loop0(/[0-9]+)?-" "$rest" "the rest's reader"
	losetup -d /dev/loop0
	unload_rloop
}

# A request that must block and comes alone, as a synchronous writer's
# do, is served by the worker of the CPU it came from, whose thread
# prefers that CPU: then neither the worker nor the writer is woken from
# another CPU. Buffered writes to a file on ext4, which takes none under
# NOWAIT (no FOP_BUFFER_WASYNC), so that every one needs a worker, one at
# a time from a writer on CPU 1: the queue's worker serves the first and
# makes CPU 1's worker, which serves the rest. Worker CPU time shows
# which served them.
case_cpu_worker_serves_lone_requests() {
	[ "$(nproc)" -ge 2 ] || fail "the VM needs 2 CPUs for this case"
	load_rloop max_loop=1
	mk_fs_on_brd ext4
	truncate -s 16M "$FSDIR/img"
	losetup --direct-io=off /dev/loop0 "$FSDIR/img"
	settle
	local before after mine pid allowed own total
	before=$(worker_cpu_ns loop0)
	fio --name=lone --filename=/dev/loop0 --ioengine=psync --direct=1 --rw=randwrite --bs=4k \
		--number_ios="$(by_tier 1024 4096)" --size=16M --norandommap --cpus_allowed=1 \
		--output="$RLOOP_CASE_DIR/fio-lone.txt" || fail "fio randwrite from CPU 1"
	# One sample of each, right away: a worker's thread stops 5 to 10 s
	# after its last request.
	after=$(worker_cpu_ns loop0)
	mine=$(worker_cpu_ns loop0/1)
	pid=${mine%%:*}
	[ -n "$pid" ] || fail "no thread loop0/1 after writes from CPU 1 (workers: $after)"
	allowed=$(awk '/^Cpus_allowed_list/ { print $2 }' "/proc/$pid/status")
	echo "workers before: $before; after: $after; loop0/1: $mine (CPUs $allowed)"
	assert_eq 1 "$allowed" "the CPUs loop0/1 may run on"
	own=$(worker_cpu_delta "$before" "$mine")
	total=$(worker_cpu_delta "$before" "$after")
	echo "buffered writes to ext4 from CPU 1, worker CPU: loop0/1 $((own / 1000)) us of $((total / 1000)) us"
	[ "$total" -gt 0 ] || fail "no worker ran for the writes"
	[ $((own * 2)) -gt "$total" ] || fail "CPU 1's worker served less than half of the writes' work"
	# What was written reads back the same through the device.
	fio --name=lone --filename=/dev/loop0 --ioengine=psync --direct=1 --rw=randwrite --bs=4k \
		--size=2M --verify=crc32c --verify_state_save=0 --verify_fatal=1 --do_verify=1 \
		--cpus_allowed=1 --output="$RLOOP_CASE_DIR/fio-verify.txt" || fail "fio verify from CPU 1"
	losetup -d /dev/loop0
	unload_rloop
}
