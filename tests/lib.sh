# shellcheck shell=bash
# Helpers for test cases. The runner sources this before each case, which
# runs with `set -euo pipefail`: any failing command fails the case.

RLOOP_ROOT=${RLOOP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RLOOP_KO=${RLOOP_KO:-$RLOOP_ROOT/rloop.ko}

# fail MESSAGE: fail the current case with a reason.
fail() {
	echo "reason: $*" >&2
	exit 1
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# assert_match REGEX TEXT WHAT
assert_match() {
	grep -qE -- "$1" <<<"$2" || fail "$3: '$2' does not match /$1/"
}

# expect_splat REGEX: this case provokes a kernel report on purpose. The
# runner then requires a report matching REGEX and ignores it, while any
# other report still fails the case.
expect_splat() {
	echo "$1" >>"$RLOOP_CASE_DIR/expected-splats"
}

# dmesg lines logged since this case began.
case_dmesg() {
	dmesg | awk -v m="rloop-test: begin $RLOOP_CASE_NAME" '
		substr($0, length($0) - length(m) + 1) == m { on = 1; next }
		on { print }'
}

module_loaded() { [ -d "/sys/module/$1" ]; }

load_rloop() {
	module_loaded rloop && fail "rloop is already loaded"
	insmod "$RLOOP_KO" "$@"
}

unload_rloop() {
	if module_loaded rloop; then rmmod rloop; fi
}
