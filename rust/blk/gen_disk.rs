// SPDX-License-Identifier: GPL-2.0

//! Generic disks with driver-defined `block_device_operations`.
//!
//! C headers: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h),
//! [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use super::tag_set::{Operations, TagSet};
use crate::{helpers_ffi as ffi, memalloc::NoIoScope, module_ref::ModuleHeld};
use core::{fmt, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, from_result, to_result},
    ffi::{c_int, c_uint, c_ulong, c_void},
    prelude::*,
    str::NullTerminatedFormatter,
    sync::{Arc, Mutex, MutexGuard},
    types::{ForeignOwnable, Opaque},
};

/// How a block device was opened (`blk_mode_t`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenMode(u32);

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

    /// A device-specific ioctl from a 32-bit process; `arg` is already
    /// converted with `compat_ptr()`.
    fn compat_ioctl(bdev: &BlockDevice<Self>, mode: OpenMode, cmd: u32, arg: usize) -> Result<i32>;
}

/// Queue limits (`struct queue_limits`) being built or updated.
#[repr(transparent)]
pub(crate) struct Limits(bindings::queue_limits);

/// Queue feature bits (`BLK_FEAT_*`), mirrored from `include/linux/blkdev.h`
/// and checked against it at build time in `helpers.c`.
pub(crate) mod features {
    /// `BLK_FEAT_WRITE_CACHE`: the device has a volatile write cache.
    pub(crate) const WRITE_CACHE: u32 = 1 << 0;
    /// `BLK_FEAT_ROTATIONAL`: the device is rotational.
    pub(crate) const ROTATIONAL: u32 = 1 << 2;
}

impl Limits {
    /// Sets the logical and physical block size and minimum I/O size.
    pub(crate) fn set_block_size(&mut self, size: u32) {
        self.0.logical_block_size = size;
        self.0.physical_block_size = size;
        self.0.io_min = size;
    }

    /// Sets or clears `BLK_FEAT_*` feature bits.
    pub(crate) fn set_feature(&mut self, feature: u32, on: bool) {
        if on {
            self.0.features |= feature;
        } else {
            self.0.features &= !feature;
        }
    }

    /// Sets the discard and write-zeroes limits.
    pub(crate) fn set_discard(&mut self, max_sectors: u32, granularity: u32) {
        self.0.max_hw_discard_sectors = max_sectors;
        self.0.max_write_zeroes_sectors = max_sectors;
        self.0.discard_granularity = if max_sectors != 0 { granularity } else { 0 };
    }

    /// Turns off write zeroes.
    pub(crate) fn clear_write_zeroes(&mut self) {
        self.0.max_write_zeroes_sectors = 0;
    }

    /// Turns off discard.
    pub(crate) fn clear_discard(&mut self) {
        self.0.max_hw_discard_sectors = 0;
        self.0.discard_granularity = 0;
    }

    /// Sets the largest request size in sectors.
    pub(crate) fn set_max_hw_sectors(&mut self, sectors: u32) {
        self.0.max_hw_sectors = sectors;
    }
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

/// A disk of `T`, as seen from its callbacks.
///
/// # Invariants
///
/// Wraps a live `struct gendisk` created by [`GenDisk::new`] for `T`.
#[repr(transparent)]
pub(crate) struct Disk<T: DiskOperations>(Opaque<bindings::gendisk>, PhantomData<T>);

impl<T: DiskOperations> Disk<T> {
    /// # Safety
    ///
    /// `ptr` must be a live disk of `T` for the lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::gendisk) -> &'a Self {
        // SAFETY: `Disk` is a transparent wrapper; validity by the caller.
        unsafe { &*ptr.cast() }
    }

    /// The raw disk.
    pub(crate) fn as_raw(&self) -> *mut bindings::gendisk {
        self.0.get()
    }

    /// The disk's device (`disk_to_dev()`).
    pub(super) fn device(&self) -> *mut bindings::device {
        // SAFETY: A live disk has its whole-disk block device.
        unsafe { &raw mut (*(*self.as_raw()).part0).bd_device }
    }

