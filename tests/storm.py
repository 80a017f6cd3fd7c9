#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Seeded, time-bounded ioctl storms against loop devices, for race tests.

    storm.py KIND --secs S --seed N [--dev /dev/loopN] [--threads T]

KIND is one of:
  status    LOOP_GET_STATUS64 and LOOP_SET_STATUS64 / LOOP_SET_STATUS with
            the device's own offset and size limit (so data does not move),
            random flags among PARTSCAN and none, random file names;
            LOOP_SET_CAPACITY
  dio-bs    LOOP_SET_DIRECT_IO 0/1 and LOOP_SET_BLOCK_SIZE 512..4096
  open      open/close storms on --dev and on unbound devices, with
            O_RDONLY, O_RDWR, O_EXCL, O_NONBLOCK, some reads in between
  ctl       LOOP_CTL_ADD / LOOP_CTL_REMOVE / LOOP_CTL_GET_FREE on numbers
            8..15 with openers of those devices in other threads, and
            LOOP_CTL_REMOVE of the busy --dev (must be EBUSY)

Each of T threads runs its own random sequence (seed + thread index) until
S seconds have passed. The last line is "KIND: N ops: RESULT=COUNT ...",
the figures of the storm. The exit status is 1 if a result that must never
happen was seen (listed in the output as "unexpected").
"""

import argparse
import collections
import ctypes
import errno
import os
import random
import struct
import threading
import time

LOOP_SET_STATUS = 0x4C02
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_SET_CAPACITY = 0x4C07
LOOP_SET_DIRECT_IO = 0x4C08
LOOP_SET_BLOCK_SIZE = 0x4C09
LOOP_CTL_ADD = 0x4C80
LOOP_CTL_REMOVE = 0x4C81
LOOP_CTL_GET_FREE = 0x4C82
LO_FLAGS_PARTSCAN = 8
LO_FLAGS_AUTOCLEAR = 4

INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")
INFO = struct.Struct("=i4xQQQiiii64s32sQQ4s4x")

libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]


def ioctl(fd, cmd, arg=None):
    """The raw ioctl: 'ok', the returned value, or the errno name."""
    if isinstance(arg, (bytes, bytearray)):
        buf = ctypes.create_string_buffer(bytes(arg), len(arg))
        r = libc.ioctl(fd, cmd, ctypes.cast(buf, ctypes.c_void_p))
        out = buf.raw
    else:
        r = libc.ioctl(fd, cmd, arg)
        out = None
    if r < 0:
        return errno.errorcode.get(ctypes.get_errno(), "E?"), out
    return ("ok" if r == 0 else "value"), out


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()
        self.unexpected = collections.Counter()

    def add(self, what, res, allowed=None):
        with self.lock:
            self.c[f"{what}={res}"] += 1
            if allowed is not None and res not in allowed:
                self.unexpected[f"{what}={res}"] += 1


def storm_status(rnd, a, st, deadline):
    fd = os.open(a.dev, os.O_RDWR)
    try:
        while time.monotonic() < deadline:
            res, out = ioctl(fd, LOOP_GET_STATUS64, bytearray(INFO64.size))
            st.add("get_status64", res, {"ok"})
            if res != "ok":
                continue
            f = list(INFO64.unpack(out))
            # Keep offset (3) and size limit (4); never AUTOCLEAR, which
            # would detach the device under fio at its last close.
            flags = rnd.choice([0, LO_FLAGS_PARTSCAN])
            name = bytes(rnd.randrange(33, 127) for _ in range(rnd.randrange(0, 64)))
            k = rnd.randrange(4)
            if k == 0:
                old = INFO.pack(0, 0, 0, 0, f[3], 0, 0, flags, name[:63], b"", 0, 0, b"")
                # The legacy call sets the size limit to 0: only when it is 0.
                if f[4] == 0:
                    st.add("set_status", ioctl(fd, LOOP_SET_STATUS, old)[0], {"ok"})
            elif k == 1:
                st.add("set_capacity", ioctl(fd, LOOP_SET_CAPACITY, 0)[0], {"ok"})
            else:
                new = INFO64.pack(0, 0, 0, f[3], f[4], 0, 0, 0, flags, name, b"", b"", 0, 0)
                st.add("set_status64", ioctl(fd, LOOP_SET_STATUS64, new)[0], {"ok"})
    finally:
        os.close(fd)


def storm_dio_bs(rnd, a, st, deadline):
    fd = os.open(a.dev, os.O_RDWR)
    try:
        while time.monotonic() < deadline:
            if rnd.random() < 0.5:
                st.add("set_direct_io", ioctl(fd, LOOP_SET_DIRECT_IO, rnd.randrange(2))[0],
                       {"ok", "EINVAL"})
            else:
                bs = rnd.choice([512, 1024, 2048, 4096])
                # EINVAL: direct I/O on with a block size below the file's
                # alignment; EBUSY: loop.c refuses while the device is in use
                # by a partition scan.
                st.add("set_block_size", ioctl(fd, LOOP_SET_BLOCK_SIZE, bs)[0],
                       {"ok", "EINVAL", "EBUSY"})
    finally:
        os.close(fd)


def storm_open(rnd, a, st, deadline):
    devs = [a.dev] + [f"/dev/loop{i}" for i in range(4, 8)]
    held = []
    while time.monotonic() < deadline:
        if held and (len(held) > 8 or rnd.random() < 0.4):
            os.close(held.pop(rnd.randrange(len(held))))
            st.add("close", "ok")
            continue
        dev = rnd.choice(devs)
        flags = rnd.choice([os.O_RDONLY, os.O_RDWR, os.O_RDONLY | os.O_NONBLOCK,
                            os.O_RDWR | os.O_EXCL, os.O_RDONLY | os.O_EXCL])
        try:
            fd = os.open(dev, flags)
        except OSError as e:
            # O_EXCL on a device some other opener holds exclusively.
            st.add("open", errno.errorcode.get(e.errno, "E?"), {"EBUSY"})
            continue
        st.add("open", "ok")
        if rnd.random() < 0.3:
            try:
                os.pread(fd, 4096, rnd.randrange(16) * 4096)
                st.add("read", "ok")
            except OSError as e:
                st.add("read", errno.errorcode.get(e.errno, "E?"))
        held.append(fd)
    for fd in held:
        os.close(fd)


def storm_ctl(rnd, a, st, deadline):
    ctl = os.open("/dev/loop-control", os.O_RDWR)
    busy = int(a.dev.replace("/dev/loop", ""))
    try:
        while time.monotonic() < deadline:
            n = rnd.randrange(8, 16)
            k = rnd.randrange(6)
            if k == 0:
                st.add("ctl_add", ioctl(ctl, LOOP_CTL_ADD, n)[0], {"value", "EEXIST"})
            elif k == 1:
                st.add("ctl_remove", ioctl(ctl, LOOP_CTL_REMOVE, n)[0],
                       {"ok", "ENODEV", "EBUSY"})
            elif k == 2:
                st.add("ctl_get_free", ioctl(ctl, LOOP_CTL_GET_FREE, 0)[0], {"value"})
            elif k == 3:
                # ENODEV when the other thread's remove of it is under way:
                # loop.c hides a device from other removers while it checks
                # whether it can go (idr_visible), and so does rloop.
                st.add("ctl_remove_busy", ioctl(ctl, LOOP_CTL_REMOVE, busy)[0],
                       {"EBUSY", "ENODEV"})
            else:
                try:
                    fd = os.open(f"/dev/loop{n}", rnd.choice([os.O_RDONLY, os.O_RDWR]))
                except OSError as e:
                    # The node vanishes with the device: ENOENT or ENXIO.
                    st.add("open_added", errno.errorcode.get(e.errno, "E?"), {"ENOENT", "ENXIO"})
                    continue
                st.add("open_added", "ok")
                time.sleep(rnd.random() * 0.01)
                os.close(fd)
    finally:
        # Leave no added device behind.
        for n in range(8, 16):
            ioctl(ctl, LOOP_CTL_REMOVE, n)
        os.close(ctl)


STORMS = {"status": storm_status, "dio-bs": storm_dio_bs, "open": storm_open, "ctl": storm_ctl}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=sorted(STORMS))
    p.add_argument("--secs", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--dev", default="/dev/loop0")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    st = Stats()
    deadline = time.monotonic() + a.secs
    errors = []

    def worker(i):
        try:
            STORMS[a.kind](random.Random(a.seed * 1000 + i), a, st, deadline)
        except Exception as e:  # noqa: BLE001 - reported, fails the storm
            errors.append(f"thread {i}: {e!r}")

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    total = sum(st.c.values())
    print(f"{a.kind}: {total} ops: " + " ".join(f"{k}={v}" for k, v in sorted(st.c.items())))
    bad = errors + [f"unexpected {k} x{v}" for k, v in sorted(st.unexpected.items())]
    for b in bad:
        print(b)
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
