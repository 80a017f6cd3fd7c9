#!/usr/bin/env bash
# make clean: remove the module's build products, and nothing else. No
# kernel tree is needed or touched (no KDIR, no set-up, no Kbuild): the
# files are the ones Kbuild's own `make M=... clean` removes for an external
# module (the find in the kernel's top Makefile, less device-tree and
# parser outputs, and its rm-files), found in the repository outside .git/
# and results/; then what the Makefile and lint build besides: the 32-bit
# test program results/bin/compat32, the rustdoc in results/rustdoc, and
# tests/host/target (where cargo put the host tests before they moved to
# the cache; the cache's host-target is shared by every checkout, and stays).
# Test output in results/ stays.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=clean
cd "$RLOOP_ROOT"

find . \( -path ./.git -o -path ./results \) -prune -o \
	\( -name '*.[aios]' -o -name '*.rsi' -o -name '*.ko' -o -name '*.ko.*' \
	-o -name '.*.cmd' -o -name '*.o.thinlto.bc' -o -name '*.dwo' -o -name '*.lst' \
	-o -name '*.su' -o -name '*.mod' -o -name '*.mod.c' -o -name '.*.d' -o -name '.*.tmp' \
	-o -name '*.symtypes' -o -name modules.order -o -name '*.ll' -o -name '*.gcno' \
	-o -name '*.long-type-*.txt' \) -type f -print0 |
	xargs -0 rm -f
find . \( -path ./.git -o -path ./results \) -prune -o -name '.tmp_*' -print0 | xargs -0 rm -rf
rm -rf Module.symvers modules.nsdeps compile_commands.json \
	results/bin/compat32 results/rustdoc tests/host/target
