#!/usr/bin/env bash
# make check and make check-full: the stages in order (set-up: host
# packages and the test kernel, then lint, host tests, dkms build, VM
# suite), each timed, then a table of the stages' times and
# a warning when the total passes the budget (RLOOP_CHECK_BUDGET seconds,
# default 2400: CI's 90 minutes must hold the suite with room to spare).
# The VM stage also boots Debian's own sid kernel (7.2) and tests rloop in
# it, as make check-distro does, and builds rloop for trixie-backports'
# 7.3 kernel without booting it (RLOOP_CHECK_DISTRO, default
# "debian:sid --build-only debian:trixie-backports"; "none" skips both).
# Usage: check.sh [fast|full]. The tier goes to the VM suite
# (RLOOP_TEST_TIER); Documentation/testing.rst says what each tier runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=check
tier=${1:-fast}
case $tier in
fast | full) ;;
*) die "unknown tier $tier" "check.sh fast, or check.sh full" ;;
esac
budget=${RLOOP_CHECK_BUDGET:-2400}
distro=${RLOOP_CHECK_DISTRO:-debian:sid --build-only debian:trixie-backports}
[ "$distro" != none ] || distro=

names=()
secs=()
summary() {
	local rc=$? i total=0
	[ ${#names[@]} -gt 0 ] || return $rc
	printf '[check] time per stage (%s tier):\n' "$tier" >&2
	for i in "${!names[@]}"; do
		printf '[check]   %-10s %5ss\n' "${names[$i]}" "${secs[$i]}" >&2
		total=$((total + secs[i]))
	done
	printf '[check]   %-10s %5ss (%dm%02ds)\n' total "$total" $((total / 60)) $((total % 60)) >&2
	if [ "$total" -gt "$budget" ]; then
		printf '[check] warning: make check took %ss, over its budget of %ss\n' "$total" "$budget" >&2
	fi
	return $rc
}
trap summary EXIT

# `make kernel` sets up what the plain targets after it need (they set up
# nothing themselves): from a fresh machine, the packages and the kernel
# build; with the cache, a few seconds.
for stage in kernel lint test-host test-dkms test-vm; do
	start=$SECONDS
	names+=("$stage")
	secs+=(0)
	rc=0
	RLOOP_TEST_TIER=$tier RLOOP_VM_DISTRO=$distro ${MAKE:-make} --no-print-directory -C "$RLOOP_ROOT" "$stage" || rc=$?
	secs[-1]=$((SECONDS - start))
	[ "$rc" -eq 0 ] || die "make $stage failed (status $rc)" "read its output above"
done
