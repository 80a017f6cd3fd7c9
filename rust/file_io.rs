// SPDX-License-Identifier: GPL-2.0

//! The backing file of a loop device, and kiocb submission to it.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/falloc.h`](srctree/include/uapi/linux/falloc.h)
//!
//! [`BackingFile`] wraps a `struct file` taken from a file descriptor and
//! answers what a loop driver needs to know about it. [`FileIo`] is a
//! `struct kiocb` embedded in the object it serves (a request), submitted
//! to the file's `->read_iter`/`->write_iter`, directly or buffered.

use crate::blk::{
    bvec::{BvecIter, BvecTable, IterDir},
    InIoctl, Operations, Request, RequestField,
};
use crate::helpers_ffi as ffi;
use crate::kernel_defs::eopnotsupp;
use core::{cell::UnsafeCell, ptr::NonNull};
use kernel::{
    bindings,
    block::{SECTOR_SHIFT, SECTOR_SIZE},
    error::to_result,
    fs::{File, LocalFile},
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Acquire, Atomic, Relaxed, Release},
        Refcount,
    },
};

/// What [`BackingFile::fallocate`] does to a range of the file, whose size
/// it never changes (`FALLOC_FL_KEEP_SIZE`, as loop.c).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Falloc {
    /// Deallocate the range (`FALLOC_FL_PUNCH_HOLE`): a discard.
    PunchHole,
    /// Zero the range, keeping its blocks (`FALLOC_FL_ZERO_RANGE`): a
    /// write-zeroes that must not unmap.
    ZeroRange,
}

impl Falloc {
    /// The `fallocate()` mode (`include/uapi/linux/falloc.h`, not in the
    /// bindings).
    fn mode(self) -> i32 {
        const KEEP_SIZE: i32 = 0x01;
        const PUNCH_HOLE: i32 = 0x02;
        const ZERO_RANGE: i32 = 0x10;
        KEEP_SIZE
            | match self {
                Self::PunchHole => PUNCH_HOLE,
                Self::ZeroRange => ZERO_RANGE,
            }
    }
}

/// What `vfs_getattr()` tells about a backing file, for `LOOP_GET_STATUS`.
pub(crate) struct FileIds {
    /// Device of the file system (`stat.dev`), kernel encoding.
    pub(crate) dev: u32,
    /// Inode number.
    pub(crate) ino: u64,
    /// Device the file represents (`stat.rdev`), kernel encoding.
    pub(crate) rdev: u32,
}

/// The file a loop device reads and writes.
///
/// # Invariants
///
/// `file` is a referenced, open file, so while `self` lives its static
/// `f_op`, its `f_path`, its `f_mapping` with the host inode, and that
/// inode's super block are valid.
pub(crate) struct BackingFile {
    file: ARef<File>,
}

impl BackingFile {
    /// Takes a reference to the file open at `fd` in the calling process,
    /// from the ioctl that `_ioctl` proves the caller runs.
    pub(crate) fn from_fd(_ioctl: InIoctl<'_>, fd: u32) -> Result<Self> {
        let local = LocalFile::fget(fd).map_err(|_| EBADF)?;
        // SAFETY: By the invariant of `InIoctl`, the current task runs an
        // ioctl, which has no `fdget_pos()` section active.
        let file = unsafe { LocalFile::assume_no_fdget_pos(local) };
        Ok(Self { file })
    }

    /// Wraps a file reference that is already held.
    pub(crate) fn from_file(file: ARef<File>) -> Self {
        Self { file }
    }

    fn as_raw(&self) -> *mut bindings::file {
        self.file.as_ptr()
    }

    /// The underlying file.
    pub(crate) fn file(&self) -> &ARef<File> {
        &self.file
    }

    fn inode(&self) -> *mut bindings::inode {
        // SAFETY: `f_mapping` and its host are valid (type invariant).
        unsafe { (*(*self.as_raw()).f_mapping).host }
    }

