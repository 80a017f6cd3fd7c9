// SPDX-License-Identifier: GPL-2.0

//! References to this module.
//!
//! C header: [`include/linux/module.h`](srctree/include/linux/module.h)
//!
//! A bound loop device holds its module, as loop.c does with
//! `__module_get()`, so that the module cannot be unloaded while a device
//! still serves a backing file, even after every opener has gone.

/// This module's `struct module` (`THIS_MODULE` in C). The `module!` macro
/// gives it as a static before Linux 7.3, and as a constant of
/// `ModuleMetadata` from 7.3 on.
pub(crate) const fn this_module() -> *mut kernel::bindings::module {
    #[cfg(not(rloop_linux_7_3))]
    let module = crate::THIS_MODULE.as_ptr();
    #[cfg(rloop_linux_7_3)]
    let module = <crate::LocalModule as kernel::ModuleMetadata>::THIS_MODULE.as_ptr();
    module
}

/// A reference to this module, dropped on drop.
///
/// # Invariants
///
/// The holder owns one reference to `THIS_MODULE`.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference to this module. Only call it where the module is
    /// already held, such as in a file or block device operation, whose
    /// `owner` pins the module.
    pub(crate) fn get() -> Self {
        // SAFETY: The module is live: the caller runs its code from an
        // operation that holds it.
        unsafe { kernel::bindings::__module_get(this_module()) };
        // INVARIANT: Taken above.
        Self(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, we own one reference.
        unsafe { kernel::bindings::module_put(this_module()) };
    }
}
