#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Record kernel uevents for block devices while a command runs.

    uevents.py DEVNAME -- COMMAND [ARG...]

Prints one line per uevent the kernel sent of itself for DEVNAME (or its
partitions; synthetic ones, written to a uevent file, are left out): the
action and the keys that matter for loop devices, in the order they
arrived, then the command's exit status. Exits with the command's status.
"""

import select
import socket
import subprocess
import sys
import time

KEYS = ("DISK_MEDIA_CHANGE", "RESIZE", "DEVTYPE", "PARTN")
# <linux/netlink.h>; not every Python's socket module names it.
NETLINK_KOBJECT_UEVENT = 15


def main():
    dev = sys.argv[1]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM,
                         NETLINK_KOBJECT_UEVENT)
    sock.bind((0, 1))  # the kernel's multicast group
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rc = subprocess.call(cmd)
    deadline = time.time() + 2.0
    while True:
        left = deadline - time.time()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            break
        msg = sock.recv(65536).split(b"\0")
        env = dict(f.decode().split("=", 1) for f in msg[1:] if b"=" in f)
        name = env.get("DEVNAME", "")
        if env.get("SUBSYSTEM") != "block" or not name.startswith(dev):
            continue
        # Written to the device's uevent file by user space, not sent by
        # the driver: udevd's watch synthesizes a "change" when a writer
        # (losetup) closes the device, depending on timing.
        if "SYNTH_UUID" in env:
            continue
        fields = [env.get("ACTION", "?"), name]
        fields += [f"{k}={env[k]}" for k in KEYS if k in env]
        print(" ".join(fields))
    print(f"status={rc}")
    sys.exit(rc)


if __name__ == "__main__":
    main()
