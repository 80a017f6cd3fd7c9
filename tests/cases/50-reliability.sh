# shellcheck shell=bash
# Reliability (issue 6): backing-file I/O errors, ENOSPC, flush semantics,
# races under fio verify, ioctl fuzzing as root and unprivileged (diffed
# against loop.c). Every case prints its figures, and ends with a kmemleak
# scan after rmmod. tests/soak/ runs the same cases longer (make soak).
#
# Scale (environment): RLOOP_SEED (default 1), RLOOP_RACE_SECS (per race
# kind, default 3 in make check, 6 in make check-full),
# RLOOP_FUZZ_ITERATIONS (default 150, 300 in check-full), RLOOP_IO_CYCLES
# (fault windows, default 1). make soak scales them up.

LOOPCTL="python3 $RLOOP_ROOT/tests/loopctl.py"
STORM=(python3 "$RLOOP_ROOT/tests/storm.py")
FUZZ=(python3 "$RLOOP_ROOT/tests/fuzz_ioctl.py")
REL_SEED=${RLOOP_SEED:-1}
RACE_SECS=${RLOOP_RACE_SECS:-$(by_tier 3 6)}
FUZZ_ITERATIONS=${RLOOP_FUZZ_ITERATIONS:-$(by_tier 150 300)}
IO_CYCLES=${RLOOP_IO_CYCLES:-1}

# rel_brd SIZE_MIB: a ram disk /dev/ram0, removed when the case ends.
rel_brd() {
	[ ! -b /dev/ram0 ] || fail "/dev/ram0 already exists"
	modprobe brd rd_nr=1 rd_size=$(($1 * 1024)) || fail "modprobe brd"
	on_exit "rmmod brd"
}

# fault_table DM_SECTORS FILE...: a device-mapper table that maps the
# backing device linearly, except the sectors of FILEs' data, which fail.
fault_table() {
	local sectors=$1
	shift
	local f
	for f in "$@"; do xfs_io -r -c fiemap "$f"; done | python3 -c '
import re, sys
total = int(sys.argv[1])
ext = []
for line in sys.stdin:
    m = re.match(r"\s*\d+: \[\d+\.\.\d+\]: (\d+)\.\.(\d+)", line)
    if m:
        ext.append((int(m.group(1)), int(m.group(2)) + 1))
ext.sort()
pos = 0
for a, b in ext:
    if a > pos:
        print(f"{pos} {a - pos} linear /dev/ram0 {pos}")
    print(f"{a} {b - a} error")
    pos = b
if pos < total:
    print(f"{pos} {total - pos} linear /dev/ram0 {pos}")
' "$sectors"
}

# dm_swap NAME TABLE: replace a live table (suspend, load, resume).
dm_swap() {
	dmsetup suspend --nolockfs "$1"
	dmsetup load "$1" <<<"$2"
	dmsetup resume "$1"
}

# expect_eio WHAT COMMAND...: COMMAND fails within 120 s and says EIO.
expect_eio() {
	local what=$1 rc=0 out
	shift
	out=$(timeout 120 "$@" 2>&1) || rc=$?
	[ "$rc" -ne 124 ] || fail "$what: hung (no completion in 120 s)"
	[ "$rc" -ne 0 ] || fail "$what: succeeded while the backing storage fails"
	assert_match 'Input/output error' "$out" "$what"
	EIO_SEEN=$((EIO_SEEN + 1))
}

