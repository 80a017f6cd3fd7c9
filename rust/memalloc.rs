// SPDX-License-Identifier: GPL-2.0

//! Memory allocation scopes.
//!
//! C header: [`include/linux/sched/mm.h`](srctree/include/linux/sched/mm.h)
//!
//! A loop device's worker does I/O to a file that may sit on a block device.
//! If its allocations could recurse into the block layer for reclaim, the
//! loop device would wait on itself. [`NoIoScope`] marks a section in which
//! every allocation of the current task behaves as `GFP_NOIO`.

use crate::helpers_ffi;
use core::marker::PhantomData;
use kernel::ffi::c_uint;

/// A `memalloc_noio_save()` section of the current task, ended on drop.
///
/// Nested scopes should end in reverse order: ending an outer one first
/// ends the inner one's no-I/O section early, since the restore clears the
/// flag that the outer one set. Nothing worse follows.
///
/// # Invariants
///
/// `flags` is the value `memalloc_noio_save()` returned on this task when
/// the scope was entered, and the scope ends on that task, since the type
/// is not [`Send`].
pub(crate) struct NoIoScope {
    flags: c_uint,
    // `memalloc_noio_restore()` must run on the task that saved.
    _not_send: PhantomData<*mut ()>,
}

impl NoIoScope {
    /// Enters a no-I/O allocation scope on the current task.
    pub(crate) fn enter() -> Self {
        // SAFETY: `rloop_memalloc_noio_save` only sets a flag of `current`.
        let flags = unsafe { helpers_ffi::rloop_memalloc_noio_save() };
        // INVARIANT: `flags` was just returned by `memalloc_noio_save()`.
        Self {
            flags,
            _not_send: PhantomData,
        }
    }

    /// Returns whether the current task is inside a no-I/O scope.
    #[cfg_attr(not(rloop_test_hooks), expect(dead_code))]
    pub(crate) fn is_active() -> bool {
        // SAFETY: `rloop_memalloc_noio_active` only reads a flag of `current`.
        unsafe { helpers_ffi::rloop_memalloc_noio_active() }
    }
}

impl Drop for NoIoScope {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, `self.flags` came from
        // `memalloc_noio_save()` on this task; the restore only changes
        // that task's flags.
        unsafe { helpers_ffi::rloop_memalloc_noio_restore(self.flags) };
    }
}

/// The task flags of a loop worker while it handles requests, restored on
/// drop: no I/O for reclaim (`PF_MEMALLOC_NOIO`), and dirty throttling
/// against its own backing device only (`PF_LOCAL_THROTTLE`), since the
/// pages it would otherwise wait for are the loop device's own, which only
/// it can write back.
///
/// # Invariants
///
/// `orig_flags` are the current task's flags from before the scope.
pub(crate) struct LoopWorkerScope {
    orig_flags: c_uint,
    _not_send: PhantomData<*mut ()>,
}

impl LoopWorkerScope {
    /// Enters the scope on the current task.
    pub(crate) fn enter() -> Self {
        // SAFETY: `rloop_loop_worker_enter` only sets flags of `current`.
        let orig_flags = unsafe { helpers_ffi::rloop_loop_worker_enter() };
        // INVARIANT: Saved just above.
        Self {
            orig_flags,
            _not_send: PhantomData,
        }
    }
}

impl Drop for LoopWorkerScope {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, these are the flags of this task
        // from before the scope, which is not `Send`.
        unsafe { helpers_ffi::rloop_loop_worker_exit(self.orig_flags) };
    }
}
