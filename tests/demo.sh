#!/usr/bin/env bash
# What rloop does, shown in the test VM: unmodified losetup binds a file on
# xfs with direct I/O, a file system is made, mounted, written and checked
# on top, and the device is detached. Each step says what it did.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

work=$(mktemp -d /tmp/rloop-demo.XXXXXX)
cleanup() {
	umount "$work/mnt" 2>/dev/null || true
	losetup -D 2>/dev/null || true
	umount "$work/xfs" 2>/dev/null || true
	udevadm settle 2>/dev/null || true
	rmmod rloop 2>/dev/null || true
	rmmod brd 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$work/xfs" "$work/mnt"

# say TEXT: what the next lines show.
say() { printf '\n== %s\n' "$*"; }
# show COMMAND: run it, printing the command and its output indented. A
# failing command is shown, not fatal: some steps show an error on purpose.
show() {
	printf '   $ %s\n' "$*"
	{ eval "$*" 2>&1 || true; } | sed 's/^/     /'
}

say "Kernel $(uname -r) with $(nproc) CPUs; loading rloop.ko, no C loop module loaded."
insmod "$ROOT/rloop.ko"
udevadm settle 2>/dev/null || true
show "dmesg | grep 'rloop:' | tail -n1"
show "awk '/^Block/ { b = 1 } b && \$1 == 7' /proc/devices"
show "ls -l /dev/loop-control"

say "A 128 MiB backing file on xfs, on a 512 MiB RAM disk."
modprobe brd rd_nr=1 rd_size=524288
mkfs.xfs -q -f /dev/ram0
mount /dev/ram0 "$work/xfs"
truncate -s 128M "$work/xfs/disk.img"
show "ls -ls $work/xfs/disk.img"

say "The host's unmodified losetup binds it with direct I/O."
dev=$(losetup -f --show --direct-io=on "$work/xfs/disk.img")
name=${dev#/dev/}
show "losetup --version"
show "losetup -l -O NAME,SIZELIMIT,OFFSET,RO,BACK-FILE,DIO,LOG-SEC $dev"
say "sysfs agrees: dio=1 means every request goes to the file as an IOCB_DIRECT kiocb."
show "grep . /sys/block/$name/loop/*"

say "mkfs.ext4 on $dev, mount, write 16 MiB of random data, sync."
mkfs.ext4 -q "$dev"
mount "$dev" "$work/mnt"
head -c 16M /dev/urandom >"$work/mnt/data"
sum=$(sha256sum <"$work/mnt/data" | cut -c1-16)
sync
show "df -h $work/mnt | tail -n1"
printf '     sha256 of the data written: %s...\n' "$sum"

say "Unmount, drop every cache, and read the data back through direct I/O."
umount "$work/mnt"
echo 3 >/proc/sys/vm/drop_caches
mount -o ro "$dev" "$work/mnt"
back=$(sha256sum <"$work/mnt/data" | cut -c1-16)
printf '     sha256 of the data read back: %s... (%s)\n' "$back" \
	"$([ "$sum" = "$back" ] && echo identical || echo DIFFERENT)"
umount "$work/mnt"
[ "$sum" = "$back" ] || exit 1
show "fsck.ext4 -n -f $dev"

say "Switch to buffered I/O and back with LOOP_SET_DIRECT_IO (losetup --direct-io)."
losetup --direct-io=off "$dev"
show "cat /sys/block/$name/loop/dio"
losetup --direct-io=on "$dev"
show "cat /sys/block/$name/loop/dio"

say "Detach: the loop/ directory goes away with the binding."
losetup -d "$dev"
udevadm settle 2>/dev/null || true
show "ls /sys/block/$name/loop"
show "losetup -l"

say "Unload rloop."
rmmod rloop
show "dmesg | grep 'rloop:' | tail -n1"
say "Done: rloop served an ext4 file system with direct I/O to a file on xfs."
