#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A loop device busy under its own lock, for the differential suite.

    busy_device.py MOUNTPOINT FILE OTHER_FILE
    busy_device.py --killed MOUNTPOINT FILE

/dev/loop0 is bound to FILE, on the file system at MOUNTPOINT, which this
freezes twice. First LOOP_SET_STATUS64 with a new offset writes the
device's page cache back to the frozen file system, and its LOOP_CLR_FD and
LOOP_CTL_REMOVE wait behind it; meanwhile the control device and other
devices (bound to OTHER_FILE, elsewhere) must not wait. Then the only
opener of /dev/loop0 detaches while its writes wait behind the frozen file
system; all of them must complete.

With --killed, while LOOP_SET_STATUS64 holds the device busy so, other
processes wait for it: in an ioctl on a fd opened before, in open() and
in LOOP_CTL_REMOVE. Each gets SIGKILL, and must end before the thaw, as
loop.c's waits are killable (mutex_lock_killable()).

Every call runs in a thread of this one process, so that the file system
stays frozen for seconds, not for the start-up of a program per call.
Prints what was done and what came of it, for comparison with loop.c.
"""

import errno
import mmap
import os
import subprocess
import sys
import threading
import time

import loopctl as lc

WAIT_S = 60


class Call:
    """An ioctl on a fresh fd of `path`, in a thread of its own."""

    def __init__(self, path, cmd, arg=0):
        self.result = None
        self.tid = None
        self.thread = threading.Thread(target=self._run, args=(path, cmd, arg))
        self.thread.start()

    def _run(self, path, cmd, arg):
        self.tid = threading.get_native_id()
        fd = os.open(path, os.O_RDWR)
        try:
            self.result = lc.call(fd, cmd, arg)
        finally:
            os.close(fd)

    def state(self):
        """D while it waits uninterruptibly in the kernel, else R or S."""
        if not self.thread.is_alive():
            return "gone"
        try:
            with open(f"/proc/self/task/{self.tid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, TypeError):
            return "starting"


PENDING = []


def waits(what, call):
    """The call must end up waiting in the kernel."""
    for _ in range(WAIT_S * 10):
        if call.state() in ("D", "gone"):
            break
        time.sleep(0.1)
    state = call.state()
    print(f"{what}: {'waiting' if state == 'D' else state}", flush=True)
    PENDING.append((what, call))


def within(what, call):
    """The call must end without waiting for the busy device."""
    call.thread.join(WAIT_S)
    if call.thread.is_alive():
        print(f"{what}: still waiting after {WAIT_S} s", flush=True)
        PENDING.append((what, call))
    else:
        print(f"{what}: {call.result}", flush=True)


def ioctl(path, cmd, arg=0):
    """The ioctl's result on a fd of `path` opened for it alone."""
    call = Call(path, cmd, arg)
    call.thread.join()
    return call.result


def configure_arg(path):
    """A struct loop_config for `path`; the fd stays open for the process."""
    return lc.loop_config(os.open(path, os.O_RDWR))


def freeze(mnt, on):
    subprocess.run(["fsfreeze", "-f" if on else "-u", mnt], check=True)


def busy_lock(mnt, path, other):
    ctl = "/dev/loop-control"
    cfg = configure_arg(other)
    # Held open, so that the write's page stays dirty in the page cache.
    held = os.open("/dev/loop0", os.O_RDWR)
    os.pwrite(held, b"busy", 0)
    freeze(mnt, True)
    try:
        waits("set-status loop0 --offset 4096",
              Call("/dev/loop0", lc.LOOP_SET_STATUS64, lc.info64(offset=4096)))
        within("ctl-get-free", Call(ctl, lc.LOOP_CTL_GET_FREE))
        within("configure loop1", Call("/dev/loop1", lc.LOOP_CONFIGURE, cfg))
        within("clr-fd loop1", Call("/dev/loop1", lc.LOOP_CLR_FD))
        within("ctl-remove 2", Call(ctl, lc.LOOP_CTL_REMOVE, 2))
        waits("clr-fd loop0", Call("/dev/loop0", lc.LOOP_CLR_FD))
        waits("ctl-remove 0", Call(ctl, lc.LOOP_CTL_REMOVE, 0))
        within("configure loop3", Call("/dev/loop3", lc.LOOP_CONFIGURE, cfg))
        within("ctl-add 2", Call(ctl, lc.LOOP_CTL_ADD, 2))
        within("ctl-get-free", Call(ctl, lc.LOOP_CTL_GET_FREE))
    finally:
        freeze(mnt, False)
    for what, call in PENDING:
        call.thread.join()
        print(f"{what}, in the end: {call.result}", flush=True)
    PENDING.clear()
    os.close(held)
    with open(path, "rb") as f:
        print("the page written back first:", f.read(4).decode(), flush=True)


