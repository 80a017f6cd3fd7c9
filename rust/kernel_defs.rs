// SPDX-License-Identifier: GPL-2.0

//! What the kernel-free files take from the kernel crate: error codes, the
//! sector size, and the C types whose size differs between architectures.
//!
//! Host tests compile those files against a stand-in with the same names
//! (tests/host). Linux 7.2's kernel crate lacks `EOPNOTSUPP` and `ENOSYS`,
//! which 7.3 adds; on 7.2 they are made from the C values when asked for,
//! as `Error` has no public `const` constructor there.

pub(crate) use kernel::{
    block::SECTOR_SHIFT,
    error::{code::EIO, Error},
};

/// `__kernel_old_dev_t`: 64 bits on x86-64, 32 on arm64 and riscv64.
pub(crate) type OldDevT = kernel::uapi::__kernel_old_dev_t;
/// `unsigned long`.
pub(crate) type ULong = kernel::ffi::c_ulong;
/// `compat_dev_t`: 16 bits on x86, 32 elsewhere.
pub(crate) type CompatDevT = kernel::bindings::compat_dev_t;
/// `compat_ulong_t`.
pub(crate) type CompatULong = kernel::bindings::compat_ulong_t;

/// `EOPNOTSUPP`.
#[cfg(rloop_linux_7_3)]
pub(crate) fn eopnotsupp() -> Error {
    kernel::error::code::EOPNOTSUPP
}

/// `EOPNOTSUPP`.
#[cfg(not(rloop_linux_7_3))]
pub(crate) fn eopnotsupp() -> Error {
    Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32))
}

/// `ENOSYS`.
#[cfg(rloop_linux_7_3)]
pub(crate) fn enosys() -> Error {
    kernel::error::code::ENOSYS
}

/// `ENOSYS`.
#[cfg(not(rloop_linux_7_3))]
pub(crate) fn enosys() -> Error {
    Error::from_errno(-(kernel::bindings::ENOSYS as i32))
}
