// SPDX-License-Identifier: GPL-2.0

//! The capacity of a loop device: loop.c's `get_size()`.
//!
//! Kernel-free: besides `core` it uses only `crate::kernel_defs`, for
//! which host `cargo test` (tests/host) has a stand-in; both compile this
//! file unchanged.

use crate::kernel_defs::SECTOR_SHIFT;

/// Capacity, in 512-byte sectors, of a loop device over a file of
/// `file_size` bytes, starting `offset` bytes into it and limited to
/// `sizelimit` bytes unless that is 0. Matches loop.c's `get_size()`: an
/// offset past the end gives an empty device, and a partial trailing sector
/// is dropped.
pub(crate) fn capacity_sectors(file_size: u64, offset: u64, sizelimit: u64) -> u64 {
    let mut bytes = file_size.saturating_sub(offset);
    if sizelimit > 0 && sizelimit < bytes {
        bytes = sizelimit;
    }
    bytes >> SECTOR_SHIFT
}
