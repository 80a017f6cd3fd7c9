#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Open and close an unbound loop device many times (blktests loop/003).

    openclose.py [--trace] DEVICE CYCLES [r|w]

Opens DEVICE read-only (r, the default, as loop/003 does) or read-write
(w) and closes it again, CYCLES times, and prints on one line, as
key=value pairs, the rate and what the cycles did to the device:

  flushes    flush requests it completed (/sys/block/X/stat)
  diskseq    steps of its disk sequence number (a media change)
  uevents    its uevents (a media change, a partition scan)

With --trace (tracefs mounted at /sys/kernel/tracing, a kernel with
lockdep), the cycles run under tracepoints of this process alone, and it
also prints:

  blockev    block layer events of the device: any request or bio,
             a flush included
  qenter     acquisitions of the queue's usage counter: a freeze, or any
             I/O entering the queue
  modrefs    module references taken other than by the block layer's
             open (bdev_open): a driver's own __module_get()

An unbound device needs none of these; the rate is for the report, never
for an assertion.
"""

import os
import select
import socket
import sys
import time

TRACING = "/sys/kernel/tracing"
NETLINK_KOBJECT_UEVENT = 15
BEGIN = "rloop-openclose-begin"
END = "rloop-openclose-end"


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def counters(name):
    fields = read(f"/sys/block/{name}/stat").split()
    try:
        seq = int(read(f"/sys/block/{name}/diskseq"))
    except OSError:
        seq = 0
    # Field 16 counts the flush requests completed.
    return {"flushes": int(fields[15]) if len(fields) > 15 else 0, "diskseq": seq}


def drain(sock, name, wait):
    """Counts the uevents of disk `name` that arrive within `wait` s."""
    n = 0
    deadline = time.time() + wait
    while True:
        left = deadline - time.time()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return n
        msg = sock.recv(65536).split(b"\0")
        env = dict(f.decode(errors="replace").split("=", 1)
                   for f in msg[1:] if b"=" in f)
        if env.get("SUBSYSTEM") == "block" and env.get("DEVNAME", "") == name:
            n += 1


class Trace:
    """Tracepoints of this process: block events, the module references,
    and lockdep's acquisitions of a queue's usage counter."""

    EVENTS = ("block", "module/module_get", "lock/lock_acquire")

    def __init__(self):
        if not os.path.exists(f"{TRACING}/trace_marker"):
            sys.exit("openclose.py: no tracefs at " + TRACING)
        if not os.path.exists(f"{TRACING}/events/lock/lock_acquire"):
            sys.exit("openclose.py: no lock_acquire tracepoint (lockdep off?)")
        write(f"{TRACING}/tracing_on", "0")
        write(f"{TRACING}/events/enable", "0")
        write(f"{TRACING}/trace", "")
        write(f"{TRACING}/set_event_pid", str(os.getpid()))
        # The usage counter's lockdep map is "&q->q_usage_counter(io)";
        # a filter keeps the other locks out of the buffer.
        write(f"{TRACING}/events/lock/lock_acquire/filter", 'name ~ "*q_usage_counter*"')
        for e in self.EVENTS:
            write(f"{TRACING}/events/{e}/enable", "1")
        self.marker = os.open(f"{TRACING}/trace_marker", os.O_WRONLY)
        write(f"{TRACING}/tracing_on", "1")
        os.write(self.marker, BEGIN.encode())

    def stop(self, dev):
        os.write(self.marker, END.encode())
        write(f"{TRACING}/tracing_on", "0")
        os.close(self.marker)
        for e in self.EVENTS:
            write(f"{TRACING}/events/{e}/enable", "0")
        write(f"{TRACING}/events/lock/lock_acquire/filter", "0")
        write(f"{TRACING}/set_event_pid", "")
        lines = read(f"{TRACING}/trace").splitlines()
        begin = [i for i, line in enumerate(lines) if BEGIN in line]
        end = [i for i, line in enumerate(lines) if END in line]
        if not begin or not end:
            sys.exit("openclose.py: trace markers lost (buffer overrun?)")
        rdev = os.stat(dev).st_rdev
        devno = f" {os.major(rdev)},{os.minor(rdev)} "
        got = {"blockev": 0, "qenter": 0, "modrefs": 0}
        for line in lines[begin[0] + 1:end[0]]:
            if "block_" in line and devno in line:
                got["blockev"] += 1
            elif "lock_acquire:" in line and "q_usage_counter" in line:
                got["qenter"] += 1
            elif "module_get:" in line and "call_site=bdev_open " not in line:
                got["modrefs"] += 1
        return got


def main():
    args = sys.argv[1:]
    trace = "--trace" in args
    args = [a for a in args if a != "--trace"]
    dev, cycles = args[0], int(args[1])
    flags = os.O_RDWR if len(args) > 2 and args[2] == "w" else os.O_RDONLY
    name = os.path.basename(dev)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
    sock.bind((0, 1))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    before = counters(name)
    tracer = Trace() if trace else None
    start = time.monotonic()
    for _ in range(cycles):
        os.close(os.open(dev, flags | os.O_CLOEXEC))
    secs = time.monotonic() - start
    traced = tracer.stop(dev) if tracer else {}
    uevents = drain(sock, name, 1.0)
    after = counters(name)
    out = [f"cycles={cycles}", f"rate={cycles / secs:.0f}/s"]
    out += [f"{k}={after[k] - before[k]}" for k in before]
    out.append(f"uevents={uevents}")
    out += [f"{k}={v}" for k, v in traced.items()]
    print(" ".join(out))


if __name__ == "__main__":
    main()
