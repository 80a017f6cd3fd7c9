// SPDX-License-Identifier: GPL-2.0

//! The state machine of a device, and what of it the I/O path sees.
//!
//! The state is stored once, in [`LoopDevice::state`]: an atomic, so that
//! `queue_rq`, `LOOP_CTL_GET_FREE` and the loop-on-loop check read it
//! without the config lock (loop.c reads `lo_state` with `READ_ONCE()`
//! there), and changed only under `config`, so that who holds that lock
//! sees it stable. The binding changes under `config` too;
//! [`LoopDevice::publish`] copies what the I/O path and sysfs read of it
//! into `io`, a spinlock, before a change of state makes it visible.

use super::{binding::Binding, LoopDevice, LoopOps};
use crate::{
    blk::{Disk, Op, OpenLockedDisk},
    file_io::BackingFile,
    mutex::KillableMutexGuard,
    uapi::*,
};
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

impl State {
    /// The state stored as `value` by [`LoopDevice::set_state`].
    fn from_u32(value: u32) -> Self {
        match value {
            0 => Self::Unbound,
            1 => Self::Bound,
            2 => Self::Rundown,
            _ => Self::Deleting,
        }
    }
}

/// The configuration of a device, under its `config` lock. Its state is
/// [`LoopDevice::state`], which changes only with this held.
pub(super) struct Config {
    pub(super) flags: LoFlags,
    pub(super) binding: Option<Binding>,
    /// A refusal of direct I/O was logged for the current binding.
    pub(super) dio_refusal_logged: bool,
}

/// What the I/O path and sysfs need of a bound device. Published under
/// the `io` spinlock; changed only with the queue frozen, or while no I/O
/// can be in flight (binding, final close).
#[derive(Clone)]
pub(crate) struct IoTarget {
    pub(crate) file: ARef<File>,
    pub(crate) offset: u64,
    pub(crate) sizelimit: u64,
    pub(crate) flags: LoFlags,
    /// Reads and writes that `queue_rq` may try itself, with
    /// `IOCB_NOWAIT`.
    pub(crate) nowait: NowaitOps,
}

/// The operations of a target that may be tried with `IOCB_NOWAIT`: those
/// its backing file serves without blocking, in the target's mode.
#[derive(Clone, Copy, Default)]
pub(crate) struct NowaitOps {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

impl NowaitOps {
    /// What the fast path may try on `file` with the device's `flags`.
    fn of(file: &BackingFile, flags: LoFlags) -> Self {
        let (read, write) = match flags.contains(LoFlags::DIRECT_IO) {
            true => (file.can_nowait(), file.can_nowait()),
            false => (
                file.can_nowait_buffered(false),
                file.can_nowait_buffered(true),
            ),
        };
        Self {
            read,
            write: write && !flags.contains(LoFlags::READ_ONLY),
        }
    }

    /// Whether `op` may be tried.
    pub(crate) fn allows(self, op: Op) -> bool {
        match op {
            Op::Read => self.read,
            Op::Write => self.write,
            _ => false,
        }
    }
}

impl IoTarget {
    pub(crate) fn direct_io(&self) -> bool {
        self.flags.contains(LoFlags::DIRECT_IO)
    }

    pub(crate) fn read_only(&self) -> bool {
        self.flags.contains(LoFlags::READ_ONLY)
    }
}

impl LoopDevice {
    /// The device's state. Stable while `config` is held.
    pub(super) fn state(&self) -> State {
        // Pairs with `set_state`: a state read here comes with the target
        // published before it.
        State::from_u32(self.state.load(Acquire))
    }

    /// Moves the device to `state`; `cfg`, the guard of this device's
    /// `config`, proves its lock is held. After [`Self::publish`] for a
    /// move to `Bound`, so that a request taken then finds its target.
    pub(super) fn set_state(&self, cfg: &mut KillableMutexGuard<'_, Config>, state: State) {
        debug_assert!(core::ptr::eq(cfg.mutex(), &self.config));
        self.state.store(state as u32, Release);
    }

