# shellcheck shell=bash
# Differential tests: the same scenario runs against the C loop module and
# against rloop in one boot, one driver at a time, and the two transcripts
# must be identical, except for lines matching tests/diff-allowlist.txt
# (each entry with its reason, explained in Documentation/).

LOOPCTL="python3 $RLOOP_ROOT/tests/loopctl.py"

# Differential transcripts, the same on any kernel: these may run on the
# release build (tests/run.sh -r).
# shellcheck disable=SC2034 # read by tests/run.sh
RLOOP_ANY_KERNEL=all
UEVENTS="python3 $RLOOP_ROOT/tests/uevents.py"

# with_driver c|rust COMMAND...: run COMMAND with only that driver loaded.
with_driver() {
	local driver=$1 rc=0
	shift
	# Failures are reported in the transcript, which the caller shows.
	if [ "$driver" = c ]; then
		modprobe loop max_loop=8 || { echo "with_driver: modprobe loop failed"; return 90; }
	else
		# RLOOP_DIFF_PARAMS: rloop's module parameters for this run.
		# shellcheck disable=SC2086 # one word per parameter
		insmod "$RLOOP_KO" ${RLOOP_DIFF_PARAMS:-} || { echo "with_driver: insmod rloop failed"; return 90; }
	fi
	settle
	# As a job, so that `set -e` holds inside the scenario: a failing step
	# ends it, instead of letting it run on and compare empty results.
	"$@" &
	wait $! || rc=$?
	resume_udev
	release_case_devices
	settle
	local module=rloop
	[ "$driver" = rust ] || module=loop
	if ! rmmod $module; then
		echo "with_driver: rmmod $module failed; still bound: $(losetup -a | tr '\n' ' ')"
		grep -E "^$module " /proc/modules || true
		rc=91
	fi
	return $rc
}

# compare_drivers SCENARIO MIN_LINES: run it under both drivers, diff the
# transcripts. A transcript shorter than MIN_LINES means the scenario did
# not run through, which would make the comparison vacuous.
compare_drivers() {
	local scenario=$1 min=$2 out=$RLOOP_CASE_DIR/$1
	export RLOOP_ALLOW_C_LOOP=1
	local driver rc attempt
	local allow=$RLOOP_ROOT/tests/diff-allowlist.txt
	# A difference must show twice: a transient opener outside the test
	# (seen once under a loaded host: loop.c's LOOP_CLR_FD deferred, the
	# next LOOP_CONFIGURE EBUSY) must not fail the case, and a real
	# difference is deterministic. The first one is printed either way.
	for attempt in 1 2; do
		for driver in c rust; do
			rc=0
			with_driver $driver "$scenario" >"$out.$driver" 2>&1 || rc=$?
			if [ $rc -ne 0 ]; then
				tail -n 20 "$out.$driver" | sed 's/^/  /'
				keep_transcripts "$scenario"
				fail "$scenario failed under the $driver driver (status $rc)"
			fi
		done
		grep -vEf <(grep -v '^#' "$allow" | cut -f1 | grep .) "$out.c" >"$out.c.cmp" || true
		grep -vEf <(grep -v '^#' "$allow" | cut -f1 | grep .) "$out.rust" >"$out.rust.cmp" || true
		diff "$out.c.cmp" "$out.rust.cmp" >"$out.diff" && break
		# The header ("# ...") before the first difference names its part,
		# such as the seed of a random sequence.
		local line
		line=$(cmp "$out.c.cmp" "$out.rust.cmp" | sed -n 's/.* line \([0-9]*\).*/\1/p' || true)
		echo "attempt $attempt: rloop differs from loop.c (C < > rloop)"
		[ -z "$line" ] || echo "first difference in: $(head -n "$line" "$out.c.cmp" | grep '^# ' | tail -n1)"
		sed 's/^/  /' "$out.diff" | head -n 60
		keep_transcripts "$scenario"
		[ "$attempt" -eq 1 ] || fail "$scenario: rloop differs from loop.c twice (C < > rloop)"
	done
	local lines
	lines=$(wc -l <"$out.rust")
	[ "$lines" -ge "$min" ] || { cat "$out.rust"; fail "$scenario: only $lines transcript lines"; }
	echo "$scenario: $lines transcript lines identical; first lines:"
	head -n 5 "$out.rust" | sed 's/^/  /'
	[ "$(wc -l <"$out.c")" -ge "$min" ] || fail "$scenario: short transcript under loop.c"
}

# keep_transcripts SCENARIO: copy its transcripts to the host's results
# directory, for a look after the VM is gone.
keep_transcripts() {
	[ -n "${RLOOP_RESULTS:-}" ] || return 0
	mkdir -p "$RLOOP_RESULTS/diff"
	cp "$RLOOP_CASE_DIR/$1".* "$RLOOP_RESULTS/diff/" 2>/dev/null || true
	echo "transcripts kept in $RLOOP_RESULTS/diff/$1.{c,rust,diff}"
}

# A line of transcript: what was done, and what came of it.
t() { printf '%s: %s\n' "$1" "$2"; }

scenario_ioctls() {
	# A udev probe of the loop9 that ctl-add makes holds it open, and the
	# ctl-remove 9 after it is then EBUSY, in either driver.
	pause_udev
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	local f=$TMPFS/f
	$LOOPCTL batch <<-END
	get-status /dev/loop0
	clr-fd /dev/loop0
	set-status /dev/loop0
	set-capacity /dev/loop0
	set-dio /dev/loop0 1
	set-block-size /dev/loop0 4096
	get-status-null /dev/loop0
	get-status-old /dev/loop0
	change-fd /dev/loop0 $f
	set-fd-raw /dev/loop0 999
	raw /dev/loop0 0x4CFF
	configure /dev/loop0 $f --flags 2
	configure /dev/loop0 $f --encrypt-type 1
	configure /dev/loop0 $f --key-size 33
	configure /dev/loop0 $f --offset 9223372036854775808
	configure /dev/loop0 $f --block-size 1000
	configure /dev/loop0 $f --block-size 3000
	configure /dev/loop0 /dev/null
	set-fd-self /dev/loop0
	configure /dev/loop0 $f --offset 512 --sizelimit 1048576 --flags 4
	get-status /dev/loop0
	get-status-old /dev/loop0
	configure /dev/loop0 $f
	configure /dev/loop1 /dev/loop2
	configure /dev/loop1 /dev/loop1
	configure /dev/loop1 /dev/loop0 --ro-file
	change-fd /dev/loop0 $f
	set-status /dev/loop0 --encrypt-type 18
	set-status /dev/loop0 --offset 4096 --flags 12
	get-status /dev/loop0
	set-capacity /dev/loop0
	set-block-size /dev/loop0 4096
	set-block-size /dev/loop0 3000
	set-dio /dev/loop0 0
	ctl-add 0
	ctl-add 9
	ctl-get-free
	ctl-remove 0
	ctl-remove 15
	ctl-remove -1
	ctl-remove 9
	ctl-raw 0x4C8F
	clr-fd /dev/loop1
	clr-fd /dev/loop0
	clr-fd /dev/loop0
	END
}

