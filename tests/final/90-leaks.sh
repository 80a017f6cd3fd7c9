# shellcheck shell=bash
# Run by every runner after all other cases (tests/run.sh -f): kmemleak
# reports an object only once its contents stayed the same across two
# scans, so a leak made by the last cases of a VM shows only at a scan
# after them. Any object allocated through rloop since boot fails this.

case_no_rloop_leak_after_all_cases() {
	# Not kmemleak_begin: its "clear" would forget what is to be found.
	[ -w /sys/kernel/debug/kmemleak ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
	[ -w /sys/kernel/debug/kmemleak ] || fail "kmemleak is not available"
	kmemleak_check 2
}
