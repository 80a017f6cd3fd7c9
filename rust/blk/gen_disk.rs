// SPDX-License-Identifier: GPL-2.0

//! Generic disks with driver-defined `block_device_operations`.
//!
//! C headers: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h),
//! [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use super::{
    bdev::{BlockDevice, OpenMode},
    disk::{Disk, OpenLockedDisk},
    limits::Limits,
    tag_set::{Operations, TagSet},
};
use crate::{helpers_ffi as ffi, module_ref::AssertSync};
use core::{fmt, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, from_result, to_result},
    ffi::{c_int, c_uint, c_ulong, c_void},
    prelude::*,
    str::NullTerminatedFormatter,
    sync::Arc,
    types::{ForeignOwnable, ScopeGuard},
};

/// The `block_device_operations` of a disk of `Self`.
pub(crate) trait DiskOperations: Operations {
    /// Data of each disk (`gendisk->private_data`), released with the disk.
    type DiskData: ForeignOwnable + Send + Sync;

    /// A block device of the disk is opened.
    fn open(disk: &Disk<Self>, mode: OpenMode) -> Result;

    /// The last opener of the disk closed it. Runs under the disk's
    /// `open_mutex`, which `disk` proves.
    fn release(disk: &OpenLockedDisk<'_, Self>);

    /// A device-specific ioctl.
    fn ioctl(bdev: &BlockDevice<Self>, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32>;

    /// A device-specific ioctl from a 32-bit process. `arg` is as the
    /// caller passed it: a pointer needs [`compat_ptr`], an integer must
    /// not have it.
    fn compat_ioctl(bdev: &BlockDevice<Self>, mode: OpenMode, cmd: u32, arg: u32) -> Result<i32>;
}

/// `compat_ptr()`: the user address a 32-bit process means by `uptr`.
pub(crate) fn compat_ptr(uptr: u32) -> usize {
    // SAFETY: `compat_ptr()` only converts a number.
    unsafe { ffi::rloop_compat_ptr(uptr) as usize }
}

/// Settings of a new disk.
pub(crate) struct DiskParams<'a> {
    /// Block major number.
    pub(crate) major: u32,
    /// First minor number.
    pub(crate) first_minor: u32,
    /// Number of minors: the whole disk and its partitions.
    pub(crate) minors: u32,
    /// Disk name, such as `loop0`.
    pub(crate) name: fmt::Arguments<'a>,
    /// Whether the kernel scans the disk for partitions.
    pub(crate) partition_scan: bool,
    /// Whether the disk reports media changes with uevents.
    pub(crate) media_change_events: bool,
}

/// A disk of `T`, added to the system until dropped.
///
/// # Invariants
///
/// `disk` was allocated on `_tag_set` by `__blk_mq_alloc_disk()` with
/// `T::QueueData` as `queuedata`, has `T::DiskData` as `private_data` and
/// the operations of `T`, and was added with `add_disk()`.
pub(crate) struct GenDisk<T: DiskOperations> {
    disk: NonNull<bindings::gendisk>,
    _tag_set: Arc<TagSet<T>>,
}

// SAFETY: The disk may be deleted from any thread.
unsafe impl<T: DiskOperations> Send for GenDisk<T> {}
// SAFETY: `&GenDisk` only gives out `&Disk`, whose methods are thread-safe.
unsafe impl<T: DiskOperations> Sync for GenDisk<T> {}

impl<T: DiskOperations> GenDisk<T> {
    /// Allocates a disk on `tag_set`, sets it up and adds it.
    pub(crate) fn new(
        tag_set: Arc<TagSet<T>>,
        queue_data: T::QueueData,
        disk_data: T::DiskData,
        params: DiskParams<'_>,
        limits: impl FnOnce(&mut Limits),
    ) -> Result<Self> {
        let mut lim = Limits(pin_init::zeroed());
        limits(&mut lim);
        // Both data pointers live in `private_data`, which `free_disk` can
        // read: by then the queue, and its `queuedata`, may be freed.
        let private = KBox::new(
            DiskPrivate {
                disk_data: core::ptr::null_mut(),
                queue_data: core::ptr::null_mut(),
            },
            GFP_KERNEL,
        )?;
        let queue_data = ScopeGuard::new_with_data(queue_data.into_foreign(), |data| {
            // SAFETY: `data` came from `into_foreign` just above, and no
            // disk was allocated with it.
            drop(unsafe { T::QueueData::from_foreign(data) });
        });
        // SAFETY: The tag set is live; `lim` is a valid limits template.
        let disk = from_err_ptr(unsafe {
            bindings::__blk_mq_alloc_disk(
                tag_set.as_raw(),
                &mut lim.0,
                *queue_data,
                kernel::static_lock_class!().as_ptr(),
            )
        })?;
        // The queue has it; `private_data` will own it.
        let queue_data = queue_data.dismiss();
        // SAFETY: `disk` is a new, not yet added disk that we own.
        unsafe {
            (*disk).major = params.major as c_int;
            (*disk).first_minor = params.first_minor as c_int;
            (*disk).minors = params.minors as c_int;
            (*disk).fops = &DiskVTable::<T>::TABLE.0;
            let mut private = private;
            private.disk_data = disk_data.into_foreign();
            private.queue_data = queue_data;
            (*disk).private_data = KBox::into_raw(private).cast();
            if params.media_change_events {
                ffi::rloop_disk_enable_media_change_events(disk);
            }
            ffi::rloop_disk_set_partition_scan(disk, params.partition_scan);
        }
        let not_added = ScopeGuard::new(move || {
            // SAFETY: The disk was never added, so `free_disk` will not run
            // for it: release its data here, then the disk itself.
            unsafe {
                DiskPrivate::release::<T>((*disk).private_data);
                bindings::put_disk(disk);
            }
        });
        // SAFETY: The disk is ours until added.
        let buf = unsafe { &mut (*disk).disk_name };
        let mut name = NullTerminatedFormatter::new(buf).ok_or(EINVAL)?;
        fmt::Write::write_fmt(&mut name, params.name).map_err(|_| EINVAL)?;
        // SAFETY: The disk is set up; `add_disk` registers it.
        to_result(unsafe {
            bindings::device_add_disk(core::ptr::null_mut(), disk, core::ptr::null_mut())
        })?;
        not_added.dismiss();
        // INVARIANT: Set up and added above.
        Ok(Self {
            // SAFETY: `from_err_ptr` returned a valid pointer.
            disk: unsafe { NonNull::new_unchecked(disk) },
            _tag_set: tag_set,
        })
    }