# The file system's device number changes from one tmpfs to the next.
normalize_ids() { sed -E 's/device=[0-9]+/device=D/; s/inode=[0-9]+/inode=I/'; }

scenario_sysfs_and_losetup() {
	mk_tmpfs
	truncate -s 8M "$TMPFS/f"
	local q
	losetup -o 4096 --sizelimit 2M /dev/loop0 "$TMPFS/f"
	losetup -r /dev/loop1 "$TMPFS/f"
	losetup -b 4096 /dev/loop2 "$TMPFS/f"
	for d in loop0 loop1 loop2 loop3; do
		# nr_hw_queues is rloop's own (21-queues/hw_queues_per_device).
		t "$d loop/" "$(cd /sys/block/$d && grep -r . loop 2>&1 | grep -v '^loop/nr_hw_queues:' |
			sort | tr '\n' ' ')"
		for q in logical_block_size physical_block_size minimum_io_size rotational \
			write_cache discard_max_bytes discard_granularity write_zeroes_max_bytes \
			max_hw_sectors_kb max_segments nr_requests scheduler; do
			t "$d queue/$q" "$(cat /sys/block/$d/queue/$q)"
		done
		t "$d ro size" "$(cat /sys/block/$d/ro) $(cat /sys/block/$d/size)"
	done
	t "losetup -l" "$(losetup -l -O NAME,SIZELIMIT,OFFSET,AUTOCLEAR,RO,BACK-FILE,DIO,LOG-SEC | tr '\n' '|')"
	t "losetup -J" "$(losetup -J | tr -d ' \n')"
	t "losetup -a" "$(losetup -a | sed 's/(\([0-9]*\):[0-9]*)/(dev:ino)/' | tr '\n' '|')"
	t "write to ro" "$(dd if=/dev/zero of=/dev/loop1 bs=4k count=1 oflag=direct 2>&1 | head -n1 | sed 's/.*: //')"
	losetup -c /dev/loop0
	t "after -c" "$(cat /sys/block/loop0/size)"
	losetup -d /dev/loop0 /dev/loop1 /dev/loop2
	settle
	# shellcheck disable=SC2012 # ls's error message is the result
	t "after -d" "$(ls /sys/block/loop0/loop 2>&1 | sed 's/.*: //')"
	t "losetup -f" "$(losetup -f)"
	t "losetup -D" "$(losetup -D; echo $?)"
}

scenario_uevents() {
	local events
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	# The recorder's own failure would leave every line empty under both
	# drivers: a bind must be seen to run and to send a uevent.
	events=$($UEVENTS loop0 -- losetup /dev/loop0 "$TMPFS/f" | tr '\n' '|')
	assert_match '^change loop0.*\|status=0\|$' "$events" "uevents of a bind"
	t "configure" "$events"
	truncate -s 8M "$TMPFS/f"
	t "set capacity" "$($UEVENTS loop0 -- losetup -c /dev/loop0 | tr '\n' '|')"
	t "set capacity again" "$($UEVENTS loop0 -- losetup -c /dev/loop0 | tr '\n' '|')"
	t "detach" "$($UEVENTS loop0 -- losetup -d /dev/loop0 | tr '\n' '|')"
}

scenario_partitions() {
	mk_tmpfs
	truncate -s 16M "$TMPFS/p"
	printf 'label: dos\n,4M\n,4M\n' | sfdisk -q "$TMPFS/p" >/dev/null
	losetup /dev/loop0 "$TMPFS/p"
	settle
	t "no partscan" "$(compgen -G '/dev/loop0p*' | tr '\n' ' ')"
	losetup -d /dev/loop0
	settle
	losetup -P /dev/loop0 "$TMPFS/p"
	settle
	t "partscan" "$(compgen -G '/dev/loop0p*' | tr '\n' ' ')"
	t "partscan sysfs" "$(cat /sys/block/loop0/loop/partscan)"
	t "p1 size" "$(cat /sys/block/loop0/loop0p1/size)"
	losetup -d /dev/loop0
	settle
	t "after detach" "$(compgen -G '/dev/loop0p*' | tr '\n' ' ')"
	mkdir -p "$RLOOP_CASE_DIR/mnt"
	mkfs.ext4 -q -F "$TMPFS/p" 2>/dev/null
	t "mount -o loop" "$(mount -o loop "$TMPFS/p" "$RLOOP_CASE_DIR/mnt" 2>&1; echo $?)"
	t "mounted on" "$(findmnt -n -o SOURCE "$RLOOP_CASE_DIR/mnt")"
	umount "$RLOOP_CASE_DIR/mnt"
	settle
	t "after umount" "$(losetup -a | wc -l)"
}

