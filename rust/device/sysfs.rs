// SPDX-License-Identifier: GPL-2.0

//! `/sys/block/loopN/loop/`: loop.c's attributes, and `nr_hw_queues`.

use super::{workers::start_workers, LoopDevice, LoopOps};
use crate::{
    blk::{AttributeSpec, Disk, SysfsOutput},
    file_io::BackingFile,
    hw_queues,
    uapi::*,
};
use core::fmt::Write;
use kernel::{
    prelude::*,
    str::{parse_int::ParseInt, BStr},
};

/// The sysfs attributes of `/sys/block/loopN/loop/`: loop.c's, in its
/// order, then rloop's own.
pub(crate) const ATTRS: &[AttributeSpec] = &[
    read_only(c"backing_file"),
    read_only(c"offset"),
    read_only(c"sizelimit"),
    read_only(c"autoclear"),
    read_only(c"partscan"),
    read_only(c"dio"),
    AttributeSpec {
        name: c"nr_hw_queues",
        writable: true,
    },
];

/// Index of `nr_hw_queues` in [`ATTRS`].
const ATTR_NR_HW_QUEUES: usize = 6;
// The one writable attribute is where `store_attr` expects it.
const _: () = assert!(ATTRS[ATTR_NR_HW_QUEUES].writable);

const fn read_only(name: &'static CStr) -> AttributeSpec {
    AttributeSpec {
        name,
        writable: false,
    }
}

impl LoopDevice {
    /// Shows attribute `index` of [`ATTRS`], in loop.c's formats.
    pub(crate) fn show_attr(
        &self,
        disk: &Disk<LoopOps>,
        index: usize,
        out: &mut SysfsOutput<'_>,
    ) -> Result {
        if index == ATTR_NR_HW_QUEUES {
            return writeln!(out, "{}", disk.nr_hw_queues()).map_err(|_| EINVAL);
        }
        // Only the spinlock: the I/O target holds all of these, and the
        // config lock may be held across slow work, such as a bind's fsync.
        // A detach clears the target before it removes these files; reads
        // in between see loop.c's cleared values: no file, zeros.
        let target = self.io_target();
        let flag = |f: LoFlags| u32::from(target.as_ref().is_some_and(|t| t.flags.contains(f)));
        match index {
            0 => {
                let Some(target) = target else {
                    return Ok(());
                };
                let mut buf = KVec::from_elem(0u8, PATH_BUF, GFP_KERNEL)?;
                let path = BackingFile::from_file(target.file).path(&mut buf)?;
                out.write_bytes(path)?;
                return out.write_bytes(b"\n");
            }
            1 => writeln!(out, "{}", target.as_ref().map_or(0, |t| t.offset)),
            2 => writeln!(out, "{}", target.as_ref().map_or(0, |t| t.sizelimit)),
            3 => writeln!(out, "{}", flag(LoFlags::AUTOCLEAR)),
            4 => writeln!(out, "{}", flag(LoFlags::PARTSCAN)),
            5 => writeln!(out, "{}", flag(LoFlags::DIRECT_IO)),
            _ => return Err(EINVAL),
        }
        .map_err(|_| EINVAL)
    }

    /// Takes a write to attribute `index` of [`ATTRS`]: a new number of
    /// hardware queues, as for the `nr_hw_queues` module parameter. The
    /// queue is frozen for the change, which so waits for the I/O in
    /// flight. No device lock is needed: blk-mq serialises the updates,
    /// and unbinding removes this file only after its writers are done.
    pub(crate) fn store_attr(&self, disk: &Disk<LoopOps>, index: usize, input: &[u8]) -> Result {
        if index != ATTR_NR_HW_QUEUES {
            return Err(EACCES);
        }
        let text = input.strip_suffix(b"\n").unwrap_or(input);
        let requested = u32::from_str(BStr::from_bytes(text))?;
        let nr = hw_queues::hw_queue_count(requested, kernel::cpu::nr_cpu_ids()).ok_or(EINVAL)?;
        start_workers(self.index, &self.more_workers, nr)?;
        disk.set_nr_hw_queues(nr);
        Ok(())
    }
}

/// The buffer `file_path()` writes the backing file's path to: loop.c's
/// `PAGE_SIZE - 1`, which leaves room for the newline in the page sysfs
/// gives, and makes a longer path `ENAMETOOLONG`.
const PATH_BUF: usize = kernel::page::PAGE_SIZE - 1;
