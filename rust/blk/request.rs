// SPDX-License-Identifier: GPL-2.0

//! Requests owned by the driver.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use super::{
    bvec::{BvecIter, BvecTable, IterDir},
    disk::Disk,
    gen_disk::DiskOperations,
    tag_set::Operations,
};
use crate::helpers_ffi as ffi;
use core::{marker::PhantomData, mem::ManuallyDrop, ptr::NonNull};
use kernel::{alloc::Flags, bindings, prelude::*, types::ForeignOwnable};

/// The operation of a request (`req_op()`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    /// `REQ_OP_READ`.
    Read,
    /// `REQ_OP_WRITE`.
    Write,
    /// `REQ_OP_FLUSH`.
    Flush,
    /// `REQ_OP_DISCARD`.
    Discard,
    /// `REQ_OP_WRITE_ZEROES`.
    WriteZeroes,
    /// Any other operation, by number.
    Other(u32),
}

/// A block layer status (`blk_status_t`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Status(bindings::blk_status_t);

impl Status {
    /// `BLK_STS_OK`.
    pub(crate) const OK: Status = Status(bindings::BLK_STS_OK as bindings::blk_status_t);

    /// The status for a negative errno, as `errno_to_blk_status()` maps it.
    pub(crate) fn from_errno(errno: i32) -> Status {
        // SAFETY: `errno_to_blk_status` is a pure table lookup.
        Status(unsafe { bindings::errno_to_blk_status(errno) })
    }

    /// `BLK_STS_IOERR`.
    pub(crate) fn ioerr() -> Status {
        Self::from_errno(EIO.to_errno())
    }
}

/// A started request that the driver owns, until it ends or completes it.
///
/// Dropping a `Request` without [`Request::end`] or
/// [`Request::complete_inline`]
/// ends it with `BLK_STS_IOERR`, so that no request is ever lost.
///
/// # Invariants
///
/// `ptr` points to a request of a tag set of `T` that blk-mq has handed to
/// the driver and that was started. Its PDU holds an initialised
/// `T::RequestData`. No other `Request` for it exists, and blk-mq does not
/// end it while this one exists.
pub(crate) struct Request<T: Operations> {
    ptr: NonNull<bindings::request>,
    _p: PhantomData<T>,
}

// SAFETY: A request may be ended or completed from any context and thread.
unsafe impl<T: Operations> Send for Request<T> {}

