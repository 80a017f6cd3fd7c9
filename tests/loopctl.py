#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Raw loop ioctls for the tests, printing the result or the errno name.

    loopctl.py ctl-add N | ctl-remove N | ctl-get-free | ctl-raw CMD [ARG]
    loopctl.py configure DEV FILE [--flags F] [--block-size B] [--offset O]
                                  [--sizelimit S] [--encrypt-type T]
                                  [--key-size K] [--ro-dev] [--ro-file]
                                  [--odirect]
    loopctl.py set-fd DEV FILE | set-fd-self DEV | clr-fd DEV
    loopctl.py get-status DEV | get-status-null DEV
    loopctl.py set-status DEV [--flags F] [--offset O] [--sizelimit S]
                              [--encrypt-type T] [--ro-dev]
    loopctl.py set-dio DEV 0|1 [--ro-dev] | set-capacity DEV
    loopctl.py set-block-size DEV N | raw DEV CMD [ARG]
    loopctl.py state DEV | write DEV OFFSET | read DEV OFFSET
    loopctl.py hold DEV [--ro-dev] | release DEV | truncate FILE SIZE
    loopctl.py pwrite DEV OFFSET TEXT | peek FILE OFFSET LEN
    loopctl.py load-module KO [PARAM=VALUE...]   (finit_module)
    loopctl.py batch [--echo]   (the commands above, one per line on stdin;
                                 held devices stay open across lines)

"state" prints what sysfs shows of the device, and whether its diskseq
moved since the last "state" of that name. "write"/"read" move 4096 bytes
with O_DIRECT at OFFSET (a number, or "end" or "end-4096" for the device's
size), printing "ok", a short count, a checksum or the errno name.
"pwrite" writes TEXT through the page cache, without a sync, so that it
stays dirty there until written back; "peek" prints LEN bytes of FILE at
OFFSET as text, a NUL as ".".

Success prints "ok" (or the returned value, or the status fields); failure
prints the errno name, such as "ENXIO". The exit status is 0 either way,
so that a test compares the output with what loop.c would give.
"""

import argparse
import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import shlex
import struct
import sys

SYS_FINIT_MODULE = 313  # x86-64
MODULE_INIT_COMPRESSED_FILE = 4
LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS = 0x4C02
LOOP_GET_STATUS = 0x4C03
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_CHANGE_FD = 0x4C06
LOOP_SET_CAPACITY = 0x4C07
LOOP_SET_DIRECT_IO = 0x4C08
LOOP_SET_BLOCK_SIZE = 0x4C09
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_ADD = 0x4C80
LOOP_CTL_REMOVE = 0x4C81
LOOP_CTL_GET_FREE = 0x4C82

INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")
assert INFO64.size == 232
# struct loop_info on x86-64: __kernel_old_dev_t and unsigned long are 64-bit.
INFO = struct.Struct("=i4xQQQiiii64s32sQQ4s4x")
assert INFO.size == 168


def info64(offset=0, sizelimit=0, flags=0, encrypt_type=0, key_size=0, name=b""):
    return INFO64.pack(0, 0, 0, offset, sizelimit, 0, encrypt_type, key_size,
                       flags, name, b"", b"", 0, 0)


def loop_config(fd, block_size=0, info=None):
    """struct loop_config: the backing file's fd, block size and info64."""
    return struct.pack("=II", fd, block_size) + (info or info64()) + bytes(64)


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def call(fd, cmd, arg=0):
    try:
        r = fcntl.ioctl(fd, cmd, arg)
    except OSError as e:
        return errname(e)
    return "ok" if r == 0 or isinstance(r, (bytes, bytearray)) else str(r)


OPEN_FDS = []


def opn(path, flags):
    """os.open, closed when the command ends (batch mode runs many)."""
    fd = os.open(path, flags)
    OPEN_FDS.append(fd)
    return fd


def open_dev(path, ro=False):
    return opn(path, os.O_RDONLY if ro else os.O_RDWR)


HELD = {}
DISKSEQ = {}


