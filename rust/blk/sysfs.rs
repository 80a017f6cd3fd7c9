// SPDX-License-Identifier: GPL-2.0

//! Attribute groups in a disk's sysfs directory.
//!
//! C header: [`include/linux/sysfs.h`](srctree/include/linux/sysfs.h)
//!
//! loop.c creates `/sys/block/loopN/loop/` when a device is bound and
//! removes it when the device is unbound; user space (losetup, udev)
//! decides from its presence whether a device is in use. An
//! [`AttributeGroup`] describes such a directory once per driver, and a
//! [`GroupRegistration`] shows it on one disk until dropped.

use super::{disk::Disk, gen_disk::DiskOperations};
use crate::helpers_ffi as ffi;
use core::{fmt, marker::PhantomData, ptr::NonNull};
use kernel::{bindings, error::to_result, ffi::c_char, prelude::*, str::CStr, sync::Arc};

/// Size of the buffer a sysfs `show()` fills.
const SYSFS_BUF_SIZE: usize = bindings::PAGE_SIZE;

/// One attribute of a group.
pub(crate) struct AttributeSpec {
    /// The file's name.
    pub(crate) name: &'static CStr,
    /// Writable by root, through [`DiskAttributes::store`]; else read-only.
    pub(crate) writable: bool,
}

/// The attributes of a disk of `Self`.
pub(crate) trait DiskAttributes: DiskOperations {
    /// Name of the group's directory.
    const GROUP_NAME: &'static CStr;
    /// The attributes; [`DiskAttributes::show`] and
    /// [`DiskAttributes::store`] get an index in this table.
    const ATTRS: &'static [AttributeSpec];

    /// Writes the value of attribute `index` of `disk` into `out`.
    fn show(disk: &Disk<Self>, index: usize, out: &mut SysfsOutput<'_>) -> Result;

    /// Takes `input`, written to the writable attribute `index` of `disk`.
    /// On success the whole write is consumed.
    fn store(_disk: &Disk<Self>, _index: usize, _input: &[u8]) -> Result {
        Err(EACCES)
    }
}

/// The page a sysfs `show()` fills.
pub(crate) struct SysfsOutput<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl SysfsOutput<'_> {
    /// Appends raw bytes, such as a path, which need not be UTF-8.
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) -> Result {
        let end = self.len.checked_add(bytes.len()).ok_or(EFBIG)?;
        // Keep room for the terminating NUL that sysfs expects.
        if end >= self.buf.len() {
            return Err(EFBIG);
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

impl fmt::Write for SysfsOutput<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// One attribute with its index in [`DiskAttributes::ATTRS`].
#[repr(C)]
struct Attribute {
    dev_attr: bindings::device_attribute,
    index: usize,
}

/// The attribute group of `T`, shared by all its disks.
///
/// # Invariants
///
/// `group.attrs` points to the null-terminated array `_pointers`, whose
/// entries point to the attributes in `_attrs`. Neither vector is resized
/// after construction, so the pointers stay valid while `self` lives.
pub(crate) struct AttributeGroup<T: DiskAttributes> {
    // Only referenced through `group`, which points into them.
    _attrs: KVec<Attribute>,
    _pointers: KVec<*mut bindings::attribute>,
    group: KBox<bindings::attribute_group>,
    _p: PhantomData<T>,
}

// SAFETY: The group is immutable after construction and only read by sysfs.
unsafe impl<T: DiskAttributes> Send for AttributeGroup<T> {}
// SAFETY: See `Send`.
unsafe impl<T: DiskAttributes> Sync for AttributeGroup<T> {}

impl<T: DiskAttributes> AttributeGroup<T> {
    /// Builds the group of `T`.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let n = T::ATTRS.len();
        let mut attrs = KVec::with_capacity(n, GFP_KERNEL)?;
        for (index, spec) in T::ATTRS.iter().enumerate() {
            attrs.push(
                Attribute {
                    dev_attr: pin_init::zeroed(),
                    index,
                },
                GFP_KERNEL,
            )?;
            let attr = &mut attrs[index];
            let store = spec.writable.then_some(store::<T> as ffi::DeviceAttrStore);
            // SAFETY: `attr.dev_attr` is writable; the name is static.
            unsafe {
                ffi::rloop_device_attr_init(
                    &mut attr.dev_attr,
                    spec.name.as_char_ptr(),
                    show::<T>,
                    store,
                )
            };
        }
        let mut pointers = KVec::with_capacity(n + 1, GFP_KERNEL)?;
        for attr in attrs.iter_mut() {
            pointers.push(&raw mut attr.dev_attr.attr, GFP_KERNEL)?;
        }
        pointers.push(core::ptr::null_mut(), GFP_KERNEL)?;
        let group = KBox::new(
            bindings::attribute_group {
                name: T::GROUP_NAME.as_char_ptr(),
                __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
                    attrs: pointers.as_mut_ptr(),
                },
                ..pin_init::zeroed()
            },
            GFP_KERNEL,
        )?;
        // INVARIANT: Both vectors are full to capacity and never resized.
        Ok(Arc::new(
            Self {
                _attrs: attrs,
                _pointers: pointers,
                group,
                _p: PhantomData,
            },
            GFP_KERNEL,
        )?)
    }
}