impl<T: Operations> Request<T> {
    /// Creates the owning token of `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must satisfy the type invariants, in particular no other
    /// `Request` for it may exist.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::request) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self {
            // SAFETY: The caller passes a valid request.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            _p: PhantomData,
        }
    }

    /// Gives up the token, returning the raw request.
    pub(crate) fn into_raw(self) -> *mut bindings::request {
        ManuallyDrop::new(self).ptr.as_ptr()
    }

    /// The raw request.
    pub(crate) fn as_raw(&self) -> *mut bindings::request {
        self.ptr.as_ptr()
    }

    fn cmd_flags(&self) -> u32 {
        // SAFETY: By the type invariant the request is valid, and the driver
        // owns it, so its flags do not change under us.
        unsafe { (*self.as_raw()).cmd_flags }
    }

    /// The operation (`req_op()`).
    pub(crate) fn op(&self) -> Op {
        let op = self.cmd_flags() & ((1u32 << bindings::REQ_OP_BITS) - 1);
        match op {
            bindings::req_op_REQ_OP_READ => Op::Read,
            bindings::req_op_REQ_OP_WRITE => Op::Write,
            bindings::req_op_REQ_OP_FLUSH => Op::Flush,
            bindings::req_op_REQ_OP_DISCARD => Op::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            other => Op::Other(other),
        }
    }

    /// First sector (`blk_rq_pos()`).
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: As in `cmd_flags`.
        unsafe { (*self.as_raw()).__sector }
    }

    /// Remaining bytes (`blk_rq_bytes()`).
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: As in `cmd_flags`.
        unsafe { (*self.as_raw()).__data_len }
    }

    /// `REQ_FUA`: the data must be on stable storage on completion.
    #[allow(dead_code, reason = "loop does not advertise FUA; blk-mq emulates it")]
    pub(crate) fn is_fua(&self) -> bool {
        self.cmd_flags() & (1 << bindings::req_flag_bits___REQ_FUA) != 0
    }

    /// `REQ_PREFLUSH`: flush the cache before the data.
    #[allow(dead_code, reason = "blk-mq turns PREFLUSH into separate flushes")]
    pub(crate) fn is_preflush(&self) -> bool {
        self.cmd_flags() & (1 << bindings::req_flag_bits___REQ_PREFLUSH) != 0
    }

    /// `REQ_NOUNMAP`: write zeroes must not deallocate.
    pub(crate) fn is_nounmap(&self) -> bool {
        self.cmd_flags() & (1 << bindings::req_flag_bits___REQ_NOUNMAP) != 0
    }

    /// I/O priority (`req_get_ioprio()`).
    pub(crate) fn ioprio(&self) -> u16 {
        // SAFETY: As in `cmd_flags`; `bio` is null or a valid bio.
        unsafe {
            let bio = (*self.as_raw()).bio;
            if bio.is_null() {
                0
            } else {
                (*bio).bi_ioprio
            }
        }
    }

    /// The index of the hardware queue the request was queued to.
    pub(crate) fn hw_queue(&self) -> u32 {
        // SAFETY: As in `cmd_flags`; a started request has its hardware
        // context, which lives as long as the queue.
        unsafe { (*(*self.as_raw()).mq_hctx).queue_num }
    }

    /// The data of the queue the request belongs to.
    pub(crate) fn queue_data(&self) -> <T::QueueData as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: The request is valid and its queue outlives it; `queuedata`
        // holds `T::QueueData::into_foreign()` until the disk is freed, which
        // is after its last request.
        unsafe { T::QueueData::borrow((*(*self.as_raw()).q).queuedata) }
    }

    /// Holds the request's queue beyond the request's end, for code that
    /// uses the queue's data after handing the request on.
    pub(crate) fn queue_ref(&self) -> QueueRef<T> {
        // SAFETY: The request is valid and holds a usage reference of its
        // queue until it is freed, so taking another cannot race with the
        // counter's end.
        let queue = unsafe {
            let queue = (*self.as_raw()).q;
            ffi::rloop_queue_usage_get(queue);
            NonNull::new_unchecked(queue)
        };
        // INVARIANT: The reference was taken just above.
        QueueRef {
            queue,
            _p: PhantomData,
        }
    }

    /// The driver data of the request.
    pub(crate) fn data(&self) -> &T::RequestData {
        // SAFETY: By the type invariant, the PDU holds an initialised
        // `T::RequestData`, which lives as long as the request.
        unsafe { &*bindings::blk_mq_rq_to_pdu(self.as_raw()).cast::<T::RequestData>() }
    }

    /// Ends the request with `status` (`blk_mq_end_request()`).
    pub(crate) fn end(self, status: Status) {
        let rq = self.into_raw();
        // SAFETY: We owned the started request and give it back.
        unsafe { bindings::blk_mq_end_request(rq, status.0) };
    }

    /// Runs the driver's completion, [`Operations::complete`], here and
    /// now: on the current CPU, in the current context, which may be hard
    /// IRQ.
    ///
    /// This is not `blk_mq_complete_request()`: the completion is not sent
    /// back to the submitting CPU (a loop request ends where its backing
    /// I/O ends, and bouncing it costs an IPI or a softirq per I/O). Nor is
    /// `blk_should_fake_timeout()` consulted first, as loop.c does, so the
    /// `fail_io_timeout` fault injection does not apply.
    pub(crate) fn complete_inline(self) {
        T::complete(self)
    }

    /// Accounts the first `done` bytes of the request as transferred
    /// (`blk_update_request()`), for a short read or write, and keeps the
    /// rest, which starts at the next bio and sector, to be submitted
    /// again. `EINVAL`, with nothing accounted, unless `done` is fewer
    /// bytes than the request has: the request would end.
    pub(crate) fn advance(&mut self, done: u32) -> Result {
        if done >= self.bytes() {
            return Err(EINVAL);
        }
        // SAFETY: We own the started request (type invariant). With fewer
        // bytes than it has, `blk_update_request()` ends none of it but
        // the bios done, and the request stays ours.
        unsafe { bindings::blk_update_request(self.as_raw(), Status::OK.0, done) };
        Ok(())
    }

    /// Zeroes every data buffer of the request (`zero_fill_bio()`).
    pub(crate) fn zero_fill(&self) {
        // SAFETY: The bios of an owned request are valid and ours to fill.
        unsafe {
            let mut bio = (*self.as_raw()).bio;
            while !bio.is_null() {
                bindings::zero_fill_bio(bio);
                bio = (*bio).bi_next;
            }
        }
    }

    /// The request that holds the field of type `F` at `field`.
    ///
    /// # Safety
    ///
    /// `field` must point to the `F` field of the `T::RequestData` of a
    /// request for which no `Request` exists, and which the driver owns.
    pub(crate) unsafe fn from_field<F>(field: NonNull<F>) -> Self
    where
        T: RequestField<F>,
    {
        // SAFETY: By `RequestField`, the field sits `OFFSET` bytes into the
        // PDU, so this is the PDU, and the request precedes it.
        unsafe {
            let pdu = field.as_ptr().cast::<u8>().sub(T::OFFSET);
            Self::from_raw(bindings::blk_mq_rq_from_pdu(pdu.cast()))
        }
    }

    /// The field of type `F` of this request's data.
    pub(crate) fn field<F>(&self) -> NonNull<F>
    where
        T: RequestField<F>,
    {
        let pdu = core::ptr::from_ref(self.data()).cast::<u8>();
        // SAFETY: By `RequestField`, `OFFSET` is within the PDU.
        unsafe { NonNull::new_unchecked(pdu.add(T::OFFSET).cast_mut().cast()) }
    }
}