    fn queue(&self) -> *mut bindings::request_queue {
        // SAFETY: A live disk has a queue.
        unsafe { (*self.as_raw()).queue }
    }

    fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: `disk_to_dev()`: the device of the disk's whole-disk bdev.
        unsafe { &raw mut (*(*self.as_raw()).part0).bd_device.kobj }
    }

    /// The disk's data.
    pub(crate) fn data(&self) -> <T::DiskData as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: `private_data` holds a `DiskPrivate` whose `disk_data` is
        // `T::DiskData::into_foreign()` until `free_disk`, which comes after
        // every callback on a live disk.
        unsafe {
            let private = (*self.as_raw()).private_data.cast::<DiskPrivate>();
            T::DiskData::borrow((*private).disk_data)
        }
    }

    /// Number of hardware queues of the disk's request queue.
    pub(crate) fn nr_hw_queues(&self) -> u32 {
        // SAFETY: The queue of a live disk is valid; `nr_hw_queues` changes
        // only with the queue frozen, and a stale read is harmless.
        unsafe { (*self.queue()).nr_hw_queues }
    }

    /// Gives the disk's tag set, and so its request queue, `nr` hardware
    /// queues (`blk_mq_update_nr_hw_queues()`). blk-mq freezes the queue
    /// for the change, so this waits for the requests in flight: it must
    /// not be called where they could wait for the caller.
    pub(crate) fn set_nr_hw_queues(&self, nr: u32) {
        let nr = c_int::try_from(nr).unwrap_or(c_int::MAX);
        // SAFETY: The disk is live, so its queue and the tag set it was
        // allocated on are; blk-mq serialises updates of a tag set.
        unsafe { bindings::blk_mq_update_nr_hw_queues((*self.queue()).tag_set, nr) };
    }

    /// Number of current openers (`disk_openers()`).
    pub(crate) fn openers(&self) -> u32 {
        // SAFETY: The disk is live.
        unsafe { ffi::rloop_disk_openers(self.as_raw()) }
    }

    /// Sets the capacity and notifies user space of a change (`RESIZE`
    /// uevent); without a change, sends a plain `CHANGE` uevent, as loop.c
    /// does.
    pub(crate) fn set_capacity_and_notify(&self, sectors: u64) {
        // SAFETY: The disk is live.
        if !unsafe { bindings::set_capacity_and_notify(self.as_raw(), sectors) } {
            self.uevent_change();
        }
    }

    /// Sends a `KOBJ_CHANGE` uevent for the disk.
    pub(crate) fn uevent_change(&self) {
        // SAFETY: The disk's device is registered while the disk is live.
        unsafe { bindings::kobject_uevent(self.kobj(), bindings::kobject_action_KOBJ_CHANGE) };
    }

    /// Holds back or releases the disk's uevents.
    pub(crate) fn suppress_uevents(&self, suppress: bool) {
        // SAFETY: The disk is live.
        unsafe { ffi::rloop_disk_suppress_uevents(self.as_raw(), suppress) };
    }

    /// Reports a media change (`disk_force_media_change()`).
    pub(crate) fn force_media_change(&self) {
        // SAFETY: The disk is live.
        unsafe { bindings::disk_force_media_change(self.as_raw()) };
    }

    /// Makes the disk read-only or writable.
    pub(crate) fn set_read_only(&self, read_only: bool) {
        // SAFETY: The disk is live.
        unsafe { bindings::set_disk_ro(self.as_raw(), read_only) };
    }

    /// Drops the disk's cached data and sets its capacity to 0.
    pub(crate) fn invalidate(&self) {
        // SAFETY: The disk is live.
        unsafe { bindings::invalidate_disk(self.as_raw()) };
    }

    /// Allows or suppresses partition scanning.
    pub(crate) fn set_partition_scan(&self, on: bool) {
        // SAFETY: The disk is live.
        unsafe { ffi::rloop_disk_set_partition_scan(self.as_raw(), on) };
    }

    /// Rescans partitions; the caller must not hold the disk's
    /// `open_mutex`.
    pub(crate) fn rescan_partitions(&self) -> Result {
        // SAFETY: By the type invariant the disk is live, and `open_mutex`
        // is initialised with it and lives as long.
        let open_mutex = unsafe { Mutex::from_raw(&raw mut (*self.as_raw()).open_mutex) };
        let _guard = open_mutex.lock();
        // INVARIANT: `open_mutex` is held until `_guard` drops, after the
        // last use of `locked`.
        let locked = OpenLockedDisk {
            disk: self,
            _not_send: PhantomData,
        };
        locked.rescan_partitions()
    }

    /// The logical block size of the queue.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: The queue of a live disk is valid; limits are read
        // without the lock, like `queue_logical_block_size()`.
        unsafe { (*self.queue()).limits.logical_block_size }
    }

    /// The discard limit in sectors (`bdev_max_discard_sectors()`).
    pub(crate) fn max_discard_sectors(&self) -> u32 {
        // SAFETY: As in `logical_block_size`.
        unsafe { (*self.queue()).limits.max_discard_sectors }
    }

    /// The queue's `limits_lock`.
    fn limits_lock(&self) -> &Mutex<()> {
        // SAFETY: The queue of a live disk is valid, and its `limits_lock`
        // is initialised with it and lives as long.
        unsafe { Mutex::from_raw(&raw mut (*self.queue()).limits_lock) }
    }

    /// Starts a limits update under `guard`, a guard of `limits_lock`.
    fn limits_update<'a>(&'a self, guard: MutexGuard<'a, ()>) -> LimitsUpdate<'a> {
        // SAFETY: The queue is valid; `limits_lock`, held, guards `limits`.
        let lim = Limits(unsafe { (*self.queue()).limits });
        // INVARIANT: `guard` holds the queue's `limits_lock`.
        LimitsUpdate {
            queue: self.queue(),
            lim,
            guard,
        }
    }

    /// Updates the queue limits (`queue_limits_start_update()` and
    /// `queue_limits_commit_update()`). Freeze the queue around it when I/O
    /// may be in flight.
    pub(crate) fn update_limits(&self, f: impl FnOnce(&mut Limits)) -> Result {
        let mut update = self.limits_update(self.limits_lock().lock());
        f(&mut update.lim);
        update.commit()
    }

    /// Updates the queue limits if `limits_lock` is free, without waiting:
    /// for the I/O path, which must not wait for a limits update that itself
    /// waits for the I/O to drain. Returns whether it updated them.
    pub(crate) fn try_update_limits(&self, f: impl FnOnce(&mut Limits)) -> bool {
        let Some(guard) = self.limits_lock().try_lock() else {
            return false;
        };
        let mut update = self.limits_update(guard);
        f(&mut update.lim);
        update.commit().is_ok()
    }

    /// Updates the queue limits with the queue frozen, in the block layer's
    /// lock order (`limits_lock`, then the freeze), and runs `frozen` after
    /// a successful update, before the queue is unfrozen.
    pub(crate) fn update_limits_frozen(
        &self,
        f: impl FnOnce(&mut Limits),
        frozen: impl FnOnce(),
    ) -> Result {
        let mut update = self.limits_update(self.limits_lock().lock());
        f(&mut update.lim);
        let _freeze = self.freeze();
        update.commit()?;
        frozen();
        Ok(())
    }

    /// Freezes the queue: waits for I/O in flight and holds back new I/O
    /// until the guard is dropped (`blk_mq_freeze_queue()`).
    pub(crate) fn freeze(&self) -> QueueFreeze<'_, T> {
        let noio = NoIoScope::enter();
        // SAFETY: The queue is valid; the guard unfreezes it.
        unsafe { bindings::blk_mq_freeze_queue_nomemsave(self.queue()) };
        QueueFreeze {
            disk: self,
            _noio: noio,
        }
    }
}

