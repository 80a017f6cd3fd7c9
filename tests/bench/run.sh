#!/usr/bin/env bash
# In-VM side of `make bench`. Usage: run.sh OUTDIR
#
# For each backing (xfs on brd; xfs on the virtio disk whose serial is
# rloop-vd0), for each run, for each target (rloop and loop.c with direct
# I/O on and off, and the raw backing file with O_DIRECT), it loads the
# driver, binds the backing file with losetup, measures page-cache growth
# after a direct read of BENCH_PC_MIB through the device, runs every fio
# workload, detaches and unloads. Targets are visited in a rotated order in
# each run, so that slow drift over the boot does not favour one of them.
#
# It writes into OUTDIR:
#   env.txt         the configuration and the guest's facts
#   runs.csv        one line per fio run: ids, guest-wide CPU and context
#                   switches over a window inside the measured period, and
#                   the backing file's page-cache pages after the run (its
#                   cache is dropped before); fio/<id>.json holds fio's numbers
#   pagecache.csv   one line per (backing, target, run) page-cache probe:
#                   /proc/meminfo Cached before and after a direct read of
#                   BENCH_PC_MIB through the device, and the backing file's
#                   resident bytes (fincore) after it
#   openclose.csv   one line per (driver, run): open/close cycles of an
#                   unbound /dev/loop0 (blktests loop/003), their rate, and
#                   the flushes, diskseq steps and uevents they caused
#   idlecost.csv    one line per driver: its kernel threads with
#                   BENCH_IDLECOST unbound devices, during I/O and once
#                   idle, and its memory per device (tests/idlecost.sh)
#   profile-*.txt   perf profiles (BENCH_PROFILE=1)
#   log.txt         what happened, with times
#
# The host's scripts/bench-report.py turns them into report.md and chart.png.
# Environment (all optional; scripts/bench.sh passes them through):
#   BENCH_RUNTIME   seconds measured per fio run (default 3)
#   BENCH_RAMP      seconds of fio ramp before that (default 1)
#   BENCH_RUNS      runs per (backing, target, workload) (default 3)
#   BENCH_SIZE_MIB  backing file size (default 512)
#   BENCH_PC_MIB    MiB read for the page-cache probe (default 256)
#   BENCH_BACKINGS  space-separated subset of: brd virtio (default both)
#   BENCH_TARGETS   regex over target names (default all)
#   BENCH_WORKLOADS regex over workload names (default all)
#   BENCH_PROFILE   1: perf profiles of rloop-dio and loop-dio on brd
#   BENCH_ENGINE    fio engine (default: io_uring if it works, else libaio)
#   BENCH_OPENCLOSE open/close cycles of an unbound device per run and
#                   driver (default 5000, as loop/003; 0: none)
#   BENCH_IDLECOST  devices for the idle-cost probe (default 64; 0: none)
#   RLOOP_KO        the rloop.ko to insmod (default OUTDIR/rloop.ko)
set -euo pipefail

out=${1:?usage: run.sh OUTDIR}
mkdir -p "$out/fio"
runtime=${BENCH_RUNTIME:-3}
ramp=${BENCH_RAMP:-1}
runs=${BENCH_RUNS:-3}
size_mib=${BENCH_SIZE_MIB:-512}
pc_mib=${BENCH_PC_MIB:-256}
backings=${BENCH_BACKINGS:-brd virtio}
target_re=${BENCH_TARGETS:-.}
workload_re=${BENCH_WORKLOADS:-.}
profile=${BENCH_PROFILE:-0}
openclose=${BENCH_OPENCLOSE:-5000}
idlecost=${BENCH_IDLECOST:-64}
tests=$(cd "$(dirname "$0")/.." && pwd)
ko=${RLOOP_KO:-$out/rloop.ko}

[ "$(id -u)" -eq 0 ] || { echo "run.sh must run as root, inside the bench VM" >&2; exit 2; }
[ "$runtime" -ge 3 ] || { echo "BENCH_RUNTIME must be at least 3 (the CPU window needs 2 s inside it)" >&2; exit 2; }
[ -f "$ko" ] || { echo "no rloop.ko at $ko" >&2; exit 2; }

