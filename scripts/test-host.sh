#!/usr/bin/env bash
# Host-side tests of rloop's kernel-free Rust files (tests/host).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RLOOP_STEP=test-host
command -v cargo >/dev/null || die "cargo not found" "install a Rust toolchain with cargo"
export CARGO_TARGET_DIR=$RLOOP_CACHE/host-target
progress "cargo test (tests/host)"
cargo test --quiet --offline --manifest-path "$RLOOP_ROOT/tests/host/Cargo.toml"
