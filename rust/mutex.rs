// SPDX-License-Identifier: GPL-2.0

//! Mutexes whose waiters a fatal signal can stop (`mutex_lock_killable()`).
//!
//! C header: [`include/linux/mutex.h`](srctree/include/linux/mutex.h)
//!
//! Linux 7.2's [`Mutex`] only waits uninterruptibly (`mutex_lock()`), while
//! loop.c takes its locks with `mutex_lock_killable()`: a task waiting for
//! a device that is busy under its lock (a bind's fsync, a write-back to a
//! frozen file system) can still be killed. A [`KillableMutex`] keeps a
//! kernel `Mutex<()>` beside the data it protects, so that the `struct
//! mutex` handed to C comes from a layout the kernel crate guarantees
//! itself (`Lock::from_raw`), checked at build time below.

use crate::helpers_ffi;
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    mem::size_of,
    ops::{Deref, DerefMut},
};
use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    sync::{Mutex, MutexGuard},
};

/// A [`KillableMutex`] initialiser for `data`, with a lockdep class of its
/// own for each place that uses the macro, as `new_mutex!` gives.
macro_rules! new_killable_mutex {
    ($data:expr $(, $name:literal)? $(,)?) => {
        $crate::mutex::KillableMutex::new($data, ::kernel::new_mutex!((), $($name)?))
    };
}
pub(crate) use new_killable_mutex;

/// Data of type `T` behind a `struct mutex` that can be waited for
/// uninterruptibly ([`Self::lock`]) or killably ([`Self::lock_killable`]).
///
/// # Invariants
///
/// `data` is only accessed through a [`KillableMutexGuard`], which holds
/// `lock`.
#[pin_data]
pub(crate) struct KillableMutex<T> {
    #[pin]
    lock: Mutex<()>,
    data: UnsafeCell<T>,
}

// SAFETY: Every access to `data` holds `lock` (type invariant), so sharing
// the mutex between tasks only moves `T` between them, as `Mutex<T>` does.
unsafe impl<T: Send> Sync for KillableMutex<T> {}

impl<T> KillableMutex<T> {
    /// A mutex holding `data`, whose lock `lock` initialises; use
    /// [`new_killable_mutex!`].
    pub(crate) fn new(data: T, lock: impl PinInit<Mutex<()>>) -> impl PinInit<Self> {
        pin_init!(Self {
            lock <- lock,
            data: UnsafeCell::new(data),
        })
    }

    /// Waits for the lock, uninterruptibly (`mutex_lock()`).
    pub(crate) fn lock(&self) -> KillableMutexGuard<'_, T> {
        // INVARIANT: The guard holds `self.lock`.
        KillableMutexGuard {
            mutex: self,
            _lock: self.lock.lock(),
            _data: PhantomData,
        }
    }

    /// Waits for the lock unless a fatal signal comes first
    /// (`mutex_lock_killable()`), which gives `EINTR`.
    pub(crate) fn lock_killable(&self) -> Result<KillableMutexGuard<'_, T>> {
        // SAFETY: `self.raw()` is the initialised `struct mutex` of
        // `self.lock`, valid while `self` is borrowed.
        to_result(unsafe { helpers_ffi::rloop_mutex_lock_killable(self.raw()) })?;
        // SAFETY: The current task has just acquired `self.lock`.
        let guard = unsafe { MutexGuard::new(&self.lock, ()) };
        // INVARIANT: The guard holds `self.lock`.
        Ok(KillableMutexGuard {
            mutex: self,
            _lock: guard,
            _data: PhantomData,
        })
    }

    /// The `struct mutex` of `self.lock`.
    fn raw(&self) -> *mut bindings::mutex {
        // `Lock<(), B>` has the layout of its `B::State` (`Lock::from_raw`
        // relies on it): the `struct mutex` is its only field with a size,
        // so it is at offset 0.
        const { assert!(size_of::<Mutex<()>>() == size_of::<bindings::mutex>()) };
        // The mutex is in an `Opaque`, which C may change through a pointer
        // derived from a shared reference.
        core::ptr::from_ref(&self.lock)
            .cast::<bindings::mutex>()
            .cast_mut()
    }
}

/// The held lock of a [`KillableMutex`], released on drop; derefs to the
/// data. Not `Send`: a mutex is released by the task that took it.
///
/// # Invariants
///
/// `_lock` holds `mutex.lock`.
#[must_use = "the lock unlocks immediately when the guard is unused"]
pub(crate) struct KillableMutexGuard<'a, T> {
    mutex: &'a KillableMutex<T>,
    _lock: MutexGuard<'a, ()>,
    /// Shared between tasks, the guard lends `&T` to each: `Sync` only
    /// for a `T` that is (`KillableMutex<T>` is `Sync` for any `T: Send`).
    _data: PhantomData<&'a T>,
}

impl<'a, T> KillableMutexGuard<'a, T> {
    /// The mutex whose lock this guard holds.
    pub(crate) fn mutex(&self) -> &'a KillableMutex<T> {
        self.mutex
    }
}

impl<T> Deref for KillableMutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The lock is held (type invariant), so no other task
        // accesses `data` while `self` is borrowed.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T> DerefMut for KillableMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: As in `deref`; `self` is borrowed mutably, so this is the
        // only reference to the data.
        unsafe { &mut *self.mutex.data.get() }
    }
}
