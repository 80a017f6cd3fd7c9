// SPDX-License-Identifier: GPL-2.0

//! The data buffers of a request as an `ITER_BVEC` iterator.
//!
//! C headers: [`include/linux/bvec.h`](srctree/include/linux/bvec.h),
//! [`include/linux/uio.h`](srctree/include/linux/uio.h)

use core::cell::UnsafeCell;
use kernel::{alloc::Flags, bindings, ffi::c_ulong, prelude::*};

/// Per-request storage for the `bio_vec`s of a request made of several
/// bios, whose vectors must be gathered into one array (loop.c's
/// `cmd->bvec`). The array is allocated for such a request's I/O, kept for
/// its retries, and freed when the request ends
/// ([`Request::release_bvecs`](super::Request::release_bvecs)): a request
/// pool holds none while idle, and a single-bio request never needs one.
/// (A request ended by dropping its token, on an error path, keeps its
/// array until its next end, or until the pool is freed.)
///
/// # Invariants
///
/// The array is accessed only by the owner of the request that holds this
/// table, and stays untouched while an iterator built on it is in use.
pub(crate) struct BvecTable {
    vecs: UnsafeCell<KVec<bindings::bio_vec>>,
}

// SAFETY: By the type invariant, only the request's single owner uses it.
unsafe impl Send for BvecTable {}
// SAFETY: See `Send`.
unsafe impl Sync for BvecTable {}

impl BvecTable {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Self {
            vecs: UnsafeCell::new(KVec::new()),
        }
    }

    /// Frees the array.
    ///
    /// # Safety
    ///
    /// The caller owns the request that holds this table, and no iterator
    /// built on it is in use.
    pub(super) unsafe fn release(&self) {
        // SAFETY: By the caller's guarantee, nothing else uses the array.
        unsafe { *self.vecs.get() = KVec::new() };
    }
}

/// Which way an iterator moves data through the request's pages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum IterDir {
    /// The pages are written, as for a read request (`ITER_DEST`).
    Dest,
    /// The pages are read, as for a write request (`ITER_SOURCE`).
    Source,
}

/// An `ITER_BVEC` iterator over the pages of one request.
///
/// # Invariants
///
/// `iter` describes memory of the request that built it, which stays valid
/// while that request is owned by the driver. Only
/// [`Request::bvec_iter`](super::Request::bvec_iter) builds one.
pub(crate) struct BvecIter {
    iter: bindings::iov_iter,
}

impl BvecIter {
    /// The C iterator, for a file's `read_iter` or `write_iter`.
    pub(crate) fn as_raw(&mut self) -> *mut bindings::iov_iter {
        &raw mut self.iter
    }
}

/// The bytes of the current vector that `it` has consumed: `bi_bvec_done`,
/// which Linux 7.3 renamed `bi_offset`.
fn bvec_done(it: &bindings::bvec_iter) -> u32 {
    #[cfg(not(rloop_linux_7_3))]
    let done = it.bi_bvec_done;
    #[cfg(rloop_linux_7_3)]
    let done = it.bi_offset;
    done
}

/// Sets what [`bvec_done`] reads.
fn set_bvec_done(it: &mut bindings::bvec_iter, done: u32) {
    #[cfg(not(rloop_linux_7_3))]
    {
        it.bi_bvec_done = done;
    }
    #[cfg(rloop_linux_7_3)]
    {
        it.bi_offset = done;
    }
}

/// Calls `f` for each `bio_vec` of the request (`rq_for_each_bvec()`).
///
/// # Safety
///
/// `rq` must be a valid request owned by the caller.
unsafe fn for_each_bvec(rq: *mut bindings::request, mut f: impl FnMut(bindings::bio_vec)) {
    // SAFETY: The bios and vectors of an owned request are valid.
    unsafe {
        let mut bio = (*rq).bio;
        while !bio.is_null() {
            // `bvec_iter` is packed: copy it, never borrow its fields.
            let mut it = (*bio).bi_iter;
            while it.bi_size > 0 {
                let bv = *(*bio).bi_io_vec.add(it.bi_idx as usize);
                let done = bvec_done(&it);
                let len = core::cmp::min(bv.bv_len - done, it.bi_size);
                f(bindings::bio_vec {
                    bv_page: bv.bv_page,
                    bv_len: len,
                    bv_offset: bv.bv_offset + done,
                });
                if done + len == bv.bv_len {
                    it.bi_idx += 1;
                    set_bvec_done(&mut it, 0);
                } else {
                    set_bvec_done(&mut it, done + len);
                }
                it.bi_size -= len;
            }
            bio = (*bio).bi_next;
        }
    }
}

impl BvecIter {
    /// Builds an iterator over the pages of `rq` for a transfer in `dir`.
    /// A single-bio request uses the bio's own vector; a request of several
    /// bios gathers its vectors into `table`, allocated with `gfp`.
    ///
    /// # Safety
    ///
    /// `rq` must be a started request owned by the caller, and `table` the
    /// [`BvecTable`] of its data.
    pub(super) unsafe fn new(
        rq: *mut bindings::request,
        table: &BvecTable,
        dir: IterDir,
        gfp: Flags,
    ) -> Result<Self> {
        let dir = match dir {
            IterDir::Dest => bindings::ITER_DEST,
            IterDir::Source => bindings::ITER_SOURCE,
        };
        // SAFETY: `rq` is valid, and owned so its size does not change.
        let bytes = unsafe { (*rq).__data_len } as usize;
        let mut nr = 0usize;
        // SAFETY: We own `rq`.
        unsafe { for_each_bvec(rq, |_| nr += 1) };

        let nr_segs = c_ulong::try_from(nr).map_err(|_| EINVAL)?;
        let mut iter = core::mem::MaybeUninit::<bindings::iov_iter>::uninit();
        // SAFETY: We own `rq`, so its bios are valid and stay so while this
        // token exists. The table belongs to `rq` and, by its invariant,
        // only we use it.
        unsafe {
            let bio = (*rq).bio;
            if bio == (*rq).biotail {
                let it = (*bio).bi_iter;
                let vecs = (*bio).bi_io_vec.add(it.bi_idx as usize);
                bindings::iov_iter_bvec(iter.as_mut_ptr(), dir, vecs, nr_segs, bytes);
                (*iter.as_mut_ptr()).iov_offset = bvec_done(&it) as usize;
            } else {
                let table = &mut *table.vecs.get();
                table.clear();
                // Kept from an earlier try of this request if large enough.
                table.reserve(nr, gfp)?;
                let vecs: *mut bindings::bio_vec = table.spare_capacity_mut().as_mut_ptr().cast();
                let mut i = 0;
                for_each_bvec(rq, |bv| {
                    vecs.add(i).write(bv);
                    i += 1;
                });
                bindings::iov_iter_bvec(iter.as_mut_ptr(), dir, vecs, nr_segs, bytes);
            }
        }
        // INVARIANT: `iter` points into this request's bios or table.
        Ok(Self {
            // SAFETY: `iov_iter_bvec()` initialised every field.
            iter: unsafe { iter.assume_init() },
        })
    }
}
