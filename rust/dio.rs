// SPDX-License-Identifier: GPL-2.0

//! The direct I/O decision of a loop device, as Linux 7.2 makes it.
//!
//! Kernel-free: it uses only `core`, so host `cargo test` (tests/host)
//! compiles this file unchanged.

/// What decides whether a bound device can do direct I/O.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DioInputs {
    /// The backing file supports `O_DIRECT` (`FMODE_CAN_ODIRECT`).
    pub(crate) file_can_odirect: bool,
    /// The file's direct I/O alignment (`STATX_DIOALIGN`, else the
    /// logical block size of its file system's device, else 512).
    pub(crate) dio_align: u32,
    /// The loop device's logical block size.
    pub(crate) logical_block_size: u32,
    /// The device's offset into the file.
    pub(crate) offset: u64,
}

/// Why direct I/O cannot be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum DioRefusal {
    /// The backing file does not support `O_DIRECT`.
    FileCannotODirect,
    /// The logical block size is below the file's DIO alignment.
    BlockSizeBelowAlignment,
    /// The offset is not a multiple of the file's DIO alignment.
    OffsetUnaligned,
}

/// `lo_can_use_dio()`.
pub(crate) fn can_use_dio(i: &DioInputs) -> Result<(), DioRefusal> {
    if !i.file_can_odirect {
        return Err(DioRefusal::FileCannotODirect);
    }
    if i.logical_block_size < i.dio_align {
        return Err(DioRefusal::BlockSizeBelowAlignment);
    }
    // `dio_align` is a power of two, or 0 where the file system reports
    // no direct I/O support (ext4 with data=journal): loop.c's 32-bit mask
    // is then all ones, and only a multiple of 4 GiB passes.
    if i.offset & u64::from(i.dio_align.wrapping_sub(1)) != 0 {
        return Err(DioRefusal::OffsetUnaligned);
    }
    Ok(())
}

/// `loop_default_blocksize()`: the block size used when the caller gives 0.
pub(crate) fn default_block_size(dio_requested: bool, dio_align: u32) -> u32 {
    if dio_requested {
        dio_align
    } else {
        512
    }
}

/// Why direct I/O was refused, in words for the kernel log.
pub(crate) struct Explanation<'a> {
    refusal: DioRefusal,
    inputs: &'a DioInputs,
}

impl DioRefusal {
    /// Explains the refusal with the numbers that caused it.
    pub(crate) fn explain<'a>(self, inputs: &'a DioInputs) -> Explanation<'a> {
        Explanation {
            refusal: self,
            inputs,
        }
    }
}

impl core::fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let i = self.inputs;
        match self.refusal {
            DioRefusal::FileCannotODirect => {
                write!(f, "the backing file does not support O_DIRECT")
            }
            DioRefusal::BlockSizeBelowAlignment => write!(
                f,
                "logical block size {} is below the backing file's direct I/O alignment {}",
                i.logical_block_size, i.dio_align
            ),
            DioRefusal::OffsetUnaligned => write!(
                f,
                "offset {} is not a multiple of the backing file's direct I/O alignment {}",
                i.offset, i.dio_align
            ),
        }
    }
}
