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

/// A C operations table of this module (its `owner`), shared with C.
///
/// Such tables hold raw pointers, so they are not `Sync` by themselves,
/// though sharing them is: they are plain data, only read.
#[repr(transparent)]
pub(crate) struct AssertSync<T: OpsTable>(pub(crate) T);

// SAFETY: By `OpsTable`, `T` has no interior mutability, so a shared
// `AssertSync<T>` can only be read, from any thread.
unsafe impl<T: OpsTable> Sync for AssertSync<T> {}

/// A C operations table type.
///
/// # Safety
///
/// The type has no interior mutability: function pointers, raw pointers
/// and integers only.
pub(crate) unsafe trait OpsTable {}

// SAFETY: Function pointers and the `owner` pointer only.
unsafe impl OpsTable for kernel::bindings::file_operations {}
// SAFETY: Function pointers and the `owner` pointer only.
unsafe impl OpsTable for kernel::bindings::block_device_operations {}

/// Proof that this module is held for `'a`, for example by the `owner` of
/// an operations table while one of its operations runs.
///
/// # Invariants
///
/// This module cannot be unloaded during `'a`.
#[derive(Clone, Copy)]
pub(crate) struct ModuleHeld<'a>(core::marker::PhantomData<&'a ()>);

impl ModuleHeld<'_> {
    /// # Safety
    ///
    /// This module must stay held for the lifetime chosen by the caller.
    pub(crate) unsafe fn assume() -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self(core::marker::PhantomData)
    }
}

/// A reference to this module, dropped on drop.
///
/// # Invariants
///
/// The holder owns one reference to `THIS_MODULE`.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes another reference to this module, which `_held` proves is
    /// already held (`__module_get()`).
    pub(crate) fn get(_held: ModuleHeld<'_>) -> Self {
        // SAFETY: By the invariant of `ModuleHeld`, the module is live.
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
