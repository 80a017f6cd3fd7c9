// SPDX-License-Identifier: GPL-2.0

//! Asynchronous I/O to a file through a `struct kiocb`.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/uio.h`](srctree/include/linux/uio.h)
//!
//! [`FileIo`] is a `struct kiocb` embedded in the object it serves (a
//! request, an [`IoOwner`]), submitted to the file's
//! `->read_iter`/`->write_iter`, directly or buffered, and completed
//! through `ki_complete`.

use crate::blk::{
    bvec::{BvecIter, BvecTable, IterDir},
    Operations, Request, RequestField,
};
use crate::helpers_ffi as ffi;
use core::{cell::UnsafeCell, ptr::NonNull};
use kernel::{
    alloc::Flags,
    bindings,
    fs::File,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Acquire, Atomic, Relaxed, Release},
        Refcount,
    },
};

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
    /// [`Direction::FromFile`]) or writes from; what it allocates, it
    /// allocates with `gfp`.
    fn bvec_iter(&self, dir: Direction, gfp: Flags) -> Result<BvecIter>;

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
    /// Buffered I/O that must not block (`IOCB_NOWAIT`), and for a read
    /// starts no I/O either (`IOCB_NOIO`): it is done with what the page
    /// cache holds, or ends early, short or with `-EAGAIN`.
    BufferedNowait,
}

impl IoMode {
    /// Whether the I/O may end with `-EAGAIN` for what would block.
    fn is_nowait(self) -> bool {
        matches!(self, Self::DirectNowait | Self::BufferedNowait)
    }

    /// Whether the I/O bypasses the page cache, and so may complete later.
    fn is_direct(self) -> bool {
        matches!(self, Self::Direct | Self::DirectNowait)
    }
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

    /// Whether the last I/O was submitted with a NOWAIT [`IoMode`], so
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
        // outlive what it describes. A NOWAIT attempt may not sleep for
        // memory either; the worker's try may.
        let gfp = match mode.is_nowait() {
            true => GFP_NOWAIT | __GFP_NOWARN,
            false => GFP_KERNEL,
        };
        let iter = match owner.bvec_iter(dir, gfp) {
            Ok(iter) => iter,
            Err(e) => return Err((owner, e)),
        };
        let io = owner.into_file_io();
        // The iterator is moved into the submission and gone with it: once
        // `put` below hands the owner back, what it describes may be freed.
        let ret = {
            let mut iter = iter;
            // SAFETY: The owner gave `io` up to this I/O, so nothing else
            // uses it until `put` hands it back. `iter` describes memory
            // that `IoOwner` keeps valid meanwhile.
            unsafe {
                let this = io.as_ref();
                let iocb = this.iocb.get();
                let filp = file.as_ptr();
                let nowait = mode.is_nowait();
                *this.file.get() = Some(file);
                *this.write.get() = false;
                this.nowait.store(nowait, Relaxed);
                iocb.write(pin_init::zeroed());
                (*iocb).ki_filp = filp;
                (*iocb).ki_pos = pos;
                (*iocb).ki_ioprio = ioprio;
                if mode.is_direct() {
                    (*iocb).ki_flags = bindings::IOCB_DIRECT as i32;
                    (*iocb).ki_complete = Some(Self::complete_callback::<O>);
                }
                if nowait {
                    (*iocb).ki_flags |= ffi::IOCB_NOWAIT;
                }
                // A buffered read may not start readahead from here: the
                // worker does, when it takes what the page cache lacks.
                if mode == IoMode::BufferedNowait && dir == Direction::FromFile {
                    (*iocb).ki_flags |= ffi::IOCB_NOIO;
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
    fn bvec_iter(&self, dir: Direction, gfp: Flags) -> Result<BvecIter> {
        Request::bvec_iter(self, dir.iter_dir(), gfp)
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
