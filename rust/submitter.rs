// SPDX-License-Identifier: GPL-2.0

//! Calling into a file system from the task that submitted a request.
//!
//! C headers: [`include/linux/sched.h`](srctree/include/linux/sched.h),
//! [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)
//!
//! blk-mq runs `queue_rq` in whatever task flushed a plug or issued a bio:
//! a user task, but also a file system's journal or writeback thread, direct
//! reclaim, or `submit_bio()`, its own or another block driver's, and in
//! kblockd, the workqueue shared by every block device. A loop
//! driver that calls into its backing file system there inherits that
//! task's state. loop.c's NOWAIT series, reverted for 6.19, hit a jbd2 BUG
//! from an inherited journal handle, stack overflows, a lockdep report
//! between reclaim and the queue's SRCU, and a plug list that grew while
//! blk-mq dispatched it. [`SubmitterScope`] admits only a task with none of
//! that state, and no workqueue worker, and guards against the rest while
//! it lasts.

use crate::{helpers_ffi as ffi, memalloc::NoIoScope};
use core::marker::PhantomData;
use kernel::bindings;

/// The current task, borrowed to call into a backing file system, for the
/// length of a closure ([`SubmitterScope::run`]).
///
/// While it lasts, allocations do no I/O for reclaim (so none recurses into
/// the block layer, and reclaim's lockdep map is not taken under the
/// queue's SRCU), and the task's plug and `submit_bio()` list are set
/// aside, so the backing file system's bios are issued at once rather than
/// added to a plug being flushed, or deferred until the outer
/// `submit_bio()` returns, which a file system waiting for them would
/// never see.
///
/// A scope exists only inside [`SubmitterScope::run`]: a plug started in
/// the closure (`with_plug`) is finished before the scope gives the task
/// its own plug back, which would otherwise point at a dead stack frame.
///
/// # Invariants
///
/// `plug` and `bio_list` are what `current->plug` and `current->bio_list`
/// held when the scope was entered; the task's plug is null until the
/// scope ends on the same task (the type is not `Send`), and its bio list
/// is null whenever no `submit_bio()` entered during the scope is running.
pub(crate) struct SubmitterScope {
    plug: *mut bindings::blk_plug,
    bio_list: *mut bindings::bio_list,
    _noio: NoIoScope,
    _not_send: PhantomData<*mut ()>,
}

impl SubmitterScope {
    /// Runs `f(arg)` in the scope if the current task holds no journal
    /// handle, is not in reclaim, or in a no-FS or no-I/O section, is not a
    /// workqueue worker (kblockd, writeback), and has at least half its
    /// stack left. Otherwise gives `arg` back: the
    /// caller must hand the work to a thread of its own.
    pub(crate) fn run<T, R>(arg: T, f: impl FnOnce(T) -> R) -> Result<R, T> {
        let Some(scope) = Self::try_enter() else {
            return Err(arg);
        };
        let ret = f(arg);
        // The scope ends here, after everything `f` started in it.
        drop(scope);
        Ok(ret)
    }

    /// Enters the scope; only [`SubmitterScope::run`] calls it, so that
    /// the scope never outlives the closure.
    fn try_enter() -> Option<Self> {
        // SAFETY: Reads fields of `current` and its stack pointer only.
        if !unsafe { ffi::rloop_current_may_enter_fs() } {
            return None;
        }
        let noio = NoIoScope::enter();
        // SAFETY: Only `current` is changed; `drop` restores the plug.
        let plug = unsafe { ffi::rloop_current_plug_detach() };
        // SAFETY: As for the plug.
        let bio_list = unsafe { ffi::rloop_current_bio_list_detach() };
        // INVARIANT: The plug and the list were saved and cleared above.
        Some(Self {
            plug,
            bio_list,
            _noio: noio,
            _not_send: PhantomData,
        })
    }
}

impl Drop for SubmitterScope {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, these are the list and the plug
        // the task had on entry, and the task is the one that entered; no
        // `submit_bio()` begun in the scope is still running.
        unsafe {
            ffi::rloop_current_bio_list_attach(self.bio_list);
            ffi::rloop_current_plug_attach(self.plug);
        }
    }
}

/// Whether the current task may write at any file position, as a worker
/// may: its file size limit (`RLIMIT_FSIZE`) is unlimited. A write past
/// the limit fails with `EFBIG` and sends the task `SIGXFSZ`.
pub(crate) fn current_fsize_unlimited() -> bool {
    // SAFETY: Reads the current task's limits only.
    unsafe { ffi::rloop_current_fsize_unlimited() }
}