    /// The configuration's binding if the device is `Bound`, else `ENXIO`
    /// (loop.c's `lo_state != Lo_bound` checks under `lo_mutex`).
    pub(super) fn bound<'a>(&self, cfg: &'a Config) -> Result<&'a Binding> {
        match &cfg.binding {
            Some(b) if self.state() == State::Bound => Ok(b),
            _ => Err(ENXIO),
        }
    }

    /// The I/O target, if the device is `Bound`: for the loop-on-loop
    /// check and the NOWAIT path, which take no config lock.
    pub(crate) fn bound_target(&self) -> Option<IoTarget> {
        match self.state() {
            State::Bound => self.io_target(),
            _ => None,
        }
    }

    /// Whether `queue_rq` may try `op` itself, with `IOCB_NOWAIT`: the
    /// bound target allows it. The attempt checks the target again.
    pub(crate) fn nowait_allows(&self, op: Op) -> bool {
        let ops = NowaitOps {
            read: self.nowait_reads.load(Relaxed),
            write: self.nowait_writes.load(Relaxed),
        };
        ops.allows(op)
    }

    /// The I/O target, if bound.
    pub(crate) fn io_target(&self) -> Option<IoTarget> {
        self.io.lock().clone()
    }

    /// Whether the device is unbound, for `LOOP_CTL_GET_FREE`. Read without
    /// the config lock, which a bind may hold across slow work: a race
    /// only makes the caller create a new device, as in loop.c.
    pub(crate) fn is_free(&self) -> bool {
        self.state() == State::Unbound
    }

    /// Whether `queue_rq` takes requests (loop.c: `lo_state == Lo_bound`).
    /// Those it took are served even if the device starts detaching
    /// before the worker gets to them.
    pub(crate) fn accepts_io(&self) -> bool {
        self.state() == State::Bound
    }

    /// Marks an unbound device for deletion (`LOOP_CTL_REMOVE`), unless it
    /// is bound or open. `ENODEV` if another removal got there first;
    /// `EINTR` if killed while waiting for the device.
    pub(crate) fn start_deleting(&self, disk: &Disk<LoopOps>) -> Result {
        let mut cfg = self.config.lock_killable()?;
        let state = self.state();
        if state == State::Deleting {
            return Err(ENODEV);
        }
        if state != State::Unbound || disk.openers() > 0 {
            return Err(EBUSY);
        }
        self.set_state(&mut cfg, State::Deleting);
        Ok(())
    }

    /// Makes the I/O view match the configuration: the target in `io`,
    /// and its lock-free copy of `nowait`.
    pub(super) fn publish(&self, cfg: &Config) {
        let target = cfg.binding.as_ref().map(|b| IoTarget {
            file: b.file.file().clone(),
            offset: b.offset,
            sizelimit: b.sizelimit,
            flags: cfg.flags,
            nowait: match self.nowait {
                true => NowaitOps::of(&b.file, cfg.flags),
                false => NowaitOps::default(),
            },
        });
        let nowait = target.as_ref().map(|t| t.nowait).unwrap_or_default();
        self.nowait_reads.store(nowait.read, Relaxed);
        self.nowait_writes.store(nowait.write, Relaxed);
        let old = core::mem::replace(&mut *self.io.lock(), target);
        // The old file reference is dropped outside the spinlock.
        drop(old);
    }

    // ---- block_device_operations -------------------------------------

    /// `lo_open`: killable while it waits for the device, as in loop.c.
    pub(crate) fn open(&self) -> Result {
        let _cfg = self.config.lock_killable()?;
        match self.state() {
            State::Deleting | State::Rundown => Err(ENXIO),
            _ => Ok(()),
        }
    }

    /// `lo_release`: runs under the disk's `open_mutex`.
    pub(crate) fn release(&self, disk: &OpenLockedDisk<'_, LoopOps>) {
        if disk.openers() > 0 {
            return;
        }
        let need_clear = {
            let mut cfg = self.config.lock();
            if self.state() == State::Bound && cfg.flags.contains(LoFlags::AUTOCLEAR) {
                self.set_state(&mut cfg, State::Rundown);
            }
            self.state() == State::Rundown
        };
        if need_clear {
            self.clear(disk);
        }
    }

    /// `__loop_clr_fd`: unbinds at the last close, under `open_mutex`.
    fn clear(&self, disk: &OpenLockedDisk<'_, LoopOps>) {
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
        if let Err(e) = disk.rescan_partitions_locked() {
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
            cfg.flags = LoFlags::empty();
            if self.part_shift == 0 {
                disk.set_partition_scan(false);
            }
            self.publish(&cfg);
            self.set_state(&mut cfg, State::Unbound);
        }
        // The file reference and the module reference go last, outside
        // the config lock: fput() may take open_mutex of another disk.
        drop(binding);
    }
}
