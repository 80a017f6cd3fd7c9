// SPDX-License-Identifier: GPL-2.0

//! The loop ioctl ABI of `include/uapi/linux/loop.h`.
//!
//! Kernel-free: besides `core` it uses only `crate::kernel_defs`, for the C
//! types of the legacy `struct loop_info`, so host `cargo test`
//! (tests/host) compiles this file unchanged. Structures are decoded from
//! and encoded to their exact byte layout, so the driver copies plain byte
//! arrays to and from user space.

use crate::kernel_defs::{CompatDevT, CompatULong, OldDevT, ULong};

/// `LO_NAME_SIZE`.
pub(crate) const LO_NAME_SIZE: usize = 64;
/// `LO_KEY_SIZE`.
pub(crate) const LO_KEY_SIZE: u32 = 32;

/// `lo_flags`: the `LO_FLAGS_*` bits of a device, in the ABI's encoding.
/// Bits without a name are kept as user space gave them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct LoFlags(u32);

impl LoFlags {
    /// `LO_FLAGS_READ_ONLY`.
    pub(crate) const READ_ONLY: Self = Self(1);
    /// `LO_FLAGS_AUTOCLEAR`.
    pub(crate) const AUTOCLEAR: Self = Self(4);
    /// `LO_FLAGS_PARTSCAN`.
    pub(crate) const PARTSCAN: Self = Self(8);
    /// `LO_FLAGS_DIRECT_IO`.
    pub(crate) const DIRECT_IO: Self = Self(16);

    /// `LOOP_SET_STATUS_SETTABLE_FLAGS`.
    pub(crate) const SET_STATUS_SETTABLE: Self = Self::AUTOCLEAR.union(Self::PARTSCAN);
    /// `LOOP_SET_STATUS_CLEARABLE_FLAGS`.
    pub(crate) const SET_STATUS_CLEARABLE: Self = Self::AUTOCLEAR;
    /// `LOOP_CONFIGURE_SETTABLE_FLAGS`.
    pub(crate) const CONFIGURE_SETTABLE: Self = Self::READ_ONLY
        .union(Self::AUTOCLEAR)
        .union(Self::PARTSCAN)
        .union(Self::DIRECT_IO);

    /// No flag.
    pub(crate) const fn empty() -> Self {
        Self(0)
    }

    /// The flags of the ABI value `bits`.
    pub(crate) const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The ABI value.
    pub(crate) const fn bits(self) -> u32 {
        self.0
    }

    /// The flags of `self` and of `other`.
    pub(crate) const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The flags of `self` that are also in `other`.
    pub(crate) const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Whether every flag of `other` is set in `self`.
    pub(crate) const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags of `other`.
    pub(crate) fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub(crate) fn remove(&mut self, other: Self) {
        self.0 &= !other.0;
    }

    /// Flips the flags of `other`.
    pub(crate) fn toggle(&mut self, other: Self) {
        self.0 ^= other.0;
    }
}

impl core::ops::BitOr for LoFlags {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        self.union(other)
    }
}

/// `LO_CRYPT_NONE`.
pub(crate) const LO_CRYPT_NONE: u32 = 0;
/// `LO_CRYPT_XOR`.
pub(crate) const LO_CRYPT_XOR: u32 = 1;
/// `LO_CRYPT_CRYPTOAPI`.
pub(crate) const LO_CRYPT_CRYPTOAPI: u32 = 18;

/// Block device ioctls.
pub(crate) const LOOP_SET_FD: u32 = 0x4C00;
pub(crate) const LOOP_CLR_FD: u32 = 0x4C01;
pub(crate) const LOOP_SET_STATUS: u32 = 0x4C02;
pub(crate) const LOOP_GET_STATUS: u32 = 0x4C03;
pub(crate) const LOOP_SET_STATUS64: u32 = 0x4C04;
pub(crate) const LOOP_GET_STATUS64: u32 = 0x4C05;
pub(crate) const LOOP_CHANGE_FD: u32 = 0x4C06;
pub(crate) const LOOP_SET_CAPACITY: u32 = 0x4C07;
pub(crate) const LOOP_SET_DIRECT_IO: u32 = 0x4C08;
pub(crate) const LOOP_SET_BLOCK_SIZE: u32 = 0x4C09;
pub(crate) const LOOP_CONFIGURE: u32 = 0x4C0A;

