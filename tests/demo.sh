#!/usr/bin/env bash
# What rloop does at this stage, shown in the test VM: load, log, unload.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; eval "$@"; }

echo "rloop demo: kernel $(uname -r), $(nproc) CPUs"
step "modinfo $ROOT/rloop.ko | grep -E '^(name|description|license|author|vermagic|parm):'"
step "insmod $ROOT/rloop.ko"
step "grep rloop /proc/modules"
step "dmesg | grep 'rloop:'"
step "rmmod rloop"
step "dmesg | grep 'rloop:' | tail -n1"
echo
echo "The module loads and unloads cleanly. It serves no I/O yet."