work=$(mktemp -d /tmp/rloop-bench.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
t0=$SECONDS
log() { printf '[bench %4ds] %s\n' $((SECONDS - t0)) "$*" | tee -a "$out/log.txt" >&2; }

cleanup() {
	losetup -D 2>/dev/null || true
	umount "$mnt" 2>/dev/null || true
	udevadm settle --timeout=30 2>/dev/null || true
	rmmod rloop 2>/dev/null || true
	rmmod loop 2>/dev/null || true
	rmmod brd 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# --- workloads: name rw bs iodepth numjobs ---
WORKLOADS=(
	"randread-4k-qd1-j1 randread 4k 1 1"
	"randread-4k-qd1-j4 randread 4k 1 4"
	"randread-4k-qd32-j1 randread 4k 32 1"
	"randread-4k-qd32-j4 randread 4k 32 4"
	"randwrite-4k-qd1-j1 randwrite 4k 1 1"
	"randwrite-4k-qd1-j4 randwrite 4k 1 4"
	"randwrite-4k-qd32-j1 randwrite 4k 32 1"
	"randwrite-4k-qd32-j4 randwrite 4k 32 4"
	"read-1m-qd8-j1 read 1m 8 1"
	"write-1m-qd8-j1 write 1m 8 1"
)
# rloopmq: rloop with a hardware queue and worker per CPU (nr_hw_queues=0).
# rloopwk: rloop with every request through its worker (nowait=0), the
# default until the NOWAIT fast path became it.
TARGETS=(rloop-dio loop-dio loop-buf rloop-buf raw rloopmq-dio rloopwk-dio rloopwk-buf)

sel_workloads=()
for w in "${WORKLOADS[@]}"; do
	grep -qE -- "$workload_re" <<<"${w%% *}" && sel_workloads+=("$w")
done
sel_targets=()
for t in "${TARGETS[@]}"; do
	grep -qE -- "$target_re" <<<"$t" && sel_targets+=("$t")
done
[ ${#sel_workloads[@]} -gt 0 ] || { echo "BENCH_WORKLOADS=$workload_re selects nothing" >&2; exit 2; }
[ ${#sel_targets[@]} -gt 0 ] || { echo "BENCH_TARGETS=$target_re selects nothing" >&2; exit 2; }

# --- the guest's state ---
module_loaded() { [ -d "/sys/module/$1" ]; }
settle() { udevadm settle --timeout=30 2>/dev/null || true; }
# Only the backing file's cache is ever dropped: a global drop_caches would
# also evict fio, perf and their libraries, which the guest then reads back
# over 9p, tens of seconds under TCG.
cached_kib() { awk '$1 == "Cached:" { print $2 }' /proc/meminfo; }
# The backing file's pages in the page cache, in KiB; and dropping just
# them (written back first), which leaves fio's own binary cached.
file_cached_kib() { echo $(($(fincore -b -n -o RES "$mnt/backing.img") / 1024)); }
drop_file_cache() { sync; dd if="$mnt/backing.img" iflag=nocache count=0 status=none; }
# busy jiffies (user+nice+system+irq+softirq+steal), context switches,
# IPIs (function-call and rescheduling: what cross-CPU wake-ups send), uptime.
# One process, not three: each one started under TCG takes time that moves
# the window's end towards fio's (with a separate awk for the IPIs, 54 of
# 420 windows closed after fio had ended, against 21-43 before).
sample() {
	awk 'FILENAME == "/proc/stat" && $1 == "cpu" { b = $2 + $3 + $4 + $7 + $8 + $9 }
		FILENAME == "/proc/stat" && $1 == "ctxt" { c = $2 }
		FILENAME == "/proc/interrupts" && ($1 == "CAL:" || $1 == "RES:") {
			for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i
		}
		FILENAME == "/proc/uptime" { u = $1 }
		END { printf "%d %d %d %s\n", b, c, n, u }' /proc/stat /proc/interrupts /proc/uptime
}

module_loaded loop && { echo "loop is loaded before the benchmark; it must not be" >&2; exit 2; }
module_loaded rloop && { echo "rloop is loaded before the benchmark; it must not be" >&2; exit 2; }

engine=${BENCH_ENGINE:-}
if [ -z "$engine" ]; then
	probe=$work/probe
	truncate -s 1M "$probe"
	if fio --name=probe --filename="$probe" --ioengine=io_uring --rw=read --bs=4k \
		--size=64k --output=/dev/null >/dev/null 2>&1; then
		engine=io_uring
	else
		engine=libaio
	fi
	rm -f "$probe"
fi

hz=$(getconf CLK_TCK)
{
	echo "kernel=$(uname -r)"
	echo "kernel_version=$(cat /proc/version)"
	echo "cpus=$(nproc)"
	echo "mem_kib=$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)"
	echo "clk_tck=$hz"
	echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
	echo "engine=$engine"
	echo "fio=$(fio --version)"
	echo "runtime=$runtime"
	echo "ramp=$ramp"
	echo "runs=$runs"
	echo "size_mib=$size_mib"
	echo "pc_mib=$pc_mib"
	echo "backings=$backings"
	echo "targets=${sel_targets[*]}"
	echo "openclose_cycles=$openclose"
	echo "idlecost_devices=$idlecost"
	echo "workloads=$(for w in "${sel_workloads[@]}"; do printf '%s ' "${w%% *}"; done)"
	echo "rloop_ko=$(modinfo -F vermagic "$ko") srcversion=$(modinfo -F srcversion "$ko")"
	echo "qemu_accel=$(grep -qw hypervisor /proc/cpuinfo && echo guest)"
} >"$out/env.txt"
echo "backing,target,run,workload,rw,bs,iodepth,numjobs,dio,busy_jiffies,ctxt,ipis,window_s,window_ok,file_cached_kib,fio_json" >"$out/runs.csv"
echo "backing,target,run,dio,read_mib,cached_before_kib,cached_after_kib,growth_kib,file_cached_kib" >"$out/pagecache.csv"
log "kernel $(uname -r), $(nproc) CPUs, engine $engine, ${runtime}s+${ramp}s ramp per fio run, $runs runs"

# --- backings ---
backing_dev=
setup_backing() {
	case $1 in
	brd)
		# Room for the file and xfs's log and metadata.
		modprobe brd rd_nr=1 rd_size=$(((size_mib + 256) * 1024))
		backing_dev=/dev/ram0
		;;
	virtio)
		backing_dev=
		local s
		for s in /sys/block/vd*/serial; do
			[ -e "$s" ] || continue
			if [ "$(cat "$s")" = rloop-vd0 ]; then
				backing_dev=/dev/$(basename "$(dirname "$s")")
			fi
		done
		[ -n "$backing_dev" ] || { log "no virtio disk with serial rloop-vd0; skipping it"; return 1; }
		;;
	esac
	mkfs.xfs -q -f "$backing_dev"
	mount "$backing_dev" "$mnt"
	# Written once, so that every read reaches the device: no holes or
	# unwritten extents.
	dd if=/dev/zero of="$mnt/backing.img" bs=1M count="$size_mib" oflag=direct status=none
	sync
	log "backing $1: $backing_dev ($(lsblk -dno SIZE "$backing_dev" | tr -d ' ')), $size_mib MiB file on xfs"
}
teardown_backing() {
	umount "$mnt"
	[ "$1" != brd ] || rmmod brd
}

# --- targets ---
dev=
dio=
setup_target() {
	local t=$1 file=$mnt/backing.img
	case $t in
	rloop-*) insmod "$ko" ;;
	rloopmq-*) insmod "$ko" nr_hw_queues=0 ;;
	rloopwk-*) insmod "$ko" nowait=0 ;;
	loop-*) modprobe loop ;;
	esac
	settle
	case $t in
	*-dio) dev=$(losetup -f --show --direct-io=on "$file") ;;
	*-buf) dev=$(losetup -f --show --direct-io=off "$file") ;;
	raw) dev=$file ;;
	esac
	case $t in
	raw) dio=1 ;;
	*) dio=$(cat "/sys/block/${dev#/dev/}/loop/dio") ;;
	esac
	case $t in
	*-dio) [ "$dio" = 1 ] || { log "error: $t: $dev has dio=$dio after --direct-io=on"; exit 1; } ;;
	*-buf) [ "$dio" = 0 ] || { log "error: $t: $dev has dio=$dio after --direct-io=off"; exit 1; } ;;
	esac
	settle
}
teardown_target() {
	local t=$1
	case $t in
	raw) ;;
	*) losetup -d "$dev"; settle ;;
	esac
	case $t in
	rloop-* | rloopmq-* | rloopwk-*) rmmod rloop ;;
	loop-*) rmmod loop ;;
	esac
	drop_file_cache
}

