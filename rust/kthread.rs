// SPDX-License-Identifier: GPL-2.0

//! Kthread workers.
//!
//! C header: [`include/linux/kthread.h`](srctree/include/linux/kthread.h)
//!
//! A [`DrainWorker`] is a kthread worker with a single work item and the
//! data it drains: callers queue their input on the data, lock-free, and
//! kick the worker once for many inputs. Its thread is started on the
//! first kick and stopped when the worker has been idle for a while, so an
//! idle worker costs no thread, as an unbound workqueue's would not.
//!
//! The thread's life, one `phase` (written by the manager, a delayed work
//! on `system_dfl_wq` that never runs twice at once, and by a kick that
//! finds no thread):
//!
//! ```text
//!   Stopped --kick--> Starting --manager: thread made--> Running
//!      ^                 |  ^                               |
//!      |                 +--+ thread not made: retry later  | manager: no kick
//!      |                                                    v  for IDLE_STOP
//!      +------ thread stopped; queued work? then Starting -- Stopping
//! ```
//!
//! The invariant: work queued on the worker always has a thread to run it
//! or a start on its way. A kick queues its work and then, after a full
//! barrier, reads `phase`; the manager stores `Stopped`, with a full
//! barrier, and then looks for queued work. One of the two sees the other,
//! and the one that sees work without a thread starts one (`Stopped` to
//! `Starting` is a compare-and-exchange, so only one does).

use crate::{delayed_work::DelayedWork, helpers_ffi};
use core::ptr::NonNull;
use kernel::{
    bindings,
    cpu::CpuId,
    error::from_err_ptr,
    new_mutex,
    prelude::*,
    str::{CStr, CString},
    sync::{
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        Mutex,
    },
    time::{msecs_to_jiffies, Msecs},
    types::Opaque,
};

/// How long a worker's thread outlives its last kick: at least this, at
/// most twice this.
const IDLE_STOP: Msecs = 5000;

/// How long to wait before trying again to start a thread that could
/// not be created (`ENOMEM`); the queued work waits meanwhile.
const START_RETRY: Msecs = 100;

/// A kthread worker, which runs queued work in order on its thread when it
/// has one. Work queued without a thread waits for the next one.
///
/// # Invariants
///
/// `worker` was initialised by `kthread_init_worker()`, with
/// `KTW_FREEZABLE`. Its `task` is null or the thread of the one live
/// [`WorkerThread`] on it.
#[pin_data]
struct KthreadWorker {
    #[pin]
    worker: Opaque<bindings::kthread_worker>,
}

impl KthreadWorker {
    /// A worker without a thread.
    fn new() -> impl PinInit<Self> {
        // INVARIANT: Initialised, freezable, with a null `task`.
        pin_init!(Self {
            // SAFETY: `kthread_init_worker()` initialises the whole worker.
            worker <- Opaque::ffi_init(|worker| unsafe {
                // Held during suspend, as loop.c's WQ_FREEZABLE workqueue.
                helpers_ffi::rloop_kthread_worker_init(worker, bindings::KTW_FREEZABLE)
            }),
        })
    }

    fn as_ptr(&self) -> *mut bindings::kthread_worker {
        self.worker.get()
    }

    /// Whether work is queued or running.
    fn has_work(&self) -> bool {
        // SAFETY: The worker is initialised (type invariant).
        unsafe { helpers_ffi::rloop_kthread_worker_has_work(self.as_ptr()) }
    }

    /// Waits until all work queued so far has run: forever if the worker
    /// gets no thread.
    fn flush(&self) {
        // SAFETY: The worker is initialised (type invariant).
        unsafe { bindings::kthread_flush_worker(self.as_ptr()) };
    }
}

/// The thread of a [`KthreadWorker`], stopped on drop. Work queued and not
/// yet begun then stays queued.
///
/// # Invariants
///
/// `task` runs `kthread_worker_fn()` on `worker`, is `worker`'s task, and
/// this holds a reference to it. `worker` outlives `self`.
struct WorkerThread {
    task: NonNull<bindings::task_struct>,
    worker: NonNull<bindings::kthread_worker>,
}

