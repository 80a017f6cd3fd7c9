#!/usr/bin/env bash
# The VM suite (make test-vm): the cases of tests/cases/ shared out over
# RLOOP_VM_SHARDS test VMs (default 2) that run at the same time, then one
# table of every case's time and each VM's boot time.
#
#   test-vm.sh [PATTERN...]     PATTERNs (extended regexes) select cases
#
# A guest runs one shell command at a time most of the time, which keeps
# one host CPU busy: a second VM uses the other. The VMs take the cases
# from one list (tests/run.sh -q), longest first by tests/case-times.txt,
# so that they finish close together. Each VM ends with the cases of
# tests/final/ (a kmemleak scan after all of its cases) and saves its
# kernel log in results/dmesg-check-vmN.txt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=test-vm
results=$RLOOP_ROOT/results
shards=${RLOOP_VM_SHARDS:-2}
[[ $shards =~ ^[1-9][0-9]*$ ]] || die "RLOOP_VM_SHARDS=$shards is not a positive number"
# With no pattern (make test-vm TESTS=): every case.
patterns=()
for p in "$@"; do [ -z "$p" ] || patterns+=("$p"); done

mapfile -t selected < <("$RLOOP_ROOT/tests/run.sh" -l "${patterns[@]}")
[ ${#selected[@]} -gt 0 ] || die "no case matches: ${patterns[*]}" "tests/run.sh -l lists the cases"
[ "$shards" -le ${#selected[@]} ] || shards=${#selected[@]}

# The shared list: known long cases first (seconds of a past run in
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
	echo "${weight[${selected[$i]}]:-60} $i ${selected[$i]}"
done | sort -k1,1nr -k2,2n | cut -d' ' -f3 >"$queue/order"
[ "$(wc -l <"$queue/order")" -eq ${#selected[@]} ] || die "the case list $queue/order is incomplete"

# The kernel is built (or found) once, before the VMs start.
"$RLOOP_ROOT/scripts/deps.sh"
"$RLOOP_ROOT/scripts/kernel-build.sh" test >/dev/null

progress "${#selected[@]} cases over $shards VMs"
start=$SECONDS
pids=()
for ((i = 0; i < shards; i++)); do
	rm -f "$results/dmesg-check-vm$i.txt"
	(
		"$RLOOP_ROOT/scripts/vm.sh" --dmesg "$results/dmesg-check-vm$i.txt" -- \
			"$RLOOP_ROOT/tests/run.sh" -q "$queue" -s "vm$i" -f "$RLOOP_ROOT/tests/final" \
			2>&1 </dev/null | sed -u "s/^/[vm$i] /"
		exit "${PIPESTATUS[0]}"
	) &
	pids+=($!)
	# The second VM boots while the first runs its udev coldplug.
	sleep 2
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
times=$(cat "$queue"/vm*.times 2>/dev/null || true)
echo
echo "VM suite: ${#selected[@]} cases over $shards VMs in ${wall}s (wall clock)"
for ((i = 0; i < shards; i++)); do
	if [ -s "$queue/vm$i.times" ]; then
		echo "  vm$i: boot $(awk '$2 == "boot" { print $1 }' "$queue/vm$i.times")s, $(grep -vc ' boot$' "$queue/vm$i.times") cases in $(awk '$2 != "boot" { s += $1 } END { print s + 0 }' "$queue/vm$i.times")s"
	else
		echo "  vm$i: no times (the VM crashed or timed out)"
	fi
done
echo "the ten slowest cases:"
grep -v ' boot$' <<<"$times" | sort -rn | head -n 10 | awk '{ printf "  %5ss  %s\n", $1, $2 }'
echo "every case, by name:"
grep -v ' boot$' <<<"$times" | sort -k2 | awk '{ printf "  %5ss  %s\n", $1, $2 }'
cp "$queue/order" "$results/case-order.txt"
grep -v ' boot$' <<<"$times" | sort -k2 >"$results/case-times.txt" || true

if [ ${#missing[@]} -gt 0 ]; then
	echo "not run (a VM ended early): ${missing[*]}"
	rc=1
fi
# Each VM's runner printed its own "N passed, N failed" line above.
if [ "$rc" -ne 0 ]; then
	die "the VM suite failed" "read the FAIL lines above; the guests' kernel logs are results/dmesg-check-vm*.txt"
fi
progress "all ${#selected[@]} cases passed"
