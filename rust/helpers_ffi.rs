// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C helpers in `rust/helpers.c`.
//!
//! Each entry mirrors a prototype of `rust/helpers.h`. Only the abstraction
//! files call them; driver logic never does.

use kernel::ffi::c_uint;

extern "C" {
    /// `memalloc_noio_save()`.
    pub(crate) fn rloop_memalloc_noio_save() -> c_uint;
    /// `memalloc_noio_restore()`.
    pub(crate) fn rloop_memalloc_noio_restore(flags: c_uint);
    /// Whether `PF_MEMALLOC_NOIO` is set on the current task.
    pub(crate) fn rloop_memalloc_noio_active() -> bool;
}
