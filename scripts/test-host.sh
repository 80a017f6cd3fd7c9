#!/usr/bin/env bash
# Host-side tests of rloop's kernel-free Rust files (tests/host).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=test-host
command -v cargo >/dev/null || die "cargo not found" "install a Rust toolchain with cargo"
# One target directory per checkout: cargo decides what to rebuild by
# mtime, and the same crate built from another worktree, later, would pass
# for up to date and run that worktree's tests.
checkout=$(printf '%s' "$RLOOP_ROOT" | sha256sum | cut -c1-12)
export CARGO_TARGET_DIR=$RLOOP_CACHE/host-target/$checkout
progress "cargo test (tests/host)"
cargo test --quiet --offline --manifest-path "$RLOOP_ROOT/tests/host/Cargo.toml"
