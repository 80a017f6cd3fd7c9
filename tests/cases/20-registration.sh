# shellcheck shell=bash
# rloop core (issue 3), registration: block major 7 and /dev/loop-control,
# the devices max_loop makes, and the module parameters.

# Registration: these may run on the release build of the test kernel
# (tests/run.sh -r).
# shellcheck disable=SC2034 # read by tests/run.sh
RLOOP_ANY_KERNEL="case_registers_major_and_control_node
	case_module_parameters"

case_registers_major_and_control_node() {
	load_rloop
	assert_match '^ *7 loop$' "$(grep -E '^ *7 ' /proc/devices)" "/proc/devices"
	assert_eq "10:237" "$(cat /sys/class/misc/loop-control/dev)" "loop-control dev"
	[ -c /dev/loop-control ] || fail "/dev/loop-control missing"
	local i
	for i in 0 1 2 3 4 5 6 7; do
		[ -b /dev/loop$i ] || fail "/dev/loop$i missing"
		assert_eq "7:$i" "$(cat /sys/block/loop$i/dev)" "loop$i dev"
		[ ! -e /sys/block/loop$i/loop ] || fail "loop$i has a loop/ group while unbound"
	done
	[ ! -e /sys/block/loop8 ] || fail "more than max_loop=8 devices"
	assert_eq none "$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/block/loop0/queue/scheduler)" "scheduler"
	assert_eq 1280 "$(cat /sys/block/loop0/queue/max_hw_sectors_kb)" "max_hw_sectors_kb"
	unload_rloop
}

case_module_parameters() {
	load_rloop max_loop=2 hw_queue_depth=16
	{ [ -b /dev/loop1 ] && [ ! -e /sys/block/loop2 ]; } || fail "max_loop=2 not honoured"
	assert_eq 16 "$(cat /sys/block/loop0/queue/nr_requests)" "hw_queue_depth"
	unload_rloop
	load_rloop max_part=3
	assert_eq 4 "$(cat /sys/block/loop1/range)" "minors"
	assert_eq "7:4" "$(cat /sys/block/loop1/dev)" "first minor with max_part=3"
	unload_rloop
	if insmod "$RLOOP_KO" hw_queue_depth=0 2>/dev/null; then
		rmmod rloop
		fail "hw_queue_depth=0 accepted"
	fi
}