def sysfs(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return "-" + errname(e)


def state(dev):
    name = os.path.basename(dev)
    base = "/sys/block/" + name
    if not os.path.isdir(base):
        DISKSEQ.pop(name, None)
        return "absent"
    seq = sysfs(base + "/diskseq")
    moved = "new" if name not in DISKSEQ else ("moved" if DISKSEQ[name] != seq else "same")
    DISKSEQ[name] = seq
    parts = sorted(p for p in os.listdir(base) if p.startswith(name + "p"))
    bound = os.path.isdir(base + "/loop")
    ro = f"ro={sysfs(base + '/ro')}"
    fields = [f"size={sysfs(base + '/size')}"] + ([ro] if bound else []) + [
              f"lbs={sysfs(base + '/queue/logical_block_size')}",
              f"pbs={sysfs(base + '/queue/physical_block_size')}",
              f"minio={sysfs(base + '/queue/minimum_io_size')}",
              f"discard={sysfs(base + '/queue/discard_max_bytes')}",
              f"wzeroes={sysfs(base + '/queue/write_zeroes_max_bytes')}"]
    if bound:
        for attr in ("backing_file", "offset", "sizelimit", "autoclear", "partscan", "dio"):
            fields.append(f"{attr}={sysfs(base + '/loop/' + attr)}")
    fields.append("parts=" + ",".join(parts))
    if bound:
        fields.append("diskseq=" + moved)
        return " ".join(fields)
    # On a line of its own: loop.c changes both on a LOOP_CONFIGURE that
    # then fails (see tests/diff-allowlist.txt).
    return " ".join(fields) + f"\n  unbound {name} {ro} diskseq={moved}"


def io_offset(dev, spec):
    if spec.startswith("end"):
        size = int(sysfs("/sys/block/" + os.path.basename(dev) + "/size") or 0) * 512
        return size - int(spec[4:] or 0) if spec != "end" else size
    return int(spec)


def direct_io(dev, op, spec, tag):
    """4096 bytes at an offset with O_DIRECT, through an aligned buffer."""
    buf = mmap.mmap(-1, 4096)
    try:
        # Opened first: the offset of "end" needs a device that exists.
        fd = opn(dev, (os.O_RDWR if op == "write" else os.O_RDONLY) | os.O_DIRECT)
        off = io_offset(dev, spec)
        if op == "write":
            buf.write((hashlib.sha256(tag.encode()).hexdigest() * 64)[:4096].encode())
            n = os.pwritev(fd, [buf], off)
            return "ok" if n == 4096 else f"short {n}"
        n = os.preadv(fd, [buf], off)
        return f"{n} {hashlib.md5(buf[:n]).hexdigest()[:12]}"
    except OSError as e:
        return errname(e)
    finally:
        buf.close()


PARSER = None


def parser():
    """The argument parser, built once: a batch runs hundreds of commands,
    and building it costs a lot under TCG."""
    global PARSER
    if PARSER is not None:
        return PARSER
    p = argparse.ArgumentParser()
    p.add_argument("op")
    p.add_argument("args", nargs="*")
    p.add_argument("--flags", type=lambda s: int(s, 0), default=0)
    p.add_argument("--block-size", type=int, default=0)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--sizelimit", type=int, default=0)
    p.add_argument("--encrypt-type", type=int, default=0)
    p.add_argument("--key-size", type=int, default=0)
    p.add_argument("--ro-dev", action="store_true")
    p.add_argument("--ro-file", action="store_true")
    p.add_argument("--odirect", action="store_true")
    p.add_argument("--echo", action="store_true")
    PARSER = p
    return p


def main(argv=None):
    a = parser().parse_args(argv)
    op, args = a.op, a.args
    if op == "batch":
        # One command per line on stdin, one result line each: saves a
        # Python start-up per ioctl, which is slow under TCG.
        echo = a.echo
        for line in sys.stdin:
            if line.strip() and not line.lstrip().startswith("#"):
                if echo:
                    print("> " + line.strip(), end=": ")
                run(shlex.split(line))
                sys.stdout.flush()
        return
    if op == "state":
        print(state(args[0]))
        return
    if op in ("write", "read"):
        name = os.path.basename(args[0])
        result = direct_io(args[0], op, args[1], " ".join(args))
        if os.path.isdir(f"/sys/block/{name}") and not os.path.isdir(f"/sys/block/{name}/loop"):
            # Depends on the read-only flag of an unbound device: see "state".
            result = f"\n  unbound {name} {op}={result}"
        print(result)
        return
    if op == "load-module":
        # The kernel's own answer: insmod and modprobe word it differently.
        libc = ctypes.CDLL(None, use_errno=True)
        # A distribution's modules are compressed (loop.ko.xz).
        flags = MODULE_INIT_COMPRESSED_FILE if args[0].endswith((".xz", ".zst", ".gz")) else 0
        with open(args[0], "rb") as ko:
            ret = libc.syscall(SYS_FINIT_MODULE, ko.fileno(),
                               " ".join(args[1:]).encode(), flags)
        print("ok" if ret == 0 else errno.errorcode.get(ctypes.get_errno(), "?"))
        return
    if op == "truncate":
        try:
            os.truncate(args[0], int(args[1]))
            print("ok")
        except OSError as e:
            print(errname(e))
        return
    if op == "pwrite":
        try:
            n = os.pwrite(opn(args[0], os.O_RDWR), args[2].encode(), int(args[1]))
            print("ok" if n == len(args[2]) else f"short {n}")
        except OSError as e:
            print(errname(e))
        return
    if op == "peek":
        try:
            data = os.pread(opn(args[0], os.O_RDONLY), int(args[2]), int(args[1]))
            print(data.decode(errors="replace").replace("\0", "."))
        except OSError as e:
            print(errname(e))
        return
    if op == "hold":
        if args[0] in HELD:
            print("held")
            return
        try:
            HELD[args[0]] = os.open(args[0], os.O_RDONLY if a.ro_dev else os.O_RDWR)
            print("ok")
        except OSError as e:
            print("open:" + errname(e))
        return
    if op == "release":
        fd = HELD.pop(args[0], None)
        if fd is not None:
            os.close(fd)
        print("ok" if fd is not None else "not held")
        return

    if op.startswith("ctl-"):
        fd = opn("/dev/loop-control", os.O_RDWR)
        if op == "ctl-add":
            print(call(fd, LOOP_CTL_ADD, int(args[0])))
        elif op == "ctl-remove":
            print(call(fd, LOOP_CTL_REMOVE, int(args[0])))
        elif op == "ctl-get-free":
            print(call(fd, LOOP_CTL_GET_FREE))
        elif op == "ctl-raw":
            print(call(fd, int(args[0], 0), int(args[1], 0) if len(args) > 1 else 0))
        return

    try:
        dev = open_dev(args[0], a.ro_dev)
    except OSError as e:
        print("open:" + errname(e))
        return
    if op in ("configure", "set-fd"):
        flags = os.O_RDONLY if a.ro_file else os.O_RDWR
        if a.odirect:
            flags |= os.O_DIRECT
        try:
            ffd = opn(args[1], flags)
        except OSError as e:
            print("open:" + errname(e))
            return
        if op == "set-fd":
            print(call(dev, LOOP_SET_FD, ffd))
        else:
            cfg = loop_config(ffd, a.block_size, info64(
                a.offset, a.sizelimit, a.flags, a.encrypt_type, a.key_size,
                os.path.abspath(args[1]).encode()[:63]))
            print(call(dev, LOOP_CONFIGURE, cfg))
    elif op == "set-fd-self":
        print(call(dev, LOOP_SET_FD, dev))
    elif op == "set-fd-raw":
        print(call(dev, LOOP_SET_FD, int(args[1])))
    elif op == "clr-fd":
        print(call(dev, LOOP_CLR_FD))
    elif op == "get-status":
        buf = bytearray(232)
        r = call(dev, LOOP_GET_STATUS64, buf)
        if r != "ok":
            print(r)
            return
        f = INFO64.unpack(bytes(buf))
        name = f[9].split(b"\0")[0].decode(errors="replace")
        print(f"number={f[5]} offset={f[3]} sizelimit={f[4]} flags={f[8]} "
              f"device={f[0]} inode={f[1]} name={name}")
    elif op == "change-fd":
        try:
            ffd = opn(args[1], os.O_RDONLY if a.ro_file else os.O_RDWR)
        except OSError as e:
            print("open:" + errname(e))
            return
        print(call(dev, LOOP_CHANGE_FD, ffd))
    elif op == "change-fd-raw":
        print(call(dev, LOOP_CHANGE_FD, int(args[1])))
    elif op == "get-status-old":
        buf = bytearray(INFO.size)
        r = call(dev, LOOP_GET_STATUS, buf)
        if r != "ok":
            print(r)
            return
        f = INFO.unpack(bytes(buf))
        name = f[8].split(b"\0")[0].decode(errors="replace")
        print(f"number={f[0]} offset={f[4]} flags={f[7]} device={f[1]} "
              f"inode={f[2]} name={name}")
    elif op == "set-status-old":
        info = INFO.pack(0, 0, 0, 0, a.offset, a.encrypt_type, a.key_size,
                         a.flags, b"", b"", 0, 0, b"")
        print(call(dev, LOOP_SET_STATUS, info))
    elif op == "get-status-null":
        print(call(dev, LOOP_GET_STATUS64, 0))
    elif op == "set-status":
        print(call(dev, LOOP_SET_STATUS64,
                   info64(a.offset, a.sizelimit, a.flags, a.encrypt_type, a.key_size)))
    elif op == "set-dio":
        print(call(dev, LOOP_SET_DIRECT_IO, int(args[1])))
    elif op == "set-capacity":
        print(call(dev, LOOP_SET_CAPACITY))
    elif op == "set-block-size":
        print(call(dev, LOOP_SET_BLOCK_SIZE, int(args[1])))
    elif op == "raw":
        print(call(dev, int(args[1], 0), int(args[2], 0) if len(args) > 2 else 0))
    else:
        sys.exit(f"unknown op {op}")


def run(argv=None):
    try:
        main(argv)
    finally:
        while OPEN_FDS:
            os.close(OPEN_FDS.pop())


if __name__ == "__main__":
    run()