case_backing_io_errors_then_recovery() {
	command -v dmsetup >/dev/null || fail "dmsetup missing (scripts/deps.sh installs it)"
	kmemleak_begin
	load_rloop
	rel_brd 96
	local sectors dm=rloop-rel-err back=$RLOOP_CASE_DIR/back
	sectors=$(blockdev --getsz /dev/ram0)
	local linear="0 $sectors linear /dev/ram0 0"
	dmsetup create "$dm" <<<"$linear"
	on_exit "dmsetup remove --retry $dm"
	mkfs.ext4 -q -F -b 4096 "/dev/mapper/$dm"
	mkdir -p "$back"
	mount -o errors=continue "/dev/mapper/$dm" "$back"
	# Fully allocated images: a fault window covers their data only, so
	# that the backing file system's metadata stays writable.
	dd if=/dev/zero of="$back/img-dio" bs=1M count=16 conv=fsync status=none
	dd if=/dev/zero of="$back/img-buf" bs=1M count=16 conv=fsync status=none
	local errtable
	errtable=$(fault_table "$sectors" "$back/img-dio" "$back/img-buf")
	grep -q ' error$' <<<"$errtable" || fail "no extent found for the fault table"
	losetup --direct-io=on /dev/loop0 "$back/img-dio"
	losetup --direct-io=off /dev/loop1 "$back/img-buf"
	assert_eq 1 "$(cat /sys/block/loop0/loop/dio)" "loop0 dio"
	assert_eq 0 "$(cat /sys/block/loop1/loop/dio)" "loop1 dio"

	RANDOM=$REL_SEED
	EIO_SEEN=0
	local faults=0 ops=0 cycle dev a b verified=0
	local -A aoff boff
	for cycle in $(seq 1 "$IO_CYCLES"); do
		for dev in loop0 loop1; do
			# Acknowledged writes: region A, written and flushed.
			a=$((RANDOM % 6))
			aoff[$dev]=$a
			head -c 1M /dev/urandom >"$RLOOP_CASE_DIR/A-$dev"
			dd if="$RLOOP_CASE_DIR/A-$dev" of=/dev/$dev bs=64k seek=$((a * 16)) \
				oflag=direct conv=fsync status=none
			ops=$((ops + 1))
		done
		dm_swap "$dm" "$errtable"
		faults=$((faults + 1))
		# Neither page cache may hide the fault.
		echo 3 >/proc/sys/vm/drop_caches
		for dev in loop0 loop1; do
			b=$((8 + RANDOM % 6))
			boff[$dev]=$b
			expect_eio "direct read of $dev" \
				dd if=/dev/$dev of=/dev/null bs=64k count=16 iflag=direct status=none
			expect_eio "buffered read of $dev" \
				dd if=/dev/$dev of=/dev/null bs=64k skip=$((b * 16)) count=16 status=none
			expect_eio "direct write and flush of $dev" \
				dd if=/dev/urandom of=/dev/$dev bs=64k seek=$((b * 16)) count=16 \
				oflag=direct conv=fsync status=none
			expect_eio "buffered write and flush of $dev" \
				dd if=/dev/urandom of=/dev/$dev bs=64k seek=$((b * 16 + 8)) count=4 \
				conv=fsync status=none
			ops=$((ops + 4))
		done
		{ [ -e /sys/block/loop0/loop ] && [ -e /sys/block/loop1/loop ]; } ||
			fail "an I/O error detached a device"
		dm_swap "$dm" "$linear"
		echo 3 >/proc/sys/vm/drop_caches
		for dev in loop0 loop1; do
			a=${aoff[$dev]}
			b=${boff[$dev]}
			# The acknowledged writes are intact, and I/O works again.
			cmp "$RLOOP_CASE_DIR/A-$dev" \
				<(dd if=/dev/$dev bs=64k skip=$((a * 16)) count=16 iflag=direct status=none) ||
				fail "cycle $cycle: acknowledged write lost on $dev"
			head -c 1M /dev/urandom >"$RLOOP_CASE_DIR/C-$dev"
			dd if="$RLOOP_CASE_DIR/C-$dev" of=/dev/$dev bs=64k seek=$((b * 16)) \
				oflag=direct conv=fsync status=none || fail "cycle $cycle: write after recovery on $dev"
			echo 3 >/proc/sys/vm/drop_caches
			cmp "$RLOOP_CASE_DIR/C-$dev" \
				<(dd if=/dev/$dev bs=64k skip=$((b * 16)) count=16 iflag=direct status=none) ||
				fail "cycle $cycle: write after recovery reads back wrong on $dev"
			ops=$((ops + 3))
			verified=$((verified + (2 << 20)))
		done
	done
	# What the devices acknowledged last is in the backing files themselves.
	losetup -d /dev/loop0 /dev/loop1
	echo 3 >/proc/sys/vm/drop_caches
	cmp "$RLOOP_CASE_DIR/C-loop0" <(dd if="$back/img-dio" bs=64k skip=$((boff[loop0] * 16)) count=16 status=none) ||
		fail "backing file of loop0"
	cmp "$RLOOP_CASE_DIR/C-loop1" <(dd if="$back/img-buf" bs=64k skip=$((boff[loop1] * 16)) count=16 status=none) ||
		fail "backing file of loop1"
	echo "io-errors: seed=$REL_SEED operations=$ops faults_injected=$faults eio_seen=$EIO_SEEN" \
		"bytes_verified=$verified"
	umount "$back"
	kmemleak_check
}

