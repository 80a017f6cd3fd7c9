// SPDX-License-Identifier: GPL-2.0

//! The workers of a device, one per hardware queue. Each has a thread
//! only while its queue has work (see `kthread::DrainWorker`).

use super::{LoopDevice, LoopOps};
use crate::{
    blk::{request_list::RequestBatch, Request, RequestList},
    kthread::DrainWorker,
};
use kernel::{
    prelude::*,
    sync::{
        atomic::{ordering::Relaxed, Atomic},
        SetOnce,
    },
};

/// A hardware queue's requests on their way to its worker: what the
/// worker drains. The I/O path implements the draining (`Drain`).
pub(crate) struct PendingList {
    list: RequestList<LoopOps>,
    /// The queue's NOWAIT attempts under way: submitted from `queue_rq`
    /// and not ended yet, in the backing file or its device.
    nowait_attempts: Atomic<i32>,
}

impl PendingList {
    /// A list with nothing pending.
    fn new() -> Self {
        Self {
            list: RequestList::new(),
            nowait_attempts: Atomic::new(0),
        }
    }

    /// A NOWAIT attempt of this queue starts.
    pub(crate) fn nowait_attempt_started(&self) {
        self.nowait_attempts.add(1, Relaxed);
    }

    /// A NOWAIT attempt of this queue ended, or was not made after all.
    pub(crate) fn nowait_attempt_ended(&self) {
        self.nowait_attempts.add(-1, Relaxed);
    }

    /// How many NOWAIT attempts of this queue are under way. A hint: it
    /// may change at once.
    pub(crate) fn nowait_attempts(&self) -> i32 {
        self.nowait_attempts.load(Relaxed)
    }

    /// Adds `rq`. Returns whether the list was empty.
    pub(crate) fn push(&self, rq: Request<LoopOps>) -> bool {
        self.list.push(rq)
    }

    /// Whether nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The requests queued so far, oldest first.
    pub(crate) fn take_all(&self) -> RequestBatch<LoopOps> {
        self.list.take_all()
    }
}

/// A hardware queue's worker, which must not move.
pub(super) type WorkerBox = Pin<KBox<DrainWorker<PendingList>>>;

impl LoopDevice {
    /// The worker of hardware queue `hw_queue`.
    pub(crate) fn worker(&self, hw_queue: u32) -> &DrainWorker<PendingList> {
        // Every queue's worker is started before blk-mq has the queue; the
        // fallback keeps that an assumption, not a bug.
        match hw_queue
            .checked_sub(1)
            .and_then(|i| self.more_workers.get(i as usize))
            .and_then(SetOnce::as_ref)
        {
            Some(worker) => worker,
            None => &self.first_worker,
        }
    }

    /// Every worker started so far.
    pub(super) fn workers(&self) -> impl Iterator<Item = &DrainWorker<PendingList>> {
        let more = self.more_workers.iter().filter_map(SetOnce::as_ref);
        Iterator::chain(core::iter::once(&self.first_worker), more).map(|w| &**w)
    }
}

/// A worker for hardware queue `queue` of device `index`.
pub(super) fn new_worker(index: u32, queue: u32) -> Result<WorkerBox> {
    // The first keeps loop.c's name, which tools may look for.
    let name = match queue {
        0 => kernel::str::CString::try_from_fmt(fmt!("loop{index}"))?,
        _ => kernel::str::CString::try_from_fmt(fmt!("loop{index}.{queue}"))?,
    };
    KBox::try_pin_init(DrainWorker::new(name, None, PendingList::new()), GFP_KERNEL)
}

/// Starts the workers that the first `nr` hardware queues of device
/// `index` lack. `more` holds the workers of queues 1 and up.
pub(super) fn start_workers(index: u32, more: &[SetOnce<WorkerBox>], nr: u32) -> Result {
    for (queue, slot) in (1..nr).zip(more) {
        if slot.as_ref().is_none() {
            // A concurrent writer may fill the slot first; its worker
            // serves the queue, and this one stops again.
            slot.populate(new_worker(index, queue)?);
        }
    }
    Ok(())
}