// SAFETY: A kthread may be stopped from any thread.
unsafe impl Send for WorkerThread {}

impl WorkerThread {
    /// Starts a thread named `name` for `worker`, preferring to run on
    /// `cpu` if given. Sleeps.
    ///
    /// # Safety
    ///
    /// `worker` has no thread, and outlives the returned one.
    unsafe fn start(worker: &KthreadWorker, name: &CStr, cpu: Option<CpuId>) -> Result<Self> {
        // SAFETY: `kthread_worker_fn` takes an initialised worker, which
        // outlives the thread by the caller's contract. The format string
        // takes one C string argument, `name`, which outlives the call.
        let task = from_err_ptr(unsafe {
            bindings::kthread_create_on_node(
                Some(bindings::kthread_worker_fn),
                worker.as_ptr().cast(),
                bindings::NUMA_NO_NODE,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        })?;
        if let Some(cpu) = cpu {
            // A preference only: without it the thread still works, where
            // the scheduler puts it, so a failure is not one of `start`.
            // SAFETY: A new kthread, not yet woken.
            let _ = unsafe { helpers_ffi::rloop_kthread_prefer_cpu(task, cpu.as_u32()) };
        }
        // SAFETY: A new thread, not yet running: referenced here, so that
        // `worker` never names a freed task; made the worker's task, which
        // kicks then wake; and woken.
        unsafe {
            bindings::get_task_struct(task);
            helpers_ffi::rloop_kthread_worker_set_task(worker.as_ptr(), task);
            bindings::wake_up_process(task);
        }
        // INVARIANT: Made, referenced and set as the task above.
        Ok(Self {
            // SAFETY: `from_err_ptr` returned a non-error pointer.
            task: unsafe { NonNull::new_unchecked(task) },
            worker: NonNull::from(worker).cast(),
        })
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, `task` is a live kthread running
        // `kthread_worker_fn()`, which returns when told to stop (after the
        // work under way).
        unsafe { bindings::kthread_stop(self.task.as_ptr()) };
        // SAFETY: `worker` is live (type invariant); its thread is gone.
        unsafe {
            helpers_ffi::rloop_kthread_worker_set_task(self.worker.as_ptr(), core::ptr::null_mut())
        };
        // SAFETY: We hold a reference to `task` (type invariant), dropped
        // once, now that the worker no longer names the task.
        unsafe { bindings::put_task_struct(self.task.as_ptr()) };
    }
}

/// What a [`DrainWorker`] runs on its thread each time it is kicked.
pub(crate) trait Drain: Send + Sync {
    /// Processes what was queued on `self` before the kick.
    fn drain(&self);
}

/// `phase`: no thread, and none on its way.
const STOPPED: u32 = 0;
/// `phase`: the manager is due to start a thread.
const STARTING: u32 = 1;
/// `phase`: a thread runs.
const RUNNING: u32 = 2;
/// `phase`: the manager is stopping the thread.
const STOPPING: u32 = 3;

/// A kthread worker with one work item, which runs [`Drain::drain`] on
/// `data` each time it is [kicked](DrainWorker::kick), on a thread started
/// at need (see the module's documentation).
///
/// Kicks coalesce while the work is pending. A kick while it runs makes it
/// run again afterwards, so input queued before a kick is always drained.
///
/// # Invariants
///
/// `work` was initialised with `run_drain::<D>` as its function and is
/// queued only on `worker`. `manager` was made with `run_manager::<D>`.
/// The thread in `thread` belongs to `worker`, and is stopped (in `drop`)
/// before `worker`, `work` and `data` go.
#[pin_data(PinnedDrop)]
pub(crate) struct DrainWorker<D: Drain> {
    /// Starts and stops the thread: the only one to, but for `drop`.
    #[pin]
    manager: DelayedWork,
    /// The thread, changed only by `manager` and `drop`; held by `flush`
    /// to keep it.
    #[pin]
    thread: Mutex<Option<WorkerThread>>,
    #[pin]
    worker: KthreadWorker,
    #[pin]
    work: Opaque<bindings::kthread_work>,
    /// The state machine of the module's documentation.
    phase: Atomic<u32>,
    /// Kicked since the manager last looked.
    kicked: Atomic<bool>,
    /// The last start failed and was reported.
    start_failed: Atomic<bool>,
    /// The thread's name.
    name: CString,
    /// The CPU the thread prefers, if any.
    cpu: Option<CpuId>,
    data: D,
}

// SAFETY: The work is touched only by `kthread_queue_work`, under the
// worker's lock, and by the worker thread; `data` is `Send`.
unsafe impl<D: Drain> Send for DrainWorker<D> {}
// SAFETY: Kicking and flushing are safe from any thread; `data` is `Sync`.
unsafe impl<D: Drain> Sync for DrainWorker<D> {}

impl<D: Drain> DrainWorker<D> {
    /// A worker that drains `data` on a thread named `name`, once kicked.
    /// The thread prefers to run on `cpu` if given, and goes where the
    /// scheduler puts it otherwise.
    pub(crate) fn new(name: CString, cpu: Option<CpuId>, data: D) -> impl PinInit<Self, Error> {
        // INVARIANT: `work` gets `run_drain::<D>`, and only `kick` queues
        // it, on `worker`; `manager` gets `run_manager::<D>`.
        try_pin_init!(Self {
            // SAFETY: `run_manager::<D>` takes the `manager` of a live
            // `DrainWorker<D>`: `manager` is cancelled when it is dropped.
            manager <- unsafe { DelayedWork::new(run_manager::<D>) },
            thread <- new_mutex!(None),
            worker <- KthreadWorker::new(),
            // SAFETY: `kthread_init_work()`: a zeroed work with an empty
            // list node and its function. Fully initialised, never fails.
            work <- unsafe {
                pin_init::pin_init_from_closure(|slot: *mut Opaque<bindings::kthread_work>| {
                    let work = Opaque::cast_into(slot);
                    work.write(pin_init::zeroed());
                    bindings::INIT_LIST_HEAD(&raw mut (*work).node);
                    (*work).func = Some(run_drain::<D>);
                    Ok::<(), core::convert::Infallible>(())
                })
            },
            phase: Atomic::new(STOPPED),
            kicked: Atomic::new(false),
            start_failed: Atomic::new(false),
            name,
            cpu,
            data,
        })
    }

