// SPDX-License-Identifier: GPL-2.0

//! The I/O path: blk-mq operations, the per-device worker, and completion.
//!
//! It reads the device ([`crate::device`]): whether it takes I/O, its
//! target and its workers; the device knows nothing of it.
//!
//! Driver logic: no `unsafe` here.
//!
//! ```text
//!  queue_rq ──► hw queue's list ══ is_last / commit_rqs: kick ══► worker (kthread "loopN")
//!     │                                                             │ drains the list, plugged
//!     │               ┌─────────────────────────────────────────────┘
//!     │               ├─► read/write: kiocb ─► ->read_iter/->write_iter
//!     │               │      direct: -EIOCBQUEUED, later ki_complete; buffered: the result
//!     │               └─► flush/discard/zeroes: vfs calls
//!     │                                   ▼
//!     │        result in the PDU ──► complete(), where the I/O ended: end, or hand on
//!     │                                   ▲
//!     └─ `nowait=1` (default): read/write with IOCB_NOWAIT (-EAGAIN: to the list),
//!        unless its submitter keeps a queue: then to the list too
//! ```
//!
//! Requests reach the worker in batches: `queue_rq` only adds to a
//! lock-free list, and blk-mq's `is_last`/`commit_rqs` say when to wake
//! the worker, which then submits the whole batch under one plug. A
//! request that comes alone goes to its CPU's worker instead, kicked at
//! once (see [`worker_for`]). A submitter that keeps a queue has its reads
//! and writes go to the queue's worker even where the fast path would
//! serve them, which then submits on another CPU while the submitter sends
//! more (see `PendingList::wants_worker`).
//!
//! Every request ends exactly once: it is owned by one `Request` token at a
//! time, which `complete()` finally consumes. A token dropped by mistake
//! ends its request with an I/O error instead of losing it.

use crate::{
    arrival::Arrival,
    blk::{
        bvec::BvecTable, impl_request_field, with_plug, Op, Operations, Request, RequestListNode,
        Status,
    },
    cgroup::{self, ChargeScope},
    completion, cpu_nesting,
    device::{IoTarget, LoopDevice, LoopOps, PendingList},
    file_io::{BackingFile, Falloc},
    kernel_defs::eopnotsupp,
    kiocb::{Direction, FileIo, IoMode},
    kthread::{Drain, DrainWorker},
    memalloc::LoopWorkerScope,
    submitter::{self, SubmitterScope},
};
use kernel::{
    cpu::CpuId,
    current,
    fs::File,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{ordering::Relaxed, Atomic},
        Arc, ArcBorrow,
    },
};

/// Per-request data (loop.c's `struct loop_cmd`), reused for every I/O of
/// the request: the I/O path allocates only the vector array of a request
/// made of several bios, as loop.c does.
#[pin_data]
pub(crate) struct LoopCmd {
    node: RequestListNode,
    io: FileIo,
    bvecs: BvecTable,
    /// The I/O is over and the worker is to end the request: its end was
    /// too deeply nested where the I/O ended. Touched only by the
    /// request's owner.
    completion_deferred: Atomic<bool>,
    /// The CPU that submitted the request, which counts it in flight
    /// until it ends. Touched only by the request's owner.
    submit_cpu: Atomic<u32>,
    /// The request came alone: the last of its batch, and the only one of
    /// its CPU in flight. If it must block, that CPU's worker takes it.
    alone: Atomic<bool>,
}

impl_request_field!(LoopOps, LoopCmd, node: RequestListNode);
impl_request_field!(LoopOps, LoopCmd, io: FileIo);
impl_request_field!(LoopOps, LoopCmd, bvecs: BvecTable);

impl Operations for LoopOps {
    type RequestData = LoopCmd;
    type QueueData = Arc<LoopDevice>;

    fn init_request_data() -> impl PinInit<LoopCmd, Error> {
        try_pin_init!(LoopCmd {
            node: RequestListNode::new(),
            io: FileIo::new(),
            bvecs: BvecTable::new(),
            completion_deferred: Atomic::new(false),
            submit_cpu: Atomic::new(0),
            alone: Atomic::new(false),
        })
    }

