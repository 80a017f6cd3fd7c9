#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Seeded random sequences of loop control operations, for the differential
suite: prints commands for `loopctl.py batch --echo`.

    randseq.py --seed S --ops N --dir DIR
    randseq.py --seed S --ops N --count C --dir DIR --pristine PDIR

The same seed gives the same commands. Each operation is followed by the
"state" of the devices it touched, so that a run compares the results of
the calls and what they did. Backing files live in DIR, which the caller
fills with `randseq.py --setup --dir DIR` before each sequence. With
--count, it runs C sequences itself (seeds S, S+1, ...), each from unbound
devices loop0-7 and a fresh copy of PDIR, and prints the transcript.
"""

import argparse
import os
import random
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEVS = ["/dev/loop0", "/dev/loop1", "/dev/loop2", "/dev/loop3", "/dev/loop8"]
NUMBERS = [0, 1, 2, 3, 8, 9, -1, 1 << 20]
FLAGS = [0, 1, 4, 8, 16, 4 | 8, 1 | 16, 4 | 16, 2, 32, 0x3F]
BLOCK_SIZES = [0, 512, 1024, 2048, 4096, 8192, 256, 3000]
OFFSETS = [0, 512, 4096, 1000, 1 << 20, 1 << 40]
SIZELIMITS = [0, 1 << 20, (3 << 20) + 512, 1 << 40]
IO_OFFSETS = ["0", "4096", "65536", "end-4096", "end", "512"]


def files(d):
    # f8 and g8 have one size, so CHANGE_FD can swap them; ro is read-only;
    # part has a partition table; odd has a size that is no sector multiple.
    return [f"{d}/f8", f"{d}/g8", f"{d}/f4", f"{d}/ro", f"{d}/part", f"{d}/odd",
            "/dev/loop0", "/dev/loop1", "/dev/null", d]


def setup(d):
    for name, size in (("f8", 8 << 20), ("g8", 8 << 20), ("f4", 4 << 20),
                       ("ro", 4 << 20), ("odd", (2 << 20) + 700)):
        with open(f"{d}/{name}", "wb") as f:
            # A recognizable pattern, so that reads show which file and offset.
            for i in range(0, size, 4096):
                f.write((f"{name}:{i}:" * 1024)[:min(4096, size - i)].encode())
    subprocess.run(["truncate", "-s", "16M", f"{d}/part"], check=True)
    # A fixed disk identifier: sfdisk picks a random one, and the setup
    # runs once per driver, so reads of the MBR would differ between them.
    subprocess.run(["/sbin/sfdisk", "-q", f"{d}/part"],
                   input=b"label: dos\nlabel-id: 0x10095e7f\n,4M\n,4M\n",
                   check=True, stdout=subprocess.DEVNULL)
    os.chmod(f"{d}/ro", 0o444)


def sequence(seed, ops, d):
    r = random.Random(seed)
    fl = files(d)
    out = []

    def dev():
        return r.choice(DEVS)

    def opt(cond, text):
        return " " + text if cond else ""

    for _ in range(ops):
        dv = dev()
        touched = [dv]
        kind = r.choices(
            ["configure", "set-fd", "clr-fd", "set-status", "set-status-old",
             "get-status", "get-status-old", "change-fd", "set-capacity",
             "set-dio", "set-block-size", "ctl-add", "ctl-remove",
             "ctl-get-free", "truncate", "write", "read", "hold", "release",
             "raw"],
            [10, 4, 7, 6, 2, 3, 2, 4, 3, 5, 5, 3, 3, 2, 2, 5, 5, 3, 3, 2])[0]
        if kind == "configure":
            f = r.choice(fl)
            cmd = (f"configure {dv} {f} --flags {r.choice(FLAGS)}"
                   f" --block-size {r.choice(BLOCK_SIZES)}"
                   f" --offset {r.choice(OFFSETS)} --sizelimit {r.choice(SIZELIMITS)}"
                   + opt(r.random() < 0.2, "--ro-dev")
                   + opt(r.random() < 0.3 or f.endswith("/ro"), "--ro-file"))
        elif kind == "set-fd":
            f = r.choice(fl)
            cmd = (f"set-fd {dv} {f}" + opt(r.random() < 0.2, "--ro-dev")
                   + opt(r.random() < 0.3 or f.endswith("/ro"), "--ro-file"))
        elif kind == "set-status":
            cmd = (f"set-status {dv} --flags {r.choice(FLAGS)} --offset {r.choice(OFFSETS)}"
                   f" --sizelimit {r.choice(SIZELIMITS)}" + opt(r.random() < 0.2, "--ro-dev"))
        elif kind == "set-status-old":
            cmd = f"set-status-old {dv} --flags {r.choice(FLAGS)} --offset {r.choice(OFFSETS[:5])}"
        elif kind == "change-fd":
            cmd = f"change-fd {dv} {r.choice(fl)} --ro-file"
        elif kind == "set-dio":
            cmd = f"set-dio {dv} {r.choice([0, 1, 1, 2])}" + opt(r.random() < 0.2, "--ro-dev")
        elif kind == "set-block-size":
            cmd = f"set-block-size {dv} {r.choice(BLOCK_SIZES)}"
        elif kind in ("ctl-add", "ctl-remove"):
            n = r.choice(NUMBERS)
            cmd = f"{kind} {n}"
            touched = [f"/dev/loop{n}"] if 0 <= n < 16 else []
        elif kind == "ctl-get-free":
            cmd = kind
            touched = []
        elif kind == "truncate":
            cmd = f"truncate {r.choice(fl[:6])} {r.choice([4 << 20, 8 << 20, 1 << 20, 0])}"
        elif kind in ("write", "read"):
            cmd = f"{kind} {dv} {r.choice(IO_OFFSETS)}"
        elif kind == "hold":
            cmd = f"hold {dv}" + opt(r.random() < 0.3, "--ro-dev")
        elif kind == "raw":
            cmd = f"raw {dv} {r.choice([0x4C00, 0x4C04, 0x4C05, 0x4C06, 0x4C0A, 0x4C0B, 0x4C10])}"
        else:
            cmd = f"{kind} {dv}"
        out.append(cmd)
        out.extend(f"state {t}" for t in touched)
    return out


def fail(msg):
    # On stdout, in the transcript, where the case shows it.
    print(msg, flush=True)
    sys.exit(1)


def reset_devices():
    """Every device unbound, loop0-7 present and no other: the state each
    sequence starts from."""
    import loopctl
    for _ in range(3):
        for name in sorted(os.listdir("/sys/block")):
            if name.startswith("loop") and os.path.isdir(f"/sys/block/{name}/loop"):
                try:
                    fd = os.open(f"/dev/{name}", os.O_RDONLY)
                except OSError:
                    continue
                loopctl.call(fd, loopctl.LOOP_CLR_FD)
                os.close(fd)
    ctl = os.open("/dev/loop-control", os.O_RDWR)
    try:
        for name in os.listdir("/sys/block"):
            if name.startswith("loop") and int(name[4:]) >= 8:
                r = loopctl.call(ctl, loopctl.LOOP_CTL_REMOVE, int(name[4:]))
                if r != "ok":
                    fail(f"reset: cannot remove {name}: {r}")
        for n in range(8):
            if not os.path.isdir(f"/sys/block/loop{n}"):
                loopctl.call(ctl, loopctl.LOOP_CTL_ADD, n)
    finally:
        os.close(ctl)
    for name in os.listdir("/sys/block"):
        if name.startswith("loop") and os.path.isdir(f"/sys/block/{name}/loop"):
            fail(f"reset: {name} is still bound")


def run_sequences(seed, count, ops, d, pristine):
    """Runs COUNT sequences in this one process: starting Python costs
    seconds under TCG."""
    import shutil
    import loopctl
    for i in range(count):
        print(f"# sequence {i}, seed {seed + i}", flush=True)
        reset_devices()
        loopctl.DISKSEQ.clear()
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(pristine, d, symlinks=True)
        for line in sequence(seed + i, ops, d):
            print("> " + line, end=": ")
            try:
                loopctl.run(shlex.split(line))
            except Exception as e:  # A bug of the test, seen in both runs.
                print(f"test error: {type(e).__name__}: {e}")
            sys.stdout.flush()
        for fd in loopctl.HELD.values():
            os.close(fd)
        loopctl.HELD.clear()
    reset_devices()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ops", type=int, default=40)
    p.add_argument("--count", type=int, default=0,
                   help="run COUNT sequences from SEED instead of printing one")
    p.add_argument("--pristine", help="with --count: backing files to copy for each")
    p.add_argument("--dir", required=True)
    p.add_argument("--setup", action="store_true")
    a = p.parse_args()
    if a.setup:
        setup(a.dir)
        return
    if a.count:
        run_sequences(a.seed, a.count, a.ops, a.dir, a.pristine)
        return
    for line in sequence(a.seed, a.ops, a.dir):
        print(line)


if __name__ == "__main__":
    main()
