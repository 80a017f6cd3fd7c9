#!/usr/bin/env bash
# The VM suite (make test-vm): the cases of tests/cases/ shared out over
# RLOOP_VM_SHARDS test VMs (default 2) that run at the same time, then one
# table of every case's time and each VM's boot time.
#
#   test-vm.sh [PATTERN...]     PATTERNs (extended regexes) select cases
#
# vm0 boots the debug test kernel (KASAN, lockdep, kmemleak), the others
# its release build (scripts/kconfig/bench.config, the kernel of make
# bench) with rloop.ko built for it. All take the cases from one list
# (tests/run.sh -q), longest first by tests/case-times.txt, so that they
# finish close together; a release VM takes only the cases that a suite
# lists in RLOOP_ANY_KERNEL, the ones where KASAN, lockdep and kmemleak are
# not what is tested (ABI, differential, data and performance-shaped
# cases). vm0 may take any case, so those run on either kernel from one run
# to the next. A debug VM ends with tests/final/ (a kmemleak scan after all
# of its cases). Each VM saves its kernel log in results/dmesg-check-vmN.txt.
# RLOOP_VM_SHARDS=1: every case in one debug VM.
# RLOOP_VM_DISTRO="debian:sid ...": after its VM, the last VM's slot runs
# scripts/check-distro.sh for these distribution kernels (make check sets
# it): the release VM ends long before the debug one, so the distribution's
# boot fits in the time it would wait.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=test-vm
results=$RLOOP_ROOT/results
shards=${RLOOP_VM_SHARDS:-2}
[[ $shards =~ ^[1-9][0-9]*$ ]] || die "RLOOP_VM_SHARDS=$shards is not a positive number"
# With no pattern (make test-vm TESTS=): every case.
patterns=()
for p in "$@"; do [ -z "$p" ] || patterns+=("$p"); done

listed=$("$RLOOP_ROOT/tests/run.sh" -l "${patterns[@]}")
mapfile -t selected < <(cut -d' ' -f1 <<<"$listed")
declare -A kernel_of
while read -r name kernel; do
	[ -z "$name" ] || kernel_of[$name]=$kernel
