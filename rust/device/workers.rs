// SPDX-License-Identifier: GPL-2.0

//! The workers of a device: one per hardware queue, and one per CPU for
//! requests that come alone. Each has a thread only while it has work
//! (see `kthread::DrainWorker`).
//!
//! A request that must block, and is the only one of its CPU in flight,
//! is handed to the worker of the CPU that submitted it: that thread prefers the CPU, so it
//! is woken there, without an IPI, and the submitter, which waits, is
//! woken there too when the I/O ends. A queue's worker runs wherever the
//! scheduler puts it, which suits a batch: on another CPU, it submits
//! while the submitter queues more.

use super::{LoopDevice, LoopOps};
use crate::{
    arrival::{Arrival, CpuHistory},
    blk::{request_list::RequestBatch, Request, RequestList},
    kthread::DrainWorker,
};
use kernel::{
    cpu::CpuId,
    prelude::*,
    sync::{
        atomic::{ordering::Relaxed, Atomic},
        SetOnce,
    },
    task::Pid,
};

/// A hardware queue's requests on their way to its worker: what the
/// worker drains. The I/O path implements the draining (`Drain`).
pub(crate) struct PendingList {
    list: RequestList<LoopOps>,
    /// The queue's NOWAIT attempts under way: submitted from `queue_rq`
    /// and not ended yet, in the backing file or its device.
    nowait_attempts: Atomic<i32>,
    /// The task whose deep requests the worker takes, or [`NO_TASK`] (see
    /// [`Self::wants_worker`]).
    deep_task: Atomic<Pid>,
}

