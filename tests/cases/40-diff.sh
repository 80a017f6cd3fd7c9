# shellcheck shell=bash
# Differential tests: the same scenario runs against the C loop module and
# against rloop in one boot, one driver at a time, and the two transcripts
# must be identical, except for lines matching tests/diff-allowlist.txt
# (each entry with its reason, explained in Documentation/).

LOOPCTL="python3 $RLOOP_ROOT/tests/loopctl.py"
UEVENTS="python3 $RLOOP_ROOT/tests/uevents.py"

# with_driver c|rust COMMAND...: run COMMAND with only that driver loaded.
with_driver() {
	local driver=$1 rc=0
	shift
	if [ "$driver" = c ]; then
		modprobe loop max_loop=8 || fail "modprobe loop"
	else
		insmod "$RLOOP_KO" || fail "insmod rloop"
	fi
	settle
	"$@" || rc=$?
	release_case_devices
	settle
	if [ "$driver" = c ]; then rmmod loop; else rmmod rloop; fi
	return $rc
}

# compare_drivers SCENARIO MIN_LINES: run it under both drivers, diff the
# transcripts. A transcript shorter than MIN_LINES means the scenario did
# not run through, which would make the comparison vacuous.
compare_drivers() {
	local scenario=$1 min=$2 out=$RLOOP_CASE_DIR/$1
	export RLOOP_ALLOW_C_LOOP=1
	with_driver c "$scenario" >"$out.c" 2>&1 || true
	with_driver rust "$scenario" >"$out.rust" 2>&1 || true
	local allow=$RLOOP_ROOT/tests/diff-allowlist.txt
	if ! diff <(grep -vEf <(grep -v '^#' "$allow" | cut -f1 | grep .) "$out.c") \
		<(grep -vEf <(grep -v '^#' "$allow" | cut -f1 | grep .) "$out.rust") >"$out.diff"; then
		sed 's/^/  /' "$out.diff" | head -n 60
		fail "$scenario: rloop differs from loop.c (C < > rloop)"
	fi
	local lines
	lines=$(wc -l <"$out.rust")
	[ "$lines" -ge "$min" ] || { cat "$out.rust"; fail "$scenario: only $lines transcript lines"; }
	echo "$scenario: $lines transcript lines identical; first lines:"
	head -n 5 "$out.rust" | sed 's/^/  /'
	[ "$(wc -l <"$out.c")" -ge "$min" ] || fail "$scenario: short transcript under loop.c"
}

# A line of transcript: what was done, and what came of it.
t() { printf '%s: %s\n' "$1" "$2"; }

scenario_ioctls() {
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
		t "$d loop/" "$(cd /sys/block/$d && grep -r . loop 2>&1 | sort | tr '\n' ' ')"
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
	t "after -d" "$(ls /sys/block/loop0/loop 2>&1 | sed 's/.*: //')"
	t "losetup -f" "$(losetup -f)"
	t "losetup -D" "$(losetup -D; echo $?)"
}

scenario_uevents() {
	mk_tmpfs
	truncate -s 4M "$TMPFS/f"
	t "configure" "$($UEVENTS loop0 -- losetup /dev/loop0 "$TMPFS/f" | tr '\n' '|')"
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
	t "no partscan" "$(ls /dev/loop0p* 2>/dev/null | tr '\n' ' ')"
	losetup -d /dev/loop0
	settle
	losetup -P /dev/loop0 "$TMPFS/p"
	settle
	t "partscan" "$(ls /dev/loop0p* 2>/dev/null | tr '\n' ' ')"
	t "partscan sysfs" "$(cat /sys/block/loop0/loop/partscan)"
	t "p1 size" "$(cat /sys/block/loop0/loop0p1/size)"
	losetup -d /dev/loop0
	settle
	t "after detach" "$(ls /dev/loop0p* 2>/dev/null | tr '\n' ' ')"
	mkdir -p "$RLOOP_CASE_DIR/mnt"
	mkfs.ext4 -q -F "$TMPFS/p" 2>/dev/null
	t "mount -o loop" "$(mount -o loop "$TMPFS/p" "$RLOOP_CASE_DIR/mnt" 2>&1; echo $?)"
	t "mounted on" "$(findmnt -n -o SOURCE "$RLOOP_CASE_DIR/mnt")"
	umount "$RLOOP_CASE_DIR/mnt"
	settle
	t "after umount" "$(losetup -a | wc -l)"
}

scenario_ioctls_normalized() { scenario_ioctls | normalize_ids; }

case_diff_ioctls() { compare_drivers scenario_ioctls_normalized 45; }
case_diff_sysfs_and_losetup() { compare_drivers scenario_sysfs_and_losetup 60; }
case_diff_uevents() { compare_drivers scenario_uevents 4; }
case_diff_partitions() { compare_drivers scenario_partitions 8; }
