// SPDX-License-Identifier: GPL-2.0

//! How a loop request ends, from the result of its backing-file operation.
//!
//! Kernel-free: besides `core` it uses only `crate::kernel_defs`, the
//! kernel crate's error codes, for which host `cargo test` (tests/host)
//! has a stand-in; both compile this file unchanged.

use crate::kernel_defs::{eopnotsupp, Error, EIO, SECTOR_SHIFT};

/// `MAX_ERRNO`: results from -1 to `-MAX_ERRNO` are errnos.
const MAX_ERRNO: i32 = 4095;

/// How to end a request (`lo_complete_rq`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Completion {
    /// End the request, successfully or with this error.
    Done(Result<(), Error>),
    /// A short read or write: account this many bytes and submit the
    /// rest again.
    RetryRest(u32),
    /// A read that got no data at all: zero the buffers, end with EIO.
    ZeroFillAndFail,
    /// A NOWAIT attempt that would have blocked: do all of the request
    /// again, allowed to block. Nothing of the attempt is reported.
    Resubmit,
}

/// The result of a backing-file operation as the kernel reports it, the
/// bytes transferred or a negative errno. Any other negative value is an
/// I/O error.
pub(crate) fn io_result(ret: isize) -> Result<usize, Error> {
    if let Ok(done) = usize::try_from(ret) {
        return Ok(done);
    }
    match i32::try_from(ret) {
        Ok(errno) if errno >= -MAX_ERRNO => Err(Error::from_errno(errno)),
        _ => Err(EIO),
    }
}

/// `lo_complete_rq`: `ret` is the bytes transferred or the error, `bytes`
/// the request's size.
///
/// Unlike loop.c, a short write is never reported as success: the file
/// took only part of it (a file system filling up), and the rest would be
/// lost. The rest is retried, which makes progress or returns the real
/// error; a write that took nothing, or less than a sector, fails.
pub(crate) fn completion(is_read: bool, ret: Result<usize, Error>, bytes: u32) -> Completion {
    let done = match ret {
        Ok(done) => done,
        Err(e) => return Completion::Done(Err(e)),
    };
    if done as u64 >= u64::from(bytes) {
        return Completion::Done(Ok(()));
    }
    // `done` < `bytes` here, so it fits.
    let done = done as u32;
    // The rest must start on a sector: the request's position is one, and
    // blk-mq advances it by whole sectors only. Moving the bytes of a
    // partial sector again is harmless.
    match (is_read, whole_sectors(done)) {
        // No progress: end of file inside the first sector (loop.c: EOF).
        (true, 0) => Completion::ZeroFillAndFail,
        (false, 0) => Completion::Done(Err(EIO)),
        (_, whole) => Completion::RetryRest(whole),
    }
}

/// `bytes` rounded down to a whole number of sectors.
fn whole_sectors(bytes: u32) -> u32 {
    bytes >> SECTOR_SHIFT << SECTOR_SHIFT
}

/// [`completion`] for an I/O submitted with `IOCB_NOWAIT`, in the task
/// that submitted the request. Only a full transfer, or a read that
/// stopped after whole sectors, counts: everything else is redone whole
/// by a worker, allowed to block, whose answer is loop.c's.
///
/// - `EAGAIN` means it would have blocked, possibly after part of the work.
/// - Any other error may be the task's own, which loop.c's kthread does
///   not have: `EINTR` for a fatal signal, `ENOSPC` without the
///   capability that lets a worker use a file system's reserve. A real
///   error comes back from the worker.
/// - A short write more likely means "stopped before blocking" than
///   anything a blocking write would return; writing the same data twice
///   is harmless while the request is not ended.
/// - A short read that is not whole sectors (an `lo_offset` off a sector
///   boundary, with the page cache's stop at a page) keeps the sectors it
///   read and retries the rest.
pub(crate) fn nowait_completion(
    is_read: bool,
    ret: Result<usize, Error>,
    bytes: u32,
) -> Completion {
    match ret {
        Ok(done) if done as u64 >= u64::from(bytes) => Completion::Done(Ok(())),
        // `done` < `bytes` here, so it fits.
        Ok(done) if is_read => match whole_sectors(done as u32) {
            0 => Completion::Resubmit,
            whole => Completion::RetryRest(whole),
        },
        _ => Completion::Resubmit,
    }
}

/// `loop_handle_cmd` for requests done without a kiocb (flush, discard,
/// write zeroes, refused writes): `EOPNOTSUPP` stays, any other error
/// becomes `EIO`.
pub(crate) fn sync_result(ret: Result<(), Error>) -> Result<(), Error> {
    match ret {
        Ok(()) => Ok(()),
        Err(e) if e == eopnotsupp() => Err(e),
        Err(_) => Err(EIO),
    }
}
