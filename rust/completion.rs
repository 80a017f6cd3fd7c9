// SPDX-License-Identifier: GPL-2.0

//! How a loop request ends, from the result of its backing-file operation.
//!
//! Kernel-free: it uses only `core`, so host `cargo test` (tests/host)
//! compiles this file unchanged.

/// `EIO`.
pub(crate) const EIO: i32 = 5;
/// `EAGAIN`.
pub(crate) const EAGAIN: i32 = 11;
/// `EOPNOTSUPP`: not among the kernel crate's error codes in 7.2.
pub(crate) const EOPNOTSUPP: i32 = 95;
/// `ENOSYS`: not among the kernel crate's error codes in 7.2.
pub(crate) const ENOSYS: i32 = 38;

/// How to end a request (`lo_complete_rq`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Completion {
    /// End the request with this errno (0 for success).
    Done(i32),
    /// A short read: account this many bytes and requeue the rest.
    RetryRest(u32),
    /// A read that got no data at all: zero the buffers, end with EIO.
    ZeroFillAndFail,
    /// A NOWAIT attempt that would have blocked: do all of the request
    /// again, allowed to block. Nothing of the attempt is reported.
    Resubmit,
}

/// `lo_complete_rq`: `ret` is the bytes transferred or a negative errno,
/// `bytes` the request's size. A short write counts as success, as in
/// loop.c.
pub(crate) fn completion(is_read: bool, ret: isize, bytes: u32) -> Completion {
    if ret < 0 {
        return Completion::Done(i32::try_from(ret).unwrap_or(-EIO));
    }
    if ret as u64 == u64::from(bytes) || !is_read {
        return Completion::Done(0);
    }
    if ret > 0 {
        // `ret` < `bytes` here, so it fits.
        Completion::RetryRest(ret as u32)
    } else {
        Completion::ZeroFillAndFail
    }
}

/// [`completion`] for an I/O submitted with `IOCB_NOWAIT`. `-EAGAIN`
/// means it would have blocked, possibly after doing part of the work. A
/// short write, which loop.c would report as success, is redone too: under
/// NOWAIT it more likely means "stopped before blocking" than anything a
/// blocking write would return, and writing the same data twice is
/// harmless while the request is not ended.
pub(crate) fn nowait_completion(is_read: bool, ret: isize, bytes: u32) -> Completion {
    if ret == -(EAGAIN as isize) || (!is_read && ret >= 0 && (ret as u64) < u64::from(bytes)) {
        return Completion::Resubmit;
    }
    completion(is_read, ret, bytes)
}

/// `loop_handle_cmd` for requests done without a kiocb (flush, discard,
/// write zeroes, refused writes): `EOPNOTSUPP` stays, any other error
/// becomes `EIO`.
pub(crate) fn sync_result(ret: isize) -> isize {
    match ret {
        0 => 0,
        r if r == -(EOPNOTSUPP as isize) => r,
        _ => -(EIO as isize),
    }
}