case_enospc_on_sparse_backing_file() {
	kmemleak_begin
	load_rloop
	local small=$RLOOP_CASE_DIR/small mnt=$RLOOP_CASE_DIR/mnt out rc
	mkdir -p "$small" "$mnt"
	mount -t tmpfs -o size=32M tmpfs "$small"
	# The raw device: direct writes past the free space fail.
	truncate -s 256M "$small/raw"
	losetup /dev/loop0 "$small/raw"
	rc=0
	out=$(timeout 300 dd if=/dev/zero of=/dev/loop0 bs=1M count=64 oflag=direct 2>&1) || rc=$?
	[ "$rc" -ne 124 ] || fail "direct write into a full backing file system hung"
	[ "$rc" -ne 0 ] || fail "64 MiB written into a 32 MiB file system"
	assert_match 'No space left on device|Input/output error' "$out" "raw write past the free space"
	local raw_written
	raw_written=$(sed -n 's/^\([0-9]*\) bytes.*/\1/p' <<<"$out")
	local raw_err
	raw_err=$(grep -oE 'No space left on device|Input/output error' <<<"$out" | head -n1)
	losetup -d /dev/loop0
	rm "$small/raw"

	# A file system on the device: the data writes that do not fit fail,
	# its metadata (all written by mkfs) stays consistent.
	truncate -s 256M "$small/img"
	losetup /dev/loop0 "$small/img"
	mkfs.ext4 -q -F -N 2048 -J size=4 -O ^metadata_csum,^uninit_bg \
		-E lazy_itable_init=0,lazy_journal_init=0,nodiscard /dev/loop0
	mount -o discard /dev/loop0 "$mnt"
	head -c 4M /dev/urandom >"$RLOOP_CASE_DIR/kept"
	dd if="$RLOOP_CASE_DIR/kept" of="$mnt/kept" bs=1M conv=fsync status=none
	local sum
	sum=$(sha256sum <"$RLOOP_CASE_DIR/kept")
	rc=0
	out=$(timeout 300 dd if=/dev/urandom of="$mnt/big" bs=1M count=64 conv=fsync 2>&1) || rc=$?
	[ "$rc" -ne 124 ] || fail "fsync of a file system on a full backing file hung"
	[ "$rc" -ne 0 ] || fail "64 MiB flushed through a 32 MiB backing file system"
	assert_match 'No space left on device|Input/output error' "$out" "fsync past the free space"
	local fs_err recovery=no
	fs_err=$(grep -oE 'No space left on device|Input/output error' <<<"$out" | head -n1)
	umount "$mnt"
	# A metadata block allocated in a hole of the backing file could not
	# be written either: ext4 kept it in its journal. Once the backing
	# file system has room again (here: it grows), mounting replays the
	# journal, and the file system must then be consistent.
	dumpe2fs -h /dev/loop0 2>/dev/null | grep -q needs_recovery && recovery=yes
	mount -o remount,size=64M "$small"
	mount -o discard /dev/loop0 "$mnt"
	umount "$mnt"
	rc=0
	fsck.ext4 -n -f /dev/loop0 >"$RLOOP_CASE_DIR/fsck1" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { cat "$RLOOP_CASE_DIR/fsck1"; fail "fsck after ENOSPC: exit $rc"; }
	# Freeing space inside (discard punches holes in the backing file)
	# makes room: writes work again and the fsynced file is intact.
	mount -o discard /dev/loop0 "$mnt"
	assert_eq "$sum" "$(sha256sum <"$mnt/kept")" "fsynced file after ENOSPC"
	rm -f "$mnt/big"
	fstrim "$mnt" || true
	sync
	head -c 4M /dev/urandom >"$RLOOP_CASE_DIR/later"
	dd if="$RLOOP_CASE_DIR/later" of="$mnt/later" bs=1M conv=fsync status=none ||
		fail "no write possible after space was freed"
	umount "$mnt"
	echo 3 >/proc/sys/vm/drop_caches
	rc=0
	fsck.ext4 -n -f /dev/loop0 >"$RLOOP_CASE_DIR/fsck2" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { cat "$RLOOP_CASE_DIR/fsck2"; fail "fsck after recovery: exit $rc"; }
	mount -o ro /dev/loop0 "$mnt"
	cmp "$RLOOP_CASE_DIR/later" "$mnt/later" || fail "file written after recovery"
	umount "$mnt"
	losetup -d /dev/loop0
	echo "enospc: raw_bytes_written=${raw_written:-0} raw_error='$raw_err' fs_error='$fs_err'" \
		"journal_replay_needed=$recovery fsck_runs=2 fsck_errors=0 bytes_verified=$((8 << 20))"
	kmemleak_check
}

