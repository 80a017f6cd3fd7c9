// SPDX-License-Identifier: GPL-2.0

//! Tag sets and the blk-mq operations table.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use super::request::Request;
use core::{marker::PhantomData, pin::Pin};
use kernel::{
    bindings,
    error::{from_result, to_result},
    ffi::{c_int, c_uint},
    prelude::*,
    types::{ForeignOwnable, Opaque},
};

/// Runs the pinned initialiser `init` on `slot` (`PinInit::__pinned_init`,
/// which Linux 7.3's pin-init renamed `__init`).
///
/// # Safety
///
/// As for `PinInit::__pinned_init`: `slot` is valid for writes, and the
/// value written there is never moved.
unsafe fn init_pinned<T, E>(init: impl PinInit<T, E>, slot: *mut T) -> Result<(), E> {
    // SAFETY: As required by this function.
    #[cfg(not(rloop_linux_7_3))]
    let result = unsafe { init.__pinned_init(slot) };
    // SAFETY: As required by this function.
    #[cfg(rloop_linux_7_3)]
    let result = unsafe { init.__init(slot) };
    result
}

/// Tag set flags (`BLK_MQ_F_*`).
pub(crate) mod flags {
    use kernel::bindings;

    /// The driver stacks on other block devices or files.
    pub(crate) const STACKING: u32 = bindings::BLK_MQ_F_STACKING;
    /// No I/O scheduler by default.
    pub(crate) const NO_SCHED_BY_DEFAULT: u32 = bindings::BLK_MQ_F_NO_SCHED_BY_DEFAULT;
    /// `queue_rq` may sleep: blk-mq calls it only where sleeping is allowed.
    pub(crate) const BLOCKING: u32 = bindings::BLK_MQ_F_BLOCKING;
}

/// The operations of a blk-mq driver.
///
/// For the C side, see `struct blk_mq_ops` in
/// [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h).
pub(crate) trait Operations: Sized + 'static {
    /// Driver data of each request (the blk-mq PDU). It is initialised once
    /// when blk-mq allocates the request and reused for every I/O.
    type RequestData: Send + Sync;

    /// Data of the request queue, lent to [`Operations::queue_rq`].
    type QueueData: ForeignOwnable + Send + Sync;

    /// Initialises the data of one request.
    fn init_request_data() -> impl PinInit<Self::RequestData, Error>;

    /// Takes ownership of a started request. The driver ends it, completes
    /// it, or hands it on; a [`Request`] that is dropped ends with an error.
    fn queue_rq(
        queue_data: <Self::QueueData as ForeignOwnable>::Borrowed<'_>,
        rq: Request<Self>,
        is_last: bool,
    );

    /// Kicks off the requests of hardware queue `hw_queue` that were queued
    /// with `is_last == false`: blk-mq found it had no more for now.
    fn commit_rqs(queue_data: <Self::QueueData as ForeignOwnable>::Borrowed<'_>, hw_queue: u32);

    /// Ends a request whose work is done, from [`Request::complete_inline`], in
    /// any context including hard IRQ: it must not sleep.
    fn complete(rq: Request<Self>);
}

/// A blk-mq tag set, whose requests carry a `T::RequestData` each.
///
/// # Invariants
///
/// `inner` is a tag set initialised by `blk_mq_alloc_tag_set` with the
/// operations of `T` and `cmd_size` of `T::RequestData`, and is freed only
/// on drop.
#[pin_data(PinnedDrop)]
#[repr(transparent)]
pub(crate) struct TagSet<T: Operations> {
    #[pin]
    inner: Opaque<bindings::blk_mq_tag_set>,
    _p: PhantomData<T>,
}

// SAFETY: A tag set is used concurrently by blk-mq, which synchronises it.
unsafe impl<T: Operations> Send for TagSet<T> {}
// SAFETY: See `Send`: all shared access goes through blk-mq.
unsafe impl<T: Operations> Sync for TagSet<T> {}

impl<T: Operations> TagSet<T> {
    /// blk-mq puts a request's data right after its `struct request`, so
    /// the data can be aligned no more strictly than that.
    const DATA_FITS_ALIGNMENT: () = assert!(
        core::mem::align_of::<T::RequestData>() <= core::mem::align_of::<bindings::request>()
    );