/// The argument of a loop ioctl from a 32-bit process: `compat_ptr(arg)`
/// for a pointer, `arg` unchanged for an integer (a file descriptor, a
/// block size, a flag), as `lo_compat_ioctl` passes them on; `None` for a
/// command that is not a loop ioctl. `compat_ptr()` is not the identity
/// everywhere (s390 clears bit 31), so integers must not see it. loop.c
/// converts the unused argument of `LOOP_SET_CAPACITY` and `LOOP_CLR_FD`
/// too, but not the `compat_loop_info` pointers of `LOOP_SET_STATUS` and
/// `LOOP_GET_STATUS`, which are pointers all the same.
pub(crate) fn compat_ioctl_arg(
    cmd: u32,
    arg: u32,
    compat_ptr: impl FnOnce(u32) -> usize,
) -> Option<usize> {
    match cmd {
        LOOP_SET_STATUS | LOOP_GET_STATUS | LOOP_SET_STATUS64 | LOOP_GET_STATUS64
        | LOOP_CONFIGURE | LOOP_SET_CAPACITY | LOOP_CLR_FD => Some(compat_ptr(arg)),
        LOOP_SET_FD | LOOP_CHANGE_FD | LOOP_SET_DIRECT_IO | LOOP_SET_BLOCK_SIZE => {
            Some(arg as usize)
        }
        _ => None,
    }
}

/// `/dev/loop-control` ioctls.
pub(crate) const LOOP_CTL_ADD: u32 = 0x4C80;
pub(crate) const LOOP_CTL_REMOVE: u32 = 0x4C81;
pub(crate) const LOOP_CTL_GET_FREE: u32 = 0x4C82;

/// `struct loop_info64`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct LoopInfo64 {
    pub(crate) device: u64,
    pub(crate) inode: u64,
    pub(crate) rdevice: u64,
    pub(crate) offset: u64,
    pub(crate) sizelimit: u64,
    pub(crate) number: u32,
    pub(crate) encrypt_type: u32,
    pub(crate) encrypt_key_size: u32,
    pub(crate) flags: LoFlags,
    pub(crate) file_name: [u8; LO_NAME_SIZE],
    pub(crate) crypt_name: [u8; LO_NAME_SIZE],
    pub(crate) encrypt_key: [u8; LO_KEY_SIZE as usize],
    pub(crate) init: [u64; 2],
}

/// Size of `struct loop_info64`.
pub(crate) const LOOP_INFO64_SIZE: usize = 232;
/// Size of `struct loop_config`.
pub(crate) const LOOP_CONFIG_SIZE: usize = 304;

/// Reads native-endian integers from a byte slice at increasing offsets.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.pos..self.pos + N]);
        self.pos += N;
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_ne_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_ne_bytes(self.take())
    }
}

/// Writes native-endian integers into a byte slice at increasing offsets.
struct Writer<'a> {
    bytes: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.bytes[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_ne_bytes())
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_ne_bytes())
    }
}

impl LoopInfo64 {
    /// An all-zero `loop_info64`.
    pub(crate) const fn zeroed() -> Self {
        Self {
            device: 0,
            inode: 0,
            rdevice: 0,
            offset: 0,
            sizelimit: 0,
            number: 0,
            encrypt_type: 0,
            encrypt_key_size: 0,
            flags: LoFlags::empty(),
            file_name: [0; LO_NAME_SIZE],
            crypt_name: [0; LO_NAME_SIZE],
            encrypt_key: [0; LO_KEY_SIZE as usize],
            init: [0; 2],
        }
    }

    fn read(r: &mut Reader<'_>) -> Self {
        Self {
            device: r.u64(),
            inode: r.u64(),
            rdevice: r.u64(),
            offset: r.u64(),
            sizelimit: r.u64(),
            number: r.u32(),
            encrypt_type: r.u32(),
            encrypt_key_size: r.u32(),
            flags: LoFlags::from_bits(r.u32()),
            file_name: r.take(),
            crypt_name: r.take(),
            encrypt_key: r.take(),
            init: [r.u64(), r.u64()],
        }
    }

    /// Decodes the user-space layout.
    pub(crate) fn from_bytes(bytes: &[u8; LOOP_INFO64_SIZE]) -> Self {
        Self::read(&mut Reader { bytes, pos: 0 })
    }