    /// The disk.
    pub(crate) fn disk(&self) -> &Disk<T> {
        // SAFETY: By the type invariant, the disk was set up for `T` and
        // added; it is freed no earlier than `drop`, after this borrow.
        unsafe { Disk::from_raw(self.disk.as_ptr()) }
    }
}

impl<T: DiskOperations> Drop for GenDisk<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the disk was added; it is deleted
        // once and our reference dropped, which calls `free_disk` when the
        // last opener is gone.
        unsafe {
            bindings::del_gendisk(self.disk.as_ptr());
            bindings::put_disk(self.disk.as_ptr());
        }
    }
}

/// What `gendisk->private_data` points to: the disk's and the queue's data,
/// as `into_foreign()` returned them.
pub(super) struct DiskPrivate {
    pub(super) disk_data: *mut c_void,
    pub(super) queue_data: *mut c_void,
}

impl DiskPrivate {
    /// Drops both data and the `DiskPrivate`.
    ///
    /// # Safety
    ///
    /// `private` is the `private_data` of a disk set up by `GenDisk::new`
    /// for `T`, released once, after the last use of the data.
    unsafe fn release<T: DiskOperations>(private: *mut c_void) {
        // SAFETY: By the caller, `private` came from `KBox::into_raw` and
        // holds foreign pointers of `T`'s data that nothing uses any more.
        unsafe {
            let private = KBox::from_raw(private.cast::<DiskPrivate>());
            drop(T::DiskData::from_foreign(private.disk_data));
            drop(T::QueueData::from_foreign(private.queue_data));
        }
    }
}

struct DiskVTable<T: DiskOperations>(PhantomData<T>);

impl<T: DiskOperations> DiskVTable<T> {
    const TABLE: AssertSync<bindings::block_device_operations> =
        AssertSync(bindings::block_device_operations {
            owner: crate::module_ref::this_module(),
            open: Some(Self::open),
            release: Some(Self::release),
            ioctl: Some(Self::ioctl),
            compat_ioctl: Some(Self::compat_ioctl),
            free_disk: Some(Self::free_disk),
            ..pin_init::zeroed()
        });

    /// # Safety
    ///
    /// Called by the block layer for a disk of `T` set up by
    /// [`GenDisk::new`], which it does not free during the call.
    unsafe extern "C" fn open(disk: *mut bindings::gendisk, mode: bindings::blk_mode_t) -> c_int {
        // SAFETY: By this function's contract, the disk meets the `Disk`
        // invariants during the call.
        let disk = unsafe { Disk::<T>::from_raw(disk) };
        from_result(|| T::open(disk, OpenMode(mode)).map(|()| 0))
    }

    /// # Safety
    ///
    /// As for `open`, with the disk's `open_mutex` held by the caller.
    unsafe extern "C" fn release(disk: *mut bindings::gendisk) {
        // SAFETY: As in `open`.
        let disk = unsafe { Disk::<T>::from_raw(disk) };
        // SAFETY: By this function's contract, `open_mutex` is held for
        // the call.
        T::release(&unsafe { OpenLockedDisk::new(disk) });
    }

    /// # Safety
    ///
    /// Called by the block layer, in an ioctl, for a block device of a disk
    /// of `T` that stays open during the call.
    unsafe extern "C" fn ioctl(
        bdev: *mut bindings::block_device,
        mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_int {
        // SAFETY: `BlockDevice` is a transparent wrapper; by this function's
        // contract the device meets its invariants during the call.
        let bdev = unsafe { &*bdev.cast::<BlockDevice<T>>() };
        from_result(|| T::ioctl(bdev, OpenMode(mode), cmd, arg))
    }

    /// # Safety
    ///
    /// As for `ioctl`, from a 32-bit process.
    unsafe extern "C" fn compat_ioctl(
        bdev: *mut bindings::block_device,
        mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_int {
        // SAFETY: As in `ioctl`.
        let bdev = unsafe { &*bdev.cast::<BlockDevice<T>>() };
        // `compat_sys_ioctl()` took it as a `compat_ulong_t`.
        from_result(|| T::compat_ioctl(bdev, OpenMode(mode), cmd, arg as u32))
    }

    /// # Safety
    ///
    /// Called once by the block layer when the last reference to a disk of
    /// `T` is dropped.
    unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
        // SAFETY: The data were set up by `GenDisk::new` and are released
        // only here; nothing uses the disk any more.
        unsafe { DiskPrivate::release::<T>((*disk).private_data) };
    }
}
