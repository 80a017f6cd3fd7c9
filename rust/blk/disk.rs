// SPDX-License-Identifier: GPL-2.0

//! Disks as their callbacks see them.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

use super::gen_disk::{DiskOperations, DiskPrivate};
use crate::{helpers_ffi as ffi, memalloc::NoIoScope};
use core::marker::PhantomData;
use kernel::{
    bindings,
    error::to_result,
    ffi::c_int,
    prelude::*,
    sync::Mutex,
    types::{ForeignOwnable, Opaque},
};

/// A disk of `T`, as seen from its callbacks.
///
/// # Invariants
///
/// While a `&Disk<T>` exists, the `struct gendisk` it wraps:
///
/// - is live: set up by [`GenDisk::new`](super::GenDisk::new) for `T` and
///   not yet freed, so its `queue`, its whole-disk block device `part0`,
///   their embedded locks and the tag set of the queue are valid;
/// - has a `DiskPrivate` of `T` in `private_data`, which `free_disk`
///   releases only after the last callback.
#[repr(transparent)]
pub(crate) struct Disk<T: DiskOperations>(Opaque<bindings::gendisk>, PhantomData<T>);

impl<T: DiskOperations> Disk<T> {
    /// # Safety
    ///
    /// `ptr` must be a live disk of `T` for the lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::gendisk) -> &'a Self {
        // SAFETY: `Disk` is a transparent wrapper; the caller guarantees
        // the invariants for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// The raw disk.
    pub(crate) fn as_raw(&self) -> *mut bindings::gendisk {
        self.0.get()
    }

    /// The disk's device (`disk_to_dev()`).
    pub(super) fn device(&self) -> *mut bindings::device {
        // SAFETY: `part0` is valid (invariant: live); no reference is made.
        unsafe { &raw mut (*(*self.as_raw()).part0).bd_device }
    }

    pub(super) fn queue(&self) -> *mut bindings::request_queue {
        // SAFETY: The disk is valid (invariant: live).
        unsafe { (*self.as_raw()).queue }
    }

    fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: As in `device`.
        unsafe { &raw mut (*(*self.as_raw()).part0).bd_device.kobj }
    }

    /// The disk's data.
    pub(crate) fn data(&self) -> <T::DiskData as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: By the second invariant, `private_data` is a `DiskPrivate`
        // whose `disk_data` came from `T::DiskData::into_foreign()` and is
        // released only after `&self` is gone.
        unsafe {
            let private = (*self.as_raw()).private_data.cast::<DiskPrivate>();
            T::DiskData::borrow((*private).disk_data)
        }
    }

    /// Number of hardware queues of the disk's request queue.
    pub(crate) fn nr_hw_queues(&self) -> u32 {
        // SAFETY: The queue is valid (invariant: live). `nr_hw_queues`
        // changes only with the queue frozen; a stale read is harmless.
        unsafe { (*self.queue()).nr_hw_queues }
    }

    /// Gives the disk's tag set, and so its request queue, `nr` hardware
    /// queues (`blk_mq_update_nr_hw_queues()`). blk-mq freezes the queue
    /// for the change, so this waits for the requests in flight: it must
    /// not be called where they could wait for the caller.
    pub(crate) fn set_nr_hw_queues(&self, nr: u32) {
        let nr = c_int::try_from(nr).unwrap_or(c_int::MAX);
        // SAFETY: The queue and its tag set are valid (invariant: live);
        // blk-mq serialises updates of a tag set itself.
        unsafe { bindings::blk_mq_update_nr_hw_queues((*self.queue()).tag_set, nr) };
    }

    /// Number of current openers (`disk_openers()`).
    pub(crate) fn openers(&self) -> u32 {
        // SAFETY: The disk is valid (invariant: live); this reads a counter.
        unsafe { ffi::rloop_disk_openers(self.as_raw()) }
    }

    /// Sets the capacity and notifies user space of a change (`RESIZE`
    /// uevent); without a change, sends a plain `CHANGE` uevent, as loop.c
    /// does.
    pub(crate) fn set_capacity_and_notify(&self, sectors: u64) {
        // SAFETY: The disk is valid (invariant: live).
        if !unsafe { bindings::set_capacity_and_notify(self.as_raw(), sectors) } {
            self.uevent_change();
        }
    }

    /// Sends a `KOBJ_CHANGE` uevent for the disk.
    pub(crate) fn uevent_change(&self) {
        // SAFETY: The whole-disk device's kobject is valid (invariant:
        // live); `kobject_uevent` tolerates one no longer registered.
        unsafe { bindings::kobject_uevent(self.kobj(), bindings::kobject_action_KOBJ_CHANGE) };
    }

    /// Holds back or releases the disk's uevents.
    pub(crate) fn suppress_uevents(&self, suppress: bool) {
        // SAFETY: The disk and `part0` are valid (invariant: live).
        unsafe { ffi::rloop_disk_suppress_uevents(self.as_raw(), suppress) };
    }

    /// Reports a media change (`disk_force_media_change()`).
    pub(crate) fn force_media_change(&self) {
        // SAFETY: The disk is valid (invariant: live).
        unsafe { bindings::disk_force_media_change(self.as_raw()) };
    }

    /// Makes the disk read-only or writable.
    pub(crate) fn set_read_only(&self, read_only: bool) {
        // SAFETY: The disk and `part0` are valid (invariant: live).
        unsafe { bindings::set_disk_ro(self.as_raw(), read_only) };
    }

    /// Drops the disk's cached data and sets its capacity to 0.
    pub(crate) fn invalidate(&self) {
        // SAFETY: The disk and `part0` are valid (invariant: live).
        unsafe { bindings::invalidate_disk(self.as_raw()) };
    }

    /// Allows or suppresses partition scanning.
    pub(crate) fn set_partition_scan(&self, on: bool) {
        // SAFETY: The disk is valid (invariant: live); this sets a flag.
        unsafe { ffi::rloop_disk_set_partition_scan(self.as_raw(), on) };
    }

    /// Rescans partitions; the caller must not hold the disk's
    /// `open_mutex`.
    pub(crate) fn rescan_partitions(&self) -> Result {
        // SAFETY: `open_mutex` is initialised with the disk and valid
        // while it is (invariant: live).
        let open_mutex = unsafe { Mutex::from_raw(&raw mut (*self.as_raw()).open_mutex) };
        let _guard = open_mutex.lock();
        // SAFETY: `open_mutex` is held until `_guard` drops, after the last
        // use of the `OpenLockedDisk`.
        unsafe { OpenLockedDisk::new(self) }.rescan_partitions_locked()
    }

    /// Freezes the queue: waits for I/O in flight and holds back new I/O
    /// until the guard is dropped (`blk_mq_freeze_queue()`).
    pub(crate) fn freeze(&self) -> QueueFreeze<'_, T> {
        let noio = NoIoScope::enter();
        // SAFETY: The queue is valid (invariant: live); the guard unfreezes
        // it.
        unsafe { bindings::blk_mq_freeze_queue_nomemsave(self.queue()) };
        // INVARIANT: Frozen just above.
        QueueFreeze {
            disk: self,
            _noio: noio,
        }
    }
}