# pagecache_probe BACKING TARGET RUN: drop the backing file's cache, read
# pc_mib sequentially with O_DIRECT through the device, and record the
# growth of Cached. dd, not fio: fio's own binary and libraries weigh about
# 12 MiB of Cached. The tools run once before, so that they are cached.
pagecache_probe() {
	drop_file_cache
	dd --version >/dev/null
	fincore --version >/dev/null
	local before after
	before=$(cached_kib)
	dd if="$dev" of=/dev/null bs=1M count="$pc_mib" iflag=direct status=none
	after=$(cached_kib)
	echo "$1,$2,$3,$dio,$pc_mib,$before,$after,$((after - before)),$(file_cached_kib)" >>"$out/pagecache.csv"
}

# run_fio BACKING TARGET RUN WORKLOAD...: one measured fio run.
run_fio() {
	local backing=$1 target=$2 run=$3 name=$4 rw=$5 bs=$6 qd=$7 jobs=$8
	local id=$backing.$target.$name.$run
	local json=$out/fio/$id.json
	drop_file_cache
	fio --name="$name" --filename="$dev" --ioengine="$engine" --direct=1 \
		--rw="$rw" --bs="$bs" --iodepth="$qd" --numjobs="$jobs" --group_reporting \
		--time_based --runtime="$runtime" --ramp_time="$ramp" --size="${size_mib}m" \
		--norandommap --randrepeat=0 --output-format=json --output="$json" >/dev/null &
	local pid=$!
	# Guest-wide CPU and context switches over a window inside fio's
	# measured period: from half a second after the ramp to half a second
	# before the end. fio's own start-up (forks, opens) stays outside.
	sleep "$ramp.5"
	local a b ok=1
	a=$(sample)
	sleep "$((runtime - 1))"
	b=$(sample)
	kill -0 "$pid" 2>/dev/null || ok=0
	wait "$pid" || { log "error: fio failed for $id"; cat "$json" >&2 || true; exit 1; }
	read -r ab ac ai at <<<"$a"
	read -r bb bc bi bt <<<"$b"
	local win
	win=$(awk -v x="$at" -v y="$bt" 'BEGIN { printf "%.3f", y - x }')
	echo "$backing,$target,$run,$name,$rw,$bs,$qd,$jobs,$dio,$((bb - ab)),$((bc - ac)),$((bi - ai)),$win,$ok,$(file_cached_kib),fio/$id.json" >>"$out/runs.csv"
}

