// SPDX-License-Identifier: GPL-2.0

//! Queue limits, read and updated at run time.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

use super::{disk::Disk, gen_disk::DiskOperations};
use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    sync::{Mutex, MutexGuard},
};

/// Queue limits (`struct queue_limits`) being built or updated.
#[repr(transparent)]
pub(crate) struct Limits(pub(super) bindings::queue_limits);

/// A queue feature (`BLK_FEAT_*`) that [`Limits::set_feature`] turns on or
/// off.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Feature {
    /// `BLK_FEAT_WRITE_CACHE`: the device has a volatile write cache.
    WriteCache,
    /// `BLK_FEAT_ROTATIONAL`: the device is rotational.
    Rotational,
}

impl Feature {
    /// The feature's bit, mirrored from `include/linux/blkdev.h` and
    /// checked against it at build time in `helpers.c`.
    fn bit(self) -> u32 {
        match self {
            Self::WriteCache => 1 << 0,
            Self::Rotational => 1 << 2,
        }
    }
}

impl Limits {
    /// Sets the logical and physical block size and minimum I/O size.
    pub(crate) fn set_block_size(&mut self, size: u32) {
        self.0.logical_block_size = size;
        self.0.physical_block_size = size;
        self.0.io_min = size;
    }

    /// Turns `feature` on or off.
    pub(crate) fn set_feature(&mut self, feature: Feature, on: bool) {
        if on {
            self.0.features |= feature.bit();
        } else {
            self.0.features &= !feature.bit();
        }
    }

    /// Sets the discard and write-zeroes limits.
    pub(crate) fn set_discard(&mut self, max_sectors: u32, granularity: u32) {
        self.0.max_hw_discard_sectors = max_sectors;
        self.0.max_write_zeroes_sectors = max_sectors;
        self.0.discard_granularity = if max_sectors != 0 { granularity } else { 0 };
    }

    /// Turns off write zeroes.
    pub(crate) fn clear_write_zeroes(&mut self) {
        self.0.max_write_zeroes_sectors = 0;
    }

    /// Turns off discard.
    pub(crate) fn clear_discard(&mut self) {
        self.0.max_hw_discard_sectors = 0;
        self.0.discard_granularity = 0;
    }

    /// Sets the largest request size in sectors.
    pub(crate) fn set_max_hw_sectors(&mut self, sectors: u32) {
        self.0.max_hw_sectors = sectors;
    }
}

impl<T: DiskOperations> Disk<T> {
    /// The logical block size of the queue.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: The queue is valid (`Disk` invariant: live); limits are
        // read without the lock, like `queue_logical_block_size()`.
        unsafe { (*self.queue()).limits.logical_block_size }
    }

    /// The discard limit in sectors (`bdev_max_discard_sectors()`).
    pub(crate) fn max_discard_sectors(&self) -> u32 {
        // SAFETY: As in `logical_block_size`.
        unsafe { (*self.queue()).limits.max_discard_sectors }
    }

    /// The queue's `limits_lock`.
    fn limits_lock(&self) -> &Mutex<()> {
        // SAFETY: `limits_lock` is initialised with the queue and valid
        // while it is (`Disk` invariant: live).
        unsafe { Mutex::from_raw(&raw mut (*self.queue()).limits_lock) }
    }

    /// Starts a limits update under `guard`, a guard of `limits_lock`.
    fn limits_update<'a>(&'a self, guard: MutexGuard<'a, ()>) -> LimitsUpdate<'a> {
        // SAFETY: The queue is valid (`Disk` invariant: live); `guard`
        // holds `limits_lock`, which guards `limits`.
        let lim = Limits(unsafe { (*self.queue()).limits });
        // INVARIANT: `guard` holds the queue's `limits_lock`.
        LimitsUpdate {
            queue: self.queue(),
            lim,
            guard,
        }
    }

    /// Updates the queue limits (`queue_limits_start_update()` and
    /// `queue_limits_commit_update()`). Freeze the queue around it when I/O
    /// may be in flight.
    pub(crate) fn update_limits(&self, f: impl FnOnce(&mut Limits)) -> Result {
        let mut update = self.limits_update(self.limits_lock().lock());
        f(&mut update.lim);
        update.commit()
    }

    /// Updates the queue limits if `limits_lock` is free, without waiting:
    /// for the I/O path, which must not wait for a limits update that itself
    /// waits for the I/O to drain. Returns whether it updated them.
    pub(crate) fn try_update_limits(&self, f: impl FnOnce(&mut Limits)) -> bool {
        let Some(guard) = self.limits_lock().try_lock() else {
            return false;
        };
        let mut update = self.limits_update(guard);
        f(&mut update.lim);
        update.commit().is_ok()
    }

    /// Updates the queue limits with the queue frozen, in the block layer's
    /// lock order (`limits_lock`, then the freeze), and runs `frozen` after
    /// a successful update, before the queue is unfrozen.
    pub(crate) fn update_limits_frozen(
        &self,
        f: impl FnOnce(&mut Limits),
        frozen: impl FnOnce(),
    ) -> Result {
        let mut update = self.limits_update(self.limits_lock().lock());
        f(&mut update.lim);
        let _freeze = self.freeze();
        update.commit()?;
        frozen();
        Ok(())
    }
}

/// A queue limits update under way (`queue_limits_start_update()`): the
/// queue's `limits_lock` and a copy of its limits to change. Dropped
/// without [`LimitsUpdate::commit`], it is cancelled and the lock released.
///
/// # Invariants
///
/// `guard` holds the `limits_lock` of `queue`, a valid queue.
struct LimitsUpdate<'a> {
    queue: *mut bindings::request_queue,
    lim: Limits,
    guard: MutexGuard<'a, ()>,
}

impl LimitsUpdate<'_> {
    /// Applies the new limits (`queue_limits_commit_update()`), which
    /// releases `limits_lock` whatever the outcome.
    fn commit(self) -> Result {
        let Self {
            queue,
            mut lim,
            guard,
        } = self;
        // SAFETY: By the type invariant, `queue` is valid and `guard` holds
        // its `limits_lock`, which the call releases.
        let ret = unsafe { bindings::queue_limits_commit_update(queue, &mut lim.0) };
        // Released above: the guard must not unlock it again.
        core::mem::forget(guard);
        to_result(ret)
    }
}
