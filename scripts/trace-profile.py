#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Where a VM test run spent its time, from the traces of its cases.

`make test-vm RLOOP_TEST_TRACE=1` keeps a bash xtrace of every case, each
command stamped with the time it started, in results/trace/. This prints,
over all of them, the commands that took the most time: a command's time is
from its start to the start of the next traced command of the case, so an
external program (fio, mkfs, python3) is charged its run time, and a
builtin that waits (sleep, wait, echo scan >kmemleak) the time it waited.

Usage: trace-profile.py [TRACE_DIR] [--top N] [--by case|command|line]
"""

import argparse
import collections
import os
import re
import sys

LINE = re.compile(r"^(\++)(\d+\.\d+) (.*)$")


def events(path):
    """(time, depth, text) of each traced command of one case."""
    out = []
    with open(path, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if m:
                out.append((float(m.group(2)), len(m.group(1)), m.group(3)))
    return out


def command_key(text):
    """The program or function a traced line runs, without its arguments."""
    words = text.split()
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words.pop(0)
    if not words:
        return "(assignment)"
    w = os.path.basename(words[0])
    if w in ("python3", "timeout", "setpriv", "env") and len(words) > 1:
        rest = [x for x in words[1:] if not x.startswith("-") and not x.isdigit()]
        if rest:
            return w + " " + os.path.basename(rest[0])
    if w == "echo" and len(words) > 1 and words[1] in ("scan", "clear"):
        return "echo " + words[1] + " (kmemleak)"
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default="results/trace")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--by", choices=("command", "line", "case"), default="command")
    args = ap.parse_args()
    names = sorted(n for n in os.listdir(args.dir) if n.endswith(".trace"))
    if not names:
        sys.exit(f"no traces in {args.dir}: run make test-vm RLOOP_TEST_TRACE=1")
    total = collections.Counter()
    count = collections.Counter()
    for name in names:
        ev = events(os.path.join(args.dir, name))
        case = name[: -len(".trace")]
        for (t, _depth, text), nxt in zip(ev, ev[1:]):
            dt = max(0.0, nxt[0] - t)
            if args.by == "command":
                key = command_key(text)
            elif args.by == "line":
                key = case + ": " + text[:100]
            else:
                key = case
            total[key] += dt
            count[key] += 1
    whole = sum(total.values())
    print(f"{whole:8.1f}s in {len(names)} traced cases; by {args.by}:")
    for key, secs in total.most_common(args.top):
        print(f"{secs:8.1f}s {100 * secs / whole:5.1f}% {count[key]:6d}x  {key}")


if __name__ == "__main__":
    main()