# LOOP_SET_STATUS64 and LOOP_SET_BLOCK_SIZE issued through a partition's
# node write the whole disk's page cache back first, as loop.c does (it
# flushes lo_device): a page left dirty there would reach the backing
# file at the new offset. "pwrite" leaves a page dirty on /dev/loop0,
# held open through p1 so that closing it writes nothing back; "peek"
# shows the file at the page's place right before and after the ioctl,
# and after the last close. LOOP_SET_BLOCK_SIZE 0, where the default is
# the size already set, still writes back: loop.c compares the argument,
# not the size it comes to. The case holds off periodic writeback.
scenario_partition_node() {
	mk_tmpfs
	local f=$TMPFS/p out
	truncate -s 16M "$f"
	printf 'label: dos\n,4M\n' | sfdisk -q "$f" >/dev/null
	pause_udev
	out=$($LOOPCTL batch --echo <<-END
	configure /dev/loop0 $f --flags 8
	hold /dev/loop0p1
	pwrite /dev/loop0 12288 page-one
	peek $f 12288 8
	set-status /dev/loop0p1 --offset 4096
	peek $f 12288 8
	release /dev/loop0p1
	peek $f 16384 8
	hold /dev/loop0p1
	pwrite /dev/loop0 20480 page-two
	peek $f 24576 8
	set-block-size /dev/loop0p1 4096
	peek $f 24576 8
	release /dev/loop0p1
	peek $f 24576 8
	set-block-size /dev/loop0 512
	hold /dev/loop0p1
	pwrite /dev/loop0 28672 page-3rd
	peek $f 32768 8
	set-block-size /dev/loop0 0
	peek $f 32768 8
	release /dev/loop0p1
	clr-fd /dev/loop0
	END
	)
	echo "$out"
	# Each page must still be dirty right before its ioctl, or the
	# comparison shows nothing.
	grep -qxF "> peek $f 12288 8: ........" <<<"$out" || fail "page-one written back early"
	grep -qxF "> peek $f 24576 8: ........" <<<"$out" || fail "page-two written back early"
	grep -qxF "> peek $f 32768 8: ........" <<<"$out" || fail "page-3rd written back early"
}

scenario_ioctls_normalized() { scenario_ioctls | normalize_ids; }

# LOOP_SET_DIRECT_IO and LOOP_SET_BLOCK_SIZE in each state a device can be
# in, on backing files with direct I/O alignments of 512 (ext4 on brd) and
# none (tmpfs), with the resulting sysfs state after each call.
scenario_dio_and_block_size() {
	mk_tmpfs
	mk_fs_on_brd ext4
	# For chattr +j below; a remount cannot turn delayed allocation off.
	umount "$FSDIR"
	mount -o nodelalloc /dev/ram0 "$FSDIR"
	truncate -s 8M "$TMPFS/f" "$FSDIR/f"
	local f dev=/dev/loop0 op
	# A udev probe holding the device open would defer the detach.
	pause_udev
	dio_block_size_calls() {
		for op in "set-dio $dev 1" "set-block-size $dev 4096" "set-dio $dev 1" \
			"set-block-size $dev 1024" "set-block-size $dev 3000" "set-block-size $dev 0" \
			"set-dio $dev 0" "set-block-size $dev 512" "set-dio $dev 7" "set-dio $dev 1 --ro-dev" \
			"set-block-size $dev 2048 --ro-dev"; do
			echo "$op"
			echo "state $dev"
		done
	}
	{
		echo "# unbound"
		dio_block_size_calls
		for f in "$TMPFS/f" "$FSDIR/f"; do
			echo "# bound to ${f%/f}"
			echo "configure $dev $f"
			dio_block_size_calls
			echo "clr-fd $dev"
			echo "# bound with an offset of 1000 to ${f%/f}"
			echo "configure $dev $f --offset 1000 --flags 16"
			dio_block_size_calls
			echo "clr-fd $dev"
			echo "# read-only, direct I/O from the start, on ${f%/f}"
			echo "configure $dev $f --flags 17 --block-size 4096 --ro-file"
			dio_block_size_calls
			echo "# detach pending while held open"
			echo "hold $dev"
			echo "clr-fd $dev"
			dio_block_size_calls
			echo "release $dev"
			echo "state $dev"
		done
	} | $LOOPCTL batch --echo | normalize_ids
	# losetup's own path to the same calls.
	for f in "$TMPFS/f" "$FSDIR/f"; do
		t "losetup --direct-io=on ${f%/f}" "$(losetup --direct-io=on -f --show "$f" 2>&1)"
		t "  dio, log-sec" "$(losetup -l -n -O DIO,LOG-SEC /dev/loop0)"
		t "losetup --direct-io=off" "$(losetup --direct-io=off /dev/loop0 2>&1; echo $?)"
		t "  dio" "$(cat /sys/block/loop0/loop/dio)"
		t "losetup --direct-io=on" "$(losetup --direct-io=on /dev/loop0 2>&1; echo $?)"
		t "  dio" "$(cat /sys/block/loop0/loop/dio)"
		t "losetup --direct-io=on -b 512" "$(losetup --direct-io=on -b 512 -f --show "$f" 2>&1)"
		t "  dio, log-sec" "$(losetup -l -n -O DIO,LOG-SEC /dev/loop1)"
		t "losetup -o 1000 --direct-io=on" "$(losetup -o 1000 --direct-io=on -f --show "$f" 2>&1)"
		t "  dio, log-sec" "$(losetup -l -n -O DIO,LOG-SEC /dev/loop2)"
		losetup -D
	done
	# ext4 journals this file's data: its STATX_DIOALIGN is 0, which
	# loop.c's offset check takes as a 32-bit mask (ext4 mounted with
	# nodelalloc above: it journals a file's data only then).
	truncate -s 8M "$FSDIR/j"
	chattr +j "$FSDIR/j"
	t "losetup --direct-io=on, data journaled" "$(losetup --direct-io=on -f --show "$FSDIR/j" 2>&1)"
	t "  dio, log-sec" "$(losetup -l -n -O DIO,LOG-SEC /dev/loop0)"
	t "losetup -o 4096 --direct-io=on, data journaled" \
		"$(losetup -o 4096 --direct-io=on -f --show "$FSDIR/j" 2>&1)"
	t "  dio, log-sec" "$(losetup -l -n -O DIO,LOG-SEC /dev/loop1)"
	t "losetup --direct-io=on" "$(losetup --direct-io=on /dev/loop1 2>&1; echo $?)"
	t "  dio" "$(cat /sys/block/loop1/loop/dio)"
	losetup -D
}