/// A queue limits update under way (`queue_limits_start_update()`): the
/// queue's `limits_lock` and a copy of its limits to change. Dropped
/// without [`LimitsUpdate::commit`], it is cancelled and the lock released.
///
/// # Invariants
///
/// `guard` holds the `limits_lock` of `queue`, a valid queue.
struct LimitsUpdate<'a> {
    queue: *mut bindings::request_queue,
    lim: Limits,
    guard: MutexGuard<'a, ()>,
}

impl LimitsUpdate<'_> {
    /// Applies the new limits (`queue_limits_commit_update()`), which
    /// releases `limits_lock` whatever the outcome.
    fn commit(self) -> Result {
        let Self {
            queue,
            mut lim,
            guard,
        } = self;
        // SAFETY: By the type invariant, `queue` is valid and `guard` holds
        // its `limits_lock`, which the call releases.
        let ret = unsafe { bindings::queue_limits_commit_update(queue, &mut lim.0) };
        // Released above: the guard must not unlock it again.
        core::mem::forget(guard);
        to_result(ret)
    }
}

/// A frozen queue, unfrozen on drop.
pub(crate) struct QueueFreeze<'a, T: DiskOperations> {
    disk: &'a Disk<T>,
    _noio: NoIoScope,
}

impl<T: DiskOperations> Drop for QueueFreeze<'_, T> {
    fn drop(&mut self) {
        // SAFETY: The queue was frozen by `Disk::freeze`.
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

impl<T: DiskOperations> OpenLockedDisk<'_, T> {
    /// Rescans partitions (`bdev_disk_changed()`) under the held
    /// `open_mutex`; shadows [`Disk::rescan_partitions`], which takes it.
    pub(crate) fn rescan_partitions(&self) -> Result {
        // SAFETY: The disk is live (`Disk` invariant) and its `open_mutex`
        // is held (type invariant), as `bdev_disk_changed` requires.
        to_result(unsafe { bindings::bdev_disk_changed(self.disk.as_raw(), false) })
    }
}