    fn queue_rq(dev: ArcBorrow<'_, LoopDevice>, rq: Request<Self>, is_last: bool) {
        let worker = dev.worker(rq.hw_queue());
        if !dev.accepts_io() {
            // Not bound (loop.c's queue_rq returns BLK_STS_IOERR).
            rq.end(Status::ioerr());
            if is_last {
                kick_if_pending(worker);
            }
            return;
        }
        // Counted until it ends. The task may move to another CPU at once:
        // the count is a hint.
        let (cpu, task) = (CpuId::current(), current!().pid());
        let arrival = dev.request_started(cpu, task);
        rq.data().submit_cpu.store(cpu.as_u32(), Relaxed);
        rq.data()
            .alone
            .store(is_last && arrival == Arrival::Alone, Relaxed);
        let rq = if dev.nowait_allows(rq.op())
            && worker.data().nowait_attempts() < MAX_NOWAIT_ATTEMPTS
            && !worker.data().wants_worker(task, arrival)
        {
            submit_nowait(&dev, worker.data(), rq)
        } else {
            Some(rq)
        };
        if let Some(rq) = rq {
            let (target, per_cpu) = worker_for(&dev, &rq);
            // A CPU's worker takes requests that come alone: no batch to
            // wait for.
            if target.data().push(rq) && per_cpu {
                target.kick();
            }
        }
        if is_last {
            kick_if_pending(worker);
        }
    }

    fn commit_rqs(dev: ArcBorrow<'_, LoopDevice>, hw_queue: u32) {
        kick_if_pending(dev.worker(hw_queue));
    }

    /// `lo_complete_rq`, where the I/O ended, unless that would nest it
    /// in [`MAX_NESTED_COMPLETIONS`] others: the worker ends it then.
    fn complete(rq: Request<Self>) {
        if rq.data().io.was_nowait() {
            let dev = rq.queue_data();
            dev.worker(rq.hw_queue()).data().nowait_attempt_ended();
        }
        end_or_defer(rq);
    }
}

/// How many NOWAIT attempts of one queue may be under way before
/// `queue_rq` hands the next requests to the worker.
///
/// An attempt that the backing file ends at once (a RAM disk, the page
/// cache) is over before `queue_rq` returns; attempts add up only where
/// the backing device completes them later. There, a submitter issues
/// every request alone, with a notification of the device each, where the
/// worker issues the requests queued meanwhile in one plugged batch: under
/// `make bench`, 1.4-1.7x the IOPS of the fast path at queue depth 32 on
/// virtio-blk. At depth 1 the fast path saves the worker's wake-up.
const MAX_NOWAIT_ATTEMPTS: i32 = 4;

/// Ends `rq` ([`end_request`]) on this stack, unless that would nest it in
/// [`MAX_NESTED_COMPLETIONS`] others: the worker ends it then.
fn end_or_defer(rq: Request<LoopOps>) {
    if let Err(rq) = cpu_nesting::run_nested(MAX_NESTED_COMPLETIONS, rq, end_request) {
        rq.data().completion_deferred.store(true, Relaxed);
        hand_to_worker(rq);
    }
}

/// How many request ends may nest on one CPU.
///
/// A loop device's request ends where its backing I/O ends, without the
/// IPI or softirq of `blk_mq_complete_request()`. On a stack of loop
/// devices, ending the lower request ends the upper one's backing I/O,
/// and so the upper request: one nesting per level, on one stack, which
/// could overflow it. Past this many, the end goes to the request's
/// worker, on a stack of its own. See
/// Documentation/design/request-lifecycle.rst, "Stacked devices".
const MAX_NESTED_COMPLETIONS: u32 = 4;

/// Ends `rq` from its result, or hands it on for more I/O.
fn end_request(rq: Request<LoopOps>) {
    let io = &rq.data().io;
    let is_read = rq.op() == Op::Read;
    let (ret, bytes) = (io.result(), rq.bytes());
    let completion = match io.was_nowait() {
        true => completion::nowait_completion(is_read, ret, bytes),
        false => completion::completion(is_read, ret, bytes),
    };
    match completion {
        completion::Completion::Resubmit => hand_to_worker(rq),
        completion::Completion::Done(Ok(())) => end(rq, Status::OK),
        completion::Completion::Done(Err(e)) => end(rq, Status::from_errno(e.to_errno())),
        completion::Completion::RetryRest(done) => {
            // The rest goes to the worker, not back through `queue_rq`,
            // which fails it once a detach has begun. After a NOWAIT read,
            // it is what the page cache did not hold.
            let mut rq = rq;
            match rq.advance(done) {
                Ok(()) => hand_to_worker(rq),
                // Not reached: the rule retries fewer bytes than the
                // request's.
                Err(_) => end(rq, Status::ioerr()),
            }
        }
        completion::Completion::ZeroFillAndFail => {
            rq.zero_fill();
            end(rq, Status::ioerr());
        }
    }
}

/// Ends `rq`, which `queue_rq` counted in flight, with `status`.
fn end(mut rq: Request<LoopOps>, status: Status) {
    rq.release_bvecs();
    uncount(&rq);
    rq.end(status);
}

/// Stops counting `rq` in flight: before it ends, so that its submitter,
/// woken by the end, finds it gone.
fn uncount(rq: &Request<LoopOps>) {
    if let Some(cpu) = CpuId::from_u32(rq.data().submit_cpu.load(Relaxed)) {
        rq.queue_data().request_ended(cpu);
    }
}