# find_in FILE PATTERN_FILE: is a 64 KiB chunk from the middle of
# PATTERN_FILE somewhere in FILE?
find_in() {
	python3 - "$1" "$2" <<-'EOF'
	import mmap, sys
	pat = open(sys.argv[2], "rb").read()
	chunk = pat[len(pat) // 2:len(pat) // 2 + 65536]
	with open(sys.argv[1], "rb") as f:
	    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
	    sys.exit(0 if m.find(chunk) >= 0 else 1)
	EOF
}

case_fsync_reaches_backing_storage() {
	kmemleak_begin
	load_rloop
	mk_tmpfs
	rel_brd 96
	local back=$RLOOP_CASE_DIR/back mode dev
	mkdir -p "$back"
	mkfs.ext4 -q -F -b 4096 /dev/ram0
	mount /dev/ram0 "$back"
	for mode in on off; do
		dd if=/dev/zero of="$back/img-$mode" bs=1M count=32 conv=fsync status=none
	done
	sync
	# No background writeback while the case runs: what reaches the ram
	# disk gets there because somebody flushed it.
	local expire writeback
	expire=$(cat /proc/sys/vm/dirty_expire_centisecs)
	writeback=$(cat /proc/sys/vm/dirty_writeback_centisecs)
	on_exit "echo $expire >/proc/sys/vm/dirty_expire_centisecs; echo $writeback >/proc/sys/vm/dirty_writeback_centisecs"
	echo 360000 >/proc/sys/vm/dirty_expire_centisecs
	echo 0 >/proc/sys/vm/dirty_writeback_centisecs
	for mode in on off; do
		dev=$(losetup -f --show --direct-io=$mode "$back/img-$mode")
		mkfs.ext4 -q -F "$dev"
		mkdir -p "$RLOOP_CASE_DIR/upper-$mode"
		mount "$dev" "$RLOOP_CASE_DIR/upper-$mode"
	done
	sync
	# The control: written into the backing file system without a flush.
	head -c 1M /dev/urandom >"$RLOOP_CASE_DIR/control"
	cp "$RLOOP_CASE_DIR/control" "$back/control"
	for mode in on off; do
		head -c 2M /dev/urandom >"$RLOOP_CASE_DIR/data-$mode"
		dd if="$RLOOP_CASE_DIR/data-$mode" of="$RLOOP_CASE_DIR/upper-$mode/file" bs=64k \
			conv=fsync status=none
		mkdir "$RLOOP_CASE_DIR/upper-$mode/dir"
		head -c 64k /dev/urandom >"$RLOOP_CASE_DIR/upper-$mode/dir/small"
		xfs_io -c fsync "$RLOOP_CASE_DIR/upper-$mode/dir/small"
		xfs_io -r -c fsync "$RLOOP_CASE_DIR/upper-$mode/dir"
		cp "$RLOOP_CASE_DIR/upper-$mode/dir/small" "$RLOOP_CASE_DIR/small-$mode"
	done
	# Power cut: the ram disk as it is now, read past every page cache.
	dd if=/dev/ram0 of="$TMPFS/snap" bs=1M iflag=direct status=none
	local found=0
	for mode in on off; do
		find_in "$TMPFS/snap" "$RLOOP_CASE_DIR/data-$mode" ||
			fail "fsynced data (dio $mode) is not on the backing storage"
		found=$((found + 1))
	done
	if find_in "$TMPFS/snap" "$RLOOP_CASE_DIR/control"; then
		fail "unflushed control data reached the ram disk: the check could not fail"
	fi
	# Recover from the snapshot, as after a crash: the backing file
	# system, then each upper one, replaying their journals.
	local snapdev snapmnt=$RLOOP_CASE_DIR/snap rmnt=$RLOOP_CASE_DIR/recovered sum_ok=0
	mkdir -p "$snapmnt" "$rmnt"
	snapdev=$(losetup -f --show "$TMPFS/snap")
	mount "$snapdev" "$snapmnt"
	for mode in on off; do
		dev=$(losetup -f --show "$snapmnt/img-$mode")
		mount "$dev" "$rmnt"
		cmp "$RLOOP_CASE_DIR/data-$mode" "$rmnt/file" || fail "fsynced file lost in the crash (dio $mode)"
		cmp "$RLOOP_CASE_DIR/small-$mode" "$rmnt/dir/small" || fail "fsynced dir entry lost (dio $mode)"
		umount "$rmnt"
		fsck.ext4 -n -f "$dev" >/dev/null 2>&1 || fail "recovered upper file system not clean (dio $mode)"
		losetup -d "$dev"
		sum_ok=$((sum_ok + 1))
	done
	umount "$snapmnt"
	losetup -d "$snapdev"
	echo "flush: fsynced_files_on_storage=$found recovered_after_crash=$sum_ok" \
		"unflushed_control_on_storage=0 bytes_verified=$(((2 << 20) * 2 + (64 << 10) * 2))"
	umount "$RLOOP_CASE_DIR/upper-on" "$RLOOP_CASE_DIR/upper-off"
	kmemleak_check
}

# fio_loop DEV SECS SEED TAG [SIZE]: fio write-and-verify runs of SIZE
# (default 1 MiB) on DEV until SECS have passed (at least one), direct and
# buffered I/O in turn. Every run must verify clean. Writes "RUNS BYTES"
# to $RLOOP_CASE_DIR/TAG.fio.
fio_loop() {
	local dev=$1 end=$((SECONDS + $2)) seed=$3 tag=$4 n=0 bytes=0 size=${5:-$((1 << 20))} direct
	while [ "$n" -eq 0 ] || [ "$SECONDS" -lt "$end" ]; do
		direct=$(((seed + n) % 2))
		if [ "$direct" -eq 1 ]; then
			set -- --ioengine=libaio --iodepth=8 --direct=1
		else
			set -- --ioengine=psync --direct=0 --end_fsync=1
		fi
		fio --name=v --filename="$dev" "$@" --rw="$([ $(((seed + n) % 3)) -eq 0 ] && echo write || echo randwrite)" \
			--bsrange=4k-32k --size="$size" \
			--offset=$(((n % 4) * size)) --randseed=$((seed + n)) --verify=crc32c \
			--do_verify=1 --verify_fatal=1 --verify_state_save=0 \
			--output="$RLOOP_CASE_DIR/$tag.fio$n.txt" || {
			cat "$RLOOP_CASE_DIR/$tag.fio$n.txt"
			echo "fio run $n on $dev failed" >&2
			return 1
		}
		n=$((n + 1))
		bytes=$((bytes + size))
	done
	echo "$n $bytes" >"$RLOOP_CASE_DIR/$tag.fio"
}

# race NAME COMMAND...: COMMAND runs for RACE_SECS while fio verifies on
# /dev/loop0; both must succeed.
RACE_FIO_RUNS=0
RACE_BYTES=0
race() {
	local name=$1 rc=0 frc=0
	shift
	fio_loop /dev/loop0 "$RACE_SECS" "$((REL_SEED * 100 + ${#RACE_LOG[@]}))" "$name" &
	local fpid=$!
	"$@" >"$RLOOP_CASE_DIR/$name.storm" 2>&1 || rc=$?
	wait "$fpid" || frc=$?
	cat "$RLOOP_CASE_DIR/$name.storm"
	[ "$rc" -eq 0 ] || fail "race $name: the storm failed"
	[ "$frc" -eq 0 ] || fail "race $name: fio verify failed"
	local runs bytes
	read -r runs bytes <"$RLOOP_CASE_DIR/$name.fio"
	RACE_FIO_RUNS=$((RACE_FIO_RUNS + runs))
	RACE_BYTES=$((RACE_BYTES + bytes))
	RACE_LOG+=("$name: $(tail -n1 "$RLOOP_CASE_DIR/$name.storm" | sed 's/^[^:]*: //'); fio runs=$runs verified=$bytes")
}

# fio_written JSON_OUTPUT: bytes fio wrote (0 if it never started).
fio_written() {
	python3 -c '
import json, sys
t = open(sys.argv[1]).read()
print(sum(j["write"]["io_bytes"] for j in json.loads(t[t.index("{"):])["jobs"]) if "{" in t else 0)
' "$1"
}

# Detach and LOOP_CLR_FD while fio writes: the detach waits for fio to
# close the device, unless it came first (fio then finds a device of size
# 0: cut off). Every write of a run that was not cut off is in the
# backing file afterwards.
storm_detach() {
	local img=$1 end=$((SECONDS + RACE_SECS)) n=0 cut=0 clean=0 rc job
	RANDOM=$REL_SEED
	while [ "$n" -eq 0 ] || [ "$SECONDS" -lt "$end" ]; do
		losetup --direct-io="$([ $((RANDOM % 2)) -eq 1 ] && echo on || echo off)" /dev/loop1 "$img"
		job=(--name=d --ioengine=libaio --direct=1 --iodepth=8 --rw=randwrite --bs=4k
			--size=1M --randseed=$((REL_SEED + n)) --verify=crc32c --verify_state_save=0)
		fio "${job[@]}" --filename=/dev/loop1 --do_verify=0 --output-format=json \
			--output="$RLOOP_CASE_DIR/detach$n.txt" >"$RLOOP_CASE_DIR/detach$n.err" 2>&1 &
		local pid=$!
		# A third of the detaches come at once (fio is likely not to
		# have opened the device yet), the others once its writes
		# flow, after a random delay of up to 2 s.
		if [ $((RANDOM % 3)) -ne 0 ]; then
			local _
			for _ in $(seq 1 200); do
				[ "$(awk '{print $5}' /sys/block/loop1/stat)" -gt 0 ] && break
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			sleep "$((RANDOM % 2)).$((RANDOM % 10))"
		fi
		if [ $((n % 2)) -eq 0 ]; then
			assert_eq ok "$($LOOPCTL clr-fd /dev/loop1)" "LOOP_CLR_FD under fio"
		else
			losetup -d /dev/loop1
		fi
		rc=0
		wait "$pid" || rc=$?
		settle
		[ ! -e /sys/block/loop1/loop ] || fail "loop1 still bound after fio closed it"
		if [ "$rc" -ne 0 ]; then
			# Cut off: the detach came before fio's job opened the device
			# (it found size 0, or its first write failed). A job that
			# completed writes holds the device open: it must not fail.
			[ "$(fio_written "$RLOOP_CASE_DIR/detach$n.txt")" -eq 0 ] || {
				cat "$RLOOP_CASE_DIR/detach$n.err" "$RLOOP_CASE_DIR/detach$n.txt"
				fail "fio failed after completing writes on the device (run $n)"
			}
			cut=$((cut + 1))
		else
			fio "${job[@]}" --filename="$img" --verify_only --verify_fatal=1 \
				--output="$RLOOP_CASE_DIR/detach$n.v.txt" || fail "completed writes missing (run $n)"
			clean=$((clean + 1))
		fi
		n=$((n + 1))
	done
	echo "detach: $n ops: detaches=$n fio_clean_and_verified=$clean fio_cut_off_before_open=$cut"
	DETACH_BYTES=$((clean << 20))
}

# rmmod while a device is bound and fio runs: refused every time.
storm_rmmod_busy() {
	local end=$((SECONDS + RACE_SECS)) n=0
	while [ "$SECONDS" -lt "$end" ]; do
		rmmod rloop 2>/dev/null && fail "rmmod succeeded under fio"
		n=$((n + 1))
		sleep 0.2
	done
	echo "rmmod-busy: $n ops: refused=$n"
}

# rmmod and insmod against openers of the unbound devices.
race_rmmod_open() {
	local end=$((SECONDS + RACE_SECS)) n=0 out=0 back=0 modprobe
	# An open of /dev/loopN while rloop is out makes the kernel request
	# block-major-7, which loads loop.c and takes major 7 from the next
	# insmod: no module autoloading during this race.
	modprobe=$(cat /proc/sys/kernel/modprobe)
	on_exit "echo $modprobe >/proc/sys/kernel/modprobe"
	echo /bin/true >/proc/sys/kernel/modprobe
	touch "$RLOOP_CASE_DIR/opening"
	(
		RANDOM=$REL_SEED
		local opens=0 fails=0
		while [ -e "$RLOOP_CASE_DIR/opening" ]; do
			if true <"/dev/loop$((RANDOM % 8))"; then
				opens=$((opens + 1))
			else
				fails=$((fails + 1))
			fi 2>/dev/null
		done
		echo "$opens $fails" >"$RLOOP_CASE_DIR/opens"
	) &
	local opid=$!
	while [ "$SECONDS" -lt "$end" ]; do
		if rmmod rloop 2>/dev/null; then
			out=$((out + 1))
			insmod "$RLOOP_KO" || fail "insmod after rmmod"
			back=$((back + 1))
		fi
		n=$((n + 1))
	done
	rm "$RLOOP_CASE_DIR/opening"
	wait "$opid"
	echo "$modprobe" >/proc/sys/kernel/modprobe
	local opens fails
	read -r opens fails <"$RLOOP_CASE_DIR/opens"
	module_loaded rloop || fail "rloop not loaded after the race"
	settle
	RACE_LOG+=("rmmod-open: $n rmmod attempts: unloaded=$out reloaded=$back; opens=$opens open_failures=$fails")
	echo "${RACE_LOG[-1]}"
}

case_races_under_fio_verify() {
	kmemleak_begin
	load_rloop
	mk_fs_on_brd ext4
	truncate -s 64M "$FSDIR/img0" "$FSDIR/img1"
	losetup --direct-io=on /dev/loop0 "$FSDIR/img0"
	RACE_LOG=()
	DETACH_BYTES=0
	race detach storm_detach "$FSDIR/img1"
	race status "${STORM[@]}" status --dev /dev/loop0 --secs "$RACE_SECS" --seed "$REL_SEED"
	race dio-bs "${STORM[@]}" dio-bs --dev /dev/loop0 --secs "$RACE_SECS" --seed "$REL_SEED"
	race open "${STORM[@]}" open --dev /dev/loop0 --secs "$RACE_SECS" --seed "$REL_SEED" --threads 3
	race ctl "${STORM[@]}" ctl --dev /dev/loop0 --secs "$RACE_SECS" --seed "$REL_SEED"
	race rmmod-busy storm_rmmod_busy
	losetup -d /dev/loop0
	settle
	race_rmmod_open
	local ops=0 l
	for l in "${RACE_LOG[@]}"; do
		ops=$((ops + $(sed -n 's/^[^:]*: \([0-9]*\) .*/\1/p' <<<"$l")))
	done
	printf '%s\n' "${RACE_LOG[@]}"
	echo "races: seed=$REL_SEED kinds=${#RACE_LOG[@]} races_executed=$ops fio_runs=$RACE_FIO_RUNS" \
		"bytes_verified=$((RACE_BYTES + DETACH_BYTES)) secs_per_kind=$RACE_SECS"
	kmemleak_check
}

case_ioctl_fuzz_as_root() {
	kmemleak_begin
	load_rloop
	mk_tmpfs
	mkdir -p "$TMPFS/fuzz"
	local rc=0
	timeout 600 "${FUZZ[@]}" --seed "$REL_SEED" --iterations "$FUZZ_ITERATIONS" --dir "$TMPFS/fuzz" \
		</dev/null >"$RLOOP_CASE_DIR/fuzz.out" 2>&1 || rc=$?
	cat "$RLOOP_CASE_DIR/fuzz.out"
	[ "$rc" -ne 124 ] || fail "the fuzzer hung"
	[ "$rc" -eq 0 ] || fail "the fuzzer failed: exit $rc"
	# The devices still work: every one can be detached, bound and used.
	local i
	seq 8 23 | sed 's/^/ctl-remove /' | $LOOPCTL batch >/dev/null
	release_case_devices
	settle
	for i in 0 1 2 3; do
		[ ! -e /sys/block/loop$i/loop ] || fail "loop$i cannot be detached after fuzzing"
	done
	mk_tmpfs
	truncate -s 8M "$TMPFS/after"
	losetup /dev/loop0 "$TMPFS/after"
	head -c 1M /dev/urandom >"$RLOOP_CASE_DIR/p"
	dd if="$RLOOP_CASE_DIR/p" of=/dev/loop0 bs=64k oflag=direct status=none
	cmp "$RLOOP_CASE_DIR/p" <(dd if=/dev/loop0 bs=64k count=16 iflag=direct status=none) ||
		fail "I/O after fuzzing"
	losetup -d /dev/loop0
	kmemleak_check
}

# The same seeded sequence as an unprivileged user (nobody, no
# capabilities) with the device nodes opened up, under loop.c then rloop.
scenario_fuzz_unprivileged() {
	mk_tmpfs
	mkdir -p "$TMPFS/fuzz"
	chmod 0777 "$TMPFS/fuzz"
	chmod o+x "$(dirname "$RLOOP_CASE_DIR")" "$RLOOP_CASE_DIR" "$TMPFS"
	chmod 0666 /dev/loop0 /dev/loop1 /dev/loop2 /dev/loop3 /dev/loop-control
	# udev opens devices on uevents; its timing must not change results.
	udevadm control --stop-exec-queue
	timeout 600 setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		--bounding-set=-all "${FUZZ[@]}" --seed "$REL_SEED" --iterations "$FUZZ_ITERATIONS" \
		--dir "$TMPFS/fuzz" --transcript </dev/null || echo "fuzzer exit $?"
	udevadm control --start-exec-queue
	settle
	seq 8 23 | sed 's/^/ctl-remove /' | $LOOPCTL batch >/dev/null
}

case_ioctl_fuzz_unprivileged_matches_loop_c() {
	kmemleak_begin
	# shellcheck source=tests/cases/40-diff.sh
	source "$RLOOP_ROOT/tests/cases/40-diff.sh"
	compare_drivers scenario_fuzz_unprivileged "$FUZZ_ITERATIONS"
	local out=$RLOOP_CASE_DIR/scenario_fuzz_unprivileged.rust
	grep -q '^fuzzer exit' "$out" && fail "the unprivileged fuzzer failed: $(grep '^fuzzer exit' "$out")"
	sed -n '/^fuzz: /,$p' "$out"
	echo "unprivileged fuzz: seed=$REL_SEED iterations=$FUZZ_ITERATIONS per driver," \
		"$(grep -c ' -> E' "$out") failed calls, $(grep -c ' -> EPERM' "$out") EPERM," \
		"$(grep -c ' -> EACCES' "$out") EACCES, all identical to loop.c"
	kmemleak_check
}