impl<T: DiskOperations> core::ops::Deref for OpenLockedDisk<'_, T> {
    type Target = Disk<T>;

    fn deref(&self) -> &Disk<T> {
        self.disk
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
/// Wraps a block device open for the duration of the borrow, whose disk is
/// a live disk of `T`.
#[repr(transparent)]
pub(crate) struct BlockDevice<T: DiskOperations>(Opaque<bindings::block_device>, PhantomData<T>);

impl<T: DiskOperations> BlockDevice<T> {
    fn as_raw(&self) -> *mut bindings::block_device {
        self.0.get()
    }

    /// The disk.
    pub(crate) fn disk(&self) -> &Disk<T> {
        // SAFETY: By the type invariant, `bd_disk` is a live disk of `T`.
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

    /// The device number.
    pub(crate) fn dev(&self) -> u32 {
        // SAFETY: The block device is open.
        unsafe { (*self.as_raw()).bd_dev }
    }

    /// Writes back the device's dirty page cache (`sync_blockdev()`).
    pub(crate) fn sync(&self) {
        // SAFETY: The block device is open.
        unsafe { bindings::sync_blockdev(self.as_raw()) };
    }

    /// Drops the device's clean page cache (`invalidate_bdev()`).
    pub(crate) fn invalidate(&self) {
        // SAFETY: The block device is open.
        unsafe { bindings::invalidate_bdev(self.as_raw()) };
    }

    /// Claims the device as a temporary exclusive holder, unless the opener
    /// already holds it exclusively (`bd_prepare_to_claim()`). The claim is
    /// abandoned when the guard is dropped.
    pub(crate) fn claim(&self, mode: OpenMode) -> Result<BdevClaim<'_, T>> {
        if mode.exclusive() {
            return Ok(BdevClaim { bdev: None });
        }
        // SAFETY: The block device is open; the holder is a unique address
        // of this module.
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
pub(crate) struct BdevClaim<'a, T: DiskOperations> {
    bdev: Option<&'a BlockDevice<T>>,
}

impl<T: DiskOperations> Drop for BdevClaim<'_, T> {
    fn drop(&mut self) {
        if let Some(bdev) = self.bdev {
            // SAFETY: `claim` prepared this claim with this holder.
            unsafe { bindings::bd_abort_claiming(bdev.as_raw(), claim_holder()) };
        }
    }
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
        let queue_data = queue_data.into_foreign();
        // SAFETY: The tag set is live; `lim` is a valid limits template.
        let disk = from_err_ptr(unsafe {
            bindings::__blk_mq_alloc_disk(
                tag_set.as_raw(),
                &mut lim.0,
                queue_data,
                kernel::static_lock_class!().as_ptr(),
            )
        });
        let disk = match disk {
            Ok(disk) => disk,
            Err(e) => {
                // SAFETY: Not handed to the block layer.
                drop(unsafe { T::QueueData::from_foreign(queue_data) });
                return Err(e);
            }
        };
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
        let name = {
            // SAFETY: The disk is ours until added.
            let buf = unsafe { &mut (*disk).disk_name };
            NullTerminatedFormatter::new(buf)
                .ok_or(EINVAL)
                .and_then(|mut w| fmt::Write::write_fmt(&mut w, params.name).map_err(|_| EINVAL))
        };
        let ret = name.and_then(|()| {
            // SAFETY: The disk is set up; `add_disk` registers it.
            to_result(unsafe {
                bindings::device_add_disk(core::ptr::null_mut(), disk, core::ptr::null_mut())
            })
        });
        if let Err(e) = ret {
            // SAFETY: The disk was never added, so `free_disk` will not run
            // for it: release its data here, then the disk itself.
            unsafe {
                DiskPrivate::release::<T>((*disk).private_data);
                bindings::put_disk(disk);
            }
            return Err(e);
        }
        // INVARIANT: Set up and added above.
        Ok(Self {
            // SAFETY: `from_err_ptr` returned a valid pointer.
            disk: unsafe { NonNull::new_unchecked(disk) },
            _tag_set: tag_set,
        })
    }

    /// The disk.
    pub(crate) fn disk(&self) -> &Disk<T> {
        // SAFETY: The disk stays live while `self` exists.
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
struct DiskPrivate {
    disk_data: *mut c_void,
    queue_data: *mut c_void,
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

/// A `Sync` wrapper for a C operations table.
#[repr(transparent)]
struct AssertSync<T>(T);
// SAFETY: The table is immutable and only read by C code.
unsafe impl<T> Sync for AssertSync<T> {}

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
    /// Called by the block layer for a live disk of `T`.
    unsafe extern "C" fn open(disk: *mut bindings::gendisk, mode: bindings::blk_mode_t) -> c_int {
        // SAFETY: The disk is live during the call.
        let disk = unsafe { Disk::<T>::from_raw(disk) };
        from_result(|| T::open(disk, OpenMode(mode)).map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the block layer for a live disk of `T`, under its
    /// `open_mutex`.
    unsafe extern "C" fn release(disk: *mut bindings::gendisk) {
        // SAFETY: The disk is live during the call.
        let disk = unsafe { Disk::<T>::from_raw(disk) };
        // INVARIANT: The block layer holds `open_mutex` during `release`.
        T::release(&OpenLockedDisk {
            disk,
            _not_send: PhantomData,
        });
    }

    /// # Safety
    ///
    /// Called by the block layer for an open block device of a disk of `T`.
    unsafe extern "C" fn ioctl(
        bdev: *mut bindings::block_device,
        mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_int {
        // SAFETY: The device is open during the call.
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
        // SAFETY: The device is open during the call.
        let bdev = unsafe { &*bdev.cast::<BlockDevice<T>>() };
        // SAFETY: `compat_ptr()` only converts a number.
        let arg = unsafe { ffi::rloop_compat_ptr(arg as u32) } as usize;
        from_result(|| T::compat_ioctl(bdev, OpenMode(mode), cmd, arg))
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

impl<T: DiskOperations> super::Request<T> {
    /// The disk the request was queued to.
    pub(crate) fn disk(&self) -> &Disk<T> {
        // SAFETY: An owned request's queue belongs to a live disk of `T`,
        // which outlives the request.
        unsafe { Disk::from_raw((*(*self.as_raw()).q).disk) }
    }
}
