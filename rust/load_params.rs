// SPDX-License-Identifier: GPL-2.0

//! `loop_init()`'s checks of the `max_loop`, `max_part` and
//! `hw_queue_depth` module parameters.
//!
//! loop.c takes each as a C `int`, so a value outside one fails the load
//! with `ERANGE` (`kstrtoint()`), and it tells a `max_loop` given from its
//! default. rloop's parameters are `i64`, with a default no `int` can be,
//! so that both answers are the same as loop.c's.
//!
//! Kernel-free: it uses only `core`, so host `cargo test` (tests/host)
//! compiles this file unchanged.

/// `max_loop` when not given: `CONFIG_BLK_DEV_LOOP_MIN_COUNT`'s default
/// devices, and no limit on devices made by opening a missing node.
pub(crate) const MAX_LOOP_NOT_GIVEN: i64 = i64::MIN;

/// `CONFIG_BLK_DEV_LOOP_MIN_COUNT`'s default.
const DEFAULT_MAX_LOOP: u32 = 8;

/// `DISK_MAX_PARTS`.
const DISK_MAX_PARTS: u32 = 256;

/// `MINORBITS`.
const MINORBITS: u32 = 20;

/// Why the parameters refuse the load.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ParamError {
    /// `EINVAL`: a value loop.c refuses.
    Invalid,
    /// `ERANGE`: not a C `int`.
    OutOfRange,
}

/// The parameters as the driver uses them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct LoadParams {
    /// Minor numbers per device are `1 << part_shift`.
    pub(crate) part_shift: u32,
    /// Devices created at load.
    pub(crate) max_loop: u32,
    /// With `max_loop` given: opening a missing node creates no device of
    /// this index or above, unless it is 0 (`loop_probe()`).
    pub(crate) autoload_limit: Option<u32>,
    /// Tags per hardware queue.
    pub(crate) queue_depth: u32,
}

/// A parameter's value as loop.c's `int`.
fn c_int(value: i64) -> Result<i32, ParamError> {
    i32::try_from(value).map_err(|_| ParamError::OutOfRange)
}

/// Checks the parameters as the parameters' `set` callbacks, then
/// `loop_init()`, do.
pub(crate) fn check(
    max_loop: i64,
    max_part: i64,
    hw_queue_depth: i64,
) -> Result<LoadParams, ParamError> {
    let max_loop = match max_loop {
        MAX_LOOP_NOT_GIVEN => None,
        given => Some(c_int(given)?),
    };
    let max_part = c_int(max_part)?;
    // `loop_set_hw_queue_depth()`.
    let queue_depth = u32::try_from(c_int(hw_queue_depth)?)
        .ok()
        .filter(|&depth| depth >= 1)
        .ok_or(ParamError::Invalid)?;
    let part_shift = match u32::try_from(max_part) {
        Ok(parts) if parts > 0 => u32::BITS - parts.leading_zeros(),
        _ => 0,
    };
    if 1u64 << part_shift > u64::from(DISK_MAX_PARTS) {
        return Err(ParamError::Invalid);
    }
    let autoload_limit = match max_loop {
        None => None,
        // Compared as an `unsigned long`: a negative count is too large.
        Some(count) => Some(
            u32::try_from(count)
                .ok()
                .filter(|&count| u64::from(count) <= 1u64 << (MINORBITS - part_shift))
                .ok_or(ParamError::Invalid)?,
        ),
    };
    Ok(LoadParams {
        part_shift,
        max_loop: autoload_limit.unwrap_or(DEFAULT_MAX_LOOP),
        autoload_limit,
        queue_depth,
    })
}
