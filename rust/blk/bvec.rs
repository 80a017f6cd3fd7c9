// SPDX-License-Identifier: GPL-2.0

//! The data buffers of a request as an `ITER_BVEC` iterator.
//!
//! C headers: [`include/linux/bvec.h`](srctree/include/linux/bvec.h),
//! [`include/linux/uio.h`](srctree/include/linux/uio.h)

use core::cell::UnsafeCell;
use kernel::{bindings, ffi::c_ulong, prelude::*};

/// Number of `bio_vec`s kept in each request, enough for requests within
/// the default segment limit (`BLK_MAX_SEGMENTS`).
pub(crate) const INLINE_BVECS: usize = 128;

/// Per-request storage for the `bio_vec`s of a request made of several
/// bios, whose vectors must be gathered into one array. It is reused for
/// every I/O of the request, so the I/O path does not allocate; a request
/// with more vectors than [`INLINE_BVECS`] falls back to a heap array.
///
/// # Invariants
///
/// The arrays are accessed only by the owner of the request that holds
/// this table, and stay untouched while an iterator built on them is in
/// use.
pub(crate) struct BvecTable {
    inline: UnsafeCell<[bindings::bio_vec; INLINE_BVECS]>,
    spill: UnsafeCell<KVec<bindings::bio_vec>>,
}

// SAFETY: By the type invariant, only the request's single owner uses it.
unsafe impl Send for BvecTable {}
// SAFETY: See `Send`.
unsafe impl Sync for BvecTable {}

impl BvecTable {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Self {
            inline: UnsafeCell::new(pin_init::zeroed()),
            spill: UnsafeCell::new(KVec::new()),
        }
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
    /// bios gathers its vectors into `table`.
    ///
    /// # Safety
    ///
    /// `rq` must be a started request owned by the caller, and `table` the
    /// [`BvecTable`] of its data.
    pub(super) unsafe fn new(
        rq: *mut bindings::request,
        table: &BvecTable,
        dir: IterDir,
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
                let vecs: *mut bindings::bio_vec = if nr <= INLINE_BVECS {
                    (*table.inline.get()).as_mut_ptr()
                } else {
                    let spill = &mut *table.spill.get();
                    spill.clear();
                    // Callers run in a no-I/O allocation scope.
                    spill.reserve(nr, GFP_KERNEL)?;
                    spill.spare_capacity_mut().as_mut_ptr().cast()
                };
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