# profile_target TARGET QD JOBS: perf profiles while fio runs 4k randread
# at QD with JOBS jobs: of all CPUs, and for rloop also of its worker
# alone, which shows what the one thread every request passes spends its
# time on. Files: profile-TARGET[-worker]-qdQD-jJOBS.txt.
profile_target() {
	local target=$1 qd=$2 jobs=$3
	local tag=qd$qd-j$jobs
	command -v perf >/dev/null || { log "no perf in the guest; no profile"; return 0; }
	setup_target "$target"
	drop_file_cache
	local pdata=$work/perf.$target.$tag.data wdata=$work/perf.$target.$tag.worker.data
	# perf is big: once before, so that it starts at once when it counts.
	perf record -q -o "$work/warm.data" -- true >/dev/null 2>&1 || true
	# fio runs longer than the profile and is stopped after it.
	fio --name=profile --filename="$dev" --ioengine="$engine" --direct=1 --rw=randread \
		--bs=4k --iodepth="$qd" --numjobs="$jobs" --group_reporting --time_based \
		--runtime="$((ramp + runtime + 30))" --size="${size_mib}m" --norandommap --randrepeat=0 \
		--output-format=json --output="$out/profile-$target-$tag.fio.json" >/dev/null &
	local pid=$! wpid='' worker=
	sleep "$ramp.5"
	case $target in
	rloop*) worker=$(pgrep -x "${dev#/dev/}" | head -n 1) ;;
	esac
	if [ -n "$worker" ]; then
		perf record -q -e cpu-clock -g -t "$worker" -o "$wdata" -- sleep "$runtime" \
			>"$work/perf.worker.log" 2>&1 &
		wpid=$!
	fi
	if perf record -q -e cpu-clock -a -g -o "$pdata" -- sleep "$runtime" >"$work/perf.log" 2>&1; then
		kill -0 "$pid" 2>/dev/null || log "warning: fio ended before the profile of $target did"
		write_profile "$pdata" "-a -g" "$target, 4k randread qd$qd $jobs jobs, brd" \
			>"$out/profile-$target-$tag.txt"
		log "profile of $target in profile-$target-$tag.txt"
	else
		log "perf record failed for $target: $(tail -n 3 "$work/perf.log" | tr '\n' ' ')"
		cp "$work/perf.log" "$out/profile-$target-$tag.txt"
	fi
	if [ -n "$wpid" ]; then
		if wait "$wpid"; then
			write_profile "$wdata" "-g -t $worker" \
				"$target, its worker ${dev#/dev/} alone, 4k randread qd$qd $jobs jobs, brd" \
				>"$out/profile-$target-worker-$tag.txt"
		else
			log "perf record of the worker failed: $(tail -n 3 "$work/perf.worker.log" | tr '\n' ' ')"
		fi
	fi
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" || true
	teardown_target "$target"
}