/// Puts `rq` on its hardware queue's list, in any context, for the worker
/// to submit again or to end.
fn hand_to_worker(rq: Request<LoopOps>) {
    // Once on the list, the request may end before the kick. Holding its
    // queue keeps the device, and the worker: an `Arc` would not do, as its
    // last drop here, maybe in IRQ, would stop the worker.
    let queue = rq.queue_ref();
    let dev = queue.queue_data();
    let (worker, _) = worker_for(&dev, &rq);
    // A list that held requests was kicked, or will be at the end of its
    // batch.
    if worker.data().push(rq) {
        worker.kick();
    }
}

/// The worker to take `rq`, and whether it is a CPU's: the worker of the
/// CPU that `rq` came alone from, if it is made and has nothing queued,
/// so that a submitter waiting for one request is not woken from another
/// CPU (see [`crate::device`]'s `workers`); its queue's worker otherwise.
/// Either may be busy with a request it took: both run one at a time.
fn worker_for<'a>(
    dev: &'a LoopDevice,
    rq: &Request<LoopOps>,
) -> (&'a DrainWorker<PendingList>, bool) {
    let data = rq.data();
    let cpu_worker = Some(data)
        .filter(|data| data.alone.load(Relaxed))
        .and_then(|data| CpuId::from_u32(data.submit_cpu.load(Relaxed)))
        .and_then(|cpu| dev.cpu_worker(cpu))
        .filter(|w| w.data().is_empty());
    match cpu_worker {
        Some(worker) => (worker, true),
        None => (dev.worker(rq.hw_queue()), false),
    }
}

impl Drain for PendingList {
    /// `loop_process_work`: the requests queued so far, oldest first.
    /// Those queued meanwhile come with a kick of their own, which runs
    /// this again, after the worker has had a chance to reschedule.
    fn drain(&self) {
        // No reclaim may recurse into the block layer from here: it could
        // wait for this very device.
        let _scope = LoopWorkerScope::enter();
        // The backing device sees the batch's bios at once.
        with_plug(|| {
            // One look at the target serves the batch: its file, offset
            // and flags change only with the queue frozen, so not while
            // these requests are in flight.
            let mut target = None;
            for rq in self.take_all() {
                if rq.data().completion_deferred.load(Relaxed) {
                    rq.data().completion_deferred.store(false, Relaxed);
                    end_or_defer(rq);
                    continue;
                }
                let target = target.get_or_insert_with(|| {
                    // Once a batch: a CPU's worker that a request found
                    // missing is made here, where sleeping is allowed.
                    let dev = rq.queue_data();
                    dev.make_wanted_cpu_worker();
                    dev.io_target()
                });
                handle_request(rq, target.as_ref());
            }
        });
    }
}

/// Wakes the worker for what its queue holds: requests queued earlier in
/// a batch, even if the last one took the NOWAIT path. An empty queue
/// needs no wake-up; whoever adds to it next kicks.
fn kick_if_pending(worker: &DrainWorker<PendingList>) {
    if !worker.data().is_empty() {
        worker.kick();
    }
}

/// `loop_handle_cmd`, on the device's worker, for the device's `target`.
fn handle_request(rq: Request<LoopOps>, target: Option<&IoTarget>) {
    // `queue_rq` took it while bound. A detach (`LOOP_CLR_FD`, autoclear)
    // only marks the device, and the target stays until the last close
    // tears it down. A request still queued then ends with an I/O error;
    // none should be, as the last opener's I/O has ended (loop.c assumes
    // so, and would use the file it dropped).
    let Some(target) = target else {
        end(rq, Status::ioerr());
        return;
    };
    // What the backing file does for it is charged to the submitter's
    // cgroups, as in loop.c, until the submission returns: a throttled
    // cgroup stays throttled through the device.
    let _charge = ChargeScope::enter(&rq);
    let op = rq.op();
    if matches!(op, Op::Write | Op::Discard | Op::WriteZeroes) && target.read_only() {
        finish_sync(rq, Err(EIO));
        return;
    }
    if op == Op::Flush {
        let file = BackingFile::from_file(target.file.clone());
        // `lo_req_flush`: any error is an I/O error, `EOPNOTSUPP` too.
        let ret = file.fsync().map_err(|_| EIO);
        return finish_sync(rq, ret);
    }
    // Flush requests have no position; every other one has.
    let Some(pos) = file_position(&rq, target) else {
        return finish_sync(rq, Err(EIO));
    };
    match op {
        Op::Read | Op::Write => {
            let dir = direction(op);
            let ioprio = rq.ioprio();
            let mode = match target.direct_io() {
                true => IoMode::Direct,
                false => IoMode::Buffered,
            };
            if let Err((rq, _)) = FileIo::submit(rq, target.file.clone(), dir, pos, mode, ioprio) {
                finish_sync(rq, Err(EIO));
            }
        }
        Op::Discard | Op::WriteZeroes => {
            let mode = if op == Op::WriteZeroes && rq.is_nounmap() {
                Falloc::ZeroRange
            } else {
                Falloc::PunchHole
            };
            let ret = fallocate(&rq, target.file.clone(), mode, pos);
            finish_sync(rq, ret);
        }
        Op::Flush | Op::Other(_) => finish_sync(rq, Err(EIO)),
    }
}