    /// Encodes into the user-space layout.
    pub(crate) fn to_bytes(self) -> [u8; LOOP_INFO64_SIZE] {
        let mut out = [0u8; LOOP_INFO64_SIZE];
        let mut w = Writer {
            bytes: &mut out,
            pos: 0,
        };
        w.u64(self.device);
        w.u64(self.inode);
        w.u64(self.rdevice);
        w.u64(self.offset);
        w.u64(self.sizelimit);
        w.u32(self.number);
        w.u32(self.encrypt_type);
        w.u32(self.encrypt_key_size);
        w.u32(self.flags.bits());
        w.put(&self.file_name);
        w.put(&self.crypt_name);
        w.put(&self.encrypt_key);
        w.u64(self.init[0]);
        w.u64(self.init[1]);
        out
    }
}

/// `struct loop_config`. `__reserved` is not checked, as in loop.c.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct LoopConfig {
    pub(crate) fd: u32,
    pub(crate) block_size: u32,
    pub(crate) info: LoopInfo64,
}

impl LoopConfig {
    /// The configuration `LOOP_SET_FD` implies: only the file descriptor.
    pub(crate) const fn from_fd(fd: u32) -> Self {
        Self {
            fd,
            block_size: 0,
            info: LoopInfo64::zeroed(),
        }
    }

    /// Decodes the user-space layout.
    pub(crate) fn from_bytes(bytes: &[u8; LOOP_CONFIG_SIZE]) -> Self {
        let mut r = Reader { bytes, pos: 0 };
        Self {
            fd: r.u32(),
            block_size: r.u32(),
            info: LoopInfo64::read(&mut r),
        }
    }
}

/// Why a `loop_info64` cannot configure a device (`loop_set_status_from_info`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum InfoError {
    /// `EINVAL`: bad key size or unsupported encryption.
    Invalid,
    /// `EINVAL`, after a warning that XOR encryption was removed.
    XorRemoved,
    /// `EINVAL`, after a warning that cryptoloop was removed.
    CryptoApiRemoved,
    /// `EOVERFLOW`: offset or size limit beyond `LLONG_MAX`.
    Overflow,
}

/// Checks the fields of `info` that loop.c validates before applying it.
pub(crate) fn validate_info(info: &LoopInfo64) -> Result<(), InfoError> {
    if info.encrypt_key_size > LO_KEY_SIZE {
        return Err(InfoError::Invalid);
    }
    match info.encrypt_type {
        LO_CRYPT_NONE => {}
        LO_CRYPT_XOR => return Err(InfoError::XorRemoved),
        LO_CRYPT_CRYPTOAPI => return Err(InfoError::CryptoApiRemoved),
        _ => return Err(InfoError::Invalid),
    }
    if info.offset > i64::MAX as u64 || info.sizelimit > i64::MAX as u64 {
        return Err(InfoError::Overflow);
    }
    Ok(())
}

/// The file name a device keeps: the user's 64 bytes, NUL-terminated.
pub(crate) fn stored_file_name(name: &[u8; LO_NAME_SIZE]) -> [u8; LO_NAME_SIZE] {
    let mut out = *name;
    out[LO_NAME_SIZE - 1] = 0;
    out
}

/// `LOOP_MAJOR` (`include/uapi/linux/major.h`).
pub(crate) const LOOP_MAJOR: u32 = 7;

/// `MINORBITS`: a kernel `dev_t` is the major number above this many bits
/// of minor number.
pub(crate) const MINOR_BITS: u32 = 20;

/// `MAJOR()` of a kernel `dev_t`.
pub(crate) fn dev_major(dev: u32) -> u32 {
    dev >> MINOR_BITS
}

/// `MINOR()` of a kernel `dev_t`.
pub(crate) fn dev_minor(dev: u32) -> u32 {
    dev & ((1 << MINOR_BITS) - 1)
}