    fn i_mode(&self) -> u32 {
        // SAFETY: The inode lives as long as the file.
        u32::from(unsafe { (*self.inode()).i_mode })
    }

    /// Whether the file is a block device node.
    pub(crate) fn is_block_device(&self) -> bool {
        self.i_mode() & bindings::S_IFMT == bindings::S_IFBLK
    }

    /// Whether the file is a regular file.
    pub(crate) fn is_regular(&self) -> bool {
        self.i_mode() & bindings::S_IFMT == bindings::S_IFREG
    }

    /// For a block device node, its device number (`i_rdev`).
    pub(crate) fn block_device_number(&self) -> Option<u32> {
        if self.is_block_device() {
            // SAFETY: The inode lives as long as the file.
            Some(unsafe { (*self.inode()).i_rdev })
        } else {
            None
        }
    }

    /// Whether the file was opened for writing (`FMODE_WRITE`).
    pub(crate) fn is_writable(&self) -> bool {
        // SAFETY: The file is valid by the type invariant.
        unsafe { ffi::rloop_file_writable(self.as_raw()) }
    }

    /// Whether the file honours `IOCB_NOWAIT` (`FMODE_NOWAIT`).
    pub(crate) fn can_nowait(&self) -> bool {
        // SAFETY: The file is valid by the type invariant.
        unsafe { ffi::rloop_file_can_nowait(self.as_raw()) }
    }

    /// Whether the file supports direct I/O (`FMODE_CAN_ODIRECT`).
    pub(crate) fn can_direct_io(&self) -> bool {
        // SAFETY: The file is valid by the type invariant.
        unsafe { ffi::rloop_file_can_direct_io(self.as_raw()) }
    }

    /// Whether the file was opened with `O_DIRECT`.
    pub(crate) fn opened_direct(&self) -> bool {
        self.file.flags() & kernel::fs::file::flags::O_DIRECT != 0
    }

    fn f_op(&self) -> &bindings::file_operations {
        // SAFETY: `f_op` is valid and static (type invariant).
        unsafe { &*(*self.as_raw()).f_op }
    }

    /// Whether the file can be read with `->read_iter`.
    pub(crate) fn has_read_iter(&self) -> bool {
        self.f_op().read_iter.is_some()
    }

    /// Whether the file can be written with `->write_iter`.
    pub(crate) fn has_write_iter(&self) -> bool {
        self.f_op().write_iter.is_some()
    }

    /// Whether the file implements `->fsync`.
    pub(crate) fn has_fsync(&self) -> bool {
        self.f_op().fsync.is_some()
    }

    /// Whether the file implements `->fallocate`.
    pub(crate) fn has_fallocate(&self) -> bool {
        self.f_op().fallocate.is_some()
    }

    /// The file's size in bytes, as loop.c's `lo_calculate_size()` reads it.
    pub(crate) fn size(&self) -> Result<u64> {
        if self.is_block_device() {
            // SAFETY: The inode lives as long as the file; `i_size` of a
            // block device inode is read with `i_size_read()`.
            return Ok(unsafe { ffi::rloop_inode_size(self.inode()) } as u64);
        }
        let mut stat: bindings::kstat = pin_init::zeroed();
        // SAFETY: The file's path is valid; `stat` is writable.
        to_result(unsafe {
            bindings::vfs_getattr_nosec(
                &raw mut (*self.as_raw()).__bindgen_anon_1.f_path,
                &mut stat,
                bindings::STATX_SIZE,
                0,
            )
        })?;
        Ok(stat.size.max(0) as u64)
    }

