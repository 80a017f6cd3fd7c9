// SPDX-License-Identifier: GPL-2.0

//! Capability checks of the current task.
//!
//! C header: [`include/linux/capability.h`](srctree/include/linux/capability.h)

/// Whether the current task has `CAP_SYS_ADMIN` (`capable()`), which is
/// also recorded for auditing, as in C.
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable()` only reads the current task's credentials.
    unsafe { kernel::bindings::capable(kernel::bindings::CAP_SYS_ADMIN as i32) }
}
