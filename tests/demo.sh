#!/usr/bin/env bash
# What rloop does, shown in the test VM: losetup with direct I/O onto a
# file on xfs, mkfs and mount on top, the sysfs view, then detach.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; eval "$@"; }

work=$(mktemp -d /tmp/rloop-demo.XXXXXX)
cleanup() {
	umount "$work/mnt" 2>/dev/null || true
	losetup -D 2>/dev/null || true
	umount "$work/xfs" 2>/dev/null || true
	rmmod rloop 2>/dev/null || true
	rmmod brd 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$work/xfs" "$work/mnt"

echo "rloop demo: kernel $(uname -r), $(nproc) CPUs"
step "insmod $ROOT/rloop.ko"
step "dmesg | grep 'rloop:' | tail -n1"
step "grep -E '^ *7 ' /proc/devices; ls -l /dev/loop-control"

echo
echo "# A backing file on xfs, on a RAM disk."
step "modprobe brd rd_nr=1 rd_size=262144"
step "mkfs.xfs -q -f /dev/ram0 && mount /dev/ram0 $work/xfs"
step "truncate -s 128M $work/xfs/disk.img"

echo
echo "# Unmodified losetup, with direct I/O to the backing file."
step "dev=\$(losetup -f --show --direct-io=on $work/xfs/disk.img); echo \$dev"
step "losetup -l -O NAME,BACK-FILE,DIO,LOG-SEC \$dev"
step "grep . /sys/block/\${dev#/dev/}/loop/*"

echo
echo "# A file system on the loop device."
step "mkfs.ext4 -q \$dev && mount \$dev $work/mnt"
step "dd if=/dev/urandom of=$work/mnt/data bs=1M count=16 status=none && sync"
step "df -h $work/mnt | tail -n1"
step "umount $work/mnt && fsck.ext4 -n -f \$dev"

echo
echo "# Switch to buffered I/O and back (LOOP_SET_DIRECT_IO)."
step "losetup --direct-io=off \$dev && cat /sys/block/\${dev#/dev/}/loop/dio"
step "losetup --direct-io=on \$dev && cat /sys/block/\${dev#/dev/}/loop/dio"

echo
step "losetup -d \$dev && ls /sys/block/\${dev#/dev/}/loop 2>&1 || true"
step "rmmod rloop && dmesg | grep 'rloop:' | tail -n1"
echo
echo "rloop served a file system with direct I/O to its backing file."