    /// The data this worker drains.
    pub(crate) fn data(&self) -> &D {
        &self.data
    }

    /// Makes the worker run [`Drain::drain`] soon, unless it is already
    /// due to, and starts its thread if it has none. Callable from any
    /// context, hard IRQ included.
    pub(crate) fn kick(&self) {
        // SAFETY: By the type invariants, `work` is initialised and queued
        // only on `worker`, which is live while `self` is.
        unsafe { bindings::kthread_queue_work(self.worker.as_ptr(), self.work.get()) };
        // Full: the barrier between queueing and reading `phase` that the
        // module's documentation pairs with the manager's.
        self.kicked.xchg(true, Full);
        if self.phase.load(Relaxed) == STOPPED {
            self.request_start();
        }
    }

    /// Waits until every kick so far has been drained. Sleeps.
    pub(crate) fn flush(&self) {
        loop {
            // No start or stop while it is held.
            let thread = self.thread.lock();
            if thread.is_some() {
                return self.worker.flush();
            }
            // With no thread, queued work has a start on its way: hurry it.
            if !self.worker.has_work() {
                return;
            }
            drop(thread);
            // The kick may not have asked yet.
            self.request_start();
            self.manager.flush();
        }
    }

    /// Has the manager start a thread, unless one runs or is on its way.
    fn request_start(&self) {
        if self.phase.cmpxchg(STOPPED, STARTING, Relaxed).is_ok() {
            self.manager.run_now();
        }
    }

