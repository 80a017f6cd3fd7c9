#!/usr/bin/env bash
# `make bench`: rloop against loop.c and the raw backing file, in one boot
# of the release (bench) kernel under TCG. Usage: bench.sh
#
# Environment (all optional):
#   BENCH_RUNTIME   seconds measured per fio run (default 3)
#   BENCH_RAMP      seconds of fio ramp before that (default 1)
#   BENCH_RUNS      runs per (backing, target, workload); the report shows
#                   their median, min and max (default 3)
#   BENCH_QUICK=1   a smoke run of a few minutes: brd only, four workloads
#                   (each still overridable)
#   BENCH_BACKINGS  "brd virtio" (default), "brd" or "virtio"
#   BENCH_TARGETS   regex over rloop-dio loop-dio loop-buf rloop-buf raw rloopmq-dio rloopwk-dio
#   BENCH_WORKLOADS regex over the workload names (see tests/bench/run.sh)
#   BENCH_PROFILE   1 (default): perf profiles of rloop and loop.c on brd
#   BENCH_OPENCLOSE open/close cycles of an unbound device per run and
#                   driver (default 5000, as blktests loop/003; 0: none)
#   BENCH_IDLECOST  devices for the idle-cost probe (threads and memory per
#                   device, tests/idlecost.sh; default 64; 0: none)
#   BENCH_CPUS, BENCH_MEMORY   the VM (default 4 vCPUs, 4G)
#   BENCH_CLOCKSOURCE  the guest's clocksource (default tsc; "" leaves the
#                   kernel's choice, hpet under TCG, whose reads QEMU
#                   serialises across vCPUs)
#   KDIR            not used: the bench kernel is always the cached one
#
# Output: results/bench/<UTC timestamp>/ with report.md and chart.png, and
# results/bench/latest pointing at it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=bench

# All in a function, which bash reads whole before running it: editing this
# file during the half hour of a run does not derail the run.
main() {
	if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then
		: "${BENCH_BACKINGS:=brd}"
		: "${BENCH_WORKLOADS:=^(randread-4k-qd32-j4|randread-4k-qd1-j1|randwrite-4k-qd32-j4|read-1m-qd8-j1)$}"
	fi
	export BENCH_RUNTIME=${BENCH_RUNTIME:-3}
	export BENCH_RAMP=${BENCH_RAMP:-1}
	export BENCH_RUNS=${BENCH_RUNS:-3}
	export BENCH_BACKINGS=${BENCH_BACKINGS:-brd virtio}
	export BENCH_TARGETS=${BENCH_TARGETS:-.}
	export BENCH_WORKLOADS=${BENCH_WORKLOADS:-.}
	export BENCH_PROFILE=${BENCH_PROFILE:-1}
	export BENCH_SIZE_MIB=${BENCH_SIZE_MIB:-512}
	export BENCH_PC_MIB=${BENCH_PC_MIB:-256}
	cpus=${BENCH_CPUS:-4}
	memory=${BENCH_MEMORY:-4G}
	clocksource=${BENCH_CLOCKSOURCE-tsc}
	append=()
	[ -z "$clocksource" ] || append=(--append "clocksource=$clocksource tsc=reliable")
	[ "$cpus" -ge 4 ] || progress "warning: BENCH_CPUS=$cpus; the issue asks for at least 4 vCPUs"
	start=$SECONDS

	"$RLOOP_ROOT/scripts/deps.sh" bench
	kdir=$("$RLOOP_ROOT/scripts/kernel-build.sh" bench)

	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	out=$RLOOP_ROOT/results/bench/$stamp
	mkdir -p "$out"

	# rloop.ko for the bench kernel.
	src=$RLOOP_CACHE/bench/module
	build_module_copy "$kdir" "$src" "$out/module-build.log"
	cp "$src/rloop.ko" "$out/rloop.ko"

	# The virtio disk: a raw image on the host's file system, opened by QEMU
	# with cache=none (O_DIRECT), so that the host's page cache stays out.
	img=$RLOOP_CACHE/bench/virtio.img
	want=$(((BENCH_SIZE_MIB + 512) * 1024 * 1024))
	if [ ! -f "$img" ] || [ "$(stat -c %s "$img")" -ne "$want" ]; then
		rm -f "$img"
		truncate -s "$want" "$img"
	fi

	{
		echo "date=$(date -u +%FT%TZ)"
		echo "git=$(cd "$RLOOP_ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)"
		echo "kdir=$kdir"
		echo "host_cpus=$(nproc)"
		echo "host_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
		echo "qemu=$(qemu-system-x86_64 --version | head -n1)"
		echo "vm_cpus=$cpus"
		echo "vm_memory=$memory"
	} >"$out/host.txt"

	# The guest does not inherit this environment: pass the settings on.
	guest_env=()
	for v in BENCH_RUNTIME BENCH_RAMP BENCH_RUNS BENCH_BACKINGS BENCH_TARGETS BENCH_WORKLOADS \
		BENCH_PROFILE BENCH_SIZE_MIB BENCH_PC_MIB BENCH_ENGINE BENCH_OPENCLOSE BENCH_IDLECOST; do
		[ -z "${!v+set}" ] || guest_env+=("$v=${!v}")
	done
	progress "results in $out"
	# The host is shared: a sample every 10 s of its load and of the QEMU
	# processes running (ours included), so that the report can say how quiet
	# the machine was.
	(
		while :; do
			printf '%s %s %s\n' "$(date +%s)" "$(cut -d' ' -f1 /proc/loadavg)" \
				"$(pgrep -c qemu-system || true)"
			sleep 10
		done
	) >"$out/host-load.txt" 2>/dev/null &
	monitor=$!
	set +e
	"$RLOOP_ROOT/scripts/vm.sh" --exclusive --variant bench --cpus "$cpus" --memory "$memory" \
		"${append[@]}" --drive "$img" --dmesg "$out/dmesg.txt" -- env "${guest_env[@]}" \
		"$RLOOP_ROOT/tests/bench/run.sh" "$out" 2>&1 | tee "$out/vm.log"
	rc=${PIPESTATUS[0]}
	set -e
	kill "$monitor" 2>/dev/null || true
	# From the start of this script, waiting for the VM lock included.
	echo "vm_seconds=$((SECONDS - start))" >>"$out/host.txt"
	[ "$rc" -eq 0 ] || progress "the guest side failed (status $rc); reporting what it measured"

	ln -sfn "$stamp" "$RLOOP_ROOT/results/bench/latest"
	# Debian's python3, where python3-matplotlib is, even when PATH puts another first.
	py=/usr/bin/python3
	[ -x "$py" ] || py=python3
	"$py" "$RLOOP_ROOT/scripts/bench-report.py" "$out" ||
		die "the report could not be made" "read the error above; the raw data is in $out"
	progress "report: $out/report.md, chart: $out/chart.png ($((SECONDS - start))s in all)"
	exit "$rc"
}
main "$@"
# Never reached (main exits): bash stops reading the file here even if it
# grows during a run.
# shellcheck disable=SC2317
exit
