// SPDX-License-Identifier: GPL-2.0

//! Delayed work on the system's unbound workqueue.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)
//!
//! `kernel::workqueue` queues work items that own themselves (an `Arc` or
//! a `KBox` handed to the queue) and cannot cancel them. A [`DelayedWork`]
//! is a field of the structure it works on instead: dropping it cancels
//! it and waits for a run under way, so it never outlives that structure.

use crate::helpers_ffi;
use kernel::{bindings, prelude::*, time::Jiffies, types::Opaque};

/// A `struct delayed_work` queued on `system_dfl_wq`, cancelled on drop.
///
/// # Invariants
///
/// `dwork` was initialised by `INIT_DELAYED_WORK()` with a function that
/// may run it for as long as `self` lives, and is queued only on
/// `system_dfl_wq`.
#[pin_data(PinnedDrop)]
pub(crate) struct DelayedWork {
    #[pin]
    dwork: Opaque<bindings::delayed_work>,
}

// SAFETY: Queueing, flushing and cancelling take the workqueue's locks.
unsafe impl Send for DelayedWork {}
// SAFETY: As for `Send`: every method is safe from any thread.
unsafe impl Sync for DelayedWork {}

impl DelayedWork {
    /// A work that runs `func` with its `work_struct`.
    ///
    /// # Safety
    ///
    /// Calling `func` with this work's `work_struct`, on a workqueue
    /// worker, must be sound for as long as the returned work lives.
    pub(crate) unsafe fn new(
        func: unsafe extern "C" fn(*mut bindings::work_struct),
    ) -> impl PinInit<Self> {
        // INVARIANT: Initialised with `func`, which the caller vouches for.
        pin_init!(Self {
            // SAFETY: `INIT_DELAYED_WORK()` initialises the whole work.
            dwork <- Opaque::ffi_init(|dwork| unsafe {
                helpers_ffi::rloop_init_delayed_work(dwork, func)
            }),
        })
    }

    /// The work whose `work_struct` is `work`.
    ///
    /// # Safety
    ///
    /// `work` is the `work_struct` of a [`DelayedWork`].
    pub(crate) unsafe fn from_work(work: *mut bindings::work_struct) -> *const Self {
        // SAFETY: By the caller's contract, `work` is the `work` field of a
        // `delayed_work`, which is the `dwork` field of a `DelayedWork`.
        unsafe {
            let dwork = kernel::container_of!(work, bindings::delayed_work, work);
            kernel::container_of!(Opaque::cast_from(dwork).cast_mut(), Self, dwork)
        }
    }

    /// Runs the work as soon as possible, sooner than it was queued for
    /// if it was. Callable from any context, hard IRQ included.
    pub(crate) fn run_now(&self) {
        // SAFETY: `dwork` is initialised (type invariant) and
        // `system_dfl_wq` lives as long as the kernel.
        unsafe {
            helpers_ffi::rloop_mod_delayed_work(bindings::system_dfl_wq, self.dwork.get(), 0)
        };
    }

    /// Runs the work after `delay`, unless it is queued already.
    pub(crate) fn run_after(&self, delay: Jiffies) {
        // SAFETY: As in `run_now`.
        unsafe {
            helpers_ffi::rloop_queue_delayed_work(bindings::system_dfl_wq, self.dwork.get(), delay)
        };
    }

    /// Runs the work now if it is queued, and waits until it has run.
    pub(crate) fn flush(&self) {
        // SAFETY: `dwork` is initialised (type invariant).
        unsafe { bindings::flush_delayed_work(self.dwork.get()) };
    }

    /// Dequeues the work and waits for a run under way, which cannot
    /// queue it again meanwhile.
    pub(crate) fn cancel_sync(&self) {
        // SAFETY: `dwork` is initialised (type invariant).
        unsafe { bindings::cancel_delayed_work_sync(self.dwork.get()) };
    }
}

#[pinned_drop]
impl PinnedDrop for DelayedWork {
    fn drop(self: Pin<&mut Self>) {
        self.cancel_sync();
    }
}
