// SPDX-License-Identifier: GPL-2.0

//! Calling into a file system from the task that submitted a request.
//!
//! C headers: [`include/linux/sched.h`](srctree/include/linux/sched.h),
//! [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)
//!
//! blk-mq runs `queue_rq` in whatever task flushed a plug or issued a bio:
//! a user task, but also a file system's journal or writeback thread, direct
//! reclaim, or another block driver's `submit_bio()`. A loop driver that
//! calls into its backing file system there inherits that task's state.
//! loop.c's NOWAIT series, reverted for 6.19, hit a jbd2 BUG from an
//! inherited journal handle, stack overflows, a lockdep report between
//! reclaim and the queue's SRCU, and a plug list that grew while blk-mq
//! dispatched it. [`SubmitterScope`] admits only a task with none of that
//! state, and guards against the rest while it lasts.

use crate::{helpers_ffi as ffi, memalloc::NoIoScope};
use core::marker::PhantomData;
use kernel::bindings;

/// The current task, borrowed to call into a backing file system.
///
/// While it lasts, allocations do no I/O for reclaim (so none recurses into
/// the block layer, and reclaim's lockdep map is not taken under the
/// queue's SRCU), and the task's plug is set aside, so the backing file
/// system's bios are issued rather than added to a plug being flushed.
///
/// # Invariants
///
/// `plug` is what `current->plug` held when the scope was entered; the
/// task's plug is null until the scope ends on the same task (the type is
/// not `Send`).
pub(crate) struct SubmitterScope {
    plug: *mut bindings::blk_plug,
    _noio: NoIoScope,
    _not_send: PhantomData<*mut ()>,
}

impl SubmitterScope {
    /// Enters the scope if the current task holds no journal handle, is not
    /// inside another `submit_bio()`, in reclaim, or in a no-FS or no-I/O
    /// section, and has at least half its stack left. Otherwise the caller
    /// must hand the work to a thread of its own.
    pub(crate) fn try_enter() -> Option<Self> {
        // SAFETY: Reads fields of `current` and its stack pointer only.
        if !unsafe { ffi::rloop_current_may_enter_fs() } {
            return None;
        }
        let noio = NoIoScope::enter();
        // SAFETY: Only `current` is changed; `drop` restores the plug.
        let plug = unsafe { ffi::rloop_current_plug_detach() };
        // INVARIANT: The plug was saved and cleared just above.
        Some(Self {
            plug,
            _noio: noio,
            _not_send: PhantomData,
        })
    }
}

impl Drop for SubmitterScope {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, this is the plug the task had on
        // entry, and the task is the one that entered.
        unsafe { ffi::rloop_current_plug_attach(self.plug) };
    }
}
