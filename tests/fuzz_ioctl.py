#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Seeded ioctl fuzzer for /dev/loopN and /dev/loop-control.

    fuzz_ioctl.py --seed S --iterations N --dir DIR [--transcript]

Every iteration picks a target (a loop device opened read-only or
read-write, freshly or from a pool of long-lived descriptors, or
/dev/loop-control), a command (a loop command with structured arguments,
a random command of type 0x4C with random direction and size bits, or a
random 32-bit number) and an argument (NULL, 1, a kernel address, a
random number, a descriptor: closed, /dev/null, a directory, a loop
device, a file in DIR, or a buffer of random bytes and random size that
ends at an unmapped page, so that a read past it faults instead of reading
other memory). Backing files only ever come from DIR, a tmpfs of the test.

With --transcript, one line per call: "I TARGET CMD ARG -> RESULT". The
sequence depends on the seed alone, and no line holds an address or
descriptor number, so the transcripts of two drivers can be diffed.
The summary at the end counts results per errno and per command.
"""

import argparse
import collections
import ctypes
import errno
import mmap
import os
import random
import struct
import sys

LOOP_CMDS = {
    0x4C00: "SET_FD", 0x4C01: "CLR_FD", 0x4C02: "SET_STATUS", 0x4C03: "GET_STATUS",
    0x4C04: "SET_STATUS64", 0x4C05: "GET_STATUS64", 0x4C06: "CHANGE_FD",
    0x4C07: "SET_CAPACITY", 0x4C08: "SET_DIRECT_IO", 0x4C09: "SET_BLOCK_SIZE",
    0x4C0A: "CONFIGURE",
}
CTL_CMDS = {0x4C80: "CTL_ADD", 0x4C81: "CTL_REMOVE", 0x4C82: "CTL_GET_FREE"}
INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")   # struct loop_info64, 232 bytes
INFO = struct.Struct("=i4xQQQiiii64s32sQQ4s4x")   # struct loop_info, 168 bytes
CONFIG_SIZE = 8 + INFO64.size + 64                # struct loop_config, 304 bytes
KERNEL_PTR = 0xFFFF800000000000
PAGE = mmap.PAGESIZE

libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


class Guarded:
    """Two pages, the second inaccessible: a buffer placed at the end of
    the first faults in the kernel when read or written past its size."""

    def __init__(self):
        self.m = mmap.mmap(-1, 2 * PAGE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.m))
        if libc.mprotect(self.base + PAGE, PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")

    def put(self, data):
        off = PAGE - len(data)
        self.m[off:PAGE] = data
        return self.base + off


class Fuzzer:
    def __init__(self, a):
        self.a = a
        self.rnd = random.Random(a.seed)
        self.buf = Guarded()
        self.devs = [f"/dev/loop{i}" for i in range(a.devices)]
        self.results = collections.Counter()
        self.per_cmd = collections.defaultdict(collections.Counter)
        # Argument descriptors: name -> fd. Files only in the test's DIR.
        frnd = random.Random(a.seed ^ 0x5EED)
        self.argfds = {}
        for name, size in (("f0", 4 << 20), ("f1", 1 << 20), ("f2", 0)):
            path = os.path.join(a.dir, name)
            with open(path, "wb") as f:
                f.write(frnd.randbytes(size))
            os.chmod(path, 0o666)
        self.argfds["file-rw"] = os.open(os.path.join(a.dir, "f0"), os.O_RDWR)
        self.argfds["file-ro"] = os.open(os.path.join(a.dir, "f1"), os.O_RDONLY)
        self.argfds["file-empty"] = os.open(os.path.join(a.dir, "f2"), os.O_RDWR)
        self.argfds["file-odirect"] = os.open(os.path.join(a.dir, "f1"), os.O_RDWR | os.O_DIRECT)
        self.argfds["devnull"] = os.open("/dev/null", os.O_RDWR)
        self.argfds["dir"] = os.open(a.dir, os.O_RDONLY | os.O_DIRECTORY)
        closed = os.open("/dev/null", os.O_RDONLY)
        os.close(closed)
        self.argfds["closed"] = closed
        # Long-lived device descriptors: name -> fd (or None when closed).
        self.pool = {}
        try:
            self.ctl = os.open("/dev/loop-control", os.O_RDWR)
            self.ctl_err = None
        except OSError as e:
            self.ctl = None
            self.ctl_err = errno.errorcode.get(e.errno, str(e.errno))

    def errname(self, e):
        return errno.errorcode.get(e, str(e))

    def open_dev(self, dev, mode):
        try:
            return os.open(dev, os.O_RDONLY if mode == "ro" else os.O_RDWR), None
        except OSError as e:
            return None, "open:" + self.errname(e.errno)

    def pick_fd_arg(self):
        """A descriptor for SET_FD, CHANGE_FD and CONFIGURE."""
        r = self.rnd.random()
        if r < 0.5:
            name = self.rnd.choice(sorted(self.argfds))
            return self.argfds[name], name
        if r < 0.8:
            live = sorted(k for k, v in self.pool.items() if v is not None)
            if live:
                name = self.rnd.choice(live)
                return self.pool[name], "dev:" + name
            return self.argfds["closed"], "closed"
        if r < 0.9 and self.ctl is not None:
            return self.ctl, "loop-control"
        v = self.rnd.choice([-1, 1 << 20, self.rnd.getrandbits(31)])
        return v, f"fd={v}"

    def rand_int_arg(self):
        k = self.rnd.randrange(6)
        if k == 0:
            return 0, "0"
        if k == 1:
            return 1, "1"
        if k == 2:
            return KERNEL_PTR, "kernel-ptr"
        if k == 3:
            v = self.rnd.getrandbits(64)
            return v, f"{v:#x}"
        if k == 4:
            size = self.rnd.randrange(0, 400)
            return self.buf.put(self.rnd.randbytes(size)), f"buf({size},random)"
        fd, name = self.pick_fd_arg()
        return fd & 0xFFFFFFFFFFFFFFFF, "fd:" + name

    def info64(self, plausible):
        if not plausible:
            return self.rnd.randbytes(INFO64.size)
        r = self.rnd
        return INFO64.pack(
            r.getrandbits(64) if r.random() < 0.1 else 0, 0, 0,
            r.choice([0, 512, 4096, 1 << 20, r.getrandbits(64)]),
            r.choice([0, 0, 4096, 1 << 20, r.getrandbits(64)]),
            r.randrange(16),
            r.choice([0, 0, 0, 1, 18, r.getrandbits(32)]),
            r.choice([0, 0, 0, 32, 33, r.getrandbits(32)]),
            r.choice([0, 0, 1, 4, 8, 16, 0x1f, r.getrandbits(32)]),
            r.randbytes(64), r.randbytes(64), r.randbytes(32),
            0, 0)

    def struct_arg(self, size, make):
        """A pointer argument: bad pointers, short buffers, or a struct."""
        k = self.rnd.randrange(10)
        if k == 0:
            return 0, "NULL"
        if k == 1:
            return KERNEL_PTR, "kernel-ptr"
        if k == 2:
            return 1, "1"
        if k == 3:
            short = self.rnd.randrange(0, size)
            return self.buf.put(self.rnd.randbytes(short)), f"buf({short},short)"
        plausible = k >= 6
        data, what = make(plausible)
        return self.buf.put(data), f"buf({len(data)},{what})"

    def loop_arg(self, cmd):
        r = self.rnd
        name = LOOP_CMDS[cmd]
        if name in ("SET_FD", "CHANGE_FD"):
            if r.random() < 0.1:
                return self.rand_int_arg()
            fd, fname = self.pick_fd_arg()
            return fd & 0xFFFFFFFFFFFFFFFF, "fd:" + fname
        if name in ("CLR_FD", "SET_CAPACITY"):
            return self.rand_int_arg() if r.random() < 0.3 else (0, "0")
        if name == "SET_DIRECT_IO":
            v = r.choice([0, 1, 1, 2, r.getrandbits(64)])
            return v, str(v)
        if name == "SET_BLOCK_SIZE":
            v = r.choice([512, 1024, 2048, 4096, 8192, 0, 3000, r.getrandbits(64)])
            return v, str(v)
        if name in ("GET_STATUS", "GET_STATUS64"):
            size = INFO.size if name == "GET_STATUS" else INFO64.size
            return self.struct_arg(size, lambda p: (bytes(size), "zero"))
        if name == "SET_STATUS64":
            return self.struct_arg(INFO64.size, lambda p: (
                self.info64(p), "plausible" if p else "random"))
        if name == "SET_STATUS":
            return self.struct_arg(INFO.size, lambda p: (
                (INFO.pack(0, 0, 0, 0, r.choice([0, 512, -1, (1 << 31) - 512]), r.randrange(3),
                           r.randrange(40), r.choice([0, 4, 8, 16, r.getrandbits(31)]),
                           r.randbytes(64), r.randbytes(32), 0, 0, b"")
                 if p else r.randbytes(INFO.size)),
                "plausible" if p else "random"))
        if name == "CONFIGURE":
            def make(p):
                if not p:
                    return r.randbytes(CONFIG_SIZE), "random"
                fd, fname = self.pick_fd_arg()
                bs = r.choice([0, 0, 512, 4096, 1024, 3000, r.getrandbits(32)])
                return (struct.pack("=II", fd & 0xFFFFFFFF, bs) + self.info64(True)
                        + bytes(64)), "fd:" + fname + f",bs={bs}"
            return self.struct_arg(CONFIG_SIZE, make)
        raise AssertionError(name)

    def ctl_arg(self, cmd):
        r = self.rnd
        if cmd == 0x4C82:
            return 0, "0"
        v = r.choice([r.randrange(-2, 24), r.randrange(-2, 24), 1 << 20, 0xFFFFFFFF,
                      r.getrandbits(64)])
        return v & 0xFFFFFFFFFFFFFFFF, str(v)

    def pick_cmd(self, on_ctl):
        r = self.rnd.random()
        if r < 0.65:
            table = CTL_CMDS if on_ctl and self.rnd.random() < 0.8 else LOOP_CMDS
            cmd = self.rnd.choice(sorted(table))
            return cmd, table[cmd], True
        if r < 0.85:
            cmd = (self.rnd.randrange(4) << 30) | (self.rnd.randrange(1 << 14) << 16) \
                | 0x4C00 | self.rnd.randrange(256)
            if self.rnd.random() < 0.5:
                cmd &= 0xFFFF
        else:
            cmd = self.rnd.getrandbits(32)
        return cmd, f"{cmd:#x}", False

    def step(self, i):
        r = self.rnd
        # The target.
        t = r.random()
        fresh = None
        if t < 0.15:
            if self.ctl is None:
                target, fd = "loop-control", None
                err = "open:" + self.ctl_err
            else:
                target, fd, err = "loop-control", self.ctl, None
        else:
            dev = r.choice(self.devs)
            mode = r.choice(["ro", "rw", "rw"])
            target = f"{dev[5:]}({mode}"
            if t < 0.55:
                fd, err = self.open_dev(dev, mode)
                fresh = fd
                target += ",fresh)"
            else:
                key = f"{dev[5:]}-{mode}"
                err = None
                if self.pool.get(key) is None or r.random() < 0.05:
                    if self.pool.get(key) is not None:
                        os.close(self.pool[key])
                    self.pool[key], err = self.open_dev(dev, mode)
                fd = self.pool[key]
                target += ",pool)"
        on_ctl = target == "loop-control"
        cmd, cname, known = self.pick_cmd(on_ctl)
        if known and cmd in CTL_CMDS:
            arg, aname = self.ctl_arg(cmd)
        elif known:
            arg, aname = self.loop_arg(cmd)
        else:
            arg, aname = self.rand_int_arg()
        if fd is None:
            res = err
        else:
            ret = libc.ioctl(fd, cmd, arg)
            if ret < 0:
                res = self.errname(ctypes.get_errno())
            else:
                res = "ok" if ret == 0 else f"value={ret}"
        if fresh is not None:
            os.close(fresh)
        self.results[res] += 1
        self.per_cmd[cname if known else ("0x4Cxx" if (cmd & 0xFF00) == 0x4C00 else "random")][res] += 1
        if self.a.transcript:
            print(f"{i} {target} {cname} {aname} -> {res}")

    def run(self):
        for i in range(self.a.iterations):
            self.step(i)
        for fd in self.pool.values():
            if fd is not None:
                os.close(fd)
        print(f"fuzz: seed={self.a.seed} iterations={self.a.iterations} uid={os.getuid()}: "
              + " ".join(f"{k}={v}" for k, v in sorted(self.results.items())))
        for c in sorted(self.per_cmd):
            print(f"  {c}: " + " ".join(f"{k}={v}" for k, v in sorted(self.per_cmd[c].items())))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--dir", required=True, help="a tmpfs of the test, for backing files")
    p.add_argument("--devices", type=int, default=4, help="fuzz /dev/loop0 .. N-1")
    p.add_argument("--transcript", action="store_true")
    a = p.parse_args()
    Fuzzer(a).run()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
