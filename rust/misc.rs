// SPDX-License-Identifier: GPL-2.0

//! Misc character devices with a fixed minor number.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)
//!
//! `kernel::miscdevice` of 7.2 registers only dynamic minors and leaves
//! `file_operations.owner` unset, so a module could be unloaded under an
//! open file. `/dev/loop-control` needs minor 237 (`LOOP_CTRL_MINOR`, which
//! `MODULE_ALIAS_MISCDEV` autoloading relies on) and must pin the module
//! while open. [`FixedMiscDevice`] does both, for devices that only take
//! ioctls.

use crate::module_ref::AssertSync;
use core::{marker::PhantomData, pin::Pin};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_long, c_uint, c_ulong},
    prelude::*,
    str::CStr,
    types::{ForeignOwnable, Opaque},
};

/// The ioctls of a [`FixedMiscDevice`].
pub(crate) trait MiscIoctl: Send + Sync + 'static {
    /// Data the handler gets, owned by the registration.
    type Data: ForeignOwnable + Send + Sync;

    /// Handles `cmd` with argument `arg`, from native and 32-bit callers
    /// alike (the loop control ioctls take integers, not pointers).
    fn ioctl(
        data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        cmd: u32,
        arg: usize,
    ) -> Result<isize>;
}

/// A registered misc device, deregistered on drop.
///
/// # Invariants
///
/// `inner` is registered with `misc_register()` and the operations of `T`,
/// and `data` holds `T::Data::into_foreign()` until `inner` is deregistered.
#[pin_data(PinnedDrop)]
pub(crate) struct FixedMiscDevice<T: MiscIoctl> {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    data: *mut kernel::ffi::c_void,
    _p: PhantomData<T>,
}

// SAFETY: The registration may be dropped on any thread; `data` is a
// `T::Data`, which is `Send + Sync`.
unsafe impl<T: MiscIoctl> Send for FixedMiscDevice<T> {}
// SAFETY: `&FixedMiscDevice` gives no access to anything.
unsafe impl<T: MiscIoctl> Sync for FixedMiscDevice<T> {}

impl<T: MiscIoctl> FixedMiscDevice<T> {
    /// Registers `/dev/<name>` as misc device `minor`.
    pub(crate) fn register(
        name: &'static CStr,
        minor: u32,
        data: T::Data,
    ) -> impl PinInit<Self, Error> {
        // `data` comes first: once registered, the device can be opened.
        // It becomes foreign only when the initializer runs, so that an
        // initializer dropped unrun does not leak it.
        try_pin_init!(&this in Self {
            data: data.into_foreign(),
            _p: PhantomData,
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                // SAFETY: `data` was initialised above; reading it through
                // the raw pointer creates no reference into `Self`.
                let foreign = unsafe { (*this.as_ptr()).data };
                // SAFETY: `slot` is valid for writes and pinned.
                unsafe {
                    slot.write(bindings::miscdevice {
                        minor: minor as i32,
                        name: name.as_char_ptr(),
                        fops: &VTable::<T>::FOPS.0,
                        ..pin_init::zeroed()
                    })
                };
                // SAFETY: `slot` is a filled-in, pinned misc device.
                to_result(unsafe { bindings::misc_register(slot) }).inspect_err(|_| {
                    // SAFETY: `data` came from `into_foreign` and was never
                    // handed out.
                    drop(unsafe { T::Data::from_foreign(foreign) });
                })
            }),
        })
    }
}

#[pinned_drop]
impl<T: MiscIoctl> PinnedDrop for FixedMiscDevice<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the device is registered. After
        // `misc_deregister()` no new file opens it, and files still open
        // hold the module, so no ioctl runs once the module's data is gone.
        unsafe { bindings::misc_deregister(self.inner.get()) };
        // SAFETY: `data` came from `into_foreign`; no file can reach it any
        // more: open files pin the module, which is being unloaded only
        // after they are all closed.
        drop(unsafe { T::Data::from_foreign(self.data) });
    }
}

struct VTable<T: MiscIoctl>(PhantomData<T>);

impl<T: MiscIoctl> VTable<T> {
    const FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
        owner: crate::module_ref::this_module(),
        open: Some(bindings::nonseekable_open),
        llseek: Some(bindings::noop_llseek),
        unlocked_ioctl: Some(Self::ioctl),
        compat_ioctl: Some(Self::ioctl),
        ..pin_init::zeroed()
    });

    /// # Safety
    ///
    /// Called by the VFS for a file opened on a [`FixedMiscDevice<T>`]:
    /// `misc_open()` stored the `struct miscdevice` in `private_data`.
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: `private_data` is the `inner` field of a registered
        // `FixedMiscDevice<T>`, which outlives every open file.
        let data = unsafe {
            let misc = (*file).private_data.cast::<Opaque<bindings::miscdevice>>();
            let this = kernel::container_of!(misc, FixedMiscDevice<T>, inner);
            T::Data::borrow((*this).data)
        };
        match T::ioctl(data, cmd, arg) {
            Ok(ret) => ret as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }
}