    /// Device and inode numbers of the file.
    pub(crate) fn ids(&self) -> Result<FileIds> {
        let mut stat: bindings::kstat = pin_init::zeroed();
        // SAFETY: The file's path is valid; `stat` is writable.
        to_result(unsafe {
            bindings::vfs_getattr(
                &raw mut (*self.as_raw()).__bindgen_anon_1.f_path,
                &mut stat,
                bindings::STATX_INO,
                bindings::AT_STATX_SYNC_AS_STAT,
            )
        })?;
        Ok(FileIds {
            dev: stat.dev,
            ino: stat.ino,
            rdev: stat.rdev,
        })
    }

    /// The smallest direct I/O size and alignment of the file: its
    /// `STATX_DIOALIGN` offset alignment, else the logical block size of its
    /// file system's device, else a sector (loop.c's `loop_query_min_dio_size()`).
    pub(crate) fn dio_alignment(&self) -> u32 {
        let mut stat: bindings::kstat = pin_init::zeroed();
        // SAFETY: The file's path is valid; `stat` is writable.
        let ret = unsafe {
            bindings::vfs_getattr(
                &raw mut (*self.as_raw()).__bindgen_anon_1.f_path,
                &mut stat,
                bindings::STATX_DIOALIGN,
                0,
            )
        };
        if ret == 0 && stat.result_mask & bindings::STATX_DIOALIGN != 0 {
            return stat.dio_offset_align;
        }
        // SAFETY: The inode and its super block live as long as the file.
        let sb_bdev = unsafe { (*(*self.inode()).i_sb).s_bdev };
        if sb_bdev.is_null() {
            SECTOR_SIZE
        } else {
            // SAFETY: A mounted file system's device is valid.
            unsafe { ffi::rloop_bdev_logical_block_size(sb_bdev) }
        }
    }

    /// The block device under the file: the device itself for a device
    /// node, else its file system's device, if any.
    fn backing_bdev(&self) -> *mut bindings::block_device {
        if self.is_block_device() {
            // SAFETY: The inode of a block device node is a bdev inode.
            unsafe { bindings::I_BDEV(self.inode()) }
        } else {
            // SAFETY: The inode and its super block live as long as the file.
            unsafe { (*(*self.inode()).i_sb).s_bdev }
        }
    }

    /// Whether the storage under the file is rotational.
    pub(crate) fn is_rotational(&self) -> bool {
        let bdev = self.backing_bdev();
        // SAFETY: `bdev` is null or valid while the file is open.
        !bdev.is_null() && unsafe { ffi::rloop_bdev_rotational(bdev) }
    }

    /// Discard limits as loop.c's `loop_get_discard_config()` computes them:
    /// `(max_discard_sectors, granularity)`.
    pub(crate) fn discard_config(&self) -> (u32, u32) {
        if self.is_block_device() {
            let bdev = self.backing_bdev();
            // SAFETY: The bdev of an open device node is valid.
            return unsafe {
                (
                    ffi::rloop_bdev_write_zeroes_sectors(bdev),
                    ffi::rloop_bdev_discard_granularity(bdev),
                )
            };
        }
        if !self.has_fallocate() {
            return (0, 0);
        }
        let mut bsize = 0u32;
        // SAFETY: The file is valid; `bsize` is writable.
        if unsafe { ffi::rloop_file_statfs_bsize(self.as_raw(), &mut bsize) } != 0 {
            return (0, 0);
        }
        (u32::MAX >> SECTOR_SHIFT, bsize)
    }

    /// `vfs_fsync()` of the whole file.
    pub(crate) fn fsync(&self) -> Result {
        // SAFETY: The file is valid by the type invariant.
        to_result(unsafe { bindings::vfs_fsync(self.as_raw(), 0) })
    }

    /// Calls the file's `->fallocate` with `mode` on `len` bytes at `pos`.
    pub(crate) fn fallocate(&self, op: Falloc, pos: i64, len: i64) -> Result {
        let fallocate = self.f_op().fallocate.ok_or_else(eopnotsupp)?;
        // SAFETY: The file is valid and implements `->fallocate`.
        // The result is 0 or a negative errno, which fits an `int`.
        to_result(unsafe { fallocate(self.as_raw(), op.mode(), pos, len) } as i32)
    }

