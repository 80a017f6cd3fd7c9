// SPDX-License-Identifier: GPL-2.0

//! Lock-free lists of owned requests, and plugging.
//!
//! C headers: [`include/linux/llist.h`](srctree/include/linux/llist.h),
//! [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)
//!
//! A [`RequestList`] collects requests from `queue_rq` and from completion
//! context, IRQ included, without a lock; its one consumer takes them all
//! at once, in the order they were added.

use super::{request::Request, tag_set::Operations, RequestField};
use crate::helpers_ffi as ffi;
use core::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};
use kernel::{bindings, types::Opaque};

/// The link of a request in a [`RequestList`], a field of its request data.
#[repr(transparent)]
pub(crate) struct RequestListNode {
    inner: Opaque<bindings::llist_node>,
}

// SAFETY: The node is only touched by the list that holds its request.
unsafe impl Send for RequestListNode {}
// SAFETY: See `Send`.
unsafe impl Sync for RequestListNode {}

impl RequestListNode {
    /// A node of no list. The list sets it when it takes the request.
    pub(crate) fn new() -> Self {
        Self {
            inner: Opaque::uninit(),
        }
    }
}

/// A multi-producer list of owned requests (`struct llist_head`).
///
/// Requests on the list are owned by it; dropping the list ends them with
/// an error, as dropping their [`Request`]s would. A list that outlives
/// its queue's last freeze is empty by then: its requests were in flight.
///
/// # Invariants
///
/// `head` is a valid `llist_head`. Every node on it is the
/// [`RequestListNode`] of a request of `T` whose `Request` token was given
/// up to the list.
pub(crate) struct RequestList<T: Operations + RequestField<RequestListNode>> {
    head: Opaque<bindings::llist_head>,
    _p: PhantomData<Request<T>>,
}

// SAFETY: Adding and taking are atomic operations on `head`, and requests
// may move between threads (`Request: Send`).
unsafe impl<T: Operations + RequestField<RequestListNode>> Send for RequestList<T> {}
// SAFETY: See `Send`: `llist_add` and `llist_del_all` may race freely.
unsafe impl<T: Operations + RequestField<RequestListNode>> Sync for RequestList<T> {}

impl<T: Operations + RequestField<RequestListNode>> RequestList<T> {
    /// An empty list.
    pub(crate) fn new() -> Self {
        // INVARIANT: A null `first` is an empty `llist_head`
        // (`init_llist_head()`).
        Self {
            head: Opaque::new(bindings::llist_head {
                first: core::ptr::null_mut(),
            }),
            _p: PhantomData,
        }
    }

    /// Adds `rq`. Returns `true` if the list was empty.
    pub(crate) fn push(&self, rq: Request<T>) -> bool {
        let node = rq.field::<RequestListNode>();
        let _ = rq.into_raw();
        // SAFETY: The node belongs to a request whose token was given up
        // just above, so it is on no list; `head` is valid.
        // INVARIANT: The list now owns the request.
        unsafe { ffi::rloop_llist_add(node.as_ref().inner.get(), self.head.get()) }
    }

    /// Whether the list is empty (`llist_empty()`). Another context may add
    /// to it at any time.
    pub(crate) fn is_empty(&self) -> bool {
        // SAFETY: `head` is valid.
        unsafe { ffi::rloop_llist_empty(self.head.get()) }
    }

    /// Takes every request on the list, oldest first.
    pub(crate) fn take_all(&self) -> RequestBatch<T> {
        // SAFETY: `head` is valid; `llist_del_all` detaches all nodes at
        // once, and `llist_reverse_order` relinks them oldest first.
        let first = unsafe {
            let newest = ffi::rloop_llist_del_all(self.head.get());
            bindings::llist_reverse_order(newest)
        };
        // INVARIANT: The nodes left this list with their requests.
        RequestBatch {
            next: first,
            _p: PhantomData,
        }
    }
}

impl<T: Operations + RequestField<RequestListNode>> Drop for RequestList<T> {
    fn drop(&mut self) {
        // Ends anything still on the list with an error.
        drop(self.take_all());
    }
}

/// The requests taken off a [`RequestList`], oldest first.
///
/// Requests not iterated over are ended with an error on drop.
///
/// # Invariants
///
/// `next` is null or the first node of a null-terminated chain, each the
/// [`RequestListNode`] of a request of `T` owned by this batch.
pub(crate) struct RequestBatch<T: Operations + RequestField<RequestListNode>> {
    next: *mut bindings::llist_node,
    _p: PhantomData<Request<T>>,
}

// SAFETY: The batch owns its requests, which may move between threads.
unsafe impl<T: Operations + RequestField<RequestListNode>> Send for RequestBatch<T> {}

impl<T: Operations + RequestField<RequestListNode>> Iterator for RequestBatch<T> {
    type Item = Request<T>;

    fn next(&mut self) -> Option<Request<T>> {
        let node = NonNull::new(self.next)?;
        // SAFETY: By the type invariant, `node` is a live node of the chain;
        // its successor is read before its request is handed out.
        self.next = unsafe { (*node.as_ptr()).next };
        // SAFETY: The node is the `RequestListNode` of a request owned by
        // this batch, which gives that ownership up here.
        // INVARIANT: The chain now starts at the next node.
        Some(unsafe { Request::from_field(node.cast::<RequestListNode>()) })
    }
}

impl<T: Operations + RequestField<RequestListNode>> Drop for RequestBatch<T> {
    fn drop(&mut self) {
        self.for_each(drop);
    }
}

/// Runs `f` with the current task plugged (`blk_start_plug()`), so that
/// the block I/O it submits is issued as one batch when it returns, or
/// when the task sleeps.
pub(crate) fn with_plug<R>(f: impl FnOnce() -> R) -> R {
    let mut plug = MaybeUninit::<bindings::blk_plug>::uninit();
    // SAFETY: `blk_start_plug` initialises the plug, which stays on this
    // stack frame, unmoved, until `blk_finish_plug` below detaches it from
    // the task. A panic in `f` does not unwind in the kernel.
    unsafe { bindings::blk_start_plug(plug.as_mut_ptr()) };
    let ret = f();
    // SAFETY: The plug was started above, on this task.
    unsafe { bindings::blk_finish_plug(plug.as_mut_ptr()) };
    ret
}
