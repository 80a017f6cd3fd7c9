// SPDX-License-Identifier: GPL-2.0

//! Charging a kthread's I/O to the cgroups of the task it works for.
//!
//! C headers: [`include/linux/cgroup.h`](srctree/include/linux/cgroup.h),
//! [`include/linux/blk-cgroup.h`](srctree/include/linux/blk-cgroup.h),
//! [`include/linux/kthread.h`](srctree/include/linux/kthread.h),
//! [`include/linux/sched/mm.h`](srctree/include/linux/sched/mm.h)
//!
//! A bio carries the block cgroup (blkcg) of the task that issued it. The
//! bios and page cache a kthread makes for it are charged to the kthread's
//! own cgroups, the root ones, unless the kthread takes on the issuer's:
//! [`ChargeScope`] does, for the blkcg (`kthread_associate_blkcg()`: the
//! kthread's bios count in its `io.stat` and obey its `io.max`) and for
//! the memory cgroup of the same cgroup (`set_active_memcg()`: page cache
//! allocated meanwhile is charged there). Without `CONFIG_BLK_CGROUP` or
//! `CONFIG_MEMCG`, the helpers make that half a no-op.

use crate::{
    blk::{Operations, Request},
    helpers_ffi as ffi,
};
use core::ptr::NonNull;
use kernel::bindings;

/// A reference to a cgroup subsystem state, dropped with `css_put()`.
///
/// # Invariants
///
/// `css` is a live css of which this holds one reference.
struct Css {
    css: NonNull<bindings::cgroup_subsys_state>,
}

impl Css {
    /// Takes over the reference the caller holds on `css`; `None` if null.
    ///
    /// # Safety
    ///
    /// `css` must be null or a css of which the caller owns a reference,
    /// which this then owns.
    unsafe fn from_raw_ref(css: *mut bindings::cgroup_subsys_state) -> Option<Self> {
        // INVARIANT: The caller hands over its reference.
        NonNull::new(css).map(|css| Self { css })
    }

    fn as_raw(&self) -> *mut bindings::cgroup_subsys_state {
        self.css.as_ptr()
    }
}

impl Drop for Css {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the reference is ours to drop.
        unsafe { ffi::rloop_css_put(self.as_raw()) };
    }
}

/// Whether the backing I/O of `rq`, done by the current task, is charged
/// as loop.c charges it: to the blkcg of the request's first bio, and if
/// it goes through the `page_cache`, the pages to the memcg of that
/// blkcg's cgroup. A task of another cgroup (one writing back another's
/// pages, or running the queue for others, or with the memory controller
/// enabled below the io one), a kthread, or a request without bios gets
/// `false`, and must leave `rq` to a kthread in a [`ChargeScope`].
pub(crate) fn charged_as_current<T: Operations>(rq: &Request<T>, page_cache: bool) -> bool {
    // SAFETY: The request is owned and started, so its bio list is stable,
    // and each bio holds its blkg; the helper takes a null bio.
    unsafe { ffi::rloop_current_charged_as((*rq.as_raw()).bio, page_cache) }
}

/// The current kthread working for the issuer of a request, as loop.c's
/// `loop_handle_cmd`: its bios are charged to the blkcg of the request's
/// first bio, and its page cache to the memory cgroup of the same cgroup,
/// until drop. Scopes do not nest.
///
/// # Invariants
///
/// Entered on the current task, which must end it (raw pointers make the
/// type neither `Send` nor `Sync`). `blkcg` says whether the kthread was
/// associated with a blkcg on entry. If `memcg` holds a reference, its
/// memcg is the task's active memcg, which was `old_memcg` before.
pub(crate) struct ChargeScope {
    blkcg: bool,
    memcg: Option<Css>,
    old_memcg: *mut bindings::mem_cgroup,
}

impl ChargeScope {
    /// Charges the current kthread's I/O and page cache to the cgroups
    /// that issued `rq`, if its first bio names any; a request without
    /// bios (a flush of the flush machinery) is charged to the root, as in
    /// loop.c.
    pub(crate) fn enter<T: Operations>(rq: &Request<T>) -> Self {
        // SAFETY: The request is owned and started, so its bio list is
        // stable, and each bio holds its blkg, which holds the blkcg css
        // while the borrow of `rq` lasts.
        let blkcg = unsafe {
            let bio = (*rq.as_raw()).bio;
            match bio.is_null() {
                true => core::ptr::null_mut(),
                false => ffi::rloop_bio_blkcg_css(bio),
            }
        };
        if blkcg.is_null() {
            // INVARIANT: Nothing was changed.
            return Self {
                blkcg: false,
                memcg: None,
                old_memcg: core::ptr::null_mut(),
            };
        }
        // SAFETY: `blkcg` is live (above); the association takes a
        // reference of its own, dropped when it is undone, and is ignored
        // on a task that is not a kthread.
        unsafe { ffi::rloop_kthread_associate_blkcg(blkcg) };
        // SAFETY: `blkcg` is live, and the helper returns a reference to
        // its cgroup's memory css, or null.
        let memcg = unsafe { Css::from_raw_ref(ffi::rloop_memcg_css_get(blkcg)) };
        let old_memcg = match &memcg {
            // SAFETY: The reference in `memcg` keeps the memcg alive while
            // it is active, until `drop` restores `old_memcg`.
            Some(css) => unsafe { ffi::rloop_set_active_memcg_css(css.as_raw()) },
            None => core::ptr::null_mut(),
        };
        // INVARIANT: Associated and activated just above.
        Self {
            blkcg: true,
            memcg,
            old_memcg,
        }
    }
}

impl Drop for ChargeScope {
    fn drop(&mut self) {
        if self.memcg.is_some() {
            // SAFETY: By the type invariant, this task made the memcg in
            // `self.memcg` active, replacing `old_memcg`, which the caller
            // of `set_active_memcg()` before us keeps alive.
            unsafe { ffi::rloop_set_active_memcg(self.old_memcg) };
        }
        if self.blkcg {
            // SAFETY: Undoes this task's association, dropping its
            // reference; a no-op on a task that is not a kthread.
            unsafe { ffi::rloop_kthread_associate_blkcg(core::ptr::null_mut()) };
        }
        // `self.memcg`, no longer active, is put after this.
    }
}