    /// Writes the file's path into `buf` (`file_path()`), returning the
    /// path's bytes within `buf`.
    pub(crate) fn path<'a>(&self, buf: &'a mut [u8]) -> Result<&'a [u8]> {
        let len = i32::try_from(buf.len()).map_err(|_| EINVAL)?;
        // SAFETY: `buf` is writable for `len` bytes.
        let p = unsafe { bindings::file_path(self.as_raw(), buf.as_mut_ptr(), len) };
        let p = kernel::error::from_err_ptr(p)?;
        let start = (p as usize) - (buf.as_ptr() as usize);
        let tail = &buf[start..];
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        Ok(&buf[start..start + end])
    }

    /// Keeps the file's page cache from recursing into I/O for reclaim
    /// (clears `__GFP_IO` and `__GFP_FS` of its mapping), returning the
    /// previous mask for [`BackingFile::restore_gfp_mask`].
    pub(crate) fn restrict_gfp_mask(&self) -> u32 {
        // SAFETY: The file and its mapping are valid.
        unsafe { ffi::rloop_mapping_restrict_gfp(self.as_raw()) }
    }

    /// Restores a mask saved by [`BackingFile::restrict_gfp_mask`].
    pub(crate) fn restore_gfp_mask(&self, mask: u32) {
        // SAFETY: The file and its mapping are valid.
        unsafe { ffi::rloop_mapping_set_gfp(self.as_raw(), mask) };
    }
}

/// Direction of the data transfer, as seen from the file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Direction {
    /// The file is read into the owner's memory.
    FromFile,
    /// The owner's memory is written to the file.
    ToFile,
}

impl Direction {
    /// The direction of an iterator over the owner's memory.
    fn iter_dir(self) -> IterDir {
        match self {
            Direction::FromFile => IterDir::Dest,
            Direction::ToFile => IterDir::Source,
        }
    }
}

/// An object with an embedded [`FileIo`], completed when its I/O ends.
///
/// # Safety
///
/// `from_file_io` must return the handle that `into_file_io` gave up, and
/// the memory that the iterator from `bvec_iter` describes must stay valid
/// while the handle is given up.
pub(crate) unsafe trait IoOwner: Send + Sized {
    /// An iterator over the memory that the I/O reads into (`dir` is
    /// [`Direction::FromFile`]) or writes from.
    fn bvec_iter(&self, dir: Direction) -> Result<BvecIter>;

    /// Gives up the handle, returning its embedded `FileIo`.
    fn into_file_io(self) -> NonNull<FileIo>;

    /// Takes back the handle given up by `into_file_io`.
    ///
    /// # Safety
    ///
    /// `io` must come from `into_file_io`, once.
    unsafe fn from_file_io(io: NonNull<FileIo>) -> Self;

    /// The I/O ended with `result`: bytes transferred, or a negative errno.
    /// May run in hard-IRQ context, so it must not sleep or take locks
    /// that are not IRQ-safe.
    fn io_done(self, result: isize);
}

/// How a [`FileIo`] reaches the file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum IoMode {
    /// Through the page cache, synchronously.
    Buffered,
    /// Direct I/O (`IOCB_DIRECT`), completed asynchronously.
    Direct,
    /// Direct I/O that must not block (`IOCB_DIRECT | IOCB_NOWAIT`): it
    /// ends with `-EAGAIN`, at once or from its completion, where it would
    /// have had to wait. See [`FileIo::was_nowait`].
    DirectNowait,
}

/// A `struct kiocb` with what its asynchronous completion needs.
///
/// # Invariants
///
/// While an I/O is in flight, `iocb` and `file` belong to it: `file` holds
/// a reference to `iocb.ki_filp`, and `refs` counts the submitter and the
/// completion, the last of which ends the I/O.
pub(crate) struct FileIo {
    iocb: UnsafeCell<bindings::kiocb>,
    file: UnsafeCell<Option<ARef<File>>>,
    refs: Refcount,
    result: Atomic<isize>,
    write: UnsafeCell<bool>,
    /// The last I/O was a NOWAIT attempt.
    nowait: Atomic<bool>,
}