    /// The manager: starts the thread, or stops it once idle.
    fn manage(&self) {
        let mut thread = self.thread.lock();
        match self.phase.load(Acquire) {
            STARTING => self.start(&mut thread),
            RUNNING => self.stop_if_idle(&mut thread),
            _ => {}
        }
    }

    fn start(&self, thread: &mut Option<WorkerThread>) {
        // SAFETY: The worker has no thread (`phase` is not `Running`), and
        // the new one is kept in `self.thread`, stopped before `worker`
        // goes (type invariant).
        match unsafe { WorkerThread::start(&self.worker, &self.name, self.cpu) } {
            Ok(new) => {
                *thread = Some(new);
                self.start_failed.store(false, Relaxed);
                self.kicked.store(false, Relaxed);
                self.phase.store(RUNNING, Release);
                self.manager.run_after(msecs_to_jiffies(IDLE_STOP));
            }
            Err(e) => {
                // The queued work waits for a later attempt: no request is
                // lost, nor failed.
                if !self.start_failed.xchg(true, Relaxed) {
                    pr_warn!(
                        "{}: cannot start the worker thread ({:?}), retrying\n",
                        self.name.to_str().unwrap_or("loop"),
                        e
                    );
                }
                self.manager.run_after(msecs_to_jiffies(START_RETRY));
            }
        }
    }

    fn stop_if_idle(&self, thread: &mut Option<WorkerThread>) {
        if self.kicked.xchg(false, Relaxed) || self.worker.has_work() {
            self.manager.run_after(msecs_to_jiffies(IDLE_STOP));
            return;
        }
        self.phase.store(STOPPING, Relaxed);
        // Waits for a drain under way; work queued since stays queued.
        drop(thread.take());
        // Full: the barrier between storing `phase` and looking for work
        // that the module's documentation pairs with the kick's.
        self.phase.xchg(STOPPED, Full);
        if self.worker.has_work() {
            self.request_start();
        }
    }
}

#[pinned_drop]
impl<D: Drain> PinnedDrop for DrainWorker<D> {
    fn drop(self: Pin<&mut Self>) {
        // No start or stop runs after this.
        self.manager.cancel_sync();
        let mut thread = self.thread.lock();
        // Nothing is queued on a worker going away, as its users hold it
        // while they have input queued; if something were, drain it.
        if thread.is_none() && self.worker.has_work() {
            // SAFETY: No thread, and the new one is stopped below.
            match unsafe { WorkerThread::start(&self.worker, &self.name, self.cpu) } {
                Ok(new) => *thread = Some(new),
                Err(_) => pr_err!("cannot drain a worker going away\n"),
            }
        }
        if thread.is_some() {
            self.worker.flush();
        }
        // INVARIANT: The thread stops here, before the fields go.
        drop(thread.take());
    }
}

/// # Safety
///
/// Called by the worker thread for the `work` of a [`DrainWorker<D>`].
unsafe extern "C" fn run_drain<D: Drain>(work: *mut bindings::kthread_work) {
    // SAFETY: `work` is the `work` field of a `DrainWorker<D>`, whose
    // `data` outlives this call by the type invariant.
    let data = unsafe {
        let this = kernel::container_of!(Opaque::cast_from(work).cast_mut(), DrainWorker<D>, work);
        &(*this).data
    };
    data.drain();
}

/// # Safety
///
/// Called by a workqueue worker for the `manager` of a [`DrainWorker<D>`].
unsafe extern "C" fn run_manager<D: Drain>(work: *mut bindings::work_struct) {
    // SAFETY: `work` belongs to the `manager` of a `DrainWorker<D>`, which
    // outlives this call: dropping `manager` waits for it.
    let this = unsafe {
        let manager = DelayedWork::from_work(work);
        &*kernel::container_of!(manager.cast_mut(), DrainWorker<D>, manager)
    };
    this.manage();
}