/// `huge_encode_dev()`: a kernel `dev_t` as user space's 64-bit number.
pub(crate) fn huge_encode_dev(dev: u32) -> u64 {
    let (major, minor) = (dev_major(dev), dev_minor(dev));
    u64::from((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
}

/// A `loop_info64` field does not fit the legacy structure (`EOVERFLOW`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Overflow;

/// The integer `lo_offset` of the legacy structures, sign-extended as C
/// assigns an `int` to a `__u64`.
fn offset_from_int(offset: i32) -> u64 {
    i64::from(offset) as u64
}

/// `offset` as the legacy structures' `int`, if it fits back unchanged.
fn offset_to_int(offset: u64) -> Result<i32, Overflow> {
    let narrow = offset as i32;
    if offset_from_int(narrow) == offset {
        Ok(narrow)
    } else {
        Err(Overflow)
    }
}

/// The legacy `struct loop_info` of `include/uapi/linux/loop.h`, over the
/// types that differ between architectures: `__kernel_old_dev_t` and
/// `unsigned long` natively, `compat_dev_t` and `compat_ulong_t` in loop.c's
/// `struct compat_loop_info` for 32-bit callers. Only its layout is used:
/// `repr(C)` makes it the C compiler's for the same types, 168 bytes on
/// x86-64, 160 on arm64 (a 32-bit `__kernel_old_dev_t`), 140 for compat.
#[repr(C)]
struct LegacyLoopInfo<DevT, ULong> {
    lo_number: i32,
    lo_device: DevT,
    lo_inode: ULong,
    lo_rdevice: DevT,
    lo_offset: i32,
    lo_encrypt_type: i32,
    lo_encrypt_key_size: i32,
    lo_flags: i32,
    lo_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE as usize],
    lo_init: [ULong; 2],
    reserved: [u8; 4],
}

/// Where a legacy status structure keeps the fields it shares with
/// `loop_info64`, and how wide they are.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct LegacyLayout {
    /// `sizeof`, what the ioctl copies.
    pub(crate) size: usize,
    pub(crate) number: usize,
    pub(crate) device: usize,
    pub(crate) inode: usize,
    pub(crate) rdevice: usize,
    pub(crate) offset: usize,
    pub(crate) flags: usize,
    pub(crate) name: usize,
    /// Width of `lo_device` and `lo_rdevice`.
    pub(crate) dev_size: usize,
    /// Width of `lo_inode`.
    pub(crate) ulong_size: usize,
}

impl LegacyLayout {
    /// The layout of [`LegacyLoopInfo`] over `DevT` and `ULong`, unsigned
    /// integers of 2, 4 or 8 bytes (else the build fails).
    pub(crate) const fn of<DevT, ULong>() -> Self {
        use core::mem::{offset_of, size_of};
        type L<D, U> = LegacyLoopInfo<D, U>;
        let (dev_size, ulong_size) = (size_of::<DevT>(), size_of::<ULong>());
        assert!(matches!(dev_size, 2 | 4 | 8) && matches!(ulong_size, 4 | 8));
        Self {
            size: size_of::<L<DevT, ULong>>(),
            number: offset_of!(L<DevT, ULong>, lo_number),
            device: offset_of!(L<DevT, ULong>, lo_device),
            inode: offset_of!(L<DevT, ULong>, lo_inode),
            rdevice: offset_of!(L<DevT, ULong>, lo_rdevice),
            offset: offset_of!(L<DevT, ULong>, lo_offset),
            flags: offset_of!(L<DevT, ULong>, lo_flags),
            name: offset_of!(L<DevT, ULong>, lo_name),
            dev_size,
            ulong_size,
        }
    }

    /// `loop_info64_from_old()`, `loop_info64_from_compat()`: the size
    /// limit is 0 and the encryption fields are dropped, as in loop.c.
    /// `bytes` holds `self.size` bytes.
    pub(crate) fn decode(&self, bytes: &[u8]) -> LoopInfo64 {
        let mut info = LoopInfo64::zeroed();
        info.number = get_uint(bytes, self.number, 4) as u32;
        info.device = get_uint(bytes, self.device, self.dev_size);
        info.inode = get_uint(bytes, self.inode, self.ulong_size);
        info.rdevice = get_uint(bytes, self.rdevice, self.dev_size);
        info.offset = offset_from_int(get_uint(bytes, self.offset, 4) as u32 as i32);
        info.flags = LoFlags::from_bits(get_uint(bytes, self.flags, 4) as u32);
        if let Some(Ok(name)) = bytes
            .get(self.name..self.name + LO_NAME_SIZE)
            .map(<[u8; LO_NAME_SIZE]>::try_from)
        {
            info.file_name = name;
        }
        info
    }

