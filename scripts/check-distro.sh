#!/usr/bin/env bash
# make check-distro: rloop built for, and run in, a distribution's own
# kernels. For each KERNEL (default: $RLOOP_DISTRO_KERNELS, or
# "debian:sid debian:trixie-backports"): build rloop.ko for it with
# scripts/distro.sh (in results/distro/RELEASE/, a copy of the sources),
# fetch its vmlinuz and modules (unpacked in the cache, not installed), boot
# them in a TCG VM and run tests/distro/ (the module loads, the user flows)
# and the differential suite tests/cases/40-diff.sh against the kernel's
# own loop.ko, in the same boot.
#
#   check-distro.sh [KERNEL...] [--build-only KERNEL...]
#
# The kernels after --build-only only get rloop.ko built for them, with
# the check of its vermagic, and no boot (make check does that for the 7.3
# kernel: its boot would cost the suite's budget some 3 minutes).
#
# The guest's kernel log is saved in results/dmesg-distro-RELEASE.txt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=check-distro

kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || read -r -a kernels <<<"${RLOOP_DISTRO_KERNELS:-debian:sid debian:trixie-backports}"
results=$RLOOP_ROOT/results
"$RLOOP_ROOT/scripts/deps.sh"

failed=()
summary=()
build_only=
for kernel in "${kernels[@]}"; do
	if [ "$kernel" = --build-only ]; then
		build_only=1
		continue
	fi
	start=$SECONDS
	release=$("$RLOOP_ROOT/scripts/distro.sh" --resolve "$kernel")
	progress "$kernel is Linux $release"
	dir=$results/distro/$release
	build_module_copy "debian:$release" "$dir" "$dir.build.log"
	modinfo -F vermagic "$dir/rloop.ko" | grep -q "^$release " ||
		die "$dir/rloop.ko was not built for $release" "read $dir.build.log"
	if [ -n "$build_only" ]; then
		summary+=("$release: rloop.ko built in $((SECONDS - start))s (not booted)")
		continue
	fi
	image=$("$RLOOP_ROOT/scripts/distro.sh" --image "debian:$release")
	built=$((SECONDS - start))
	rc=0
	# The distribution's suite, then the differential suite against its
	# loop.ko; both run whatever the first gives, and both must pass.
	# shellcheck disable=SC2016 # expanded by the guest's bash
	RLOOP_TEST_KO=$dir/rloop.ko RLOOP_TEST_DISTRO_RELEASE=$release \
		"$RLOOP_ROOT/scripts/vm.sh" --distro "$image" "$release" \
		--dmesg "$results/dmesg-distro-$release.txt" -- \
		bash -c 'tests/run.sh -d tests/distro; a=$?; tests/run.sh "^40-diff/"; b=$?; exit $((a | b))' ||
		rc=$?
	summary+=("$release: rloop.ko and kernel ready in ${built}s, VM $((SECONDS - start - built))s, $([ $rc -eq 0 ] && echo passed || echo FAILED)")
	[ $rc -eq 0 ] || failed+=("$release")
done
printf '[check-distro] %s\n' "${summary[@]}" >&2
[ ${#failed[@]} -eq 0 ] || die "rloop failed on ${failed[*]}" \
	"read the FAIL lines above and results/dmesg-distro-RELEASE.txt"
progress "done: ${kernels[*]}"