/// The byte in the backing file where `rq` starts.
fn file_position(rq: &Request<LoopOps>, target: &IoTarget) -> Option<i64> {
    rq.sector()
        .checked_mul(1 << crate::blk::SECTOR_SHIFT)
        .and_then(|p| p.checked_add(target.offset))
        .and_then(|p| i64::try_from(p).ok())
}

fn direction(op: Op) -> Direction {
    match op {
        Op::Write => Direction::ToFile,
        _ => Direction::FromFile,
    }
}

/// The NOWAIT fast path (`nowait=1`, the default): a read or write that
/// the device's target allows, submitted from `queue_rq`, in the
/// submitting task, with `IOCB_NOWAIT`, direct or through the page cache
/// as the device is set. Returns the request if the worker must take it:
/// the target changed meanwhile, or the submitting task must not call into
/// a file system (see [`SubmitterScope`]). An attempt that would block
/// ends in [`LoopOps::complete`], which hands it on.
fn submit_nowait(
    dev: &LoopDevice,
    pending: &PendingList,
    rq: Request<LoopOps>,
) -> Option<Request<LoopOps>> {
    // The task check first: it refuses most often, and is cheaper than
    // taking the target, which the worker then takes again.
    SubmitterScope::run(rq, |rq| submit_in_scope(dev, pending, rq)).unwrap_or_else(Some)
}

/// [`submit_nowait`] in the submitter's scope; `pending` is the list of
/// `rq`'s queue, which counts the attempt.
fn submit_in_scope(
    dev: &LoopDevice,
    pending: &PendingList,
    rq: Request<LoopOps>,
) -> Option<Request<LoopOps>> {
    let op = rq.op();
    let Some(target) = dev.bound_target().filter(|t| t.nowait.allows(op)) else {
        return Some(rq);
    };
    // What applies to the submitter, and not to loop.c's kthread, sends
    // the request to a worker: cgroups other than the bio's, and a file
    // size limit, which would fail a write and signal the task.
    if !cgroup::charged_as_current(&rq, !target.direct_io())
        || (op == Op::Write && !submitter::current_fsize_unlimited())
    {
        return Some(rq);
    }
    let mode = match target.direct_io() {
        true => IoMode::DirectNowait,
        false => IoMode::BufferedNowait,
    };
    let Some(pos) = file_position(&rq, &target) else {
        return Some(rq);
    };
    let ioprio = rq.ioprio();
    // Counted before it starts: it may end before `submit` returns.
    pending.nowait_attempt_started();
    // In the scope: gathering the vectors may allocate.
    let submitted = FileIo::submit(rq, target.file, direction(op), pos, mode, ioprio);
    submitted.err().map(|(rq, _)| {
        // Not started: `complete()` will not see it.
        pending.nowait_attempt_ended();
        rq
    })
}

/// `lo_fallocate`: discard and write-zeroes through the file's fallocate.
fn fallocate(rq: &Request<LoopOps>, file: ARef<File>, mode: Falloc, pos: i64) -> Result {
    let disk = rq.disk();
    if disk.max_discard_sectors() == 0 {
        return Err(eopnotsupp());
    }
    let file = BackingFile::from_file(file);
    let ret = file.fallocate(mode, pos, i64::from(rq.bytes()));
    if ret == Err(eopnotsupp()) {
        // Configured in the hope that fallocate works; it does not, so stop
        // advertising it, and the error is seen once. Without waiting for
        // `limits_lock`: a limits update under way waits for this request
        // (loop.c waits here, and can deadlock with LOOP_SET_BLOCK_SIZE).
        let _ = disk.try_update_limits(|lim| {
            if mode == Falloc::ZeroRange {
                lim.clear_write_zeroes();
            } else {
                lim.clear_discard();
            }
        });
    }
    ret
}

/// Completes a request handled without a kiocb, with loop.c's rule for
/// such results: `EOPNOTSUPP` stays, any other error is an I/O error.
/// Such a request is done whole or not at all: success counts all of its
/// bytes, which the rule for short writes must not see as none.
fn finish_sync(rq: Request<LoopOps>, ret: Result) {
    let bytes = rq.bytes() as usize;
    rq.data()
        .io
        .set_result(completion::sync_result(ret).map(|()| bytes));
    rq.complete_inline();
}