/// The group of `T` shown on one disk, removed on drop.
///
/// # Invariants
///
/// The group was created on the kobject of `dev`, a referenced device of a
/// disk of `T`.
pub(crate) struct GroupRegistration<T: DiskAttributes> {
    group: Arc<AttributeGroup<T>>,
    dev: NonNull<bindings::device>,
}

// SAFETY: sysfs groups may be removed from any thread; the device is
// reference counted.
unsafe impl<T: DiskAttributes> Send for GroupRegistration<T> {}
// SAFETY: `&GroupRegistration` gives no access to anything.
unsafe impl<T: DiskAttributes> Sync for GroupRegistration<T> {}

impl<T: DiskAttributes> GroupRegistration<T> {
    /// Creates the group's directory on `disk`. Remove it (drop the
    /// registration) before the disk is deleted.
    pub(crate) fn new(disk: &Disk<T>, group: Arc<AttributeGroup<T>>) -> Result<Self> {
        let dev = disk.device();
        // SAFETY: The device of a live disk is valid; the group outlives the
        // directory, since `self` keeps it alive until it is removed.
        to_result(unsafe { bindings::sysfs_create_group(&raw mut (*dev).kobj, &*group.group) })?;
        // SAFETY: `dev` is valid; the reference is dropped on drop.
        unsafe { bindings::get_device(dev) };
        // INVARIANT: Created on `dev`, which is referenced.
        Ok(Self {
            group,
            // SAFETY: `disk.device()` is never null.
            dev: unsafe { NonNull::new_unchecked(dev) },
        })
    }
}

impl<T: DiskAttributes> Drop for GroupRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the group exists on the kobject of
        // the referenced `dev`.
        unsafe {
            bindings::sysfs_remove_group(&raw mut (*self.dev.as_ptr()).kobj, &*self.group.group);
            bindings::put_device(self.dev.as_ptr());
        }
    }
}

/// # Safety
///
/// Called by sysfs for an attribute of an [`AttributeGroup<T>`] on the
/// device of a live disk of `T`, with `buf` a page-sized buffer.
unsafe extern "C" fn show<T: DiskAttributes>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: `attr` is the first field of an `Attribute` (`repr(C)`).
    let index = unsafe { (*attr.cast::<Attribute>()).index };
    // SAFETY: The attribute sits on a disk of `T`, live during the call.
    let disk = unsafe { Disk::<T>::from_raw(ffi::rloop_dev_to_disk(dev)) };
    // SAFETY: sysfs passes a zeroed buffer of `SYSFS_BUF_SIZE` bytes that
    // nothing else uses during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), SYSFS_BUF_SIZE) };
    let mut out = SysfsOutput { buf, len: 0 };
    match T::show(disk, index, &mut out) {
        Ok(()) => out.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by sysfs for a writable attribute of an [`AttributeGroup<T>`] on
/// the device of a live disk of `T`, with `buf` holding `count` bytes.
unsafe extern "C" fn store<T: DiskAttributes>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: `attr` is the first field of an `Attribute` (`repr(C)`).
    let index = unsafe { (*attr.cast::<Attribute>()).index };
    // SAFETY: The attribute sits on a disk of `T`, live during the call.
    let disk = unsafe { Disk::<T>::from_raw(ffi::rloop_dev_to_disk(dev)) };
    // SAFETY: sysfs passes `count` readable bytes, unchanged during the call.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    match T::store(disk, index, input) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}
