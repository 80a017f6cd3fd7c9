// SPDX-License-Identifier: GPL-2.0

//! How many hardware queues, and so worker threads, a device has.
//!
//! Kernel-free: it uses only `core`, so host `cargo test` (tests/host)
//! compiles this file unchanged.

/// The most hardware queues, and so workers, of one device.
pub(crate) const MAX_HW_QUEUES: u32 = 16;

/// The hardware queues a device gets when `requested` are asked for, by
/// the `nr_hw_queues` module parameter or the device's sysfs attribute, on
/// a machine of `nr_cpus` CPU ids: `0` means one per CPU. blk-mq gives no
/// more queues than CPUs, so neither does this. `None` if `requested` is
/// above [`MAX_HW_QUEUES`].
pub(crate) fn hw_queue_count(requested: u32, nr_cpus: u32) -> Option<u32> {
    let wanted = match requested {
        0 => MAX_HW_QUEUES,
        n if n <= MAX_HW_QUEUES => n,
        _ => return None,
    };
    Some(wanted.min(nr_cpus).max(1))
}