// SAFETY: The fields are used by one I/O at a time, whose owner and
// completion are ordered by `refs`.
unsafe impl Send for FileIo {}
// SAFETY: See `Send`.
unsafe impl Sync for FileIo {}

impl FileIo {
    /// An idle `FileIo`.
    pub(crate) fn new() -> Self {
        Self {
            iocb: UnsafeCell::new(pin_init::zeroed()),
            file: UnsafeCell::new(None),
            refs: Refcount::new(0),
            result: Atomic::new(0),
            write: UnsafeCell::new(false),
            nowait: Atomic::new(false),
        }
    }

    /// The result of the last I/O: the bytes transferred, or the error.
    /// Valid once the owner is handed back.
    pub(crate) fn result(&self) -> Result<usize> {
        // The kiocb's own form (`ki_complete`'s `ret`), converted once.
        crate::completion::io_result(self.result.load(Acquire))
    }

    /// Whether the last I/O was submitted with [`IoMode::DirectNowait`], so
    /// that its result may mean it would have blocked. Valid once the
    /// owner is handed back.
    pub(crate) fn was_nowait(&self) -> bool {
        self.nowait.load(Relaxed)
    }

    /// Records the result of an operation the owner did without a kiocb,
    /// such as a flush, for whoever completes it.
    pub(crate) fn set_result(&self, result: Result<usize>) {
        let raw = match result {
            Ok(done) => isize::try_from(done).unwrap_or(isize::MAX),
            Err(e) => e.to_errno() as isize,
        };
        self.nowait.store(false, Relaxed);
        self.result.store(raw, Release);
    }

    /// Submits a read or write of `owner`'s memory at byte `pos` of `file`,
    /// in `mode`. `owner.io_done()` then runs exactly once with the result,
    /// here or from the file system's completion. If the owner's iterator
    /// cannot be built, nothing is submitted and the owner comes back.
    pub(crate) fn submit<O: IoOwner>(
        owner: O,
        file: ARef<File>,
        dir: Direction,
        pos: i64,
        mode: IoMode,
        ioprio: u16,
    ) -> Result<(), (O, Error)> {
        // Taken from the owner here: an iterator over other memory could
        // outlive what it describes.
        let mut iter = match owner.bvec_iter(dir) {
            Ok(iter) => iter,
            Err(e) => return Err((owner, e)),
        };
        let io = owner.into_file_io();
        // SAFETY: The owner gave `io` up to this I/O, so nothing else uses
        // it until `put` hands it back. `iter` describes memory that
        // `IoOwner` keeps valid meanwhile.
        let ret = unsafe {
            let this = io.as_ref();
            let iocb = this.iocb.get();
            let filp = file.as_ptr();
            let nowait = mode == IoMode::DirectNowait;
            *this.file.get() = Some(file);
            *this.write.get() = false;
            this.nowait.store(nowait, Relaxed);
            iocb.write(pin_init::zeroed());
            (*iocb).ki_filp = filp;
            (*iocb).ki_pos = pos;
            (*iocb).ki_ioprio = ioprio;
            if mode != IoMode::Buffered {
                (*iocb).ki_flags = bindings::IOCB_DIRECT as i32;
                (*iocb).ki_complete = Some(Self::complete_callback::<O>);
            }
            if nowait {
                (*iocb).ki_flags |= ffi::IOCB_NOWAIT;
            }
            this.refs.set(2);
            let f_op = &*(*filp).f_op;
            match dir {
                Direction::ToFile => {
                    // Write access to the file system is taken once per
                    // submission and dropped by `put`, also when a NOWAIT
                    // attempt is resubmitted.
                    let started = if nowait {
                        ffi::rloop_kiocb_start_write_trylock(iocb)
                    } else {
                        ffi::rloop_kiocb_start_write(iocb);
                        true
                    };
                    *this.write.get() = started;
                    match f_op.write_iter {
                        Some(write_iter) if started => write_iter(iocb, iter.as_raw()),
                        Some(_) => EAGAIN.to_errno() as isize,
                        None => EINVAL.to_errno() as isize,
                    }
                }
                Direction::FromFile => match f_op.read_iter {
                    Some(read_iter) => read_iter(iocb, iter.as_raw()),
                    None => EINVAL.to_errno() as isize,
                },
            }
        };
        // SAFETY: `io` is in flight; we drop the submitter's reference.
        unsafe { Self::put::<O>(io) };
        if ret != EIOCBQUEUED.to_errno() as isize {
            // SAFETY: The I/O did not queue, so no completion will come; we
            // drop the completion's reference with the result.
            unsafe {
                io.as_ref().result.store(ret, Relaxed);
                Self::put::<O>(io);
            }
        }
        Ok(())
    }

