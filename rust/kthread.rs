// SPDX-License-Identifier: GPL-2.0

//! Kthread workers.
//!
//! C header: [`include/linux/kthread.h`](srctree/include/linux/kthread.h)
//!
//! A [`KthreadWorker`] is one kernel thread that runs queued work items in
//! order. A [`DrainWorker`] pairs one with a single work item and the data
//! it drains: callers queue their input on the data, lock-free, and kick
//! the worker once for many inputs.

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

/// What a [`DrainWorker`] runs on its thread each time it is kicked.
pub(crate) trait Drain: Send + Sync {
    /// Processes what was queued on `self` before the kick.
    fn drain(&self);
}

/// A kthread worker with one work item, which runs [`Drain::drain`] on
/// `data` each time it is [kicked](DrainWorker::kick).
///
/// Kicks coalesce while the work is pending. A kick while it runs makes it
/// run again afterwards, so input queued before a kick is always drained.
///
/// # Invariants
///
/// `work` was initialised with `run_drain::<D>` as its function and is
/// queued only on `worker`. `worker` is declared first, so it is dropped
/// first: destroying it runs any pending work, while `work` and `data`
/// are still alive.
#[pin_data]
pub(crate) struct DrainWorker<D: Drain> {
    worker: KthreadWorker,
    #[pin]
    work: Opaque<bindings::kthread_work>,
    data: D,
}

// SAFETY: The work is touched only by `kthread_queue_work`, under the
// worker's lock, and by the worker thread; `data` is `Send`.
unsafe impl<D: Drain> Send for DrainWorker<D> {}
// SAFETY: Kicking and flushing are safe from any thread; `data` is `Sync`.
unsafe impl<D: Drain> Sync for DrainWorker<D> {}

impl<D: Drain> DrainWorker<D> {
    /// Starts a worker named `name` that drains `data`.
    pub(crate) fn new<'a>(name: &'a CStr, data: D) -> impl PinInit<Self, Error> + 'a
    where
        D: 'a,
    {
        // INVARIANT: `work` gets `run_drain::<D>`, and only `kick` queues
        // it, on `worker`.
        try_pin_init!(Self {
            worker: KthreadWorker::new(name)?,
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
            data,
        })
    }

    /// The data this worker drains.
    pub(crate) fn data(&self) -> &D {
        &self.data
    }

    /// Makes the worker run [`Drain::drain`] soon, unless it is already
    /// due to. Callable from any context, hard IRQ included.
    pub(crate) fn kick(&self) {
        // SAFETY: By the type invariants, `work` is initialised and queued
        // only on `worker`, which is live while `self` is.
        unsafe { bindings::kthread_queue_work(self.worker.worker.as_ptr(), self.work.get()) };
    }

    /// Waits until every kick so far has been drained.
    pub(crate) fn flush(&self) {
        self.worker.flush();
    }
}

/// # Safety
///
/// Called by the worker thread for the `work` of a [`DrainWorker<D>`].
unsafe extern "C" fn run_drain<D: Drain>(work: *mut bindings::kthread_work) {
    // SAFETY: `work` is the `work` field of a `DrainWorker<D>`, whose `data`
    // outlives this call by the type invariant. Only `data` is borrowed: the
    // worker itself may be in the middle of being destroyed.
    let data = unsafe {
        let this = kernel::container_of!(Opaque::cast_from(work).cast_mut(), DrainWorker<D>, work);
        &(*this).data
    };
    data.drain();
}
