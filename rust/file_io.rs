// SPDX-License-Identifier: GPL-2.0

//! The backing file of a loop device.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/falloc.h`](srctree/include/uapi/linux/falloc.h)
//!
//! [`BackingFile`] wraps a `struct file` taken from a file descriptor and
//! answers what a loop driver needs to know about it, and does its
//! synchronous operations (`fsync`, `fallocate`). I/O to it goes through a
//! kiocb ([`crate::kiocb`]).

use crate::blk::InIoctl;
use crate::helpers_ffi as ffi;
use crate::kernel_defs::eopnotsupp;
use kernel::{
    bindings,
    block::{SECTOR_SHIFT, SECTOR_SIZE},
    error::to_result,
    fs::{File, LocalFile},
    prelude::*,
    sync::aref::ARef,
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

/// A mapping's gfp mask as it was before [`BackingFile::restrict_gfp_mask`],
/// the only value [`BackingFile::restore_gfp_mask`] takes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SavedGfpMask(u32);

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

    /// For a block device node, the device number of its disk: its own
    /// for a whole disk, the disk's for a partition, whatever major the
    /// partition's number has (`disk_devt(I_BDEV(inode)->bd_disk)`).
    pub(crate) fn disk_number(&self) -> Option<u32> {
        if !self.is_block_device() {
            return None;
        }
        // SAFETY: The inode of a block device node is a bdev inode. The file
        // keeps the device open, so its disk and that disk's `part0` are
        // valid.
        Some(unsafe { (*(*(*bindings::I_BDEV(self.inode())).bd_disk).part0).bd_dev })
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

    /// Whether buffered reads (`write` false) or writes of the file honour
    /// `IOCB_NOWAIT` (`FOP_BUFFER_RASYNC`, `FOP_BUFFER_WASYNC`).
    pub(crate) fn can_nowait_buffered(&self, write: bool) -> bool {
        // SAFETY: The file is valid by the type invariant.
        unsafe { ffi::rloop_file_can_nowait_buffered(self.as_raw(), write) }
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
    pub(crate) fn restrict_gfp_mask(&self) -> SavedGfpMask {
        // SAFETY: The file and its mapping are valid.
        SavedGfpMask(unsafe { ffi::rloop_mapping_restrict_gfp(self.as_raw()) })
    }

    /// Restores a mask saved by [`BackingFile::restrict_gfp_mask`].
    pub(crate) fn restore_gfp_mask(&self, mask: SavedGfpMask) {
        // SAFETY: The file and its mapping are valid.
        unsafe { ffi::rloop_mapping_set_gfp(self.as_raw(), mask.0) };
    }
}