impl PendingList {
    /// A list with nothing pending.
    fn new() -> Self {
        Self {
            list: RequestList::new(),
            nowait_attempts: Atomic::new(0),
            deep_task: Atomic::new(NO_TASK),
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

    /// Whether a read or write that task `task` sent as `arrival` goes to
    /// this queue's worker rather than being tried in the
    /// submitter. A deep submitter gains from the worker, which submits on
    /// another CPU while it sends more; but the worker is one thread, so it
    /// takes the deep requests of one task at a time, until another finds
    /// it caught up. Those of other tasks are tried in their submitters,
    /// as are those of a task that waits for each.
    pub(crate) fn wants_worker(&self, task: Pid, arrival: Arrival) -> bool {
        let holder = self.deep_task.load(Relaxed);
        match arrival {
            Arrival::Alone | Arrival::Probe => {
                if holder == task {
                    self.deep_task.store(NO_TASK, Relaxed);
                }
                arrival == Arrival::Probe
            }
            Arrival::Deep if holder == task => true,
            Arrival::Deep => {
                self.is_empty() && self.deep_task.cmpxchg(holder, task, Relaxed).is_ok()
            }
        }
    }

    /// Adds `rq`. Returns whether the list was empty.
    pub(crate) fn push(&self, rq: Request<LoopOps>) -> bool {
        self.list.push(rq)
    }

    /// Whether nothing is pending. A request the worker has taken may
    /// still be under way.
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

    /// Counts a request that task `task` submitted from `cpu`, until
    /// [`Self::request_ended`], and says how it arrived.
    pub(crate) fn request_started(&self, cpu: CpuId, task: Pid) -> Arrival {
        let Some(slot) = self.cpus.get(cpu.as_u32() as usize) else {
            return Arrival::Deep;
        };
        let overlaps_own = match slot.in_flight.fetch_add(1, Relaxed) {
            0 => {
                slot.first_task.store(task, Relaxed);
                false
            }
            _ => slot.first_task.load(Relaxed) == task,
        };
        // Written by this CPU's submitters, which a move to another CPU
        // may race: a lost update only shortens or lengthens a hint.
        let history = CpuHistory {
            deep_for: slot.deep_for.load(Relaxed),
            alone_since_probe: slot.alone_since_probe.load(Relaxed),
        };
        let (arrival, next) = history.arrive(overlaps_own);
        if next.deep_for != history.deep_for {
            slot.deep_for.store(next.deep_for, Relaxed);
        }
        if next.alone_since_probe != history.alone_since_probe {
            slot.alone_since_probe
                .store(next.alone_since_probe, Relaxed);
        }
        arrival
    }

    /// A request that [`Self::request_started`] counted for `cpu` ends.
    pub(crate) fn request_ended(&self, cpu: CpuId) {
        if let Some(slot) = self.cpus.get(cpu.as_u32() as usize) {
            slot.in_flight.add(-1, Relaxed);
        }
    }

    /// The worker of CPU `cpu`, if made. If not, asks the next worker to
    /// run to make it ([`Self::make_wanted_cpu_worker`]).
    pub(crate) fn cpu_worker(&self, cpu: CpuId) -> Option<&DrainWorker<PendingList>> {
        let slot = self.cpus.get(cpu.as_u32() as usize)?;
        let worker = slot.worker.as_ref();
        if worker.is_none() {
            self.cpu_worker_wanted.store(cpu.as_u32(), Relaxed);
        }
        worker.map(|w| &**w)
    }

    /// Makes the CPU worker that [`Self::cpu_worker`] last found missing,
    /// if any. Sleeps. On failure the CPU's requests keep going to their
    /// queue's worker, and the next request asks again.
    pub(crate) fn make_wanted_cpu_worker(&self) {
        // Read before it is taken: every batch of every worker looks.
        if self.cpu_worker_wanted.load(Relaxed) == NO_CPU {
            return;
        }
        let cpu = self.cpu_worker_wanted.xchg(NO_CPU, Relaxed);
        let Some(slot) = self.cpus.get(cpu as usize) else {
            return;
        };
        if slot.worker.as_ref().is_some() {
            return;
        }
        // The CPU was valid when asked for; so it stays.
        let Some(cpu) = CpuId::from_u32(cpu) else {
            return;
        };
        if let Ok(worker) = new_cpu_worker(self.index, cpu) {
            // Only the worker that took the request makes it; a lost
            // race would only drop the new one.
            slot.worker.populate(worker);
        }
    }

    /// Every worker made so far.
    pub(super) fn workers(&self) -> impl Iterator<Item = &DrainWorker<PendingList>> {
        let more = self.more_workers.iter().filter_map(SetOnce::as_ref);
        let per_cpu = self.cpus.iter().filter_map(|slot| slot.worker.as_ref());
        let queues = Iterator::chain(core::iter::once(&self.first_worker), more);
        Iterator::chain(queues, per_cpu).map(|w| &**w)
    }
}

/// What a device keeps for each possible CPU: a cache line each, as the
/// CPUs count their requests in flight at once.
#[repr(align(64))]
pub(super) struct CpuSlot {
    /// The worker for requests that come alone from the CPU: made when
    /// first wanted, kept until the device goes.
    worker: SetOnce<WorkerBox>,
    /// Requests submitted from the CPU and not ended yet: how a request
    /// knows that it came alone. A hint, read and written relaxed.
    in_flight: Atomic<i32>,
    /// The CPU's [`CpuHistory`]: requests still to come that count as
    /// deep.
    deep_for: Atomic<u32>,
    /// The CPU's [`CpuHistory`]: requests that came alone since the last
    /// probe.
    alone_since_probe: Atomic<u32>,
    /// The task that sent the first of the CPU's requests in flight.
    first_task: Atomic<Pid>,
}

/// [`PendingList::deep_task`]: no task; pid 0 is the idle task's, which
/// submits no I/O.
const NO_TASK: Pid = 0;

/// [`LoopDevice::cpu_worker_wanted`]: no CPU's worker is wanted.
pub(super) const NO_CPU: u32 = u32::MAX;

/// A slot per possible CPU, no worker made yet.
pub(super) fn cpu_slots() -> Result<KVec<CpuSlot>> {
    let nr = kernel::cpu::nr_cpu_ids() as usize;
    let mut slots = KVec::with_capacity(nr, GFP_KERNEL)?;
    for _ in 0..nr {
        let slot = CpuSlot {
            worker: SetOnce::new(),
            in_flight: Atomic::new(0),
            deep_for: Atomic::new(0),
            alone_since_probe: Atomic::new(0),
            first_task: Atomic::new(0),
        };
        slots.push(slot, GFP_KERNEL)?;
    }
    Ok(slots)
}

/// The worker of CPU `cpu` for device `index`; its thread prefers `cpu`.
fn new_cpu_worker(index: u32, cpu: CpuId) -> Result<WorkerBox> {
    let name = kernel::str::CString::try_from_fmt(fmt!("loop{index}/{}", cpu.as_u32()))?;
    KBox::try_pin_init(
        DrainWorker::new(name, Some(cpu), PendingList::new()),
        GFP_KERNEL,
    )
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