# LOOP_CHANGE_FD across its preconditions, and what the device shows after.
scenario_change_fd() {
	mk_tmpfs
	local d=$TMPFS
	head -c 1M /dev/zero | tr '\0' a >"$d/a"
	head -c 1M /dev/zero | tr '\0' b >"$d/b"
	truncate -s 2M "$d/big"
	pause_udev
	$LOOPCTL batch --echo <<-END | normalize_ids
	change-fd /dev/loop0 $d/b --ro-file
	configure /dev/loop0 $d/a
	change-fd /dev/loop0 $d/b --ro-file
	clr-fd /dev/loop0
	configure /dev/loop0 $d/a --flags 1 --ro-file
	state /dev/loop0
	read /dev/loop0 0
	change-fd-raw /dev/loop0 99
	change-fd /dev/loop0 $d/big --ro-file
	change-fd /dev/loop0 /dev/loop0 --ro-file
	change-fd /dev/loop0 /dev/null
	change-fd /dev/loop0 $d
	change-fd /dev/loop0 $d/b --ro-file
	state /dev/loop0
	read /dev/loop0 0
	get-status /dev/loop0
	configure /dev/loop1 $d/a --flags 1 --ro-file
	change-fd /dev/loop1 /dev/loop0 --ro-file
	state /dev/loop1
	read /dev/loop1 4096
	change-fd /dev/loop0 /dev/loop1 --ro-file
	change-fd /dev/loop1 $d/b
	state /dev/loop1
	configure /dev/loop2 $d/a --flags 5 --ro-file
	change-fd /dev/loop2 $d/b --ro-file
	state /dev/loop2
	configure /dev/loop3 $d/a --flags 17 --ro-file
	change-fd /dev/loop3 $d/b --ro-file
	state /dev/loop3
	END
}

# A device busy under its own lock (tests/busy_device.py): what waits for
# it, what must not (loop.c reads the state without the device's lock and
# takes its global lock for a bind only when the backing file is a loop
# device), and a detach by the only opener while its writes are queued,
# which must all complete (loop.c checks the state only when it takes a
# request).
scenario_busy_device() {
	mk_tmpfs
	mk_fs_on_brd ext4
	truncate -s 8M "$FSDIR/f" "$TMPFS/g"
	pause_udev
	# The frozen file system holds tasks for seconds; with the helper's
	# 60 s bounds and a slow guest, that could reach the hung-task limit.
	local hung
	hung=$(cat /proc/sys/kernel/hung_task_timeout_secs)
	echo 600 >/proc/sys/kernel/hung_task_timeout_secs
	local rc=0
	PYTHONPATH=$RLOOP_ROOT/tests python3 "$RLOOP_ROOT/tests/busy_device.py" \
		"$FSDIR" "$FSDIR/f" "$TMPFS/g" || rc=$?
	echo "$hung" >/proc/sys/kernel/hung_task_timeout_secs
	[ $rc -eq 0 ] || return $rc
	t "loop0 after the last close" "$($LOOPCTL state /dev/loop0)"
	t "the file" "$(head -c 12288 "$FSDIR/f" | md5sum | cut -c1-12)"
	resume_udev
}

# Tasks waiting for a device busy under its lock end on SIGKILL, as
# loop.c's do (mutex_lock_killable()): an ioctl, an open and
# LOOP_CTL_REMOVE (tests/busy_device.py --killed).
scenario_killable_waits() {
	mk_fs_on_brd ext4
	truncate -s 8M "$FSDIR/f"
	pause_udev
	# Without killable waits, each waiter stays 60 s in D: see above.
	local hung rc=0
	hung=$(cat /proc/sys/kernel/hung_task_timeout_secs)
	echo 600 >/proc/sys/kernel/hung_task_timeout_secs
	PYTHONPATH=$RLOOP_ROOT/tests python3 "$RLOOP_ROOT/tests/busy_device.py" \
		--killed "$FSDIR" "$FSDIR/f" || rc=$?
	echo "$hung" >/proc/sys/kernel/hung_task_timeout_secs
	resume_udev
	return $rc
}

# The 32-bit compat path (lo_compat_ioctl) in each state, from a static
# 32-bit program built once before the comparison.
scenario_compat() {
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	local dev=/dev/loop0 c
	compat_calls() {
		for c in get-status get-status64 "set-status 2048 4" "set-status64 1024 8" \
			"set-dio 1" "set-block-size 4096" "set-block-size 1000" set-capacity \
			"raw 0x4CFF" "raw 0x4C0B" "change-fd $TMPFS/f"; do
			# shellcheck disable=SC2086
			t "$1 $c" "$("$COMPAT32" $dev $c | normalize_ids)"
		done
		t "$1 state" "$($LOOPCTL state $dev)"
	}
	compat_calls unbound
	t "configure" "$("$COMPAT32" $dev configure "$TMPFS/f" 512)"
	compat_calls bound
	t "RO set-dio" "$(RO=1 "$COMPAT32" $dev set-dio 0)"
	t "RO set-status" "$(RO=1 "$COMPAT32" $dev set-status 0 0)"
	t "clr-fd" "$("$COMPAT32" $dev clr-fd)"
	t "set-fd ro" "$(RO_FILE=1 "$COMPAT32" $dev set-fd "$TMPFS/f")"
	compat_calls read-only
	t "clr-fd" "$("$COMPAT32" $dev clr-fd)"
	t "clr-fd again" "$("$COMPAT32" $dev clr-fd)"
}

# Seeded random sequences of control operations (tests/randseq.py), run
# through both drivers. udev is stopped meanwhile: its probes open the
# devices at moments that differ from run to run, which turns LOOP_CLR_FD
# into a deferred detach at random.
# The fast tier runs 4: both differences the case ever found were in the
# fourth sequence of a run.
RANDSEQ_COUNT=${RLOOP_TEST_RANDSEQ_COUNT:-$(by_tier 4 8)}
RANDSEQ_OPS=${RLOOP_TEST_RANDSEQ_OPS:-40}
RANDSEQ_SEED=${RLOOP_TEST_RANDSEQ_SEED:-$(( $(date +%s) % 100000 * 1000 ))}

scenario_random() {
	local dir rs="python3 $RLOOP_ROOT/tests/randseq.py"
	mk_tmpfs
	dir=$TMPFS/rs
	# The backing files, made once and copied fresh for each sequence.
	mkdir "$TMPFS/pristine"
	$rs --setup --dir "$TMPFS/pristine"
	pause_udev
	$rs --seed "$RANDSEQ_SEED" --count "$RANDSEQ_COUNT" --ops "$RANDSEQ_OPS" \
		--dir "$dir" --pristine "$TMPFS/pristine" | normalize_ids
	resume_udev
}