    /// # Safety
    ///
    /// Called by the file system for a kiocb submitted by `submit::<O>`.
    unsafe extern "C" fn complete_callback<O: IoOwner>(iocb: *mut bindings::kiocb, ret: isize) {
        // SAFETY: `iocb` is the first field's contents of a `FileIo`
        // (`UnsafeCell` is transparent), and the I/O holds a reference.
        unsafe {
            let io = NonNull::new_unchecked(kernel::container_of!(
                iocb.cast::<UnsafeCell<bindings::kiocb>>(),
                FileIo,
                iocb
            ));
            io.as_ref().result.store(ret, Relaxed);
            Self::put::<O>(io);
        }
    }

    /// Drops one reference; the last one ends the I/O. IRQ-safe.
    ///
    /// # Safety
    ///
    /// `io` must be in flight with a reference held by the caller.
    unsafe fn put<O: IoOwner>(io: NonNull<FileIo>) {
        // SAFETY: The caller holds a reference, so `io` is valid.
        let this = unsafe { io.as_ref() };
        // Release on each drop and acquire on the last: the other side's
        // writes, including `result`, are visible to whoever drops it.
        if !this.refs.dec_and_test() {
            return;
        }
        // SAFETY: We dropped the last reference, so the I/O is over and we
        // have the fields to ourselves.
        unsafe {
            if *this.write.get() {
                ffi::rloop_kiocb_end_write(this.iocb.get());
            }
            // `fput()` may be called from any context.
            drop((*this.file.get()).take());
        }
        let result = this.result.load(Relaxed);
        // SAFETY: `io` came from `O::into_file_io` in `submit`.
        let owner = unsafe { O::from_file_io(io) };
        owner.io_done(result);
    }
}

// SAFETY: `into_file_io` and `from_file_io` convert between a request token
// and the `FileIo` embedded in its data, one to one, and the request's pages
// and vector table, which `bvec_iter` describes, stay valid while the token
// is given up.
unsafe impl<T> IoOwner for Request<T>
where
    T: Operations + RequestField<FileIo> + RequestField<BvecTable>,
{
    fn bvec_iter(&self, dir: Direction) -> Result<BvecIter> {
        Request::bvec_iter(self, dir.iter_dir())
    }

    fn into_file_io(self) -> NonNull<FileIo> {
        let io = self.field::<FileIo>();
        let _ = self.into_raw();
        io
    }

    unsafe fn from_file_io(io: NonNull<FileIo>) -> Self {
        // SAFETY: `io` came from `into_file_io`, whose token it stands for.
        unsafe { Self::from_field(io) }
    }

    fn io_done(self, _result: isize) {
        // The result stays in the `FileIo` for `Operations::complete`.
        self.complete_inline();
    }
}
