// SPDX-License-Identifier: GPL-2.0

//! Block devices as an ioctl sees them, and exclusive claims.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

use super::{disk::Disk, gen_disk::DiskOperations};
use crate::{helpers_ffi as ffi, module_ref::ModuleHeld};
use core::marker::PhantomData;
use kernel::{bindings, error::to_result, ffi::c_void, prelude::*, types::Opaque};

/// How a block device was opened (`blk_mode_t`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenMode(pub(super) u32);

impl OpenMode {
    /// Opened for writing (`BLK_OPEN_WRITE`).
    pub(crate) fn write(self) -> bool {
        self.0 & ffi::BLK_OPEN_WRITE != 0
    }

    /// Opened exclusively (`BLK_OPEN_EXCL`).
    pub(crate) fn exclusive(self) -> bool {
        self.0 & ffi::BLK_OPEN_EXCL != 0
    }
}

/// Proof that the current task runs a block device ioctl: a system call,
/// in which no `fdget_pos()` section is active on the task.
///
/// # Invariants
///
/// Exists only during a `block_device_operations` ioctl, on its task (the
/// type is not `Send`).
#[derive(Clone, Copy)]
pub(crate) struct InIoctl<'a>(PhantomData<(&'a (), *mut ())>);

/// A block device of a disk of `T`, as an ioctl sees it.
///
/// # Invariants
///
/// While a `&BlockDevice<T>` exists:
///
/// - the wrapped `struct block_device` is open: the block layer lent it, or
///   a partition of its disk, to an ioctl of `T` (only `DiskVTable` and
///   [`BlockDevice::whole`] make one), which cannot close it;
/// - its `bd_disk` meets the invariants of [`Disk<T>`].
#[repr(transparent)]
pub(crate) struct BlockDevice<T: DiskOperations>(Opaque<bindings::block_device>, PhantomData<T>);

impl<T: DiskOperations> BlockDevice<T> {
    fn as_raw(&self) -> *mut bindings::block_device {
        self.0.get()
    }

    /// The disk.
    pub(crate) fn disk(&self) -> &Disk<T> {
        // SAFETY: By the second invariant, `bd_disk` meets those of `Disk`.
        unsafe { Disk::from_raw((*self.as_raw()).bd_disk) }
    }

    /// Proof that the caller runs the ioctl that lent this device.
    pub(crate) fn in_ioctl(&self) -> InIoctl<'_> {
        // INVARIANT: A `BlockDevice` is only lent to an ioctl, and is not
        // `Send` or `Sync`, so the ioctl runs on this task while it lives.
        InIoctl(PhantomData)
    }

    /// Proof that this module is held while the device is borrowed.
    pub(crate) fn module_held(&self) -> ModuleHeld<'_> {
        // SAFETY: An open block device holds its disk's `fops->owner`, this
        // module (`DiskVTable::TABLE`), until it is closed, which cannot
        // happen during the ioctl that lent `self`.
        unsafe { ModuleHeld::assume() }
    }

    /// The block device of the whole disk (`bdev_whole()`): `self` if it is
    /// not a partition. Its page cache is not a partition's: an ioctl issued
    /// through a partition that changes how the whole disk maps to the
    /// backing store must write back and drop the whole disk's cache.
    pub(crate) fn whole(&self) -> &BlockDevice<T> {
        // INVARIANT: `blkdev_get_part()` opens the whole disk before a
        // partition and closes it after, so it is open while `self` is; it
        // has the same `bd_disk`.
        // SAFETY: `bd_disk` is valid (invariant: open) and so is its `part0`
        // (`Disk` invariant: live); `Self` is a transparent wrapper.
        unsafe { &*(*(*self.as_raw()).bd_disk).part0.cast::<Self>() }
    }

    /// The device number.
    pub(crate) fn dev(&self) -> u32 {
        // SAFETY: The device is valid (invariant: open).
        unsafe { (*self.as_raw()).bd_dev }
    }

    /// Writes back the device's dirty page cache (`sync_blockdev()`).
    pub(crate) fn sync(&self) {
        // SAFETY: `sync_blockdev` needs an open device (invariant: open).
        unsafe { bindings::sync_blockdev(self.as_raw()) };
    }

    /// Drops the device's clean page cache (`invalidate_bdev()`).
    pub(crate) fn invalidate(&self) {
        // SAFETY: `invalidate_bdev` needs an open device (invariant: open).
        unsafe { bindings::invalidate_bdev(self.as_raw()) };
    }

    /// Claims the device as a temporary exclusive holder, unless the opener
    /// already holds it exclusively (`bd_prepare_to_claim()`). The claim is
    /// abandoned when the guard is dropped.
    pub(crate) fn claim(&self, mode: OpenMode) -> Result<BdevClaim<'_, T>> {
        if mode.exclusive() {
            return Ok(BdevClaim { bdev: None });
        }
        // SAFETY: The device is open (invariant); the holder is an address
        // unique to this module; the guard abandons the claim.
        to_result(unsafe {
            bindings::bd_prepare_to_claim(self.as_raw(), claim_holder(), core::ptr::null())
        })?;
        Ok(BdevClaim { bdev: Some(self) })
    }
}

fn claim_holder() -> *mut c_void {
    static HOLDER: u8 = 0;
    core::ptr::from_ref(&HOLDER).cast_mut().cast()
}

/// A pending exclusive claim of a block device.
///
/// # Invariants
///
/// If `bdev` is set, this guard prepared a claim of it with
/// `claim_holder()` that is still pending.
pub(crate) struct BdevClaim<'a, T: DiskOperations> {
    bdev: Option<&'a BlockDevice<T>>,
}

impl<T: DiskOperations> Drop for BdevClaim<'_, T> {
    fn drop(&mut self) {
        if let Some(bdev) = self.bdev {
            // SAFETY: By the type invariant, the claim is pending with this
            // holder; the device is open while it is borrowed.
            unsafe { bindings::bd_abort_claiming(bdev.as_raw(), claim_holder()) };
        }
    }
}
