#!/usr/bin/env bash
# In-VM test runner.
#
#   run.sh [-d SUITE_DIR] [-f FINAL_DIR] [PATTERN...]   run the cases
#   run.sh [-d SUITE_DIR] -l [PATTERN...]               list them (anywhere)
#   run.sh [-d SUITE_DIR] -q QUEUE_DIR -s SHARD [-f FINAL_DIR] [-r]
#
# Every function named case_* in SUITE_DIR/*.sh (default tests/cases) is a
# test case, named SUITE/CASE. PATTERNs (extended regexes) select cases by
# name. Each case runs in its own bash with `set -euo pipefail` and a time
# limit. After it, the kernel log it produced is scanned for reports
# (WARNING, BUG, KASAN, lockdep, refcount_t, Oops, ...): any report fails the
# case unless the case declared it with expect_splat.
#
# With -q, several runners (one per VM, scripts/test-vm.sh) share one list:
# QUEUE_DIR/order names the cases, one per line, and a runner takes the
# next one that no other runner took (mkdir QUEUE_DIR/claimed/NAME). It
# writes its boot time and case times to QUEUE_DIR/SHARD.times for the host.
# The cases of FINAL_DIR run after all the others, in every runner.
#
# -r: this guest runs the release build of the test kernel (no KASAN,
# lockdep or kmemleak): only the cases a suite lists in RLOOP_ANY_KERNEL
# (function names, or "all") run here; the others are left to the runners
# on the debug kernel.
#
# The last line is exactly "N passed, N failed"; the exit status is non-zero
# if anything failed.
set -uo pipefail

RLOOP_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export RLOOP_ROOT
suite_dir=$RLOOP_ROOT/tests/cases
final_dir=
queue=
shard=0
list=
release=
while [ $# -gt 0 ]; do
	case $1 in
	-d) suite_dir=$2; shift 2 ;;
	-f) final_dir=$2; shift 2 ;;
	-q) queue=$2; shift 2 ;;
	-s) shard=$2; shift 2 ;;
	-l) list=1; shift ;;
	-r) release=1; shift ;;
	*) break ;;
	esac
done
case_timeout=${RLOOP_CASE_TIMEOUT:-900}