# write_profile DATA RECORD_ARGS TITLE: the flat and inclusive profiles.
write_profile() {
	echo "# perf record -e cpu-clock $2, ${runtime}s, $3"
	echo "# flat (self) profile by symbol"
	perf report -i "$1" --stdio --no-children -g none --sort dso,symbol \
		--percent-limit 0.3 2>/dev/null | grep -v '^$' || true
	echo
	echo "# inclusive (children) profile by symbol, top 60"
	# sed, not head: head would end the pipe early, and perf would die
	# of SIGPIPE.
	perf report -i "$1" --stdio --children -g none --sort symbol \
		2>/dev/null | grep -v '^#' | grep -v '^$' | sed -n '1,60p' || true
}

# openclose_run RUN: for each driver, in an order rotated by RUN, open and
# close its unbound /dev/loop0 BENCH_OPENCLOSE times (tests/openclose.py).
openclose_run() {
	local run=$1 d drivers=(rloop loop) res
	[ $((run % 2)) = 1 ] || drivers=(loop rloop)
	for d in "${drivers[@]}"; do
		if [ "$d" = rloop ]; then insmod "$ko"; else modprobe loop; fi
		settle
		res=$(python3 "$tests/openclose.py" /dev/loop0 "$openclose" r)
		rmmod "$d"
		settle
		# cycles=N rate=R/s flushes=F diskseq=D uevents=U
		echo "$d,$run,$(sed -e 's|/s||' -e 's/[a-z]*=//g' -e 's/ /,/g' <<<"$res")" >>"$out/openclose.csv"
		log "open/close run $run/$runs: $d $res"
	done
}
if [ "$openclose" -gt 0 ]; then
	echo "driver,run,cycles,rate,flushes,diskseq,uevents" >"$out/openclose.csv"
	for run in $(seq 1 "$runs"); do
		openclose_run "$run"
	done
fi

# Idle cost (issue 17, target 5): each driver alone, once; its line of
# key=value (tests/idlecost.sh) becomes a line of idlecost.csv.
if [ "$idlecost" -gt 0 ]; then
	echo "driver,devices,threads_unbound,threads_busy,threads_idle,unbound_kib,bound_kib,stack_kib,unbound_slab_kib,bound_slab_kib" \
		>"$out/idlecost.csv"
	for d in loop rloop; do
		if res=$(RLOOP_KO=$ko "$tests/idlecost.sh" "$d" "$idlecost" 2>>"$out/log.txt"); then
			sed -e 's/[a-z_]*=//g' -e 's/ /,/g' <<<"$res" >>"$out/idlecost.csv"
			log "idle cost: $res"
		else
			log "idle cost of $d failed"
		fi
	done
fi

for backing in $backings; do
	setup_backing "$backing" || continue
	for run in $(seq 1 "$runs"); do
		n=${#sel_targets[@]}
		for i in $(seq 0 $((n - 1))); do
			target=${sel_targets[$(((i + run - 1) % n))]}
			setup_target "$target"
			pagecache_probe "$backing" "$target" "$run"
			for w in "${sel_workloads[@]}"; do
				# shellcheck disable=SC2086
				run_fio "$backing" "$target" "$run" $w
			done
			teardown_target "$target"
			log "$backing run $run/$runs: $target done (dio=$dio)"
		done
	done
	if [ "$profile" = 1 ] && [ "$backing" = brd ]; then
		for target in rloop-dio loop-dio; do
			profile_target "$target" 32 4
			profile_target "$target" 1 4
		done
	fi
	teardown_backing "$backing"
done
log "done"
