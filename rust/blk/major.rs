// SPDX-License-Identifier: GPL-2.0

//! Block major number registration.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

use core::marker::PhantomData;
use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    str::CStr,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc, ArcBorrow,
    },
    types::{ForeignOwnable, ScopeGuard},
};

/// Creates devices on demand, when a node of the major without a disk is
/// opened (`blk_probe` of `__register_blkdev()`).
pub(crate) trait Probe: Send + Sync + 'static {
    /// A device number of the major with no disk was opened.
    fn probe(this: ArcBorrow<'_, Self>, dev: u32);
}

/// The probe handler of the one major a module registers. The C callback
/// carries no context pointer, so it lives here.
static PROBE_DATA: Atomic<*mut c_void> = Atomic::new(core::ptr::null_mut());

use kernel::ffi::c_void;

/// A registered block major, unregistered on drop.
///
/// # Invariants
///
/// `major` is registered under `name`, with `probe_callback::<P>`, and
/// `PROBE_DATA` holds an `Arc<P>` from `into_foreign`.
pub(crate) struct BlockMajor<P: Probe> {
    major: u32,
    name: &'static CStr,
    _p: PhantomData<P>,
}

impl<P: Probe> BlockMajor<P> {
    /// Registers `major` as `name`; opening a missing device of it calls
    /// `probe`. A module may hold one registration at a time.
    pub(crate) fn register(major: u32, name: &'static CStr, probe: Arc<P>) -> Result<Self> {
        let data = ScopeGuard::new_with_data(probe.into_foreign(), |data| {
            // SAFETY: `data` came from `into_foreign` just above, and no
            // probe can have borrowed it: the major was not registered.
            drop(unsafe { Arc::<P>::from_foreign(data) });
        });
        if PROBE_DATA
            .cmpxchg(core::ptr::null_mut(), *data, Release)
            .is_err()
        {
            return Err(EBUSY);
        }
        let published = ScopeGuard::new(|| PROBE_DATA.store(core::ptr::null_mut(), Relaxed));
        // SAFETY: `name` is a static C string; the callback is valid for
        // as long as the registration.
        to_result(unsafe {
            bindings::__register_blkdev(major, name.as_char_ptr(), Some(probe_callback::<P>))
        })?;
        published.dismiss();
        data.dismiss();
        // INVARIANT: Registered above.
        Ok(Self {
            major,
            name,
            _p: PhantomData,
        })
    }
}

impl<P: Probe> Drop for BlockMajor<P> {
    fn drop(&mut self) {
        // SAFETY: Registered by `register`. After this, `probe_callback`
        // is no longer called: `unregister_blkdev` waits for probes under
        // the major lock.
        unsafe { bindings::unregister_blkdev(self.major, self.name.as_char_ptr()) };
        let data = PROBE_DATA.xchg(core::ptr::null_mut(), Acquire);
        // SAFETY: `data` came from `into_foreign` in `register`.
        drop(unsafe { Arc::<P>::from_foreign(data) });
    }
}

/// # Safety
///
/// Called by the block layer while the registration of `P` exists.
unsafe extern "C" fn probe_callback<P: Probe>(dev: bindings::dev_t) {
    let data = PROBE_DATA.load(Acquire);
    if data.is_null() {
        return;
    }
    // SAFETY: The registration keeps the `Arc<P>` alive during callbacks.
    let probe = unsafe { Arc::<P>::borrow(data) };
    P::probe(probe, dev);
}
