// SPDX-License-Identifier: GPL-2.0

//! A loop device: its state machine, its configuration and its ioctls.
//!
//! Driver logic: no `unsafe` here. The device moves through loop.c's four
//! states:
//!
//! ```text
//!   Unbound --LOOP_CONFIGURE/SET_FD--> Bound --last close, AUTOCLEAR--> Rundown
//!      ^                                                                   |
//!      +--------------------------- teardown in release() <----------------+
//!   Unbound --LOOP_CTL_REMOVE--> Deleting
//! ```
//!
//! Locking, outermost first: the set's validate lock (loop-on-loop
//! chains), the disk's `open_mutex` (held by the block layer around
//! `release`), `config` (loop.c's `lo_mutex`), then `io` (loop.c's
//! `lo_lock`), a spinlock that the I/O path and sysfs read.
//!
//! One file per concern: [`state`] (the state machine, what the I/O path
//! sees, teardown), [`bind`] (`LOOP_CONFIGURE`, `LOOP_CHANGE_FD` and the
//! loop-on-loop check), [`binding`] (what a bound device holds), [`ioctl`]
//! (the other ioctls and user copies), [`sysfs`], [`workers`] and [`ops`]
//! (the block layer's entry points).
//!
//! A device knows nothing of the control device that creates it: what it
//! needs of the set of devices comes through [`DeviceSet`] and
//! [`DeviceParams`].

mod bind;
mod binding;
mod ioctl;
mod ops;
mod state;
mod sysfs;
mod workers;

pub(crate) use ops::LoopOps;
pub(crate) use state::IoTarget;
pub(crate) use sysfs::ATTRS;
pub(crate) use workers::PendingList;

use crate::{
    blk::AttributeGroup,
    hw_queues,
    mutex::{new_killable_mutex, KillableMutex},
    uapi::LoFlags,
};
use kernel::{
    new_spinlock,
    prelude::*,
    sync::{atomic::Atomic, Arc, SetOnce, SpinLock},
};
use state::{Config, State};
use workers::{cpu_slots, new_worker, start_workers, CpuSlot, WorkerBox, NO_CPU};

/// What a device needs of the set of devices it belongs to.
pub(crate) trait DeviceSet: Send + Sync {
    /// loop.c's `loop_validate_mutex`: held while a loop-on-loop chain is
    /// checked and while a device is marked for detach.
    fn validate_lock(&self) -> &KillableMutex<()>;

    /// The device that loop device number `dev` (a `dev_t` of the loop
    /// major, partitions included) belongs to, if it exists.
    fn find_by_number(&self, dev: u32) -> Option<Arc<LoopDevice>>;
}

/// The driver-wide settings a new device is made with.
pub(crate) struct DeviceParams {
    /// Hardware queues, and so workers, to start with.
    pub(crate) nr_hw_queues: u32,
    /// `nowait=1`: reads and writes may be tried from `queue_rq` first.
    pub(crate) nowait: bool,
    /// Minor bits of each device for its partitions (from `max_part`).
    pub(crate) part_shift: u32,
    /// The `loop/` sysfs group, registered while the device is bound.
    pub(crate) attrs: Arc<AttributeGroup<LoopOps>>,
}

/// One `/dev/loopN`.
#[pin_data]
pub(crate) struct LoopDevice {
    pub(crate) index: u32,
    #[pin]
    config: KillableMutex<Config>,
    #[pin]
    io: SpinLock<Option<IoTarget>>,
    /// The worker of hardware queue 0, loop.c's only one.
    first_worker: WorkerBox,
    /// The workers of queues 1 and up, each made when the device first
    /// has that queue and kept until the device goes. A worker has a
    /// thread only while its queue has work, so one whose queue is gone
    /// costs no thread.
    more_workers: KVec<SetOnce<WorkerBox>>,
    /// Per possible CPU, its requests in flight and the worker for those
    /// that come alone (see [`workers`]).
    cpus: KVec<CpuSlot>,
    /// The CPU whose worker was last found missing, or [`NO_CPU`].
    cpu_worker_wanted: Atomic<u32>,
    /// The NOWAIT fast path is enabled (`nowait=1` when created).
    nowait: bool,
    /// `nowait.read` and `nowait.write` of the target in `io`: copies,
    /// read without the `io` lock, so that `queue_rq` takes the target
    /// only for an attempt it allows. The attempt checks the target again.
    nowait_reads: Atomic<bool>,
    nowait_writes: Atomic<bool>,
    /// The [`State`], the one copy of it: changed only under `config`
    /// ([`Self::set_state`]), read without it where loop.c reads
    /// `lo_state` with `READ_ONCE()`: by `queue_rq`, `LOOP_CTL_GET_FREE`
    /// and the loop-on-loop check.
    state: Atomic<u32>,
    /// Minor bits for partitions: partitions are scanned if not 0.
    part_shift: u32,
    /// The `loop/` sysfs group.
    attrs: Arc<AttributeGroup<LoopOps>>,
    /// The set this device belongs to.
    set: Arc<dyn DeviceSet>,
}

impl LoopDevice {
    /// A new, unbound device `index` of `set`, with a worker for each of
    /// its hardware queues. No thread is started: a worker starts its own
    /// on first use.
    pub(crate) fn new(
        index: u32,
        params: DeviceParams,
        set: Arc<dyn DeviceSet>,
    ) -> Result<Arc<Self>> {
        let DeviceParams {
            nr_hw_queues,
            nowait,
            part_shift,
            attrs,
        } = params;
        let first_worker = new_worker(index, 0)?;
        // Room for as many queues as the sysfs attribute may ask for.
        let max = hw_queues::hw_queue_count(0, kernel::cpu::nr_cpu_ids()).unwrap_or(1);
        let mut more_workers = KVec::with_capacity(max as usize - 1, GFP_KERNEL)?;
        for _ in 1..max {
            more_workers.push(SetOnce::new(), GFP_KERNEL)?;
        }
        start_workers(index, &more_workers, nr_hw_queues)?;
        let cpus = cpu_slots()?;
        Arc::pin_init(
            try_pin_init!(Self {
                index,
                config <- new_killable_mutex!(Config {
                    flags: LoFlags::empty(),
                    binding: None,
                    dio_refusal_logged: false,
                }),
                io <- new_spinlock!(None),
                first_worker,
                more_workers,
                cpus,
                cpu_worker_wanted: Atomic::new(NO_CPU),
                nowait,
                nowait_reads: Atomic::new(false),
                nowait_writes: Atomic::new(false),
                state: Atomic::new(State::Unbound as u32),
                part_shift,
                attrs,
                set,
            }),
            GFP_KERNEL,
        )
    }
}
