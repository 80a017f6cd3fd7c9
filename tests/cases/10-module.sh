# shellcheck shell=bash
# The module skeleton: it loads, its C helpers answer, it unloads.

case_loads_and_unloads() {
	load_rloop
	module_loaded rloop || fail "/sys/module/rloop missing after insmod"
	assert_eq live "$(cat /sys/module/rloop/initstate)" "initstate"
	assert_match 'rloop: module loaded' "$(case_dmesg)" "load message"
	settle
	rmmod rloop
	! module_loaded rloop || fail "/sys/module/rloop still present after rmmod"
	assert_match 'rloop: unloaded' "$(case_dmesg)" "unload message"
}

case_modinfo() {
	local info
	info=$(modinfo "$RLOOP_KO")
	assert_match '^name: +rloop$' "$(grep '^name:' <<<"$info")" "name"
	assert_match '^license: +GPL$' "$(grep '^license:' <<<"$info")" "license"
	assert_match '^description: +.+' "$(grep '^description:' <<<"$info")" "description"
	assert_match '^author: +.+' "$(grep '^author:' <<<"$info")" "author"
	assert_match "^vermagic: +$(uname -r) " "$(grep '^vermagic:' <<<"$info")" "vermagic"
}

case_c_helpers_linked_and_answer() {
	# Both halves are in the one .ko: the C helpers are defined in it, and
	# the Rust half references them.
	local syms
	# readelf, not nm: nm takes a minute under TCG.
	syms=$(readelf -sW "$RLOOP_KO")
	assert_match 'FUNC +GLOBAL +DEFAULT +[0-9]+ rloop_memalloc_noio_save$' "$syms" "C helper symbol"
	if grep -qE ' UND rloop_' <<<"$syms"; then
		fail "a C helper is left undefined in the module"
	fi
	# At init the Rust half calls the helpers and checks their effect; a
	# failed check refuses to load.
	load_rloop
	assert_match 'rloop: module loaded, C helpers linked \(memalloc_noio scope ok\)' \
		"$(case_dmesg)" "helper self-check message"
	unload_rloop
}

case_load_unload_cycles() {
	local _ cycles
	cycles=$(by_tier 5 20)
	for _ in $(seq 1 "$cycles"); do
		insmod "$RLOOP_KO"
		# udev probes the new devices and holds them open meanwhile.
		settle
		rmmod rloop
	done
	assert_eq "$cycles" "$(case_dmesg | grep -c 'rloop: unloaded')" "unload count"
}

case_dmesg_scan_catches_a_warn() {
	# Run the runner on a suite whose only case makes rloop WARN on purpose.
	# The scan must fail that case, which proves it can fail a case.
	expect_splat 'WARNING: .*rloop'
	local out rc=0
	out=$(RLOOP_CASE_TIMEOUT=120 "$RLOOP_ROOT/tests/run.sh" -d "$RLOOP_ROOT/tests/fixtures/splat") || rc=$?
	echo "$out"
	[ "$rc" -ne 0 ] || fail "the runner exited 0 although a case WARNed"
	assert_match '^FAIL warn/module_param_warns .*kernel report in dmesg: .*WARNING:' \
		"$(grep '^FAIL' <<<"$out")" "nested verdict"
	assert_eq "0 passed, 1 failed" "$(tail -n1 <<<"$out")" "nested summary"
}
