# shellcheck shell=bash
# rloop in a distribution's own kernel (make check-distro): the guest boots
# Debian's unmodified vmlinuz with its own modules, and rloop.ko was built
# for it by scripts/distro.sh. RLOOP_TEST_DISTRO_RELEASE names the kernel
# the host meant to boot. tests/cases/40-diff.sh runs in the same boot,
# against Debian's own loop.ko.

# The module loads as any module built for this kernel: no missing or
# mismatched symbol, and the kernel's vermagic.
case_loads_into_stock_kernel() {
	local release
	release=$(uname -r)
	assert_eq "${RLOOP_TEST_DISTRO_RELEASE:?}" "$release" "running kernel"
	# Debian's own modules carry the vermagic the kernel accepts.
	local want got
	want=$(modinfo -F vermagic loop)
	got=$(modinfo -F vermagic "$RLOOP_KO")
	assert_eq "$want" "$got" "rloop.ko vermagic (loop.ko's is the reference)"
	[[ $got == "$release "* ]] || fail "vermagic '$got' does not name the release $release"
	module_loaded loop && rmmod loop
	local tainted_before
	tainted_before=$(cat /proc/sys/kernel/tainted)
	load_rloop
	local log
	log=$(case_dmesg)
	if grep -E 'Unknown symbol|disagrees about version|Invalid module format|version magic' <<<"$log"; then
		fail "the kernel refused part of rloop.ko"
	fi
	module_loaded rloop || fail "rloop is not loaded"
	assert_eq 7 "$(stat -c '%t' /dev/loop0 | xargs printf '%d')" "major of /dev/loop0"
	assert_eq "10:237" "$(cat /sys/class/misc/loop-control/dev)" "loop-control"
	# Only the taints of an unsigned out-of-tree module (O and E) may be
	# added: no forced load (F), no module of another kernel.
	local added=$(($(cat /proc/sys/kernel/tainted) & ~tainted_before))
	[ $((added & ~((1 << 12) | (1 << 13)))) -eq 0 ] || fail "loading rloop tainted the kernel with $added"
	echo "loaded into $release; vermagic '$got'; taint added: $added ($(grep -o 'module verification failed.*' <<<"$log" || echo signed))"
	unload_rloop
	module_loaded rloop && fail "rmmod rloop left it loaded"
	return 0
}

# What a user does: losetup --direct-io=on, a file system on the device,
# data written and read back, fsck, fio verify in both modes, detach, rmmod.
case_user_flows_on_stock_kernel() {
	command -v fio >/dev/null || fail "fio missing"
	load_rloop
	mk_fs_on_brd xfs
	truncate -s 256M "$FSDIR/disk.img"
	local dev mnt=$RLOOP_CASE_DIR/mnt
	dev=$(losetup -f --show --direct-io=on "$FSDIR/disk.img")
	local name=${dev#/dev/}
	assert_eq 1 "$(cat "/sys/block/$name/loop/dio")" "sysfs dio"
	assert_eq 1 "$(losetup -l -n -O DIO "$dev" | tr -d ' ')" "losetup's DIO column"
	mkfs.ext4 -q -F "$dev"
	mkdir -p "$mnt"
	mount "$dev" "$mnt"
	cp -r "$RLOOP_ROOT/rust" "$mnt/"
	head -c 16M /dev/urandom >"$mnt/data"
	local sum
	sum=$(sha256sum <"$mnt/data")
	umount "$mnt"
	echo 3 >/proc/sys/vm/drop_caches
	fsck.ext4 -n -f "$dev" >/dev/null 2>&1 || fail "fsck of the ext4 on $dev is not clean"
	mount -o ro "$dev" "$mnt"
	assert_eq "$sum" "$(sha256sum <"$mnt/data")" "file read back"
	diff -r "$RLOOP_ROOT/rust" "$mnt/rust" >/dev/null || fail "copied tree differs"
	umount "$mnt"
	losetup -d "$dev"
	# fio verify on the device, direct and buffered I/O to a direct-I/O
	# device and to a buffered one.
	local mode direct
	for mode in on off; do
		dev=$(losetup -f --show --direct-io=$mode "$FSDIR/disk.img")
		assert_eq "$([ "$mode" = on ] && echo 1 || echo 0)" "$(cat "/sys/block/${dev#/dev/}/loop/dio")" "dio $mode"
		for direct in 1 0; do
			fio --name=verify --filename="$dev" --ioengine=libaio --direct=$direct --iodepth=16 \
				--rw=randwrite --bsrange=4k-256k --size="$(by_tier 16M 64M)" --verify=crc32c \
				--verify_fatal=1 --do_verify=1 --output="$RLOOP_CASE_DIR/fio-$mode-$direct.txt" ||
				fail "fio verify (loop dio $mode, fio direct=$direct)"
		done
		losetup -d "$dev"
	done
	unload_rloop
}