impl<T: DiskOperations> Request<T> {
    /// The disk the request was queued to.
    pub(crate) fn disk(&self) -> &Disk<T> {
        // SAFETY: Only `GenDisk::new` makes queues on a tag set of `T`, so
        // the request's queue has a disk of `T`, which is freed only after
        // the queue's last request has ended, after this borrow.
        unsafe { Disk::from_raw((*(*self.as_raw()).q).disk) }
    }
}

impl<T: Operations + RequestField<BvecTable>> Request<T> {
    /// Builds an iterator over the request's pages for a transfer in
    /// `dir`, using the request's [`BvecTable`], allocated with `gfp`, for
    /// a request of several bios. It describes the request's memory only
    /// while the request is owned by the driver (see [`BvecIter`]).
    pub(crate) fn bvec_iter(&self, dir: IterDir, gfp: Flags) -> Result<BvecIter> {
        // SAFETY: By the type invariant the request is started and owned by
        // us; the table is the one in its data.
        unsafe {
            BvecIter::new(
                self.as_raw(),
                &*self.field::<BvecTable>().as_ptr(),
                dir,
                gfp,
            )
        }
    }

    /// Frees the vectors that [`Self::bvec_iter`] gathered, once the
    /// request's I/O is over: an idle request keeps none.
    pub(crate) fn release_bvecs(&mut self) {
        // SAFETY: The token owns the request, and an iterator built on the
        // table lives only while the request is given up to its I/O, which
        // gives the token back when it is over.
        unsafe { (*self.field::<BvecTable>().as_ptr()).release() }
    }
}

/// A usage reference of a request queue (`q_usage_counter`): the queue
/// cannot finish freezing while it is held, so a disk being deleted waits
/// for it, and the queue's data stays.
///
/// # Invariants
///
/// `queue` is a queue of `T` of which this holds a usage reference.
pub(crate) struct QueueRef<T: Operations> {
    queue: NonNull<bindings::request_queue>,
    _p: PhantomData<T>,
}

impl<T: Operations> QueueRef<T> {
    /// The data of the queue.
    pub(crate) fn queue_data(&self) -> <T::QueueData as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: By the type invariant, the queue cannot have finished
        // freezing, and `queuedata` is released only after the disk has
        // been deleted, which waits for that.
        unsafe { T::QueueData::borrow((*self.queue.as_ptr()).queuedata) }
    }
}

impl<T: Operations> Drop for QueueRef<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the reference is ours to drop.
        unsafe { ffi::rloop_queue_usage_put(self.queue.as_ptr()) };
    }
}

impl<T: Operations> Drop for Request<T> {
    fn drop(&mut self) {
        // SAFETY: The request was neither ended nor completed, and is ours.
        unsafe { bindings::blk_mq_end_request(self.as_raw(), Status::ioerr().0) };
    }
}

/// A field of type `F` in the request data of `Self`.
///
/// # Safety
///
/// `OFFSET` must be the offset of a field of type `F` in
/// `Self::RequestData`. Use [`impl_request_field!`] to implement it.
pub(crate) unsafe trait RequestField<F>: Operations {
    /// Offset of the field in bytes.
    const OFFSET: usize;
}

/// Implements [`RequestField`] for a field of the request data.
///
/// `impl_request_field!(Ops, Data, field: Type)` where `Data` is
/// `<Ops as Operations>::RequestData`.
macro_rules! impl_request_field {
    ($ops:ty, $data:ty, $field:ident : $fty:ty) => {
        // SAFETY: `offset_of!` gives the offset of `$field`, which the
        // checks below prove is a `$fty` in the request data of `$ops`.
        unsafe impl $crate::blk::RequestField<$fty> for $ops {
            const OFFSET: usize = {
                let _same_data: fn(&<$ops as $crate::blk::Operations>::RequestData) -> &$data =
                    |d| d;
                let _field_type: fn(&$data) -> &$fty = |d| &d.$field;
                ::core::mem::offset_of!($data, $field)
            };
        }
    };
}
pub(crate) use impl_request_field;