# acked_intact PATTERN FILE BYTES: whether the first BYTES of FILE (read
# with O_DIRECT if it is a device) are those of PATTERN; if not, how many
# 4 KiB blocks differ, and where.
acked_intact() {
	local flag=
	[ ! -b "$2" ] || flag=iflag=direct
	if cmp -s -n "$3" "$1" <(dd if="$2" bs=1M $flag status=none); then
		echo intact
		return
	fi
	dd if="$2" of="$TMPFS/copy" bs=1M $flag status=none
	python3 - "$1" "$TMPFS/copy" "$3" <<-'EOF'
	import sys
	n = int(sys.argv[3])
	with open(sys.argv[1], "rb") as a, open(sys.argv[2], "rb") as b:
	    want, got = a.read(n), b.read(n)
	bad = [o for o in range(0, n, 4096) if want[o:o + 4096] != got[o:o + 4096]]
	print(f"{len(bad) * 4} KiB lost, from byte {bad[0]} to {bad[-1] + 4096}")
	EOF
	rm "$TMPFS/copy"
}

# Writes into a sparse backing file whose file system fills up meanwhile
# (ext4 and xfs on brd, tmpfs with size=), in buffered and direct mode:
# dd writes until ENOSPC, and every byte it was told was written must read
# back from the device and, after detach and drop_caches, from the file.
# loop.c acknowledges a write its backing file took only in part, and
# loses the rest (an "acknowledged" line, which the comparison leaves
# out); rloop retries the rest, so that the write fails.
# SHORT_WRITE_MODES: the dio modes to run.
SHORT_WRITE_FREE_MIB=4
SHORT_WRITE_MODES="off on"
scenario_short_writes() {
	[ -b /dev/ram0 ] || fail "/dev/ram0 missing"
	pause_udev
	mk_tmpfs
	local pat=$TMPFS/pattern mnt=$RLOOP_CASE_DIR/small size fs mode dev out written err
	local on_dev on_file
	size=$(((SHORT_WRITE_FREE_MIB + 4) << 20))
	head -c "$size" /dev/urandom >"$pat"
	mkdir -p "$mnt"
	for fs in ext4 xfs tmpfs; do
		# A file system with about SHORT_WRITE_FREE_MIB of room.
		case $fs in
		ext4)
			mkfs.ext4 -q -F /dev/ram0 $((SHORT_WRITE_FREE_MIB + 2))M
			mount /dev/ram0 "$mnt"
			;;
		xfs)
			# mkfs.xfs makes nothing below 300 MiB: the rest is taken.
			mkfs.xfs -q -f /dev/ram0
			mount /dev/ram0 "$mnt"
			fallocate -l $(($(df -B1 --output=avail "$mnt" | tail -n1) -
				(SHORT_WRITE_FREE_MIB << 20) - (128 << 10))) "$mnt/filler"
			;;
		tmpfs) mount -t tmpfs -o size=$((SHORT_WRITE_FREE_MIB * 1024 + 128))k tmpfs "$mnt" ;;
		esac
		for mode in $SHORT_WRITE_MODES; do
			truncate -s "$size" "$mnt/img"
			dev=$(losetup -f --show --direct-io="$mode" "$mnt/img")
			t "$fs dio=$mode" "dio $(cat "/sys/block/${dev#/dev/}/loop/dio")"
			# One request per write (64 pages): a request the file takes
			# in part is a write dd is told about. The room is no multiple
			# of it, so that the file system fills up inside one.
			out=$(dd if="$pat" of="$dev" bs=256k oflag=direct conv=fsync 2>&1) || true
			written=$(sed -n 's/^\([0-9]*\) bytes.*/\1/p' <<<"$out")
			err=$(sed -n 's/^dd: .*: //p' <<<"$out" | head -n1)
			t "$fs dio=$mode dd" "${err:-no error}"
			on_dev=$(acked_intact "$pat" "$dev" "$written")
			losetup -d "$dev"
			sync
			echo 3 >/proc/sys/vm/drop_caches
			on_file=$(acked_intact "$pat" "$mnt/img" "$written")
			t "acknowledged $fs dio=$mode" "$written bytes, device: $on_dev, file: $on_file"
			# Progress in the kernel log, should the case time out.
			echo "rloop-test: $fs dio=$mode: $written bytes acknowledged, device: $on_dev," \
				"file: $on_file" >/dev/kmsg
			rm "$mnt/img"
			sync
		done
		umount "$mnt"
	done
	resume_udev
}

# cgroup v2 with the io and memory controllers for the root's children,
# mounted here if the guest has not.
cg_enable() {
	local root=/sys/fs/cgroup
	[ -f $root/cgroup.controllers ] || mount -t cgroup2 cgroup2 $root
	local c
	for c in io memory; do
		grep -qw $c $root/cgroup.controllers || fail "no $c controller: the kernel lacks it"
	done
	echo "+io +memory" >$root/cgroup.subtree_control
}

# cg_new NAME: a fresh child of the root cgroup, at $CG.
cg_new() {
	CG=/sys/fs/cgroup/rloop-test-$1
	[ ! -d "$CG" ] || rmdir "$CG"
	mkdir "$CG"
}

# cg_run COMMAND...: COMMAND in the cgroup $CG.
cg_run() {
	# shellcheck disable=SC2016 # the inner shell expands them
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"
}

# cg_dd_rate DD_ARGS...: dd in $CG, moving CG_MIB MiB in 1 MiB blocks;
# prints its rate in KiB/s, the time of a final fsync included.
cg_dd_rate() {
	local start end
	start=$(date +%s%N)
	cg_run dd bs=1M count="$CG_MIB" status=none "$@"
	end=$(date +%s%N)
	echo $(((CG_MIB << 10) * 1000000 / ((end - start) / 1000)))
}

# cg_stat FILE KEY: KEY's value in $CG/FILE (memory.stat: "KEY N"; io.stat:
# KEY=N on the backing device's line, $CG_DEV).
cg_stat() {
	if [ "$1" = io.stat ]; then
		awk -v d="$CG_DEV" -v k="$2" '$1 == d { for (i = 2; i <= NF; i++)
			if (split($i, kv, "=") == 2 && kv[1] == k) print kv[2] }' "$CG/io.stat" | grep . || echo 0
	else
		awk -v k="$2" '$1 == k { print $2 }' "$CG/$1"
	fi
}