/// A frozen queue, unfrozen on drop.
///
/// # Invariants
///
/// `disk`'s queue was frozen once by [`Disk::freeze`] for this guard.
pub(crate) struct QueueFreeze<'a, T: DiskOperations> {
    disk: &'a Disk<T>,
    _noio: NoIoScope,
}

impl<T: DiskOperations> Drop for QueueFreeze<'_, T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, this guard's freeze is the one
        // undone; the queue is valid while `disk` is borrowed.
        unsafe { bindings::blk_mq_unfreeze_queue_nomemrestore(self.disk.queue()) };
    }
}

/// A disk of `T` whose `open_mutex` the current task holds, as in
/// [`DiskOperations::release`]. Derefs to the [`Disk`].
///
/// # Invariants
///
/// The current task holds `disk`'s `open_mutex` for `'a`; the type is not
/// `Send`, so it stays on that task.
pub(crate) struct OpenLockedDisk<'a, T: DiskOperations> {
    disk: &'a Disk<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<'a, T: DiskOperations> OpenLockedDisk<'a, T> {
    /// # Safety
    ///
    /// The current task must hold `disk`'s `open_mutex` for `'a`.
    pub(super) unsafe fn new(disk: &'a Disk<T>) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self {
            disk,
            _not_send: PhantomData,
        }
    }

    /// Rescans partitions (`bdev_disk_changed()`) under the held
    /// `open_mutex`; [`Disk::rescan_partitions`] takes the lock itself, and
    /// would deadlock here.
    pub(crate) fn rescan_partitions_locked(&self) -> Result {
        // SAFETY: The disk is valid (`Disk` invariant: live) and its
        // `open_mutex` is held (type invariant), as `bdev_disk_changed`
        // requires.
        to_result(unsafe { bindings::bdev_disk_changed(self.disk.as_raw(), false) })
    }
}

impl<T: DiskOperations> core::ops::Deref for OpenLockedDisk<'_, T> {
    type Target = Disk<T>;

    fn deref(&self) -> &Disk<T> {
        self.disk
    }
}
