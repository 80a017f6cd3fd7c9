# shellcheck shell=bash
# make soak: the reliability cases of tests/cases/50-reliability.sh scaled
# up, and fio verify across 8 devices for RLOOP_SOAK_SECS (default 600 s)
# with mixed direct and buffered I/O. RLOOP_SEED seeds everything.

SOAK_SECS=${RLOOP_SOAK_SECS:-600}
# Each race kind runs a tenth of the soak time, at least 10 s; the fuzzer
# does 5 iterations per soak second, at least 300 (some 0.2 s each under
# TCG); one fault window per soak minute, at least 2.
export RLOOP_RACE_SECS=${RLOOP_RACE_SECS:-$((SOAK_SECS / 10 > 10 ? SOAK_SECS / 10 : 10))}
export RLOOP_FUZZ_ITERATIONS=${RLOOP_FUZZ_ITERATIONS:-$((SOAK_SECS * 5 > 300 ? SOAK_SECS * 5 : 300))}
export RLOOP_IO_CYCLES=${RLOOP_IO_CYCLES:-$((SOAK_SECS / 60 > 2 ? SOAK_SECS / 60 : 2))}

# shellcheck source=tests/cases/50-reliability.sh
source "$RLOOP_ROOT/tests/cases/50-reliability.sh"

# soak_device N SEED: fio write-and-verify runs on /dev/loopN until the
# soak time is over, direct and buffered in turn, with LOOP_SET_DIRECT_IO
# toggled between runs.
soak_device() {
	local n=$1 seed=$2 end=$((SECONDS + SOAK_SECS)) runs=0 bytes=0 r b toggles=0
	while [ "$runs" -eq 0 ] || [ "$SECONDS" -lt "$end" ]; do
		fio_loop /dev/loop"$n" 0 $((seed + runs)) "soak$n-$runs" $((4 << 20)) || return 1
		read -r r b <"$RLOOP_CASE_DIR/soak$n-$runs.fio"
		runs=$((runs + r))
		bytes=$((bytes + b))
		if [ $(((seed + runs) % 3)) -eq 0 ]; then
			local dio
			dio=$(cat /sys/block/loop"$n"/loop/dio)
			[ "$($LOOPCTL set-dio /dev/loop"$n" $((1 - dio)))" = ok ] || return 1
			toggles=$((toggles + 1))
		fi
	done
	echo "$runs $bytes $toggles" >"$RLOOP_CASE_DIR/soak$n.total"
}

case_fio_verify_8_devices() {
	kmemleak_begin
	load_rloop
	mk_fs_on_brd ext4
	local n pids=()
	for n in 0 1 2 3 4 5 6 7; do
		truncate -s 40M "$FSDIR/img$n"
		losetup --direct-io="$([ $((n % 2)) -eq 0 ] && echo on || echo off)" /dev/loop$n "$FSDIR/img$n"
	done
	echo "soak: seed=$REL_SEED secs=$SOAK_SECS devices=8"
	for n in 0 1 2 3 4 5 6 7; do
		# Odd and even seeds: half the devices start with direct fio I/O.
		soak_device "$n" $((REL_SEED * 1000 + n * 101)) &
		pids+=($!)
	done
	local failed=0 runs=0 bytes=0 toggles=0 r b t
	for n in 0 1 2 3 4 5 6 7; do
		wait "${pids[$n]}" || { echo "loop$n: fio verify failed"; failed=$((failed + 1)); }
	done
	for n in 0 1 2 3 4 5 6 7; do
		[ -f "$RLOOP_CASE_DIR/soak$n.total" ] || continue
		read -r r b t <"$RLOOP_CASE_DIR/soak$n.total"
		echo "  loop$n: fio runs=$r bytes_verified=$b dio_toggles=$t"
		runs=$((runs + r))
		bytes=$((bytes + b))
		toggles=$((toggles + t))
	done
	echo "soak: fio runs=$runs bytes_verified=$bytes dio_toggles=$toggles verify_failures=$failed"
	[ "$failed" -eq 0 ] || fail "$failed devices had fio verify errors"
	losetup -D
	kmemleak_check
}
