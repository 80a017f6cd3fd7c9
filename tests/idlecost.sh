#!/usr/bin/env bash
# The idle cost of a loop driver: its kernel threads and its memory per
# device, unbound and bound but idle (issue 17, target 5). Usage:
#
#   idlecost.sh rloop|loop [DEVICES]
#
# Loads the driver (rloop from RLOOP_KO) with no device, adds DEVICES (64)
# through /dev/loop-control, binds each to a sparse file on a tmpfs, reads
# from one, waits until the drivers' threads are idle, and unloads it. It
# prints one line of key=value:
#
#   threads_unbound   kernel threads named loopN or loopN.Q with DEVICES
#                     unbound devices
#   threads_busy      the same during reads from one bound device (the
#                     most seen)
#   threads_idle      the same once every device has been idle for 12 s
#   unbound_kib       kernel memory per unbound device, in KiB: the growth
#                     of MemTotal less MemFree, Buffers, Cached and
#                     AnonPages (/proc/meminfo), for adding them; it has
#                     the pages of each tag set's requests, which no
#                     counter of their own shows
#   bound_kib         the same per bound, idle device, from the same start
#   unbound_slab_kib  the part of unbound_kib in Slab, VmallocUsed and
#   bound_slab_kib    Percpu (per-CPU data such as a blocking tag set's
#                     SRCU), unbound and bound
#   stack_kib         KernelStack growth per bound, idle device (also in
#                     VmallocUsed, with CONFIG_VMAP_STACK)
#
# Must run as root in a test VM, with neither driver loaded.
set -euo pipefail

driver=${1:?usage: idlecost.sh rloop|loop [DEVICES]}
n=${2:-64}
root=$(cd "$(dirname "$0")/.." && pwd)
ko=${RLOOP_KO:-$root/rloop.ko}
# After the last I/O, an rloop worker's thread stops within 10 s.
idle_wait=12
# Memory readings wait until kernel memory holds still: within 256 KiB
# over 3 s, for at most 60 s. Right after boot, and after much
# allocation (the per-CPU lists of free pages, which MemFree does not
# count, shrink back over seconds), it moved by 100-300 KiB per device
# between readings. IDLECOST_MEM_SETTLE=0 where memory is not looked at:
# one reading, and caches stay.
mem_settle=${IDLECOST_MEM_SETTLE:-1}

settle() { udevadm settle --timeout=60 2>/dev/null || true; }
threads() { cat /proc/[0-9]*/comm 2>/dev/null | grep -cE '^loop[0-9]+([./][0-9]+)?$' || true; }
meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
# Kernel memory: what is neither free nor a page of a file or a process.
# Slab, vmalloc and per-CPU data are in it, and the pages a tag set takes
# for its requests (alloc_pages, in no counter of their own). Caches are
# dropped first, so that the page cache and the dentries of the probe
# itself move it less.
kernel_kib() {
	if [ "$mem_settle" -gt 0 ]; then
		sync
		echo 3 >/proc/sys/vm/drop_caches
	fi
	echo $(($(meminfo MemTotal) - $(meminfo MemFree) - $(meminfo Buffers) - $(meminfo Cached) -
		$(meminfo AnonPages)))
}
mem_kib() {
	local a b moved tries=20
	b=$(kernel_kib)
	[ "$mem_settle" -gt 0 ] || { echo "$b"; return; }
	while :; do
		a=$b
		sleep 3
		b=$(kernel_kib)
		moved=$((a - b))
		tries=$((tries - 1))
		if [ "${moved#-}" -le 256 ] || [ "$tries" -eq 0 ]; then break; fi
	done
	echo "$b"
}
slab_kib() { echo $(($(meminfo Slab) + $(meminfo VmallocUsed) + $(meminfo Percpu))); }

if [ -d /sys/module/rloop ] || [ -d /sys/module/loop ]; then
	echo "idlecost.sh: a loop driver is loaded already" >&2
	exit 2
fi
work=$(mktemp -d /tmp/idlecost.XXXXXX)
cleanup() {
	losetup -D 2>/dev/null || true
	settle
	rmmod "$driver" 2>/dev/null || true
	umount "$work" 2>/dev/null || true
	rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
mount -t tmpfs -o size=256M tmpfs "$work"

case $driver in
rloop) insmod "$ko" max_loop=0 ;;
loop) modprobe loop max_loop=0 ;;
*) echo "idlecost.sh: no driver $driver" >&2; exit 2 ;;
esac
settle
base=$(mem_kib) base_slab=$(slab_kib) base_stack=$(meminfo KernelStack)
for ((i = 0; i < n; i++)); do echo "ctl-add $i"; done | python3 "$root/tests/loopctl.py" batch >/dev/null
settle
unbound=$(mem_kib) unbound_slab=$(slab_kib)
threads_unbound=$(threads)

for ((i = 0; i < n; i++)); do
	truncate -s 1M "$work/f$i"
	losetup "/dev/loop$i" "$work/f$i"
done
settle
# Reads from one device, in the background, while the threads are counted.
dd if=/dev/loop0 of=/dev/null bs=4k iflag=direct count=20000 status=none &
reader=$!
threads_busy=0
while kill -0 $reader 2>/dev/null; do
	t=$(threads)
	[ "$t" -le "$threads_busy" ] || threads_busy=$t
	sleep 0.2
done
wait $reader
t=$(threads)
[ "$t" -le "$threads_busy" ] || threads_busy=$t
sleep $idle_wait
threads_idle=$(threads)
bound=$(mem_kib) bound_slab=$(slab_kib) bound_stack=$(meminfo KernelStack)

echo "driver=$driver devices=$n threads_unbound=$threads_unbound threads_busy=$threads_busy" \
	"threads_idle=$threads_idle unbound_kib=$(((unbound - base) / n))" \
	"bound_kib=$(((bound - base) / n)) stack_kib=$(((bound_stack - base_stack) / n))" \
	"unbound_slab_kib=$(((unbound_slab - base_slab) / n)) bound_slab_kib=$(((bound_slab - base_slab) / n))"