    /// Allocates a tag set of `nr_hw_queues` queues of `queue_depth` tags
    /// each, with `BLK_MQ_F_*` `flags`.
    pub(crate) fn new(
        nr_hw_queues: u32,
        queue_depth: u32,
        flags: u32,
    ) -> impl PinInit<Self, Error> {
        let () = Self::DATA_FITS_ALIGNMENT;
        let cmd_size = u32::try_from(core::mem::size_of::<T::RequestData>());
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::blk_mq_tag_set| {
                let cmd_size = cmd_size.map_err(|_| EINVAL)?;
                // SAFETY: `slot` is valid for writes; an all-zero tag set is
                // the documented starting point for `blk_mq_alloc_tag_set`.
                unsafe {
                    slot.write(bindings::blk_mq_tag_set {
                        ops: OperationsVTable::<T>::build(),
                        nr_hw_queues,
                        queue_depth,
                        cmd_size,
                        numa_node: bindings::NUMA_NO_NODE,
                        flags,
                        nr_maps: 1,
                        ..pin_init::zeroed()
                    })
                };
                // SAFETY: `slot` holds a filled-in tag set that is pinned.
                to_result(unsafe { bindings::blk_mq_alloc_tag_set(slot) })
            }),
            _p: PhantomData,
        })
    }

    /// Returns the raw tag set.
    pub(crate) fn as_raw(&self) -> *mut bindings::blk_mq_tag_set {
        self.inner.get()
    }
}

#[pinned_drop]
impl<T: Operations> PinnedDrop for TagSet<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant, `inner` was allocated and not freed.
        unsafe { bindings::blk_mq_free_tag_set(self.inner.get()) };
    }
}

struct OperationsVTable<T: Operations>(PhantomData<T>);

impl<T: Operations> OperationsVTable<T> {
    /// # Safety
    ///
    /// Called by blk-mq with a live `hctx` of a queue created with
    /// `T::QueueData` as `queuedata`, and `bd.rq` a request of a tag set of
    /// `T` that blk-mq hands to the driver.
    unsafe extern "C" fn queue_rq_callback(
        hctx: *mut bindings::blk_mq_hw_ctx,
        bd: *const bindings::blk_mq_queue_data,
    ) -> bindings::blk_status_t {
        // SAFETY: `bd` is valid for the duration of this call.
        let (rq, last) = unsafe { ((*bd).rq, (*bd).last) };
        // SAFETY: The request is handed to the driver, which starts it.
        unsafe { bindings::blk_mq_start_request(rq) };
        // SAFETY: `rq` is started and owned by the driver from here on; its
        // PDU was initialised by `init_request_callback`.
        let rq = unsafe { Request::<T>::from_raw(rq) };
        // SAFETY: `queuedata` came from `T::QueueData::into_foreign` when
        // the disk was allocated, and is released only after the queue.
        let queue_data = unsafe { T::QueueData::borrow((*(*hctx).queue).queuedata) };
        T::queue_rq(queue_data, rq, last);
        bindings::BLK_STS_OK as bindings::blk_status_t
    }

    /// # Safety
    ///
    /// Called by blk-mq with a live `hctx`, as for `queue_rq_callback`.
    unsafe extern "C" fn commit_rqs_callback(hctx: *mut bindings::blk_mq_hw_ctx) {
        // SAFETY: As in `queue_rq_callback`.
        let (queue_data, hw_queue) = unsafe {
            (
                T::QueueData::borrow((*(*hctx).queue).queuedata),
                (*hctx).queue_num,
            )
        };
        T::commit_rqs(queue_data, hw_queue);
    }

    /// # Safety
    ///
    /// Called by blk-mq with a request whose PDU is `cmd_size` bytes of
    /// uninitialised memory, suitably aligned.
    unsafe extern "C" fn init_request_callback(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx_idx: c_uint,
        _numa_node: c_int,
    ) -> c_int {
        from_result(|| {
            // SAFETY: `rq` is valid; its PDU is `T::RequestData`-sized.
            let pdu = unsafe { bindings::blk_mq_rq_to_pdu(rq) }.cast::<T::RequestData>();
            // SAFETY: `pdu` is valid for writes and never moves: blk-mq keeps
            // requests in place until `exit_request_callback`.
            unsafe { init_pinned(T::init_request_data(), pdu) }?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by blk-mq once for a request whose `init_request_callback`
    /// succeeded.
    unsafe extern "C" fn exit_request_callback(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx_idx: c_uint,
    ) {
        // SAFETY: `rq` is valid and its PDU holds an initialised
        // `T::RequestData` that is dropped only here.
        unsafe {
            let pdu = bindings::blk_mq_rq_to_pdu(rq).cast::<T::RequestData>();
            core::ptr::drop_in_place(pdu);
        }
    }

    const VTABLE: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(Self::queue_rq_callback),
        commit_rqs: Some(Self::commit_rqs_callback),
        init_request: Some(Self::init_request_callback),
        exit_request: Some(Self::exit_request_callback),
        ..pin_init::zeroed()
    };

    const fn build() -> &'static bindings::blk_mq_ops {
        &Self::VTABLE
    }
}
