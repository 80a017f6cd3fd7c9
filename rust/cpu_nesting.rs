// SPDX-License-Identifier: GPL-2.0

//! Bounding recursion that crosses devices: a per-CPU count of nested
//! sections.
//!
//! C headers: [`include/linux/percpu-defs.h`](srctree/include/linux/percpu-defs.h),
//! [`include/linux/preempt.h`](srctree/include/linux/preempt.h)
//!
//! A section runs with preemption disabled, so it stays on the CPU whose
//! count it raised, and interrupts nest inside it in order: the count on a
//! CPU is the number of sections under way on its current stack, or more
//! when an interrupt runs on a stack of its own, which errs on the safe
//! side. The count itself is a per-CPU variable of `rust/helpers.c`.

use crate::helpers_ffi as ffi;
use core::marker::PhantomData;

/// A section entered on this CPU, left on drop.
///
/// # Invariants
///
/// `rloop_nesting_enter()` returned true on the current task, which is
/// still on the same CPU with preemption disabled; the type is not `Send`.
struct Section {
    _not_send: PhantomData<*mut ()>,
}

impl Drop for Section {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the section was entered on this
        // CPU and is left once.
        unsafe { ffi::rloop_nesting_exit() };
    }
}

/// Runs `f(arg)` as a section if fewer than `max` sections are under way
/// on this CPU; otherwise gives `arg` back, for the caller to hand the
/// work to a thread of its own.
///
/// `f` runs with preemption disabled: it must not sleep.
pub(crate) fn run_nested<T, R>(max: u32, arg: T, f: impl FnOnce(T) -> R) -> Result<R, T> {
    // SAFETY: Callable in any context; on success, `Section` leaves.
    if !unsafe { ffi::rloop_nesting_enter(max) } {
        return Err(arg);
    }
    // INVARIANT: Entered just above.
    let section = Section {
        _not_send: PhantomData,
    };
    let ret = f(arg);
    drop(section);
    Ok(ret)
}