done <<<"$listed"
[ ${#selected[@]} -gt 0 ] || die "no case matches: ${patterns[*]}" "tests/run.sh -l lists the cases"
[ "$shards" -le ${#selected[@]} ] || shards=${#selected[@]}

# The shared list: the debug-only cases first, which only vm0 takes, so
# that it starts on them while the release VMs take the others; within
# each group, known long cases first (seconds of a past run in
# tests/case-times.txt), unknown ones as 60 s. The times only order the
# list; they assert nothing.
queue=$results/queue
rm -rf "$queue"
mkdir -p "$queue"
weights=$RLOOP_ROOT/tests/case-times.txt
declare -A weight
if [ -f "$weights" ]; then
	while read -r secs name; do
		[[ $secs =~ ^[0-9]+$ ]] && weight[$name]=$secs
	done <"$weights"
fi
for i in "${!selected[@]}"; do
	group=1
	[ "$shards" -gt 1 ] && [ "${kernel_of[${selected[$i]}]}" = any ] || group=0
	echo "$group ${weight[${selected[$i]}]:-60} $i ${selected[$i]}"
done | sort -k1,1n -k2,2nr -k3,3n | cut -d' ' -f4 >"$queue/order"
[ "$(wc -l <"$queue/order")" -eq ${#selected[@]} ] || die "the case list $queue/order is incomplete"

# The kernels are built (or found) once, before the VMs start.
"$RLOOP_ROOT/scripts/deps.sh"
"$RLOOP_ROOT/scripts/kernel-build.sh" test >/dev/null
if [ "$shards" -gt 1 ]; then
	release_kdir=$("$RLOOP_ROOT/scripts/kernel-build.sh" bench)
	release_src=$results/release-module
	build_module_copy "$release_kdir" "$release_src" "$results/release-module.log"
fi

progress "${#selected[@]} cases over $shards VMs"
start=$SECONDS
pids=()
for ((i = 0; i < shards; i++)); do
	rm -f "$results/dmesg-check-vm$i.txt"
	if [ "$i" -eq 0 ]; then
		kernel=(--variant test)
		runner=(-f "$RLOOP_ROOT/tests/final")
		ko=
	else
		kernel=(--variant bench)
		runner=(-r)
		ko=$release_src/rloop.ko
	fi
	(
		# The stack tracer, on from boot for the two functions where a
		# stack of devices nests (22-io/sixteen_stacked_dio_devices):
		# turning ftrace on later patches live code, which under TCG
		# has crashed the guest on a stale int3.
		RLOOP_TEST_KO=$ko "$RLOOP_ROOT/scripts/vm.sh" "${kernel[@]}" \
			--append "stacktrace stacktrace_filter=blk_update_request,submit_bio_noacct" \
			--dmesg "$results/dmesg-check-vm$i.txt" -- \
			"$RLOOP_ROOT/tests/run.sh" -q "$queue" -s "vm$i" "${runner[@]}" \
			2>&1 </dev/null | sed -u "s/^/[vm$i] /"
		vm_rc=${PIPESTATUS[0]}
		distro_rc=0
		if [ -n "${RLOOP_VM_DISTRO:-}" ] && [ "$i" -eq $((shards - 1)) ]; then
			distro_start=$SECONDS
			# shellcheck disable=SC2086 # a list of kernels
			"$RLOOP_ROOT/scripts/check-distro.sh" $RLOOP_VM_DISTRO 2>&1 </dev/null |
				sed -u "s/^/[distro] /"
			distro_rc=${PIPESTATUS[0]}
			echo "$((SECONDS - distro_start)) $RLOOP_VM_DISTRO" >"$queue/distro.time"
		fi
		exit $((vm_rc | distro_rc))
	) &
	pids+=($!)
done
rc=0
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || rc=1
done
wall=$((SECONDS - start))

# Every case must have run, in one VM or the other.
missing=()
for name in "${selected[@]}"; do
	[ -d "$queue/claimed/${name//\//.}" ] || missing+=("$name")
done

# The table: each VM's boot, the ten slowest cases, every case.
times=$(for ((i = 0; i < shards; i++)); do
	[ ! -f "$queue/vm$i.times" ] || awk -v vm="vm$i" '{ print $1, $2, vm }' "$queue/vm$i.times"
done)
echo
echo "VM suite: ${#selected[@]} cases over $shards VMs in ${wall}s (wall clock)"
for ((i = 0; i < shards; i++)); do
	if [ -s "$queue/vm$i.times" ]; then
		echo "  vm$i ($([ "$i" -eq 0 ] && echo debug || echo release) kernel): boot $(awk '$2 == "boot" { print $1 }' "$queue/vm$i.times")s, $(grep -vc ' boot$' "$queue/vm$i.times") cases in $(awk '$2 != "boot" { s += $1 } END { print s + 0 }' "$queue/vm$i.times")s"
	else
		echo "  vm$i: no times (the VM crashed or timed out)"
	fi
done
[ ! -f "$queue/distro.time" ] ||
	echo "  then in vm$((shards - 1))'s slot: $(cut -d' ' -f2- "$queue/distro.time") (make check-distro) in $(cut -d' ' -f1 "$queue/distro.time")s"
echo "the ten slowest cases:"
grep -v ' boot ' <<<"$times" | sort -rn | head -n 10 | awk '{ printf "  %5ss  %-60s %s\n", $1, $2, $3 }'
echo "every case, by name:"
grep -v ' boot ' <<<"$times" | sort -k2 | awk '{ printf "  %5ss  %-60s %s\n", $1, $2, $3 }'
cp "$queue/order" "$results/case-order.txt"
grep -v ' boot ' <<<"$times" | sort -k2 | cut -d' ' -f1,2 >"$results/case-times.txt" || true

if [ ${#missing[@]} -gt 0 ]; then
	echo "not run (a VM ended early): ${missing[*]}"
	rc=1
fi
# Each VM's runner printed its own "N passed, N failed" line above.
if [ "$rc" -ne 0 ]; then
	die "the VM suite failed" "read the FAIL lines above; the guests' kernel logs are results/dmesg-check-vm*.txt"
fi
progress "all ${#selected[@]} cases passed"
