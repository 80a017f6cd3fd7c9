#!/usr/bin/env bash
# In-VM test runner. Usage: run.sh [-d SUITE_DIR] [PATTERN...]
#
# Every function named case_* in SUITE_DIR/*.sh (default tests/cases) is a
# test case, named SUITE/CASE. PATTERNs (extended regexes) select cases by
# name. Each case runs in its own bash with `set -euo pipefail` and a time
# limit. After it, the kernel log it produced is scanned for reports
# (WARNING, BUG, KASAN, lockdep, refcount_t, Oops, ...): any report fails the
# case unless the case declared it with expect_splat.
# The last line is exactly "N passed, N failed"; the exit status is non-zero
# if anything failed.
set -uo pipefail

RLOOP_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export RLOOP_ROOT
suite_dir=$RLOOP_ROOT/tests/cases
if [ "${1:-}" = -d ]; then
	suite_dir=$2
	shift 2
fi
case_timeout=${RLOOP_CASE_TIMEOUT:-900}

[ "$(id -u)" -eq 0 ] || { echo "run.sh must run as root, inside the test VM" >&2; exit 2; }
[ -w /dev/kmsg ] || { echo "no writable /dev/kmsg" >&2; exit 2; }

# Kernel reports that fail a case. Lockdep reports start with WARNING: or
# BUG:, KASAN's with BUG: KASAN:, refcount_t's with "refcount_t:".
SPLAT_RE='WARNING:|BUG:|KASAN|UBSAN:|refcount_t:|Oops|general protection fault|kernel BUG at|Kernel panic|DEBUG_LOCKS_WARN_ON|possible (circular|recursive) locking|inconsistent lock state|lockdep is turned off|blocked for more than [0-9]+ seconds|soft lockup|rcu.*self-detected stall|unreferenced object'

work=$(mktemp -d /tmp/rloop-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT

selected() {
	[ $# -gt 1 ] || return 0
	local name=$1 p
	shift
	for p in "$@"; do
		grep -qE -- "$p" <<<"$name" && return 0
	done
	return 1
}

passed=0
failed=0
for suite in "$suite_dir"/*.sh; do
	[ -e "$suite" ] || continue
	sname=$(basename "$suite" .sh)
	for fn in $(bash -c 'source "$1"; declare -F' _ "$suite" | awk '$3 ~ /^case_/ { print $3 }'); do
		name=$sname/${fn#case_}
		selected "$name" "$@" || continue
		cdir=$work/$sname.${fn#case_}
		mkdir -p "$cdir"
		echo "rloop-test: begin $name" >/dev/kmsg
		start=$SECONDS
		RLOOP_CASE_NAME=$name RLOOP_CASE_DIR=$cdir timeout -k 10 "$case_timeout" \
			bash -c 'set -euo pipefail; source "$1/tests/lib.sh"; source "$2"; "$3"' \
			_ "$RLOOP_ROOT" "$suite" "$fn" >"$cdir/log" 2>&1
		rc=$?
		echo "rloop-test: end $name" >/dev/kmsg
		secs=$((SECONDS - start))

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
	done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
