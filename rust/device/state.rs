// SPDX-License-Identifier: GPL-2.0

//! The state machine of a device, and what of it the I/O path sees.
//!
//! The state and the binding change under `config`; [`LoopDevice::publish`]
//! copies what the I/O path and sysfs read into `io`, a spinlock.

use super::{binding::Binding, LoopDevice};
use crate::{blk::Disk, io::LoopOps, uapi::*};
use kernel::{
    fs::File,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::ordering::{Acquire, Relaxed, Release},
    },
};

/// `Lo_unbound`, `Lo_bound`, `Lo_rundown`, `Lo_deleting`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum State {
    /// No backing file.
    Unbound,
    /// Serving a backing file.
    Bound,
    /// Detaching at the last close; opens fail with `ENXIO`.
    Rundown,
    /// Being removed by `LOOP_CTL_REMOVE`.
    Deleting,
}

/// The configuration of a device, under its `config` lock.
pub(super) struct Config {
    pub(super) state: State,
    pub(super) flags: u32,
    pub(super) binding: Option<Binding>,
    /// A refusal of direct I/O was logged for the current binding.
    pub(super) dio_refusal_logged: bool,
}

/// What the I/O path and sysfs need of a bound device. Published under
/// the `io` spinlock; changed only with the queue frozen, or while no I/O
/// can be in flight (binding, final close).
#[derive(Clone)]
pub(crate) struct IoTarget {
    /// The device is `Bound`, not detaching (loop.c's `lo_state` checks).
    pub(crate) bound: bool,
    pub(crate) file: ARef<File>,
    pub(crate) offset: u64,
    pub(crate) sizelimit: u64,
    pub(crate) flags: u32,
    /// Direct I/O may be tried with `IOCB_NOWAIT` from `queue_rq`.
    pub(crate) nowait: bool,
}

impl IoTarget {
    pub(crate) fn direct_io(&self) -> bool {
        self.flags & LO_FLAGS_DIRECT_IO != 0
    }

    pub(crate) fn read_only(&self) -> bool {
        self.flags & LO_FLAGS_READ_ONLY != 0
    }
}

impl LoopDevice {
    /// the bound target allows it. The attempt checks the target again.
    pub(crate) fn nowait(&self) -> bool {
        self.nowait_target.load(Relaxed)
    }

    /// The I/O target, if bound.
    pub(crate) fn io_target(&self) -> Option<IoTarget> {
        self.io.lock().clone()
    }

    /// Whether the device is unbound, for `LOOP_CTL_GET_FREE`. Read without
    /// the config lock, which a bind may hold across slow work: a race
    /// only makes the caller create a new device, as in loop.c.
    pub(crate) fn is_free(&self) -> bool {
        self.published_state.load(Relaxed) == State::Unbound as u32
    }

    /// Whether `queue_rq` takes requests (loop.c: `lo_state == Lo_bound`).
    /// Those it took are served even if the device starts detaching
    /// before the worker gets to them.
    pub(crate) fn accepts_io(&self) -> bool {
        // Pairs with `publish`: a request taken here finds the target.
        self.published_state.load(Acquire) == State::Bound as u32
    }

    /// Marks an unbound device for deletion (`LOOP_CTL_REMOVE`), unless it
    /// is bound or open. `ENODEV` if another removal got there first.
    pub(crate) fn start_deleting(&self, disk: &Disk<LoopOps>) -> Result {
        let mut cfg = self.config.lock();
        if cfg.state == State::Deleting {
            return Err(ENODEV);
        }
        if cfg.state != State::Unbound || disk.openers() > 0 {
            return Err(EBUSY);
        }
        cfg.state = State::Deleting;
        self.publish(&cfg);
        Ok(())
    }

    /// Makes the bound I/O view match the configuration.
    pub(super) fn publish(&self, cfg: &Config) {
        let target = cfg.binding.as_ref().map(|b| IoTarget {
            bound: cfg.state == State::Bound,
            file: b.file.file().clone(),
            offset: b.offset,
            sizelimit: b.sizelimit,
            flags: cfg.flags,
            nowait: self.nowait && cfg.flags & LO_FLAGS_DIRECT_IO != 0 && b.file.can_nowait(),
        });
        let nowait = target.as_ref().is_some_and(|t| t.bound && t.nowait);
        self.nowait_target.store(nowait, Relaxed);
        let old = core::mem::replace(&mut *self.io.lock(), target);
        self.published_state.store(cfg.state as u32, Release);
        // The old file reference is dropped outside the spinlock.
        drop(old);
    }

    // ---- block_device_operations -------------------------------------

    /// `lo_open`.
    pub(crate) fn open(&self) -> Result {
        match self.config.lock().state {
            State::Deleting | State::Rundown => Err(ENXIO),
            _ => Ok(()),
        }
    }

    /// `lo_release`: runs under the disk's `open_mutex`.
    pub(crate) fn release(&self, disk: &Disk<LoopOps>) {
        if disk.openers() > 0 {
            return;
        }
        let need_clear = {
            let mut cfg = self.config.lock();
            if cfg.state == State::Bound && cfg.flags & LO_FLAGS_AUTOCLEAR != 0 {
                cfg.state = State::Rundown;
                self.publish(&cfg);
            }
            cfg.state == State::Rundown
        };
        if need_clear {
            self.clear(disk);
        }
    }

    /// `__loop_clr_fd`: unbinds at the last close, under `open_mutex`.
    fn clear(&self, disk: &Disk<LoopOps>) {
        let binding = {
            let mut cfg = self.config.lock();
            let binding = cfg.binding.take();
            self.publish(&cfg);
            binding
        };
        let Some(mut binding) = binding else {
            return;
        };

        // No opener is left, so no I/O is in flight: no freeze needed.
        if let Err(e) = disk.update_limits(|lim| lim.set_block_size(512)) {
            pr_warn!(
                "loop{}: cannot reset the block size ({:?})\n",
                self.index,
                e
            );
        }
        disk.invalidate();
        binding.sysfs = None;
        disk.uevent_change();
        binding.file.restore_gfp_mask(binding.saved_gfp);
        disk.force_media_change();
        // Removes all partitions, BLKPG-added ones included.
        if let Err(e) = disk.rescan_partitions_in_release() {
            pr_warn!(
                "__loop_clr_fd: partition scan of loop{} failed (rc={})\n",
                self.index,
                e.to_errno()
            );
        }
        // Nothing queued earlier may still hold the old file.
        for worker in self.workers() {
            worker.flush();
        }
        {
            let mut cfg = self.config.lock();
            cfg.flags = 0;
            if self.driver.part_shift == 0 {
                disk.set_partition_scan(false);
            }
            cfg.state = State::Unbound;
            self.publish(&cfg);
        }
        // The file reference and the module reference go last, outside
        // the config lock: fput() may take open_mutex of another disk.
        drop(binding);
    }
}