def queued_writes(mnt):
    fd = os.open("/dev/loop0", os.O_RDWR | os.O_DIRECT)
    bufs = [mmap.mmap(-1, 4096) for _ in range(3)]
    for buf, c in zip(bufs, b"ABC"):
        buf.write(bytes([c]) * 4096)
    done = {}

    def write(i):
        try:
            done[i] = os.pwritev(fd, [bufs[i]], i * 4096)
        except OSError as e:
            done[i] = errno.errorcode[e.errno]

    freeze(mnt, True)
    try:
        # The first write holds the worker; the others queue behind it.
        threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
        for th in threads:
            th.start()
            time.sleep(0.5)
        print("clr-fd with three writes waiting:", lc.call(fd, lc.LOOP_CLR_FD), flush=True)
        print("writes done before the thaw:", sorted(done), flush=True)
    finally:
        freeze(mnt, False)
    for th in threads:
        th.join()
    print("writes:", [done[i] for i in range(3)])
    os.close(fd)


# A process that waits for the busy device: it says when it is about to
# make the call, so that the D state seen after is the call's.
WAITER = r"""
import fcntl, os, sys
what, arg = sys.argv[1], sys.argv[2]
if what == "ctl-remove":
    fd = os.open("/dev/loop-control", os.O_RDWR)
os.write(1, b"r")
if what == "open":
    os.open(arg, os.O_RDWR)
elif what == "ctl-remove":
    fcntl.ioctl(fd, 0x4C81, int(arg))
else:
    fcntl.ioctl(int(arg), int(what, 0), bytearray(232))
"""


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def killed(what, argv, pass_fds=()):
    """Starts a waiter; once it waits in the kernel, kills it. Prints
    whether it ended within WAIT_S, and what it waited in."""
    proc = subprocess.Popen([sys.executable, "-c", WAITER] + argv,
                            stdout=subprocess.PIPE, pass_fds=pass_fds)
    if proc.stdout.read(1) != b"r":
        print(f"{what}: did not start", flush=True)
        proc.wait()
        return
    # In D for a second on end: waiting for the device, not for a page.
    seen = 0
    for _ in range(WAIT_S * 10):
        seen = seen + 1 if proc_state(proc.pid) == "D" else 0
        if seen == 10:
            break
        time.sleep(0.1)
    print(f"{what}: {'waiting' if seen == 10 else proc_state(proc.pid)}", flush=True)
    proc.kill()
    try:
        proc.wait(WAIT_S)
        print(f"{what}, SIGKILL: ended ({proc.returncode})", flush=True)
    except subprocess.TimeoutExpired:
        print(f"{what}, SIGKILL: still in {proc_state(proc.pid)} after {WAIT_S} s", flush=True)
        blocked_stacks()
        PENDING.append((what, proc))


def blocked_stacks():
    """The kernel stacks of the tasks in D, on stderr: what waits for what."""
    for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
        if proc_state(pid) != "D":
            continue
        try:
            with open(f"/proc/{pid}/comm") as f, open(f"/proc/{pid}/stack") as g:
                print(f"  D {pid} {f.read().strip()}:", *g.read().split()[1::2],
                      file=sys.stderr, flush=True)
        except OSError:
            pass


def killed_waiters(mnt, path):
    cfg = configure_arg(path)
    print("configure loop0:", ioctl("/dev/loop0", lc.LOOP_CONFIGURE, cfg), flush=True)
    held = os.open("/dev/loop0", os.O_RDWR)
    os.pwrite(held, b"busy", 0)
    fd = os.open("/dev/loop0", os.O_RDWR)
    freeze(mnt, True)
    try:
        busy = Call("/dev/loop0", lc.LOOP_SET_STATUS64, lc.info64(offset=4096))
        waits("set-status loop0 --offset 4096", busy)
        killed("get-status on an open fd", [hex(lc.LOOP_GET_STATUS64), str(fd)], (fd,))
        killed("clr-fd on an open fd", [hex(lc.LOOP_CLR_FD), str(fd)], (fd,))
        killed("open loop0", ["open", "/dev/loop0"])
        killed("ctl-remove 0", ["ctl-remove", "0"])
    finally:
        freeze(mnt, False)
    busy.thread.join()
    print("set-status loop0, in the end:", busy.result, flush=True)
    PENDING.remove(("set-status loop0 --offset 4096", busy))
    for what, proc in PENDING:
        proc.wait()
        print(f"{what}, after the thaw: ended ({proc.returncode})", flush=True)
    PENDING.clear()
    buf = bytearray(232)
    print("get-status loop0:", lc.call(fd, lc.LOOP_GET_STATUS64, buf),
          "offset", lc.INFO64.unpack(bytes(buf))[3], flush=True)
    os.close(fd)
    os.close(held)
    print("clr-fd loop0:", ioctl("/dev/loop0", lc.LOOP_CLR_FD), flush=True)


def main():
    if sys.argv[1] == "--killed":
        killed_waiters(*sys.argv[2:4])
        return
    mnt, path, other = sys.argv[1:4]
    cfg = configure_arg(path)
    print("configure loop0:", ioctl("/dev/loop0", lc.LOOP_CONFIGURE, cfg), flush=True)
    busy_lock(mnt, path, other)
    print("configure loop0 again:", ioctl("/dev/loop0", lc.LOOP_CONFIGURE, cfg), flush=True)
    queued_writes(mnt)


if __name__ == "__main__":
    main()
