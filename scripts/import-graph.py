#!/usr/bin/env python3
"""Print which top-level modules of rust/ each module uses (crate:: paths).

Usage: import-graph.py [--check] [RUST_DIR]. A module is a file of rust/ or
a folder (rust/device/*.rs count as "device"). `use crate::{a, b::{..}}`
blocks and inline `crate::a::...` paths both count; comments do not.

--check (make lint): fail if the layering below is broken. The abstraction
files know nothing of the driver logic, the block layer nothing of files,
and the device nothing of the control device or of the I/O path.
"""
import os
import re
import sys


DRIVER = {'rloop', 'control', 'device', 'io'}
ABSTRACTIONS = {'blk', 'cgroup', 'delayed_work', 'file_io', 'kiocb', 'kthread', 'memalloc', 'misc',
                'module_ref', 'module_param', 'mutex', 'capability', 'submitter', 'cpu_nesting',
                'helpers_ffi'}
# module: the modules it must not use.
FORBIDDEN = {name: DRIVER for name in ABSTRACTIONS}
FORBIDDEN['blk'] = DRIVER | {'file_io', 'kiocb'}
FORBIDDEN['device'] = {'control', 'io', 'rloop'}


def uses(text):
    text = re.sub(r'//.*', '', text)
    found = set()
    for m in re.finditer(r'\bcrate::(\{|\w+)', text):
        if m.group(1) != '{':
            found.add(m.group(1))
            continue
        depth, i = 0, m.end() - 1
        start = i
        while i < len(text):
            if text[i] == '{':
                depth += 1
            elif text[i] == '}':
                depth -= 1
                if depth == 0:
                    break
            i += 1
        block = text[start:i + 1]
        # First identifier of each comma-separated item at depth 1.
        depth, item = 0, ''
        for ch in block[1:-1] + ',':
            if ch == '{':
                depth += 1
            elif ch == '}':
                depth -= 1
            if depth == 0 and ch == ',':
                name = re.match(r'\s*(\w+)', item)
                if name:
                    found.add(name.group(1))
                item = ''
            else:
                item += ch
    return found


def main():
    args = sys.argv[1:]
    check = bool(args) and args[0] == '--check'
    if check:
        args = args[1:]
    root = args[0] if args else 'rust'
    graph = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith('.rs'):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            module = rel.split(os.sep)[0].removesuffix('.rs')
            with open(path) as fh:
                graph.setdefault(module, set()).update(uses(fh.read()))
    broken = []
    for module in sorted(graph):
        deps = sorted(d for d in graph[module] if d != module and d != 'THIS_MODULE'
                      and d != 'LocalModule')
        bad = [d for d in deps if d in FORBIDDEN.get(module, ())]
        broken += [f"{module} uses {d}" for d in bad]
        if not check:
            print(f"{module} -> {' '.join(deps)}")
    if broken:
        print('layering broken: ' + ', '.join(broken) + ' (see scripts/import-graph.py)')
        sys.exit(1)


main()