# yes_no CONDITION...: "yes" if the test command succeeds, else "no".
yes_no() { if "$@"; then echo yes; else echo no; fi; }

# throttled RATE UNTHROTTLED: whether RATE (KiB/s) is under twice the
# limit and under half of the rate without it.
throttled() {
	if [ "$1" -lt $((2 * CG_LIMIT_KIB)) ] && [ $((2 * $1)) -lt "$2" ]; then echo yes; else echo no; fi
}

# The submitter's cgroups are charged with the backing device's I/O and the
# backing file's page cache, as loop.c charges them on its workers
# (cmd->blkcg_css, cmd->memcg_css): a backing file on brd (ext4), a child
# cgroup with io.max on brd, and dd with O_DIRECT on the loop device, so
# that the only page cache is the backing file's. For each dio mode:
# whether reads and direct writes (with a final fsync) go at most twice the
# limit and at most half as fast as the same in the root cgroup just before
# ("throttled"; a guest too slow for the limit to matter says "no" under
# both drivers), whether the cgroup's io.stat holds their bytes on
# brd, and whether another cgroup's memory.stat "file" grew by half of a
# write. The rates and counters themselves, which vary, go to
# $RLOOP_CASE_DIR/cgroup-numbers.
# Buffered writes are not throttled under either driver here: the backing
# file's timestamp update attaches its inode to the root cgroup's
# writeback (the worker's own cgroup), so the fsync's writeback is the
# root's, and their rate, not far above the threshold in a slow guest, is
# only printed. The limit is low for the same reason: unthrottled, the
# debug kernel under TCG moved 0.3 to 2.2 MiB/s with the host busy.
CG_MIB=1
CG_LIMIT_KIB=256
scenario_cgroup() {
	cg_enable
	mk_fs_on_brd ext4
	pause_udev
	CG_DEV=$(cat /sys/block/ram0/dev)
	local mode dev rate base_r base_w file0 file1 rbytes wbytes driver=loop.c
	[ ! -d /sys/module/rloop ] || driver="rloop ${RLOOP_DIFF_PARAMS:-}"
	local numbers=$RLOOP_CASE_DIR/cgroup-numbers
	echo "# $driver" >>"$numbers"
	# Data on brd (a hole would be read without I/O), none of it cached.
	dd if=/dev/zero of="$FSDIR/img" bs=1M count=$((4 * CG_MIB)) conv=fsync status=none
	for mode in on off; do
		sync
		echo 3 >/proc/sys/vm/drop_caches
		dev=$(losetup -f --show --direct-io=$mode "$FSDIR/img")
		t "dio=$mode" "dio $(cat "/sys/block/${dev#/dev/}/loop/dio")"
		# The same I/O unthrottled, on a part of the file not read yet.
		CG=/sys/fs/cgroup
		base_r=$(cg_dd_rate if="$dev" of=/dev/null skip=$((3 * CG_MIB)) iflag=direct)
		base_w=$(cg_dd_rate if=/dev/zero of="$dev" seek=$((3 * CG_MIB)) oflag=direct conv=fsync)
		cg_new throttled
		echo "$CG_DEV rbps=$((CG_LIMIT_KIB << 10)) wbps=$((CG_LIMIT_KIB << 10))" >"$CG/io.max"
		rate=$(cg_dd_rate if="$dev" of=/dev/null iflag=direct)
		echo "dio=$mode read: $rate KiB/s, limit $CG_LIMIT_KIB, unthrottled $base_r" >>"$numbers"
		t "dio=$mode read, throttled" "$(throttled "$rate" "$base_r")"
		rate=$(cg_dd_rate if=/dev/zero of="$dev" seek="$CG_MIB" oflag=direct conv=fsync)
		echo "dio=$mode write: $rate KiB/s, limit $CG_LIMIT_KIB, unthrottled $base_w" >>"$numbers"
		[ $mode = off ] || t "dio=$mode write, throttled" "$(throttled "$rate" "$base_w")"
		rbytes=$(cg_stat io.stat rbytes)
		wbytes=$(cg_stat io.stat wbytes)
		echo "dio=$mode io.stat: rbytes=$rbytes wbytes=$wbytes" >>"$numbers"
		t "dio=$mode io.stat rbytes >= what was read" "$(yes_no [ "$rbytes" -ge $((CG_MIB << 20)) ])"
		t "dio=$mode io.stat wbytes >= what was written" "$(yes_no [ "$wbytes" -ge $((CG_MIB << 20)) ])"
		rmdir "$CG"
		cg_new memory
		file0=$(cg_stat memory.stat file)
		cg_run dd if=/dev/zero of="$dev" bs=1M count="$CG_MIB" seek=$((2 * CG_MIB)) \
			oflag=direct status=none
		file1=$(cg_stat memory.stat file)
		echo "dio=$mode memory.stat file: $file0 -> $file1" >>"$numbers"
		t "dio=$mode memory.stat file grew by half of a write" \
			"$(yes_no [ $((file1 - file0)) -ge $((CG_MIB << 19)) ])"
		rmdir "$CG"
		losetup -d "$dev"
	done
	resume_udev
}

# Writeback that another task starts: a cgroup dirties the device's page
# cache, and a task of the root cgroup fsyncs the device. With cgroup
# writeback the bios carry the dirtying cgroup's blkcg, and loop.c's worker
# charges the backing device's I/O to it; rloop, which would write in the
# fsyncing task, must leave them to its worker, which does the same.
# Whether the cgroup's io.stat holds the bytes on brd. The device is
# direct-I/O on brd itself: a file's writes wait to update its time
# stamps, which keeps them off rloop's fast path, and a buffered device's
# backing file is written back for the root (see above).
scenario_cgroup_writeback() {
	cg_enable
	pause_udev
	CG_DEV=$(cat /sys/block/ram0/dev)
	local dev wbytes driver=loop.c
	[ ! -d /sys/module/rloop ] || driver=rloop
	# Written once: brd allocates its pages on the first write.
	dd if=/dev/zero of=/dev/ram0 bs=1M count=16 oflag=direct status=none
	dev=$(losetup -f --show --direct-io=on /dev/ram0)
	# Held open, so that dd's close does not write back (the last close
	# of a block device syncs it, in dd's own cgroup).
	exec 3<"$dev"
	cg_new writeback
	cg_run dd if=/dev/zero of="$dev" bs=1M count=4 status=none
	sync "$dev"
	wbytes=$(cg_stat io.stat wbytes)
	echo "$driver: writeback of 4 MiB from the root cgroup: wbytes=$wbytes" >>"$RLOOP_CASE_DIR/cgroup-numbers"
	t "fsynced by the root, io.stat wbytes on brd >= what the cgroup dirtied" \
		"$(yes_no [ "$wbytes" -ge $((4 << 20)) ])"
	exec 3<&-
	rmdir "$CG"
	losetup -d "$dev"
	resume_udev
}

# The module parameters: what a load with each set returns, and what it
# makes. It unloads the driver with_driver loaded, loads it with each set
# in turn (the kernel's own errno, from finit_module), and with none again
# at the end, for with_driver to unload.
scenario_module_parameters() {
	local module=rloop ko=$RLOOP_KO params range node=$RLOOP_CASE_DIR/node
	if module_loaded loop; then
		module=loop
		ko=$(modinfo -n loop)
	fi
	pause_udev
	rmmod $module
	while read -r params; do
		# shellcheck disable=SC2086 # one word per parameter
		t "load ${params:-with none}" "$($LOOPCTL load-module "$ko" $params)"
		module_loaded $module || continue
		t devices "$(find /sys/block -name 'loop*' | wc -l)"
		t nr_requests "$(cat /sys/block/loop0/queue/nr_requests 2>/dev/null || echo none)"
		range=$(cat /sys/block/loop0/range 2>/dev/null || echo 1)
		t "minors per device" "$range"
		# Legacy autoloading: an open of a missing device's node makes it,
		# unless a given max_loop is no more than its index.
		mknod "$node" b 7 $((9 * range))
		{ : <"$node"; } 2>/dev/null || true
		rm "$node"
		t "loop9 after an open of its node" "$(yes_no [ -e /sys/block/loop9 ])"
		rmmod $module
	done <<-END

	max_loop=0
	max_loop=2 max_part=-1
	max_loop=010 hw_queue_depth=0x10
	max_loop=-1
	max_loop=2147483648
	max_loop=4097 max_part=255
	max_part=3
	max_part=256
	max_part=0x7fffffff
	max_part=4294967296
	hw_queue_depth=0
	hw_queue_depth=-1
	hw_queue_depth=4294967297
	END
	$LOOPCTL load-module "$ko" >/dev/null
	resume_udev
}

# The memory controller enabled below the io one: a task in parent/child,
# where the child has a memcg of its own but the parent's blkcg. loop.c
# charges the backing file's page cache to the memcg of the bio's blkcg's
# cgroup, the parent's, not to the child's.
scenario_cgroup_memory_below_io() {
	cg_enable
	mk_fs_on_brd xfs
	pause_udev
	local dev parent child0 child1 parent0 parent1 own driver=loop.c
	[ ! -d /sys/module/rloop ] || driver=rloop
	dd if=/dev/zero of="$FSDIR/img" bs=1M count=16 conv=fsync status=none
	sync
	echo 3 >/proc/sys/vm/drop_caches
	# Buffered over xfs, whose buffered writes can be tried NOWAIT.
	dev=$(losetup -f --show --direct-io=off "$FSDIR/img")
	cg_new memory-below-io
	parent=$CG
	echo +memory >"$parent/cgroup.subtree_control"
	mkdir "$parent/child"
	parent0=$(cg_stat memory.stat file)
	CG=$parent/child
	child0=$(cg_stat memory.stat file)
	# Small writes, several to a clock tick: a NOWAIT write that must
	# update the file's time stamps (the first in a tick) goes to the
	# worker, which would charge the parent.
	cg_run dd if=/dev/zero of="$dev" bs=4K count=2048 oflag=direct status=none
	child1=$(cg_stat memory.stat file)
	CG=$parent
	parent1=$(cg_stat memory.stat file)
	echo "$driver: memory.stat file, child $child0 -> $child1, parent $parent0 -> $parent1" \
		>>"$RLOOP_CASE_DIR/cgroup-numbers"
	# memory.stat counts the children's pages too: the parent's own are
	# the difference.
	own=$(((parent1 - child1) - (parent0 - child0)))
	t "8 MiB written from the child: the parent's own memory.stat file grew by 4 MiB" \
		"$(yes_no [ "$own" -ge $((4 << 20)) ])"
	t "the child's grew by 1 MiB" "$(yes_no [ $((child1 - child0)) -ge $((1 << 20)) ])"
	rmdir "$parent/child" "$parent"
	losetup -d "$dev"
	resume_udev
}

case_diff_ioctls() { compare_drivers scenario_ioctls_normalized 45; }
case_diff_sysfs_and_losetup() { compare_drivers scenario_sysfs_and_losetup 60; }
case_diff_uevents() { compare_drivers scenario_uevents 4; }
case_diff_module_parameters() { compare_drivers scenario_module_parameters 30; }
case_diff_partitions() { compare_drivers scenario_partitions 8; }
case_diff_partition_node() {
	local expire
	expire=$(cat /proc/sys/vm/dirty_expire_centisecs)
	on_exit "echo $expire >/proc/sys/vm/dirty_expire_centisecs"
	echo 360000 >/proc/sys/vm/dirty_expire_centisecs
	compare_drivers scenario_partition_node 16
}
case_diff_dio_and_block_size() {
	# The scenario runs as a job, whose on_exit is lost: brd goes here.
	on_exit "rmmod brd"
	compare_drivers scenario_dio_and_block_size 150
}
case_diff_change_fd() { compare_drivers scenario_change_fd 28; }
case_diff_busy_device() {
	# The scenario runs as a job, whose on_exit is lost: brd goes here.
	on_exit "rmmod brd"
	compare_drivers scenario_busy_device 22
}
case_diff_killable_waits() {
	# The scenario runs as a job, whose on_exit is lost: brd goes here.
	on_exit "rmmod brd"
	compare_drivers scenario_killable_waits 13
}
case_diff_short_writes() {
	modprobe brd rd_nr=1 rd_size=$((320 * 1024)) || fail "modprobe brd"
	on_exit "rmmod brd"
	compare_drivers scenario_short_writes 18
	local out=$RLOOP_CASE_DIR/scenario_short_writes
	# By default the writes go through the submitting task first, where
	# the backing file system takes them without blocking; nowait=0 sends
	# them all through the worker.
	RLOOP_DIFF_PARAMS=nowait=0 with_driver rust scenario_short_writes \
		>"$out.rust-worker" 2>&1 ||
		{ tail -n 20 "$out.rust-worker"; fail "scenario_short_writes failed under rloop nowait=0"; }
	grep -vEf <(grep -v '^#' "$RLOOP_ROOT/tests/diff-allowlist.txt" | cut -f1 | grep .) \
		"$out.rust-worker" | diff "$out.c.cmp" - ||
		fail "scenario_short_writes: rloop nowait=0 differs from loop.c (C < > rloop)"
	echo "what dd was told was written, and what of it reads back:"
	local what c r
	while read -r what; do
		c=$(grep -F "acknowledged $what: " "$out.c")
		printf '  %s\n    loop.c:         %s\n' "$what" "${c#*: }"
		r=$(grep -F "acknowledged $what: " "$out.rust")
		printf '    rloop:          %s\n' "${r#*: }"
		[[ $r == *"device: intact, file: intact" ]] || fail "rloop lost acknowledged writes ($what)"
		r=$(grep -F "acknowledged $what: " "$out.rust-worker")
		printf '    rloop nowait=0: %s\n' "${r#*: }"
		[[ $r == *"device: intact, file: intact" ]] || fail "rloop nowait=0 lost acknowledged writes ($what)"
	done < <(sed -n 's/^acknowledged \([^:]*\): .*/\1/p' "$out.c")
	assert_eq 6 "$(grep -c '^acknowledged ' "$out.rust")" "rloop runs"
	assert_eq 6 "$(grep -c '^acknowledged ' "$out.rust-worker")" "rloop nowait=0 runs"
	# The file systems did fill up mid-write: each dd ended with ENOSPC
	# (compared with loop.c's above).
	assert_eq 12 "$(grep -c ' dd: No space left on device$' "$out.rust" "$out.rust-worker" |
		awk -F: '{ n += $2 } END { print n }')" "dd runs that ended with ENOSPC"
}
case_diff_cgroup() {
	modprobe brd rd_nr=1 rd_size=$((64 * 1024)) || fail "modprobe brd"
	on_exit "rmmod brd"
	on_exit "rmdir /sys/fs/cgroup/rloop-test-* 2>/dev/null"
	local out=$RLOOP_CASE_DIR/scenario_cgroup numbers=$RLOOP_CASE_DIR/cgroup-numbers
	: >"$numbers"
	# In a subshell, so that the numbers show whatever happens.
	(compare_drivers scenario_cgroup 11) || { cat "$numbers"; exit 1; }
	# By default reads and writes go through the submitting task first,
	# and only what would block to the worker; nowait=0 sends all of them
	# to the worker, which must charge the same cgroups.
	RLOOP_DIFF_PARAMS=nowait=0 with_driver rust scenario_cgroup >"$out.rust-worker" 2>&1 ||
		{ tail -n 20 "$out.rust-worker"; cat "$numbers"; fail "scenario_cgroup failed under rloop nowait=0"; }
	echo "rates and counters (limit $CG_LIMIT_KIB KiB/s, $CG_MIB MiB each):"
	sed 's/^/  /' "$numbers"
	diff "$out.c" "$out.rust-worker" ||
		fail "scenario_cgroup: rloop nowait=0 differs from loop.c (C < > rloop)"
}
case_diff_cgroup_writeback() {
	modprobe brd rd_nr=1 rd_size=$((16 * 1024)) || fail "modprobe brd"
	on_exit "rmmod brd"
	on_exit "rmdir /sys/fs/cgroup/rloop-test-* 2>/dev/null"
	: >"$RLOOP_CASE_DIR/cgroup-numbers"
	(compare_drivers scenario_cgroup_writeback 1) || { cat "$RLOOP_CASE_DIR/cgroup-numbers"; exit 1; }
	cat "$RLOOP_CASE_DIR/cgroup-numbers"
	grep -q '^fsynced by the root.*: yes$' "$RLOOP_CASE_DIR/scenario_cgroup_writeback.rust" ||
		fail "the cgroup that dirtied the pages was not charged for their backing I/O"
}
case_diff_cgroup_memory_below_io() {
	on_exit "rmmod brd"
	on_exit "rmdir /sys/fs/cgroup/rloop-test-*/child /sys/fs/cgroup/rloop-test-* 2>/dev/null"
	: >"$RLOOP_CASE_DIR/cgroup-numbers"
	(compare_drivers scenario_cgroup_memory_below_io 2) || { cat "$RLOOP_CASE_DIR/cgroup-numbers"; exit 1; }
	cat "$RLOOP_CASE_DIR/cgroup-numbers"
	grep -q '^the child.*: no$' "$RLOOP_CASE_DIR/scenario_cgroup_memory_below_io.rust" ||
		fail "the child's memcg was charged for the backing file's page cache"
}
case_diff_compat() {
	[ -x "$COMPAT32" ] || fail "$COMPAT32 is missing: make test-vm builds it (gcc-multilib)"
	compare_drivers scenario_compat 40
}
case_diff_random_sequences() {
	echo "random sequences: $RANDSEQ_COUNT of $RANDSEQ_OPS operations, seeds from $RANDSEQ_SEED"
	echo "reproduce: make test-vm TESTS=40-diff/diff_random RLOOP_TEST_RANDSEQ_SEED=$RANDSEQ_SEED" \
		"RLOOP_TEST_RANDSEQ_COUNT=$RANDSEQ_COUNT RLOOP_TEST_RANDSEQ_OPS=$RANDSEQ_OPS"
	compare_drivers scenario_random $((RANDSEQ_COUNT * RANDSEQ_OPS))
	echo "compared $RANDSEQ_COUNT sequences: $(grep '^> ' "$RLOOP_CASE_DIR/scenario_random.rust" |
		grep -vc '^> state ') operations, $(grep -c '^> state ' "$RLOOP_CASE_DIR/scenario_random.rust") state probes"
}