    /// `loop_info64_to_old()`, `loop_info64_to_compat()`, into `out` of
    /// `self.size` bytes: `EOVERFLOW` when a value would be truncated.
    pub(crate) fn encode(&self, info: &LoopInfo64, out: &mut [u8]) -> Result<(), Overflow> {
        let offset = offset_to_int(info.offset)?;
        let fits = |v: u64, width: usize| width == 8 || v >> (8 * width) == 0;
        if !fits(info.device, self.dev_size)
            || !fits(info.rdevice, self.dev_size)
            || !fits(info.inode, self.ulong_size)
        {
            return Err(Overflow);
        }
        out.fill(0);
        put_uint(out, self.number, 4, u64::from(info.number));
        put_uint(out, self.device, self.dev_size, info.device);
        put_uint(out, self.inode, self.ulong_size, info.inode);
        put_uint(out, self.rdevice, self.dev_size, info.rdevice);
        put_uint(out, self.offset, 4, u64::from(offset as u32));
        put_uint(out, self.flags, 4, u64::from(info.flags.bits()));
        let name = out.get_mut(self.name..self.name + LO_NAME_SIZE);
        copy_into(name.unwrap_or_default(), &info.file_name);
        Ok(())
    }
}

/// The native-endian unsigned integer of `width` bytes (2, 4 or 8) at
/// `pos`; 0 if `bytes` ends before.
fn get_uint(bytes: &[u8], pos: usize, width: usize) -> u64 {
    let field = bytes.get(pos..pos + width).unwrap_or_default();
    match width {
        2 => field.try_into().map_or(0, |b| u16::from_ne_bytes(b).into()),
        4 => field.try_into().map_or(0, |b| u32::from_ne_bytes(b).into()),
        _ => field.try_into().map_or(0, u64::from_ne_bytes),
    }
}

/// Stores the low `width` bytes (2, 4 or 8) of `v` at `pos`, native-endian,
/// if `bytes` holds them.
fn put_uint(bytes: &mut [u8], pos: usize, width: usize, v: u64) {
    let field = bytes.get_mut(pos..pos + width).unwrap_or_default();
    match width {
        2 => copy_into(field, &(v as u16).to_ne_bytes()),
        4 => copy_into(field, &(v as u32).to_ne_bytes()),
        _ => copy_into(field, &v.to_ne_bytes()),
    }
}

/// Copies `src` into `dst` if they are as long.
fn copy_into<const N: usize>(dst: &mut [u8], src: &[u8; N]) {
    if let Ok(dst) = <&mut [u8; N]>::try_from(dst) {
        *dst = *src;
    }
}

/// `struct loop_info` of the architecture the module is built for.
pub(crate) const LOOP_INFO: LegacyLayout = LegacyLayout::of::<OldDevT, ULong>();
/// `struct compat_loop_info` of the architecture the module is built for.
pub(crate) const COMPAT_LOOP_INFO: LegacyLayout = LegacyLayout::of::<CompatDevT, CompatULong>();
/// Size of `struct loop_info`.
pub(crate) const LOOP_INFO_SIZE: usize = LOOP_INFO.size;
/// Size of `struct compat_loop_info`.
pub(crate) const COMPAT_LOOP_INFO_SIZE: usize = COMPAT_LOOP_INFO.size;

/// `loop_info64_from_old()`.
pub(crate) fn info64_from_old(bytes: &[u8; LOOP_INFO_SIZE]) -> LoopInfo64 {
    LOOP_INFO.decode(bytes)
}

/// `loop_info64_to_old()`.
pub(crate) fn info64_to_old(info: &LoopInfo64) -> Result<[u8; LOOP_INFO_SIZE], Overflow> {
    let mut out = [0u8; LOOP_INFO_SIZE];
    LOOP_INFO.encode(info, &mut out).map(|()| out)
}

/// `loop_info64_from_compat()`.
pub(crate) fn info64_from_compat(bytes: &[u8; COMPAT_LOOP_INFO_SIZE]) -> LoopInfo64 {
    COMPAT_LOOP_INFO.decode(bytes)
}

/// `loop_info64_to_compat()`.
pub(crate) fn info64_to_compat(info: &LoopInfo64) -> Result<[u8; COMPAT_LOOP_INFO_SIZE], Overflow> {
    let mut out = [0u8; COMPAT_LOOP_INFO_SIZE];
    COMPAT_LOOP_INFO.encode(info, &mut out).map(|()| out)
}
