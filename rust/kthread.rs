// SPDX-License-Identifier: GPL-2.0

//! Kthread workers.
//!
//! C header: [`include/linux/kthread.h`](srctree/include/linux/kthread.h)
//!
//! A [`KthreadWorker`] is one kernel thread that runs queued work items in
//! order. Work items are [`KthreadWork`]s embedded in the objects they
//! process; a [`RawKthreadWorkItem`] converts between an owning handle of
//! such an object and its embedded work.

use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, prelude::*, str::CStr, types::Opaque};

/// A kthread worker and its thread, destroyed on drop after running all
/// queued work.
///
/// # Invariants
///
/// `worker` was returned by `kthread_create_worker_on_node()`, its task
/// was woken, and it is destroyed only on drop.
pub(crate) struct KthreadWorker {
    worker: NonNull<bindings::kthread_worker>,
}

// SAFETY: kthread workers are meant to be used from any thread.
unsafe impl Send for KthreadWorker {}
// SAFETY: Queueing and flushing take the worker's own lock.
unsafe impl Sync for KthreadWorker {}

impl KthreadWorker {
    /// Starts a worker whose thread is named `name`.
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        // SAFETY: The format string takes one C string argument, `name`,
        // which outlives the call.
        let worker = from_err_ptr(unsafe {
            bindings::kthread_create_worker_on_node(
                // Held during suspend, as loop.c's WQ_FREEZABLE workqueue.
                bindings::KTW_FREEZABLE,
                bindings::NUMA_NO_NODE,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        })?;
        // SAFETY: A new worker's task is valid and not yet running.
        unsafe { bindings::wake_up_process((*worker).task) };
        // INVARIANT: Created and woken above.
        Ok(Self {
            // SAFETY: `from_err_ptr` returned a non-error pointer.
            worker: unsafe { NonNull::new_unchecked(worker) },
        })
    }

    /// Queues `item` to run on this worker. Returns `false`, and drops
    /// nothing, only if the item's work was already queued, which the
    /// ownership of `item` rules out.
    pub(crate) fn queue<W: RawKthreadWorkItem>(&self, item: W) -> bool {
        let work = item.into_work();
        // SAFETY: `work` is an initialised work item whose owner was given
        // up to it until `run` takes it back; the worker is valid.
        unsafe { bindings::kthread_queue_work(self.worker.as_ptr(), work.as_ref().inner.get()) }
    }

    /// Waits until all work queued so far has run.
    pub(crate) fn flush(&self) {
        // SAFETY: The worker is valid by the type invariant.
        unsafe { bindings::kthread_flush_worker(self.worker.as_ptr()) };
    }
}

impl Drop for KthreadWorker {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the worker is live; this flushes
        // it, stops its thread and frees it.
        unsafe { bindings::kthread_destroy_worker(self.worker.as_ptr()) };
    }
}

/// A work item for a [`KthreadWorker`], embedded in the object it
/// processes.
///
/// # Invariants
///
/// `inner` was initialised by `kthread_init_work()`'s equivalent, with a
/// function that hands the work back to the `RawKthreadWorkItem` that
/// queued it.
#[repr(transparent)]
pub(crate) struct KthreadWork {
    inner: Opaque<bindings::kthread_work>,
}

// SAFETY: The work is only touched by the worker and its owner, in turn.
unsafe impl Send for KthreadWork {}
// SAFETY: See `Send`.
unsafe impl Sync for KthreadWork {}

impl KthreadWork {
    /// A work item that runs `W::run` for its owner.
    pub(crate) fn new<W: RawKthreadWorkItem>() -> impl PinInit<Self> {
        // SAFETY: The closure initialises `slot` fully and never fails.
        unsafe {
            pin_init::pin_init_from_closure(|slot: *mut Self| {
                let work = Opaque::cast_into(slot.cast::<Opaque<bindings::kthread_work>>());
                // `kthread_init_work()`: zero it, an empty list node, and
                // the function.
                work.write(pin_init::zeroed());
                bindings::INIT_LIST_HEAD(&raw mut (*work).node);
                (*work).func = Some(run_work::<W>);
                Ok(())
            })
        }
    }
}

/// # Safety
///
/// Called by the worker thread for a work item queued by
/// [`KthreadWorker::queue`] with an item of type `W`.
unsafe extern "C" fn run_work<W: RawKthreadWorkItem>(work: *mut bindings::kthread_work) {
    // SAFETY: `KthreadWork` is a transparent wrapper of the C work, which
    // `queue` was given by `W::into_work`.
    let item = unsafe { W::from_work(NonNull::new_unchecked(work.cast::<KthreadWork>())) };
    item.run();
}

/// An owning handle to an object with an embedded [`KthreadWork`].
///
/// # Safety
///
/// `from_work` must return the handle that `into_work` gave up, for the
/// work that `into_work` returned, and the work must have been initialised
/// by [`KthreadWork::new::<Self>`].
pub(crate) unsafe trait RawKthreadWorkItem: Send + Sized {
    /// Gives up the handle, returning its work item.
    fn into_work(self) -> NonNull<KthreadWork>;

    /// Takes back the handle given up by `into_work`.
    ///
    /// # Safety
    ///
    /// `work` must come from `into_work`, once.
    unsafe fn from_work(work: NonNull<KthreadWork>) -> Self;

    /// Processes the item on the worker thread.
    fn run(self);
}