selected() {
	[ $# -gt 1 ] || return 0
	local name=$1 p
	shift
	for p in "$@"; do
		[[ $name =~ $p ]] && return 0
	done
	return 1
}

# cases DIR PATTERN...: "SUITE_FILE FUNCTION NAME KERNEL" of each selected
# case; KERNEL is "any" or "debug" (see -r).
cases() {
	local dir=$1 suite fn any kernel
	shift
	for suite in "$dir"/*.sh; do
		[ -e "$suite" ] || continue
		# Without tests/lib.sh (its EXIT trap detaches loop devices): a
		# suite's top level may call its helpers, which then fail harmlessly.
		any=" $(bash -c 'source "$1"; echo ${RLOOP_ANY_KERNEL:-}' _ "$suite" 2>/dev/null) "
		for fn in $(bash -c 'source "$1"; declare -F' _ "$suite" 2>/dev/null | awk '$3 ~ /^case_/ { print $3 }'); do
			selected "$(basename "$suite" .sh)/${fn#case_}" "$@" || continue
			kernel=debug
			[[ $any != *" all "* && $any != *" $fn "* ]] || kernel=any
			echo "$suite $fn $(basename "$suite" .sh)/${fn#case_} $kernel"
		done
	done
}

if [ -n "$list" ]; then
	cases "$suite_dir" "$@" | cut -d' ' -f3,4
	exit 0
fi

[ "$(id -u)" -eq 0 ] || { echo "run.sh must run as root, inside the test VM" >&2; exit 2; }
[ -w /dev/kmsg ] || { echo "no writable /dev/kmsg" >&2; exit 2; }

# Kernel reports that fail a case. Lockdep reports start with WARNING: or
# BUG:, KASAN's with BUG: KASAN:, refcount_t's with "refcount_t:".
SPLAT_RE='WARNING:|BUG:|KASAN|UBSAN:|refcount_t:|Oops|general protection fault|kernel BUG at|Kernel panic|DEBUG_LOCKS_WARN_ON|possible (circular|recursive) locking|inconsistent lock state|lockdep is turned off|blocked for more than [0-9]+ seconds|soft lockup|rcu.*self-detected stall|unreferenced object'

work=$(mktemp -d /tmp/rloop-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Where the time goes: the guest's boot (its uptime now), each case's
# time in the table at the end, and with RLOOP_TEST_TRACE=1 a trace of every
# command of every case with its start time (bash xtrace), kept in
# results/trace/ for scripts/trace-profile.py.
boot_secs=$(cut -d' ' -f1 /proc/uptime)
echo "boot: ${boot_secs}s of guest uptime before the first case"
times=$work/times
: >"$times"

# run_case SUITE_FILE FUNCTION NAME
run_case() {
	local suite=$1 fn=$2 name=$3 sname cdir start rc secs re
	local -a reasons
	sname=${name%%/*}
	cdir=$work/$sname.${fn#case_}
	mkdir -p "$cdir"
	echo "rloop-test: begin $name" >/dev/kmsg
	start=$SECONDS
	# shellcheck disable=SC2016 # the case's bash expands them
	RLOOP_CASE_NAME=$name RLOOP_CASE_DIR=$cdir timeout -k 10 "$case_timeout" \
		bash -c 'set -euo pipefail
			if [ -n "${RLOOP_TEST_TRACE:-}" ]; then
				exec 19>"$RLOOP_CASE_DIR/trace"
				BASH_XTRACEFD=19 PS4="+\${EPOCHREALTIME} " && set -x
			fi
			source "$1/tests/lib.sh"; source "$2"; "$3"' \
		_ "$RLOOP_ROOT" "$suite" "$fn" >"$cdir/log" 2>&1
	rc=$?
	echo "rloop-test: end $name" >/dev/kmsg
	secs=$((SECONDS - start))
	printf '%s %s\n' "$secs" "$name" >>"$times"

	# The kernel log of this case, between its markers.
	dmesg | awk -v b="rloop-test: begin $name" -v e="rloop-test: end $name" '
		function ends(s) { return substr($0, length($0) - length(s) + 1) == s }
		ends(b) { on = 1; next }
		ends(e) { on = 0; next }
		on { print }' >"$cdir/dmesg"
	grep -E "$SPLAT_RE" "$cdir/dmesg" | grep -v 'rloop-test:' >"$cdir/splats" || true

	reasons=()
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		reasons+=("timed out after ${case_timeout}s")
	elif [ "$rc" -ne 0 ]; then
		reasons+=("$(grep '^reason: ' "$cdir/log" | tail -n1 | sed 's/^reason: //')")
		[ -n "${reasons[-1]}" ] || reasons[-1]="exit status $rc"
	fi
	if [ -f "$cdir/expected-splats" ]; then
		while IFS= read -r re; do
			if grep -qE -- "$re" "$cdir/splats"; then
				grep -vE -- "$re" "$cdir/splats" >"$cdir/splats.rest" || true
				mv "$cdir/splats.rest" "$cdir/splats"
			else
				reasons+=("expected kernel report /$re/ not seen")
			fi
		done <"$cdir/expected-splats"
	fi
	if [ -s "$cdir/splats" ]; then
		reasons+=("kernel report in dmesg: $(head -n1 "$cdir/splats")")
	fi
	# The C loop driver must never be loaded alongside rloop tests,
	# and no case may leave rloop behind.
	if [ -d /sys/module/loop ] && [ -z "${RLOOP_ALLOW_C_LOOP:-}" ]; then
		reasons+=("the C loop module got loaded")
		rmmod loop 2>/dev/null || true
	fi
	if [ -d /sys/module/rloop ]; then
		udevadm settle --timeout=60 2>/dev/null || true
		rmmod rloop 2>/dev/null || reasons+=("rloop left loaded and rmmod failed")
	fi

	# Keep every case's log (its figures) where the host can read it.
	if [ -n "${RLOOP_RESULTS:-}" ] && mkdir -p "$RLOOP_RESULTS/logs" 2>/dev/null; then
		cp "$cdir/log" "$RLOOP_RESULTS/logs/$sname.${fn#case_}.log" 2>/dev/null || true
		if [ -s "$cdir/trace" ] && mkdir -p "$RLOOP_RESULTS/trace" 2>/dev/null; then
			cp "$cdir/trace" "$RLOOP_RESULTS/trace/$sname.${fn#case_}.trace" 2>/dev/null || true
		fi
	fi
	if [ ${#reasons[@]} -eq 0 ]; then
		passed=$((passed + 1))
		printf 'ok   %s (%ss)\n' "$name" "$secs"
	else
		failed=$((failed + 1))
		printf 'FAIL %s (%ss): %s\n' "$name" "$secs" "$(IFS=';'; echo "${reasons[*]}")"
		sed 's/^/     | /' "$cdir/log" | tail -n 40
		if [ -s "$cdir/splats" ]; then
			echo "     kernel log of the case:"
			sed 's/^/     ! /' "$cdir/dmesg" | head -n 80
		fi
	fi
}

# The cases to run, read before any runs: a case must not read the list
# from its standard input.
passed=0
failed=0
mapfile -t todo < <(cases "$suite_dir" "$@")
if [ -n "$queue" ]; then
	# The shared list's cases in its order, each taken by one runner.
	mkdir -p "$queue/claimed"
	declare -A where
	for c in "${todo[@]}"; do
		read -r suite fn name kernel <<<"$c"
		where[$name]="$suite $fn $name $kernel"
	done
	mapfile -t order <"$queue/order"
	todo=()
	for name in "${order[@]}"; do
		[ -n "${where[$name]:-}" ] || { echo "run.sh: no case $name in $suite_dir" >&2; exit 2; }
		todo+=("${where[$name]}")
	done
fi
[ -z "$final_dir" ] || mapfile -t -O "${#todo[@]}" todo < <(cases "$final_dir")
for c in "${todo[@]}"; do
	read -r suite fn name kernel <<<"$c"
	[ -z "$release" ] || [ "$kernel" = any ] || continue
	if [ -n "$queue" ] && [[ $suite == "$suite_dir"/* ]]; then
		mkdir "$queue/claimed/${name//\//.}" 2>/dev/null || continue
	fi
	run_case "$suite" "$fn" "$name" </dev/null
done

# The time table: the ten slowest cases, then every case in the order
# they ran. With -q, the host prints it for all runners together.
if [ -n "$queue" ]; then
	{ echo "$boot_secs boot"; cat "$times"; } >"$queue/$shard.times"
else
	total=$(awk '{ s += $1 } END { print s + 0 }' "$times")
	echo
	echo "time: boot ${boot_secs}s, $(wc -l <"$times") cases ${total}s; the ten slowest:"
	sort -rn "$times" | head -n 10 | awk '{ printf "  %5ss  %s\n", $1, $2 }'
	echo "time of every case:"
	awk '{ printf "  %5ss  %s\n", $1, $2 }' "$times"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
